//! What a reconcile did and what an instance measured: the reconciler's answers.

/// What a reconcile did, for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every listener exists; `claimed` of them were claimed by this run.
    Allocated {
        /// Listeners of the Service.
        listeners: usize,
        /// Claimed by this run.
        claimed: usize,
    },
    /// No free port in the pool: the Service waits (status `Pending`).
    Pending(String),
    /// The Service asks for something invalid (status `Error`, Warning Event).
    Rejected(String),
    /// The Service's listeners were released.
    Released {
        /// How many.
        listeners: usize,
    },
    /// Targets were brought in line with the endpoints.
    TargetsSynced {
        /// Registered.
        registered: usize,
        /// Deregistered.
        deregistered: usize,
    },
    /// A per-pod Service's pods were brought in line.
    Pods {
        /// Pods whose listeners exist.
        allocated: usize,
        /// Pods waiting for ports.
        pending: usize,
        /// Pods gone, their ports kept for the grace.
        leaving: usize,
        /// Ports released because their pod was gone longer than the grace.
        released: usize,
    },
    /// Nothing to do (not opted in and holding nothing, or gone).
    Nothing(&'static str),
}

/// What one instance measured since its metrics were last printed (see
/// [`Reconciler::take_run_metrics`] and `crate::reconcile::metrics::run_lines`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMetrics {
    /// Per Service given its first address: seconds from its creation.
    pub service_address_seconds: Vec<i64>,
    /// Per pod given its first address (per-pod mode): seconds from its creation.
    pub pod_address_seconds: Vec<i64>,
    /// Services (and per-pod pods) given ports.
    pub allocations_made: usize,
    /// Reconciles that left a Service (or pods) waiting for a port.
    pub allocations_pending: usize,
    /// Services refused for a bad annotation.
    pub allocations_refused: usize,
    /// Services (or pods) whose ports were released.
    pub releases: usize,
    /// AWS's quota refusals (`TooManyTargetGroups`, `TooManyTargets`) that left a Service
    /// waiting, by quota (the `Quota` dimension of `QuotaRefused`).
    pub quota_refusals: std::collections::BTreeMap<&'static str, usize>,
}
