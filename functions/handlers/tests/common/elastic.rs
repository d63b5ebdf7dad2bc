//! A stack with a managed pool on the bed: a claims table, a VPC with subnets for the NLBs the
//! pool function makes, a bus for `Pool Low`, and the functions (allocate, release, sweep,
//! pool) signing as their roles through a fault proxy that gives new NLBs AWS's provisioning
//! delay. A `Pool Low` event both reaches the bus (the IAM gate checks it) and wakes a pool
//! runner, which plays EventBridge invoking the pool function (one at a time, as the template's
//! reserved concurrency of 1).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use handlers::{Deps, EventBridgeSignal, PoolSummary};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use lambda_runtime::{Context, LambdaEvent};
use nlb_port_pool::contract::event::DetailType;
use nlb_port_pool::contract::pool_event::{FUNCTIONS_SOURCE, POOL_LOW, PoolLow};
use nlb_port_pool::model::claims::{NlbState, PoolRecords};
use nlb_port_pool::model::config::{FunctionConfig, KubeAccess};
use nlb_port_pool::model::pool::PoolSet;
use nlb_port_pool::model::target_policy::TargetPolicy;
use nlb_port_pool::reconcile::{GrowthSignal, TendSettings};
use testbed::aws_rules::{ProvisioningDelay, RegionalNlbQuota};
use testbed::fault_proxy::{FaultPlan, FaultProxy};
use testbed::iam_gate::{GateStack, StackSpec};
use testbed::{Bed, kube_fixtures, unique_name};
use tokio::sync::Notify;

use super::{CLUSTER, event_for};

/// What a managed pool looks like in a test.
#[derive(Debug, Clone, Copy)]
pub struct Managed {
    pub quota: u32,
    pub min: u32,
    pub max: u32,
    pub spare: u32,
    pub cross_zone: bool,
    /// How long a new NLB reports `provisioning`.
    pub delay: Duration,
    /// The pool function's `NLB_QUOTA` (none: not counted).
    pub nlb_quota: Option<u32>,
    /// The pool function's `POOL_PROVISIONING_LIMIT_SECONDS`.
    pub provisioning_limit: Duration,
    /// How long a pool function run waits for NLBs (none: three delays and 5 s).
    pub wait_active: Option<Duration>,
    /// A second managed pool, `fast` (min 0, spare 0: it grows for waiting Services only).
    pub second_pool: bool,
}

pub struct ManagedStack {
    pub admin: kube::Client,
    pub sdk: SdkConfig,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub namespace: String,
    pub vpc_id: String,
    pub settings: Managed,
    pub allocate: Deps,
    pub release: Deps,
    pub sweep: Deps,
    pub pool: Arc<Deps>,
    /// Made through `delay`: the rule that gives new NLBs AWS's provisioning time.
    pub delay: Arc<ProvisioningDelay>,
    /// The region's NLB quota as AWS enforces it (none until set); the region is the stack's
    /// VPC.
    pub quota: Arc<RegionalNlbQuota>,
    pub gate: GateStack,
    pub wake: Arc<Notify>,
    pub store: Arc<nlb_port_pool::adapters::dynamo::DynamoClaimStore>,
    pub bus: String,
    pub subnets: Vec<String>,
    /// The functions' SDK configuration: through the proxy, signed as the stack's roles.
    pub fn_sdk: SdkConfig,
    _proxy: FaultProxy,
}

impl Drop for ManagedStack {
    fn drop(&mut self) {
        testbed::iam_gate::assert_no_denials_blocking(
            std::slice::from_ref(&self.gate),
            "this managed stack's functions",
        );
    }
}

/// Sends `Pool Low` to the bus, then wakes the pool runner.
struct BusAndRunner {
    bus: EventBridgeSignal,
    wake: Arc<Notify>,
}

#[async_trait]
impl GrowthSignal for BusAndRunner {
    async fn pool_low(&self, cluster: &str, pool: &str, reason: &str) -> Result<(), String> {
        let sent = self.bus.pool_low(cluster, pool, reason).await;
        self.wake.notify_one();
        sent
    }
}

