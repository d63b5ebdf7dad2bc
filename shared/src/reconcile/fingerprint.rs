//! What a listener is made from, as one short hash noted on its claim once the listener, its
//! target group, its targets and the Service's annotations are in line with it.
//!
//! Every forwarder restart, watch error and resync sends an event for every Service; when a
//! Service's claims are active, carry the fingerprint of what the event asks for now, and the
//! Service's annotations advertise exactly those claims, the event costs the claims read and
//! nothing else: no ELBv2 call, no write. What changed behind the system's back in AWS (a
//! listener deleted by hand, a target deregistered) is not in the fingerprint: the sweep finds
//! it, by listing each NLB's listeners and by reconciling a share of the Services thoroughly
//! each run.
//!
//! The hash covers the pool, the health check, the listener's spec and its desired targets (or
//! why they cannot be resolved). It is a cache key, not a contract: a new version of the
//! functions that hashes differently costs each Service one full reconcile.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::contract::annotations::{
    ALLOCATIONS, AllocationRecord, AllocationRequest, STATUS, Status,
};
use crate::contract::service_model::{ListenerSpec, ServiceState};
use crate::model::claims::{Claim, ClaimState};
use crate::model::targets::Target;

/// The fingerprint of one listener's inputs: `<listener>.<targets>`, 16 hex digits each; the
/// first half covers the pool, the health check and the listener's spec, the second the
/// desired targets. Target syncs, which change only targets, go by the halves.
pub(super) fn listener_fingerprint(
    pool: &str,
    request: &AllocationRequest,
    spec: &ListenerSpec,
    targets: &Result<BTreeSet<Target>, String>,
) -> String {
    let health_check = serde_json::to_string(&request.health_check).unwrap_or_default();
    let spec_text = format!("{spec:?}");
    let mut parts = vec![pool, &health_check, &spec_text];
    // A plain listener hashes as it did before options existed: no full pass on upgrade.
    let setup = request.options.setup_for(spec);
    let setup_text = format!("{setup:?}");
    if !setup.is_plain() {
        parts.push(&setup_text);
    }
    let listener = digest(&parts);
    let targets = match targets {
        Ok(targets) => {
            let texts: Vec<String> = targets.iter().map(Target::to_string).collect();
            let mut parts = vec!["targets"];
            parts.extend(texts.iter().map(String::as_str));
            digest(&parts)
        }
        Err(why) => digest(&["unresolved", why]),
    };
    format!("{listener}.{targets}")
}

