//! A stack for handler tests: a claims table, NLBs in moto, a namespace in kube-apiserver,
//! and the functions' dependencies pointed at them.
#![allow(dead_code)] // each test file uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use handlers::{Deps, Event};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use lambda_runtime::{Context, LambdaEvent};
use nlb_port_pool::contract::event::{DetailType, EVENT_SOURCE};
use nlb_port_pool::model::config::{FunctionConfig, KubeAccess};
use nlb_port_pool::model::target_policy::TargetPolicy;
use testbed::fault_proxy::{FaultPlan, FaultProxy};
use testbed::iam_gate::{GateStack, StackSpec};
use testbed::moto::{PoolFixture, TestNlb, pool_fixture};
use testbed::{Bed, kube_fixtures, unique_name};

pub mod clusters;
pub mod elastic;
pub mod invariants;
pub mod options;
pub mod pods;

/// The cluster name the tests' events carry.
pub const CLUSTER: &str = "bed";

pub struct Stack {
    pub admin: kube::Client,
    pub sdk: SdkConfig,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub nlbs: Vec<TestNlb>,
    pub namespace: String,
    /// Every namespace of the stack: `namespace` first, then any extra ones.
    pub namespaces: Vec<String>,
    /// The allocate function (Service Changed). Each function runs as its own role: the bed's
    /// IAM gate checks its calls against that role's policy in template.yaml.
    pub deps: Deps,
    /// The release function (Service Deleted).
    pub release: Deps,
    /// The sync-targets function (Endpoints Changed).
    pub sync_targets: Deps,
    /// The sweep function (schedule).
    pub sweep: Deps,
    /// The stack as the IAM gate knows it; dropping the stack fails the test if the gate
    /// refused any call of its functions.
    pub gate: GateStack,
    /// Gate registrations of the same stack on other tables ([`Stack::function_on_table`]).
    pub other_gates: std::sync::Mutex<Vec<GateStack>>,
}

/// The four functions of a stack, each with its own SDK app id (hence role), on `sdk`.
pub struct FunctionDeps {
    pub allocate: Deps,
    pub release: Deps,
    pub sync_targets: Deps,
    pub sweep: Deps,
}

impl FunctionDeps {
    pub fn new(config: &FunctionConfig, sdk: &SdkConfig, grace: Duration) -> Self {
        let deps = |name: &str| Deps::new(name, config.clone(), sdk, grace);
        Self {
            allocate: deps("allocate"),
            release: deps("release"),
            sync_targets: deps("sync-targets"),
            sweep: deps("sweep"),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let mut gates = vec![self.gate.clone()];
        gates.extend(
            self.other_gates
                .lock()
                .map(|g| g.clone())
                .unwrap_or_default(),
        );
        testbed::iam_gate::assert_no_denials_blocking(&gates, "this stack's functions");
    }
}

impl Stack {
    /// A fresh table, `nlbs` NLBs in one pool (`ports`, `quota`), and a namespace.
    pub async fn new(prefix: &str, nlbs: usize, ports: &str, quota: u32) -> Stack {
        Self::with_namespaces(prefix, nlbs, ports, quota, 1).await
    }

