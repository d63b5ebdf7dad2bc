//! Port claims: who owns which (NLB, port), kept in DynamoDB with conditional writes.
//!
//! Three kinds of item live in one table (partition key `pk`, sort key `sk`):
//! - the **NLB item** (`nlb#<arn>`, `meta`): how many ports are claimed and which;
//! - a **port item** per claimed port (`nlb#<arn>`, `port#<port>`): the owner Service's uid;
//! - an **owner record** per listener of a Service (`owner#<uid>`, `<listener key>`): the claim
//!   seen from the Service, with the ARNs of what was made for it;
//! - the **identity item** (`identity`, `meta`): whose cluster and stack the table describes
//!   (see [`identity`]), and the sweep's cursor (`sweep`, `cursor`);
//! - for a managed pool, the **pool partition** (`pool#<name>`): its counter, the NLBs the pool
//!   function made and the Services waiting for ports (see [`PoolRecords`]).
//!
//! A claim writes all three in one transaction, so a port is owned at most once, an NLB never
//! exceeds its quota, and a Service port never holds two claims, whatever runs concurrently.
//!
//! Every owner record also names the run that holds it (its [`RunToken`]) and since when. A run
//! changes a claim (records its ARNs, lets it go, releases it) only on the condition that it
//! still holds it; it takes over another run's claim only when that run let it go or has not
//! confirmed its hold for longer than the grace, on the condition that the old holder is still
//! the one it read. Two runs therefore never both act on one claim, and a run that was
//! overtaken learns it at its next write instead of undoing the newer run's work.

mod batches;
pub mod checks;
mod dynamo;
pub mod identity;
pub mod listing;
#[cfg(any(test, feature = "test-doubles"))]
mod memory;
mod pool_records;
mod record;
pub mod table;
mod token;

use std::collections::BTreeSet;

use async_trait::async_trait;

pub use batches::{CLAIMS_PER_RELEASE, release_batches, release_items};
pub use checks::{CheckItem, CheckRecords};
pub use dynamo::DynamoClaimStore;
pub use identity::TableIdentity;
pub use listing::NlbListing;
#[cfg(any(test, feature = "test-doubles"))]
pub use memory::MemoryClaimStore;
pub use pool_records::{NlbState, PoolMember, PoolRecord, PoolRecords, WaitingService};
pub use token::RunToken;

use crate::event::ServiceKey;
use crate::protocol::ListenerProtocol;
use crate::service_model::ListenerKey;

/// The Service a claim belongs to. The uid decides ownership: a Service deleted and made
/// again under the same name is another owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Cluster, namespace and name.
    pub key: ServiceKey,
    /// The Service's uid.
    pub uid: String,
    /// For a Service in per-pod mode, the pod the claim is for, by name (a StatefulSet pod
    /// made again under its name keeps its claim); `None` for the Service's own listeners.
    pub pod: Option<String>,
}

/// Prefix of the sort key of a pod's owner records: `pod#<pod name>#<listener key>`.
pub const POD_RECORD_PREFIX: &str = "pod#";

/// DynamoDB takes at most 100 items in one transaction.
pub const TRANSACTION_ITEMS: usize = 100;

/// The most listeners one Service (or one pod, in per-pod mode) may ask for: its claims are one
/// transaction of two items per listener (the port and the owner record) and the NLB's item.
pub const MAX_LISTENERS_PER_CLAIM: usize = (TRANSACTION_ITEMS - 1) / 2;

impl Owner {
    /// The Service's own listeners (not a pod's).
    pub fn service(key: ServiceKey, uid: impl Into<String>) -> Self {
        Self {
            key,
            uid: uid.into(),
            pod: None,
        }
    }

    /// The sort key of this owner's record of listener `key`, within the Service's partition:
    /// the listener key for the Service's own listeners, `pod#<pod>#<key>` for a pod's, so one
    /// query reads a Service's whole picture and a prefix query one pod's.
    pub fn record_sk(&self, key: &ListenerKey) -> String {
        match &self.pod {
            None => key.as_str().to_owned(),
            Some(pod) => format!("{POD_RECORD_PREFIX}{pod}#{key}"),
        }
    }

