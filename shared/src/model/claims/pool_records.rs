//! What the claims table records of a managed pool: the NLBs the pool function made, their
//! state, and the Services waiting for ports.
//!
//! Items (partition `pool#<name>`):
//! - the **pool item** (`meta`): `seq`, the counter that numbers made NLBs, and `poolId`, a
//!   random id written with the first member, which names (with the number) and tags them, so
//!   two stacks' pools of the same name never take each other's NLBs;
//! - a **member item** per made NLB (`nlb#<seq>`): its name, creation time, and its ARN once
//!   CreateLoadBalancer answered;
//! - a **waiting item** per Service that went `Pending` for lack of ports (`wait#<uid>`).
//!
//! A made NLB's state lives on its NLB item (`nlb#<arn>`, `meta`), next to its claimed ports,
//! so the claim transaction checks it: `provisioning` -> `active` -> `draining` -> deleted.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use super::errors::StoreError;

/// The `state` of an NLB item that takes claims; an item without `state` takes them too.
pub const NLB_ACTIVE: &str = "active";

/// Where a made NLB is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NlbState {
    /// Made; AWS does not report it active yet. Takes no claim.
    Provisioning,
    /// Takes claims.
    Active,
    /// Being retired (or gone out of band): takes no claim.
    Draining,
}

impl NlbState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => NLB_ACTIVE,
            Self::Draining => "draining",
        }
    }
}

impl fmt::Display for NlbState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NlbState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "provisioning" => Ok(Self::Provisioning),
            "active" => Ok(Self::Active),
            "draining" => Ok(Self::Draining),
            other => Err(format!("unknown NLB state {other:?}")),
        }
    }
}

/// An NLB the pool function made (or is making) for a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMember {
    /// Its number in the pool's sequence.
    pub seq: u64,
    /// Its name, from [`crate::model::pool::managed_nlb_name`].
    pub name: String,
    /// Its ARN, once CreateLoadBalancer answered; `None` while it is being made (or when the
    /// maker stopped before recording it: the next run adopts the NLB by name and tags).
    pub arn: Option<String>,
    /// When the member was added (seconds since the epoch).
    pub created_at: i64,
}

/// A Service that went `Pending` for lack of ports in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingService {
    /// The Service's uid.
    pub uid: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// How many listeners it waits for.
    pub listeners: u32,
    /// Since when it waits (seconds since the epoch).
    pub since: i64,
}

/// A pool's partition, read at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRecord {
    /// The pool's id (none before its first member).
    pub id: Option<String>,
    /// The counter: the highest sequence number given out.
    pub seq: u64,
    /// The made NLBs, by sequence.
    pub members: Vec<PoolMember>,
    /// The Services waiting for ports.
    pub waiting: Vec<WaitingService>,
    /// Why the pool function cannot grow the pool (the region's NLB quota, say), as it last
    /// found; `None` when it can.
    pub held: Option<String>,
}

impl PoolRecord {
    /// The ARNs of the members that have one.
    pub fn member_arns(&self) -> Vec<String> {
        self.members.iter().filter_map(|m| m.arn.clone()).collect()
    }
}

/// The store of managed pools' records. Every change is conditional, so two pool functions (or
/// a pool function and an allocation) racing on one pool converge.
#[async_trait]
pub trait PoolRecords: Send + Sync {
    /// The pool's partition, read consistently.
    async fn pool_record(&self, pool: &str) -> Result<PoolRecord, StoreError>;

    /// Adds `members` (numbered `seq_read + 1 ..`) and moves the counter past them, only if the
    /// counter is still `seq_read` and the pool's id is `pool_id` (written now if it has none).
    /// `Ok(false)`: another grower moved the counter (or wrote another id) first: read again.
    async fn add_members(
        &self,
        pool: &str,
        seq_read: u64,
        pool_id: &str,
        members: &[PoolMember],
    ) -> Result<bool, StoreError>;

    /// Records the ARN of member `seq` and writes the NLB's item in state `provisioning` (if it
    /// has none yet), in one transaction. Recording the same ARN again is a no-op; `Ok(false)`:
    /// the member is gone or records another ARN.
    async fn record_member_arn(
        &self,
        pool: &str,
        seq: u64,
        arn: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Moves the NLB item from `from` to `to`, with no claim on it when `when_empty`. `Ok(false)`:
    /// the item is not in `from` (or has claims).
    async fn set_nlb_state(
        &self,
        nlb_arn: &str,
        from: NlbState,
        to: NlbState,
        when_empty: bool,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Notes since when an active made NLB has had no claim (`Some`, kept if already noted and
    /// only while it has none), or that it has claims again (`None`).
    async fn set_empty_since(&self, nlb_arn: &str, since: Option<i64>) -> Result<(), StoreError>;

    /// Deletes member `seq` and, when it has an ARN, the NLB's item, only if that item is
    /// `draining` with no claim (or already gone). `Ok(false)`: a condition failed.
    async fn remove_member(
        &self,
        pool: &str,
        seq: u64,
        arn: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Notes a Service as waiting for ports (keeping the first `since`).
    async fn note_waiting(&self, pool: &str, waiting: &WaitingService) -> Result<(), StoreError>;

    /// Notes why the pool cannot grow (`None`: it can again), on the pool item, so a Service
    /// that waits is told in its status.
    async fn set_held(&self, pool: &str, reason: Option<&str>) -> Result<(), StoreError>;

    /// Forgets a waiting Service (allocated, released or gone); none noted is a no-op.
    async fn clear_waiting(&self, pool: &str, uid: &str) -> Result<(), StoreError>;
}

#[cfg(test)]
#[path = "pool_records_tests.rs"]
mod tests;
