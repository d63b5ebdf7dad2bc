//! Which event, if any, a Service change produces: pure functions, no I/O.
//!
//! The forwarder keeps a small [`ServiceState`] per interesting Service instead of the object,
//! so 10,000 Services fit in a few megabytes. The fingerprint covers only what the functions
//! act on (our input annotations, the ports, the uid): the functions' own writes (output
//! annotations, the finalizer) and status updates leave it unchanged, so they cannot start an
//! event loop between the forwarder and the Lambdas.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use nlb_port_pool::annotations::{self, FINALIZER, OUTPUT_KEYS, PREFIX};
use nlb_port_pool::event::DetailType;

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
        }
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
    (s.opt_in == OptIn::Yes && !s.deleting)
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

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
