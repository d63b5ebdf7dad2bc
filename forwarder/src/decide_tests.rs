//! Unit tests of the event decisions: every Service change the contract names.

use super::*;
use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec, ServiceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use nlb_port_pool::contract::annotations::{ALLOCATIONS, AUTO_ASSIGN, POOL, STATUS};

const UID: &str = "0b9c1f0e-2d3a-4c5b-8e7f-1a2b3c4d5e6f";

fn svc(annotations: &[(&str, &str)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("room".into()),
            namespace: Some("games".into()),
            uid: Some(UID.into()),
            resource_version: Some("10".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("game".into()),
                port: 7777,
                protocol: Some("UDP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn opted_in() -> Service {
    svc(&[(AUTO_ASSIGN, "true")])
}

fn with_finalizer(mut s: Service) -> Service {
    s.metadata.finalizers = Some(vec![FINALIZER.into()]);
    s
}

fn deleting(mut s: Service) -> Service {
    s.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    s
}

fn bump(mut s: Service) -> Service {
    s.metadata.resource_version = Some("11".into());
    s
}

fn state(s: &Service) -> ServiceState {
    ServiceState::from_service(s)
}

fn key() -> ObjectKey {
    ObjectKey::new("games", "room")
}

fn types(emissions: &[Emission]) -> Vec<DetailType> {
    emissions.iter().map(|e| e.detail_type).collect()
}

fn update(old: Option<&Service>, new: &Service) -> Vec<DetailType> {
    let old = old.map(state);
    types(&on_update(&key(), old.as_ref(), &state(new)))
}

#[test]
fn an_opted_in_service_is_announced_when_first_seen() {
    let e = on_update(&key(), None, &state(&opted_in()));
    assert_eq!(types(&e), vec![DetailType::ServiceChanged]);
    assert_eq!(e[0].uid, UID);
    assert_eq!(e[0].resource_version, "10");
    assert!(!e[0].deleting);
}

#[test]
fn plain_and_opted_out_services_produce_nothing() {
    assert!(update(None, &svc(&[])).is_empty());
    assert!(update(None, &svc(&[(AUTO_ASSIGN, "false")])).is_empty());
    let plain = svc(&[("example.com/x", "1")]);
    assert!(update(Some(&plain), &bump(svc(&[("example.com/x", "2")]))).is_empty());
    assert!(update(Some(&plain), &deleting(plain.clone())).is_empty());
    let gone = on_disappeared(&key(), None, Some(&state(&plain)));
    assert!(gone.is_none());
}

#[test]
fn an_invalid_opt_in_value_is_still_announced() {
    assert_eq!(
        update(None, &svc(&[(AUTO_ASSIGN, "yes")])),
        vec![DetailType::ServiceChanged]
    );
}

#[test]
fn input_annotation_and_port_changes_are_announced() {
    let old = opted_in();
    let pool = bump(svc(&[(AUTO_ASSIGN, "true"), (POOL, "blue")]));
    assert_eq!(update(Some(&old), &pool), vec![DetailType::ServiceChanged]);
    let mut ports = bump(opted_in());
    if let Some(spec) = ports.spec.as_mut() {
        spec.ports = Some(vec![ServicePort {
            name: Some("game".into()),
            port: 7778,
            protocol: Some("UDP".into()),
            ..ServicePort::default()
        }]);
    }
    assert_eq!(update(Some(&old), &ports), vec![DetailType::ServiceChanged]);
}

#[test]
fn the_functions_own_writes_and_status_updates_are_not_announced() {
    let old = opted_in();
    let outputs = bump(svc(&[
        (AUTO_ASSIGN, "true"),
        (STATUS, "Allocated"),
        (ALLOCATIONS, "[]"),
    ]));
    assert!(
        update(Some(&old), &outputs).is_empty(),
        "output annotations"
    );
    assert!(
        update(Some(&old), &with_finalizer(bump(old.clone()))).is_empty(),
        "finalizer added"
    );
    let mut status = bump(old.clone());
    status.status = Some(ServiceStatus::default());
    assert!(update(Some(&old), &status).is_empty(), "status only");
    let other = bump(svc(&[(AUTO_ASSIGN, "true"), ("example.com/owner", "x")]));
    assert!(update(Some(&old), &other).is_empty(), "foreign annotation");
    assert!(update(Some(&old), &bump(old.clone())).is_empty(), "rv only");
}

#[test]
fn removing_the_opt_in_is_announced_so_the_port_is_released() {
    let held = with_finalizer(opted_in());
    let removed = with_finalizer(bump(svc(&[])));
    assert_eq!(
        update(Some(&held), &removed),
        vec![DetailType::ServiceChanged]
    );
    let falsed = with_finalizer(bump(svc(&[(AUTO_ASSIGN, "false")])));
    assert_eq!(
        update(Some(&held), &falsed),
        vec![DetailType::ServiceChanged]
    );
    // The release then drops the finalizer: no further event.
    assert!(update(Some(&removed), &bump(svc(&[]))).is_empty());
}

#[test]
fn a_deletion_timestamp_on_a_held_service_is_announced_once() {
    let held = with_finalizer(opted_in());
    let doomed = deleting(bump(held.clone()));
    let e = on_update(&key(), Some(&state(&held)), &state(&doomed));
    assert_eq!(types(&e), vec![DetailType::ServiceDeleted]);
    assert!(e[0].deleting);
    // Further updates while deletion waits (our outputs removed) do not repeat it.
    assert!(update(Some(&doomed), &bump(doomed.clone())).is_empty());
    // Nor does its disappearance once the release removed the finalizer.
    assert!(
        on_disappeared(
            &key(),
            Some(&state(&doomed)),
            Some(&state(&deleting(opted_in())))
        )
        .is_none()
    );
}

#[test]
fn a_deletion_timestamp_without_our_finalizer_waits_for_the_disappearance() {
    let plain_opt_in = opted_in();
    assert!(update(Some(&plain_opt_in), &deleting(bump(plain_opt_in.clone()))).is_empty());
    let gone = on_disappeared(&key(), Some(&state(&plain_opt_in)), None).expect("deleted");
    assert_eq!(gone.detail_type, DetailType::ServiceDeleted);
    assert!(gone.deleting);
}

#[test]
fn a_vanished_held_service_is_announced() {
    let last = state(&with_finalizer(svc(&[])));
    let e = on_disappeared(&key(), None, Some(&last)).expect("deleted");
    assert_eq!(e.detail_type, DetailType::ServiceDeleted);
}

#[test]
fn a_recreated_service_announces_the_old_deletion_and_the_new_one() {
    let old = opted_in();
    let mut new = bump(opted_in());
    new.metadata.uid = Some("11111111-2d3a-4c5b-8e7f-1a2b3c4d5e6f".into());
    let e = on_update(&key(), Some(&state(&old)), &state(&new));
    assert_eq!(
        types(&e),
        vec![DetailType::ServiceDeleted, DetailType::ServiceChanged]
    );
    assert_eq!(e[0].uid, UID);
    assert_ne!(e[1].uid, UID);
}

#[test]
fn resync_resends_changed_for_live_and_deleted_for_held_deleting_services() {
    let r = |s: &Service| on_resync(&key(), &state(s)).map(|e| e.detail_type);
    assert_eq!(r(&opted_in()), Some(DetailType::ServiceChanged));
    assert_eq!(
        r(&svc(&[(AUTO_ASSIGN, "nope")])),
        Some(DetailType::ServiceChanged)
    );
    assert_eq!(
        r(&with_finalizer(svc(&[]))),
        Some(DetailType::ServiceChanged)
    );
    assert_eq!(
        r(&deleting(with_finalizer(opted_in()))),
        Some(DetailType::ServiceDeleted)
    );
    assert_eq!(r(&deleting(opted_in())), None);
    assert_eq!(r(&svc(&[])), None);
}

#[test]
fn endpoints_events_only_for_live_opted_in_services() {
    let e = |s: &Service| on_endpoints(&key(), &state(s)).map(|e| e.detail_type);
    assert_eq!(e(&opted_in()), Some(DetailType::EndpointsChanged));
    assert_eq!(e(&svc(&[(AUTO_ASSIGN, "yes")])), None);
    assert_eq!(e(&with_finalizer(svc(&[]))), None);
    assert_eq!(e(&deleting(with_finalizer(opted_in()))), None);
}

#[test]
fn slice_facts_change_with_addresses_pods_and_readiness_only() {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    let slice = |ip: &str, ready: bool, rv: &str| EndpointSlice {
        metadata: ObjectMeta {
            name: Some("room-abc".into()),
            resource_version: Some(rv.into()),
            labels: Some([(SERVICE_NAME_LABEL.to_owned(), "room".to_owned())].into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(vec![Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..EndpointConditions::default()
            }),
            ..Endpoint::default()
        }]),
        ports: None,
    };
    let a = slice_facts(&slice("10.0.0.1", true, "1")).expect("labelled");
    assert_eq!(a.0, "room");
    assert_eq!(a, slice_facts(&slice("10.0.0.1", true, "2")).expect("same"));
    assert_ne!(a, slice_facts(&slice("10.0.0.2", true, "3")).expect("ip"));
    assert_ne!(
        a,
        slice_facts(&slice("10.0.0.1", false, "4")).expect("ready")
    );
    let mut other_pod = slice("10.0.0.1", true, "6");
    if let Some(e) = other_pod.endpoints.as_mut().and_then(|e| e.first_mut()) {
        e.target_ref = Some(k8s_openapi::api::core::v1::ObjectReference {
            kind: Some("Pod".into()),
            name: Some("room-1".into()),
            ..Default::default()
        });
    }
    assert_ne!(a, slice_facts(&other_pod).expect("pod"));
    let mut unlabelled = slice("10.0.0.1", true, "5");
    unlabelled.metadata.labels = None;
    assert!(slice_facts(&unlabelled).is_none());
}

fn gated_pod(gated: bool) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "room-0", "namespace": "games", "uid": "p-1",
                     "resourceVersion": "7", "labels": {"app": "room"}},
        "spec": {"containers": [],
                 "readinessGates": if gated { serde_json::json!([{"conditionType": REACHABLE_GATE}]) }
                                   else { serde_json::json!([]) }},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                   "conditions": [
            {"type": "ContainersReady", "status": "False"},
            {"type": "Ready", "status": "False"},
            {"type": REACHABLE_GATE, "status": "False"}
        ]}
    }))
    .expect("pod JSON")
}

