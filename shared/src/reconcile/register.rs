//! Round 3's targets: each listener's targets brought in line while its claim records what
//! exists (which marks it active), only while this run holds it.

use std::collections::BTreeSet;

use futures::future::join_all;

use super::plan::Plan;
use super::run::Run;
use super::wiring::Wired;
use super::{Error, Reconciler, Result};
use crate::model::claims::{ClaimState, HoldError, RunToken, now_epoch};
use crate::model::targets::Target;

impl Reconciler {
    /// Registers each listener's targets and records its claim, all at once.
    pub(super) async fn register_targets(
        &self,
        run: &Run<'_>,
        plan: &Plan<'_>,
        wired: &[Wired],
    ) -> Result<()> {
        let each = join_all(
            wired
                .iter()
                .map(|w| self.finish_listener(run.token, w, plan.targets_of(&w.claim.key))),
        );
        each.await.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    /// Brings the listener's targets in line and records its resources on the claim (which
    /// marks it active), only while this run holds it.
    async fn finish_listener(
        &self,
        token: &RunToken,
        wired: &Wired,
        desired: BTreeSet<Target>,
    ) -> Result<()> {
        let record = async {
            // Already recorded as is, and held by this run since it started: nothing to write.
            let recorded = wired.claim.state == ClaimState::Active
                && wired.claim.listener_arn.as_deref() == Some(wired.listener_arn.as_str())
                && wired.claim.target_group_arn.as_deref() == Some(wired.target_group_arn.as_str());
            if recorded {
                return Ok(());
            }
            self.store
                .record_resources(
                    &wired.claim,
                    token,
                    &wired.listener_arn,
                    &wired.target_group_arn,
                    now_epoch(),
                )
                .await
        };
        let (synced, recorded) = tokio::join!(
            self.sync_target_group(&wired.target_group_arn, &desired, wired.target_group_new),
            record
        );
        match recorded {
            Ok(()) => {}
            // Released while this run worked: undo what it made, unless a newer claim of the
            // Service uses it.
            Err(HoldError::Gone { .. }) => {
                self.undo_orphaned(wired).await?;
                return Err(Error::Conflict(format!(
                    "the claim of {} {} was released meanwhile",
                    wired.claim.owner.key, wired.claim.key
                )));
            }
            // Taken over (this run stalled past the grace): the listener is the newer run's
            // to judge; touch nothing.
            Err(lost) => return Err(lost.into()),
        }
        synced?;
        self.failpoints
            .check(crate::reconcile::failpoint::ENSURE_AFTER_RECORD)
    }

    /// Deletes the listener and target group of a claim released under this run, unless a
    /// claim of the Service now names them (same port, same listener key).
    async fn undo_orphaned(&self, wired: &Wired) -> Result<()> {
        let now = self.claims_of_owner(&wired.claim.owner).await?;
        let c = &wired.claim;
        if !now
            .iter()
            .any(|n| n.nlb_arn == c.nlb_arn && n.port == c.port)
        {
            self.elb.delete_listener(&wired.listener_arn).await?;
        }
        if !now.iter().any(|n| n.key == c.key) {
            self.elb
                .delete_target_group(&wired.target_group_arn)
                .await?;
        }
        Ok(())
    }
}
