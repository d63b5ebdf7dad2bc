//! An in-memory [`Cluster`] for unit tests: Services, EndpointSlices and published Events.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::contract::annotations::{FINALIZER, mentions_opt_in};
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::cluster::outputs::{ServiceOutputs, outputs_patch};
use crate::model::cluster::{Cluster, KubeError, Notice, Patched, Written};
use crate::model::targets::SliceView;

mod pods;

#[derive(Default)]
struct State {
    services: BTreeMap<(String, String), ServiceState>,
    slices: BTreeMap<(String, String), Vec<SliceView>>,
    notices: Vec<(String, Notice)>,
    /// (Service uid, reason, fingerprint) of the Events published once.
    once: std::collections::BTreeSet<(String, &'static str, String)>,
    next_version: u64,
    failures: HashMap<&'static str, VecDeque<KubeError>>,
    writes: usize,
    cluster_uid: Option<String>,
    history: Vec<((String, String), crate::contract::annotations::Annotations)>,
    pods: BTreeMap<(String, String), pods::StoredPod>,
}

/// The `kube-system` uid of a [`MemoryCluster`] unless a test sets another.
pub const MEMORY_CLUSTER_UID: &str = "memory-kube-system-uid";

/// A Kubernetes API in memory. Writes check the resourceVersion, as the API server does, and
/// a deleting Service whose last finalizer is removed disappears.
#[derive(Default)]
pub struct MemoryCluster {
    state: Mutex<State>,
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_owned(), name.to_owned())
}

