//! What the claim store's operations fail with: one error per operation, its expected outcomes
//! named, everything else a [`StoreError`].

use crate::contract::service_model::ListenerKey;

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
/// Used by [`ClaimStore::record_resources`](super::ClaimStore::record_resources) and [`ClaimStore::let_go`](super::ClaimStore::let_go).
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