    /// As [`Stack::new`], with `count` namespaces, all managed by the stack's functions.
    pub async fn with_namespaces(
        prefix: &str,
        nlbs: usize,
        ports: &str,
        quota: u32,
        count: usize,
    ) -> Stack {
        let bed = Bed::get();
        let sdk = bed.sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let PoolFixture { table, nlbs, pools } =
            pool_fixture(&sdk, prefix, nlbs, ports, quota).await;
        let admin = bed.kube_client().await;
        let mut namespaces = Vec::new();
        for _ in 0..count.max(1) {
            let ns = unique_name(prefix);
            kube_fixtures::create_namespace(&admin, &ns).await;
            namespaces.push(ns);
        }
        let namespace = namespaces[0].clone();
        let config = FunctionConfig {
            cluster_name: CLUSTER.to_owned(),
            table_name: table.clone(),
            vpc_id: nlbs[0].vpc_id.clone(),
            pools,
            kube: KubeAccess::Kubeconfig(bed.kubeconfig()),
            // The bed is shared by parallel tests: each stack manages its own namespaces only.
            namespaces: namespaces.clone(),
            // The tests' hand-written slices are the testbed's (as the local stack allows them).
            targets: TargetPolicy::new([kube_fixtures::SLICE_MANAGER], vec![]),
            shared_clusters: vec![],
        };
        let gate = GateStack::register(
            bed,
            &StackSpec {
                stack_name: table.clone(),
                cluster: CLUSTER.to_owned(),
                pool_nlb_arns: nlbs.iter().map(|n| n.arn.clone()).collect(),
                vpc_id: nlbs[0].vpc_id.clone(),
                table: table.clone(),
                bus: None,
            },
        )
        .await
        .expect("registering the stack with the IAM gate");
        // Grace 0: a test that stops a run midway may take its claims over at once.
        let fns = FunctionDeps::new(&config, &gate.sdk_config(bed).await, Duration::ZERO);
        Stack {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            admin,
            sdk,
            dynamodb,
            table,
            nlbs,
            namespace,
            namespaces,
            deps: fns.allocate,
            release: fns.release,
            sync_targets: fns.sync_targets,
            sweep: fns.sweep,
            gate,
            other_gates: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Function `function` of this stack deployed again with its claims table replaced by
    /// `table` (a restored or new table): the template's roles then name that table.
    pub async fn function_on_table(&self, function: &str, table: &str) -> Deps {
        let bed = Bed::get();
        let gate = GateStack::register(
            bed,
            &StackSpec {
                stack_name: table.to_owned(),
                cluster: CLUSTER.to_owned(),
                pool_nlb_arns: self.nlbs.iter().map(|n| n.arn.clone()).collect(),
                vpc_id: self.nlbs[0].vpc_id.clone(),
                table: table.to_owned(),
                bus: None,
            },
        )
        .await
        .expect("registering the stack with the IAM gate");
        let mut config = self.deps.config.clone();
        config.table_name = table.to_owned();
        let deps = Deps::new(
            function,
            config,
            &gate.sdk_config(bed).await,
            Duration::ZERO,
        );
        if let Ok(mut gates) = self.other_gates.lock() {
            gates.push(gate);
        }
        deps
    }

    /// The same stack redeployed with its pool made of the NLBs `indexes` (of `self.nlbs`)
    /// and `ports`: the functions' config and the template's roles name those NLBs. The
    /// earlier roles' calls stay checked (the gate moves to `other_gates`).
    pub async fn with_pool(mut self, indexes: &[usize], ports: &str, quota: u32) -> Stack {
        let bed = Bed::get();
        let arns: Vec<String> = indexes.iter().map(|i| self.nlbs[*i].arn.clone()).collect();
        let gate = GateStack::register(
            bed,
            &StackSpec {
                stack_name: format!("{}-repooled", self.table),
                cluster: CLUSTER.to_owned(),
                pool_nlb_arns: arns.clone(),
                vpc_id: self.nlbs[0].vpc_id.clone(),
                table: self.table.clone(),
                bus: None,
            },
        )
        .await
        .expect("registering the redeployed stack with the IAM gate");
        let quoted: Vec<String> = arns.iter().map(|a| format!("\"{a}\"")).collect();
        let mut config = self.deps.config.clone();
        config.pools = nlb_port_pool::model::pool::PoolSet::from_json(&format!(
            r#"{{"default":{{"nlbArns":[{}],"ports":"{ports}","listenerQuota":{quota}}}}}"#,
            quoted.join(",")
        ))
        .expect("pools");
        self.redeploy(gate, &config).await;
        self
    }

    /// This stack's functions redeployed as `gate`'s roles with `config`. The earlier roles'
    /// calls stay checked (the gate moves to `other_gates`).
    async fn redeploy(&mut self, gate: GateStack, config: &FunctionConfig) {
        let sdk = gate.sdk_config(Bed::get()).await;
        self.set_functions(FunctionDeps::new(config, &sdk, Duration::ZERO));
        let earlier = std::mem::replace(&mut self.gate, gate);
        if let Ok(mut gates) = self.other_gates.lock() {
            gates.push(earlier);
        }
    }

    /// Service `name` in the stack's namespace, opted in, with one TCP port `game` (7777 ->
    /// 8000).
    pub async fn create_room(&self, name: &str) {
        self.create_service(&kube_fixtures::opted_in_service(
            &self.namespace,
            name,
            &[kube_fixtures::PortSpec::tcp("game", 7777, 8000)],
        ))
        .await;
    }

    /// The endpoints of Service `name` (see [`Stack::create_room`]): one pod at `ip`, port
    /// `game` 8000, ready or not.
    pub async fn room_pod(&self, name: &str, ip: &str, ready: bool) {
        self.put_slice(&kube_fixtures::endpoint_slice(
            &self.namespace,
            &format!("{name}-a"),
            name,
            &[("game", 8000, "TCP")],
            &[(ip, ready)],
        ))
        .await;
    }

    /// A target group someone else made in the NLBs' VPC (no project tags); its ARN.
    pub async fn foreign_target_group(&self) -> String {
        let made = self
            .elb
            .create_target_group()
            .name(unique_name("foreign"))
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
            .port(80)
            .vpc_id(&self.nlbs[0].vpc_id)
            .send()
            .await
            .expect("making a foreign target group");
        made.target_groups()[0]
            .target_group_arn()
            .expect("its ARN")
            .to_owned()
    }

    /// One run of the sweep, as the schedule starts it.
    pub async fn run_sweep(&self) -> handlers::SweepSummary {
        handlers::on_schedule(&self.sweep, schedule_event())
            .await
            .expect("the sweep runs")
    }

    fn set_functions(&mut self, fns: FunctionDeps) {
        self.deps = fns.allocate;
        self.release = fns.release;
        self.sync_targets = fns.sync_targets;
        self.sweep = fns.sweep;
    }

    /// SDK configuration signing as this stack's functions, against `endpoint` (a fault proxy
    /// in front of the bed, say).
    pub async fn function_sdk_at(
        &self,
        endpoint: &str,
        timeouts: Option<aws_config::timeout::TimeoutConfig>,
    ) -> SdkConfig {
        Bed::get()
            .sdk_config_signed(endpoint, &self.gate.access_key, timeouts)
            .await
    }

    /// The same stack, its functions trusting only what `targets` allows.
    pub async fn with_target_policy(mut self, targets: TargetPolicy) -> Stack {
        let sdk = self.gate.sdk_config(Bed::get()).await;
        let mut config = self.deps.config.clone();
        config.targets = targets;
        self.set_functions(FunctionDeps::new(&config, &sdk, Duration::ZERO));
        self
    }

    /// The same stack, its functions talking to AWS through `sdk` (a fault proxy, say; sign
    /// it with [`Stack::function_sdk_at`]).
    pub fn with_function_sdk(mut self, sdk: &SdkConfig) -> Stack {
        let fns = FunctionDeps::new(&self.deps.config, sdk, Duration::ZERO);
        self.set_functions(fns);
        self
    }

    /// The same stack, its functions' AWS calls going through a new fault proxy that fails as
    /// `plan` says; the client gives up an attempt after 1 s (so the proxy's held calls time
    /// out) and retries in standard mode with the project's attempt count and a 20 ms first
    /// backoff. (The project's adaptive mode adds a client-side rate limiter that, after a
    /// throttle, paces a test's few hundred calls to about one a second; what these tests
    /// check is that every retried call converges, which both modes share.)
    pub async fn with_faults(self, plan: FaultPlan) -> (Stack, FaultProxy) {
        let proxy = FaultProxy::start(Bed::get().aws_endpoint(), plan).await;
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .operation_attempt_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_secs(30))
            .build();
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(nlb_port_pool::adapters::aws::sdk::MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(20));
        let sdk = self
            .function_sdk_at(&proxy.url, Some(timeouts))
            .await
            .to_builder()
            .retry_config(retry)
            .build();
        (self.with_function_sdk(&sdk), proxy)
    }

    /// The same stack, its functions waiting `grace` before taking over a claim another run
    /// left unfinished, as deployed functions do (the default of tests is no wait, for tests
    /// that stop runs on purpose).
    pub async fn with_claim_grace(mut self, grace: Duration) -> Stack {
        let sdk = self.gate.sdk_config(Bed::get()).await;
        let fns = FunctionDeps::new(&self.deps.config, &sdk, grace);
        self.set_functions(fns);
        self
    }

    /// Arms failpoint `point` in every function of the stack.
    pub fn arm(&self, point: &str) {
        for deps in [&self.deps, &self.release, &self.sync_targets, &self.sweep] {
            deps.reconciler.failpoints().arm(point);
        }
    }

    /// Clears every armed failpoint.
    pub fn clear_failpoints(&self) {
        for deps in [&self.deps, &self.release, &self.sync_targets, &self.sweep] {
            deps.reconciler.failpoints().clear();
        }
    }

    /// Runs the function that takes `event` (by its detail-type), as EventBridge would.
    pub async fn handle(&self, event: Event) -> Result<handlers::Summary, handlers::Error> {
        let detail_type = event.payload.detail_type.clone();
        match detail_type.as_str() {
            "Service Deleted" => handlers::on_service_deleted(&self.release, event).await,
            "Endpoints Changed" => handlers::on_endpoints_changed(&self.sync_targets, event).await,
            _ => handlers::on_service_changed(&self.deps, event).await,
        }
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.admin.clone(), &self.namespace)
    }

