//! What a Service asks for, read from its Kubernetes object into plain domain types.
//!
//! [`ServiceState`] is the part of a Service the system acts on; [`listener_specs`] turns its
//! ports into the listeners it needs: one per port number and protocol, with TCP and UDP on
//! the same number merged into one `TCP_UDP` listener.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::contract::annotations::{Annotations, FINALIZER};
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;

pub use crate::contract::pod_model::PodState;

/// The most listeners one Service may ask for: all go on one NLB, and a claim transaction
/// holds two items per listener plus one (DynamoDB allows 100).
pub const MAX_LISTENERS_PER_SERVICE: usize = 49;

/// Where a Service port sends traffic in the pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetPort {
    /// A port number.
    Number(u16),
    /// A named container port, resolved through the EndpointSlices.
    Name(String),
}

/// One entry of `spec.ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortSpec {
    /// The port's name; `None` for the single unnamed port a Service may have.
    pub name: Option<String>,
    /// The Service port number.
    pub port: u16,
    /// `TCP`, `UDP` or another protocol (rejected by [`listener_specs`]).
    pub protocol: String,
    /// Where traffic goes in the pod.
    pub target_port: TargetPort,
}

/// The part of a Service the system acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// Cluster, namespace and name.
    pub key: ServiceKey,
    /// The object's uid: claims and AWS resources belong to it.
    pub uid: String,
    /// The resourceVersion read, so writes fail instead of overwriting a newer object.
    pub resource_version: String,
    /// The Service has a deletionTimestamp.
    pub deleting: bool,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// All annotations.
    pub annotations: Annotations,
    /// `spec.ports`, in order.
    pub ports: Vec<ServicePortSpec>,
    /// `spec.type` is `ExternalName`: there are no endpoints to send traffic to.
    pub external_name: bool,
    /// `spec.selector`: which pods are behind the Service (per-pod mode lists them).
    pub selector: BTreeMap<String, String>,
    /// Set when this state stands for one pod of a per-pod Service (see [`ServiceState::for_pod`]).
    pub pod: Option<PodSubject>,
    /// `metadata.creationTimestamp`, seconds since the epoch: the start of the latencies the
    /// functions report (`ServiceAddressSeconds`, `ServiceReachableSeconds`, the sweep's
    /// `OldestPendingSeconds`).
    pub created: Option<i64>,
}

/// The pod a [`ServiceState`] stands for in per-pod mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSubject {
    /// The pod's name: its claims are keyed by it.
    pub name: String,
    /// The pod's uid: writes are conditional on it.
    pub uid: String,
    /// The [`crate::contract::annotations::SERVICE`] value of an owner this run judged gone (the Service
    /// no longer exists, is another object, or no longer selects the pod as a per-pod
    /// Service): the pod's outputs may be taken over from it. `None`: only a pod naming no
    /// Service or this one is written (see [`crate::model::cluster::pod_outputs`]).
    pub replaces: Option<String>,
}

impl ServiceState {
    /// One pod of this (per-pod) Service as the subject of an allocation: the claims stay the
    /// Service's (its key and uid, the pod's name), while the metadata read and written
    /// (resourceVersion, annotations, finalizers, deletion) are the pod's. The pod never gets
    /// the finalizer: the Service's holds its deletion until every pod's ports are released.
    /// A state that already stands for this pod (read again after a conflict) keeps the owner
    /// it may take over from.
    pub fn for_pod(&self, pod: &PodState) -> Self {
        let replaces = self
            .pod
            .as_ref()
            .filter(|p| p.name == pod.name)
            .and_then(|p| p.replaces.clone());
        Self {
            key: self.key.clone(),
            uid: self.uid.clone(),
            resource_version: pod.resource_version.clone(),
            deleting: pod.deleting,
            finalizers: pod.finalizers.clone(),
            annotations: pod.annotations.clone(),
            ports: self.ports.clone(),
            external_name: self.external_name,
            selector: self.selector.clone(),
            pod: Some(PodSubject {
                name: pod.name.clone(),
                uid: pod.uid.clone(),
                replaces,
            }),
            created: pod.created,
        }
    }

    /// This pod state, allowed to take the pod's outputs over from the owner `owner` names (a
    /// [`crate::contract::annotations::SERVICE`] value this run judged gone). No effect on a Service.
    pub fn taking_over(mut self, owner: &str) -> Self {
        if let Some(p) = self.pod.as_mut() {
            p.replaces = Some(owner.to_owned());
        }
        self
    }

    /// A Service that no longer exists, known by its key and uid (what its claims record):
    /// the base of its pods' states when their outputs must go.
    pub fn gone(key: ServiceKey, uid: impl Into<String>) -> Self {
        Self {
            key,
            uid: uid.into(),
            resource_version: String::new(),
            deleting: true,
            finalizers: vec![],
            annotations: Annotations::new(),
            ports: vec![],
            external_name: false,
            selector: BTreeMap::new(),
            pod: None,
            created: None,
        }
    }

