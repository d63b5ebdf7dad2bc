//! `kubectl-nlb_pool` against the test bed, as an operator runs it: the binary, with the
//! stack's variables, signing as the template's OperatorRole (the IAM gate checks every call
//! against its policy) and acting in Kubernetes as the group deploy/operator-rbac.yaml binds.
//! Outputs are checked by structure (JSON), not by figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ProtocolEnum, Tag, TargetTypeEnum,
};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::contract::annotations;
use nlb_port_pool::model::elb::{TAG_CLUSTER, TAG_MANAGED};
use nlb_port_pool::model::target_policy::TargetPolicy;
use nlb_port_pool::reconcile::Reconciler;
use serde_json::Value;
use testbed::iam_gate::{GateStack, StackSpec};
use testbed::kube_fixtures::{self, PortSpec, SLICE_MANAGER};
use testbed::moto::pool_fixture;
use testbed::{Bed, unique_name};

const OPERATORS: &str = "nlb-port-pool:operators";

/// The world one test reads: a pool of two NLBs, a namespace with an allocated room and a
/// refused one, a leaked listener and target group, a dead letter.
struct World {
    env: BTreeMap<&'static str, String>,
    namespace: String,
    gate: GateStack,
    leaked_listener: String,
    orphan_group: String,
    operator_kube: kube::Client,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A kubeconfig that is the bed's admin impersonating a member of the operators' group.
fn operator_kubeconfig(bed: &Bed, dir: &Path) -> PathBuf {
    let mut config =
        kube::config::Kubeconfig::read_from(bed.kubeconfig()).expect("admin kubeconfig");
    for user in &mut config.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.impersonate = Some("operator@example.com".into());
            auth.impersonate_groups = Some(vec![OPERATORS.into()]);
        }
    }
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_json::to_string(&config).expect("json")).expect("writing it");
    path
}

