# Checks and fixtures of testbed/bin/test-containers. Source it (after lib.sh); do not run it.
# shellcheck shell=bash
# The caller sets: RUN, WORK, template, base_image, forwarder_image, sam_bin, gw_kube,
# container_aws_endpoint and the bed's variables (stack.env).

# --- checks ---
passed=0
failed=0
failures=()
section() { printf '\n\033[1m--- %s ---\033[0m\n' "$*" >&2; }
# check DESCRIPTION COMMAND...: the command's success is the check; its output shows on failure.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    printf '  ok    %s\n' "$what" >&2
  else
    failed=$((failed + 1))
    failures+=("$what")
    printf '  FAIL  %s\n' "$what" >&2
    [ -z "$out" ] || sed 's/^/        /' <<< "$out" >&2
  fi
}
# Runs COMMAND until it succeeds or SECONDS pass; its last output shows on failure.
eventually() { # seconds, command...
  local deadline=$((SECONDS + $1)) out
  shift
  until out=$("$@" 2>&1); do
    [ $SECONDS -lt $deadline ] || { echo "$out"; return 1; }
    sleep 0.5
  done
}

# --- small tools: AWS CLI on moto, JSON with python3 (no jq needed) ---
awsl() { "$sam_bin/aws" --endpoint-url "$AWS_ENDPOINT_URL" --region "$AWS_REGION" --output text "$@"; }
# json EXPR: evaluates a Python expression over `d`, the JSON document on stdin.
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(r if isinstance(r, str) else json.dumps(r))' "$1"; }
image_size() { docker image inspect -f '{{.Size}}' "$1" 2>/dev/null | awk '{printf "%.1f MB", $1 / 1e6}'; }
annotation() { # service, key after nlb.port-manager/
  kubectl get svc -n "$ns" "$1" -o "jsonpath={.metadata.annotations.nlb\\.port-manager/$2}"
}
listener_ports() { awsl elbv2 describe-listeners --load-balancer-arn "$nlb_arn" --query 'Listeners[].Port' | tr '\t' ' '; }
listener_target_group() { # port
  awsl elbv2 describe-listeners --load-balancer-arn "$nlb_arn" \
    --query "Listeners[?Port==\`$1\`].DefaultActions[0].[TargetGroupArn || ForwardConfig.TargetGroups[0].TargetGroupArn]"
}
targets_of() { # target group arn -> "ip:port ..." sorted
  awsl elbv2 describe-target-health --target-group-arn "$1" \
    --query 'TargetHealthDescriptions[].[Target.Id, Target.Port]' | awk '{print $1 ":" $2}' | sort | xargs
}
target_groups_in_vpc() { awsl elbv2 describe-target-groups --query "TargetGroups[?VpcId=='$vpc'].TargetGroupArn" | xargs; }
# Claims, as the handler tests count them: NLB items without ports, the identity items and the
# sweep's cursor hold none.
claim_count() {
  awsl dynamodb scan --table-name "$table" \
    --query "length(Items[?pk.S != 'sweep' && pk.S != 'identity' && (sk.S != 'meta' || ports != null)])"
}

