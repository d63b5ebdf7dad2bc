//! Which pod addresses a listener's target group should hold, from the Service's EndpointSlices.
//!
//! Targets are `ip:port` pairs: the ready, non-terminating IPv4 endpoints, on the port the
//! EndpointSlice gives for the Service port (which resolves a named `targetPort`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::contract::service_model::{ListenerSpec, TargetPort};

/// The label naming the manager of an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// One target of a target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// The pod IP.
    pub ip: Ipv4Addr,
    /// The port on the pod.
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// A port of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePort {
    /// The Service port's name (`None` for an unnamed port).
    pub name: Option<String>,
    /// The resolved port on the pods.
    pub port: Option<u16>,
}

/// The parts of an EndpointSlice that decide targets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SliceView {
    /// The slice's name, for Events and logs.
    pub name: String,
    /// Its `endpointslice.kubernetes.io/managed-by` label: who wrote it, which decides whether
    /// it is trusted ([`crate::model::target_policy`]).
    pub managed_by: Option<String>,
    /// The slice's ports.
    pub ports: Vec<SlicePort>,
    /// The IPv4 addresses of endpoints that are ready and not terminating.
    pub ready: Vec<Ipv4Addr>,
    /// Every IPv4 endpoint that names its pod (`targetRef`), whatever its conditions: what
    /// per-pod mode reads.
    pub pods: Vec<PodEndpoint>,
}

/// An endpoint of a pod, as an EndpointSlice lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEndpoint {
    /// The pod's name (`targetRef.name`, kind Pod).
    pub pod: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Ready and not terminating.
    pub ready: bool,
}

impl SliceView {
    /// Reads an EndpointSlice; IPv6 and FQDN slices hold no IPv4 targets and read as empty.
    pub fn from_slice(slice: &EndpointSlice) -> Self {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let managed_by = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .cloned();
        if slice.address_type != "IPv4" {
            return Self {
                name,
                managed_by,
                ..Self::default()
            };
        }
        let ports = slice
            .ports
            .iter()
            .flatten()
            .map(|p| SlicePort {
                name: p.name.clone().filter(|n| !n.is_empty()),
                port: p.port.and_then(|n| u16::try_from(n).ok()),
            })
            .collect();
        let pods = slice
            .endpoints
            .iter()
            .flatten()
            .filter(|e| {
                e.target_ref
                    .as_ref()
                    .is_some_and(|r| r.kind.as_deref() == Some("Pod"))
            })
            .flat_map(|e| {
                let c = e.conditions.as_ref();
                let ready = c.and_then(|c| c.ready).unwrap_or(true)
                    && !c.and_then(|c| c.terminating).unwrap_or(false);
                let pod = e
                    .target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default();
                e.addresses.iter().filter_map(move |a| {
                    Some(PodEndpoint {
                        pod: pod.clone(),
                        ip: a.parse().ok()?,
                        ready,
                    })
                })
            })
            .filter(|p| !p.pod.is_empty())
            .collect();
        let ready = slice
            .endpoints
            .iter()
            .flatten()
            .filter(|e| {
                // A missing `ready` means ready (API semantics); terminating endpoints drain.
                let c = e.conditions.as_ref();
                c.and_then(|c| c.ready).unwrap_or(true)
                    && !c.and_then(|c| c.terminating).unwrap_or(false)
            })
            .flat_map(|e| e.addresses.iter())
            .filter_map(|a| a.parse::<Ipv4Addr>().ok())
            .collect();
        Self {
            name,
            managed_by,
            ports,
            ready,
            pods,
        }
    }

    /// This slice as one pod's: its ports, and as ready addresses the pod's ready endpoints
    /// (all its endpoints when `not_ready_too`: a pod whose only missing condition is the
    /// reachable gate gets its target registered so the gate can turn True).
    pub fn only_pod(&self, pod: &str, not_ready_too: bool) -> Self {
        let mine: Vec<PodEndpoint> = self.pods.iter().filter(|p| p.pod == pod).cloned().collect();
        Self {
            name: self.name.clone(),
            managed_by: self.managed_by.clone(),
            ports: self.ports.clone(),
            ready: mine
                .iter()
                .filter(|p| p.ready || not_ready_too)
                .map(|p| p.ip)
                .collect(),
            pods: mine,
        }
    }
}

