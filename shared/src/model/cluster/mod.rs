//! The Kubernetes side: reading Services and EndpointSlices, writing the output annotations
//! and the finalizer, publishing Events. Behind a trait so the reconcile logic is tested with
//! an in-memory double.
//!
//! This module only names its parts: the [`Cluster`] trait and its types (`operations`), and
//! the output annotations a write makes (`outputs`).

mod operations;
pub(crate) mod outputs;

pub use operations::{
    Cluster, IDENTITY_NAMESPACE, KubeError, Notice, NoticeKind, Patched, Written, service_key,
};
pub use outputs::{ServiceOutputs, outputs_patch, pod_outputs, writes_pod};
