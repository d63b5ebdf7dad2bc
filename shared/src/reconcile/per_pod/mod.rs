//! Per-pod mode (`nlb.port-manager/mode: per-pod`): a set of listeners for each pod behind a
//! Service, that pod their only target.
//!
//! Each pod is allocated as a subject of its own ([`ServiceState::for_pod`]) by the same steps
//! as a Service: its claims are the Service's, keyed by the pod's name (a StatefulSet pod made
//! again under its name keeps its ports); its outputs (`address`, `allocations`, `status`,
//! `target`, `service`) are written on the pod, where the Downward API reads them, unless
//! another per-pod Service wrote them first ([`owners`]). The Service carries the finalizer and
//! a summary (`pods`, `status`).
//!
//! A pod is allocated when it is selected, not terminating, and listed in the endpoints. Every
//! other pod holding ports has no target, from the run that sees it so ([`gone`]): a pod gone
//! (no pod of that name selected any more), a terminating one, one without endpoint or listed
//! at an IP that is no longer its own (a pod made again under its name). A gone pod's ports
//! are kept for the Service's `pod-release-after` seconds, then released.

mod gone;
#[cfg(test)]
mod gone_tests;
mod one_pod;
mod owners;
mod release;
#[cfg(test)]
mod shared_tests;
mod summary;
mod up_to_date;

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};

use super::fingerprint::listener_fingerprint;
use super::run::Run;
use super::{Error, Outcome, Reconciler, Result};
use crate::contract::annotations::{AllocationRequest, PodsSummary, SharedPod};
use crate::contract::service_model::{ListenerSpec, PodState};
use crate::model::claims::{Claim, RunToken};
use crate::model::cluster::{Cluster, Written};
use crate::model::pool::NlbPool;
use crate::model::targets::{SliceView, desired_targets};

#[cfg(test)]
pub(in crate::reconcile) use owners::PODS_SHARED;
use owners::PodOutputs;

/// The status of a subject whose listeners have healthy targets.
const READY: &str = "Ready";

/// Pods one run allocates at once.
const POD_CONCURRENCY: usize = 16;

/// What became of one pod in a run.
enum PodResult {
    /// Its listeners exist; `claimed` of them were claimed now; `ready`: known reachable;
    /// `disabled`: taken out of its listeners; `shared`: the pod's outputs are another
    /// Service's, and this is this Service's entry.
    Allocated {
        claimed: usize,
        ready: bool,
        disabled: bool,
        shared: Option<SharedPod>,
    },
    /// Its own `network-disabled` value cannot be read: its status says so (counted among the
    /// errors, not failing the run).
    Rejected,
    /// It waits for ports.
    Pending(String),
    /// Another run is on it (a shared pod: with its entry as read).
    Busy(Option<SharedPod>),
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

/// What one pass over a per-pod Service's pods works from.
struct PodRun<'a> {
    /// The run over the Service, as last written by it, with its pods' endpoints as checked.
    run: Run<'a>,
    pass: Pass,
    full: PoolFull,
    /// The shared pods of the summary as read: their readiness carries over.
    previous: BTreeMap<String, SharedPod>,
    /// Shared pods the reachability check found reachable just now.
    reached: &'a BTreeSet<String>,
    /// The targets half of what a listener with no target is made from (see [`gone`]).
    no_targets: String,
}