/// `slices` as a subject taken out of its listeners sees them
/// ([`crate::contract::annotations::NETWORK_DISABLED`]): no ready endpoint, so no target and
/// nothing to resolve a port from (a target group keeps the port it was made with); the pods
/// stay listed, so per-pod mode still knows which pods are served.
pub fn without_targets(slices: Vec<SliceView>) -> Vec<SliceView> {
    slices
        .into_iter()
        .map(|s| SliceView {
            ready: Vec::new(),
            ..s
        })
        .collect()
}

/// The targets of `listener` given the Service's slices. An error says why a port cannot be
/// resolved: a named `targetPort` no slice with endpoints resolves, or TCP and UDP of a merged
/// listener resolving to different pod ports.
pub fn desired_targets(
    listener: &ListenerSpec,
    slices: &[SliceView],
) -> Result<BTreeSet<Target>, String> {
    let mut targets = BTreeSet::new();
    for slice in slices.iter().filter(|s| !s.ready.is_empty()) {
        let mut resolved: Option<u16> = None;
        for sp in &listener.ports {
            let from_slice = slice
                .ports
                .iter()
                .find(|p| p.name == sp.name)
                .and_then(|p| p.port);
            let port = match (&sp.target_port, from_slice) {
                (_, Some(p)) => p,
                (TargetPort::Number(n), None) => *n,
                (TargetPort::Name(name), None) => {
                    return Err(format!(
                        "targetPort {name:?} of port {} is not resolved by the Service's endpoints \
                         (no container port of that name)",
                        listener.name
                    ));
                }
            };
            match resolved {
                Some(r) if r != port => {
                    return Err(format!(
                        "TCP and UDP of port {} go to different pod ports ({r} and {port}); \
                         a TCP_UDP listener needs one",
                        listener.service_port
                    ));
                }
                _ => resolved = Some(port),
            }
        }
        if let Some(port) = resolved {
            targets.extend(slice.ready.iter().map(|&ip| Target { ip, port }));
        }
    }
    Ok(targets)
}

