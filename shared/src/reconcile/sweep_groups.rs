//! The sweep's target groups: deleting those nothing accounts for, a bounded share per run.

use std::collections::{BTreeMap, HashMap};

use super::sweep::{DeletionBudget, SweepLimits, SweepReport};
use super::{Decision, Reconciler, Result};
use crate::claims::SweepCursor;
use crate::cluster::Cluster;
use crate::elb::{
    ElbErrorKind, TAG_LISTENER, TAG_NAMESPACE, TAG_POD, TAG_SERVICE, TAG_SERVICE_UID,
};
use crate::service_model::ServiceState;

impl Reconciler {
    /// Deletes the project's target groups that neither a claim nor a live Service's wanted
    /// listener accounts for (a run that stopped between making one and claiming its port).
    /// A page with deletions the budget does not cover is checked again by the next run.
    pub(super) async fn sweep_target_groups(
        &self,
        cluster: &dyn Cluster,
        services: &BTreeMap<String, ServiceState>,
        cursor: &mut SweepCursor,
        limits: SweepLimits,
        budget: &mut DeletionBudget,
        report: &mut SweepReport,
    ) -> Result<()> {
        let mut marker = cursor.target_group_marker.take();
        for _ in 0..limits.target_group_pages {
            let (groups, next) = self.elb.project_target_groups(marker.clone()).await?;
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
                if self.target_group_wanted(cluster, t, services).await? {
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
            marker = next;
            if marker.is_none() {
                break;
            }
        }
        cursor.target_group_marker = marker;
        Ok(())
    }

    async fn target_group_wanted(
        &self,
        cluster: &dyn Cluster,
        tags: &HashMap<String, String>,
        services: &BTreeMap<String, ServiceState>,
    ) -> Result<bool> {
        let (Some(uid), Some(listener)) = (tags.get(TAG_SERVICE_UID), tags.get(TAG_LISTENER))
        else {
            return Ok(true); // Not enough to judge: leave it.
        };
        let pod = tags.get(TAG_POD);
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
