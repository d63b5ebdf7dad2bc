//! Keeping targets to the EndpointSlices and addresses the operator trusts
//! ([`crate::model::target_policy`]), and telling the Service's owner what was left out.

use futures::future::join_all;

use super::{Reconciler, Result};
use crate::contract::pod_model::PodState;
use crate::contract::service_model::ServiceState;
use crate::model::cluster::{Cluster, Notice, NoticeKind};
use crate::model::pod_targets;
use crate::model::target_policy::{Rejection, Screened, TargetPolicy};
use crate::model::targets::SliceView;

impl Reconciler {
    /// Sets which EndpointSlices and addresses may become targets (by default the EndpointSlice
    /// controller's slices, any address: [`TargetPolicy::default`]).
    pub fn with_target_policy(mut self, policy: TargetPolicy) -> Self {
        self.targets = policy;
        self
    }

    /// The Service's trusted slices, and what was left out (logged here).
    pub(super) fn screen(&self, service: &ServiceState, slices: Vec<SliceView>) -> Screened {
        let screened = self.targets.screen(slices);
        for r in &screened.rejections {
            tracing::warn!(service = %service.key, slice = %r.slice, reason = r.reason, note = %r.note, "endpoints left out of the targets");
        }
        screened
    }

    /// `slices` with only the Service's own pods' addresses where a slice claims the
    /// EndpointSlice controller ([`crate::model::pod_targets`]), and what was left out (logged here).
    /// Reads the pods only when such a slice lists an address.
    pub(super) async fn own_pods_only(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        slices: Vec<SliceView>,
    ) -> Result<(Vec<SliceView>, Vec<Rejection>)> {
        if !pod_targets::needs_pods(&slices) {
            return Ok((slices, vec![]));
        }
        let pods = if service.selector.is_empty() {
            vec![]
        } else {
            cluster
                .pods(&service.key.namespace, &service.selector)
                .await?
        };
        Ok(self.own_pods_among(service, slices, &pods))
    }

    /// As [`Reconciler::own_pods_only`], with the selected pods already read.
    pub(super) fn own_pods_among(
        &self,
        service: &ServiceState,
        slices: Vec<SliceView>,
        pods: &[PodState],
    ) -> (Vec<SliceView>, Vec<Rejection>) {
        let (kept, rejections) =
            pod_targets::only_pod_addresses(!service.selector.is_empty(), slices, pods);
        for r in &rejections {
            tracing::warn!(service = %service.key, slice = %r.slice, reason = r.reason, note = %r.note, "endpoints left out of the targets");
        }
        (kept, rejections)
    }

    /// `slices` with the endpoints of pods that declare the reachable gate and whose
    /// containers are ready added as ready: they are not Ready only because of the gate, which
    /// turns True once their target is healthy, so their target must be registered first (the
    /// AWS Load Balancer Controller's rule). Reads the pods only when an endpoint is not ready.
    pub(super) async fn admit_gated(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        mut slices: Vec<SliceView>,
    ) -> Result<Vec<SliceView>> {
        let waiting = slices.iter().flat_map(|s| &s.pods).any(|p| !p.ready);
        if !waiting || service.selector.is_empty() {
            return Ok(slices);
        }
        let gated: std::collections::BTreeSet<String> = cluster
            .pods(&service.key.namespace, &service.selector)
            .await?
            .into_iter()
            .filter(|p| p.gated && p.containers_ready && !p.deleting)
            .map(|p| p.name)
            .collect();
        for slice in &mut slices {
            let admitted: Vec<std::net::Ipv4Addr> = slice
                .pods
                .iter()
                .filter(|p| !p.ready && gated.contains(&p.pod))
                .map(|p| p.ip)
                .collect();
            slice.ready.extend(admitted);
        }
        Ok(slices)
    }

    /// A Warning Event per rejection, published once per Service and rejection (a run that
    /// meets the same untrusted slice again publishes nothing).
    pub(super) async fn report_rejections(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        rejections: &[Rejection],
    ) -> Result<()> {
        let published = join_all(rejections.iter().map(|r| {
            let notice = Notice {
                kind: NoticeKind::Warning,
                reason: r.reason,
                note: r.note.clone(),
                once: Some(r.fingerprint.clone()),
            };
            async move { cluster.publish(service, &notice).await }
        }))
        .await;
        for p in published {
            p?;
        }
        Ok(())
    }
}
