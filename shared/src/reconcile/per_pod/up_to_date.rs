//! Whether a pod's outputs already say everything its claims and endpoints call for, so an
//! endpoint change that did not touch it costs it no call.

use crate::annotations::{ALLOCATIONS, AllocationRecord, STATUS, Status, TARGET};
use crate::claims::{Claim, ClaimState};
use crate::service_model::{ListenerSpec, ServiceState};
use crate::targets::{SliceView, desired_targets};

/// True when every listener of `specs` has an active claim among `held` (the pod's claims as
/// read at the start of the run), the pod advertises exactly those, its status is `Allocated`
/// or `Ready`,
/// nothing notes it gone, and the IP it records as target is the one its endpoints give now.
pub(super) fn pod_up_to_date(
    pod: &ServiceState,
    held: &[Claim],
    specs: &[ListenerSpec],
    pod_slices: &[SliceView],
) -> bool {
    let status = pod.annotations.get(STATUS).cloned();
    let settled = [Status::Allocated.to_string(), Status::Ready.to_string()];
    if held.len() != specs.len() || !status.is_some_and(|s| settled.contains(&s)) {
        return false;
    }
    let Some(records) = pod
        .annotations
        .get(ALLOCATIONS)
        .and_then(|json| serde_json::from_str::<Vec<AllocationRecord>>(json).ok())
    else {
        return false;
    };
    let claims_match = specs.iter().all(|spec| {
        held.iter().any(|c| {
            c.key == spec.key
                && c.state == ClaimState::Active
                && c.gone_since.is_none()
                && records.iter().any(|r| advertises(r, c))
        })
    }) && records.len() == specs.len();
    if !claims_match {
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

fn advertises(record: &AllocationRecord, claim: &Claim) -> bool {
    record.nlb_arn == claim.nlb_arn
        && record.port == claim.port
        && claim.listener_arn.as_deref() == Some(record.listener_arn.as_str())
        && claim.target_group_arn.as_deref() == Some(record.target_group_arn.as_str())
}