    pub async fn create_service(&self, svc: &Service) -> Service {
        self.services()
            .create(&PostParams::default(), svc)
            .await
            .expect("creating the Service")
    }

    pub async fn put_slice(&self, slice: &EndpointSlice) {
        let api: Api<EndpointSlice> = Api::namespaced(self.admin.clone(), &self.namespace);
        let name = slice.metadata.name.clone().expect("slice name");
        let params = PatchParams::apply("tests").force();
        api.patch(&name, &params, &Patch::Apply(slice))
            .await
            .expect("applying the EndpointSlice");
    }

    pub async fn uid(&self, name: &str) -> String {
        self.services()
            .get(name)
            .await
            .expect("the Service")
            .metadata
            .uid
            .expect("uid")
    }

    pub async fn delete_service(&self, name: &str) {
        self.services()
            .delete(name, &DeleteParams::default())
            .await
            .expect("deleting the Service");
    }

    pub async fn annotations(&self, name: &str) -> BTreeMap<String, String> {
        self.services()
            .get(name)
            .await
            .expect("the Service")
            .metadata
            .annotations
            .unwrap_or_default()
    }

    /// An EventBridge event for Service `name` of this stack's namespace.
    pub fn event(&self, detail_type: DetailType, name: &str, uid: &str, deleting: bool) -> Event {
        let cluster = &self.deps.config.cluster_name;
        event_in(cluster, detail_type, &self.namespace, name, uid, deleting)
    }

