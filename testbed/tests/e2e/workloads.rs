//! Workloads made by Kubernetes' own controllers on the bed: Deployments and StatefulSets whose
//! pods the scheduler places on the kwok nodes (three zones), kwok runs as a kubelet would
//! (testbed/kwok/stages.yaml), and the EndpointSlice controller lists. Manifests are applied
//! with kubectl, as a user would; waits read the pods as the controllers left them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use nlb_port_pool::contract::annotations::{AUTO_ASSIGN, MODE, POD_RELEASE_AFTER};
use nlb_port_pool::contract::pod_model::REACHABLE_GATE;
use serde_json::{Value, json};

use crate::support::{TestStack, kubectl};

/// The container port of every workload here, and the Services' target port.
pub const GAME_PORT: i32 = 8000;

/// Applies `manifest` with kubectl.
pub fn apply(manifest: &Value) {
    kubectl(&["apply", "-f", "-"], Some(&manifest.to_string()));
}

/// A pod template labelled `app=<app>`, one container on [`GAME_PORT`], stopping `grace`
/// seconds after its deletion, declaring the reachable gate if `gated`; `version` is a pod
/// annotation a test changes to roll the workload.
fn pod_template(app: &str, gated: bool, grace: u32, version: &str) -> Value {
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": grace,
        "containers": [{"name": "game", "image": "game-server:local",
                        "ports": [{"name": "game", "containerPort": GAME_PORT}]}],
    });
    if gated {
        spec["readinessGates"] = json!([{"conditionType": REACHABLE_GATE}]);
    }
    json!({"metadata": {"labels": {"app": app}, "annotations": {"example/version": version}},
           "spec": spec})
}

/// A StatefulSet `name` of `replicas` pods (OrderedReady, rolling updates one pod at a time).
pub fn statefulset(
    ns: &str,
    name: &str,
    replicas: i32,
    gated: bool,
    grace: u32,
    version: &str,
) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"replicas": replicas, "serviceName": name,
                    "podManagementPolicy": "OrderedReady",
                    "selector": {"matchLabels": {"app": name}},
                    "template": pod_template(name, gated, grace, version)}})
}

/// A Deployment `name` of `replicas` pods, rolled one new pod at a time, none taken down first.
pub fn deployment(ns: &str, name: &str, replicas: i32, version: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "strategy": {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                    "template": pod_template(name, false, 1, version)}})
}

/// An opted-in Service `name` selecting `app=<app>`, port `game` 7777 -> [`GAME_PORT`]; in
/// per-pod mode with `pod-release-after: grace` when `per_pod_grace` is given.
pub fn service(ns: &str, name: &str, app: &str, per_pod_grace: Option<u32>) -> Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(AUTO_ASSIGN.into(), json!("true"));
    if let Some(grace) = per_pod_grace {
        annotations.insert(MODE.into(), json!("per-pod"));
        annotations.insert(POD_RELEASE_AFTER.into(), json!(grace.to_string()));
    }
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns, "annotations": annotations},
           "spec": {"selector": {"app": app},
                    "ports": [{"name": "game", "protocol": "TCP", "port": 7777,
                               "targetPort": GAME_PORT}]}})
}

/// A Kubernetes time as chrono's (whole seconds, as the API writes them).
fn utc(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), 0).unwrap_or_default()
}

/// What the tests read of a pod.
#[derive(Debug, Clone)]
pub struct PodView {
    /// Its name.
    pub name: String,
    /// Its uid: a pod made again under its name has another.
    pub uid: String,
    /// Its IP, once kwok gave it one.
    pub ip: Option<String>,
    /// When it was made.
    pub created: DateTime<Utc>,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// Since when `ContainersReady` is True, if it is.
    pub containers_ready: Option<DateTime<Utc>>,
    /// Since when `Ready` is True, if it is.
    pub ready: Option<DateTime<Utc>>,
    /// Whether the reachable gate's condition is True.
    pub reachable: bool,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl PodView {
    fn of(pod: Pod) -> Self {
        let status = pod.status.unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let since = |kind: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == kind && c.status == "True")
                .map(|c| c.last_transition_time.as_ref().map_or(Utc::now(), utc))
        };
        Self {
            name: pod.metadata.name.unwrap_or_default(),
            uid: pod.metadata.uid.unwrap_or_default(),
            ip: status.pod_ip,
            created: pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(Utc::now(), utc),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            containers_ready: since("ContainersReady"),
            ready: since("Ready"),
            reachable: since(REACHABLE_GATE).is_some(),
            annotations: pod.metadata.annotations.unwrap_or_default(),
        }
    }

    /// The annotation `key`, if it is there.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// The pods labelled `app=<app>` in the test's namespace, by name.
pub async fn pods(t: &TestStack, app: &str) -> BTreeMap<String, PodView> {
    Api::<Pod>::namespaced(t.admin.clone(), &t.namespace)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("listing pods")
        .items
        .into_iter()
        .map(PodView::of)
        .map(|p| (p.name.clone(), p))
        .collect()
}

/// Waits (polling every 250 ms) until `done` holds of the pods of `app`; returns them.
pub async fn wait_pods(
    t: &TestStack,
    app: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&BTreeMap<String, PodView>) -> bool,
) -> BTreeMap<String, PodView> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = pods(t, app).await;
        if done(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after {timeout:?}; pods {now:#?}; {}",
            t.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether `pods` are exactly `names`, each Ready and not being deleted.
pub fn all_ready(pods: &BTreeMap<String, PodView>, names: &[String]) -> bool {
    pods.len() == names.len()
        && names.iter().all(|n| {
            pods.get(n)
                .is_some_and(|p| p.ready.is_some() && !p.deleting)
        })
}

/// The names of StatefulSet `name`'s first `n` pods.
pub fn ordinals(name: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{name}-{i}")).collect()
}
