//! Pods written by hand for per-pod mode: a test makes the pod, writes its status (IP,
//! conditions) as a kubelet would, and lists it in an EndpointSlice with its `targetRef`, as the
//! EndpointSlice controller would, to set up exactly the state it needs (a pod listed before
//! its status says so, an address in no pod, ...).
//!
//! The bed runs a scheduler and kwok nodes: these pods name a scheduler that does not exist
//! ([`HAND_SCHEDULER`]), so no node takes them and kwok never rewrites what the test wrote;
//! the EndpointSlice controller leaves them out (no node), so the test's slice is the only one
//! listing them. Tests of what the real controllers do make Deployments and StatefulSets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ObjectReference, Pod, PodReadinessGate, PodSpec, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::kube_fixtures::SLICE_MANAGER;
use nlb_port_pool::contract::pod_model::REACHABLE_GATE;
use nlb_port_pool::model::target_policy::MANAGED_BY_LABEL;

/// A pod of the per-pod Service's endpoints: (pod name, IP, ready).
pub type PodEndpointSpec<'a> = (&'a str, &'a str, bool);

/// The scheduler hand-made pods name: none runs, so they stay unscheduled (see the module doc).
pub const HAND_SCHEDULER: &str = "hand-made.nlb-port-pool";

/// Pod `name` labelled `app=<app>`, one container; declaring the reachable gate if `gated`.
pub fn pod(namespace: &str, name: &str, app: &str, gated: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([("app".to_owned(), app.to_owned())])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "game".to_owned(),
                image: Some("game-server:local".to_owned()),
                ..Container::default()
            }],
            readiness_gates: gated.then(|| {
                vec![PodReadinessGate {
                    condition_type: REACHABLE_GATE.to_owned(),
                }]
            }),
            // No API token in a pod that never runs.
            automount_service_account_token: Some(false),
            scheduler_name: Some(HAND_SCHEDULER.to_owned()),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// Makes pod `name` and writes its status as a kubelet would: `ip`, `ContainersReady` as
/// `containers_ready`, `Ready` as `ready`. Returns its uid.
pub async fn run_pod(
    admin: &Client,
    namespace: &str,
    name: &str,
    app: &str,
    gated: bool,
    (ip, containers_ready, ready): (&str, bool, bool),
) -> String {
    default_service_account(admin, namespace).await;
    let api: Api<Pod> = Api::namespaced(admin.clone(), namespace);
    let made = api
        .create(&PostParams::default(), &pod(namespace, name, app, gated))
        .await
        .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
    set_status(admin, namespace, name, ip, containers_ready, ready).await;
    made.metadata.uid.unwrap_or_default()
}

/// The namespace's `default` ServiceAccount, which admission requires of a pod: made here
/// rather than waiting for the ServiceAccount controller to make it.
async fn default_service_account(admin: &Client, namespace: &str) {
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("default".to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &account)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating the default ServiceAccount of {namespace}: {e}"),
    }
}

/// Writes a pod's status as a kubelet would (its other conditions kept by the merge).
pub async fn set_status(
    admin: &Client,
    namespace: &str,
    name: &str,
    ip: &str,
    containers_ready: bool,
    ready: bool,
) {
    let word = |b: bool| if b { "True" } else { "False" };
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "ContainersReady", "status": word(containers_ready)},
            {"type": "Ready", "status": word(ready)},
        ],
    }});
    Api::<Pod>::namespaced(admin.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&status))
        .await
        .unwrap_or_else(|e| panic!("writing the status of pod {name}: {e}"));
}

/// Sets annotation `key` of pod `name` to `value`, or removes it (`None`), as a user's
/// `kubectl annotate` would.
pub async fn annotate(admin: &Client, namespace: &str, name: &str, key: &str, value: Option<&str>) {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    Api::<Pod>::namespaced(admin.clone(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("annotating pod {name} with {key}: {e}"));
}

/// Deletes pod `name` at once (a hand-made pod has no kubelet to finish a graceful deletion).
pub async fn delete_pod(admin: &Client, namespace: &str, name: &str) {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    match Api::<Pod>::namespaced(admin.clone(), namespace)
        .delete(name, &params)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => panic!("deleting pod {name}: {e}"),
    }
}

/// The EndpointSlice of Service `service` listing `pods` with their `targetRef`s, port `game`
/// (`port`/TCP), managed by [`SLICE_MANAGER`].
pub fn pod_slice(
    namespace: &str,
    slice_name: &str,
    service: &str,
    port: i32,
    pods: &[PodEndpointSpec<'_>],
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(slice_name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/service-name".to_owned(), service.to_owned()),
                (MANAGED_BY_LABEL.to_owned(), SLICE_MANAGER.to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".to_owned(),
        endpoints: Some(
            pods.iter()
                .map(|(pod, ip, ready)| Endpoint {
                    addresses: vec![(*ip).to_owned()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*ready),
                        serving: Some(*ready),
                        terminating: Some(false),
                    }),
                    target_ref: Some(ObjectReference {
                        kind: Some("Pod".to_owned()),
                        name: Some((*pod).to_owned()),
                        namespace: Some(namespace.to_owned()),
                        ..ObjectReference::default()
                    }),
                    ..Endpoint::default()
                })
                .collect(),
        ),
        ports: Some(vec![EndpointPort {
            name: Some("game".to_owned()),
            port: Some(port),
            protocol: Some("TCP".to_owned()),
            ..EndpointPort::default()
        }]),
    }
}

/// Whether pod `name`'s reachable condition is True.
pub async fn reachable(admin: &Client, namespace: &str, name: &str) -> bool {
    let pod = Api::<Pod>::namespaced(admin.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("reading pod {name}: {e}"));
    pod.status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == REACHABLE_GATE && c.status == "True")
}
