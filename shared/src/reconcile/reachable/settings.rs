//! How reachability is checked.

use std::time::Duration;

/// How reachability is checked.
#[derive(Debug, Clone, Copy)]
pub struct ReachSettings {
    /// The first check after a Service is noted, and the pause between checks.
    pub check_every: Duration,
    /// How long a Service may stay unreachable before it is reported and dropped.
    pub timeout: Duration,
    /// How long one run of the reachability function keeps checking.
    pub run_for: Duration,
    /// Services checked at once.
    pub concurrency: usize,
}

impl Default for ReachSettings {
    fn default() -> Self {
        Self {
            check_every: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
            run_for: Duration::from_secs(240),
            concurrency: 16,
        }
    }
}
