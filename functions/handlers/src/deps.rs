//! What a function builds once at cold start and reuses for every invocation: the clients every
//! function uses, and those of its role only (see [`Role`]).

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use nlb_port_pool::adapters::aws::{AwsCertificates, AwsLoadBalancing};
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::adapters::kube::client::{KubeAccessError, KubeConnector};
use nlb_port_pool::model::claims::{CheckRecords, CursorStore};
use nlb_port_pool::model::config::{EnvSource, FunctionConfig, ProcessEnv};
use nlb_port_pool::model::elb::NlbFleet;
use nlb_port_pool::reconcile::{GrowthSignal, Reconciler, SweepLimits, TendSettings};

use crate::busy::DEFAULT_BUSY_WAIT;
use crate::invocation::Error;
use crate::role::Role;
use crate::settings::{Settings, StartupError};
use crate::signal::EventBridgeSignal;

/// The function's configuration and clients.
pub struct Deps {
    /// The function's name, reported on Kubernetes Events.
    pub function: String,
    /// The configuration read at start.
    pub config: FunctionConfig,
    /// The reconcile logic with its DynamoDB and ELBv2 clients.
    pub reconciler: Reconciler,
    /// Kubernetes clients, renewed before their credentials expire.
    pub kube: KubeConnector,
    /// How long a Service event's handler keeps trying while another run holds the Service's
    /// claims, before it fails (and EventBridge retries later).
    pub busy_wait: Duration,
    /// How much one sweep run may do (the sweep's).
    pub sweep_limits: SweepLimits,
    /// How the pool function runs (`POOL_WAIT_ACTIVE_SECONDS`, `POOL_POLL_SECONDS`, its limits).
    pub tend_settings: TendSettings,
    /// The sweep's timeout, budgeted when the runtime's deadline is not one Lambda gives (see
    /// [`crate::time_budget`]).
    pub function_timeout: Duration,
    /// The clients of this function's role alone.
    own: OwnClients,
}

/// The clients only one function uses, beside the reconciler every function has.
enum OwnClients {
    /// The Service events' functions (allocate, release, sync-targets): none.
    ServiceEvents,
    /// The sweep's: where it keeps its place between runs.
    Sweep(Arc<dyn CursorStore>),
    /// The pool function's: it alone makes and deletes NLBs (and only its role may).
    Pool(Arc<dyn NlbFleet>),
    /// The reachability function's: the work list it works through (the others only add to it).
    Reachable(Arc<dyn CheckRecords>),
}

impl Deps {
    /// Loads the AWS configuration (which honours `AWS_ENDPOINT_URL`, so local runs reach
    /// moto), then everything else as [`Deps::load`] does, from the process environment.
    pub async fn from_env(function: &str) -> Result<Self, StartupError> {
        let sdk = nlb_port_pool::adapters::aws::sdk::load_sdk_config(function).await;
        Self::load(function, &ProcessEnv, &sdk).await
    }

    /// Reads the function's settings from `source` (see [`crate::settings`]; with `sdk`, AWS is
    /// asked for what the environment only names: the pools' SSM parameter, NLB names, the
    /// cluster's endpoint and CA), then builds its clients.
    pub async fn load(
        function: &str,
        source: &dyn EnvSource,
        sdk: &SdkConfig,
    ) -> Result<Self, StartupError> {
        let role = Role::of(function);
        let settings = Settings::read(function, role, source, sdk).await?;
        Ok(Self::build(function, role, settings, sdk))
    }

    /// Builds the clients from a configuration already read, with every other setting at its
    /// default and no limit of their own on ELBv2 calls (tests and benchmarks against the
    /// local stack).
    pub fn new(
        function: &str,
        config: FunctionConfig,
        sdk: &SdkConfig,
        claim_grace: Duration,
    ) -> Self {
        let settings = Settings::defaults(config, claim_grace);
        Self::build(function, Role::of(function), settings, sdk)
    }

    /// The same dependencies telling `signal` when a managed pool runs low.
    pub fn with_growth_signal(mut self, signal: Arc<dyn GrowthSignal>) -> Self {
        self.reconciler = self.reconciler.with_growth_signal(signal);
        self
    }

