//! Unit tests of the gated-pod tracker: which Services a pod change wakes, re-lists, and what
//! is not tracked, without a server.

use super::*;
use k8s_openapi::api::core::v1::{
    PodCondition, PodIP, PodReadinessGate, PodSpec, PodStatus, Service, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use nlb_port_pool::contract::annotations::{self, AUTO_ASSIGN, FINALIZER};
use nlb_port_pool::contract::pod_model::REACHABLE_GATE;
use std::collections::BTreeMap;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A Service selecting `selector`, opted in or not.
fn svc(ns: &str, name: &str, selector: &[(&str, &str)], opted_in: bool) -> Service {
    let annotations = if opted_in {
        labels(&[(AUTO_ASSIGN, "true")])
    } else {
        BTreeMap::new()
    };
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".into()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(selector)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn services(items: Vec<Service>) -> ServiceTracker {
    let mut t = ServiceTracker::new(1);
    t.apply(0, Event::Init);
    for s in items {
        t.apply(0, Event::InitApply(s));
    }
    t.apply(0, Event::InitDone);
    t
}

/// A running pod labelled `app=<app>`, gated or not, whose containers are ready or not.
fn pod(ns: &str, name: &str, app: &str, gated: bool, containers_ready: bool) -> Pod {
    let condition = |kind: &str, on: bool| PodCondition {
        type_: kind.into(),
        status: if on { "True" } else { "False" }.into(),
        ..PodCondition::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".into()),
            labels: Some(labels(&[("app", app), ("pod-index", "0")])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            readiness_gates: gated.then(|| {
                vec![PodReadinessGate {
                    condition_type: REACHABLE_GATE.into(),
                }]
            }),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some("10.0.0.5".into()),
            pod_ips: Some(vec![PodIP {
                ip: "10.0.0.5".into(),
            }]),
            conditions: Some(vec![
                condition("ContainersReady", containers_ready),
                condition("Ready", false),
                condition(REACHABLE_GATE, false),
            ]),
            ..PodStatus::default()
        }),
    }
}

/// A pod tracker whose first list held `items`.
fn listed(items: Vec<Pod>, svcs: &ServiceTracker) -> PodTracker {
    let mut t = PodTracker::new(1);
    assert!(t.apply(0, Event::Init, svcs).is_empty());
    for p in items {
        assert!(
            t.apply(0, Event::InitApply(p), svcs).is_empty(),
            "the first list only learns"
        );
    }
    assert!(t.apply(0, Event::InitDone, svcs).is_empty());
    t
}

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::new(ns, name)
}

#[test]
fn a_gated_pod_whose_containers_turn_ready_marks_its_service() {
    // GIVEN an opted-in Service and its gated pod, containers not ready yet
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let mut t = listed(vec![pod("games", "room-0", "room", true, false)], &svcs);
    assert!(t.synced());
    assert_eq!(t.len(), 1);
    // WHEN its containers turn ready (Ready stays False: the gate waits)
    let got = t.apply(
        0,
        Event::Apply(pod("games", "room-0", "room", true, true)),
        &svcs,
    );
    // THEN its Service is marked
    assert_eq!(got, vec![key("games", "room")]);
}

#[test]
fn an_ungated_pod_is_not_tracked() {
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let mut t = listed(vec![pod("games", "plain-0", "room", false, false)], &svcs);
    assert!(t.is_empty());
    let got = t.apply(
        0,
        Event::Apply(pod("games", "plain-0", "room", false, true)),
        &svcs,
    );
    assert!(got.is_empty(), "its slice tells the functions");
    assert!(t.is_empty());
    assert!(
        t.apply(
            0,
            Event::Delete(pod("games", "plain-0", "room", false, true)),
            &svcs
        )
        .is_empty()
    );
}

/// `p` with `nlb.port-manager/network-disabled` set to `value` (or without it).
fn disabled(mut p: Pod, value: Option<&str>) -> Pod {
    let notes = p.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match value {
        Some(v) => notes.insert(annotations::NETWORK_DISABLED.into(), v.into()),
        None => notes.remove(annotations::NETWORK_DISABLED),
    };
    p
}

#[test]
fn an_ungated_pod_is_tracked_while_it_carries_network_disabled() {
    // GIVEN an opted-in Service and its plain pod
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let plain = || pod("games", "room-0", "room", false, true);
    let mut t = listed(vec![plain()], &svcs);
    assert!(t.is_empty());
    // WHEN it is network-disabled: its Service is marked, and the pod tracked
    let got = t.apply(0, Event::Apply(disabled(plain(), Some("true"))), &svcs);
    assert_eq!(got, vec![key("games", "room")]);
    assert_eq!(t.len(), 1);
    // AND an unchanged apply marks nothing; "false" marks it again
    let same = t.apply(0, Event::Apply(disabled(plain(), Some("true"))), &svcs);
    assert!(same.is_empty());
    let got = t.apply(0, Event::Apply(disabled(plain(), Some("false"))), &svcs);
    assert_eq!(got, vec![key("games", "room")]);
    // WHEN the annotation goes: marked, and no longer tracked
    let got = t.apply(0, Event::Apply(disabled(plain(), None)), &svcs);
    assert_eq!(got, vec![key("games", "room")]);
    assert!(t.is_empty());
}

#[test]
fn a_pod_of_another_namespace_or_not_selected_marks_nothing() {
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let mut t = listed(vec![], &svcs);
    for p in [
        pod("other", "room-0", "room", true, true),
        pod("games", "lobby-0", "lobby", true, true),
    ] {
        assert!(t.apply(0, Event::Apply(p), &svcs).is_empty());
    }
    assert_eq!(t.len(), 2, "gated pods are tracked whatever selects them");
}

