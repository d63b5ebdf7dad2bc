//! AWS's quotas beyond listeners, met as named outcomes: a refused CreateTargetGroup
//! (`TooManyTargetGroups`) or RegisterTargets (`TooManyTargets`) leaves the Service `Pending`
//! with a reason naming the quota and how to raise it, a Warning Event, and a `QuotaRefused`
//! metric, instead of a failed function retried until the dead-letter queue.
//!
//! Pending, not Error: both quotas count what the whole account (or NLB) holds, so they clear
//! by themselves when other rooms release, and the sweep retries Pending Services each run.
//! Nothing is left half-made: a target group refused in the first round takes the claims of
//! that round back with it (`ensure`), so no listener is made without its target group; a
//! refused registration keeps the listener and its claim (the address stays the Service's)
//! and the targets are registered on a later run.

use super::{Outcome, Reconciler, Result};
use crate::contract::service_model::ServiceState;
use crate::model::cluster::Cluster;
use crate::model::elb::{ElbError, ElbErrorKind};

/// Which quota AWS refused, as a Service's Event, status and metric name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quota {
    /// The Warning Event's reason.
    pub event: &'static str,
    /// The `Quota` dimension of the `QuotaRefused` metric.
    pub metric: &'static str,
    /// What the status says before AWS's own message.
    pub what: &'static str,
}

/// `TooManyTargetGroups`.
pub(super) const TARGET_GROUPS: Quota = Quota {
    event: "TargetGroupQuota",
    metric: "TargetGroupsPerRegion",
    what: "AWS refused a target group: the account holds as many target groups in this \
           region as its quota allows (Service Quotas: Elastic Load Balancing, \"Target \
           Groups per Region\", code L-B22855CB, 3,000 by default, shared by everything in \
           the account; per-pod mode uses one per pod and port). Waiting for target groups \
           to be deleted or the quota to be raised",
};

/// `TooManyTargets`.
pub(super) const TARGETS: Quota = Quota {
    event: "TargetQuota",
    metric: "TargetsPerLoadBalancer",
    what: "AWS refused targets: a target quota is reached (Service Quotas: Elastic Load \
           Balancing, \"Targets per Availability Zone per Network Load Balancer\", code \
           L-B211E961, 500 by default, a target in N target groups counting N times; \
           \"Targets per Network Load Balancer\", L-EEF1AD04, 3,000; \"Targets per Target \
           Group per Region\", L-A0D0B863, 1,000). Waiting for targets to be deregistered or \
           the quota to be raised",
};

/// The quota `e` is AWS's refusal for, if it is one.
pub(super) fn quota_of(e: &ElbError) -> Option<Quota> {
    match e.kind {
        ElbErrorKind::TooManyTargetGroups => Some(TARGET_GROUPS),
        ElbErrorKind::TooManyTargets => Some(TARGETS),
        _ => None,
    }
}

/// The status reason for a refusal of `quota`, with AWS's answer.
pub(super) fn reason(quota: Quota, e: &ElbError) -> String {
    format!("{} ({}: {})", quota.what, e.operation, e.message)
}

impl Reconciler {
    /// The Service waits for the quota AWS refused with `e` (see [`quota_of`]): status
    /// `Pending` naming it, a Warning Event when the status changes, the refusal counted. The
    /// finalizer stays only while the Service holds claims (a listener kept, or an earlier one).
    /// An `e` that is no quota's refusal is returned as the error it is.
    pub(super) async fn wait_for_quota(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        e: &ElbError,
    ) -> Result<Outcome> {
        let Some(quota) = quota_of(e) else {
            return Err(e.clone().into());
        };
        let reason = reason(quota, e);
        tracing::warn!(service = %service.key, quota = quota.metric, error = %e,
            "AWS refused for a quota; the Service waits");
        *self
            .measure()
            .quota_refusals
            .entry(quota.metric)
            .or_default() += 1;
        let holds_nothing = self.claims_for(service).await?.is_empty();
        self.waits(cluster, service, holds_nothing, quota.event, reason)
            .await
    }
}
