//! [`Cluster`] on the Kubernetes API.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

use crate::contract::annotations::{FINALIZER, mentions_opt_in};
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::cluster::outputs::{ServiceOutputs, outputs_patch};
use crate::model::cluster::{
    Cluster, IDENTITY_NAMESPACE, KubeError, Notice, NoticeKind, Patched, Written,
};
use crate::model::targets::SliceView;

mod pods;

/// The field manager named on every write, so `managedFields` shows what the system wrote.
pub const FIELD_MANAGER: &str = "nlb-port-pool";

/// The `reportingController` of every Event (the API server wants a qualified name).
pub const REPORTING_CONTROLLER: &str = "nlb-port-pool.io/functions";

/// Attempts of a write that meets conflicting writers.
const WRITE_ATTEMPTS: usize = 4;

/// Services read per page when listing all of them.
const LIST_PAGE: u32 = 500;

/// A cluster reached through a kube [`Client`].
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    cluster: String,
    instance: String,
    namespaces: Vec<String>,
}

impl KubeCluster {
    /// Acts on `cluster` through `client`; Events name `instance` (e.g. the function) as reporter.
    pub fn new(client: Client, cluster: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            client,
            cluster: cluster.into(),
            namespaces: vec![],
        }
    }

    /// Limits listings to `namespaces` (empty: all), as `WATCH_NAMESPACES` does.
    pub fn with_namespaces(mut self, namespaces: &[String]) -> Self {
        self.namespaces = namespaces.to_vec();
        self
    }

    fn services(&self, namespace: &str) -> Api<Service> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn state(&self, svc: &Service, action: &str) -> Result<ServiceState, KubeError> {
        ServiceState::from_service(&self.cluster, svc).ok_or_else(|| KubeError {
            action: action.to_owned(),
            message: "the API server returned a Service without name, namespace or uid".to_owned(),
            retryable: false,
        })
    }
}

/// Classifies a kube error: conflicts, throttling, server errors and transport failures are
/// worth retrying; validation and permission errors are not.
pub(crate) fn kube_error(action: impl Into<String>, err: &kube::Error) -> KubeError {
    let (message, retryable) = match err {
        kube::Error::Api(status) => (
            format!("{} ({} {})", status.message, status.code, status.reason),
            status.code == 409 || status.code == 429 || status.code >= 500,
        ),
        other => (other.to_string(), true),
    };
    KubeError {
        action: action.into(),
        message,
        retryable,
    }
}

/// The API server refuses Event notes over 1 kB.
fn shorten_note(note: &str) -> String {
    const MAX: usize = 1000;
    if note.len() <= MAX {
        return note.to_owned();
    }
    let mut end = MAX;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

/// The name of the Event published once for `fingerprint`: the Service's name and a digest of
/// its uid (a new Service of the same name is told again), the reason and the fingerprint.
fn once_event_name(service: &ServiceState, reason: &str, fingerprint: &str) -> String {
    use sha2::{Digest, Sha256};
    let uid = service.pod.as_ref().map_or(&service.uid, |p| &p.uid);
    let digest = Sha256::new()
        .chain_update(uid.as_bytes())
        .chain_update([0])
        .chain_update(reason.as_bytes())
        .chain_update([0])
        .chain_update(fingerprint.as_bytes())
        .finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}.{hex}", object_name(service))
}

