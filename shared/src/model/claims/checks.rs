//! The reachability work list: Services whose listeners were made (or pods registered) and
//! are not known reachable yet. The tender (the pool function) reads it, checks target health
//! when each item is due, and removes an item once everything it stands for is reachable or its
//! deadline has passed.
//!
//! Items live in one partition (`checks`), one per Service (sort key: its uid), so noting a
//! Service twice (a burst of allocations, a per-pod Service's many pods) is one item.

use async_trait::async_trait;

use super::StoreError;

/// Partition key of the reachability work list.
pub const CHECKS_PK: &str = "checks";

/// A Service whose reachability is to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// The Service's uid (the item's sort key).
    pub uid: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// When it is next checked (seconds since the epoch).
    pub due: i64,
    /// After this, a check still failing is reported and the item dropped.
    pub deadline: i64,
}

/// Storage of the reachability work list.
#[async_trait]
pub trait CheckRecords: Send + Sync {
    /// Notes `item`: a new one as given; an existing one keeps its `due` (it is checked then)
    /// and gets the later deadline.
    async fn note_check(&self, item: &CheckItem) -> Result<(), StoreError>;

    /// Every item, read consistently.
    async fn checks(&self) -> Result<Vec<CheckItem>, StoreError>;

    /// Sets when the item of `uid` is next checked (nothing if it is gone).
    async fn reschedule_check(&self, uid: &str, due: i64) -> Result<(), StoreError>;

    /// Removes the item of `uid`, unless it was noted again after `seen_deadline` was read (a
    /// new allocation since: it is checked again).
    async fn clear_check(&self, uid: &str, seen_deadline: i64) -> Result<(), StoreError>;
}
