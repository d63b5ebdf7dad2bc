//! What a function builds once at cold start and reuses for every invocation.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use nlb_port_pool::claims::{CursorStore, DynamoClaimStore};
use nlb_port_pool::cluster::KubeCluster;
use nlb_port_pool::config::{ConfigError, Env, FunctionConfig, ProcessEnv};
use nlb_port_pool::elb::AwsLoadBalancing;
use nlb_port_pool::kube_access::{KubeAccessError, KubeConnector};
use nlb_port_pool::reconcile::{DEFAULT_CLAIM_GRACE, Reconciler, SweepLimits};

/// A function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
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
}

impl Deps {
    /// Reads the configuration from the environment and loads the AWS configuration (which
    /// honours `AWS_ENDPOINT_URL`, so local runs reach moto).
    pub async fn from_env(function: &str) -> Result<Self, StartupError> {
        let config = FunctionConfig::from_env(&ProcessEnv)?;
        let grace_seconds = Env::new(&ProcessEnv)
            .parsed_or("CLAIM_GRACE_SECONDS", DEFAULT_CLAIM_GRACE.as_secs())?;
        let sdk = nlb_port_pool::aws::load_sdk_config().await;
        Ok(Self::new(
            function,
            config,
            &sdk,
            Duration::from_secs(grace_seconds),
        ))
    }

    /// Builds the clients from a configuration already read.
    pub fn new(
        function: &str,
        config: FunctionConfig,
        sdk: &SdkConfig,
        claim_grace: Duration,
    ) -> Self {
        let store = Arc::new(DynamoClaimStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table_name,
        ));
        let elb = AwsLoadBalancing::new(aws_sdk_elasticloadbalancingv2::Client::new(sdk));
        let reconciler = Reconciler::new(
            &config.cluster_name,
            &config.vpc_id,
            config.pools.clone(),
            store.clone(),
            Arc::new(elb),
        )
        .with_claim_grace(claim_grace)
        .with_target_policy(config.targets.clone());
        Self {
            function: function.to_owned(),
            kube: KubeConnector::new(config.kube.clone(), &config.cluster_name, sdk),
            config,
            reconciler,
            cursors: store,
            sweep_limits: SweepLimits::default(),
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