    /// The pod this state stands for, by name.
    pub fn pod_name(&self) -> Option<&str> {
        self.pod.as_ref().map(|p| p.name.as_str())
    }

    /// What Events and logs call it: `ns/name`, or `ns/name pod p`.
    pub fn subject(&self) -> String {
        match &self.pod {
            None => format!("{}/{}", self.key.namespace, self.key.name),
            Some(p) => format!("{}/{} pod {}", self.key.namespace, self.key.name, p.name),
        }
    }

    /// Whether the Service holds [`FINALIZER`].
    pub fn has_finalizer(&self) -> bool {
        self.finalizers.iter().any(|f| f == FINALIZER)
    }

    /// Reads a Service object; `None` when it lacks a name, namespace or uid (never true of an
    /// object read from the API server).
    pub fn from_service(cluster: &str, svc: &Service) -> Option<Self> {
        let meta = &svc.metadata;
        let spec = svc.spec.as_ref();
        let ports = spec
            .and_then(|s| s.ports.as_ref())
            .map(|ports| {
                ports
                    .iter()
                    .map(|p| ServicePortSpec {
                        name: p.name.clone().filter(|n| !n.is_empty()),
                        // The API server validates 1..=65535; anything else reads as 0 and is
                        // rejected by listener_specs.
                        port: u16::try_from(p.port).unwrap_or(0),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                        target_port: match &p.target_port {
                            None => TargetPort::Number(u16::try_from(p.port).unwrap_or(0)),
                            Some(IntOrString::Int(n)) => {
                                TargetPort::Number(u16::try_from(*n).unwrap_or(0))
                            }
                            Some(IntOrString::String(s)) => match s.parse::<u16>() {
                                Ok(n) => TargetPort::Number(n),
                                Err(_) => TargetPort::Name(s.clone()),
                            },
                        },
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            key: ServiceKey {
                cluster: cluster.to_owned(),
                namespace: meta.namespace.clone()?,
                name: meta.name.clone()?,
            },
            uid: meta.uid.clone()?,
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0.as_second()),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            ports,
            external_name: spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName"),
            selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
            pod: None,
        })
    }
}

/// The identity of a listener within its Service: the Service port number and the protocol,
/// e.g. `7777-tcp_udp`. A change of either is a different listener (and a new NLB port).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerKey(String);

impl ListenerKey {
    /// The key of Service port `port` served over `protocol`.
    pub fn new(port: u16, protocol: ListenerProtocol) -> Self {
        Self(format!("{port}-{}", protocol.as_str().to_ascii_lowercase()))
    }