impl PodRun<'_> {
    /// What the listener of `spec` is made from, with `pod_slices`' targets.
    fn made_from(&self, spec: &ListenerSpec, pod_slices: &[SliceView]) -> String {
        listener_fingerprint(
            self.run.pool.name(),
            self.run.request,
            spec,
            &desired_targets(spec, pod_slices),
        )
    }
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

    /// Allocates every pod behind `run`'s Service, takes the targets of the pods that are not
    /// served away, releases the ports of pods gone longer than the grace, and writes the
    /// summary.
    pub(super) async fn ensure_pods(&self, run: &Run<'_>, pass: Pass) -> Result<Outcome> {
        self.ensure_pods_noting(run, pass, &BTreeSet::new()).await
    }

    /// [`Reconciler::ensure_pods`], the shared pods in `reached` counted as reachable (the
    /// reachability check found their targets healthy).
    pub(super) async fn ensure_pods_noting(
        &self,
        run: &Run<'_>,
        pass: Pass,
        reached: &BTreeSet<String>,
    ) -> Result<Outcome> {
        let (token, cluster, service, pool) = (run.token, run.cluster, run.service, run.pool);
        let (request, specs) = (run.request, run.specs);
        let namespace = &service.key.namespace;
        let (pods, claims) = tokio::join!(
            cluster.pods(namespace, &service.selector),
            self.store.claims_of(&service.uid)
        );
        let (pods, claims) = (pods?, claims?);
        // Endpoints that claim the EndpointSlice controller count only for the Service's own
        // pods, at their own IPs (crate::model::pod_targets); what is left out is told once.
        let (checked, not_pods) = self.own_pods_among(service, run.slices.to_vec(), &pods);
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
        // A pod gets ports once it has an endpoint; a terminating pod gets no target.
        let work: Vec<&PodState> = pods
            .iter()
            .filter(|p| endpoints.contains(p.name.as_str()) && !p.deleting)
            .collect();
        let judged = self.judge_owners(cluster, &current, &work).await?;
        let pods_run = PodRun {
            run: Run {
                service: &current,
                slices,
                ..*run
            },
            pass,
            full: PoolFull::default(),
            previous: summary::of(&current).shared,
            reached,
            no_targets: no_targets_half(pool, request, specs),
        };
        // Built in a loop, not a closure: the futures stay Send for a spawned handler.
        let mut allocations = Vec::with_capacity(work.len());
        for pod in &work {
            let held = by_pod.get(&pod.name).map_or(&[][..], Vec::as_slice);
            let outputs = judged.get(&pod.name).unwrap_or(&PodOutputs::Ours);
            allocations.push(self.ensure_pod(&pods_run, pod, held, outputs));
        }
        let results: Vec<(String, PodResult)> = stream::iter(allocations)
            .buffer_unordered(POD_CONCURRENCY)
            .collect()
            .await;
        let selected: BTreeMap<&str, &PodState> =
            pods.iter().map(|p| (p.name.as_str(), p)).collect();
        let served: BTreeSet<&str> = work.iter().map(|p| p.name.as_str()).collect();
        let (leaving, released) = self
            .tend_unserved(&pods_run, &by_pod, &selected, &served)
            .await?;
        self.tell_shared(cluster, &current, &judged).await?;
        let mut summary = PodsSummary {
            leaving,
            ..PodsSummary::default()
        };
        let (mut claimed, mut first_pending, mut failure) = (0, None, None);
        for (pod, r) in results {
            match r {
                PodResult::Allocated {
                    claimed: n,
                    ready,
                    disabled,
                    shared,
                } => {
                    summary.allocated += 1;
                    summary.ready += usize::from(ready);
                    summary.disabled += usize::from(disabled);
                    claimed += n;
                    if let Some(entry) = shared {
                        summary.shared.insert(pod, entry);
                    }
                }
                PodResult::Busy(shared) => {
                    summary.allocated += 1;
                    if let Some(entry) = shared {
                        summary.shared.insert(pod, entry);
                    }
                }
                PodResult::Pending(reason) => {
                    summary.pending += 1;
                    first_pending.get_or_insert(reason);
                }
                PodResult::Failed(e) => {
                    summary.errors += 1;
                    failure.get_or_insert(e);
                }
                PodResult::Rejected => summary.errors += 1,
            }
        }
        let disabled = request.network_disabled;
        self.write_summary(
            cluster,
            &current,
            &summary,
            first_pending.as_deref(),
            disabled,
        )
        .await?;
        let listeners = specs.len();
        let hook = match &first_pending {
            Some(reason) => Outcome::Pending(reason.clone()),
            None => Outcome::Allocated { listeners, claimed },
        };
        self.after_allocation(pool, &current, summary.pending.max(1) * listeners, &hook)
            .await;
        let targets = slices.iter().any(|s| !s.pods.is_empty());
        // Pods taken out of their listeners have no target to wait for.
        let enabled = summary.allocated - summary.disabled;
        if summary.ready < enabled && targets && pass != Pass::Recheck {
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
}

/// The targets half of the fingerprint of a listener with no target (the same for every
/// listener: it covers only the targets).
fn no_targets_half(pool: &NlbPool, request: &AllocationRequest, specs: &[ListenerSpec]) -> String {
    specs
        .first()
        .map(|spec| listener_fingerprint(pool.name(), request, spec, &Ok(BTreeSet::new())))
        .and_then(|f| f.split_once('.').map(|(_, targets)| targets.to_owned()))
        .unwrap_or_default()
}
