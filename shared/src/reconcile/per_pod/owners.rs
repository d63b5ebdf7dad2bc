//! Whose outputs a pod carries when two per-pod Services select it (a TCP and a UDP Service, a
//! blue/green move).
//!
//! A pod has one set of output annotations, which its game server reads through the Downward
//! API; two Services writing them in turn would make its address flip. So they belong to one
//! Service, named on the pod ([`SERVICE`], `name/uid`): the first to write them. Any other
//! per-pod Service over the pod still claims its listeners and registers the pod as their
//! target (players may use both), but lists its addresses in its own `pods` summary, never
//! writes, clears or publishes on the pod, and never sets the pod's readiness gate; it is told
//! so once, in a Warning Event naming the owner.
//!
//! The owner on record may be taken over only when it can no longer speak for the pod: no
//! Service of that name and uid exists, it is being deleted, it opted out, it is no longer in
//! per-pod mode, or its selector no longer selects the pod. A live owner (even one whose
//! annotations are rejected: it keeps what it holds) is never overridden. The takeover is
//! decided from what this run read and written conditional on the pod being as read
//! ([`crate::model::cluster::pod_outputs`]), so of two Services taking a pod at once one wins, and the
//! other sees the new owner on its next read.

use std::collections::{BTreeMap, BTreeSet};

use super::super::{Reconciler, Result};
use crate::contract::annotations::{self, MODE, SERVICE, parse_service_ref};
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::cluster::{Cluster, Notice, NoticeKind};

/// The Event reason telling a Service that pods it selects carry another Service's outputs.
pub(in crate::reconcile) const PODS_SHARED: &str = "PodsShared";

/// Pods named in the Event, at most; the rest are counted.
const NAMED_IN_EVENT: usize = 5;

/// Whose outputs a pod carries, as this run judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PodOutputs {
    /// This Service's to write: the pod names it, or no Service.
    Ours,
    /// The pod names a Service judged gone (the [`SERVICE`] value): this one takes over.
    TakeOver(String),
    /// Another per-pod Service, still selecting the pod, wrote them first.
    Theirs {
        /// Its name.
        name: String,
        /// Its uid.
        uid: String,
    },
}

impl PodOutputs {
    /// Whether another Service writes the pod's outputs.
    pub(super) fn theirs(&self) -> bool {
        matches!(self, Self::Theirs { .. })
    }
}

/// Whether `owner` (as read) still speaks for `pod`: it is the Service of that uid, not being
/// deleted, not opted out, in per-pod mode, and its selector selects the pod.
fn speaks_for(owner: &ServiceState, uid: &str, pod: &PodState) -> bool {
    owner.uid == uid
        && !owner.deleting
        // An invalid opt-in value is refused, but the Service keeps what it holds.
        && annotations::opt_in(&owner.annotations) != Ok(false)
        && owner.annotations.get(MODE).map(String::as_str) == Some("per-pod")
        && pod.selected_by(&owner.selector)
}

impl Reconciler {
    /// Judges whose outputs each of `pods` carries for `service`; the Services the pods name
    /// are read once each.
    pub(super) async fn judge_owners(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pods: &[&PodState],
    ) -> Result<BTreeMap<String, PodOutputs>> {
        let mut read: BTreeMap<String, Option<ServiceState>> = BTreeMap::new();
        let mut judged = BTreeMap::new();
        for pod in pods {
            let outputs = match pod.annotations.get(SERVICE) {
                None => PodOutputs::Ours,
                Some(value) => match parse_service_ref(value) {
                    Some((_, uid)) if uid == service.uid => PodOutputs::Ours,
                    Some((name, uid)) => {
                        if !read.contains_key(name) {
                            let found = cluster.service(&service.key.namespace, name).await?;
                            read.insert(name.to_owned(), found);
                        }
                        match read.get(name).and_then(Option::as_ref) {
                            Some(owner) if speaks_for(owner, uid, pod) => PodOutputs::Theirs {
                                name: name.to_owned(),
                                uid: uid.to_owned(),
                            },
                            _ => PodOutputs::TakeOver(value.clone()),
                        }
                    }
                    // Not a value this system writes: nobody to defer to.
                    None => PodOutputs::TakeOver(value.clone()),
                },
            };
            if let PodOutputs::TakeOver(owner) = &outputs {
                tracing::info!(service = %service.key, pod = %pod.name, owner,
                    "the pod's outputs name a Service that no longer speaks for it; taking them over");
            }
            judged.insert(pod.name.clone(), outputs);
        }
        Ok(judged)
    }

    /// A Warning Event on `service` for each Service whose outputs pods it selects carry,
    /// once per owner (the Event's name comes from it: a change of owner is told again).
    pub(super) async fn tell_shared(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        judged: &BTreeMap<String, PodOutputs>,
    ) -> Result<()> {
        let mut by_owner: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
        for (pod, outputs) in judged {
            if let PodOutputs::Theirs { name, uid } = outputs {
                by_owner.entry((name, uid)).or_default().insert(pod);
            }
        }
        for ((name, uid), pods) in by_owner {
            let named: Vec<&str> = pods.iter().take(NAMED_IN_EVENT).copied().collect();
            let more = match pods.len().saturating_sub(NAMED_IN_EVENT) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            let notice = Notice {
                kind: NoticeKind::Warning,
                reason: PODS_SHARED,
                note: format!(
                    "pod(s) {}{more} also belong to per-pod Service {}/{name}, which wrote \
                     their outputs first: their annotations (address, allocations, status, \
                     target) and readiness gate stay that Service's. This Service's listeners \
                     for them work; its address for each is under \"shared\" in its {} \
                     annotation",
                    named.join(", "),
                    service.key.namespace,
                    annotations::PODS,
                ),
                once: Some(format!("{PODS_SHARED}/{uid}")),
            };
            cluster.publish(service, &notice).await?;
        }
        Ok(())
    }
}
