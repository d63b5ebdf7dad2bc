//! What the forwarder remembers between watch events, and what each watch event produces.
//!
//! The watch runs once per scope (all namespaces, or one per configured namespace). A re-list
//! of a scope (`Init`, `InitApply`..., `InitDone`) bumps the scope's epoch; entries the re-list
//! did not touch are gone. No I/O here: the watch loop feeds events in and sends what comes out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::watcher::Event;
use tokio::time::Instant;

use crate::decide::{self, Emission, ObjectKey, OptIn, ServiceState};

/// The namespace and name of a watched object.
pub(crate) fn key_of<K: ResourceExt>(obj: &K) -> ObjectKey {
    ObjectKey::new(obj.namespace().unwrap_or_default(), obj.name_any())
}

/// One watch stream's re-list state: its current list's epoch, and whether it listed once.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scope {
    pub(crate) epoch: u64,
    pub(crate) synced: bool,
}

/// A remembered value, with the scope and list epoch that last saw it (an older epoch at the
/// end of a re-list means the object is gone).
#[derive(Debug)]
pub(crate) struct Tracked<T> {
    pub(crate) value: T,
    pub(crate) scope: usize,
    pub(crate) epoch: u64,
}

/// The interesting Services (opted in, or holding our finalizer) and their last facts.
#[derive(Debug)]
pub struct ServiceTracker {
    services: HashMap<ObjectKey, Tracked<ServiceState>>,
    scopes: Vec<Scope>,
}

impl ServiceTracker {
    /// A tracker for `scopes` watch streams.
    pub fn new(scopes: usize) -> Self {
        Self {
            services: HashMap::new(),
            scopes: vec![Scope::default(); scopes],
        }
    }

    /// Whether every scope finished its first list.
    pub fn synced(&self) -> bool {
        self.scopes.iter().all(|s| s.synced)
    }

    /// How many Services are tracked.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether no Service is tracked.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Applies one watch event of `scope`; returns the events to send.
    pub fn apply(&mut self, scope: usize, event: Event<Service>) -> Vec<Emission> {
        let Some(epoch) = self.scopes.get(scope).map(|s| s.epoch) else {
            return Vec::new();
        };
        match event {
            Event::Init => {
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.epoch += 1;
                }
                Vec::new()
            }
            Event::InitApply(svc) => {
                let (key, new) = (key_of(&svc), ServiceState::from_service(&svc));
                let old = self.services.get(&key).map(|t| &t.value);
                let out = if new.interested() {
                    // InitDone re-sends every interesting Service; only a uid change needs
                    // its own event now (the old Service is gone).
                    match old {
                        Some(o) if o.uid != new.uid => decide::on_disappeared(&key, Some(o), None)
                            .into_iter()
                            .collect(),
                        _ => Vec::new(),
                    }
                } else {
                    decide::on_update(&key, old, &new)
                };
                self.store(key, new, scope, epoch);
                out
            }
            Event::InitDone => self.finish_list(scope, epoch),
            Event::Apply(svc) => {
                let (key, new) = (key_of(&svc), ServiceState::from_service(&svc));
                let old = self.services.get(&key).map(|t| &t.value);
                let out = decide::on_update(&key, old, &new);
                self.store(key, new, scope, epoch);
                out
            }
            Event::Delete(svc) => {
                let (key, last) = (key_of(&svc), ServiceState::from_service(&svc));
                let old = self.services.remove(&key).map(|t| t.value);
                decide::on_disappeared(&key, old.as_ref(), Some(&last))
                    .into_iter()
                    .collect()
            }
        }
    }

    fn store(&mut self, key: ObjectKey, value: ServiceState, scope: usize, epoch: u64) {
        if value.interested() {
            self.services.insert(
                key,
                Tracked {
                    value,
                    scope,
                    epoch,
                },
            );
        } else {
            // Plain Services are not remembered: nothing about them can produce an event
            // until they opt in, and then they are new.
            self.services.remove(&key);
        }
    }

    fn finish_list(&mut self, scope: usize, epoch: u64) -> Vec<Emission> {
        let stale: Vec<ObjectKey> = self
            .services
            .iter()
            .filter(|(_, t)| t.scope == scope && t.epoch != epoch)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in stale {
            if let Some(t) = self.services.remove(&key) {
                out.extend(decide::on_disappeared(&key, Some(&t.value), None));
            }
        }
        out.extend(self.resync(Some(scope)));
        if let Some(s) = self.scopes.get_mut(scope) {
            s.synced = true;
        }
        out
    }

    /// The events of a full resync of one scope, or of all scopes.
    pub fn resync(&self, scope: Option<usize>) -> Vec<Emission> {
        let mut out: Vec<Emission> = self
            .services
            .iter()
            .filter(|(_, t)| scope.is_none_or(|s| s == t.scope))
            .filter_map(|(k, t)| decide::on_resync(k, &t.value))
            .collect();
        // A stable order makes logs and tests readable; it costs little at resync time.
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The `Endpoints Changed` event for a Service, if it is opted in.
    pub fn endpoints(&self, key: &ObjectKey) -> Option<Emission> {
        let t = self.services.get(key)?;
        decide::on_endpoints(key, &t.value)
    }

    /// Whether a Service is validly opted in (its EndpointSlices matter).
    pub fn opted_in(&self, key: &ObjectKey) -> bool {
        self.services
            .get(key)
            .is_some_and(|t| t.value.opt_in == OptIn::Yes)
    }

    /// The Services a gated pod's change concerns: those of `namespace` whose selector picks
    /// a pod with these [`decide::label_pairs`] and whose endpoints the functions act on.
    /// A walk over every tracked Service (a namespace compare each) rather than an index: it
    /// runs only when a gated pod's facts change, a few times in a pod's life, and costs
    /// little next to decoding the pod that caused it.
    pub fn selecting<'a>(
        &'a self,
        namespace: &'a str,
        pod_labels: &'a [u64],
    ) -> impl Iterator<Item = ObjectKey> + 'a {
        self.services
            .iter()
            .filter(move |(k, t)| {
                k.namespace == namespace && t.value.wants_endpoints() && t.value.selects(pod_labels)
            })
            .map(|(k, _)| k.clone())
    }
}