    pub async fn changed(&self, name: &str) -> Result<handlers::Summary, handlers::Error> {
        let uid = self.uid(name).await;
        handlers::on_service_changed(
            &self.deps,
            self.event(DetailType::ServiceChanged, name, &uid, false),
        )
        .await
    }

    pub async fn deleted(
        &self,
        name: &str,
        uid: &str,
    ) -> Result<handlers::Summary, handlers::Error> {
        handlers::on_service_deleted(
            &self.release,
            self.event(DetailType::ServiceDeleted, name, uid, true),
        )
        .await
    }

    pub async fn endpoints_changed(
        &self,
        name: &str,
    ) -> Result<handlers::Summary, handlers::Error> {
        let uid = self.uid(name).await;
        handlers::on_endpoints_changed(
            &self.sync_targets,
            self.event(DetailType::EndpointsChanged, name, &uid, false),
        )
        .await
    }

    /// Every listener on the stack's NLBs: (port, protocol, target group ARN, listener ARN).
    pub async fn listeners(&self) -> Vec<(u16, String, String, String)> {
        let mut out = Vec::new();
        for nlb in &self.nlbs {
            let described = match self
                .elb
                .describe_listeners()
                .load_balancer_arn(&nlb.arn)
                .send()
                .await
            {
                Ok(d) => d,
                // A test deleted this NLB out of band.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
                {
                    continue;
                }
                Err(e) => panic!("describing the listeners of {}: {e:?}", nlb.arn),
            };
            for l in described.listeners() {
                out.push((
                    u16::try_from(l.port().unwrap_or_default()).unwrap_or_default(),
                    l.protocol()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    l.default_actions()[0]
                        .target_group_arn()
                        .unwrap_or_default()
                        .to_owned(),
                    l.listener_arn().unwrap_or_default().to_owned(),
                ));
            }
        }
        out
    }

