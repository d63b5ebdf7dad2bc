//! Which event, if any, a Service change produces: pure functions, no I/O.
//!
//! The forwarder keeps a small [`ServiceState`] per interesting Service instead of the object,
//! so 10,000 Services fit in a few megabytes. The fingerprint covers only what the functions
//! act on (our input annotations, the ports, the uid): the functions' own writes (output
//! annotations, the finalizer) and status updates leave it unchanged, so they cannot start an
//! event loop between the forwarder and the Lambdas.
//!
//! Pods that declare the readiness gate `nlb.port-manager/reachable` are remembered the same
//! way, as [`PodFacts`]: their Ready condition waits on the functions, so no EndpointSlice
//! changes when their containers turn ready, and only the pod itself can wake the functions.
//! So are pods carrying `nlb.port-manager/network-disabled`, for the same reason.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use nlb_port_pool::contract::annotations::{self, FINALIZER, OUTPUT_KEYS, PREFIX};
use nlb_port_pool::contract::event::DetailType;
use nlb_port_pool::contract::pod_model::REACHABLE_GATE;

/// A Service's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the `auto-assign` annotation says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptIn {
    /// Absent or `"false"`.
    No,
    /// `"true"`.
    Yes,
    /// Any other value: the functions report it to the user, so it still produces events.
    Invalid,
}

/// The facts of one Service the decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// Hash of the uid, our input annotations and the ports.
    pub fingerprint: u64,
    /// The opt-in annotation.
    pub opt_in: OptIn,
    /// Whether it holds our finalizer.
    pub has_finalizer: bool,
    /// Whether it has a deletionTimestamp.
    pub deleting: bool,
    /// `spec.selector` as [`label_pairs`]: which gated pods concern it. Hashes, not the
    /// strings: 8 bytes a pair, and enough to test a match.
    pub selector: Box<[u64]>,
}

impl ServiceState {
    /// Reads the facts from a Service.
    pub fn from_service(svc: &Service) -> Self {
        let empty = BTreeMap::new();
        let annotations = svc.metadata.annotations.as_ref().unwrap_or(&empty);
        let opt_in = match annotations::opt_in(annotations) {
            Ok(true) => OptIn::Yes,
            Ok(false) => OptIn::No,
            Err(_) => OptIn::Invalid,
        };
        Self {
            uid: svc.uid().unwrap_or_default(),
            resource_version: svc.resource_version().unwrap_or_default(),
            fingerprint: fingerprint(svc, annotations),
            opt_in,
            has_finalizer: svc.finalizers().iter().any(|f| f == FINALIZER),
            deleting: svc.metadata.deletion_timestamp.is_some(),
            selector: svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .map(label_pairs)
                .unwrap_or_default(),
        }
    }

    /// Whether the functions act on its endpoints: validly opted in and not going away.
    pub fn wants_endpoints(&self) -> bool {
        self.opt_in == OptIn::Yes && !self.deleting
    }

    /// Whether its selector picks a pod with these [`label_pairs`]. Like the EndpointSlice
    /// controller, an absent or empty selector picks no pod (the Service's endpoints are
    /// managed by hand).
    pub fn selects(&self, pod_labels: &[u64]) -> bool {
        !self.selector.is_empty()
            && self
                .selector
                .iter()
                .all(|pair| pod_labels.binary_search(pair).is_ok())
    }

    /// Whether the functions care about this Service: it opted in (validly or not), or it
    /// still holds our finalizer and so has something to release.
    pub fn interested(&self) -> bool {
        self.opt_in != OptIn::No || self.has_finalizer
    }

    /// Whether a `Service Deleted` was already produced for this state.
    fn deleted_sent(&self) -> bool {
        self.deleting && self.has_finalizer
    }
}

fn fingerprint(svc: &Service, annotations: &BTreeMap<String, String>) -> u64 {
    let mut h = DefaultHasher::new();
    svc.metadata.uid.hash(&mut h);
    for (k, v) in annotations {
        // Only our inputs: other controllers' annotations and our own outputs do not matter.
        if k.starts_with(PREFIX) && !OUTPUT_KEYS.contains(&k.as_str()) {
            (k, v).hash(&mut h);
        }
    }
    for p in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
        (&p.name, &p.protocol, p.port).hash(&mut h);
        match &p.target_port {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                (0u8, n).hash(&mut h)
            }
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => {
                (1u8, s).hash(&mut h)
            }
            None => 2u8.hash(&mut h),
        }
    }
    h.finish()
}

/// An event to put on the bus, before the cluster name and time are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    /// The detail-type.
    pub detail_type: DetailType,
    /// The Service.
    pub key: ObjectKey,
    /// Its uid.
    pub uid: String,
    /// Its resourceVersion.
    pub resource_version: String,
    /// Whether it is being deleted or gone.
    pub deleting: bool,
}

impl Emission {
    fn new(detail_type: DetailType, key: &ObjectKey, s: &ServiceState) -> Self {
        Self {
            detail_type,
            key: key.clone(),
            uid: s.uid.clone(),
            resource_version: s.resource_version.clone(),
            deleting: detail_type == DetailType::ServiceDeleted || s.deleting,
        }
    }
}