/// The name of the object Events are about: the Service, or the pod a per-pod state stands for.
fn object_name(service: &ServiceState) -> &str {
    service.pod.as_ref().map_or(&service.key.name, |p| &p.name)
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn service(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceState>, KubeError> {
        let action = format!("get Service {namespace}/{name}");
        match self.services(namespace).get_opt(name).await {
            Ok(Some(svc)) => Ok(Some(self.state(&svc, &action)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(kube_error(action, &e)),
        }
    }

    async fn endpoint_slices(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<SliceView>, KubeError> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
        let list = api
            .list(&params)
            .await
            .map_err(|e| kube_error(format!("list EndpointSlices of {namespace}/{name}"), &e))?;
        Ok(list.items.iter().map(SliceView::from_slice).collect())
    }

    async fn write_outputs(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Written, KubeError> {
        if service.pod.is_some() {
            return Ok(match self.write_pod_outputs(service, outputs).await? {
                Patched::Done(s) => Written::Done(s),
                Patched::Gone | Patched::Changed => Written::Gone,
            });
        }
        let (namespace, name) = (&service.key.namespace, &service.key.name);
        let action = format!("patch Service {namespace}/{name}");
        let api = self.services(namespace);
        let mut current = service.clone();
        for attempt in 1..=WRITE_ATTEMPTS {
            let Some(patch) = outputs_patch(&current, outputs) else {
                return Ok(Written::Done(Box::new(current)));
            };
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            match api.patch(name, &params, &Patch::Merge(&patch)).await {
                Ok(svc) => return Ok(Written::Done(Box::new(self.state(&svc, &action)?))),
                Err(e) if is_status(&e, 404) => return Ok(Written::Gone),
                // 409: the object changed since it was read (or its uid differs): read again.
                Err(e) if is_status(&e, 409) && attempt < WRITE_ATTEMPTS => {
                    match self.service(namespace, name).await? {
                        Some(fresh) if fresh.uid == service.uid => current = fresh,
                        _ => return Ok(Written::Gone),
                    }
                }
                // A deleting object refuses new finalizers (422): it is on its way out.
                Err(e) if is_status(&e, 422) && outputs.finalizer && !current.has_finalizer() => {
                    return Ok(Written::Gone);
                }
                Err(e) => return Err(kube_error(action, &e)),
            }
        }
        Err(KubeError {
            action,
            message: format!("still conflicting after {WRITE_ATTEMPTS} attempts"),
            retryable: true,
        })
    }

    async fn write_outputs_if_unchanged(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Patched, KubeError> {
        if service.pod.is_some() {
            return self.write_pod_outputs(service, outputs).await;
        }
        let (namespace, name) = (&service.key.namespace, &service.key.name);
        let action = format!("patch Service {namespace}/{name}");
        // The patch carries the uid and resourceVersion read: the API server refuses it (409)
        // if the object changed since.
        let Some(patch) = outputs_patch(service, outputs) else {
            return Ok(Patched::Done(Box::new(service.clone())));
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match self
            .services(namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(svc) => Ok(Patched::Done(Box::new(self.state(&svc, &action)?))),
            Err(e) if is_status(&e, 404) => Ok(Patched::Gone),
            Err(e) if is_status(&e, 409) => Ok(Patched::Changed),
            // A deleting object refuses new finalizers (422): it is on its way out.
            Err(e) if is_status(&e, 422) && outputs.finalizer && !service.has_finalizer() => {
                Ok(Patched::Gone)
            }
            Err(e) => Err(kube_error(action, &e)),
        }
    }

    async fn publish(&self, service: &ServiceState, notice: &Notice) -> Result<(), KubeError> {
        if !crate::model::cluster::writes_pod(service) {
            return Ok(()); // another Service speaks for this pod (its outputs are that one's)
        }
        // Events are written only when a Service's status changes, or once per fingerprint
        // (`Notice::once`), so a plain create (no series aggregation) is enough and needs only
        // `create`.
        let now = Timestamp::now();
        let name = match &notice.once {
            Some(fingerprint) => once_event_name(service, notice.reason, fingerprint),
            None => format!("{}.{:x}", object_name(service), now.as_nanosecond()),
        };
        let regarding = match &service.pod {
            None => ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Service".to_owned()),
                name: Some(service.key.name.clone()),
                namespace: Some(service.key.namespace.clone()),
                uid: Some(service.uid.clone()),
                ..ObjectReference::default()
            },
            Some(pod) => ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: Some(pod.name.clone()),
                namespace: Some(service.key.namespace.clone()),
                uid: Some(pod.uid.clone()),
                ..ObjectReference::default()
            },
        };
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(service.key.namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(match notice.kind {
                NoticeKind::Normal => "Normal".to_owned(),
                NoticeKind::Warning => "Warning".to_owned(),
            }),
            reason: Some(notice.reason.to_owned()),
            note: Some(shorten_note(&notice.note)),
            action: Some("Reconcile".to_owned()),
            reporting_controller: Some(REPORTING_CONTROLLER.to_owned()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(regarding),
            ..Event::default()
        };
        match Api::<Event>::namespaced(self.client.clone(), &service.key.namespace)
            .create(&PostParams::default(), &event)
            .await
        {
            Ok(_) => Ok(()),
            // The Event of this fingerprint exists: it was reported (until the API server's
            // --event-ttl, 1h by default, expires it; a standing problem is then reported again).
            Err(e) if notice.once.is_some() && is_status(&e, 409) => Ok(()),
            Err(e) => Err(kube_error(
                format!("publish Event {} on {}", notice.reason, service.key),
                &e,
            )),
        }
    }

    async fn pods(
        &self,
        namespace: &str,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<PodState>, KubeError> {
        self.list_pods(namespace, selector).await
    }

    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<PodState>, KubeError> {
        self.get_pod(namespace, name).await
    }

    async fn set_pod_reachable(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        message: &str,
    ) -> Result<(), KubeError> {
        self.patch_pod_reachable(namespace, name, uid, message)
            .await
    }

    async fn services_of_interest(&self) -> Result<Vec<ServiceState>, KubeError> {
        if self.namespaces.is_empty() {
            return self.list_of_interest(Api::all(self.client.clone())).await;
        }
        let mut out = Vec::new();
        for ns in &self.namespaces {
            out.extend(self.list_of_interest(self.services(ns)).await?);
        }
        Ok(out)
    }

    async fn cluster_uid(&self) -> Result<String, KubeError> {
        // Needs `get` on this one namespace only (deploy/functions-rbac.yaml).
        let action = format!("get Namespace {IDENTITY_NAMESPACE}");
        let ns = Api::<Namespace>::all(self.client.clone())
            .get(IDENTITY_NAMESPACE)
            .await
            .map_err(|e| kube_error(action.clone(), &e))?;
        ns.metadata.uid.ok_or_else(|| KubeError {
            action,
            message: "the API server returned the namespace without a uid".to_owned(),
            retryable: false,
        })
    }
}

impl KubeCluster {
    async fn list_of_interest(&self, api: Api<Service>) -> Result<Vec<ServiceState>, KubeError> {
        let mut out = Vec::new();
        let mut params = ListParams::default().limit(LIST_PAGE);
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|e| kube_error("list Services in all namespaces", &e))?;
            for svc in &page.items {
                let state = self.state(svc, "list Services")?;
                if mentions_opt_in(&state.annotations)
                    || state.finalizers.iter().any(|f| f == FINALIZER)
                {
                    out.push(state);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(out),
            }
        }
    }
}
