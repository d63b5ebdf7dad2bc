//! The output annotations: what a Service's listeners are ([`AllocationRecord`],
//! [`render_allocated`]), its [`Status`], and a per-pod Service's [`PodsSummary`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::{ADDRESS, ALLOCATED_PORT, ALLOCATIONS, LISTENER_ARN, STATUS, TARGET_GROUP_ARN};
use super::value::Annotations;
use crate::contract::protocol::ListenerProtocol;

/// What a per-pod Service's `pods` annotation counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsSummary {
    /// Pods whose listeners all exist.
    pub allocated: usize,
    /// Of those, pods whose every listener has a healthy target.
    #[serde(default)]
    pub ready: usize,
    /// Pods waiting for ports.
    pub pending: usize,
    /// Pods whose allocation failed (their status says why).
    pub errors: usize,
    /// Of the allocated pods, those taken out of their listeners
    /// ([`NETWORK_DISABLED`](super::NETWORK_DISABLED), on the pod or the Service).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disabled: usize,
    /// Pods gone from the Service (no pod of that name selected) whose ports are kept for the
    /// grace period.
    pub leaving: usize,
    /// Pods whose outputs another per-pod Service writes (see [`SERVICE`](super::SERVICE)), by name: this
    /// Service's address for each, which the pod's own annotations do not show. Counted in
    /// `allocated` (and `ready`) like the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shared: BTreeMap<String, SharedPod>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// This Service's listeners for a pod whose outputs belong to another Service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedPod {
    /// `NLB_DNS:port` of the first port: what a client dials.
    pub address: String,
    /// Each of these listeners has a healthy target (the pod's IP).
    #[serde(default)]
    pub ready: bool,
}

/// One listener of a Service, as the `allocations` annotation lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationRecord {
    /// The Service port's name (or its number, for an unnamed port).
    pub name: String,
    /// The listener protocol.
    pub protocol: ListenerProtocol,
    /// The Service port this listener stands for.
    pub service_port: u16,
    /// The listener port on the NLB.
    pub port: u16,
    /// The NLB.
    pub nlb_arn: String,
    /// The NLB's DNS name.
    pub dns: String,
    /// The listener.
    pub listener_arn: String,
    /// The target group.
    pub target_group_arn: String,
    /// Whether the listener terminates TLS (protocol `TLS` in AWS; `protocol` stays the
    /// Service port's `TCP`, which the target group speaks). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

impl AllocationRecord {
    /// The listener protocol as ELBv2 names it: `TLS` for a TLS listener, else `protocol`.
    pub fn listener_protocol(&self) -> String {
        if self.tls {
            "TLS".to_owned()
        } else {
            self.protocol.to_string()
        }
    }
}

/// The output annotations of an allocated Service; `records` must not be empty.
pub fn render_allocated(records: &[AllocationRecord]) -> Annotations {
    let mut out = Annotations::new();
    if let Some(first) = records.first() {
        out.insert(ALLOCATED_PORT.to_owned(), first.port.to_string());
        out.insert(LISTENER_ARN.to_owned(), first.listener_arn.clone());
        out.insert(TARGET_GROUP_ARN.to_owned(), first.target_group_arn.clone());
        out.insert(ADDRESS.to_owned(), format!("{}:{}", first.dns, first.port));
    }
    // Serializing plain strings and numbers cannot fail; an empty list is the fallback anyway.
    let json = serde_json::to_string(records).unwrap_or_else(|_| "[]".to_owned());
    out.insert(ALLOCATIONS.to_owned(), json);
    out.insert(STATUS.to_owned(), Status::Allocated.to_string());
    out
}

/// The `status` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every port has its listener (the API calls returned; players may not reach it yet).
    Allocated,
    /// Every listener has a healthy target: players can reach it.
    Ready,
    /// Every listener exists and has no target on purpose: the Service (or pod) carries
    /// [`NETWORK_DISABLED`](super::NETWORK_DISABLED) `"true"`.
    Disabled,
    /// Waiting for something that may resolve by itself (a free port).
    Pending(String),
    /// The user must change something.
    Error(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Allocated => f.write_str("Allocated"),
            Status::Ready => f.write_str("Ready"),
            Status::Disabled => f.write_str("Disabled"),
            Status::Pending(r) => write!(f, "Pending: {r}"),
            Status::Error(r) => write!(f, "Error: {r}"),
        }
    }
}
