//! How allocation asks the pool and reachability functions to look now.

use async_trait::async_trait;

/// Asks the pool function to look at a pool now (in AWS: a `Pool Low` event on the bus).
#[async_trait]
pub trait GrowthSignal: Send + Sync {
    /// Pool `pool` of `cluster` is low, for `reason`.
    async fn pool_low(
        &self,
        cluster: &str,
        pool: &str,
        reason: &str,
    ) -> std::result::Result<(), String>;

    /// Services of `cluster` were noted for a reachability check: the reachability function
    /// should look now. The default does nothing (its schedule finds them).
    async fn checks_due(&self, cluster: &str) -> std::result::Result<(), String> {
        let _ = cluster;
        Ok(())
    }
}
