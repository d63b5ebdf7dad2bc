//! The sweep's place between runs, kept in the claims table.

use async_trait::async_trait;

use super::errors::StoreError;

/// Where the sweep keeps its place between runs, so each run does a bounded share of the work.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SweepCursor {
    /// The last Service (`namespace/name`) reconciled in the share; the next run starts after it.
    pub services_after: Option<String>,
    /// The last Pending, failed, leaving or moving Service retried; when more wait than a run
    /// may retry, the next run starts after it.
    pub retries_after: Option<String>,
    /// The ELBv2 marker of the next page of target groups to check.
    pub target_group_marker: Option<String>,
    /// The NLBs swept last run: those of the pools then, and those taken out of the pools
    /// since that still had claims. An NLB taken out of `POOLS` is swept until its claims are
    /// gone (its Services moved, its orphans released), so nothing on it leaks.
    pub nlbs: Vec<String>,
}

/// Storage of the [`SweepCursor`].
#[async_trait]
pub trait CursorStore: Send + Sync {
    /// The saved cursor (the default when none was saved).
    async fn load_cursor(&self) -> Result<SweepCursor, StoreError>;
    /// Saves the cursor.
    async fn save_cursor(&self, cursor: &SweepCursor) -> Result<(), StoreError>;
}
