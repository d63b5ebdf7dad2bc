//! Whether a pod's outputs already say everything its claims and endpoints call for, so an
//! endpoint change that did not touch it costs it no call.

use crate::annotations::TARGET;
use crate::claims::Claim;
use crate::reconcile::fingerprint::advertised_as_made;
use crate::service_model::{ListenerSpec, ServiceState};
use crate::targets::{SliceView, desired_targets};

/// True when the pod's outputs advertise its claims as made from what it asks for now (see
/// [`advertised_as_made`]), nothing notes it gone, and the IP it records as target is the one
/// its endpoints give now.
pub(super) fn pod_up_to_date(
    pod: &ServiceState,
    held: &[Claim],
    specs: &[ListenerSpec],
    pod_slices: &[SliceView],
    fingerprint: impl Fn(&ListenerSpec) -> String,
) -> bool {
    if held.iter().any(|c| c.gone_since.is_some())
        || !advertised_as_made(pod, held, specs, fingerprint)
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