/// Applies deploy/operator-rbac.yaml once per test process (concurrent applies of one object
/// race to create it).
fn apply_operator_rbac(bed: &Bed) {
    static APPLIED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    APPLIED.get_or_init(|| {
        let out = std::process::Command::new("kubectl")
            .args(["apply", "-f"])
            .arg(workspace().join("deploy/operator-rbac.yaml"))
            .env("KUBECONFIG", bed.kubeconfig())
            .output()
            .expect("running kubectl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

async fn world() -> World {
    let bed = Bed::get();
    apply_operator_rbac(bed);
    let sdk = bed.sdk_config().await;
    let admin = bed.kube_client().await;
    let fixture = pool_fixture(&sdk, "cli", 2, "30000-30099", 50).await;
    let cluster = unique_name("cli");
    let stack_name = unique_name("cli-stack");
    let gate = GateStack::register(
        bed,
        &StackSpec {
            stack_name: stack_name.clone(),
            cluster: cluster.clone(),
            pool_nlb_arns: fixture.nlbs.iter().map(|n| n.arn.clone()).collect(),
            vpc_id: fixture.nlbs[0].vpc_id.clone(),
            table: fixture.table.clone(),
            bus: None,
        },
    )
    .await
    .expect("registering the stack");

    // A room with a ready endpoint, allocated as the functions would; a room they refuse.
    let namespace = unique_name("cli");
    kube_fixtures::create_namespace(&admin, &namespace).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&namespace, "room", &ports),
    )
    .await;
    let slice = kube_fixtures::endpoint_slice(
        &namespace,
        "room-a",
        "room",
        &[("game", 7777, "TCP")],
        &[("10.7.0.1", true)],
    );
    kube_fixtures::create(&admin, &slice).await;
    let refused = kube_fixtures::service(
        &namespace,
        "refused",
        &[
            (annotations::AUTO_ASSIGN, "true"),
            (annotations::MODE, "sideways"),
        ],
        &ports,
    );
    kube_fixtures::create(&admin, &refused).await;
    let reconciler = Reconciler::new(
        &cluster,
        &fixture.nlbs[0].vpc_id,
        fixture.pools.clone(),
        Arc::new(DynamoClaimStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &fixture.table,
        )),
        Arc::new(AwsLoadBalancing::new(
            aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        )),
    )
    .with_target_policy(TargetPolicy::new([SLICE_MANAGER], vec![]));
    let kube_cluster = KubeCluster::new(admin.clone(), &cluster, "cli-test");
    for name in ["room", "refused"] {
        reconciler
            .reconcile_service(&kube_cluster, &namespace, name, None)
            .await
            .expect("reconciles");
    }

    // What the sweep would delete: a listener tagged as the cluster's that no claim holds,
    // and a target group of the cluster's that nothing uses.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let tags = || {
        vec![
            Tag::builder().key(TAG_MANAGED).value("true").build(),
            Tag::builder().key(TAG_CLUSTER).value(&cluster).build(),
        ]
    };
    let group = |name: String| {
        elb.create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Tcp)
            .port(7777)
            .vpc_id(&fixture.nlbs[0].vpc_id)
            .target_type(TargetTypeEnum::Ip)
            .set_tags(Some(tags()))
            .send()
    };
    let arn_of = |out: aws_sdk_elasticloadbalancingv2::operation::create_target_group::CreateTargetGroupOutput| {
        out.target_groups()[0].target_group_arn().expect("an ARN").to_owned()
    };
    let leaked_group = arn_of(group(unique_name("npp-leak")).await.expect("a group"));
    let orphan_group = arn_of(group(unique_name("npp-orphan")).await.expect("a group"));
    let listener = elb
        .create_listener()
        .load_balancer_arn(&fixture.nlbs[1].arn)
        .port(30090)
        .protocol(ProtocolEnum::Tcp)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&leaked_group)
                .build(),
        )
        .set_tags(Some(tags()))
        .send()
        .await
        .expect("a listener");
    let leaked_listener = listener.listeners()[0]
        .listener_arn()
        .expect("an ARN")
        .to_owned();

    // A dead letter in the stack's queue.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name(format!("{stack_name}-dlq"))
        .send()
        .await
        .expect("a queue");
    let queue_url = queue.queue_url().expect("a URL").to_owned();
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body("{}")
        .send()
        .await
        .expect("a message");

    let arns: Vec<String> = fixture
        .nlbs
        .iter()
        .map(|n| format!("\"{}\"", n.arn))
        .collect();
    let pools = format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"30000-30099","listenerQuota":50}}}}"#,
        arns.join(",")
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("cli"));
    std::fs::create_dir_all(&dir).expect("a test directory");
    let kubeconfig = operator_kubeconfig(bed, &dir);
    let operator_kube = {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config");
        kube::Client::try_from(config).expect("client")
    };
    let env = BTreeMap::from([
        ("CLUSTER_NAME", cluster),
        ("TABLE_NAME", fixture.table.clone()),
        ("POOLS", pools),
        ("DEAD_LETTER_QUEUE_URL", queue_url),
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("AWS_ACCESS_KEY_ID", gate.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_ENDPOINT_URL", bed.aws_endpoint().to_owned()),
        ("AWS_REGION", bed.region().to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]);
    World {
        env,
        namespace,
        gate,
        leaked_listener,
        orphan_group,
        operator_kube,
    }
}

fn run(world: &World, args: &[&str], drop_env: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-nlb_pool"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in &world.env {
        if !drop_env.contains(k) {
            cmd.env(k, v);
        }
    }
    cmd.envs(extra.iter().copied());
    cmd.output().expect("running kubectl-nlb_pool")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

#[tokio::test]
async fn status_get_and_doctor_read_the_pool_as_an_operator_may() {
    // GIVEN a pool with an allocated room, a refused one, a leak and a dead letter
    let world = world().await;
    let ns = world.namespace.as_str();

    // WHEN status runs THEN it lists the pool and its NLBs, and the refused room's reason
    let out = run(&world, &["status", "-n", ns, "-o", "json"], &[], &[]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(&out);
    let pool = &status["pools"][0];
    assert_eq!(pool["name"], "default");
    assert_eq!(pool["nlbs"].as_array().map(Vec::len), Some(2));
    assert_eq!(pool["used"], 1);
    assert!(pool["nlbs"][0]["state"] == "pre-made", "{pool}");
    // The leaked listener counts against its NLB's quota.
    let listeners: Vec<i64> = pool["nlbs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n["listeners"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(listeners.iter().sum::<i64>(), 2, "{pool}");
    assert_eq!(status["counts"]["services"]["total"], 2);
    assert_eq!(status["counts"]["services"]["error"], 1);
    let problem = &status["problems"][0];
    assert_eq!(
        (&problem["name"], &problem["state"]),
        (&"refused".into(), &"Error".into())
    );
    assert!(
        problem["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(annotations::MODE),
        "{problem}"
    );
    let table = run(&world, &["status", "-n", ns], &[], &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    for header in ["POOL", "NLB", "LISTENERS/QUOTA", "REASON"] {
        assert!(text.contains(header), "{text}");
    }

    // WHEN get runs on the room THEN it shows its listener, target and claim
    let out = run(
        &world,
        &["get", "svc/room", "-n", ns, "-o", "json"],
        &[],
        &[],
    );
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let room = json(&out);
    assert!(
        room["status"]
            .as_str()
            .is_some_and(|s| s == "Allocated" || s == "Ready"),
        "{room}"
    );
    let listener = &room["listeners"][0];
    assert_eq!(listener["listener_found"], true, "{room}");
    assert_eq!(listener["targets"][0]["target"], "10.7.0.1:7777", "{room}");
    assert_eq!(room["claims"].as_array().map(Vec::len), Some(1), "{room}");
    // Without a name: one row per listener of every Service, the refused one with its status
    let out = run(&world, &["get", "-n", ns, "-o", "json"], &[], &[]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json(&out);
    let owners: Vec<&str> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["owner"].as_str())
        .collect();
    assert_eq!(
        owners,
        [format!("{ns}/refused"), format!("{ns}/room")],
        "{rows}"
    );
    assert!(
        rows[0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("Error:")),
        "{rows}"
    );
    assert_eq!(rows[1]["targets"][0]["target"], "10.7.0.1:7777", "{rows}");
    let missing = run(&world, &["get", "svc/nobody", "-n", ns], &[], &[]);
    assert_eq!(code(&missing), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));

    // WHEN doctor runs THEN it names the leak and the dead letter, and exits 1
    let out = run(&world, &["doctor", "-n", ns, "-o", "json"], &[], &[]);
    assert_eq!(
        code(&out),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doctor = json(&out);
    let found: Vec<(String, String)> = doctor["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["subject"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("listener-without-claim", world.leaked_listener.as_str()),
        ("target-group-without-claim", world.orphan_group.as_str()),
        ("dead-letters", "dead-letter queue"),
    ] {
        assert!(
            found
                .iter()
                .any(|(k, s)| (k.as_str(), s.as_str()) == expected),
            "{expected:?} not in {found:?}"
        );
    }
    assert!(
        !found
            .iter()
            .any(|(k, _)| k == "identity-mismatch" || k == "claim-without-service"),
        "{found:?}"
    );

    // AND every AWS call was within OperatorRole's policy
    world.gate.assert_no_denials().await;
    // AND the operators' group reads but cannot change a Service
    let services: Api<Service> = Api::namespaced(world.operator_kube.clone(), ns);
    let patch = serde_json::json!({"metadata": {"annotations": {"x": "y"}}});
    let refused = services
        .patch("room", &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 403),
        "{refused:?}"
    );
}

#[tokio::test]
async fn bad_settings_and_unreadable_sources_have_their_own_exit_codes() {
    let world = world().await;
    // Missing settings: 2, naming them.
    let out = run(&world, &["status"], &["POOLS", "TABLE_NAME"], &[]);
    assert_eq!(code(&out), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("POOLS") && err.contains("TABLE_NAME"), "{err}");
    // A bad POOLS: 2, naming the problem.
    let out = run(&world, &["status"], &[], &[("POOLS", r#"{"default":{}}"#)]);
    assert_eq!(code(&out), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("POOLS"));
    // A table that does not exist: 3, naming what could not be read.
    let out = run(&world, &["status"], &[], &[("TABLE_NAME", "no-such-table")]);
    assert_eq!(code(&out), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("claims table"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn watch_prints_one_json_document_per_run() {
    let world = world().await;
    let ns = world.namespace.clone();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-nlb_pool"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(world.env.iter().map(|(k, v)| (*k, v.as_str())))
        .args([
            "status",
            "-n",
            &ns,
            "-o",
            "json",
            "--watch",
            "--interval",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("starting --watch");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    for _ in 0..2 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("a run within a minute")
            .expect("reading")
            .expect("a line");
        let doc: Value = serde_json::from_str(&line).expect("one JSON document per line");
        assert_eq!(doc["pools"][0]["name"], "default");
    }
    child.kill().await.expect("stopping it");
}

#[tokio::test]
async fn pools_naming_nlbs_by_name_read_as_the_functions_read_them() {
    // GIVEN the world's pool given by NLB names instead of ARNs (as PoolNlbNames gives them)
    let world = world().await;
    let by_arn: Value = serde_json::from_str(&world.env["POOLS"]).expect("POOLS");
    let names: Vec<String> = by_arn["default"]["nlbArns"]
        .as_array()
        .expect("nlbArns")
        .iter()
        .filter_map(|a| a.as_str().and_then(nlb_port_pool::model::pool::nlb_name_of))
        .map(|n| format!("\"{n}\""))
        .collect();
    assert_eq!(names.len(), 2);
    let by_name = format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"30000-30099","listenerQuota":50}}}}"#,
        names.join(",")
    );

    // WHEN status runs (as the operator, through the IAM gate)
    let ns = world.namespace.as_str();
    let out = run(
        &world,
        &["status", "-n", ns, "-o", "json"],
        &[],
        &[("POOLS", &by_name)],
    );

    // THEN it reads the same pool: both NLBs, found by name
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(&out);
    assert_eq!(status["pools"][0]["nlbs"].as_array().map(Vec::len), Some(2));
    assert_eq!(status["pools"][0]["used"], 1);

    // AND a name no NLB has is a bad setting naming it
    let out = run(
        &world,
        &["status"],
        &[],
        &[(
            "POOLS",
            r#"{"default":{"nlbArns":["no-such-nlb"],"ports":"30000-30099"}}"#,
        )],
    );
    assert_eq!(code(&out), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-nlb"), "{err}");
}
