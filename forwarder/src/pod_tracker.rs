//! The pods that declare the `nlb.port-manager/reachable` readiness gate or carry
//! `nlb.port-manager/network-disabled`, and which opted-in Services to wake when one of them
//! changes.
//!
//! A gated pod's Ready condition waits for the functions to set the gate, so the EndpointSlice
//! controller sees nothing change when its containers turn ready: without this watch nobody
//! would tell the functions to register it, and the gate would never turn True (a deadlock,
//! which stalls an `OrderedReady` StatefulSet at its first pod). The AWS Load Balancer
//! Controller watches pods for the same reason.
//!
//! Only gated pods are remembered, as [`PodFacts`] (hashes, never the pod). A tracked pod costs
//! about 250 bytes: the map entry (key 48 + value 40, about 100 with the table's slack), the
//! namespace and name on the heap (about 64), and 8 per label (about 32); hashbrown's growth
//! may double the entry part. 10,000 gated pods take 2 to 4 MB. No I/O here.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::Event;

use crate::decide::{self, ObjectKey, PodFacts};
use crate::tracker::{Scope, ServiceTracker, Tracked, key_of};

/// The field selector of the pod watch: only pods whose phase is `Running`.
///
/// A pod's containers can only be ready (and it can only be a target) while it runs: a
/// `Pending` pod has nothing to register, and one that `Succeeded`, `Failed` or is `Unknown`
/// must be deregistered. A pod leaving the selector arrives as a deletion, which is what it is
/// to the functions; a pod being deleted keeps running (with a deletionTimestamp) until its
/// containers stop, so that change is seen too. The API offers nothing narrower: readiness
/// gates cannot be selected on.
pub const POD_FIELD_SELECTOR: &str = "status.phase=Running";

/// The gated pods seen by the pod watch, per scope, with their last facts.
#[derive(Debug)]
pub struct PodTracker {
    pods: HashMap<ObjectKey, Tracked<PodFacts>>,
    scopes: Vec<Scope>,
}

/// A pod whose facts changed: its namespace and the labels to find its Services by.
type Touched = (String, Box<[u64]>);

impl PodTracker {
    /// A tracker for `scopes` watch streams.
    pub fn new(scopes: usize) -> Self {
        Self {
            pods: HashMap::new(),
            scopes: vec![Scope::default(); scopes],
        }
    }

    /// Whether every scope finished its first list.
    pub fn synced(&self) -> bool {
        self.scopes.iter().all(|s| s.synced)
    }

    /// How many gated pods are tracked.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// Whether no gated pod is tracked.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Applies one pod watch event of `scope`; returns the Services (among `services`) whose
    /// endpoints the functions must look at again, sorted, once each.
    pub fn apply(
        &mut self,
        scope: usize,
        event: Event<Pod>,
        services: &ServiceTracker,
    ) -> Vec<ObjectKey> {
        let Some(Scope { epoch, synced }) = self.scopes.get(scope).cloned() else {
            return Vec::new();
        };
        let mut touched: Vec<Touched> = Vec::new();
        match event {
            Event::Init => {
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.epoch += 1;
                }
            }
            // The first list only learns what exists: the Services' own first list sends a
            // `Service Changed` for each, and the functions then read every pod.
            Event::InitApply(pod) => touched = self.upsert(&pod, scope, epoch, synced),
            Event::Apply(pod) => touched = self.upsert(&pod, scope, epoch, true),
            Event::Delete(pod) => {
                let key = key_of(&pod);
                let labels = self
                    .pods
                    .remove(&key)
                    .map(|t| t.value.labels)
                    .or_else(|| decide::pod_facts(&pod).map(|f| f.labels));
                touched.extend(labels.map(|l| (key.namespace, l)));
            }
            Event::InitDone => {
                // Gone while the watch was away (deleted, or no longer running).
                let stale: Vec<ObjectKey> = self
                    .pods
                    .iter()
                    .filter(|(_, t)| t.scope == scope && t.epoch != epoch)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in stale {
                    if let Some(t) = self.pods.remove(&key) {
                        touched.push((key.namespace, t.value.labels));
                    }
                }
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.synced = true;
                }
            }
        }
        let mut out: Vec<ObjectKey> = touched
            .iter()
            .flat_map(|(namespace, labels)| services.selecting(namespace, labels))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Remembers a pod seen by a list or the watch; returns what changed if `report`.
    fn upsert(&mut self, pod: &Pod, scope: usize, epoch: u64, report: bool) -> Vec<Touched> {
        let key = key_of(pod);
        let mut touched = Vec::new();
        let Some(facts) = decide::pod_facts(pod) else {
            // Its network-disabled annotation went (readiness gates cannot change on a pod),
            // or this is another pod under a known name: the Services must look again.
            if let Some(t) = self.pods.remove(&key) {
                touched.push((key.namespace, t.value.labels));
            }
            return touched;
        };
        let old = self.pods.get(&key).map(|t| &t.value);
        if report && old.is_none_or(|o| o.fingerprint != facts.fingerprint) {
            // Relabelled: the Services that selected it before must let it go.
            if let Some(o) = old.filter(|o| o.labels != facts.labels) {
                touched.push((key.namespace.clone(), o.labels.clone()));
            }
            touched.push((key.namespace.clone(), facts.labels.clone()));
        }
        self.pods.insert(
            key,
            Tracked {
                value: facts,
                scope,
                epoch,
            },
        );
        touched
    }
}

#[cfg(test)]
#[path = "pod_tracker_tests.rs"]
mod tests;
