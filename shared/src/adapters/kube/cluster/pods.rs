//! Pods on the Kubernetes API: listing a Service's pods by its selector, reading one, and
//! writing the outputs of a pod of a per-pod Service (annotations only).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::{FIELD_MANAGER, KubeCluster, is_status, kube_error};
use crate::contract::pod_model::REACHABLE_GATE;
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::cluster::outputs::{ServiceOutputs, outputs_patch};
use crate::model::cluster::{KubeError, Patched};

/// Pods read per page when listing a Service's pods.
const POD_PAGE: u32 = 500;

impl KubeCluster {
    fn pod_api(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn pod_state(pod: &Pod, action: &str) -> Result<PodState, KubeError> {
        PodState::from_pod(pod).ok_or_else(|| KubeError {
            action: action.to_owned(),
            message: "the API server returned a pod without name or uid".to_owned(),
            retryable: false,
        })
    }

    pub(super) async fn list_pods(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<Vec<PodState>, KubeError> {
        if selector.is_empty() {
            return Ok(vec![]);
        }
        let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let action = format!("list pods in {namespace} ({})", labels.join(","));
        let api = self.pod_api(namespace);
        let mut params = ListParams::default()
            .labels(&labels.join(","))
            .limit(POD_PAGE);
        let mut out = Vec::new();
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|e| kube_error(action.clone(), &e))?;
            for pod in &page.items {
                out.push(Self::pod_state(pod, &action)?);
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(out),
            }
        }
    }

    pub(super) async fn get_pod(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PodState>, KubeError> {
        let action = format!("get pod {namespace}/{name}");
        match self.pod_api(namespace).get_opt(name).await {
            Ok(Some(pod)) => Ok(Some(Self::pod_state(&pod, &action)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(kube_error(action, &e)),
        }
    }

    /// [`crate::model::cluster::Cluster::set_pod_reachable`].
    pub(super) async fn patch_pod_reachable(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        message: &str,
    ) -> Result<(), KubeError> {
        let action = format!("set the reachable condition of pod {namespace}/{name}");
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        // Strategic merge: conditions merge by `type`, so only this one is written; the uid
        // makes the API server refuse it (409) for another pod of the same name.
        let patch = serde_json::json!({
            "metadata": {"uid": uid},
            "status": {"conditions": [{
                "type": REACHABLE_GATE,
                "status": "True",
                "reason": "TargetHealthy",
                "message": message,
                "lastTransitionTime": now,
            }]}
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match self
            .pod_api(namespace)
            .patch_status(name, &params, &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
            Err(e) => Err(kube_error(action, &e)),
        }
    }

    /// Writes the outputs of the pod `subject` stands for, conditional on its uid and
    /// resourceVersion (a 409 is [`Patched::Changed`]).
    pub(super) async fn write_pod_outputs(
        &self,
        subject: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Patched, KubeError> {
        let Some(pod) = &subject.pod else {
            return Ok(Patched::Gone);
        };
        let Some(patch) = outputs_patch(subject, outputs) else {
            return Ok(Patched::Done(Box::new(subject.clone())));
        };
        let action = format!("patch pod {}/{}", subject.key.namespace, pod.name);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match self
            .pod_api(&subject.key.namespace)
            .patch(&pod.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(written) => {
                let state = Self::pod_state(&written, &action)?;
                Ok(Patched::Done(Box::new(subject.for_pod(&state))))
            }
            Err(e) if is_status(&e, 404) => Ok(Patched::Gone),
            Err(e) if is_status(&e, 409) => Ok(Patched::Changed),
            Err(e) => Err(kube_error(action, &e)),
        }
    }
}