impl ManagedStack {
    pub async fn new(prefix: &str, settings: Managed) -> ManagedStack {
        let bed = Bed::get();
        let sdk = bed.sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let table = unique_name(prefix);
        nlb_port_pool::adapters::dynamo::table::create_table(&dynamodb, &table)
            .await
            .expect("creating the claims table");
        let vpc_id = testbed::moto::create_vpc(&sdk).await;
        let region = bed.region().to_owned();
        let mut subnets = Vec::new();
        for (i, az) in ["a", "b"].iter().enumerate() {
            let cidr = format!("10.0.{}.0/24", i + 1);
            subnets.push(
                testbed::moto::create_subnet(&sdk, &vpc_id, &cidr, &format!("{region}{az}")).await,
            );
        }
        let bus = table.clone();
        aws_sdk_eventbridge::Client::new(&sdk)
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("creating the bus");
        let admin = bed.kube_client().await;
        let namespace = unique_name(prefix);
        kube_fixtures::create_namespace(&admin, &namespace).await;
        let gate = GateStack::register(
            bed,
            &StackSpec {
                stack_name: table.clone(),
                cluster: CLUSTER.to_owned(),
                pool_nlb_arns: vec![],
                vpc_id: vpc_id.clone(),
                table: table.clone(),
                bus: Some(bus.clone()),
            },
        )
        .await
        .expect("registering the stack with the IAM gate");
        let delay = Arc::new(ProvisioningDelay::new(settings.delay));
        let quota = Arc::new(RegionalNlbQuota::new(&vpc_id));
        let proxy = FaultProxy::start_with(
            bed.aws_endpoint(),
            FaultPlan::none(),
            vec![delay.clone(), quota.clone()],
        )
        .await;
        let fn_sdk = bed
            .sdk_config_signed(&proxy.url, &gate.access_key, None)
            .await;
        let wake = Arc::new(Notify::new());
        let fns = Functions::new(
            &config(&table, &vpc_id, &namespace, &subnets, settings),
            &fn_sdk,
            &bus,
            &wake,
            settings,
        );
        ManagedStack {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            store: Arc::new(nlb_port_pool::adapters::dynamo::DynamoClaimStore::new(
                dynamodb.clone(),
                &table,
            )),
            admin,
            sdk,
            dynamodb,
            table,
            namespace,
            vpc_id,
            settings,
            allocate: fns.allocate,
            release: fns.release,
            sweep: fns.sweep,
            pool: Arc::new(fns.pool),
            delay,
            quota,
            gate,
            wake,
            bus,
            subnets,
            fn_sdk,
            _proxy: proxy,
        }
    }

    /// The same stack redeployed with the pool's `min` set to `min`.
    pub async fn with_min(mut self, min: u32) -> ManagedStack {
        self.settings.min = min;
        let config = config(
            &self.table,
            &self.vpc_id,
            &self.namespace,
            &self.subnets,
            self.settings,
        );
        let fns = Functions::new(&config, &self.fn_sdk, &self.bus, &self.wake, self.settings);
        self.allocate = fns.allocate;
        self.release = fns.release;
        self.sweep = fns.sweep;
        self.pool = Arc::new(fns.pool);
        self
    }

    /// Another pool function of this stack (a second invocation running at the same time).
    pub async fn pool_deps_like(stack: &ManagedStack) -> Deps {
        let config = config(
            &stack.table,
            &stack.vpc_id,
            &stack.namespace,
            &stack.subnets,
            stack.settings,
        );
        Functions::new(
            &config,
            &stack.fn_sdk,
            &stack.bus,
            &stack.wake,
            stack.settings,
        )
        .pool
    }

    /// One run of the sweep, as the schedule starts it.
    pub async fn run_sweep(&self) -> handlers::SweepSummary {
        handlers::on_schedule(&self.sweep, super::schedule_event())
            .await
            .expect("the sweep runs")
    }