    /// The project's target groups owned by Service uid `uid`.
    pub async fn target_groups_of(&self, uid: &str) -> Vec<String> {
        let all = self
            .elb
            .describe_target_groups()
            .send()
            .await
            .expect("describing target groups");
        let arns: Vec<String> = all
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_owned))
            .collect();
        let mut out = Vec::new();
        for chunk in arns.chunks(20) {
            let tags = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .expect("tags");
            for d in tags.tag_descriptions() {
                if d.tags()
                    .iter()
                    .any(|t| t.key() == Some("nlb-port-pool/service-uid") && t.value() == Some(uid))
                {
                    out.push(d.resource_arn().unwrap_or_default().to_owned());
                }
            }
        }
        out
    }

    /// The `ip:port` targets of a target group.
    pub async fn targets(&self, target_group_arn: &str) -> BTreeSet<String> {
        let health = self
            .elb
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .expect("describing target health");
        health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let t = d.target()?;
                Some(format!("{}:{}", t.id()?, t.port()?))
            })
            .collect()
    }

    /// The claims table's items that hold a claim.
    pub async fn claim_items(&self) -> usize {
        testbed::invariants::Claims::read(&self.dynamodb, &self.table)
            .await
            .items()
    }

    /// The reasons of the Kubernetes Events about Service `name`.
    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
        let api: Api<KubeEvent> = Api::namespaced(self.admin.clone(), &self.namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .expect("listing Events");
        list.items
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter_map(|e| e.reason.clone())
            .collect()
    }
}

impl Stack {
    /// The Kubernetes Events about Service `name`: (type, reason, note).
    pub async fn events_of(&self, name: &str) -> Vec<(String, String, String)> {
        let api: Api<KubeEvent> = Api::namespaced(self.admin.clone(), &self.namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .expect("listing Events");
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The sweep's schedule event, as EventBridge's schedule sends it.
pub fn schedule_event() -> Event {
    let payload: EventBridgeEvent<serde_json::Value> = serde_json::from_value(serde_json::json!({
        "version": "0", "id": "s", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-26T10:00:00Z", "region": "us-west-2",
        "resources": [], "detail": {}
    }))
    .expect("schedule event");
    LambdaEvent::new(payload, Context::default())
}

/// An EventBridge event as the forwarder makes it.
pub fn event_for(
    detail_type: DetailType,
    namespace: &str,
    name: &str,
    uid: &str,
    deleting: bool,
) -> Event {
    event_in(CLUSTER, detail_type, namespace, name, uid, deleting)
}

/// As [`event_for`], about a Service of cluster `cluster`.
pub fn event_in(
    cluster: &str,
    detail_type: DetailType,
    namespace: &str,
    name: &str,
    uid: &str,
    deleting: bool,
) -> Event {
    let payload: EventBridgeEvent<serde_json::Value> = serde_json::from_value(serde_json::json!({
        "version": "0", "id": "test", "detail-type": detail_type.as_str(), "source": EVENT_SOURCE,
        "account": "123456789012", "time": "2026-11-26T10:00:00Z", "region": "us-west-2", "resources": [],
        "detail": {
            "version": 1, "cluster": cluster, "namespace": namespace, "name": name, "uid": uid,
            "resourceVersion": "1", "deleting": deleting, "observedAt": "2026-11-26T10:00:00Z"
        }
    }))
    .expect("event JSON");
    LambdaEvent::new(payload, Context::default())
}