#[test]
fn unchanged_facts_mark_nothing() {
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let mut t = listed(vec![pod("games", "room-0", "room", true, true)], &svcs);
    // A new resourceVersion, annotations (the functions' outputs) and probe times alone.
    let mut same = pod("games", "room-0", "room", true, true);
    same.metadata.resource_version = Some("2".into());
    same.metadata.annotations = Some(labels(&[("nlb.port-manager/allocated-port", "30001")]));
    if let Some(c) = same
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .and_then(|c| c.first_mut())
    {
        c.last_probe_time = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    }
    assert!(t.apply(0, Event::Apply(same), &svcs).is_empty());
}

#[test]
fn a_deleted_pod_marks_its_service() {
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let mut t = listed(vec![pod("games", "room-0", "room", true, true)], &svcs);
    let got = t.apply(
        0,
        Event::Delete(pod("games", "room-0", "room", true, true)),
        &svcs,
    );
    assert_eq!(got, vec![key("games", "room")]);
    assert!(t.is_empty());
}

#[test]
fn a_deletion_timestamp_marks_its_service() {
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let mut t = listed(vec![pod("games", "room-0", "room", true, true)], &svcs);
    let mut going = pod("games", "room-0", "room", true, true);
    going.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    assert_eq!(
        t.apply(0, Event::Apply(going), &svcs),
        vec![key("games", "room")]
    );
}

#[test]
fn services_not_opted_in_or_deleting_are_not_marked() {
    let mut deleting = svc("games", "gone", &[("app", "room")], true);
    deleting.metadata.finalizers = Some(vec![FINALIZER.into()]);
    deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let mut invalid = svc("games", "typo", &[("app", "room")], false);
    invalid.metadata.annotations = Some(labels(&[(AUTO_ASSIGN, "yes")]));
    let svcs = services(vec![
        svc("games", "plain", &[("app", "room")], false),
        deleting,
        invalid,
    ]);
    let mut t = listed(vec![pod("games", "room-0", "room", true, false)], &svcs);
    let got = t.apply(
        0,
        Event::Apply(pod("games", "room-0", "room", true, true)),
        &svcs,
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn two_services_selecting_the_pod_are_both_marked() {
    let svcs = services(vec![
        svc("games", "room", &[("app", "room")], true),
        svc(
            "games",
            "room-debug",
            &[("app", "room"), ("pod-index", "0")],
            true,
        ),
        svc(
            "games",
            "room-1",
            &[("app", "room"), ("pod-index", "1")],
            true,
        ),
    ]);
    let mut t = listed(vec![pod("games", "room-0", "room", true, false)], &svcs);
    let got = t.apply(
        0,
        Event::Apply(pod("games", "room-0", "room", true, true)),
        &svcs,
    );
    assert_eq!(got, vec![key("games", "room"), key("games", "room-debug")]);
}

#[test]
fn a_relabelled_pod_marks_the_services_before_and_after() {
    let svcs = services(vec![
        svc("games", "room", &[("app", "room")], true),
        svc("games", "lobby", &[("app", "lobby")], true),
    ]);
    let mut t = listed(vec![pod("games", "room-0", "room", true, true)], &svcs);
    let got = t.apply(
        0,
        Event::Apply(pod("games", "room-0", "lobby", true, true)),
        &svcs,
    );
    assert_eq!(got, vec![key("games", "lobby"), key("games", "room")]);
}

#[test]
fn a_relist_sends_only_what_changed_while_the_watch_was_away() {
    // GIVEN three gated pods of one Service, listed
    let svcs = services(vec![svc("games", "room", &[("app", "room")], true)]);
    let mut t = listed(
        vec![
            pod("games", "room-0", "room", true, true),
            pod("games", "room-1", "room", true, false),
        ],
        &svcs,
    );
    // WHEN a re-list finds the same facts
    assert!(t.apply(0, Event::Init, &svcs).is_empty());
    for p in [
        pod("games", "room-0", "room", true, true),
        pod("games", "room-1", "room", true, false),
    ] {
        assert!(t.apply(0, Event::InitApply(p), &svcs).is_empty());
    }
    // THEN nothing is marked
    assert!(t.apply(0, Event::InitDone, &svcs).is_empty());

    // WHEN a re-list finds room-1 ready and room-0 gone
    t.apply(0, Event::Init, &svcs);
    let changed = t.apply(
        0,
        Event::InitApply(pod("games", "room-1", "room", true, true)),
        &svcs,
    );
    // THEN each marks the Service
    assert_eq!(changed, vec![key("games", "room")]);
    assert_eq!(
        t.apply(0, Event::InitDone, &svcs),
        vec![key("games", "room")]
    );
    assert_eq!(t.len(), 1);
}

#[test]
fn a_relist_of_one_scope_leaves_the_others_pods_alone() {
    let svcs = services(vec![]);
    let mut t = PodTracker::new(2);
    for scope in [0, 1] {
        assert!(!t.synced());
        t.apply(scope, Event::Init, &svcs);
        let ns = if scope == 0 { "a" } else { "b" };
        t.apply(
            scope,
            Event::InitApply(pod(ns, "room-0", "room", true, true)),
            &svcs,
        );
        t.apply(scope, Event::InitDone, &svcs);
    }
    assert!(t.synced());
    t.apply(1, Event::Init, &svcs);
    t.apply(1, Event::InitDone, &svcs);
    assert_eq!(t.len(), 1, "scope 0's pod stays");
}