    /// The uid of Service `name`.
    pub async fn uid(&self, name: &str) -> String {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), &self.namespace);
        api.get(name)
            .await
            .expect("the Service")
            .metadata
            .uid
            .unwrap_or_default()
    }

    /// Deletes Service `name` (it keeps its finalizer until released).
    pub async fn delete(&self, name: &str) {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), &self.namespace);
        api.delete(name, &Default::default())
            .await
            .expect("deleting the Service");
    }

    /// The release function on `Service Deleted` for `name` of `uid`.
    pub async fn deleted(
        &self,
        name: &str,
        uid: &str,
    ) -> Result<handlers::Summary, handlers::Error> {
        handlers::on_service_deleted(
            &self.release,
            event_for(DetailType::ServiceDeleted, &self.namespace, name, uid, true),
        )
        .await
    }

    /// One run of the pool function, as the schedule starts it.
    pub async fn run_pool(&self) -> PoolSummary {
        handlers::on_pool_event(&self.pool, super::schedule_event())
            .await
            .expect("the pool function runs")
    }

    /// Plays EventBridge for `Pool Low`: runs the pool function each time the signal fires,
    /// one run at a time, until the returned handle is aborted.
    pub fn pool_runner(&self) -> tokio::task::JoinHandle<()> {
        let (pool, wake) = (self.pool.clone(), self.wake.clone());
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                let event = pool_low_event("bed signal");
                if let Err(e) = handlers::on_pool_event(&pool, event).await {
                    eprintln!("the pool function failed (EventBridge would retry): {e}");
                }
            }
        })
    }

    /// Creates opted-in Services `names` (one TCP port each), with one ready pod each.
    pub async fn create_rooms(&self, names: &[String]) {
        self.create_rooms_in("default", names).await;
    }

    /// [`ManagedStack::create_rooms`] in pool `pool`.
    pub async fn create_rooms_in(&self, pool: &str, names: &[String]) {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), &self.namespace);
        for name in names {
            let mut svc = kube_fixtures::opted_in_service(
                &self.namespace,
                name,
                &[kube_fixtures::PortSpec::tcp("game", 7777, 8000)],
            );
            svc.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(
                    nlb_port_pool::contract::annotations::POOL.to_owned(),
                    pool.to_owned(),
                );
            api.create(&PostParams::default(), &svc)
                .await
                .expect("creating a Service");
        }
    }

    /// The allocate function on `Service Changed` for `name`.
    pub async fn changed(&self, name: &str) -> Result<handlers::Summary, handlers::Error> {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), &self.namespace);
        let uid = api
            .get(name)
            .await
            .expect("the Service")
            .metadata
            .uid
            .unwrap_or_default();
        handlers::on_service_changed(
            &self.allocate,
            event_for(
                DetailType::ServiceChanged,
                &self.namespace,
                name,
                &uid,
                false,
            ),
        )
        .await
    }

    /// The status annotation of each Service of the namespace.
    pub async fn statuses(&self) -> BTreeMap<String, String> {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), &self.namespace);
        api.list(&Default::default())
            .await
            .expect("listing Services")
            .items
            .into_iter()
            .map(|s| {
                let status = s
                    .metadata
                    .annotations
                    .and_then(|a| a.get(nlb_port_pool::contract::annotations::STATUS).cloned())
                    .unwrap_or_default();
                (s.metadata.name.unwrap_or_default(), status)
            })
            .collect()
    }

    /// The pool's members: (ARN, state of its item).
    pub async fn members(&self) -> Vec<(String, Option<NlbState>)> {
        self.members_of("default").await
    }

    /// Pool `pool`'s members: (ARN, state of its item).
    pub async fn members_of(&self, pool: &str) -> Vec<(String, Option<NlbState>)> {
        let record = self.store.pool_record(pool).await.expect("pool record");
        let arns = record.member_arns();
        let usage = nlb_port_pool::model::claims::ClaimStore::nlb_usage(self.store.as_ref(), &arns)
            .await
            .expect("NLB usage");
        usage.into_iter().map(|u| (u.nlb_arn, u.state)).collect()
    }

    /// The NLBs in moto made for this stack's pool (by its cluster and pool tags, in its VPC).
    pub async fn made_nlbs(&self) -> BTreeSet<String> {
        self.made_nlbs_named().await.into_keys().collect()
    }

    /// [`ManagedStack::made_nlbs`] with their names.
    pub async fn made_nlbs_named(&self) -> BTreeMap<String, String> {
        // Every page: the shared bed holds other tests' NLBs too.
        let all: Vec<aws_sdk_elasticloadbalancingv2::types::LoadBalancer> = self
            .elb
            .describe_load_balancers()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .expect("describing NLBs");
        let names: BTreeMap<String, String> = all
            .iter()
            .filter(|l| l.vpc_id() == Some(self.vpc_id.as_str()))
            .filter_map(|l| {
                Some((
                    l.load_balancer_arn()?.to_owned(),
                    l.load_balancer_name()?.to_owned(),
                ))
            })
            .collect();
        let arns: Vec<String> = names.keys().cloned().collect();
        let mut made = BTreeMap::new();
        for chunk in arns.chunks(20) {
            let tags = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .expect("tags");
            for d in tags.tag_descriptions() {
                if d.tags().iter().any(|t| {
                    t.key() == Some(nlb_port_pool::model::elb::TAG_POOL)
                        && t.value().is_some_and(|v| self.pool_names().contains(&v))
                }) {
                    let arn = d.resource_arn().unwrap_or_default().to_owned();
                    let name = names.get(&arn).cloned().unwrap_or_default();
                    made.insert(arn, name);
                }
            }
        }
        made
    }

    /// Every breach of the invariants (the shared checker over the pool's members, plus the
    /// elastic ones): no claim on an NLB that is not active, no NLB made for the pool that
    /// the pool does not record (an orphan, billed), no more made NLBs than `max`.
    pub async fn breaches(&self) -> Vec<String> {
        // NLBs first, then the records: a member is recorded before its NLB is made, so an
        // NLB seen here has its member in the records read after.
        let made = self.made_nlbs_named().await;
        let mut members = Vec::new();
        for pool in self.pool_names() {
            members.extend(self.members_of(pool).await);
        }
        let world = testbed::invariants::World {
            admin: self.admin.clone(),
            elb: self.elb.clone(),
            dynamodb: self.dynamodb.clone(),
            table: self.table.clone(),
            nlb_arns: members.iter().map(|(a, _)| a.clone()).collect(),
            vpc_id: self.vpc_id.clone(),
            namespaces: vec![self.namespace.clone()],
        };
        let mut breaches = world.breaches(self.settings.quota as usize).await;
        let claims = testbed::invariants::Claims::read(&self.dynamodb, &self.table).await;
        for (nlb, port) in claims.ports.keys() {
            match members.iter().find(|(a, _)| a == nlb) {
                Some((_, Some(NlbState::Active))) => {}
                // Draining with claims: only an NLB gone out of band, whose claims move.
                Some((_, Some(NlbState::Draining))) if !self.exists(nlb).await => {}
                other => breaches.push(format!("port {port} claimed on {nlb}, which is {other:?}")),
            }
        }
        let recorded: BTreeSet<String> = members.iter().map(|(a, _)| a.clone()).collect();
        // A member whose ARN is not recorded yet is being made (its grower is between
        // CreateLoadBalancer and the record): its NLB is no orphan.
        let mut being_made = BTreeSet::new();
        for pool in self.pool_names() {
            let record = self.store.pool_record(pool).await.expect("pool record");
            being_made.extend(
                record
                    .members
                    .into_iter()
                    .filter(|m| m.arn.is_none())
                    .map(|m| m.name),
            );
        }
        for (made, name) in made {
            if !recorded.contains(&made) && !being_made.contains(&name) {
                breaches.push(format!(
                    "NLB {made} ({name}) was made for the pool but is not recorded"
                ));
            }
        }
        if recorded.len() > self.settings.max as usize * self.pool_names().len() {
            breaches.push(format!(
                "{} made NLBs, max {}",
                recorded.len(),
                self.settings.max
            ));
        }
        breaches
    }

    /// The stack's managed pools.
    fn pool_names(&self) -> Vec<&'static str> {
        if self.settings.second_pool {
            vec!["default", "fast"]
        } else {
            vec!["default"]
        }
    }

    async fn exists(&self, nlb: &str) -> bool {
        self.elb
            .describe_load_balancers()
            .load_balancer_arns(nlb)
            .send()
            .await
            .is_ok()
    }
}

