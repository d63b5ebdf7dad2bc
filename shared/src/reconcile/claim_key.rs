//! Claim keys (`nlb.port-manager/claim-key`): listeners that outlive their Service.
//!
//! A Service naming a key takes it when nobody holds it (the key item, see
//! [`crate::model::claims::KeyHold`]). While its holder is network-disabled, or for
//! [`HAND_OVER_WINDOW_SECONDS`] after it was deleted, the holder *offers* its
//! listeners; another Service naming the key, in this cluster or another sharing the claims table
//! and pools (`SHARED_CLUSTERS`), then takes them over: one transaction moves the key item, the
//! port items and the owner records to it; it tags the listeners as its own, makes its target
//! groups, and one ModifyListener per listener points it at them. The port and address stay:
//! players who cached them reach the new Service's pods. Until then the other Service is
//! `Pending`, and the sweep retries it.

use super::outcome::Outcome;
use super::run::Run;
use super::{Error, Reconciler, Result};
use crate::contract::annotations;
use crate::contract::service_model::ServiceState;
use crate::model::claims::{
    Claim, ClaimState, HAND_OVER_WINDOW_SECONDS, KeyHold, Owner, TRANSACTION_ITEMS, now_epoch,
};
use crate::model::cluster::{Cluster, Notice, NoticeKind, ServiceOutputs};
use crate::model::elb::ResourceTags;

/// The most listeners a hand-over moves at once: the key item and three items per listener
/// (the old owner record, the new one, the port item) in one transaction.
pub const MAX_LISTENERS_PER_HAND_OVER: usize = (TRANSACTION_ITEMS - 1) / 3;

/// What the claim key lets a run do.
pub(super) enum KeyStep {
    /// Go on with these claims (the Service's own, or those just taken over).
    Go(Vec<Claim>),
    /// The run ends here: another Service holds the key.
    Ends(Outcome),
}

