//! Failpoints: named places between the steps of allocate and release where a test can make
//! a run stop, as if the Lambda were killed there. Compiled in only with the `failpoints`
//! feature (enabled by the test suites, never by the functions' builds); without it every
//! check is an empty inline function.

/// The step boundaries, in the order a run passes them.
pub const ALL: [&str; 8] = [
    ENSURE_AFTER_CLAIM,
    ENSURE_AFTER_LISTENERS,
    ENSURE_AFTER_RECORD,
    ENSURE_AFTER_OUTPUTS,
    RELEASE_AFTER_LISTENERS,
    RELEASE_AFTER_TARGET_GROUPS,
    RELEASE_AFTER_CLAIMS,
    RELEASE_AFTER_OUTPUTS,
];

/// Ports claimed, target groups made, finalizer held; no listener yet.
pub const ENSURE_AFTER_CLAIM: &str = "ensure.after_claim";
/// Listeners made; targets, records and annotations not yet.
pub const ENSURE_AFTER_LISTENERS: &str = "ensure.after_listeners";
/// Targets registered and the claim recorded for a listener; annotations maybe not yet.
pub const ENSURE_AFTER_RECORD: &str = "ensure.after_record";
/// Everything written; the run has not returned.
pub const ENSURE_AFTER_OUTPUTS: &str = "ensure.after_outputs";
/// Listeners deleted; target groups and claims not yet.
pub const RELEASE_AFTER_LISTENERS: &str = "release.after_listeners";
/// Target groups deleted; claims not yet.
pub const RELEASE_AFTER_TARGET_GROUPS: &str = "release.after_target_groups";
/// Claims released; annotations and finalizer not yet.
pub const RELEASE_AFTER_CLAIMS: &str = "release.after_claims";
/// Finalizer removed; the run has not returned.
pub const RELEASE_AFTER_OUTPUTS: &str = "release.after_outputs";

/// The pool function made an NLB (CreateLoadBalancer answered) and has not recorded it yet.
/// Not among [`ALL`]: a boundary of the pool function, not of an allocation.
pub const POOL_AFTER_CREATE: &str = "pool.after_create";

/// The failpoints armed on one reconciler.
#[derive(Debug, Default)]
pub struct Failpoints {
    #[cfg(any(test, feature = "failpoints"))]
    armed: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Failpoints {
    /// Stops the run here (an error) when `name` is armed; the point stays armed.
    #[inline]
    pub fn check(&self, name: &'static str) -> Result<(), crate::reconcile::Error> {
        #[cfg(any(test, feature = "failpoints"))]
        {
            let armed = self
                .armed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if armed.contains(name) {
                return Err(crate::reconcile::Error::Injected(name));
            }
        }
        let _ = name;
        Ok(())
    }

    /// Arms `name`.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn arm(&self, name: &str) {
        self.armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned());
    }

    /// Disarms every point.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn clear(&self) {
        self.armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