/// The functions' configuration: pool `default` managed as `settings` says, in `subnets`.
fn config(
    table: &str,
    vpc_id: &str,
    namespace: &str,
    subnets: &[String],
    settings: Managed,
) -> FunctionConfig {
    let quoted: Vec<String> = subnets.iter().map(|s| format!("\"{s}\"")).collect();
    let fast = if settings.second_pool {
        format!(
            r#","fast":{{"ports":"40000-49999","listenerQuota":{q},"managed":{{"min":0,
                "max":{max},"spare":0,"subnets":[{subnets}]}}}}"#,
            q = settings.quota,
            max = settings.max,
            subnets = quoted.join(",")
        )
    } else {
        String::new()
    };
    let pools = PoolSet::from_json(&format!(
        r#"{{"default":{{"ports":"30000-39999","listenerQuota":{q},"managed":{{"min":{min},
            "max":{max},"spare":{spare},"retireAfterSeconds":60,"crossZone":{cz},
            "subnets":[{subnets}],"tags":{{"team":"bed"}}}}}}{fast}}}"#,
        q = settings.quota,
        min = settings.min,
        max = settings.max,
        spare = settings.spare,
        cz = settings.cross_zone,
        subnets = quoted.join(",")
    ))
    .expect("pools");
    FunctionConfig {
        cluster_name: CLUSTER.to_owned(),
        table_name: table.to_owned(),
        vpc_id: vpc_id.to_owned(),
        pools,
        kube: KubeAccess::Kubeconfig(Bed::get().kubeconfig()),
        namespaces: vec![namespace.to_owned()],
        targets: TargetPolicy::new([kube_fixtures::SLICE_MANAGER], vec![]),
        shared_clusters: vec![],
    }
}