impl MemoryCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn enter(
        &self,
        operation: &'static str,
    ) -> Result<std::sync::MutexGuard<'_, State>, KubeError> {
        let mut st = self.lock();
        if let Some(err) = st.failures.get_mut(operation).and_then(VecDeque::pop_front) {
            return Err(err);
        }
        Ok(st)
    }

    /// Makes the next call of `operation` (`service`, `endpoint_slices`, `write_outputs`,
    /// `publish`) fail with `error`.
    pub fn fail_next(&self, operation: &'static str, error: KubeError) {
        self.lock()
            .failures
            .entry(operation)
            .or_default()
            .push_back(error);
    }

    /// Stores (creates or replaces) a Service, giving it a new resourceVersion.
    pub fn put_service(&self, mut service: ServiceState) {
        let mut st = self.lock();
        st.next_version += 1;
        service.resource_version = st.next_version.to_string();
        st.services
            .insert(key(&service.key.namespace, &service.key.name), service);
    }

    /// Starts deleting a Service: it disappears at once without finalizers, else it is marked.
    pub fn delete_service(&self, namespace: &str, name: &str) {
        let mut st = self.lock();
        st.next_version += 1;
        let version = st.next_version.to_string();
        let k = key(namespace, name);
        let remove = match st.services.get_mut(&k) {
            Some(s) if s.finalizers.is_empty() => true,
            Some(s) => {
                s.deleting = true;
                s.resource_version = version;
                false
            }
            None => false,
        };
        if remove {
            st.services.remove(&k);
        }
    }

    /// The stored Service.
    pub fn get(&self, namespace: &str, name: &str) -> Option<ServiceState> {
        self.lock().services.get(&key(namespace, name)).cloned()
    }

    /// Sets the EndpointSlices of a Service.
    pub fn set_slices(&self, namespace: &str, name: &str, slices: Vec<SliceView>) {
        self.lock().slices.insert(key(namespace, name), slices);
    }

    /// Every Event published, with the Service it is about (`namespace/name`).
    pub fn notices(&self) -> Vec<(String, Notice)> {
        self.lock().notices.clone()
    }

    /// Makes the cluster another one of the same name: its `kube-system` uid is `uid`.
    pub fn set_cluster_uid(&self, uid: &str) {
        self.lock().cluster_uid = Some(uid.to_owned());
    }

    /// How many writes changed a Service.
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// The annotations of Service `namespace/name` after each write that changed it, oldest
    /// first: what a watcher would have seen.
    pub fn history(
        &self,
        namespace: &str,
        name: &str,
    ) -> Vec<crate::contract::annotations::Annotations> {
        let k = key(namespace, name);
        self.lock()
            .history
            .iter()
            .filter(|(h, _)| *h == k)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

/// Writes `outputs` onto `stored` (the object under key `k`), as the API server would.
fn apply(
    st: &mut State,
    k: (String, String),
    stored: ServiceState,
    outputs: &ServiceOutputs,
) -> Written {
    if outputs_patch(&stored, outputs).is_none() {
        return Written::Done(Box::new(stored));
    }
    if stored.deleting && outputs.finalizer && !stored.has_finalizer() {
        return Written::Gone;
    }
    let mut next = stored;
    next.annotations
        .retain(|k, _| !crate::contract::annotations::OUTPUT_KEYS.contains(&k.as_str()));
    next.annotations.extend(outputs.annotations.clone());
    next.finalizers.retain(|f| f != FINALIZER);
    if outputs.finalizer {
        next.finalizers.push(FINALIZER.to_owned());
    }
    st.next_version += 1;
    next.resource_version = st.next_version.to_string();
    st.writes += 1;
    st.history.push((k.clone(), next.annotations.clone()));
    if next.deleting && next.finalizers.is_empty() {
        // The API server answers with the object, then deletes it.
        st.services.remove(&k);
        return Written::Done(Box::new(next));
    }
    st.services.insert(k, next.clone());
    Written::Done(Box::new(next))
}

#[async_trait]
impl Cluster for MemoryCluster {
    async fn service(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceState>, KubeError> {
        Ok(self
            .enter("service")?
            .services
            .get(&key(namespace, name))
            .cloned())
    }

    async fn endpoint_slices(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<SliceView>, KubeError> {
        Ok(self
            .enter("endpoint_slices")?
            .slices
            .get(&key(namespace, name))
            .cloned()
            .unwrap_or_default())
    }

    async fn write_outputs(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Written, KubeError> {
        let mut st = self.enter("write_outputs")?;
        let k = key(&service.key.namespace, &service.key.name);
        let Some(stored) = st.services.get(&k).cloned() else {
            return Ok(Written::Gone);
        };
        if stored.uid != service.uid {
            return Ok(Written::Gone);
        }
        // Like the API server's conflict-and-retry: apply to the stored object.
        Ok(apply(&mut st, k, stored, outputs))
    }

    async fn write_outputs_if_unchanged(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Patched, KubeError> {
        let mut st = self.enter("write_outputs")?;
        if service.pod.is_some() {
            return pods::write_pod(&mut st, service, outputs);
        }
        if outputs_patch(service, outputs).is_none() {
            return Ok(Patched::Done(Box::new(service.clone())));
        }
        let k = key(&service.key.namespace, &service.key.name);
        let stored = match st.services.get(&k) {
            Some(stored) if stored.uid == service.uid => stored.clone(),
            _ => return Ok(Patched::Gone),
        };
        if stored.resource_version != service.resource_version {
            return Ok(Patched::Changed);
        }
        Ok(match apply(&mut st, k, stored, outputs) {
            Written::Done(s) => Patched::Done(s),
            Written::Gone => Patched::Gone,
        })
    }

    async fn publish(&self, service: &ServiceState, notice: &Notice) -> Result<(), KubeError> {
        let mut st = self.enter("publish")?;
        if !crate::model::cluster::writes_pod(service) {
            return Ok(()); // another Service speaks for this pod
        }
        if let Some(fingerprint) = &notice.once
            && !st
                .once
                .insert((service.uid.clone(), notice.reason, fingerprint.clone()))
        {
            // As the API server answers a second create of the same Event name: it exists.
            return Ok(());
        }
        let who = match &service.pod {
            None => format!("{}/{}", service.key.namespace, service.key.name),
            Some(pod) => format!("{}/pod/{}", service.key.namespace, pod.name),
        };
        st.notices.push((who, notice.clone()));
        Ok(())
    }

    async fn pods(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<Vec<PodState>, KubeError> {
        let st = self.enter("pods")?;
        Ok(pods::select(&st, namespace, selector))
    }

    async fn set_pod_reachable(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        _message: &str,
    ) -> Result<(), KubeError> {
        drop(self.enter("set_pod_reachable")?);
        self.mark_reachable(namespace, name, uid);
        Ok(())
    }

    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<PodState>, KubeError> {
        Ok(self
            .enter("pod")?
            .pods
            .get(&key(namespace, name))
            .map(|p| p.pod.clone()))
    }

    async fn services_of_interest(&self) -> Result<Vec<ServiceState>, KubeError> {
        Ok(self
            .enter("services_of_interest")?
            .services
            .values()
            .filter(|s| mentions_opt_in(&s.annotations) || s.has_finalizer())
            .cloned()
            .collect())
    }

    async fn cluster_uid(&self) -> Result<String, KubeError> {
        Ok(self
            .enter("cluster_uid")?
            .cluster_uid
            .clone()
            .unwrap_or_else(|| MEMORY_CLUSTER_UID.to_owned()))
    }
}
