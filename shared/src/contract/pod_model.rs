//! The part of a pod that per-pod mode acts on, read from its Kubernetes object.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;

use crate::contract::annotations::Annotations;

/// The readiness gate a pod declares to become Ready only once players can reach it: the
/// condition of that type is set True when its NLB target is healthy.
pub const REACHABLE_GATE: &str = "nlb.port-manager/reachable";

/// A pod behind a per-pod Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodState {
    /// The pod's name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// The resourceVersion read, so writes fail instead of overwriting a newer object.
    pub resource_version: String,
    /// It has a deletionTimestamp.
    pub deleting: bool,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// All annotations.
    pub annotations: Annotations,
    /// `metadata.labels`: whether a Service's selector still selects it.
    pub labels: BTreeMap<String, String>,
    /// `status.podIP`, when it is IPv4.
    pub ip: Option<Ipv4Addr>,
    /// Every IPv4 address of `status.podIPs` (and `status.podIP`): what may be its target.
    pub ips: Vec<Ipv4Addr>,
    /// The `ContainersReady` condition is True.
    pub containers_ready: bool,
    /// The pod declares the [`REACHABLE_GATE`] readiness gate.
    pub gated: bool,
    /// The [`REACHABLE_GATE`] condition is True.
    pub reachable: bool,
    /// `metadata.creationTimestamp` (seconds since the epoch), for the latency metrics.
    pub created: Option<i64>,
}

impl PodState {
    /// Reads a pod object; `None` when it lacks a name or uid (never true of one read from the
    /// API server).
    pub fn from_pod(pod: &Pod) -> Option<Self> {
        let meta = &pod.metadata;
        let status = pod.status.as_ref();
        let condition = |kind: &str| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == kind))
                .is_some_and(|c| c.status == "True")
        };
        let ip: Option<Ipv4Addr> = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok());
        let mut ips: Vec<Ipv4Addr> = status
            .and_then(|s| s.pod_ips.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|p| p.ip.parse().ok())
            .collect();
        ips.extend(ip);
        ips.sort();
        ips.dedup();
        Some(Self {
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            ip,
            ips,
            containers_ready: condition("ContainersReady"),
            gated: pod
                .spec
                .as_ref()
                .and_then(|s| s.readiness_gates.as_ref())
                .is_some_and(|g| g.iter().any(|g| g.condition_type == REACHABLE_GATE)),
            reachable: condition(REACHABLE_GATE),
            created: meta.creation_timestamp.as_ref().map(|t| t.0.as_second()),
        })
    }

    /// Whether a Service with `selector` selects it (an empty selector selects nothing, as
    /// the endpoints controller reads it).
    pub fn selected_by(&self, selector: &BTreeMap<String, String>) -> bool {
        !selector.is_empty()
            && selector
                .iter()
                .all(|(k, v)| self.labels.get(k).is_some_and(|l| l == v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_gated_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "room-0", "uid": "p-1", "resourceVersion": "7",
                         "annotations": {"a": "b"}, "labels": {"app": "room", "tier": "x"}},
            "spec": {"containers": [], "readinessGates": [{"conditionType": REACHABLE_GATE}]},
            "status": {"podIP": "10.0.0.5", "conditions": [
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "False"},
                {"type": REACHABLE_GATE, "status": "False"}
            ]}
        }))
        .expect("pod JSON");
        let p = PodState::from_pod(&pod).expect("complete");
        assert_eq!(p.ip, Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(p.ips, vec![Ipv4Addr::new(10, 0, 0, 5)]);
        assert!(p.gated && p.containers_ready && !p.reachable && !p.deleting);
        let selector = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(p.selected_by(&selector(&[("app", "room")])));
        assert!(!p.selected_by(&selector(&[("app", "room"), ("tier", "y")])));
        assert!(
            !p.selected_by(&selector(&[])),
            "an empty selector selects nothing"
        );
        let bare: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "uid": "u"},
            "status": {"podIP": "fd00::1"}
        }))
        .expect("pod JSON");
        let b = PodState::from_pod(&bare).expect("complete");
        assert!(b.ip.is_none() && !b.gated && !b.containers_ready);
        // Dual stack with IPv6 first: the IPv4 address is in podIPs.
        let dual: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "uid": "u"},
            "status": {"podIP": "fd00::1", "podIPs": [{"ip": "fd00::1"}, {"ip": "10.0.0.9"}]}
        }))
        .expect("pod JSON");
        let d = PodState::from_pod(&dual).expect("complete");
        assert_eq!(d.ips, vec![Ipv4Addr::new(10, 0, 0, 9)]);
    }
}
