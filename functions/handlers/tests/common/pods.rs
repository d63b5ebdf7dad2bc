//! Per-pod Services on the bed: a Service selecting `app=<name>`, its pods made and their
//! status written as a kubelet would, and the EndpointSlice listing them with `targetRef`s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::SdkConfig;
use handlers::Deps;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use nlb_port_pool::contract::annotations::{
    MODE, POD_RELEASE_AFTER, PODS, PREFIX, PodsSummary, TARGET_GROUP_ARN,
};
use nlb_port_pool::reconcile::{ReachReport, ReachSettings};
use testbed::kube_fixtures::{PortSpec, opted_in_service};
use testbed::pod_fixtures::{self, PodEndpointSpec};

use super::{Stack, schedule_event};

/// The finalizer [`Stack::terminate_pod`] holds a pod with.
const TEST_FINALIZER: &str = "testbed.nlb-port-pool/terminating";

/// The IP of pod number `i`.
pub fn pod_ip(i: usize) -> String {
    format!("10.20.{}.{}", i / 250, i % 250 + 1)
}

impl Stack {
    /// Service `name` in per-pod mode (selector `app=<name>`, port `game` 7777 -> 8000), its
    /// pods released `grace` seconds after they leave.
    pub async fn create_per_pod_room(&self, name: &str, grace: &str) {
        self.create_per_pod_service(name, name, grace, PortSpec::tcp("game", 7777, 8000))
            .await;
    }

    /// Service `name` in per-pod mode selecting `app=<app>` (another Service's pods, say) with
    /// the one port `port`, its pods released `grace` seconds after they leave.
    pub async fn create_per_pod_service(&self, name: &str, app: &str, grace: &str, port: PortSpec) {
        let mut svc = opted_in_service(&self.namespace, name, &[port]);
        let annotations = svc.metadata.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(MODE.to_owned(), "per-pod".to_owned());
        annotations.insert(POD_RELEASE_AFTER.to_owned(), grace.to_owned());
        if let Some(spec) = svc.spec.as_mut() {
            spec.selector = Some(BTreeMap::from([("app".to_owned(), app.to_owned())]));
        }
        self.create_service(&svc).await;
    }

    /// Starts deleting pod `pod` and keeps it terminating (a finalizer of the test's holds it,
    /// as a kubelet would while the containers stop) until [`Stack::finish_terminating`].
    pub async fn terminate_pod(&self, pod: &str) {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.namespace);
        let hold = serde_json::json!({"metadata": {"finalizers": [TEST_FINALIZER]}});
        api.patch(pod, &PatchParams::default(), &Patch::Merge(&hold))
            .await
            .unwrap_or_else(|e| panic!("holding pod {pod}: {e}"));
        api.delete(pod, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting pod {pod}: {e}"));
    }

