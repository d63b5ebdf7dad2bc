//! Per-pod mode (`nlb.port-manager/mode: per-pod`): a set of listeners for each pod behind a
//! Service, that pod their only target.
//!
//! Each pod is allocated as a subject of its own ([`ServiceState::for_pod`]) by the same steps
//! as a Service: its claims are the Service's, keyed by the pod's name (a StatefulSet pod made
//! again under its name keeps its ports); its outputs (`address`, `allocations`, `status`,
//! `target`) are written on the pod, where the Downward API reads them. The Service carries the
//! finalizer and a summary (`pods`, `status`). A pod gone from the Service (no endpoint and no
//! pod of that name) keeps its ports for the Service's `pod-release-after` seconds.

mod gone;
mod up_to_date;

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};

use super::fingerprint::listener_fingerprint;
use super::{Error, Outcome, Reconciler, Result};
use crate::annotations::{self, AllocationRequest, PodsSummary, Status};
use crate::claims::{Claim, RunToken};
use crate::cluster::{Cluster, NoticeKind, ServiceOutputs, Written};
use crate::pool::NlbPool;
use crate::service_model::{ListenerSpec, PodState, ServiceState};
use crate::targets::{SliceView, desired_targets};

/// The status of a subject whose listeners have healthy targets.
const READY: &str = "Ready";

/// Pods one run allocates at once.
const POD_CONCURRENCY: usize = 16;

/// What became of one pod in a run.
enum PodResult {
    /// Its listeners exist; `claimed` of them were claimed now; `ready`: known reachable.
    Allocated { claimed: usize, ready: bool },
    /// It waits for ports.
    Pending(String),
    /// Another run is on it.
    Busy,
    /// The run failed on it (reported as the run's error once the others are done).
    Failed(Error),
}

/// Whether a pod of the run found the pool full, and why.
#[derive(Default)]
struct PoolFull(std::sync::Mutex<Option<String>>);

impl PoolFull {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn note(&self, reason: &str) {
        self.lock().get_or_insert_with(|| reason.to_owned());
    }

    fn reason(&self) -> Option<String> {
        self.lock().clone()
    }
}

/// How a pass goes over the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Every pod is checked against AWS (Service changes, the sweep).
    Thorough,
    /// A pod whose outputs already advertise its claims and its IP is left alone (endpoint
    /// changes: only the pods that changed cost calls).
    Changed,
    /// As [`Pass::Changed`], run by the reachability check itself: it does not note the
    /// Service for another check (which would push its deadline back for ever).
    Recheck,
}

impl Reconciler {
    /// Reconciles a Service woken because its pool has room again: a per-pod Service's pods
    /// that already hold their ports are left alone (their waiting pods are the news).
    pub(super) async fn reconcile_woken(
        &self,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<Outcome> {
        self.reconcile_pass(
            &RunToken::random(),
            cluster,
            namespace,
            name,
            Some(uid),
            Pass::Changed,
        )
        .await
    }

    /// Allocates every pod behind `service`, releases the ports of pods gone longer than the
    /// grace, and writes the Service's summary.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ensure_pods(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
        pass: Pass,
    ) -> Result<Outcome> {
        let namespace = &service.key.namespace;
        let (pods, claims) = tokio::join!(
            cluster.pods(namespace, &service.selector),
            self.store.claims_of(&service.uid)
        );
        let (pods, claims) = (pods?, claims?);
        // Endpoints that claim the EndpointSlice controller count only for the Service's own
        // pods, at their own IPs (crate::pod_targets); what is left out is told once.
        let (checked, not_pods) = self.own_pods_among(service, slices.to_vec(), &pods);
        let slices = checked.as_slice();
        if !not_pods.is_empty() {
            self.report_rejections(cluster, service, &not_pods).await?;
        }
        let (own, pod_claims): (Vec<Claim>, Vec<Claim>) =
            claims.into_iter().partition(|c| c.owner.pod.is_none());
        let mut current = service.clone();
        if !own.is_empty() {
            // Switched from per-Service mode: the Service's own listeners go.
            match self.release_subject(token, cluster, &current, own).await? {
                Written::Done(after) => current = *after,
                Written::Gone => return Ok(Outcome::Nothing("the Service was deleted meanwhile")),
            }
        }
        // The finalizer and the summary key come before any pod's claim: a Service holding
        // pods' ports is never deleted unreleased, and reads as per-pod if switched back.
        current = match self.mark_per_pod(cluster, &current).await? {
            Written::Done(after) => *after,
            Written::Gone => return Ok(Outcome::Nothing("the Service was deleted meanwhile")),
        };
        let mut by_pod: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
        for c in pod_claims {
            if let Some(pod) = c.owner.pod.clone() {
                by_pod.entry(pod).or_default().push(c);
            }
        }
        let endpoints: BTreeSet<&str> = slices
            .iter()
            .flat_map(|s| &s.pods)
            .map(|p| p.pod.as_str())
            .collect();
        // A pod gets ports once it has an endpoint; a deleting pod keeps what it holds.
        let work: Vec<&PodState> = pods
            .iter()
            .filter(|p| endpoints.contains(p.name.as_str()) && !p.deleting)
            .collect();
        // Built in a loop, not a closure: the futures stay Send for a spawned handler.
        let full = PoolFull::default();
        let mut allocations = Vec::with_capacity(work.len());
        for pod in work {
            let held = by_pod.get(&pod.name).map_or(&[][..], Vec::as_slice);
            allocations.push(self.ensure_pod(
                token, cluster, &current, pod, held, pool, request, specs, slices, pass, &full,
            ));
        }
        let results: Vec<PodResult> = stream::iter(allocations)
            .buffer_unordered(POD_CONCURRENCY)
            .collect()
            .await;
        let present: BTreeSet<String> = pods
            .iter()
            .map(|p| p.name.clone())
            .chain(endpoints.iter().map(|e| (*e).to_owned()))
            .collect();
        let (leaving, released) = self
            .tend_gone_pods(
                token,
                cluster,
                &current,
                &by_pod,
                &present,
                request.pod_release_after,
            )
            .await?;
        let mut summary = PodsSummary {
            leaving,
            ..PodsSummary::default()
        };
        let (mut claimed, mut first_pending, mut failure) = (0, None, None);
        for r in results {
            match r {
                PodResult::Allocated { claimed: n, ready } => {
                    summary.allocated += 1;
                    summary.ready += usize::from(ready);
                    claimed += n;
                }
                PodResult::Busy => summary.allocated += 1,
                PodResult::Pending(reason) => {
                    summary.pending += 1;
                    first_pending.get_or_insert(reason);
                }
                PodResult::Failed(e) => {
                    summary.errors += 1;
                    failure.get_or_insert(e);
                }
            }
        }
        self.write_summary(cluster, &current, &summary, first_pending.as_deref())
            .await?;
        let listeners = specs.len();
        let hook = match &first_pending {
            Some(reason) => Outcome::Pending(reason.clone()),
            None => Outcome::Allocated { listeners, claimed },
        };
        self.after_allocation(pool, &current, summary.pending.max(1) * listeners, &hook)
            .await;
        let targets = slices.iter().any(|s| !s.pods.is_empty());
        if summary.ready < summary.allocated && targets && pass != Pass::Recheck {
            self.note_check(&current).await;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Outcome::Pods {
            allocated: summary.allocated,
            pending: summary.pending,
            leaving,
            released,
        })
    }

