//! The part of a Service the system owns, and the merge patch that writes it.
//!
//! A pod's outputs belong to one per-pod Service (two may select the same pods): whatever a
//! run asks to write on a pod goes through [`pod_outputs`], which stamps the pod with its
//! Service ([`SERVICE`]) and refuses to touch a pod whose outputs are another Service's. Both
//! adapters write pods only through it, conditional on the pod being as read, so the check and
//! the write see the same pod.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::contract::annotations::{Annotations, FINALIZER, OUTPUT_KEYS, SERVICE, service_ref};
use crate::contract::service_model::ServiceState;

/// What the system wants on a Service: its output annotations (absent keys are removed) and
/// whether the finalizer is held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceOutputs {
    /// Output annotations, keys from [`OUTPUT_KEYS`].
    pub annotations: Annotations,
    /// Hold the finalizer.
    pub finalizer: bool,
}

impl ServiceOutputs {
    /// The outputs `service` carries now.
    pub fn current(service: &ServiceState) -> Self {
        Self {
            annotations: service
                .annotations
                .iter()
                .filter(|(k, _)| OUTPUT_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            finalizer: service.has_finalizer(),
        }
    }
}

/// Whether what `subject` stands for may be written (outputs, Events) by its Service: always
/// for a Service; for a pod ([`ServiceState::for_pod`]) as read, when its [`SERVICE`] names no
/// Service, this one (by uid), or the owner this run judged gone and takes over from
/// ([`crate::contract::service_model::PodSubject::replaces`]).
pub fn writes_pod(subject: &ServiceState) -> bool {
    let Some(pod) = &subject.pod else {
        return true;
    };
    match subject.annotations.get(SERVICE) {
        None => true,
        Some(owner) => {
            crate::contract::annotations::parse_service_ref(owner)
                .is_some_and(|(_, uid)| uid == subject.uid)
                || pod.replaces.as_deref() == Some(owner.as_str())
        }
    }
}

/// What a write of `outputs` on what `subject` stands for really writes: `outputs` as they are
/// for a Service; for a pod, `None` when the pod is not its Service's to write
/// ([`writes_pod`]), else `outputs` naming the Service in [`SERVICE`] (none when no other
/// output is left: a pod cleared of its outputs names no owner, and the next Service may take
/// it).
pub fn pod_outputs<'a>(
    subject: &ServiceState,
    outputs: &'a ServiceOutputs,
) -> Option<Cow<'a, ServiceOutputs>> {
    if subject.pod.is_none() {
        return Some(Cow::Borrowed(outputs));
    }
    if !writes_pod(subject) {
        return None;
    }
    let mut stamped = outputs.clone();
    stamped.annotations.remove(SERVICE);
    if !stamped.annotations.is_empty() {
        stamped.annotations.insert(
            SERVICE.to_owned(),
            service_ref(&subject.key.name, &subject.uid),
        );
    }
    Some(Cow::Owned(stamped))
}

/// The JSON merge patch that turns `service`'s outputs into `outputs`, or `None` when they
/// already match. It carries the uid and resourceVersion read, so the API server refuses it
/// (409) if the object changed or was replaced; other annotations and finalizers are kept.
///
/// For a state standing for a pod ([`ServiceState::for_pod`]) the patch is the pod's: its uid,
/// never a finalizer (`outputs.finalizer` is ignored), the owner stamped, and `None` when the
/// pod's outputs are another Service's (see [`pod_outputs`]).
pub fn outputs_patch(service: &ServiceState, outputs: &ServiceOutputs) -> Option<Value> {
    let outputs = pod_outputs(service, outputs)?;
    let finalizers = &service.finalizers;
    let uid = service.pod.as_ref().map_or(&service.uid, |p| &p.uid);
    let mut annotations = Map::new();
    for key in OUTPUT_KEYS {
        let want = outputs.annotations.get(key);
        if service.annotations.get(key) != want {
            annotations.insert(
                key.to_owned(),
                want.map_or(Value::Null, |v| Value::String(v.clone())),
            );
        }
    }
    let has = finalizers.iter().any(|f| f == FINALIZER);
    let want_finalizer = if service.pod.is_some() {
        has
    } else {
        outputs.finalizer
    };
    let new_finalizers = match (has, want_finalizer) {
        (false, true) => Some(
            finalizers
                .iter()
                .cloned()
                .chain(std::iter::once(FINALIZER.to_owned()))
                .collect::<Vec<_>>(),
        ),
        (true, false) => Some(
            finalizers
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect(),
        ),
        _ => None,
    };
    if annotations.is_empty() && new_finalizers.is_none() {
        return None;
    }
    let mut metadata = Map::new();
    metadata.insert("uid".into(), json!(uid));
    metadata.insert("resourceVersion".into(), json!(service.resource_version));
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    if let Some(f) = new_finalizers {
        metadata.insert("finalizers".into(), json!(f));
    }
    Some(json!({ "metadata": metadata }))
}

#[cfg(test)]
#[path = "outputs_tests.rs"]
mod tests;
