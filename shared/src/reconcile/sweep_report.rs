//! What a sweep run did: the sweep function's answer (its JSON) and its metrics' source.

use serde::Serialize;

/// Use of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUse {
    /// The pool.
    pub pool: String,
    /// Claimed listener ports.
    pub used: usize,
    /// Listener ports the pool can hold.
    pub capacity: usize,
}

impl PoolUse {
    /// Use in percent.
    pub fn percent(&self) -> f64 {
        if self.capacity == 0 {
            // A managed pool with no NLB yet (min 0) is empty, not full: it grows on demand.
            return if self.used == 0 { 0.0 } else { 100.0 };
        }
        self.used as f64 * 100.0 / self.capacity as f64
    }
}

/// What a sweep run did. Serialized (camelCase) it is the sweep function's answer; pool use
/// and the Pending Services are its metrics' only, and left out of it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Use of each pool, read from the claims.
    #[serde(skip)]
    pub pools: Vec<PoolUse>,
    /// Claims released because their Service is gone or was replaced.
    pub orphan_claims_released: usize,
    /// Listeners deleted because no claim accounts for them.
    pub leaked_listeners_deleted: usize,
    /// Target groups deleted because no claim or live Service accounts for them.
    pub leaked_target_groups_deleted: usize,
    /// Services reconciled.
    pub services_reconciled: usize,
    /// Of those, ones that were Pending or in Error.
    pub pending_retried: usize,
    /// Reconciles that failed (logged; the next run tries again).
    pub failures: usize,
    /// Why this run deleted nothing on absence, when it did not: the claims table's identity
    /// is another cluster's or stack's, or is not recorded and the world does not prove to be
    /// this system's. An operator must look (docs/deploy.md).
    pub deletions_blocked: Option<String>,
    /// Deletions found but not made (blocked, or beyond
    /// [`SweepLimits::max_deletions`](super::SweepLimits::max_deletions)); at least this many,
    /// since a run stops checking target groups at the first page it cannot finish.
    pub deletions_left: usize,
    /// NLBs of the pools that do not exist (deleted out of band): the rest of the pool goes
    /// on, and the Services with claims on them are moved. An operator should remove them
    /// from `POOLS`.
    pub nlbs_missing: Vec<String>,
    /// Services with claims on an NLB that is gone or out of the pools, or on a port out of
    /// the pool's range, or whose listener is gone: retried, which moves or repairs them.
    pub services_moved: usize,
    /// Services that needed a retry beyond
    /// [`SweepLimits::retries_per_run`](super::SweepLimits::retries_per_run) (or the stop
    /// time): later runs take them.
    pub retries_left: usize,
    /// The run reached [`SweepLimits::stop_by`](super::SweepLimits::stop_by) and left work to
    /// later runs.
    pub cut_short: bool,
    /// Opted-in Services whose status is `Pending` as the run listed them.
    #[serde(skip)]
    pub services_pending: usize,
    /// Seconds since the creation of the oldest of them (0 when none): what
    /// `PendingTooLongAlarm` watches.
    #[serde(skip)]
    pub oldest_pending_seconds: i64,
}
