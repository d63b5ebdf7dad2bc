//! A made NLB's life after it is recorded: promoted when AWS reports it active, noted when it
//! is gone, retired when idle (draining, checked for listeners of any origin, proven the
//! pool's by its tags, deleted, forgotten).

use std::time::Duration;

use super::super::Result;
use super::tend::{Census, MemberView, PoolReport};
use super::tender::PoolTender;
use crate::model::claims::{NlbState, now_epoch};
use crate::model::elb::{
    ElbErrorKind, NlbStatus, TAG_CLUSTER, TAG_MANAGED, TAG_POOL, TAG_POOL_ID, TAG_POOL_SEQ,
};
use crate::model::pool::NlbPool;

impl PoolTender<'_> {
    /// Brings one recorded member's item in line with AWS: promotes it, notes it gone, gives
    /// up on it when it is still provisioning past `provisioning_limit` (as on a `failed` one),
    /// keeps `emptySince`, and finishes its retirement when it is draining with no claim.
    pub(super) async fn settle(
        &self,
        pool: &NlbPool,
        view: &mut MemberView,
        provisioning_limit: Duration,
        report: &mut PoolReport,
    ) -> Result<()> {
        let Some(arn) = view.arn.clone() else {
            return Ok(());
        };
        let records = self.reconciler.records()?;
        let now = now_epoch();
        let state = view.state();
        // ELBv2 may not list an NLB it has just made (eventual consistency): one younger
        // than the claim grace is not called gone, or its member would go while it runs.
        let young = now - view.created_at
            < i64::try_from(self.reconciler.claim_grace.as_secs()).unwrap_or(i64::MAX);
        let overdue = now - view.created_at
            >= i64::try_from(provisioning_limit.as_secs()).unwrap_or(i64::MAX);
        match (&view.aws, state) {
            (None, NlbState::Provisioning) if young => {}
            (None, NlbState::Provisioning | NlbState::Active) => {
                // Deleted out of band (or never came to be): no claim goes to it any more;
                // the sweep and the next allocations move its Services.
                tracing::warn!(nlb = %arn, pool = pool.name(),
                    "a made NLB does not exist; its Services are moved");
                if records
                    .set_nlb_state(&arn, state, NlbState::Draining, false, now)
                    .await?
                {
                    report.gone.push(arn.clone());
                    self.reconciler.view.mark_unusable(&arn);
                    self.set_state(view, NlbState::Draining);
                }
            }
            (Some(NlbStatus::Active), NlbState::Provisioning) => {
                let cross_zone = pool.managed().is_some_and(|m| m.cross_zone);
                if cross_zone {
                    self.fleet.set_cross_zone(&arn, true).await?;
                }
                // Listed at once, as the sweep would (no listener yet): its first rooms' target
                // groups follow its cross-zone setting and nothing reads its listeners.
                let listing = crate::model::claims::NlbListing {
                    cross_zone,
                    at: now,
                    ..Default::default()
                };
                self.reconciler
                    .store
                    .record_listing(&arn, &listing, true)
                    .await?;
                if records
                    .set_nlb_state(&arn, state, NlbState::Active, false, now)
                    .await?
                {
                    tracing::info!(nlb = %arn, pool = pool.name(), "a made NLB is active");
                    report.promoted.push(arn.clone());
                    self.reconciler.view.forget(&arn);
                    self.set_state(view, NlbState::Active);
                }
            }
            (Some(NlbStatus::Provisioning), NlbState::Provisioning) if overdue => {
                // AWS makes an NLB in minutes; one still provisioning past the limit is taken
                // for failed, or it would count as coming forever and block growth.
                let failure = format!(
                    "NLB {arn} is still provisioning after {}s (the limit is {}s, \
                     NlbProvisioningLimitSeconds); it is deleted and replaced",
                    now - view.created_at,
                    provisioning_limit.as_secs()
                );
                tracing::warn!(
                    pool = pool.name(),
                    outcome = "NlbStuckProvisioning",
                    "{failure}"
                );
                report.failures.push(failure);
                if records
                    .set_nlb_state(&arn, state, NlbState::Draining, true, now)
                    .await?
                {
                    report.stuck.push(arn.clone());
                    self.set_state(view, NlbState::Draining);
                }
            }
            (Some(NlbStatus::Failed(reason)), NlbState::Provisioning) => {
                let failure = format!("AWS could not make NLB {arn}: {reason}; it is retired");
                tracing::warn!(pool = pool.name(), "{failure}");
                report.failures.push(failure);
                if records
                    .set_nlb_state(&arn, state, NlbState::Draining, true, now)
                    .await?
                {
                    self.set_state(view, NlbState::Draining);
                }
            }
            (Some(_), NlbState::Active) => {
                let empty = view.claims() == 0;
                let noted = view.usage.as_ref().and_then(|u| u.empty_since);
                match (empty, noted) {
                    (true, None) => {
                        records.set_empty_since(&arn, Some(now)).await?;
                        if let Some(u) = view.usage.as_mut() {
                            u.empty_since = Some(now);
                        }
                    }
                    (false, Some(_)) => records.set_empty_since(&arn, None).await?,
                    _ => {}
                }
            }
            _ => {}
        }
        if view.state() == NlbState::Draining && view.claims() == 0 {
            self.finish_retirement(pool, view, report).await?;
        }
        Ok(())
    }

    fn set_state(&self, view: &mut MemberView, state: NlbState) {
        if let Some(u) = view.usage.as_mut() {
            u.state = Some(state);
            u.active = state == NlbState::Active;
            u.empty_since = None;
        }
    }

    /// Moves up to `budget` idle NLBs to `draining` (each only while it has no claim, in the
    /// same condition that makes claims wait for `active`) and retires them. An NLB is idle
    /// when it has had no claim for the pool's `retireAfterSeconds`, the pool keeps more than
    /// `min`, no Service waits, and the spare stays free without it.
    pub(super) async fn retire_idle(
        &self,
        pool: &NlbPool,
        census: &Census,
        budget: usize,
        waiting: usize,
        report: &mut PoolReport,
    ) -> Result<usize> {
        let Some(managed) = pool.managed() else {
            return Ok(0);
        };
        if waiting > 0 {
            return Ok(0); // Services wait for room: nothing goes
        }
        let now = now_epoch();
        let retire_after = i64::try_from(managed.retire_after.as_secs()).unwrap_or(i64::MAX);
        let kept = census
            .members
            .iter()
            .filter(|m| m.state() != NlbState::Draining)
            .count();
        let mut free = census.free;
        let mut retired = 0;
        for m in &census.members {
            if retired >= budget || kept - retired <= managed.min as usize {
                break;
            }
            let idle = m.state() == NlbState::Active
                && m.claims() == 0
                && m.usage
                    .as_ref()
                    .and_then(|u| u.empty_since)
                    .is_some_and(|t| now - t >= retire_after);
            let spare_kept = free.saturating_sub(pool.per_nlb()) >= managed.spare;
            let (Some(arn), true, true) = (&m.arn, idle, spare_kept) else {
                continue;
            };
            if !self
                .reconciler
                .records()?
                .set_nlb_state(arn, NlbState::Active, NlbState::Draining, true, now)
                .await?
            {
                continue; // claimed meanwhile: it stays
            }
            tracing::info!(nlb = %arn, pool = pool.name(), "retiring an idle made NLB");
            self.reconciler.view.mark_unusable(arn);
            free = free.saturating_sub(pool.per_nlb());
            retired += 1;
            let mut view = MemberView {
                seq: m.seq,
                pool_id: m.pool_id.clone(),
                arn: Some(arn.clone()),
                created_at: m.created_at,
                usage: m.usage.clone(),
                aws: m.aws.clone(),
            };
            self.set_state(&mut view, NlbState::Draining);
            self.finish_retirement(pool, &view, report).await?;
        }
        Ok(retired)
    }

    /// Deletes a draining NLB with no claim once it has no listener, and forgets it. A
    /// listener the project did not make sends it back to `active` (someone uses it); the
    /// project's own leftovers wait for the sweep. The NLB is deleted only when its tags prove
    /// it is this member of this pool of this cluster, and it is no pool's pre-made NLB.
    pub(super) async fn finish_retirement(
        &self,
        pool: &NlbPool,
        view: &MemberView,
        report: &mut PoolReport,
    ) -> Result<()> {
        let Some(arn) = &view.arn else {
            return Ok(());
        };
        let records = self.reconciler.records()?;
        // Believed gone: look once more, so an NLB that is there after all is deleted (after
        // the tags check) instead of forgotten while it runs and is billed.
        let exists = match &view.aws {
            Some(_) => true,
            None => !self
                .fleet
                .describe_nlbs(std::slice::from_ref(arn))
                .await?
                .is_empty(),
        };
        let listeners = match self.reconciler.elb.listeners_of(arn).await {
            Ok(l) => l,
            Err(e) if e.kind == ElbErrorKind::NlbNotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if !listeners.is_empty() {
            let arns: Vec<String> = listeners.iter().map(|l| l.arn.clone()).collect();
            let tags = self.reconciler.elb.tags_of(&arns).await?;
            let foreign = arns.iter().any(|a| {
                tags.get(a)
                    .and_then(|t| t.get(TAG_MANAGED))
                    .is_none_or(|v| v != "true")
            });
            if foreign && exists {
                let failure = format!(
                    "made NLB {arn} has listeners nlb-port-pool did not make; it stays active"
                );
                tracing::warn!(pool = pool.name(), "{failure}");
                report.failures.push(failure);
                records
                    .set_nlb_state(
                        arn,
                        NlbState::Draining,
                        NlbState::Active,
                        false,
                        now_epoch(),
                    )
                    .await?;
            } else {
                tracing::info!(nlb = %arn, listeners = arns.len(),
                    "a retiring NLB still has the project's listeners; the sweep deletes them");
            }
            return Ok(());
        }
        if exists {
            if let Err(why) = self.prove_made(pool, arn, &view.pool_id, view.seq).await? {
                let failure = format!("not deleting NLB {arn}: {why}");
                tracing::warn!(pool = pool.name(), "{failure}");
                report.failures.push(failure);
                return Ok(());
            }
            self.fleet.delete_nlb(arn).await?;
        }
        if records
            .remove_member(pool.name(), view.seq, Some(arn))
            .await?
        {
            tracing::info!(nlb = %arn, pool = pool.name(), "retired a made NLB");
            report.retired.push(arn.clone());
            self.reconciler.view.forget(arn);
        }
        Ok(())
    }

    /// `Ok(Err(why))` unless `arn`'s tags say it is member `seq` of `pool` (whose records carry
    /// `pool_id`), made for this cluster, and no pool lists it as pre-made.
    pub(super) async fn prove_made(
        &self,
        pool: &NlbPool,
        arn: &str,
        pool_id: &str,
        seq: u64,
    ) -> Result<std::result::Result<(), String>> {
        if self
            .reconciler
            .pools
            .pools()
            .any(|p| p.premade_arns().iter().any(|a| a == arn))
        {
            return Ok(Err("it is a pre-made NLB of the pools".into()));
        }
        let tags = self.reconciler.elb.tags_of(&[arn.to_owned()]).await?;
        let tags = tags.get(arn);
        let tag = |k: &str| tags.and_then(|t| t.get(k)).map(String::as_str);
        let seq_text = seq.to_string();
        let expected = [
            (TAG_MANAGED, "true"),
            (TAG_CLUSTER, self.reconciler.cluster_name.as_str()),
            (TAG_POOL, pool.name()),
            (TAG_POOL_ID, pool_id),
            (TAG_POOL_SEQ, seq_text.as_str()),
        ];
        for (k, v) in expected {
            if tag(k) != Some(v) {
                return Ok(Err(format!("its tag {k} is {:?}, not {v:?}", tag(k))));
            }
        }
        Ok(Ok(()))
    }
}
