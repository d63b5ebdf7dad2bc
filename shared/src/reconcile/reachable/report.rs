//! What a check found and what a run of the reachability function did.

use serde::Serialize;

/// What a run of the reachability function did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReachReport {
    /// Checks made.
    pub checked: usize,
    /// Services (or pods) that became `Ready`.
    pub ready: usize,
    /// Readiness gates set True.
    pub gates_set: usize,
    /// Services still waiting at the end of the run.
    pub waiting: usize,
    /// Services reported unreachable at their deadline.
    pub timed_out: usize,
    /// Seconds from pod creation to reachable, of the pods that became reachable.
    pub pod_reachable_seconds: Vec<i64>,
    /// Seconds from creation to `Ready` of each per-Service Service that became ready.
    pub service_reachable_seconds: Vec<i64>,
    /// What failed (the run goes on with the rest).
    pub failures: Vec<String>,
}

/// What one check found.
pub(super) enum Reach {
    /// Everything the Service stands for is reachable (or there is nothing left to check).
    Done,
    /// Not yet, and why.
    Waiting(String),
}

/// What one check changed.
#[derive(Default)]
pub(super) struct Flipped {
    pub ready: usize,
    pub gates: usize,
    pub pod_seconds: Vec<i64>,
    /// Per per-Service Service that became `Ready`: seconds from its creation.
    pub service_seconds: Vec<i64>,
}