    /// Lets a pod held by [`Stack::terminate_pod`] go.
    pub async fn finish_terminating(&self, pod: &str) {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.namespace);
        let release = serde_json::json!({"metadata": {"finalizers": null}});
        api.patch(pod, &PatchParams::default(), &Patch::Merge(&release))
            .await
            .unwrap_or_else(|e| panic!("letting pod {pod} go: {e}"));
    }

    /// Every pod's output annotations (`nlb.port-manager/*`), by pod.
    pub async fn pod_outputs(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.pods()
            .await
            .into_iter()
            .map(|(name, p)| {
                let ann = p.metadata.annotations.unwrap_or_default();
                let outputs = ann.into_iter().filter(|(k, _)| k.starts_with(PREFIX));
                (name, outputs.collect())
            })
            .collect()
    }

    /// The `pods` summary of per-pod Service `name`.
    pub async fn pods_summary(&self, name: &str) -> PodsSummary {
        let json = self
            .annotations(name)
            .await
            .remove(PODS)
            .expect("a summary");
        serde_json::from_str(&json).expect("the summary's JSON")
    }

    /// The target group pod `pod` advertises (its first listener's).
    pub async fn pod_target_group(&self, pod: &str) -> String {
        self.pod_annotations(pod)
            .await
            .get(TARGET_GROUP_ARN)
            .cloned()
            .unwrap_or_else(|| panic!("pod {pod} advertises no target group"))
    }

    /// The `ip:port` targets of every target group of the Service with `uid`.
    pub async fn all_targets_of(&self, uid: &str) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for group in self.target_groups_of(uid).await {
            all.extend(self.targets(&group).await);
        }
        all
    }

    /// Switches Service `name` to `mode` (`per-pod`, or `per-service`).
    pub async fn set_mode(&self, name: &str, mode: &str) {
        let patch = serde_json::json!({"metadata": {"annotations": {MODE: mode}}});
        self.services()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("switching the mode");
    }

    /// The pods of the stack's namespace, by name.
    pub async fn pods(&self) -> BTreeMap<String, Pod> {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.namespace);
        api.list(&ListParams::default())
            .await
            .expect("listing pods")
            .items
            .into_iter()
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
            .collect()
    }

    /// Pod `pod`'s annotations.
    pub async fn pod_annotations(&self, pod: &str) -> BTreeMap<String, String> {
        self.pods()
            .await
            .remove(pod)
            .and_then(|p| p.metadata.annotations)
            .unwrap_or_default()
    }

    /// Makes pods `<name>-0 .. <name>-(n-1)` run (ready, IPs from [`pod_ip`]), deletes the
    /// others of `name`, and lists the running ones in the Service's EndpointSlice.
    pub async fn scale_pods(&self, name: &str, n: usize) {
        let existing = self.pods().await;
        let prefix = format!("{name}-");
        for (pod, _) in existing.iter().filter(|(p, _)| p.starts_with(&prefix)) {
            let index: Option<usize> = pod[prefix.len()..].parse().ok();
            if index.is_none_or(|i| i >= n) {
                pod_fixtures::delete_pod(&self.admin, &self.namespace, pod).await;
            }
        }
        let wanted: Vec<(String, String)> =
            (0..n).map(|i| (format!("{name}-{i}"), pod_ip(i))).collect();
        for (pod, ip) in &wanted {
            if !existing.contains_key(pod) {
                pod_fixtures::run_pod(
                    &self.admin,
                    &self.namespace,
                    pod,
                    name,
                    false,
                    (ip, true, true),
                )
                .await;
            }
        }
        let listed: Vec<PodEndpointSpec<'_>> = wanted
            .iter()
            .map(|(p, ip)| (p.as_str(), ip.as_str(), true))
            .collect();
        self.put_pod_slice(name, &listed).await;
    }

    /// Writes the EndpointSlice of Service `name` listing `pods`.
    pub async fn put_pod_slice(&self, name: &str, pods: &[PodEndpointSpec<'_>]) {
        self.put_slice(&pod_fixtures::pod_slice(
            &self.namespace,
            &format!("{name}-pods"),
            name,
            8000,
            pods,
        ))
        .await;
    }

    /// The reachability function of this stack on `sdk`, one look per run, checks due a
    /// second after the stack's functions note them.
    pub fn reachable_deps(&mut self, sdk: &SdkConfig) -> Deps {
        let settings = ReachSettings {
            check_every: Duration::from_secs(1),
            timeout: Duration::from_secs(600),
            run_for: Duration::ZERO,
            concurrency: 8,
        };
        for deps in [&mut self.deps, &mut self.sync_targets, &mut self.sweep] {
            deps.reconciler.set_reach_settings(settings);
        }
        let mut deps = Deps::new("reachable", self.deps.config.clone(), sdk, Duration::ZERO);
        deps.reconciler.set_reach_settings(settings);
        deps
    }
}

/// One run of the reachability function, as its schedule starts it.
pub async fn run_reachable(deps: &Deps) -> ReachReport {
    handlers::on_reachability_event(deps, schedule_event())
        .await
        .expect("the reachability function runs")
}
