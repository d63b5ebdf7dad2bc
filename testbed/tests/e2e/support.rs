//! A local stack of one test on the shared bed: its own bus, queues, table, NLBs and
//! namespace (the functions and the forwarder see only that namespace), stopped and cleaned
//! at the end, also when the test fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use testbed::local_stack::build::Output;
use testbed::local_stack::{LocalStack, StackConfig};
use testbed::{Bed, kube_fixtures, unique_name};

/// The cluster name of the tests' stacks.
pub const CLUSTER: &str = "e2e";

/// A running stack and the namespace it manages.
pub struct TestStack {
    stack: Option<LocalStack>,
    /// The test's namespace.
    pub namespace: String,
    /// A cluster-admin client.
    pub admin: kube::Client,
    /// Where the stack's logs are.
    pub dir: PathBuf,
}

impl TestStack {
    /// Starts a stack named after `prefix`; `events` adds the forwarder and the delivery loop.
    pub async fn start(prefix: &str, events: bool) -> Self {
        Self::start_with(prefix, events, |_| {}).await
    }

    /// As [`TestStack::start`], with `tweak` adjusting the stack's settings first.
    pub async fn start_with(
        prefix: &str,
        events: bool,
        tweak: impl FnOnce(&mut StackConfig),
    ) -> Self {
        let bed = Bed::get();
        let admin = bed.kube_client().await;
        let namespace = unique_name(prefix);
        kube_fixtures::create_namespace(&admin, &namespace).await;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&namespace);
        let mut config = StackConfig::new(&namespace, dir.clone());
        config.cluster = CLUSTER.into();
        config.namespaces = vec![namespace.clone()];
        config.build_output = Output::Capture;
        config.events = events;
        config.concurrency = 1;
        // The sweep runs on its own event in the samples test, not on a timer here.
        config.delivery.sweep_every = None;
        tweak(&mut config);
        let tag = namespace.clone();
        let progress = move |line: &str| eprintln!("[{tag}] {line}");
        let stack = LocalStack::start(bed, config, &progress)
            .await
            .unwrap_or_else(|e| panic!("starting the local stack: {e:#}"));
        Self {
            stack: Some(stack),
            namespace,
            admin,
            dir,
        }
    }

    /// The running stack.
    pub fn stack(&self) -> &LocalStack {
        self.stack.as_ref().expect("the stack runs")
    }

    /// The running stack, to kill or restart its processes.
    pub fn stack_mut(&mut self) -> &mut LocalStack {
        self.stack.as_mut().expect("the stack runs")
    }

    /// What the invariant checker reads: the stack's table, NLBs and VPC, and the namespace.
    pub fn world(&self) -> testbed::invariants::World {
        let stack = self.stack();
        testbed::invariants::World {
            admin: self.admin.clone(),
            elb: self.elb(),
            dynamodb: aws_sdk_dynamodb::Client::new(&stack.sdk),
            table: stack.aws.table.clone(),
            nlb_arns: stack.aws.nlbs.iter().map(|n| n.arn.clone()).collect(),
            vpc_id: stack.aws.vpc_id().to_owned(),
            namespaces: vec![self.namespace.clone()],
        }
    }

    /// Stops the processes in order and removes what the stack made in moto; then fails the
    /// test if the IAM gate refused any call of the functions or the forwarder.
    pub async fn stop(mut self) {
        if let Some(stack) = self.stack.take() {
            let sdk = stack.sdk.clone();
            let aws = stack.aws.clone();
            let gate = stack.gate.clone();
            stack.stop().await;
            aws.delete(&sdk).await;
            // The namespace goes with its workloads: kwok stops running their pods.
            clean_namespace(&self.admin, &self.namespace).await;
            let _ = Api::<Namespace>::all(self.admin.clone())
                .delete(&self.namespace, &DeleteParams::default())
                .await;
            gate.assert_no_denials().await;
        }
    }

    /// The Services API of the test's namespace.
    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.admin.clone(), &self.namespace)
    }

    /// Waits until Service `name` carries annotation `key`; returns the Service.
    pub async fn wait_for_annotation(&self, name: &str, key: &str, timeout: Duration) -> Service {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let svc = self
                .services()
                .get_opt(name)
                .await
                .expect("reading the Service");
            let notes = svc.as_ref().and_then(|s| s.metadata.annotations.clone());
            if notes.as_ref().is_some_and(|a| a.contains_key(key)) {
                return svc.expect("the Service");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} has no {key} after {timeout:?}; annotations {notes:?}; {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the targets of `target_group_arn` are `expected`.
    pub async fn wait_for_targets(&self, target_group_arn: &str, expected: &[&str]) {
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        let elb = self.elb();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let now: BTreeSet<String> =
                testbed::local_stack::examples::targets(&elb, target_group_arn)
                    .await
                    .expect("reading targets")
                    .into_iter()
                    .collect();
            if now == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "targets are {now:?}, not {expected:?}; {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An ELBv2 client on moto.
    pub fn elb(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.stack().sdk)
    }

    /// Every listener on the pool's NLBs: (port, target group ARN).
    pub async fn listeners(&self) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        for nlb in &self.stack().aws.nlbs {
            let described = self
                .elb()
                .describe_listeners()
                .load_balancer_arn(&nlb.arn)
                .send()
                .await
                .expect("describing listeners");
            for l in described.listeners() {
                let tg = l
                    .default_actions()
                    .first()
                    .and_then(|a| a.target_group_arn());
                out.push((l.port().unwrap_or(0), tg.unwrap_or_default().to_owned()));
            }
        }
        out
    }

    /// The target groups in the pool's VPC.
    pub async fn target_groups(&self) -> Vec<String> {
        let all = self
            .elb()
            .describe_target_groups()
            .send()
            .await
            .expect("describing target groups");
        all.target_groups()
            .iter()
            .filter(|t| t.vpc_id() == Some(self.stack().aws.vpc_id()))
            .filter_map(|t| t.target_group_arn().map(str::to_owned))
            .collect()
    }

    /// Items of the claims table that hold a claim.
    pub async fn claim_items(&self) -> usize {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.stack().sdk);
        testbed::invariants::Claims::read(&dynamodb, &self.stack().aws.table)
            .await
            .items()
    }

    /// Messages in the dead-letter queue (visible or not).
    pub async fn dead_letters(&self) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attrs = aws_sdk_sqs::Client::new(&self.stack().sdk)
            .get_queue_attributes()
            .queue_url(&self.stack().aws.dlq_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("reading the dead-letter queue");
        let n = |a: A| {
            attrs
                .attributes()
                .and_then(|m| m.get(&a))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible)
    }

    /// The last lines of the stack's logs, for failure messages.
    pub fn logs(&self) -> String {
        let tail = |f: &str| {
            let text = std::fs::read_to_string(self.dir.join("logs").join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        format!(
            "functions.log:\n{}\nforwarder.log:\n{}",
            tail("functions.log"),
            tail("forwarder.log")
        )
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // Reached with a stack only when the test failed: its processes stop as their handles
        // drop; the namespace's Services lose their finalizers and the AWS side goes, from a
        // runtime of this thread's own (the test's may be unwinding).
        let Some(stack) = self.stack.take() else {
            return;
        };
        let (sdk, aws, ns) = (stack.sdk.clone(), stack.aws.clone(), self.namespace.clone());
        // The namespace is kept (with its workloads) for a look at what failed.
        drop(stack);
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                clean_namespace(&Bed::get().kube_client().await, &ns).await;
                aws.delete(&sdk).await;
            });
        });
        let _ = done.join();
    }
}