/// The events for a Service that was added or modified, given what was known before.
pub fn on_update(key: &ObjectKey, old: Option<&ServiceState>, new: &ServiceState) -> Vec<Emission> {
    let mut out = Vec::new();
    let old = match old {
        // Deleted and re-created under the same name: the old one is gone.
        Some(o) if o.uid != new.uid => {
            out.extend(on_disappeared(key, Some(o), None));
            None
        }
        o => o,
    };
    if new.deleting {
        if new.has_finalizer && !old.is_some_and(ServiceState::deleted_sent) {
            out.push(Emission::new(DetailType::ServiceDeleted, key, new));
        }
        return out;
    }
    let changed = old.is_none_or(|o| o.fingerprint != new.fingerprint);
    // Losing interest (opt-in removed) is a change the functions must see too: they release.
    if changed && (new.interested() || old.is_some_and(ServiceState::interested)) {
        out.push(Emission::new(DetailType::ServiceChanged, key, new));
    }
    out
}

/// The event for a Service that is gone: `last` is its final state when the watch saw the
/// deletion, `None` when a re-list no longer lists it.
pub fn on_disappeared(
    key: &ObjectKey,
    old: Option<&ServiceState>,
    last: Option<&ServiceState>,
) -> Option<Emission> {
    if old.is_some_and(ServiceState::deleted_sent) {
        // Already announced when the deletionTimestamp appeared; the release removed the
        // finalizer, which is what let it go.
        return None;
    }
    let held = last.is_some_and(|l| l.has_finalizer);
    let was_interested = old.is_some_and(ServiceState::interested);
    if !held && !was_interested {
        return None;
    }
    let state = last.or(old)?;
    Some(Emission::new(DetailType::ServiceDeleted, key, state))
}

/// The event a full resync sends for a known Service.
pub fn on_resync(key: &ObjectKey, s: &ServiceState) -> Option<Emission> {
    if s.deleting {
        s.has_finalizer
            .then(|| Emission::new(DetailType::ServiceDeleted, key, s))
    } else {
        s.interested()
            .then(|| Emission::new(DetailType::ServiceChanged, key, s))
    }
}

/// The event for changed EndpointSlices of a Service, if it is opted in and not going away.
pub fn on_endpoints(key: &ObjectKey, s: &ServiceState) -> Option<Emission> {
    s.wants_endpoints()
        .then(|| Emission::new(DetailType::EndpointsChanged, key, s))
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Service an EndpointSlice belongs to and a hash of what target registration reads:
/// addresses, the pods they belong to, their conditions and the ports.
pub fn slice_facts(slice: &EndpointSlice) -> Option<(String, u64)> {
    let service = slice.labels().get(SERVICE_NAME_LABEL)?.clone();
    let mut h = DefaultHasher::new();
    slice.address_type.hash(&mut h);
    for e in slice.endpoints.iter().flatten() {
        e.addresses.hash(&mut h);
        // Per-pod mode keys claims by the pod: a pod made again under another name (or an
        // address passed to another pod) is a change even when the addresses are not.
        e.target_ref
            .as_ref()
            .and_then(|r| r.name.as_ref())
            .hash(&mut h);
        if let Some(c) = &e.conditions {
            (c.ready, c.serving, c.terminating).hash(&mut h);
        }
    }
    for p in slice.ports.iter().flatten() {
        (&p.name, &p.port, &p.protocol).hash(&mut h);
    }
    Some((service, h.finish()))
}

/// A label map as sorted hashes of its `key=value` pairs: a selector matches a pod when each of
/// its pairs is among the pod's. A collision (2^-64) would only send a needless event.
pub fn label_pairs(labels: &BTreeMap<String, String>) -> Box<[u64]> {
    let mut pairs: Vec<u64> = labels
        .iter()
        .map(|pair| {
            let mut h = DefaultHasher::new();
            pair.hash(&mut h);
            h.finish()
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.into_boxed_slice()
}

/// What the forwarder remembers of a pod that declares the reachable readiness gate or
/// carries `nlb.port-manager/network-disabled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// Hash of what the functions act on for such a pod: its uid, IPs, the `ContainersReady`,
    /// `Ready` and gate conditions' statuses, whether it is being deleted, its labels and its
    /// `network-disabled` value.
    pub fingerprint: u64,
    /// Its [`label_pairs`], so the Services selecting it can be found even once it is gone.
    pub labels: Box<[u64]>,
}

/// The facts of a pod that declares the `nlb.port-manager/reachable` readiness gate or
/// carries `nlb.port-manager/network-disabled` (a per-pod Service's pod taken out of its
/// listeners: no EndpointSlice changes when the annotation does, so only the pod can say it);
/// `None` for any other pod, which the functions register from the EndpointSlices alone.
pub fn pod_facts(pod: &Pod) -> Option<PodFacts> {
    let gated = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.condition_type == REACHABLE_GATE));
    let disabled = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::NETWORK_DISABLED));
    if !gated && disabled.is_none() {
        return None;
    }
    let labels = label_pairs(pod.labels());
    let status = pod.status.as_ref();
    let condition = |kind: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == kind))
            .map(|c| c.status.as_str())
    };
    let mut h = DefaultHasher::new();
    // A pod made again under the same name (a StatefulSet's) is another target.
    pod.metadata.uid.hash(&mut h);
    status.and_then(|s| s.pod_ip.as_ref()).hash(&mut h);
    for ip in status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
    {
        ip.ip.hash(&mut h);
    }
    // Statuses only: probe and transition times change without anything to do. The gate's own
    // condition is written by the functions; that change sends one event, which finds the
    // target registered and writes nothing, so it cannot loop.
    for kind in ["ContainersReady", "Ready", REACHABLE_GATE] {
        condition(kind).hash(&mut h);
    }
    pod.metadata.deletion_timestamp.is_some().hash(&mut h);
    labels.hash(&mut h);
    disabled.hash(&mut h);
    Some(PodFacts {
        fingerprint: h.finish(),
        labels,
    })
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