    /// Reads a stored key, checking its shape.
    pub fn parse(s: &str) -> Option<Self> {
        let (port, proto) = s.split_once('-')?;
        let port: u16 = port.parse().ok()?;
        let proto = ListenerProtocol::parse(&proto.to_ascii_uppercase())?;
        Some(Self::new(port, proto))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ListenerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One listener a Service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Identity within the Service.
    pub key: ListenerKey,
    /// The Service port's name (the TCP one's when merged), or the number for unnamed ports.
    pub name: String,
    /// The Service port number.
    pub service_port: u16,
    /// The listener (and target group) protocol.
    pub protocol: ListenerProtocol,
    /// The Service ports it serves (two when TCP and UDP are merged).
    pub ports: Vec<ServicePortSpec>,
}

/// The listeners `service` needs, in `spec.ports` order; an error names the port at fault.
pub fn listener_specs(service: &ServiceState) -> Result<Vec<ListenerSpec>, String> {
    if service.external_name {
        return Err("an ExternalName Service has no endpoints to send traffic to".to_owned());
    }
    if service.ports.is_empty() {
        return Err("the Service has no ports".to_owned());
    }
    let mut by_port: BTreeMap<u16, usize> = BTreeMap::new();
    let mut specs: Vec<ListenerSpec> = Vec::new();
    for p in &service.ports {
        let label = p.name.clone().unwrap_or_else(|| p.port.to_string());
        if p.port == 0 {
            return Err(format!("port {label} has no valid port number"));
        }
        if p.target_port == TargetPort::Number(0) {
            return Err(format!("port {label} has no valid targetPort"));
        }
        let protocol = ListenerProtocol::from_service_protocol(Some(&p.protocol))
            .map_err(|e| format!("port {label}: {e}"))?;
        match by_port.get(&p.port) {
            Some(&i) => {
                let spec = &mut specs[i];
                let merged = spec.protocol.merge(protocol);
                if merged == spec.protocol {
                    return Err(format!(
                        "port {} is listed twice with protocol {protocol}",
                        p.port
                    ));
                }
                spec.protocol = merged;
                spec.key = ListenerKey::new(p.port, merged);
                spec.ports.push(p.clone());
            }
            None => {
                by_port.insert(p.port, specs.len());
                specs.push(ListenerSpec {
                    key: ListenerKey::new(p.port, protocol),
                    name: label,
                    service_port: p.port,
                    protocol,
                    ports: vec![p.clone()],
                });
            }
        }
    }
    if specs.len() > MAX_LISTENERS_PER_SERVICE {
        return Err(format!(
            "the Service needs {} listeners (at most {MAX_LISTENERS_PER_SERVICE})",
            specs.len()
        ));
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn state(ports: Vec<ServicePortSpec>) -> ServiceState {
        ServiceState {
            created: None,
            key: ServiceKey {
                cluster: "c".into(),
                namespace: "ns".into(),
                name: "room".into(),
            },
            uid: "uid-1".into(),
            resource_version: "1".into(),
            deleting: false,
            finalizers: vec![],
            annotations: Annotations::new(),
            ports,
            external_name: false,
            selector: Default::default(),
            pod: None,
        }
    }

    fn port(name: &str, port: u16, protocol: &str, target: TargetPort) -> ServicePortSpec {
        ServicePortSpec {
            name: Some(name.into()).filter(|n: &String| !n.is_empty()),
            port,
            protocol: protocol.into(),
            target_port: target,
        }
    }

    #[test]
    fn one_listener_per_port_in_order() {
        let specs = listener_specs(&state(vec![
            port("game", 7777, "TCP", TargetPort::Number(7777)),
            port("voice", 7778, "UDP", TargetPort::Name("voice".into())),
        ]))
        .expect("valid");
        let keys: Vec<_> = specs.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(keys, ["7777-tcp", "7778-udp"]);
        assert_eq!(specs[1].protocol, ListenerProtocol::Udp);
    }

    #[test]
    fn tcp_and_udp_on_one_number_merge() {
        let specs = listener_specs(&state(vec![
            port("game-tcp", 7777, "TCP", TargetPort::Number(7777)),
            port("game-udp", 7777, "UDP", TargetPort::Number(7777)),
        ]))
        .expect("valid");
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].protocol, ListenerProtocol::TcpUdp);
        assert_eq!(specs[0].key.to_string(), "7777-tcp_udp");
        assert_eq!(specs[0].name, "game-tcp");
        assert_eq!(specs[0].ports.len(), 2);
    }

    #[test]
    fn unnamed_port_is_named_by_number() {
        let specs = listener_specs(&state(vec![port("", 80, "TCP", TargetPort::Number(8080))]))
            .expect("valid");
        assert_eq!(specs[0].name, "80");
    }

    #[test]
    fn rejects_what_an_nlb_cannot_serve() {
        let sctp = state(vec![port("x", 1, "SCTP", TargetPort::Number(1))]);
        assert!(listener_specs(&sctp).expect_err("sctp").contains("SCTP"));
        assert!(
            listener_specs(&state(vec![]))
                .expect_err("none")
                .contains("no ports")
        );
        let mut ext = state(vec![port("x", 1, "TCP", TargetPort::Number(1))]);
        ext.external_name = true;
        assert!(
            listener_specs(&ext)
                .expect_err("external")
                .contains("ExternalName")
        );
        let many = (1..=50)
            .map(|i| port(&format!("p{i}"), i, "TCP", TargetPort::Number(i)))
            .collect();
        assert!(
            listener_specs(&state(many))
                .expect_err("many")
                .contains("at most 49")
        );
    }

    #[test]
    fn listener_keys_round_trip() {
        let key = ListenerKey::new(7777, ListenerProtocol::TcpUdp);
        assert_eq!(ListenerKey::parse(key.as_str()), Some(key));
        assert_eq!(ListenerKey::parse("x-tcp"), None);
        assert_eq!(ListenerKey::parse("1-sctp"), None);
    }

    #[test]
    fn reads_a_kubernetes_service() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "room", "namespace": "games", "uid": "u-1",
                         "deletionTimestamp": "2026-11-26T10:00:00Z",
                         "finalizers": [FINALIZER],
                         "annotations": {"a": "b"}},
            "spec": {"selector": {"app": "room"}, "ports": [
                {"name": "game", "port": 7777, "protocol": "UDP", "targetPort": "game-port"},
                {"port": 80, "targetPort": 8080},
                {"name": "x", "port": 81}
            ]}
        }))
        .expect("service JSON");
        let s = ServiceState::from_service("prod", &svc).expect("complete");
        assert!(s.deleting && s.has_finalizer() && !s.external_name);
        assert_eq!(s.selector.get("app").map(String::as_str), Some("room"));
        assert_eq!(s.key.to_string(), "prod/games/room");
        assert_eq!(s.ports[0].target_port, TargetPort::Name("game-port".into()));
        assert_eq!(s.ports[1].protocol, "TCP");
        assert_eq!(s.ports[1].name, None);
        assert_eq!(s.ports[2].target_port, TargetPort::Number(81));
    }
}