/// Removes every Service of `ns`, finalizers first (best effort).
async fn clean_namespace(admin: &kube::Client, ns: &str) {
    let api: Api<Service> = Api::namespaced(admin.clone(), ns);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return;
    };
    for svc in list {
        let name = svc.metadata.name.unwrap_or_default();
        let clear = json!({"metadata": {"finalizers": null}});
        let _ = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&clear))
            .await;
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
}

/// Runs `kubectl` as the bed's admin with `args`, feeding `stdin`; panics with its output on
/// failure, returns its stdout.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", Bed::get().kubeconfig())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kubectl");
    let mut input = child.stdin.take().expect("kubectl's stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("writing to kubectl");
    drop(input);
    let out = child.wait_with_output().expect("kubectl's output");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A manifest (JSON, which kubectl reads as YAML) of an opted-in Service `name` with one TCP
/// port 7777 and its EndpointSlice with `endpoints` (`ip`, ready).
pub fn room_manifest(ns: &str, name: &str, endpoints: &[(&str, bool)]) -> String {
    let endpoints: Vec<serde_json::Value> = endpoints
        .iter()
        .map(|(ip, ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
        .collect();
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": ns,
                      "annotations": {"nlb.port-manager/auto-assign": "true"}},
         "spec": {"selector": {"app": name},
                  "ports": [{"name": "game", "protocol": "TCP", "port": 7777, "targetPort": 7777}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": format!("{name}-1"), "namespace": ns,
                      "labels": {"kubernetes.io/service-name": name,
                                 "endpointslice.kubernetes.io/managed-by": kube_fixtures::SLICE_MANAGER}},
         "addressType": "IPv4",
         "ports": [{"name": "game", "protocol": "TCP", "port": 7777}],
         "endpoints": endpoints},
    ]})
    .to_string()
}