/// The port a new target group is created with: the first resolved pod port, else the
/// numeric targetPort, else the Service port. Targets carry their own ports; this is a default.
pub fn default_target_port(listener: &ListenerSpec, targets: &BTreeSet<Target>) -> u16 {
    if let Some(t) = targets.iter().next() {
        return t.port;
    }
    listener
        .ports
        .iter()
        .find_map(|p| match p.target_port {
            TargetPort::Number(n) => Some(n),
            TargetPort::Name(_) => None,
        })
        .unwrap_or(listener.service_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::protocol::ListenerProtocol;
    use crate::contract::service_model::{ListenerKey, ServicePortSpec};

    fn listener(ports: Vec<(&str, &str, TargetPort)>) -> ListenerSpec {
        let ports: Vec<ServicePortSpec> = ports
            .into_iter()
            .map(|(name, proto, target)| ServicePortSpec {
                name: Some(name.to_owned()),
                port: 7777,
                protocol: proto.to_owned(),
                target_port: target,
            })
            .collect();
        ListenerSpec {
            key: ListenerKey::new(7777, ListenerProtocol::Tcp),
            name: "game".into(),
            service_port: 7777,
            protocol: ListenerProtocol::Tcp,
            ports,
        }
    }

    fn slice(ports: &[(&str, u16)], ips: &[&str]) -> SliceView {
        SliceView {
            ports: ports
                .iter()
                .map(|(n, p)| SlicePort {
                    name: Some((*n).to_owned()),
                    port: Some(*p),
                })
                .collect(),
            ready: ips.iter().map(|i| i.parse().expect("ip")).collect(),
            ..SliceView::default()
        }
    }

    fn t(ip: &str, port: u16) -> Target {
        Target {
            ip: ip.parse().expect("ip"),
            port,
        }
    }

    #[test]
    fn numeric_target_port_from_every_slice() {
        let l = listener(vec![("game", "TCP", TargetPort::Number(8000))]);
        let slices = [
            slice(&[("game", 8000)], &["10.0.0.1", "10.0.0.2"]),
            slice(&[("game", 8000)], &["10.0.0.3"]),
        ];
        let got = desired_targets(&l, &slices).expect("resolves");
        assert_eq!(got.len(), 3);
        assert!(got.contains(&t("10.0.0.3", 8000)));
    }

    #[test]
    fn named_target_port_resolves_per_slice() {
        let l = listener(vec![("game", "TCP", TargetPort::Name("gs".into()))]);
        let slices = [
            slice(&[("game", 9000)], &["10.0.0.1"]),
            slice(&[("game", 9001)], &["10.0.0.2"]),
        ];
        let got = desired_targets(&l, &slices).expect("resolves");
        assert_eq!(
            got,
            BTreeSet::from([t("10.0.0.1", 9000), t("10.0.0.2", 9001)])
        );
    }

    #[test]
    fn unresolved_name_is_an_error_only_with_endpoints() {
        let l = listener(vec![("game", "TCP", TargetPort::Name("gs".into()))]);
        assert!(
            desired_targets(&l, &[slice(&[], &[])])
                .expect("no endpoints")
                .is_empty()
        );
        let err =
            desired_targets(&l, &[slice(&[("other", 1)], &["10.0.0.1"])]).expect_err("unresolved");
        assert!(err.contains("\"gs\""), "{err}");
    }

    #[test]
    fn merged_listener_needs_one_pod_port() {
        let l = listener(vec![
            ("tcp", "TCP", TargetPort::Number(7000)),
            ("udp", "UDP", TargetPort::Number(7000)),
        ]);
        let same = [slice(&[("tcp", 7000), ("udp", 7000)], &["10.0.0.1"])];
        assert_eq!(desired_targets(&l, &same).expect("same").len(), 1);
        let differ = [slice(&[("tcp", 7000), ("udp", 7001)], &["10.0.0.1"])];
        assert!(
            desired_targets(&l, &differ)
                .expect_err("differ")
                .contains("different pod ports")
        );
    }

    #[test]
    fn reads_ready_ipv4_endpoints_only() {
        let s: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "labels": {"endpointslice.kubernetes.io/managed-by": "m"}},
            "addressType": "IPv4",
            "ports": [{"name": "game", "port": 8000, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": true, "terminating": true}},
                {"addresses": ["10.0.0.4"]},
                {"addresses": ["not-an-ip"]}
            ]
        }))
        .expect("slice JSON");
        let v = SliceView::from_slice(&s);
        assert_eq!(
            v.ready,
            vec![
                "10.0.0.1".parse::<Ipv4Addr>().expect("ip"),
                "10.0.0.4".parse().expect("ip")
            ]
        );
        assert_eq!(v.ports[0].port, Some(8000));
        assert_eq!((v.name.as_str(), v.managed_by.as_deref()), ("s", Some("m")));
        let mut v6 = s.clone();
        v6.address_type = "IPv6".into();
        let v6 = SliceView::from_slice(&v6);
        assert!(v6.ready.is_empty() && v6.ports.is_empty());
        assert_eq!(v6.name, "s");
    }

    #[test]
    fn default_port_prefers_resolved_targets() {
        let l = listener(vec![("game", "TCP", TargetPort::Name("gs".into()))]);
        assert_eq!(default_target_port(&l, &BTreeSet::new()), 7777);
        assert_eq!(
            default_target_port(&l, &BTreeSet::from([t("10.0.0.1", 9000)])),
            9000
        );
    }
}
