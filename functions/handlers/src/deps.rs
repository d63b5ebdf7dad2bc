//! What a function builds once at cold start and reuses for every invocation.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use nlb_port_pool::certificates::AwsCertificates;
use nlb_port_pool::claims::{CursorStore, DynamoClaimStore};
use nlb_port_pool::cluster::KubeCluster;
use nlb_port_pool::config::{ConfigError, Env, EnvSource, FunctionConfig, ProcessEnv};
use nlb_port_pool::config_source::AwsConfigLookups;
use nlb_port_pool::elb::{AwsLoadBalancing, CallRate};
use nlb_port_pool::kube_access::{KubeAccessError, KubeConnector};
use nlb_port_pool::reconcile::{
    DEFAULT_CLAIM_GRACE, DEFAULT_MAX_DELETIONS, DEFAULT_STACK_ID, ReachSettings, Reconciler,
    SweepLimits, TendSettings,
};

/// A function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The runtime's `AWS_LAMBDA_FUNCTION_TIMEOUT` is not a timeout.
    #[error("{0}")]
    Timeout(String),
}

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
    /// Where the sweep keeps its place.
    pub cursors: Arc<dyn CursorStore>,
    /// How much one sweep run may do.
    pub sweep_limits: SweepLimits,
    /// How long a handler keeps trying while another run holds the Service's claims, before
    /// it fails (and EventBridge retries later).
    pub busy_wait: Duration,
    /// How the pool function runs (`POOL_WAIT_ACTIVE_SECONDS`, `POOL_POLL_SECONDS`).
    pub tend_settings: TendSettings,
    /// The function's timeout, budgeted when the runtime's deadline is not one Lambda gives
    /// (see [`crate::time_budget`]).
    pub function_timeout: Duration,
}

/// The default of [`Deps::busy_wait`]: long enough for a duplicate delivery to wait out the
/// run it met (an allocation takes about a second in AWS, more when ELBv2 throttles), short
/// next to the functions' 60 s timeout.
pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_secs(10);

/// Each instance's ELBv2 calls that change things, unless `ELB_WRITES_PER_SECOND` and
/// `ELB_WRITE_BURST` say otherwise: ten at once after a quiet spell (a Service of five
/// listeners, target groups and listeners), then one every four seconds. At the template's
/// default reserved concurrency the functions then stay within two thirds of the account's
/// mutating bucket and about half of its registration bucket (docs/deploy.md, "The AWS API
/// budget").
pub const DEFAULT_WRITE_RATE: CallRate = CallRate {
    per_second: 0.25,
    burst: 10,
};

impl Deps {
    /// Loads the AWS configuration (which honours `AWS_ENDPOINT_URL`, so local runs reach
    /// moto), then everything else as [`Deps::load`] does, from the process environment.
    pub async fn from_env(function: &str) -> Result<Self, StartupError> {
        let sdk = nlb_port_pool::aws::load_sdk_config(function).await;
        Self::load(function, &ProcessEnv, &sdk).await
    }

    /// Reads every setting from `source`, the one place a function's configuration is read:
    /// [`FunctionConfig::load`] (which asks AWS, with `sdk`, for what the environment only
    /// names: the pools' SSM parameter, NLB names, the cluster's endpoint and CA), then the
    /// functions' tuning variables.
    pub async fn load(
        function: &str,
        source: &dyn EnvSource,
        sdk: &SdkConfig,
    ) -> Result<Self, StartupError> {
        let config = FunctionConfig::load(source, &AwsConfigLookups::new(sdk, function)).await?;
        let env = Env::new(source);
        let grace_seconds = env.parsed_or("CLAIM_GRACE_SECONDS", DEFAULT_CLAIM_GRACE.as_secs())?;
        // The template sets STACK_ID to AWS::StackId; local runs share one fixed id.
        let stack_id = env
            .optional("STACK_ID")
            .unwrap_or_else(|| DEFAULT_STACK_ID.to_owned());
        let max_deletions = env.parsed_or("SWEEP_MAX_DELETIONS", DEFAULT_MAX_DELETIONS)?;
        let defaults = TendSettings::default();
        let wait_active =
            env.parsed_or("POOL_WAIT_ACTIVE_SECONDS", defaults.wait_active.as_secs())?;
        let poll = env.parsed_or("POOL_POLL_SECONDS", defaults.poll.as_secs())?;
        let bus = env.optional("EVENT_BUS_NAME");
        let reach_defaults = ReachSettings::default();
        let reach = ReachSettings {
            check_every: Duration::from_secs(
                env.parsed_or("REACH_CHECK_SECONDS", reach_defaults.check_every.as_secs())?
                    .max(1),
            ),
            timeout: Duration::from_secs(
                env.parsed_or("REACH_TIMEOUT_SECONDS", reach_defaults.timeout.as_secs())?,
            ),
            run_for: Duration::from_secs(
                env.parsed_or("REACH_RUN_SECONDS", reach_defaults.run_for.as_secs())?,
            ),
            concurrency: reach_defaults.concurrency,
        };
        let write_rate = CallRate {
            per_second: env.parsed_or("ELB_WRITES_PER_SECOND", DEFAULT_WRITE_RATE.per_second)?,
            burst: env.parsed_or("ELB_WRITE_BURST", DEFAULT_WRITE_RATE.burst)?,
        };
        let sweep_defaults = SweepLimits::default();
        let services_per_run =
            env.parsed_or("SWEEP_SERVICES_PER_RUN", sweep_defaults.services_per_run)?;
        let retries_per_run =
            env.parsed_or("SWEEP_RETRIES_PER_RUN", sweep_defaults.retries_per_run)?;
        let function_timeout = crate::time_budget::configured_timeout(
            env.optional("AWS_LAMBDA_FUNCTION_TIMEOUT").as_deref(),
        )
        .map_err(StartupError::Timeout)?;
        let grace = Duration::from_secs(grace_seconds);
        let mut deps =
            Self::build(function, config, sdk, grace, write_rate).with_stack_id(&stack_id);
        deps.sweep_limits.max_deletions = max_deletions;
        deps.sweep_limits.services_per_run = services_per_run;
        deps.sweep_limits.retries_per_run = retries_per_run;
        deps.tend_settings.wait_active = Duration::from_secs(wait_active);
        deps.tend_settings.poll = Duration::from_secs(poll.max(1));
        deps.reconciler = deps.reconciler.with_reach_settings(reach);
        deps.function_timeout = function_timeout;
        if let Some(bus) = bus {
            deps = deps.with_event_bus(sdk, &bus);
        }
        Ok(deps)
    }

