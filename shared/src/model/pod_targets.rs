//! Targets only from the Service's own pods.
//!
//! The EndpointSlice controller's label (`endpointslice-controller.k8s.io`) is only a label:
//! anyone allowed to write EndpointSlices can put it on a slice of their own, under a Service
//! without a selector, pointing at any address in the VPC (a database, a node's kubelet). So a
//! slice that claims the controller counts only as the controller would have made it:
//! - under a Service with a selector, an address is kept only when it is the IP of a pod of the
//!   Service's namespace that the selector selects (`status.podIPs`), and a pod endpoint
//!   (`targetRef`, per-pod mode) only when it names such a pod and carries its IP;
//! - under a Service without a selector, the controller makes no slice at all, so none is
//!   trusted.
//!
//! Slices of the managers the operator names in `TRUSTED_ENDPOINTSLICE_MANAGERS` are taken as
//! they are: the operator vouches for what those controllers write (they may point at
//! addresses that are no pod's, which is why a Service without a selector has them).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::contract::pod_model::PodState;
use crate::model::target_policy::{
    CONTROLLER_MANAGER, ListedAddresses, Rejection, TRUSTED_MANAGERS_VAR, UNTRUSTED_SLICE,
};
use crate::model::targets::SliceView;

/// The Event reason of a slice's addresses that are no IP of a pod the Service selects.
pub const NOT_A_POD: &str = "TargetNotAPod";

fn claims_the_controller(slice: &SliceView) -> bool {
    slice.managed_by.as_deref() == Some(CONTROLLER_MANAGER)
}

/// Whether the pods must be read to check `slices`: a slice claiming the controller lists an
/// address.
pub fn needs_pods(slices: &[SliceView]) -> bool {
    slices
        .iter()
        .any(|s| claims_the_controller(s) && (!s.ready.is_empty() || !s.pods.is_empty()))
}

/// `slices` with only the addresses of the Service's own pods kept where a slice claims the
/// controller (see the module), and what was left out. `pods` are the pods the Service's
/// selector selects in its namespace; `has_selector` says whether it has one.
pub fn only_pod_addresses(
    has_selector: bool,
    slices: Vec<SliceView>,
    pods: &[PodState],
) -> (Vec<SliceView>, Vec<Rejection>) {
    let owner: BTreeMap<Ipv4Addr, &str> = pods
        .iter()
        .flat_map(|p| p.ips.iter().map(move |ip| (*ip, p.name.as_str())))
        .collect();
    let mut kept = Vec::with_capacity(slices.len());
    let mut rejections = Vec::new();
    for mut slice in slices {
        if !claims_the_controller(&slice) || (slice.ready.is_empty() && slice.pods.is_empty()) {
            kept.push(slice);
            continue;
        }
        if !has_selector {
            rejections.push(selectorless(&slice));
            continue;
        }
        let mut foreign: Vec<Ipv4Addr> = Vec::new();
        slice.ready.retain(|ip| {
            let ours = owner.contains_key(ip);
            if !ours {
                foreign.push(*ip);
            }
            ours
        });
        slice.pods.retain(|p| {
            let ours = owner.get(&p.ip) == Some(&p.pod.as_str());
            if !ours {
                foreign.push(p.ip);
            }
            ours
        });
        if !foreign.is_empty() {
            rejections.push(not_pods(&slice.name, foreign));
        }
        kept.push(slice);
    }
    (kept, rejections)
}

fn selectorless(slice: &SliceView) -> Rejection {
    Rejection {
        slice: slice.name.clone(),
        reason: UNTRUSTED_SLICE,
        note: format!(
            "EndpointSlice {} is labelled as {CONTROLLER_MANAGER}'s, but that controller makes \
             no slice for a Service without a selector: its {} ready address(es) are not \
             registered as targets (name its real manager in {TRUSTED_MANAGERS_VAR} to trust it)",
            slice.name,
            slice.ready.len()
        ),
        fingerprint: format!("{UNTRUSTED_SLICE}/{}/selectorless", slice.name),
    }
}

fn not_pods(slice: &str, foreign: Vec<Ipv4Addr>) -> Rejection {
    let listed = ListedAddresses::of(foreign);
    Rejection {
        slice: slice.to_owned(),
        reason: NOT_A_POD,
        note: format!(
            "EndpointSlice {slice}: address(es) {} are not the IPs of pods the Service selects \
             (or not of the pods their targetRef names) and are not registered as targets",
            listed.named
        ),
        fingerprint: format!("{NOT_A_POD}/{slice}/{}", listed.all),
    }
}

#[cfg(test)]
#[path = "pod_targets_tests.rs"]
mod tests;
