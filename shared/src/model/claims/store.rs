//! The store of port claims, behind a trait: DynamoDB in production, memory in tests.

use async_trait::async_trait;

use super::claim::{Claim, NlbTerms, NlbUsage, Owner, PortHolder};
use super::errors::{ClaimError, HoldError, ReleaseError, StoreError, TakeOverError};
use super::key_hold::KeyHold;
use super::listing::NlbListing;
use super::table_identity::TableIdentity;
use super::token::RunToken;

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

    /// Who holds claim key `key`, read consistently; `None`: nobody.
    async fn key_hold(&self, key: &str) -> Result<Option<KeyHold>, StoreError>;

    /// Takes `key` for `owner` unless someone holds it; returns the holder after: `owner`'s
    /// hold, or the other's.
    async fn take_key(&self, key: &str, owner: &Owner) -> Result<KeyHold, StoreError>;

    /// Offers `owner`'s listeners to the next Service naming `key` since `offered_at`, or takes
    /// the offer back (`None`); only while `owner` holds the key. False when it does not.
    async fn offer_key(
        &self,
        key: &str,
        owner: &Owner,
        offered_at: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Moves the listeners of `hold`'s Service to another: `from` are all of its claims (as
    /// read), `to` the same listeners owned by the taker. The key item, each port item's owner
    /// and the owner records change at once, only while the key is held as read and offered
    /// and every one of `from` is still there. False when something changed meanwhile.
    async fn hand_over(
        &self,
        hold: &KeyHold,
        from: &[Claim],
        to: &[Claim],
    ) -> Result<bool, StoreError>;

    /// Deletes `key`'s item if `owner` holds it (its last keyed claim was released).
    async fn drop_key(&self, key: &str, owner: &Owner) -> Result<(), StoreError>;

    /// Every identity recorded in the table (one per cluster sharing it), read consistently.
    async fn identities(&self) -> Result<Vec<TableIdentity>, StoreError>;

    /// The identity recorded for cluster `cluster`, if any.
    async fn identity_of(&self, cluster: &str) -> Result<Option<TableIdentity>, StoreError> {
        Ok(self
            .identities()
            .await?
            .into_iter()
            .find(|r| r.cluster_name == cluster))
    }

    /// Records `identity` unless one is recorded for its cluster already, and returns the one
    /// recorded for it: this one, or the one an earlier or concurrent writer recorded (never
    /// overwritten).
    async fn record_identity(&self, identity: &TableIdentity) -> Result<TableIdentity, StoreError>;
}
