//! Port claims: who owns which (NLB, port), kept in DynamoDB with conditional writes.
//!
//! Three kinds of item live in one table (partition key `pk`, sort key `sk`):
//! - the **NLB item** (`nlb#<arn>`, `meta`): how many ports are claimed and which;
//! - a **port item** per claimed port (`nlb#<arn>`, `port#<port>`): the owner Service's uid;
//! - an **owner record** per listener of a Service (`owner#<uid>`, `<listener key>`): the claim
//!   seen from the Service, with the ARNs of what was made for it;
//! - the **identity item** (`identity`, `meta`): whose cluster and stack the table describes
//!   (see [`TableIdentity`]), and the sweep's cursor (`sweep`, `cursor`);
//! - a **key item** per claim key (`claimkey#<key>`, `meta`): the Service holding it (see
//!   [`KeyHold`]);
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
//!
//! This module only names its parts: a [`Claim`] and its [`Owner`] (`claim`), the store's
//! errors (`errors`), the [`ClaimStore`] trait (`store`), the sweep's [`SweepCursor`]
//! (`cursor`), what the table records (`pool_records`, `table_identity`, `listing`, `checks`),
//! and how a release is batched (`batches`).

mod batches;
pub mod checks;
mod claim;
mod cursor;
mod errors;
mod key_hold;
pub mod listing;
mod pool_records;
mod store;
pub(crate) mod table_identity;
mod token;

pub use batches::{CLAIMS_PER_RELEASE, release_batches, release_items};
pub use checks::{CheckItem, CheckRecords};
pub use claim::{
    Claim, ClaimState, MAX_LISTENERS_PER_CLAIM, NlbTerms, NlbUsage, Owner, POD_RECORD_PREFIX,
    PortHolder, TRANSACTION_ITEMS, now_epoch,
};
pub use cursor::{CursorStore, SweepCursor};
pub use errors::{ClaimError, HoldError, ReleaseError, StoreError, TakeOverError};
pub use key_hold::{HAND_OVER_WINDOW_SECONDS, KeyHold};
pub use listing::NlbListing;
pub use pool_records::{NLB_ACTIVE, NlbState, PoolMember, PoolRecord, PoolRecords, WaitingService};
pub use store::ClaimStore;
pub use table_identity::TableIdentity;
pub use token::RunToken;
