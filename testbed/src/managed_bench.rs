//! What the managed-pool benchmarks (`bench_elastic`, `bench_per_pod`) start from: a claims
//! table, a VPC with subnets and no NLB, a managed pool, and the functions' AWS calls going
//! through a fault proxy whose rules give moto AWS's delays.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use nlb_port_pool::model::pool::PoolSet;
use nlb_port_pool::reconcile::GrowthSignal;
use tokio::sync::Notify;

use crate::aws_rules::ElbRule;
use crate::fault_proxy::{FaultPlan, FaultProxy};
use crate::{Bed, unique_name};

/// The managed pool's shape.
#[derive(Debug, Clone, Copy)]
pub struct PoolShape {
    /// Listeners per NLB.
    pub quota: u32,
    /// Made NLBs kept at the least.
    pub min: u32,
    /// Made NLBs at the most.
    pub max: u32,
    /// Free listeners kept ready.
    pub spare: u32,
    /// How long an empty made NLB waits before it is retired.
    pub retire_after_seconds: u64,
}

/// A benchmark's AWS side.
pub struct ManagedPoolBed {
    /// The fault proxy the functions' calls go through (dropping it stops it).
    pub proxy: FaultProxy,
    /// The functions' SDK configuration (through the proxy, with generous timeouts: the
    /// benchmark measures, it does not test timeouts).
    pub sdk: SdkConfig,
    /// Straight to the bed, as the admin (setting up, reading the result).
    pub admin_sdk: SdkConfig,
    /// The claims table's name.
    pub table: String,
    /// The VPC of the pool's subnets.
    pub vpc: String,
    /// The one pool, `default`, ports 30000-39999, managed as `shape` says.
    pub pools: PoolSet,
}

impl ManagedPoolBed {
    /// Makes the table, the VPC and the pool under names starting with `prefix`, and a proxy
    /// applying `rules`.
    pub async fn start(prefix: &str, shape: PoolShape, rules: Vec<Arc<dyn ElbRule>>) -> Self {
        let bed = Bed::get();
        let admin_sdk = bed.sdk_config().await;
        let proxy = FaultProxy::start_with(bed.aws_endpoint(), FaultPlan::none(), rules).await;
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(180))
            .build();
        let sdk = bed.sdk_config_at(&proxy.url, Some(timeouts)).await;
        let table = unique_name(prefix);
        let dynamodb = aws_sdk_dynamodb::Client::new(&admin_sdk);
        nlb_port_pool::adapters::dynamo::table::create_table(&dynamodb, &table)
            .await
            .expect("the claims table");
        let (_, vpc, subnets) = crate::moto::create_nlbs_with_subnets(&admin_sdk, prefix, 0).await;
        let pools = PoolSet::from_json(
            &serde_json::json!({"default": {"ports": "30000-39999", "listenerQuota": shape.quota,
                "managed": {"min": shape.min, "max": shape.max, "spare": shape.spare,
                            "retireAfterSeconds": shape.retire_after_seconds,
                            "subnets": subnets}}})
            .to_string(),
        )
        .expect("pools");
        Self {
            proxy,
            sdk,
            admin_sdk,
            table,
            vpc,
            pools,
        }
    }
}

/// Wakes a benchmark's pool runner on Pool Low, as the rule on the bus wakes the pool function
/// (other signals are left to their own loops).
pub struct WakeOnPoolLow(pub Arc<Notify>);

#[async_trait]
impl GrowthSignal for WakeOnPoolLow {
    async fn pool_low(&self, _cluster: &str, _pool: &str, _reason: &str) -> Result<(), String> {
        self.0.notify_one();
        Ok(())
    }
}