# --- fixtures ---
make_moto_fixtures() {
  section "fixtures (run $RUN)"
  table=$RUN
  awsl dynamodb create-table --table-name "$table" --billing-mode PAY_PER_REQUEST \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE >/dev/null
  vpc=$(awsl ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId)
  local subnets=() zone
  for zone in a b; do
    subnets+=("$(awsl ec2 create-subnet --vpc-id "$vpc" --availability-zone "$AWS_REGION$zone" \
      --cidr-block "10.0.$((${#subnets[@]} + 1)).0/24" --query Subnet.SubnetId)")
  done
  nlb_arn=$(awsl elbv2 create-load-balancer --name "$RUN" --type network --subnets "${subnets[@]}" \
    --query 'LoadBalancers[0].LoadBalancerArn')
  pools="{\"default\":{\"nlbArns\":[\"$nlb_arn\"],\"ports\":\"30000-30009\",\"listenerQuota\":50}}"
  # The stack's bus: the functions signal each other on it (Targets Registered, Pool Low), and
  # the forwarder puts its events on it.
  bus=$RUN
  awsl events create-event-bus --name "$bus" >/dev/null
  log "moto: table $table, bus $bus, NLB $nlb_arn in $vpc, ports 30000-30009"
  register_with_gate
}

# The run as a stack of the IAM gate (docs/local-stack.md, "The IAM gate"): the functions under
# sam local invoke and the forwarder image sign with $gate_key, and their calls are authorized
# against their roles in template.yaml (bus $RUN, table $table, the NLB above).
register_with_gate() {
  gate_key=AKIA$(echo "$RUN" | tr -dc 'a-z0-9' | tr 'a-z' 'A-Z')
  local body
  body=$(python3 - <<PY
import json
print(json.dumps({"accessKeyId": "$gate_key", "stackName": "$RUN", "region": "$AWS_REGION",
  "tableName": "$table", "busName": "$RUN",
  "parameters": {"ClusterName": "$RUN", "PoolNlbArns": ["$nlb_arn"], "ExtraPoolNlbArns": [""],
    "VpcId": "$vpc", "OidcProviderUrl": "oidc.bed.local/id/bed"}}))
PY
)
  curl -sf -X POST -H 'content-type: application/json' --data "$body" "$IAM_GATE_URL/_gate/stacks" >/dev/null \
    || die "the IAM gate at $IAM_GATE_URL refused to register run $RUN"
}
# Nothing the functions or the forwarder did was refused by the IAM gate.
no_gate_denials() {
  local denials
  denials=$(curl -sf "$IAM_GATE_URL/_gate/denials?key=$gate_key") || { echo "the IAM gate did not answer"; return 1; }
  [ "$denials" = "[]" ] || { echo "refused: $denials"; return 1; }
}

create_service() { # name
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: $1
  namespace: $ns
  annotations: {nlb.port-manager/auto-assign: "true"}
spec:
  selector: {app: $1}
  ports: [{name: game, port: 7777, protocol: TCP, targetPort: 7777}]
YAML
}
put_slice() { # service, ip... (the bed runs no controllers: slices are written by hand)
  local svc=$1 ip endpoints=""
  shift
  for ip in "$@"; do endpoints+="  - {addresses: [\"$ip\"], conditions: {ready: true, serving: true, terminating: false}}"$'\n'; done
  kubectl apply -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $svc-a
  namespace: $ns
  labels: {kubernetes.io/service-name: $svc, endpointslice.kubernetes.io/managed-by: testbed.nlb-port-pool}
addressType: IPv4
ports: [{name: game, port: 7777, protocol: TCP}]
endpoints:
$endpoints
YAML
}
service_uid() { kubectl get svc -n "$ns" "$1" -o 'jsonpath={.metadata.uid}'; }

make_kube_fixtures() {
  # deploy/ as a user applies it: the namespace, both ServiceAccounts' RBAC, the ClusterRole.
  kubectl apply -k deploy/ >/dev/null || die "kubectl apply -k deploy/ failed"
  ns=$RUN
  kubectl create namespace "$ns" >/dev/null
  sample_service=$(json 'd["detail"]["name"]' < events/service-changed.json)
  create_service "$sample_service"
  put_slice "$sample_service" 10.0.9.1
  sample_uid=$(service_uid "$sample_service")
  # The functions act as a ServiceAccount bound to deploy/'s ClusterRole, as their IAM role's
  # access entry is on EKS (group nlb-port-pool:functions): nothing more.
  kubectl create serviceaccount functions -n "$ns" >/dev/null
  kubectl create clusterrolebinding "$RUN-functions" --clusterrole nlb-port-pool-functions \
    --serviceaccount "$ns:functions" >/dev/null
  functions_token=$(kubectl create token functions -n "$ns" --duration 1h)
  log "kube: namespace $ns, Service $sample_service (slice 10.0.9.1), ServiceAccount $ns/functions"
}

# Each function's directory (its /var/task) gets a kubeconfig reaching the bed through the
# bridge as that ServiceAccount; the env-vars file sets everything else, for all functions.
write_function_access() {
  local dir ca
  ca=$(base64 -w0 < "$KUBE_CA_FILE")
  for dir in "$(dirname "$template")"/*/; do
    cat > "$dir/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: bed, cluster: {server: "https://host.docker.internal:$gw_kube", certificate-authority-data: "$ca"}}]
users: [{name: functions, user: {token: "$functions_token"}}]
contexts: [{name: bed, context: {cluster: bed, user: functions, namespace: "$ns"}}]
current-context: bed
YAML
  done
  python3 - "$WORK/env.json" <<PY
import json, sys
json.dump({"Parameters": {
    "AWS_ENDPOINT_URL": "$container_aws_endpoint",
    "KUBECONFIG": "/var/task/kubeconfig",
    # POOLS, not the template's POOLS_PARAMETER (SAM resolves its !Ref to a logical id).
    "POOLS_PARAMETER": "",
    "CLUSTER_NAME": "$RUN",
    "TABLE_NAME": "$table",
    # SAM resolves the template's !Ref EventBus to its logical id; the run's bus instead.
    "EVENT_BUS_NAME": "$bus",
    "VPC_ID": "$vpc",
    "POOLS": json.dumps($pools),
    "WATCH_NAMESPACES": "$ns",
    # The hand-written slices' manager (put_slice), trusted as the local stack trusts it.
    "TRUSTED_ENDPOINTSLICE_MANAGERS": "testbed.nlb-port-pool",
    "LOG_LEVEL": "info",
    # ReachableFn looks for at most 20 s a run (its checks here pass at once: moto's health).
    "REACH_RUN_SECONDS": "20", "REACH_CHECK_SECONDS": "2",
}}, open(sys.argv[1], "w"), indent=2)
PY
}

# --- sam local invoke ---
invoke_count=0
# invoke FUNCTION EVENT_FILE: runs it; sets $response (the function's answer) and $invoke_log.
invoke() {
  local fn=$1 event=$2 out t0 ms
  invoke_count=$((invoke_count + 1))
  out=$WORK/invoke-$invoke_count-$fn
  t0=$(date +%s%N)
  # SAM gives the container the credentials it runs with: the run's key of the IAM gate.
  AWS_ACCESS_KEY_ID=$gate_key "$sam_bin/sam" local invoke "$fn" --template "$template" --event "$event" \
    --parameter-overrides Architecture=x86_64 \
    --invoke-image "$base_image" --skip-pull-image \
    --env-vars "$WORK/env.json" --add-host host.docker.internal:host-gateway \
    --region "$AWS_REGION" > "$out.json" 2> "$out.log" || true
  ms=$((($(date +%s%N) - t0) / 1000000))
  printf '%s\t%s\t%d.%03d s\n' "$fn" "$(basename "$event")" $((ms / 1000)) $((ms % 1000)) >> "$WORK/timings"
  response=$(grep -v '^[[:space:]]*$' "$out.json" | tail -n 1 || true)
  invoke_log=$out.log
  log "sam local invoke $fn -e $(basename "$event"): $((ms / 1000)).$((ms % 1000 / 100)) s"
}
# The function answered without error, with an outcome starting with PREFIX.
answered() { # prefix
  if [ -z "$response" ] || grep -q '"errorType"' <<< "$response"; then
    echo "answer: ${response:-(none)}"
    echo "last lines of $invoke_log:"
    tail -n 15 "$invoke_log"
    return 1
  fi
  local outcome
  outcome=$(json 'd.get("outcome", "")' <<< "$response")
  [[ $outcome == "$1"* ]] || { echo "outcome: $outcome (expected $1...)"; return 1; }
}
# The pool function answered without error, with its per-pool reports.
pool_ran() {
  if [ -z "$response" ] || grep -q '"errorType"' <<< "$response" || ! grep -q '"pools"' <<< "$response"; then
    echo "answer: ${response:-(none)}"
    tail -n 15 "$invoke_log"
    return 1
  fi
}
# The reachability function answered without error, with what it checked.
reach_ran() {
  if [ -z "$response" ] || grep -q '"errorType"' <<< "$response" || ! grep -q '"checked"' <<< "$response"; then
    echo "answer: ${response:-(none)}"
    tail -n 15 "$invoke_log"
    return 1
  fi
}
# The function answered with an error whose message contains TEXT.
refused_with() { # text
  grep -q '"errorType"' <<< "$response" || { echo "expected an error, got: ${response:-(none)}"; tail -n 15 "$invoke_log"; return 1; }
  grep -qi -- "$1" <<< "$response" || { echo "the error does not mention \"$1\": $response"; return 1; }
}
# A sample with namespace, uid and cluster pointed at this run's Service; EXPR edits it more.
sample_event() { # sample file, output file, [python statements on d]
  python3 - "$1" "$2" "$ns" "$sample_uid" "$RUN" "${3:-}" <<'PY'
import json, sys
src, dst, ns, uid, cluster, extra = sys.argv[1:]
d = json.load(open(src))
if d.get("source") == "nlb-port-pool.forwarder":
    d["detail"].update(namespace=ns, uid=uid, cluster=cluster)
exec(extra)
json.dump(d, open(dst, "w"), indent=2)
PY
}

# --- the chart (deploy/chart): rendered for this run, applied, and run as its Deployment says ---
# Its objects have deploy/'s names, so they go over what make_kube_fixtures applied, in deploy/'s
# namespace; the clean-up deletes what only the chart makes and applies deploy/ again.
chart_namespace=nlb-port-pool
apply_chart() {
  local helm
  helm=$(helm_bin)
  [ -x "$helm" ] || { echo "helm is not built: run testbed/bin/install-tools"; return 1; }
  cat > "$WORK/chart-values.yaml" <<YAML
eventBusName: $bus
clusterName: $RUN
region: $AWS_REGION
forwarder:
  image: {repository: "${forwarder_image%:*}", tag: "${forwarder_image##*:}"}
  roleArn: arn:aws:iam::123456789012:role/$RUN-forwarder
  watchNamespaces: [$ns]
  leaseName: $RUN
  extraEnv: [{name: COALESCE_WINDOW, value: 200ms}]
YAML
  "$helm" template "$RUN" deploy/chart --namespace "$chart_namespace" -f "$WORK/chart-values.yaml" \
    > "$WORK/chart.yaml" || return 1
  kubectl apply -f "$WORK/chart.yaml"
}
# The applied ServiceAccount carries the role of the values (IRSA).
chart_role_arn_applied() {
  same "$(kubectl get serviceaccount forwarder -n "$chart_namespace" -o 'jsonpath={.metadata.annotations.eks\.amazonaws\.com/role-arn}')" \
    "arn:aws:iam::123456789012:role/$RUN-forwarder"
}
# What kubelet would make of the applied Deployment's pod, as `docker run` arguments (NUL-separated
# in $WORK/pod-run-args): env with its ConfigMap keys and pod fields resolved, the user, the
# container's securityContext, its port on 127.0.0.1:PORT, then the image and args. Prints the
# pod's ServiceAccount and image.
pod_run_args() { # pod name, host port
  kubectl get deployment forwarder -n "$chart_namespace" -o json > "$WORK/deployment.json" || return 1
  kubectl get configmap -n "$chart_namespace" -o json > "$WORK/configmaps.json" || return 1
  python3 - "$WORK" "$1" "$2" <<'PY'
import json, sys
work, pod_name, host_port = sys.argv[1:]
dep = json.load(open(f"{work}/deployment.json"))
maps = {m["metadata"]["name"]: m.get("data", {}) for m in json.load(open(f"{work}/configmaps.json"))["items"]}
spec = dep["spec"]["template"]["spec"]
[c] = spec["containers"]
fields = {"metadata.name": pod_name, "metadata.namespace": dep["metadata"]["namespace"]}
args = []
for e in c.get("env", []):
    source = e.get("valueFrom")
    if source is None:
        value = e.get("value", "")
    elif "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        value = maps[ref["name"]][ref["key"]]
    elif "fieldRef" in source:
        value = fields[source["fieldRef"]["fieldPath"]]
    else:
        sys.exit(f"env {e['name']}: cannot resolve {source}")
    args += ["-e", f"{e['name']}={value}"]
pod_sc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
user = sc.get("runAsUser", pod_sc.get("runAsUser"))
group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) and not user:
    sys.exit("runAsNonRoot without a non-zero runAsUser")
args += ["--user", f"{user}:{group}"]
if sc.get("readOnlyRootFilesystem"):
    args += ["--read-only"]
for cap in sc.get("capabilities", {}).get("drop", []):
    args += ["--cap-drop", cap]
if sc.get("allowPrivilegeEscalation") is False:
    args += ["--security-opt", "no-new-privileges"]
[port] = c["ports"]
args += ["-p", f"127.0.0.1:{host_port}:{port['containerPort']}"]
if c.get("command"):
    sys.exit("the container sets command: docker run would need --entrypoint")
args += [c["image"]] + c.get("args", [])
open(f"{work}/pod-run-args", "w").write("\0".join(args) + "\0")
print(spec["serviceAccountName"], c["image"])
PY
}