    /// Reads a record's sort key back: the pod (if any) and the listener key.
    pub fn parse_record_sk(sk: &str) -> Option<(Option<String>, ListenerKey)> {
        match sk.strip_prefix(POD_RECORD_PREFIX) {
            None => Some((None, ListenerKey::parse(sk)?)),
            Some(rest) => {
                let (pod, key) = rest.rsplit_once('#')?;
                (!pod.is_empty()).then_some(())?;
                Some((Some(pod.to_owned()), ListenerKey::parse(key)?))
            }
        }
    }
}

/// How far a claim has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// The port is held; the listener and target group may not exist yet.
    Claimed,
    /// The listener and target group exist and are recorded.
    Active,
}

impl ClaimState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Active => "active",
        }
    }
}

/// One listener port held for one Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The Service.
    pub owner: Owner,
    /// Which listener of the Service.
    pub key: ListenerKey,
    /// The Service port's name.
    pub port_name: String,
    /// The listener protocol.
    pub protocol: ListenerProtocol,
    /// The Service port.
    pub service_port: u16,
    /// The pool the NLB belongs to.
    pub pool: String,
    /// The NLB.
    pub nlb_arn: String,
    /// The listener port on the NLB.
    pub port: u16,
    /// How far it has come.
    pub state: ClaimState,
    /// The listener, once made.
    pub listener_arn: Option<String>,
    /// The target group, once made.
    pub target_group_arn: Option<String>,
    /// When the port was claimed (seconds since the epoch).
    pub claimed_at: i64,
    /// The run that holds (or last held) the claim; empty on records older than tokens.
    pub token: String,
    /// When that run last confirmed its hold (seconds since the epoch); 0 once it let go.
    pub held_at: i64,
    /// A pod's claim: since when its pod has been seen gone from the Service (seconds since
    /// the epoch); released once gone longer than the Service's grace.
    pub gone_since: Option<i64>,
    /// What the listener was last made from: a fingerprint of its spec, health check, pool and
    /// targets, noted once targets and annotations were in line with them. An event whose
    /// inputs have this fingerprint, for a Service whose annotations advertise the claim,
    /// costs no ELBv2 call (see `reconcile::fingerprint`).
    pub applied: Option<String>,
}

impl Claim {
    /// The sort key of the claim's owner record.
    pub fn record_sk(&self) -> String {
        self.owner.record_sk(&self.key)
    }

    /// Whether `token`'s run holds this claim (as read).
    pub fn held_by(&self, token: &RunToken) -> bool {
        self.token == token.as_str()
    }

    /// Whether another run may still be working on this claim at `now`: it has not let go and
    /// confirmed its hold less than `grace_seconds` ago.
    pub fn held_by_live_run(&self, now: i64, grace_seconds: i64) -> bool {
        self.held_at > 0 && now - self.held_at < grace_seconds
    }
}

/// How many ports of an NLB are claimed, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlbUsage {
    /// The NLB.
    pub nlb_arn: String,
    /// Claimed ports.
    pub ports: BTreeSet<u16>,
    /// Whether the NLB takes claims: its item has no `state` (a pre-made NLB) or `state` is
    /// `active`. Claims are refused, in the claim transaction itself, on any other state (an NLB
    /// of a managed pool being made or retired).
    pub active: bool,
    /// The item's `state`: `None` for a pre-made NLB (or one without an item).
    pub state: Option<NlbState>,
    /// Since when a made NLB has had no claim, as the pool function noted it.
    pub empty_since: Option<i64>,
    /// What the sweep last saw on it (`None` before its first listing).
    pub listing: Option<NlbListing>,
}

impl NlbUsage {
    /// An NLB without an item: nothing claimed on it, takes claims.
    pub fn unclaimed(nlb_arn: &str) -> Self {
        Self {
            nlb_arn: nlb_arn.to_owned(),
            ports: BTreeSet::new(),
            active: true,
            state: None,
            empty_since: None,
            listing: None,
        }
    }
}

