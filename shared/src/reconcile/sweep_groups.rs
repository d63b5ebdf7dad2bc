//! The sweep's target groups: deleting those nothing accounts for, a bounded share per run.
//!
//! A group's claim is looked for first among the claims the run read NLB by NLB (one Query
//! each), so a page of 400 groups costs no claims read; only a group none of those accounts
//! for is read afresh, and deleted only if that read finds no claim either.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::decide::Decision;
use super::sweep_limits::{DeletionBudget, SweepLimits};
use super::sweep_report::SweepReport;
use super::{Reconciler, Result};
use crate::contract::service_model::ServiceState;
use crate::model::claims::{CursorStore, PortHolder, SweepCursor};
use crate::model::cluster::Cluster;
use crate::model::elb::{
    ElbErrorKind, TAG_LISTENER, TAG_NAMESPACE, TAG_POD, TAG_SERVICE, TAG_SERVICE_UID,
};

/// The listeners the claims read this run account for: (Service uid, listener key, pod).
#[derive(Debug, Default)]
pub(super) struct SeenClaims(HashSet<(String, String, Option<String>)>);

impl SeenClaims {
    /// Adds the claims of one NLB.
    pub(super) fn add(&mut self, holders: &[PortHolder]) {
        self.0.extend(holders.iter().map(|h| {
            (
                h.owner.uid.clone(),
                h.key.as_str().to_owned(),
                h.owner.pod.clone(),
            )
        }));
    }

    fn accounts_for(&self, uid: &str, listener: &str, pod: Option<&String>) -> bool {
        self.0
            .contains(&(uid.to_owned(), listener.to_owned(), pod.cloned()))
    }
}

impl Reconciler {
    /// Deletes the project's target groups that neither a claim nor a live Service's wanted
    /// listener accounts for (a run that stopped between making one and claiming its port).
    /// A page with deletions the budget does not cover is checked again by the next run; the
    /// cursor is saved after every page.
    pub(super) async fn sweep_target_groups(
        &self,
        cluster: &dyn Cluster,
        services: &BTreeMap<String, ServiceState>,
        claimed: &SeenClaims,
        (cursors, cursor): (&dyn CursorStore, &mut SweepCursor),
        limits: SweepLimits,
        (budget, report): (&mut DeletionBudget, &mut SweepReport),
    ) -> Result<()> {
        for _ in 0..limits.target_group_pages {
            if limits.time_is_up() {
                report.cut_short = true;
                break;
            }
            let marker = cursor.target_group_marker.clone();
            let (groups, next) = self.elb.project_target_groups(marker).await?;
            // Only this stack's VPC: the functions make target groups nowhere else, and the
            // account may hold many more (other stacks, other clusters).
            let groups: Vec<_> = groups
                .into_iter()
                .filter(|g| g.vpc_id.as_deref() == Some(self.vpc_id.as_str()))
                .collect();
            let arns: Vec<String> = groups.iter().map(|g| g.arn.clone()).collect();
            let tags = self.elb.tags_of(&arns).await?;
            let mut deferred = false;
            for g in &groups {
                let Some(t) = tags.get(&g.arn).filter(|t| self.is_ours(t)) else {
                    continue;
                };
                if self
                    .target_group_wanted(cluster, t, services, claimed)
                    .await?
                {
                    continue;
                }
                if !budget.take(1) {
                    deferred = true;
                    continue;
                }
                tracing::warn!(target_group = %g.arn, "deleting a target group no claim accounts for");
                match self.elb.delete_target_group(&g.arn).await {
                    Ok(()) => report.leaked_target_groups_deleted += 1,
                    // Still used by a listener: that listener is dealt with first.
                    Err(e) if e.kind == ElbErrorKind::InUse => budget.refund(1),
                    Err(e) => return Err(e.into()),
                }
            }
            if deferred {
                // Keep this page's marker: the next run starts here.
                break;
            }
            cursor.target_group_marker = next;
            cursors.save_cursor(cursor).await?;
            if cursor.target_group_marker.is_none() {
                break; // The last page: the next run starts from the first.
            }
        }
        Ok(())
    }

    async fn target_group_wanted(
        &self,
        cluster: &dyn Cluster,
        tags: &HashMap<String, String>,
        services: &BTreeMap<String, ServiceState>,
        claimed: &SeenClaims,
    ) -> Result<bool> {
        let (Some(uid), Some(listener)) = (tags.get(TAG_SERVICE_UID), tags.get(TAG_LISTENER))
        else {
            return Ok(true); // Not enough to judge: leave it.
        };
        let pod = tags.get(TAG_POD);
        // Keeping is always safe; deleting needs a fresh read that finds no claim.
        if claimed.accounts_for(uid, listener, pod) {
            return Ok(true);
        }
        if self
            .store
            .claims_of(uid)
            .await?
            .iter()
            .any(|c| c.key.as_str() == listener && c.owner.pod.as_ref() == pod)
        {
            return Ok(true);
        }
        let (Some(ns), Some(name)) = (tags.get(TAG_NAMESPACE), tags.get(TAG_SERVICE)) else {
            return Ok(false);
        };
        Ok(
            match self.live_service(cluster, services, ns, name, uid).await? {
                Some(s) => match self.decide(&s) {
                    // A pod's group without a claim is wanted only while its pod exists (one
                    // being allocated); a Service's, while the Service asks for the listener.
                    Decision::Ensure(_, specs)
                        if specs.iter().any(|spec| spec.key.as_str() == listener) =>
                    {
                        match pod {
                            None => true,
                            Some(pod) => cluster.pod(ns, pod).await?.is_some(),
                        }
                    }
                    _ => false,
                },
                None => false,
            },
        )
    }
}
