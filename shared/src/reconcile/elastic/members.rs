//! What a warm instance remembers of the managed pools: their members as last read, when it
//! last signalled, why a pool cannot grow.

use std::collections::HashMap;
use std::time::Instant;

/// The members of each managed pool as last read.
#[derive(Default)]
pub(crate) struct MemberCache {
    pub(super) pools: std::sync::Mutex<HashMap<String, Vec<String>>>,
    pub(super) signalled: std::sync::Mutex<HashMap<String, Instant>>,
    /// Why each pool cannot grow, as its record last said.
    pub(super) held: std::sync::Mutex<HashMap<String, String>>,
    /// Held while a pool counts the region's NLBs and makes new ones, so two pools growing at
    /// once in one run never both take the quota's last NLB.
    pub(super) growth: tokio::sync::Mutex<()>,
}

impl MemberCache {
    pub(super) fn lock_pools(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
