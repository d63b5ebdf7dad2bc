//! Round 1's target groups: one for each listener to claim, made while its port is claimed,
//! and deleted again when the round cannot go on.

use futures::future::join_all;

use super::plan::Plan;
use super::run::Run;
use super::{Reconciler, Result};
use crate::model::elb::{EnsuredTargetGroup, TargetGroupSpec};

impl Reconciler {
    /// The target groups of the listeners `plan` lacks, their cross-zone setting following
    /// the NLBs the claims may go to (`candidates`) where those agree.
    pub(super) fn missing_groups(
        &self,
        run: &Run<'_>,
        plan: &Plan<'_>,
        candidates: &[String],
    ) -> Vec<TargetGroupSpec> {
        plan.missing
            .iter()
            .filter_map(|s| plan.listener(&s.key))
            .map(|l| self.cross_zone_for(l.group.clone(), run.pool, candidates))
            .collect()
    }

    /// Makes `groups` (or finds those an earlier attempt made), all at once.
    pub(super) async fn make_target_groups(
        &self,
        groups: &[TargetGroupSpec],
    ) -> Vec<Result<EnsuredTargetGroup>> {
        join_all(groups.iter().map(|t| self.make_target_group(t))).await
    }

    /// Deletes the groups of `groups` this run made.
    pub(super) async fn delete_made_groups(&self, groups: &[EnsuredTargetGroup]) -> Result<()> {
        for g in groups.iter().filter(|g| g.created) {
            self.elb.delete_target_group(&g.arn).await?;
        }
        Ok(())
    }
}