/// The listener half of a fingerprint (see [`listener_fingerprint`]).
pub(super) fn listener_half(fingerprint: &str) -> &str {
    fingerprint.split('.').next().unwrap_or_default()
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for text in parts {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `subject` (a Service, or a pod in per-pod mode) needs nothing: its status is
/// `Allocated` or `Ready` (`Disabled` when it is `disabled`: taken out of its listeners, whose
/// fingerprint, no target, an enabled one without endpoints shares), `held` (its claims as read
/// at the start of the run) has one active claim per listener of `specs`, each made from what
/// `fingerprint` gives for its spec now, and the annotations advertise exactly those claims.
pub(super) fn advertised_as_made(
    subject: &ServiceState,
    disabled: bool,
    held: &[Claim],
    specs: &[ListenerSpec],
    fingerprint: impl Fn(&ListenerSpec) -> String,
) -> bool {
    let settled = match disabled {
        true => vec![Status::Disabled.to_string()],
        false => vec![Status::Allocated.to_string(), Status::Ready.to_string()],
    };
    let status = subject.annotations.get(STATUS);
    if held.len() != specs.len() || !status.is_some_and(|s| settled.contains(s)) {
        return false;
    }
    let Some(records) = subject
        .annotations
        .get(ALLOCATIONS)
        .and_then(|json| serde_json::from_str::<Vec<AllocationRecord>>(json).ok())
    else {
        return false;
    };
    records.len() == specs.len()
        && specs.iter().all(|spec| {
            let made_from = fingerprint(spec);
            held.iter().any(|c| {
                c.key == spec.key
                    && c.state == ClaimState::Active
                    && c.applied.as_deref() == Some(made_from.as_str())
                    && records.iter().any(|r| advertises(r, c))
            })
        })
}

fn advertises(record: &AllocationRecord, claim: &Claim) -> bool {
    record.nlb_arn == claim.nlb_arn
        && record.port == claim.port
        && claim.listener_arn.as_deref() == Some(record.listener_arn.as_str())
        && claim.target_group_arn.as_deref() == Some(record.target_group_arn.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::protocol::ListenerProtocol;
    use crate::contract::service_model::{ListenerKey, ServicePortSpec};

    fn spec() -> ListenerSpec {
        ListenerSpec {
            key: ListenerKey::new(7777, ListenerProtocol::Udp),
            name: "game".into(),
            service_port: 7777,
            protocol: ListenerProtocol::Udp,
            ports: vec![ServicePortSpec {
                name: Some("game".into()),
                port: 7777,
                protocol: "UDP".into(),
                target_port: crate::contract::service_model::TargetPort::Number(7777),
            }],
        }
    }

    fn targets(ips: &[&str]) -> Result<BTreeSet<Target>, String> {
        Ok(ips
            .iter()
            .map(|ip| Target {
                ip: ip.parse().expect("an IP"),
                port: 7777,
            })
            .collect())
    }

    fn request(pairs: &[(&str, &str)]) -> AllocationRequest {
        let annotations = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        crate::contract::annotations::parse_request(&annotations).expect("valid")
    }

    #[test]
    fn the_same_inputs_give_the_same_fingerprint_and_any_change_another() {
        let plain = request(&[]);
        let base = listener_fingerprint("default", &plain, &spec(), &targets(&["10.0.0.1"]));
        assert_eq!(base.len(), 33);
        let listener = listener_half(&base);
        assert_eq!(listener.len(), 16);
        assert_eq!(
            base,
            listener_fingerprint("default", &plain, &spec(), &targets(&["10.0.0.1"]))
        );
        // A listener with no options hashes as before options existed (no full pass after an
        // upgrade).
        let before = digest(&[
            "default",
            &serde_json::to_string(&plain.health_check).unwrap_or_default(),
            &format!("{:?}", spec()),
        ]);
        assert_eq!(listener, before);
        let with = |pairs: &[(&str, &str)]| {
            listener_fingerprint("default", &request(pairs), &spec(), &targets(&["10.0.0.1"]))
        };
        let changed = [
            listener_fingerprint("other", &plain, &spec(), &targets(&["10.0.0.1"])),
            with(&[(crate::contract::annotations::HC_INTERVAL, "20")]),
            with(&[(
                crate::contract::listener_options::DEREGISTRATION_DELAY,
                "30",
            )]),
            with(&[(
                crate::contract::listener_options::CONNECTION_TERMINATION,
                "true",
            )]),
            listener_fingerprint(
                "default",
                &plain,
                &ListenerSpec {
                    service_port: 7778,
                    ..spec()
                },
                &targets(&["10.0.0.1"]),
            ),
            listener_fingerprint("default", &plain, &spec(), &targets(&["10.0.0.2"])),
            listener_fingerprint("default", &plain, &spec(), &targets(&[])),
            listener_fingerprint("default", &plain, &spec(), &Err("no port".into())),
        ];
        for (i, fp) in changed.iter().enumerate() {
            assert_ne!(fp, &base, "change {i}");
            // The first five change the listener, the rest only the targets.
            assert_eq!(listener_half(fp) == listener, i >= 5, "change {i}");
        }
        // Asking for a default explicitly is the same listener.
        assert_eq!(
            with(&[(
                crate::contract::listener_options::DEREGISTRATION_DELAY,
                "300"
            )]),
            base
        );
    }
}