/// What the claim transaction requires of the NLB item besides free ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlbTerms {
    /// At most this many claims on the NLB.
    pub listener_quota: u32,
    /// The pool function made the NLB: its item must exist and be `active`. A made NLB's item
    /// exists from the moment its ARN is recorded until it is retired, so a claim with a stale
    /// view of a retired NLB is refused instead of bringing its item back. A pre-made NLB takes
    /// claims with no item or no `state`.
    pub made: bool,
}

impl NlbTerms {
    /// A pre-made NLB with `listener_quota`.
    pub fn premade(listener_quota: u32) -> Self {
        Self {
            listener_quota,
            made: false,
        }
    }
}

/// The `state` of an NLB item that takes claims; an item without `state` takes them too.
pub const NLB_ACTIVE: &str = "active";

/// A port item, as the sweep reads it: the port and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    /// The NLB.
    pub nlb_arn: String,
    /// The port.
    pub port: u16,
    /// The holder.
    pub owner: Owner,
    /// The holder's listener key.
    pub key: ListenerKey,
    /// When it was claimed.
    pub claimed_at: i64,
}

/// A DynamoDB call failed; `retryable` says whether trying again later may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DynamoDB {operation}: {message}")]
pub struct StoreError {
    /// The operation, e.g. `TransactWriteItems`.
    pub operation: &'static str,
    /// What went wrong.
    pub message: String,
    /// Throttling, timeouts, conflicts and 5xx are retryable; bad requests are not.
    pub retryable: bool,
}

