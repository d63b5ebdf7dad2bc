//! The Kubernetes operations the functions use ([`Cluster`]), and what they take and answer:
//! Events to publish, the outcome of writes, errors.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::outputs::ServiceOutputs;
use crate::contract::event::ServiceKey;
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::targets::SliceView;

/// Whether an Event reports success or something a user must look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Something worked.
    Normal,
    /// Something needs attention.
    Warning,
}

/// A Kubernetes Event to publish on a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Normal or Warning.
    pub kind: NoticeKind,
    /// A CamelCase reason, e.g. `Allocated`, `PoolExhausted`.
    pub reason: &'static str,
    /// The human-readable text.
    pub note: String,
    /// For a standing problem noticed on every run (an untrusted EndpointSlice, say): a
    /// fingerprint of what is reported. The Event is then published once per Service and
    /// fingerprint, not on every run: a changed problem has another fingerprint and is
    /// reported again. `None`: published every time (callers publish those on changes only).
    pub once: Option<String>,
}

/// What became of a write to a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The Service now carries the outputs (it did already, or was patched); its new state.
    Done(Box<ServiceState>),
    /// The Service is gone, or is another object with the same name (another uid).
    Gone,
}

/// What became of a write conditional on the Service being exactly as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// The Service now carries the outputs (it did already, or was patched); its new state.
    Done(Box<ServiceState>),
    /// The Service changed since it was read (another resourceVersion): nothing was written.
    /// Read it again and decide again; never re-apply outputs computed from the old read.
    Changed,
    /// The Service is gone, or is another object with the same name (another uid).
    Gone,
}

/// A Kubernetes API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Kubernetes {action}: {message}")]
pub struct KubeError {
    /// What was attempted, e.g. `get Service games/room`.
    pub action: String,
    /// What went wrong.
    pub message: String,
    /// Whether trying again later may succeed (network, 429, 5xx, conflicts).
    pub retryable: bool,
}

/// The Kubernetes operations the functions use.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The Service, or `None` when it does not exist.
    async fn service(&self, namespace: &str, name: &str)
    -> Result<Option<ServiceState>, KubeError>;

    /// The Service's EndpointSlices.
    async fn endpoint_slices(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<SliceView>, KubeError>;

    /// Makes the Service (or the pod a per-pod state stands for: then without finalizer)
    /// carry exactly `outputs`: the project's output annotations (others are
    /// untouched) and, when asked, its finalizer. Writes nothing when it already does. Fails
    /// rather than overwrite a change made after `service` was read, retrying on conflicts.
    async fn write_outputs(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Written, KubeError>;

    /// Makes the Service (or the pod a per-pod state stands for: then without finalizer)
    /// carry exactly `outputs`, only if it is still as `service` was read
    /// (same uid and resourceVersion); writes nothing when it already does. Never retries: a
    /// conflict is [`Patched::Changed`], for the caller to read again and decide again.
    /// A pod is written as [`pod_outputs`](super::pod_outputs) says: stamped with its Service, and not at all
    /// (answered [`Patched::Done`] as it is) when its outputs are another Service's.
    async fn write_outputs_if_unchanged(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Patched, KubeError>;

    /// Publishes an Event on the Service (or on the pod a per-pod state stands for, unless the
    /// pod's outputs are another Service's ([`writes_pod`](super::writes_pod)): that Service speaks for the pod).
    async fn publish(&self, service: &ServiceState, notice: &Notice) -> Result<(), KubeError>;

    /// The pods in `namespace` that `selector` (a Service's `spec.selector`) matches; none for
    /// an empty selector.
    async fn pods(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<Vec<PodState>, KubeError>;

    /// The pod, or `None` when it does not exist.
    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<PodState>, KubeError>;

    /// Sets the pod's [`crate::contract::pod_model::REACHABLE_GATE`] condition True (its target is
    /// healthy): a strategic merge of that one condition into `status.conditions`, on the pod
    /// with `uid` only. A pod gone or replaced is not an error.
    async fn set_pod_reachable(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        message: &str,
    ) -> Result<(), KubeError>;

    /// Every Service that mentions the opt-in annotation or holds the finalizer, in all
    /// namespaces (for the sweep).
    async fn services_of_interest(&self) -> Result<Vec<ServiceState>, KubeError>;

    /// The uid of the `kube-system` namespace: what tells this cluster from another of the
    /// same name (a cluster rebuilt under its old name gets a new one).
    async fn cluster_uid(&self) -> Result<String, KubeError>;
}

/// The namespace whose uid identifies a cluster.
pub const IDENTITY_NAMESPACE: &str = "kube-system";

/// The key of a Service in `cluster`.
pub fn service_key(cluster: &str, namespace: &str, name: &str) -> ServiceKey {
    ServiceKey {
        cluster: cluster.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}