fn set_condition(pod: &mut Pod, kind: &str, status: &str) {
    for c in pod
        .status
        .iter_mut()
        .flat_map(|s| s.conditions.iter_mut().flatten())
    {
        if c.type_ == kind {
            c.status = status.into();
        }
    }
}

#[test]
fn pod_facts_are_kept_for_gated_pods_only() {
    assert!(pod_facts(&gated_pod(false)).is_none());
    let facts = pod_facts(&gated_pod(true)).expect("gated");
    assert_eq!(
        facts.labels,
        label_pairs(&[("app".into(), "room".into())].into())
    );
}

#[test]
fn pod_facts_change_with_what_the_functions_act_on_only() {
    let base = pod_facts(&gated_pod(true)).expect("gated").fingerprint;
    let changed = |edit: &dyn Fn(&mut Pod)| {
        let mut p = gated_pod(true);
        edit(&mut p);
        pod_facts(&p).expect("gated").fingerprint != base
    };
    for kind in ["ContainersReady", "Ready", REACHABLE_GATE] {
        assert!(changed(&|p| set_condition(p, kind, "True")), "{kind}");
    }
    assert!(changed(&|p| {
        if let Some(s) = p.status.as_mut() {
            s.pod_ip = Some("10.0.0.6".into());
        }
    }));
    assert!(changed(&|p| p.metadata.uid = Some("p-2".into())));
    assert!(changed(&|p| {
        p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    }));
    assert!(changed(&|p| {
        p.metadata.labels = Some([("app".to_owned(), "lobby".to_owned())].into());
    }));
    // Neither the functions' own outputs, nor versions, nor other conditions.
    assert!(!changed(&|p| {
        p.metadata.resource_version = Some("8".into());
        p.metadata.annotations = Some([(ALLOCATIONS.to_owned(), "[]".to_owned())].into());
        set_condition(p, "PodScheduled", "True");
    }));
}

#[test]
fn a_selector_picks_pods_carrying_all_its_pairs_and_an_empty_one_none() {
    let pod = label_pairs(
        &[
            ("app".into(), "room".into()),
            ("tier".into(), "game".into()),
        ]
        .into(),
    );
    let with_selector = |pairs: &[(&str, &str)]| {
        let mut s = opted_in();
        if let Some(spec) = s.spec.as_mut() {
            spec.selector = Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            );
        }
        state(&s)
    };
    assert!(with_selector(&[("app", "room")]).selects(&pod));
    assert!(with_selector(&[("app", "room"), ("tier", "game")]).selects(&pod));
    assert!(!with_selector(&[("app", "room"), ("tier", "web")]).selects(&pod));
    assert!(!with_selector(&[("app", "lobby")]).selects(&pod));
    assert!(!with_selector(&[]).selects(&pod));
    assert!(!state(&opted_in()).selects(&pod), "no selector");
}
