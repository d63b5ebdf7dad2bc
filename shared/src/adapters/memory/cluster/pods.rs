//! Pods in the in-memory cluster: stored with their labels, listed by selector, written as the
//! API server would (resourceVersion checked, outputs only, never a finalizer).

use std::collections::BTreeMap;

use super::{MemoryCluster, State, key};
use crate::contract::annotations::OUTPUT_KEYS;
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::cluster::outputs::{ServiceOutputs, outputs_patch, pod_outputs};
use crate::model::cluster::{KubeError, Patched};

/// A stored pod and its labels.
#[derive(Clone)]
pub(super) struct StoredPod {
    pub pod: PodState,
    pub labels: BTreeMap<String, String>,
}

impl MemoryCluster {
    /// Stores (creates or replaces) a pod with `labels`, giving it a new resourceVersion.
    pub fn put_pod(&self, namespace: &str, mut pod: PodState, labels: &[(&str, &str)]) {
        let mut st = self.lock();
        st.next_version += 1;
        pod.resource_version = st.next_version.to_string();
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        pod.labels = labels.clone();
        st.pods
            .insert(key(namespace, &pod.name.clone()), StoredPod { pod, labels });
    }

    /// Deletes a pod at once (pods carry no finalizer of the system's).
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        self.lock().pods.remove(&key(namespace, name));
    }

    /// Starts deleting a pod: it stays, terminating (a deletionTimestamp), until
    /// [`MemoryCluster::delete_pod`].
    pub fn terminate_pod(&self, namespace: &str, name: &str) {
        let mut st = self.lock();
        st.next_version += 1;
        let version = st.next_version.to_string();
        if let Some(p) = st.pods.get_mut(&key(namespace, name)) {
            p.pod.deleting = true;
            p.pod.resource_version = version;
        }
    }

    /// The stored pod.
    pub fn get_pod(&self, namespace: &str, name: &str) -> Option<PodState> {
        self.lock()
            .pods
            .get(&key(namespace, name))
            .map(|p| p.pod.clone())
    }

    /// Sets the reachable condition of a stored pod with `uid` (see [`crate::model::cluster::Cluster::set_pod_reachable`]).
    pub(super) fn mark_reachable(&self, namespace: &str, name: &str, uid: &str) {
        let mut st = self.lock();
        st.next_version += 1;
        let version = st.next_version.to_string();
        if let Some(p) = st
            .pods
            .get_mut(&key(namespace, name))
            .filter(|p| p.pod.uid == uid)
        {
            p.pod.reachable = true;
            p.pod.resource_version = version;
        }
    }

    /// Every stored pod of `namespace`.
    pub fn pods_in(&self, namespace: &str) -> Vec<PodState> {
        self.lock()
            .pods
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, p)| p.pod.clone())
            .collect()
    }
}

/// The pods `selector` matches.
pub(super) fn select(
    st: &State,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<PodState> {
    if selector.is_empty() {
        return vec![];
    }
    st.pods
        .iter()
        .filter(|((ns, _), p)| {
            ns == namespace && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
        })
        .map(|(_, p)| p.pod.clone())
        .collect()
}

/// Writes the outputs of the pod `subject` stands for, if it is still as read.
pub(super) fn write_pod(
    st: &mut State,
    subject: &ServiceState,
    outputs: &ServiceOutputs,
) -> Result<Patched, KubeError> {
    let Some(pod) = &subject.pod else {
        return Ok(Patched::Gone);
    };
    // As the API server would apply the patch: what pod_outputs says, or nothing.
    let (Some(outputs), Some(_)) = (
        pod_outputs(subject, outputs),
        outputs_patch(subject, outputs),
    ) else {
        return Ok(Patched::Done(Box::new(subject.clone())));
    };
    let k = key(&subject.key.namespace, &pod.name);
    let Some(stored) = st.pods.get(&k).filter(|p| p.pod.uid == pod.uid).cloned() else {
        return Ok(Patched::Gone);
    };
    if stored.pod.resource_version != subject.resource_version {
        return Ok(Patched::Changed);
    }
    let mut next = stored;
    next.pod
        .annotations
        .retain(|k, _| !OUTPUT_KEYS.contains(&k.as_str()));
    next.pod.annotations.extend(outputs.annotations.clone());
    st.next_version += 1;
    next.pod.resource_version = st.next_version.to_string();
    st.writes += 1;
    st.history.push((k.clone(), next.pod.annotations.clone()));
    let written = subject.for_pod(&next.pod);
    st.pods.insert(k, next);
    Ok(Patched::Done(Box::new(written)))
}