    /// The same dependencies for the stack `stack_id` (recorded in, and checked against, the
    /// claims table's identity).
    pub fn with_stack_id(mut self, stack_id: &str) -> Self {
        self.reconciler = self.reconciler.with_stack_id(stack_id);
        self
    }

    /// Signals through events on `bus`: `Pool Low` to the pool function when a managed pool
    /// runs low (not from the pool function itself), `Targets Registered` to the reachable
    /// function when listeners or targets wait for their health checks.
    pub fn with_event_bus(mut self, sdk: &SdkConfig, bus: &str) -> Self {
        // The reachable function notes no check itself (its passes are rechecks), so it never
        // signals itself; it may find a per-pod Service's new pods waiting for ports: Pool Low.
        let mut events = aws_sdk_eventbridge::config::Builder::from(sdk);
        events.set_app_name(nlb_port_pool::aws::app_name(&self.function));
        let client = aws_sdk_eventbridge::Client::from_conf(events.build());
        let mut signal = crate::EventBridgeSignal::new(client, bus, &self.function);
        if self.function == "pool" {
            signal = signal.without_pool_low();
        }
        self.reconciler = self.reconciler.with_growth_signal(Arc::new(signal));
        self
    }

    /// The same dependencies telling `signal` when a managed pool runs low.
    pub fn with_growth_signal(
        mut self,
        signal: Arc<dyn nlb_port_pool::reconcile::GrowthSignal>,
    ) -> Self {
        self.reconciler = self.reconciler.with_growth_signal(signal);
        self
    }

    /// Builds the clients from a configuration already read, with no limit of their own on
    /// ELBv2 calls (tests and benchmarks against the local stack).
    pub fn new(
        function: &str,
        config: FunctionConfig,
        sdk: &SdkConfig,
        claim_grace: Duration,
    ) -> Self {
        Self::build(function, config, sdk, claim_grace, CallRate::UNLIMITED)
    }

    /// Builds the clients; ELBv2 calls that change things go at most at `write_rate`.
    fn build(
        function: &str,
        config: FunctionConfig,
        sdk: &SdkConfig,
        claim_grace: Duration,
        write_rate: CallRate,
    ) -> Self {
        // The clients carry the function's app id whatever `sdk` was loaded with (tests pass
        // one configuration to every function), so each call names its function.
        let app = nlb_port_pool::aws::app_name(function);
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        dynamodb.set_app_name(app.clone());
        let mut elbv2 = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk);
        elbv2.set_app_name(app.clone());
        let mut acm = aws_sdk_acm::config::Builder::from(sdk);
        acm.set_app_name(app);
        let certificates = AwsCertificates::new(aws_sdk_acm::Client::from_conf(acm.build()));
        let store = Arc::new(DynamoClaimStore::new(
            aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            &config.table_name,
        ));
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
        .with_certificates(Arc::new(certificates));
        // Only the pool function makes and deletes NLBs (and only its role may).
        if function == "pool" {
            reconciler = reconciler.with_fleet(Arc::new(elb));
        }
        Self {
            function: function.to_owned(),
            kube: KubeConnector::new(config.kube.clone(), &config.cluster_name, sdk),
            config,
            reconciler,
            cursors: store,
            sweep_limits: SweepLimits::default(),
            busy_wait: DEFAULT_BUSY_WAIT,
            tend_settings: TendSettings::default(),
            function_timeout: crate::time_budget::DEFAULT_FUNCTION_TIMEOUT,
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
}
