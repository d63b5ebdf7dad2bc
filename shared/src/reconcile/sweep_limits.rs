//! How much one sweep run may do: its limits, and the deletions on absence it may still make.

use tokio::time::Instant;

/// How much one sweep run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// Services reconciled per run, besides those retried.
    pub services_per_run: usize,
    /// Services retried per run: Pending, in Error, being deleted, with pods leaving, or moving
    /// off an NLB. When more wait, the next run goes on after the last one retried.
    pub retries_per_run: usize,
    /// Pages (400 each) of target groups checked per run.
    pub target_group_pages: usize,
    /// Reconciles, and NLBs read, at once.
    pub concurrency: usize,
    /// Deletions on absence per run: leaked listeners, leaked target groups, and claims of
    /// Services that are gone (each with its listener and target group). The rest wait for
    /// later runs, so a table that lies costs at most this many before an alarm is seen.
    pub max_deletions: usize,
    /// No batch of reconciles and no page of target groups starts after this instant (the
    /// invocation's deadline less a margin); later runs go on from the saved cursor. Tokio's
    /// clock, so tests and benchmarks may pause it.
    pub stop_by: Option<Instant>,
}

/// [`SweepLimits::max_deletions`] unless `SWEEP_MAX_DELETIONS` says otherwise.
pub const DEFAULT_MAX_DELETIONS: usize = 20;

impl Default for SweepLimits {
    fn default() -> Self {
        Self {
            services_per_run: 200,
            retries_per_run: 100,
            target_group_pages: 5,
            concurrency: 8,
            max_deletions: DEFAULT_MAX_DELETIONS,
            stop_by: None,
        }
    }
}

impl SweepLimits {
    /// Whether the run must start no more work.
    pub fn time_is_up(&self) -> bool {
        self.stop_by.is_some_and(|t| Instant::now() >= t)
    }

    /// Reconciles between two saves of the cursor.
    pub(super) fn batch(&self) -> usize {
        self.concurrency.max(1) * 4
    }

    /// Runs that reconcile every one of `services` Services at least once (retries aside).
    pub fn runs_to_check_all(&self, services: usize) -> usize {
        services.div_ceil(self.services_per_run.max(1))
    }
}

/// How many deletions on absence a run may still make, and how many it left.
#[derive(Debug)]
pub(super) struct DeletionBudget {
    left: usize,
    deferred: usize,
}

impl DeletionBudget {
    /// A budget of `left` deletions.
    pub(super) fn new(left: usize) -> Self {
        Self { left, deferred: 0 }
    }

    /// Takes `n` deletions if the budget has them; otherwise counts them as left.
    pub(super) fn take(&mut self, n: usize) -> bool {
        if n <= self.left {
            self.left -= n;
            true
        } else {
            self.deferred += n;
            false
        }
    }

    /// Gives back deletions taken but not made.
    pub(super) fn refund(&mut self, n: usize) {
        self.left += n;
    }

    /// Deletions found but not made: the report's `deletions_left`.
    pub(super) fn deferred(&self) -> usize {
        self.deferred
    }
}
