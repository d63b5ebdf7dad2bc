//! What a per-pod Service itself carries: the finalizer, and the `pods` summary with its
//! `status`; the summary also holds this Service's address for each pod whose outputs another
//! Service writes.

use std::collections::BTreeSet;

use super::super::{Reconciler, Result};
use super::PodRun;
use crate::contract::annotations::{self, PodsSummary, SharedPod, Status};
use crate::contract::service_model::ServiceState;
use crate::model::claims::Claim;
use crate::model::cluster::{Cluster, NoticeKind, ServiceOutputs, Written};

/// The summary `service` carries; empty when it has none (or one this code cannot read).
pub(super) fn of(service: &ServiceState) -> PodsSummary {
    service
        .annotations
        .get(annotations::PODS)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

impl Reconciler {
    /// Makes the Service hold the finalizer and the `pods` key before any pod claims a port.
    pub(super) async fn mark_per_pod(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<Written> {
        if service.has_finalizer() && service.annotations.contains_key(annotations::PODS) {
            return Ok(Written::Done(Box::new(service.clone())));
        }
        let empty = summary_json(&PodsSummary::default());
        let want = |s: &ServiceState| {
            let mut outputs = per_pod_outputs(s);
            outputs
                .annotations
                .entry(annotations::PODS.to_owned())
                .or_insert_with(|| empty.clone());
            outputs
        };
        self.write_with(cluster, service, &want).await
    }

    /// Writes the Service's `pods` and `status`, with an Event when the status changes.
    /// `disabled`: the Service takes all its pods out of their listeners. Pods taken out on
    /// their own do not keep it from `Ready` once every other pod is reachable.
    pub(super) async fn write_summary(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        summary: &PodsSummary,
        pending: Option<&str>,
        disabled: bool,
    ) -> Result<()> {
        let enabled = summary.allocated - summary.disabled;
        let status = match pending {
            Some(reason) => Status::Pending(format!(
                "{} of {} pods wait for ports: {reason}",
                summary.pending,
                summary.pending + summary.allocated + summary.errors
            )),
            None if disabled => Status::Disabled,
            None if enabled > 0 && summary.ready == enabled => Status::Ready,
            None => Status::Allocated,
        };
        let (kind, reason) = match pending {
            Some(_) => (NoticeKind::Warning, "PoolExhausted"),
            None if disabled => (NoticeKind::Normal, "NetworkDisabled"),
            None => (NoticeKind::Normal, "Allocated"),
        };
        let shared = match summary.shared.len() {
            0 => String::new(),
            n => format!(", {n} carrying another Service's outputs"),
        };
        let off = match summary.disabled {
            0 => String::new(),
            n => format!(", {n} network-disabled"),
        };
        let note = format!(
            "pods: {} allocated ({} reachable{off}{shared}), {} pending, {} failed, {} leaving",
            summary.allocated, summary.ready, summary.pending, summary.errors, summary.leaving
        );
        let json = summary_json(summary);
        let status = status.to_string();
        let want = |s: &ServiceState| {
            let mut outputs = per_pod_outputs(s);
            outputs
                .annotations
                .insert(annotations::PODS.to_owned(), json.clone());
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), status.clone());
            outputs
        };
        self.write_and_tell(cluster, service, &want, kind, reason, &note)
            .await
    }

    /// This Service's summary entry for a pod whose outputs another Service writes: the
    /// address of its first listener, from `held` (the claims as read, when nothing changed
    /// them) or read again.
    pub(super) async fn shared_entry(
        &self,
        pods: &PodRun<'_>,
        subject: &ServiceState,
        held: Option<&[Claim]>,
        ready: bool,
    ) -> Result<SharedPod> {
        let read;
        let claims = match held {
            Some(held) => held,
            None => {
                read = self.claims_for(subject).await?;
                &read
            }
        };
        let first = pods
            .run
            .specs
            .first()
            .and_then(|spec| claims.iter().find(|c| c.key == spec.key));
        let Some(first) = first else {
            return Ok(SharedPod::default());
        };
        let holders = BTreeSet::from([first.nlb_arn.as_str()]);
        let dns = self.dns_names_of(pods.run.pool, &holders).await?;
        let address = dns
            .get(&first.nlb_arn)
            .map(|dns| format!("{dns}:{}", first.port))
            .unwrap_or_default();
        Ok(SharedPod { address, ready })
    }
}

/// A per-pod Service's outputs as they are, keeping only what per-pod mode writes on it (the
/// summary and status; the per-Service keys of an earlier mode go), with the finalizer.
fn per_pod_outputs(service: &ServiceState) -> ServiceOutputs {
    let mut outputs = ServiceOutputs::current(service);
    outputs
        .annotations
        .retain(|k, _| k == annotations::PODS || k == annotations::STATUS);
    outputs.finalizer = true;
    outputs
}

fn summary_json(summary: &PodsSummary) -> String {
    // Counts and names only: serializing cannot fail; an empty object is the fallback anyway.
    serde_json::to_string(summary).unwrap_or_else(|_| "{}".to_owned())
}
