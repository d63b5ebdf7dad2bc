//! Whether a pod already has everything its claims and endpoints call for, so an endpoint
//! change that did not touch it costs it no call.

use crate::contract::annotations::TARGET;
use crate::contract::service_model::{ListenerSpec, ServiceState};
use crate::model::claims::{Claim, ClaimState};
use crate::model::targets::{SliceView, desired_targets};
use crate::reconcile::fingerprint::advertised_as_made;

/// True when the pod's outputs advertise its claims as made from what it asks for now (see
/// [`advertised_as_made`]; `disabled`: it is taken out of its listeners), nothing notes it gone, and the IP it records as target is the one
/// its endpoints give now. (Outputs that advertise this Service's claims are its own, named
/// or not: a pod written before pods named their owner needs only the name.)
pub(super) fn pod_up_to_date(
    pod: &ServiceState,
    disabled: bool,
    held: &[Claim],
    specs: &[ListenerSpec],
    pod_slices: &[SliceView],
    fingerprint: impl Fn(&ListenerSpec) -> String,
) -> bool {
    if held.iter().any(|c| c.gone_since.is_some())
        || !advertised_as_made(pod, disabled, held, specs, fingerprint)
    {
        return false;
    }
    let Some(first) = specs.first() else {
        return false;
    };
    let Ok(targets) = desired_targets(first, pod_slices) else {
        return false;
    };
    let want = targets.iter().next().map(|t| t.ip.to_string());
    pod.annotations.get(TARGET) == want.as_ref()
}

/// For a pod whose outputs another Service writes (so they say nothing of this Service's
/// listeners): true when nothing notes it gone and it holds one active claim per listener,
/// each made from what `fingerprint` gives now (its targets included).
pub(super) fn settled(
    held: &[Claim],
    specs: &[ListenerSpec],
    fingerprint: impl Fn(&ListenerSpec) -> String,
) -> bool {
    held.len() == specs.len()
        && held.iter().all(|c| c.gone_since.is_none())
        && specs.iter().all(|spec| {
            let made_from = fingerprint(spec);
            held.iter().any(|c| {
                c.key == spec.key
                    && c.state == ClaimState::Active
                    && c.applied.as_deref() == Some(made_from.as_str())
            })
        })
}