/// The labelled EndpointSlices: which Service each belongs to and a hash of its contents.
#[derive(Debug)]
pub struct SliceTracker {
    slices: HashMap<ObjectKey, Tracked<(String, u64)>>,
    scopes: Vec<Scope>,
}

impl SliceTracker {
    /// A tracker for `scopes` watch streams.
    pub fn new(scopes: usize) -> Self {
        Self {
            slices: HashMap::new(),
            scopes: vec![Scope::default(); scopes],
        }
    }

    /// Whether every scope finished its first list.
    pub fn synced(&self) -> bool {
        self.scopes.iter().all(|s| s.synced)
    }

    /// Applies one watch event of `scope`; returns the Services whose endpoints changed.
    pub fn apply(&mut self, scope: usize, event: Event<EndpointSlice>) -> Vec<ObjectKey> {
        let Some(Scope { epoch, synced }) = self.scopes.get(scope).cloned() else {
            return Vec::new();
        };
        match event {
            Event::Init => {
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.epoch += 1;
                }
                Vec::new()
            }
            // The first list only learns what exists: the Services' own resync covers them.
            Event::InitApply(slice) => self.upsert(&slice, scope, epoch, synced),
            Event::Apply(slice) => self.upsert(&slice, scope, epoch, true),
            Event::Delete(slice) => {
                let key = key_of(&slice);
                let owner = self.slices.remove(&key).map(|t| t.value.0);
                let owner = owner.or_else(|| decide::slice_facts(&slice).map(|f| f.0));
                owner
                    .map(|svc| ObjectKey::new(key.namespace, svc))
                    .into_iter()
                    .collect()
            }
            Event::InitDone => {
                let stale: Vec<ObjectKey> = self
                    .slices
                    .iter()
                    .filter(|(_, t)| t.scope == scope && t.epoch != epoch)
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut out = Vec::new();
                for key in stale {
                    if let Some(t) = self.slices.remove(&key) {
                        out.push(ObjectKey::new(key.namespace, t.value.0));
                    }
                }
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.synced = true;
                }
                out
            }
        }
    }

    fn upsert(
        &mut self,
        slice: &EndpointSlice,
        scope: usize,
        epoch: u64,
        report: bool,
    ) -> Vec<ObjectKey> {
        let key = key_of(slice);
        let Some(facts) = decide::slice_facts(slice) else {
            // The label was removed: for this Service the slice is gone.
            return self
                .slices
                .remove(&key)
                .map(|t| ObjectKey::new(key.namespace, t.value.0))
                .into_iter()
                .collect();
        };
        let previous = self.slices.insert(
            key.clone(),
            Tracked {
                value: facts.clone(),
                scope,
                epoch,
            },
        );
        if !report || previous.as_ref().is_some_and(|p| p.value == facts) {
            return Vec::new();
        }
        let mut out = vec![ObjectKey::new(key.namespace.clone(), facts.0)];
        if let Some(p) = previous.filter(|p| p.value.0 != out[0].name) {
            out.push(ObjectKey::new(key.namespace, p.value.0));
        }
        out
    }
}

/// Gathers endpoint changes per Service for a window, so a rollout of many pods becomes one
/// `Endpoints Changed` per Service instead of one per pod.
#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    due: VecDeque<(Instant, ObjectKey)>,
    pending: HashSet<ObjectKey>,
}

impl Coalescer {
    /// A coalescer holding changes for `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            due: VecDeque::new(),
            pending: HashSet::new(),
        }
    }

    /// Notes a change; the first change of a Service starts its window.
    pub fn mark(&mut self, key: ObjectKey, now: Instant) {
        if self.pending.insert(key.clone()) {
            // Deadlines grow with `now`, so the queue stays sorted.
            self.due.push_back((now + self.window, key));
        }
    }

    /// When the next window closes.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.front().map(|(at, _)| *at)
    }

    /// The Services whose window closed by `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<ObjectKey> {
        let mut out = Vec::new();
        while self.due.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, key)) = self.due.pop_front() {
                self.pending.remove(&key);
                out.push(key);
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