impl Reconciler {
    /// Settles `run`'s claim key before its claims are sorted: taken when free, offered or
    /// kept as the Service is disabled or not, or taken over from the Service that offers it.
    /// `existing`: the Service's claims as read.
    pub(super) async fn settle_key(
        &self,
        run: &Run<'_>,
        owner: &Owner,
        existing: Vec<Claim>,
    ) -> Result<KeyStep> {
        let Some(key) = run.request.claim_key.as_deref() else {
            return Ok(KeyStep::Go(existing));
        };
        let hold = self.store.take_key(key, owner).await?;
        if hold.held_by(owner) {
            let offer = run.disabled().then(now_epoch);
            if offer.is_some() != hold.offered_at.is_some() {
                self.store.offer_key(key, owner, offer).await?;
            }
            return Ok(KeyStep::Go(existing));
        }
        let why = if run.disabled() {
            "a network-disabled Service takes nothing over".to_owned()
        } else if !existing.is_empty() {
            format!(
                "this Service holds {} listener(s) of its own; delete it and make it again to \
                 take the key's over",
                existing.len()
            )
        } else if hold.offered_at.is_none() {
            "it is handed over once that Service is network-disabled or deleted".to_owned()
        } else {
            return self.take_over_key(run, owner, &hold).await;
        };
        let reason = format!("claim key {key} is held by {hold}: {why}");
        // Holding nothing, its listeners went to the key's holder (or never were): the address
        // it may still show is not its own, and only the status stays.
        let holds_nothing = existing.is_empty();
        let status = annotations::Status::Pending(reason.clone()).to_string();
        let want = |s: &ServiceState| {
            let mut outputs = match holds_nothing {
                true => ServiceOutputs::default(),
                false => ServiceOutputs::current(s),
            };
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), status.clone());
            outputs
        };
        self.write_and_tell(
            run.cluster,
            run.service,
            &want,
            NoticeKind::Warning,
            "ClaimKeyHeld",
            &reason,
        )
        .await?;
        let outcome = Outcome::Pending(reason);
        Ok(KeyStep::Ends(outcome))
    }

    /// Moves the listeners of the Service holding `hold` (which offers them) to `owner`, and
    /// tags them as its own.
    async fn take_over_key(&self, run: &Run<'_>, owner: &Owner, hold: &KeyHold) -> Result<KeyStep> {
        let mut from = self.store.claims_of(&hold.owner.uid).await?;
        from.retain(|c| c.owner.pod.is_none() && c.owner.key == hold.owner.key);
        let busy = |reason: String| Error::Busy {
            service: run.service.key.to_string(),
            reason,
        };
        if let Some(c) = from.iter().find(|c| c.pool != run.pool.name()) {
            return Err(Error::Setup(format!(
                "claim key {}: the listeners of {hold} are in pool {}, this Service asks for \
                 pool {}",
                hold.key,
                c.pool,
                run.pool.name()
            )));
        }
        if from.len() > MAX_LISTENERS_PER_HAND_OVER {
            return Err(Error::Setup(format!(
                "claim key {}: {hold} holds {} listeners, more than one hand-over moves ({})",
                hold.key,
                from.len(),
                MAX_LISTENERS_PER_HAND_OVER
            )));
        }
        let now = now_epoch();
        // A run of the holder still at work (disabling it, say) keeps them: taken over under it,
        // its next write would find them gone and undo what it made.
        if let Some(c) = from
            .iter()
            .find(|c| c.held_by_live_run(now, self.grace_seconds()))
        {
            return Err(busy(format!(
                "a run of {hold} still works on listener {} of claim key {}",
                c.key, hold.key
            )));
        }
        let to: Vec<Claim> = from
            .iter()
            .map(|c| Claim {
                owner: owner.clone(),
                state: ClaimState::Claimed,
                target_group_arn: None,
                claimed_at: now,
                token: run.token.as_str().to_owned(),
                held_at: now,
                gone_since: None,
                applied: None,
                claim_key: Some(hold.key.clone()),
                ..c.clone()
            })
            .collect();
        if !self.store.hand_over(hold, &from, &to).await? {
            return Err(busy(format!(
                "claim key {} changed while being taken over from {hold}",
                hold.key
            )));
        }
        tracing::info!(service = %run.service.key, key = %hold.key, from = %hold,
            listeners = to.len(), "took a claim key's listeners over");
        // Tagged as this Service's before anything else touches them: its IAM role changes
        // only its own cluster's listeners, and the other cluster's sweep leaves them alone.
        for c in &to {
            if let Some(arn) = &c.listener_arn {
                let tags = ResourceTags {
                    owner: owner.clone(),
                    pool: c.pool.clone(),
                    listener: c.key.clone(),
                };
                self.elb.tag_listener(arn, &tags).await?;
            }
        }
        let notice = Notice {
            kind: NoticeKind::Normal,
            reason: "ClaimKeyTakenOver",
            note: format!(
                "took over {} listener(s) of claim key {} from {hold}: same ports and address",
                to.len(),
                hold.key
            ),
            once: None,
        };
        run.cluster.publish(run.service, &notice).await?;
        Ok(KeyStep::Go(to))
    }

    /// On a deleted Service's release: holding claim key `key`, it keeps its listeners, offered
    /// to the next Service naming the key for [`HAND_OVER_WINDOW_SECONDS`] (the sweep then
    /// releases them). False when it does not hold the key, or is not being deleted (a Service
    /// that opts out gives its port up): its claims are released as usual.
    pub(super) async fn offer_on_release(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        key: &str,
        claims: &[Claim],
    ) -> Result<bool> {
        let owner = self.owner(service);
        if !service.deleting
            || claims.is_empty()
            || claims.iter().any(|c| c.claim_key.as_deref() != Some(key))
        {
            return Ok(false);
        }
        let offered_at = match self.store.key_hold(key).await? {
            Some(hold) if hold.held_by(&owner) => hold.offered_at,
            _ => return Ok(false),
        };
        if offered_at.is_none() && !self.store.offer_key(key, &owner, Some(now_epoch())).await? {
            return Ok(false);
        }
        let notice = Notice {
            kind: NoticeKind::Normal,
            reason: "ClaimKeyOffered",
            note: format!(
                "{} listener(s) kept for the next Service naming claim key {key} (released \
                 after {HAND_OVER_WINDOW_SECONDS} s without one)",
                claims.len()
            ),
            once: None,
        };
        cluster.publish(service, &notice).await?;
        Ok(true)
    }

    /// Whether the claims of the gone Service `uid` wait for a taker: they carry a claim key
    /// it holds and has offered for less than [`HAND_OVER_WINDOW_SECONDS`].
    pub(super) async fn awaits_taker(&self, claims: &[Claim]) -> Result<bool> {
        let Some(first) = claims.first() else {
            return Ok(false);
        };
        let Some(key) = &first.claim_key else {
            return Ok(false);
        };
        let now = now_epoch();
        Ok(self.store.key_hold(key).await?.is_some_and(|h| {
            h.owner.uid == first.owner.uid
                && h.offered_at
                    .is_some_and(|at| now - at < HAND_OVER_WINDOW_SECONDS)
        }))
    }

    /// Lets go of the claim key of `claims` (released) once its owner holds no claim with it.
    pub(super) async fn drop_key_after(&self, claims: &[Claim]) -> Result<()> {
        let Some((key, owner)) = claims
            .iter()
            .find_map(|c| Some((c.claim_key.as_deref()?, &c.owner)))
        else {
            return Ok(());
        };
        let service = Owner {
            pod: None,
            ..owner.clone()
        };
        let left = self.claims_of_owner(&service).await?;
        if left.iter().all(|c| c.claim_key.as_deref() != Some(key)) {
            self.store.drop_key(key, &service).await?;
        }
        Ok(())
    }
}

/// The claim key a Service's annotations name, as written (a release reads it even when the
/// rest of its annotations no longer parse).
pub(super) fn named_key(service: &ServiceState) -> Option<&str> {
    service
        .annotations
        .get(annotations::CLAIM_KEY)
        .map(String::as_str)
        .filter(|k| !k.is_empty())
}