    /// One pod: nothing when its outputs already say what it holds (a [`Pass::Changed`]),
    /// else the allocation steps a Service goes through, on the pod.
    #[allow(clippy::too_many_arguments)]
    async fn ensure_pod(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pod: &PodState,
        held: &[Claim],
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
        pass: Pass,
        full: &PoolFull,
    ) -> PodResult {
        let subject = service.for_pod(pod);
        // A pod whose only missing condition is the reachable gate gets its target registered,
        // so the gate can turn True (as the AWS Load Balancer Controller does).
        let not_ready_too = pod.gated && pod.containers_ready;
        let pod_slices: Vec<SliceView> = slices
            .iter()
            .map(|s| s.only_pod(&pod.name, not_ready_too))
            .collect();
        let was_ready = subject
            .annotations
            .get(annotations::STATUS)
            .map(String::as_str)
            == Some(READY);
        let made_from = |spec: &ListenerSpec| {
            listener_fingerprint(
                pool.name(),
                request,
                spec,
                &desired_targets(spec, &pod_slices),
            )
        };
        if pass != Pass::Thorough
            && up_to_date::pod_up_to_date(&subject, held, specs, &pod_slices, made_from)
        {
            return PodResult::Allocated {
                claimed: 0,
                ready: was_ready,
            };
        }
        if held.is_empty()
            && let Some(reason) = full.reason()
        {
            // Another pod of this run found the pool full: this one would only make a target
            // group to delete again. It is told so, and waits like the others.
            return match self.pending(cluster, &subject, true, reason.clone()).await {
                Ok(_) => PodResult::Pending(reason),
                Err(e) => PodResult::Failed(e),
            };
        }
        let result = self
            .ensure(token, cluster, &subject, pool, request, specs, &pod_slices)
            .await;
        if let Ok(Outcome::Pending(reason)) = &result {
            full.note(reason);
        }
        match result {
            Ok(Outcome::Allocated { claimed, .. }) if claimed > 0 && !was_ready => {
                let mut measured = self.measure();
                measured.allocations_made += 1;
                if let Some(created) = pod.created {
                    measured
                        .pod_address_seconds
                        .push(crate::claims::now_epoch() - created);
                }
                PodResult::Allocated {
                    claimed,
                    ready: false,
                }
            }
            Ok(Outcome::Allocated { claimed, .. }) => PodResult::Allocated {
                claimed,
                // A pod whose listeners did not change keeps `Ready` (finish_allocation).
                ready: was_ready && claimed == 0,
            },
            Ok(Outcome::Pending(reason)) => PodResult::Pending(reason),
            Ok(_) => PodResult::Allocated {
                claimed: 0,
                ready: false,
            },
            Err(Error::Busy { .. }) => PodResult::Busy,
            Err(e) => {
                tracing::warn!(service = %service.key, pod = %pod.name, error = %e,
                    "could not allocate the pod");
                PodResult::Failed(e)
            }
        }
    }

    /// Makes the Service hold the finalizer and the `pods` key before any pod claims a port.
    async fn mark_per_pod(&self, cluster: &dyn Cluster, service: &ServiceState) -> Result<Written> {
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
    async fn write_summary(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        summary: &PodsSummary,
        pending: Option<&str>,
    ) -> Result<()> {
        let status = match pending {
            Some(reason) => Status::Pending(format!(
                "{} of {} pods wait for ports: {reason}",
                summary.pending,
                summary.pending + summary.allocated + summary.errors
            )),
            None if summary.allocated > 0 && summary.ready == summary.allocated => Status::Ready,
            None => Status::Allocated,
        };
        let (kind, reason) = match pending {
            Some(_) => (NoticeKind::Warning, "PoolExhausted"),
            None => (NoticeKind::Normal, "Allocated"),
        };
        let note = format!(
            "pods: {} allocated ({} reachable), {} pending, {} failed, {} leaving",
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
    // Counts only: serializing cannot fail; an empty object is the fallback anyway.
    serde_json::to_string(summary).unwrap_or_else(|_| "{}".to_owned())
}