/// Why a claim was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// Some of the requested ports are held by others: pick others.
    #[error("ports {ports:?} on {nlb_arn} are taken")]
    PortTaken {
        /// The NLB.
        nlb_arn: String,
        /// The ports that are taken.
        ports: Vec<u16>,
    },
    /// The NLB has no room for that many more listeners, or takes no claim (its item's
    /// `state` is not `active`): pick another NLB.
    #[error("NLB {nlb_arn} is at its listener quota or not active")]
    NlbFull {
        /// The NLB.
        nlb_arn: String,
    },
    /// The Service already holds a claim for one of these listeners (a concurrent or earlier
    /// handler made it): read the claims instead.
    #[error("the Service already holds a claim for one of these listeners")]
    AlreadyClaimed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a run could not take claims over from the runs that held them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TakeOverError {
    /// Another run holds the claim and confirmed its hold within the grace: it is presumed
    /// alive. Try again shortly.
    #[error("listener {key} is held by run {token}, which confirmed its hold {held_for}s ago")]
    Busy {
        /// The claim's listener key.
        key: ListenerKey,
        /// The holding run.
        token: String,
        /// Seconds since the holder confirmed its hold.
        held_for: i64,
    },
    /// The claim was released meanwhile: read the claims again.
    #[error("the claim of listener {key} was released meanwhile")]
    Gone {
        /// The claim's listener key.
        key: ListenerKey,
    },
    /// The claim changed hands (or its holder confirmed its hold) since it was read: read the
    /// claims again.
    #[error("the claim of listener {key} changed since it was read")]
    Changed {
        /// The claim's listener key.
        key: ListenerKey,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a write on a claim the run believed it held was refused: the run was overtaken.
/// Used by [`ClaimStore::record_resources`] and [`ClaimStore::let_go`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    /// Another run took the claim over (this run stalled past the grace): whatever this run
    /// made or meant to write is that run's to judge now.
    #[error("listener {key} was taken over by run {token}")]
    TakenOver {
        /// The claim's listener key.
        key: ListenerKey,
        /// The run that holds it now.
        token: String,
    },
    /// The claim was released meanwhile.
    #[error("the claim of listener {key} was released meanwhile")]
    Gone {
        /// The claim's listener key.
        key: ListenerKey,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why claims were not released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// Another run holds the claim now: this run must not release it.
    #[error("listener {key} is held by run {token}, not by this run")]
    NotHeld {
        /// The claim's listener key.
        key: ListenerKey,
        /// The run that holds it.
        token: String,
    },
    /// The port item names another Service (the claim read was out of date): read again.
    #[error("port {port} of {nlb_arn} is held by another Service")]
    PortHeldByOther {
        /// The NLB.
        nlb_arn: String,
        /// The port.
        port: u16,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store of port claims.
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Every claim of the Service with `uid` (its own and its pods'), read consistently.
    async fn claims_of(&self, uid: &str) -> Result<Vec<Claim>, StoreError>;

    /// The claims of pod `pod` of the Service with `uid`, read consistently.
    async fn claims_of_pod(&self, uid: &str, pod: &str) -> Result<Vec<Claim>, StoreError> {
        let mut all = self.claims_of(uid).await?;
        all.retain(|c| c.owner.pod.as_deref() == Some(pod));
        Ok(all)
    }

    /// Notes on each of `claims` (pods' claims) since when its pod has been gone (`None`: it is
    /// back). Changes no holder; a claim released meanwhile is skipped.
    async fn note_gone(&self, claims: &[Claim], since: Option<i64>) -> Result<(), StoreError>;

    /// Notes on each claim the fingerprint of what its listener is now made from, if the
    /// record still names the same listener (one released or moved meanwhile is skipped).
    async fn note_applied(&self, applied: &[(Claim, String)]) -> Result<(), StoreError>;

    /// Claims every one of `claims` (all on one NLB, state `Claimed`, each carrying the
    /// claiming run's token and `held_at`) at once, or none, on the NLB's `terms`.
    async fn claim(&self, claims: &[Claim], terms: NlbTerms) -> Result<(), ClaimError>;

    /// Takes `claims` (as read) over for `token`'s run, all or none: each only if it is still
    /// held as read (same token) and its holder let it go or confirmed its hold before
    /// `stale_before`. The claims then carry `token` and `held_at = now`, and no `applied`
    /// (the run may change the listener: only its finished let-go notes it again).
    async fn take_over(
        &self,
        claims: &[Claim],
        token: &RunToken,
        now: i64,
        stale_before: i64,
    ) -> Result<(), TakeOverError>;

    /// Records the listener and target group of `claim`, marks it active and confirms the
    /// hold (`held_at = now`), only if `token`'s run still holds it.
    async fn record_resources(
        &self,
        claim: &Claim,
        token: &RunToken,
        listener_arn: &str,
        target_group_arn: &str,
        now: i64,
    ) -> Result<(), HoldError>;

    /// Lets `claims` go (`held_at = 0`), each only if `token`'s run still holds it, so the
    /// next run may take them over at once: when a run is done, and when it gives up. Each
    /// record's `applied` becomes the claim's (removed when the claim has none: the run did
    /// not finish its listener).
    async fn let_go(&self, claims: &[Claim], token: &RunToken) -> Result<(), HoldError>;

    /// Deletes `claims` (all of one owner, all held by `token`'s run) and frees their ports.
    /// Claims already gone are skipped; a claim another run holds, or a port held by another
    /// owner, is never touched.
    async fn release(&self, claims: &[Claim], token: &RunToken) -> Result<(), ReleaseError>;

    /// Claimed ports of each NLB, read consistently.
    async fn nlb_usage(&self, nlb_arns: &[String]) -> Result<Vec<NlbUsage>, StoreError>;

    /// Records what the sweep saw on an NLB ([`NlbListing`]) on its item. A `made` NLB's item
    /// must exist (one retired meanwhile is not brought back): otherwise nothing is written.
    async fn record_listing(
        &self,
        nlb_arn: &str,
        listing: &NlbListing,
        made: bool,
    ) -> Result<(), StoreError>;

    /// Every port item of an NLB (at most its quota), for the sweep.
    async fn port_holders(&self, nlb_arn: &str) -> Result<Vec<PortHolder>, StoreError>;

    /// The identity recorded in the table, read consistently; `None` when none is recorded.
    async fn identity(&self) -> Result<Option<TableIdentity>, StoreError>;

    /// Records `identity` unless one is recorded already, and returns the one recorded: this
    /// one, or the one an earlier or concurrent writer recorded (never overwritten).
    async fn record_identity(&self, identity: &TableIdentity) -> Result<TableIdentity, StoreError>;
}

/// Seconds since the epoch, now.
pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

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
