//! Kubernetes fixtures: namespaces, opted-in Services, EndpointSlices, ServiceAccount clients.
//!
//! Most tests write a Service's EndpointSlices by hand with [`endpoint_slice`], to set up the
//! exact endpoints they need. The bed's EndpointSlice controller also writes a slice for each
//! Service with a selector; with no pod scheduled on the bed's nodes behind these Services it
//! lists nothing, and the union of slices the functions read is the test's.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Client;
use kube::api::{Api, PostParams};
use secrecy::SecretString;

use crate::Bed;
use nlb_port_pool::model::target_policy::MANAGED_BY_LABEL;

/// Creates the namespace `name` (an `AlreadyExists` answer counts as success).
pub async fn create_namespace(client: &Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

/// A client acting as ServiceAccount `namespace/name` (created if missing), authenticated
/// with a token from the TokenRequest API, as a pod's projected token would be.
pub async fn service_account_client(admin: &Client, namespace: &str, name: &str) -> Client {
    let token = service_account_token(admin, namespace, name).await;
    let bed = Bed::get();
    let mut config = kube::Config::new(bed.kube_server().parse().expect("KUBE_SERVER is a URL"));
    config.default_namespace = namespace.to_owned();
    config.root_cert = Some(vec![pem_body(&bed.kube_ca_pem())]);
    config.auth_info.token = Some(SecretString::from(token));
    Client::try_from(config).expect("building the ServiceAccount client")
}

/// A token of ServiceAccount `namespace/name` (created if missing), valid for an hour.
pub async fn service_account_token(admin: &Client, namespace: &str, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating ServiceAccount {namespace}/{name}: {e}"),
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"))
        .status
        .and_then(|s| s.token)
        .expect("TokenRequest answered without a token")
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("the bed's CA is PEM")
}

/// One port of a test Service: name, port, protocol, targetPort.
#[derive(Debug, Clone)]
pub struct PortSpec {
    /// The Service port's name.
    pub name: &'static str,
    /// The Service port.
    pub port: i32,
    /// `TCP` or `UDP`.
    pub protocol: &'static str,
    /// A number or a named container port.
    pub target_port: IntOrString,
}

impl PortSpec {
    /// A TCP port whose targetPort is a number.
    pub fn tcp(name: &'static str, port: i32, target: i32) -> Self {
        Self {
            name,
            port,
            protocol: "TCP",
            target_port: IntOrString::Int(target),
        }
    }

    /// A UDP port whose targetPort is a number.
    pub fn udp(name: &'static str, port: i32, target: i32) -> Self {
        Self {
            protocol: "UDP",
            ..Self::tcp(name, port, target)
        }
    }

    /// A TCP port whose targetPort names a container port.
    pub fn tcp_named(name: &'static str, port: i32, target: &str) -> Self {
        Self {
            target_port: IntOrString::String(target.to_owned()),
            ..Self::tcp(name, port, 0)
        }
    }
}

/// A ClusterIP Service with `annotations` and `ports`.
pub fn service(
    namespace: &str,
    name: &str,
    annotations: &[(&str, &str)],
    ports: &[PortSpec],
) -> Service {
    let annotations: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([("app".to_owned(), name.to_owned())])),
            ports: Some(
                ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(p.name.to_owned()),
                        port: p.port,
                        protocol: Some(p.protocol.to_owned()),
                        target_port: Some(p.target_port.clone()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// An opted-in Service (`nlb.port-manager/auto-assign: "true"`).
pub fn opted_in_service(namespace: &str, name: &str, ports: &[PortSpec]) -> Service {
    service(
        namespace,
        name,
        &[(nlb_port_pool::contract::annotations::AUTO_ASSIGN, "true")],
        ports,
    )
}

/// `svc` without a selector, so no controller writes its EndpointSlices (the test writes them,
/// or none): for tests that count every event the forwarder sends, which the bed's
/// EndpointSlice controller would add to with the empty slice it writes for a selector.
pub fn without_selector(mut svc: Service) -> Service {
    if let Some(spec) = svc.spec.as_mut() {
        spec.selector = None;
    }
    svc
}

/// The manager (`endpointslice.kubernetes.io/managed-by`) of the slices tests write by hand.
/// Not the EndpointSlice controller's name: a test slice says honestly who wrote it, and the
/// functions under test trust it because their configuration allows it
/// (`TRUSTED_ENDPOINTSLICE_MANAGERS`), as an operator would allow another controller.
pub const SLICE_MANAGER: &str = "testbed.nlb-port-pool";

/// An EndpointSlice of Service `service_name` with one port and these endpoints, each
/// `(ip, ready)`, managed by [`SLICE_MANAGER`].
pub fn endpoint_slice(
    namespace: &str,
    slice_name: &str,
    service_name: &str,
    ports: &[(&str, i32, &str)],
    endpoints: &[(&str, bool)],
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(slice_name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (
                    "kubernetes.io/service-name".to_owned(),
                    service_name.to_owned(),
                ),
                (MANAGED_BY_LABEL.to_owned(), SLICE_MANAGER.to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".to_owned(),
        endpoints: Some(
            endpoints
                .iter()
                .map(|(ip, ready)| Endpoint {
                    addresses: vec![(*ip).to_owned()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*ready),
                        serving: Some(*ready),
                        terminating: Some(false),
                    }),
                    ..Endpoint::default()
                })
                .collect(),
        ),
        ports: Some(
            ports
                .iter()
                .map(|(name, port, protocol)| EndpointPort {
                    name: Some((*name).to_owned()),
                    port: Some(*port),
                    protocol: Some((*protocol).to_owned()),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }
}

/// `slice` with its manager label set to `manager`, or removed (`None`).
pub fn managed_by(mut slice: EndpointSlice, manager: Option<&str>) -> EndpointSlice {
    let labels = slice.metadata.labels.get_or_insert_with(BTreeMap::new);
    match manager {
        Some(m) => labels.insert(MANAGED_BY_LABEL.to_owned(), m.to_owned()),
        None => labels.remove(MANAGED_BY_LABEL),
    };
    slice
}

/// Creates `object` in its namespace, panicking with the API's answer on failure.
pub async fn create<K>(client: &Client, object: &K) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
    K::DynamicType: Default,
{
    let namespace = object
        .meta()
        .namespace
        .clone()
        .expect("object has a namespace");
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    api.create(&PostParams::default(), object)
        .await
        .unwrap_or_else(|e| panic!("creating {:?}: {e}", object.meta().name))
}

/// The uid of Service `namespace/name`.
pub async fn service_uid(client: &Client, namespace: &str, name: &str) -> String {
    Api::<Service>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("reading Service {namespace}/{name}: {e}"))
        .metadata
        .uid
        .expect("a stored Service has a uid")
}