    /// Builds what `function` (of role `role`) uses, and nothing else. Every function
    /// reconciles with the claims table (its claims, pool records and reachability list) and
    /// ELBv2 (its writes at most at the settings' rate); then, by role:
    ///
    /// | role              | ACM (certificates) | EventBridge (signals)  | of its own         |
    /// |-------------------|--------------------|------------------------|--------------------|
    /// | allocate, sync    | yes                | Pool Low, checks due   |                    |
    /// | release           |                    |                        |                    |
    /// | sweep             | yes                | Pool Low, checks due   | cursor store       |
    /// | pool              | yes                | checks due             | NLB fleet          |
    /// | reachable         | yes                | Pool Low, checks due   | reachability list  |
    ///
    /// EventBridge only when `EVENT_BUS_NAME` names a bus.
    fn build(function: &str, role: Role, settings: Settings, sdk: &SdkConfig) -> Self {
        // The clients carry the function's app id whatever `sdk` was loaded with (tests pass
        // one configuration to every function), so each call names its function.
        let app = nlb_port_pool::adapters::aws::sdk::app_name(function);
        let Settings {
            config,
            claim_grace,
            stack_id,
            write_rate,
            event_bus,
            reach,
            sweep_limits,
            function_timeout,
            tend,
        } = settings;
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        dynamodb.set_app_name(app.clone());
        let store = Arc::new(DynamoClaimStore::new(
            aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            &config.table_name,
        ));
        let mut elbv2 = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk);
        elbv2.set_app_name(app.clone());
        let elb = AwsLoadBalancing::new(aws_sdk_elasticloadbalancingv2::Client::from_conf(
            elbv2.build(),
        ))
        .with_write_rate(write_rate);
        let mut reconciler = Reconciler::new(
            &config.cluster_name,
            &config.vpc_id,
            config.pools.clone(),
            store.clone(),
            Arc::new(elb.clone()),
        )
        .with_claim_grace(claim_grace)
        .with_target_policy(config.targets.clone())
        .with_pool_records(store.clone())
        .with_check_records(store.clone())
        .with_stack_id(stack_id)
        .with_shared_clusters(config.shared_clusters.clone())
        .with_reach_settings(reach);
        if role.makes_listeners() {
            let mut acm = aws_sdk_acm::config::Builder::from(sdk);
            acm.set_app_name(app.clone());
            let certificates = AwsCertificates::new(aws_sdk_acm::Client::from_conf(acm.build()));
            reconciler = reconciler.with_certificates(Arc::new(certificates));
        }
        if let Some(bus) = event_bus.filter(|_| role != Role::Releases) {
            let mut events = aws_sdk_eventbridge::config::Builder::from(sdk);
            events.set_app_name(app);
            let client = aws_sdk_eventbridge::Client::from_conf(events.build());
            let mut signal = EventBridgeSignal::new(client, &bus, function);
            // The pool function does not signal itself. The reachability function notes no
            // check itself (its passes are rechecks), so it never signals itself; it may find a
            // per-pod Service's new pods waiting for ports: Pool Low.
            if role == Role::TendsPools {
                signal = signal.without_pool_low();
            }
            reconciler = reconciler.with_growth_signal(Arc::new(signal));
        }
        let own = match role {
            Role::Allocates | Role::Releases => OwnClients::ServiceEvents,
            Role::Sweeps => OwnClients::Sweep(store),
            Role::TendsPools => OwnClients::Pool(Arc::new(elb)),
            Role::ChecksReach => OwnClients::Reachable(store),
        };
        Self {
            function: function.to_owned(),
            kube: KubeConnector::new(config.kube.clone(), &config.cluster_name, sdk),
            config,
            reconciler,
            busy_wait: DEFAULT_BUSY_WAIT,
            sweep_limits,
            tend_settings: tend,
            function_timeout,
            own,
        }
    }

    /// The cluster as this invocation sees it.
    pub async fn cluster(&self) -> Result<KubeCluster, KubeAccessError> {
        let client = self.kube.client().await?;
        Ok(
            KubeCluster::new(client, &self.config.cluster_name, &self.function)
                .with_namespaces(&self.config.namespaces),
        )
    }

    /// The sweep's cursor store; an error in a function not built as the sweep.
    pub(crate) fn cursors(&self) -> Result<&dyn CursorStore, Error> {
        match &self.own {
            OwnClients::Sweep(cursors) => Ok(cursors.as_ref()),
            _ => Err(self.not_built_as("the sweep")),
        }
    }

    /// The pool function's NLB fleet; an error in a function not built as the pool function.
    pub(crate) fn fleet(&self) -> Result<&dyn NlbFleet, Error> {
        match &self.own {
            OwnClients::Pool(fleet) => Ok(fleet.as_ref()),
            _ => Err(self.not_built_as("the pool function")),
        }
    }

    /// The reachability list; an error in a function not built as the reachability function.
    pub(crate) fn checks(&self) -> Result<&dyn CheckRecords, Error> {
        match &self.own {
            OwnClients::Reachable(checks) => Ok(checks.as_ref()),
            _ => Err(self.not_built_as("the reachability function")),
        }
    }

    fn not_built_as(&self, what: &str) -> Error {
        format!("function {:?} is not built as {what}", self.function).into()
    }
}

/// Prints what this instance's reconciler measured since the last print as EMF lines: the
/// latencies from creation to address (`ServiceAddressSeconds`, `PodAddressSeconds`) and the
/// allocation outcomes (`AllocationsMade`, ...) of `deps.function`.
pub fn print_run_metrics(deps: &Deps, timestamp_ms: i64) {
    let measured = deps.reconciler.take_run_metrics();
    for line in
        nlb_port_pool::reconcile::metrics::run_lines(&deps.function, &measured, timestamp_ms)
    {
        println!("{line}");
    }
}