/// The functions of a managed stack, each signing as its own role.
struct Functions {
    allocate: Deps,
    release: Deps,
    sweep: Deps,
    pool: Deps,
}

impl Functions {
    fn new(
        config: &FunctionConfig,
        sdk: &SdkConfig,
        bus: &str,
        wake: &Arc<Notify>,
        settings: Managed,
    ) -> Self {
        let deps = |name: &str| Deps::new(name, config.clone(), sdk, Duration::ZERO);
        let signal = |name: &str| {
            let mut events = aws_sdk_eventbridge::config::Builder::from(sdk);
            events.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name(name));
            Arc::new(BusAndRunner {
                bus: EventBridgeSignal::new(
                    aws_sdk_eventbridge::Client::from_conf(events.build()),
                    bus,
                    name,
                ),
                wake: wake.clone(),
            })
        };
        let mut pool = deps("pool");
        pool.tend_settings = TendSettings {
            wait_active: settings
                .wait_active
                .unwrap_or(settings.delay * 3 + Duration::from_secs(5)),
            poll: Duration::from_millis(250),
            nlb_quota: settings.nlb_quota,
            provisioning_limit: settings.provisioning_limit,
            ..TendSettings::default()
        };
        Self {
            allocate: deps("allocate").with_growth_signal(signal("allocate")),
            release: deps("release"),
            sweep: deps("sweep").with_growth_signal(signal("sweep")),
            pool,
        }
    }
}

/// A `Pool Low` event for pool `default` of the bed's cluster.
pub fn pool_low_event(reason: &str) -> handlers::Event {
    let detail = serde_json::to_value(PoolLow::new(CLUSTER, "default", reason)).expect("detail");
    let payload: EventBridgeEvent<serde_json::Value> = serde_json::from_value(serde_json::json!({
        "version": "0", "id": "p", "detail-type": POOL_LOW, "source": FUNCTIONS_SOURCE,
        "account": "123456789012", "time": "2026-11-26T10:00:00Z", "region": "us-west-2",
        "resources": [], "detail": detail
    }))
    .expect("Pool Low event");
    LambdaEvent::new(payload, Context::default())
}
