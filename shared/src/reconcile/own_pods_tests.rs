//! Targets only from the Service's own pods, end to end on the in-memory doubles: a slice that
//! claims the EndpointSlice controller adds only the IPs of pods the Service selects, is not
//! trusted at all under a Service without a selector, and costs no pod read when nothing
//! changed.

use super::Outcome;
use super::per_pod_tests::{APP, per_pod_service, pod, slice_of};
use super::screening_tests::{target_ips, warnings};
use super::tests::{NLB_A, World, opted_in, world};
use crate::model::cluster::KubeError;
use crate::model::pod_targets::NOT_A_POD;
use crate::model::target_policy::{CONTROLLER_MANAGER, UNTRUSTED_SLICE};
use crate::model::targets::{SlicePort, SliceView};

/// A slice labelled as the EndpointSlice controller's, listing `ips` ready.
fn controller_slice(ips: &[&str]) -> SliceView {
    SliceView {
        name: "room-forged".into(),
        managed_by: Some(CONTROLLER_MANAGER.to_owned()),
        ports: vec![SlicePort {
            name: Some("game".into()),
            port: Some(8000),
        }],
        ready: ips.iter().map(|i| i.parse().expect("ip")).collect(),
        pods: vec![],
    }
}

/// Service `room` selecting app=room, its pod room-0 at 10.0.0.1, and a slice labelled as the
/// controller's listing `ips`.
fn selecting_room(w: &World, ips: &[&str]) {
    let mut svc = opted_in("room", "u1");
    svc.selector.insert(APP.0.into(), APP.1.into());
    w.cluster.put_service(svc);
    w.cluster
        .put_pod("games", pod("room-0", "p0", "10.0.0.1"), &[APP]);
    w.cluster
        .set_slices("games", "room", vec![controller_slice(ips)]);
}

/// A pod read now fails the run: a run that succeeds read no pod.
fn no_pod_read_allowed(w: &World) {
    w.cluster.fail_next(
        "pods",
        KubeError {
            action: "list pods".into(),
            message: "this run must not read pods".into(),
            retryable: true,
        },
    );
}

#[tokio::test]
async fn a_controller_slice_adds_only_the_ips_of_pods_the_service_selects() {
    // GIVEN a Service selecting app=room, its pod at 10.0.0.1, another namespace's database at
    // 10.0.9.9, and a slice labelled as the controller's listing both
    let w = world(&[NLB_A], "30000-30099", 50);
    selecting_room(&w, &["10.0.0.1", "10.0.9.9", "10.0.9.8"]);
    w.cluster.put_pod(
        "games",
        pod("not-selected", "p9", "10.0.9.8"),
        &[("app", "db")],
    );

    // WHEN it is allocated, and its endpoints synced again
    let outcome = w.reconcile("room").await.expect("allocates");
    w.reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("syncs");

    // THEN only its own pod is a target, and one Warning names the others
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    assert_eq!(target_ips(&w), ["10.0.0.1"]);
    let warned = warnings(&w, NOT_A_POD);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("10.0.9.8") && warned[0].contains("10.0.9.9"));
}

#[tokio::test]
async fn a_controller_slice_under_a_service_without_a_selector_adds_no_target() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![controller_slice(&["10.0.9.9"])]);

    let outcome = w.reconcile("room").await.expect("allocates");

    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    assert!(target_ips(&w).is_empty(), "{:?}", target_ips(&w));
    let warned = warnings(&w, UNTRUSTED_SLICE);
    assert!(
        warned.iter().any(|n| n.contains("without a selector")),
        "{warned:?}"
    );
}

#[tokio::test]
async fn nothing_changed_costs_no_pod_read() {
    // GIVEN an allocated Service whose targets were checked against its pods
    let w = world(&[NLB_A], "30000-30099", 50);
    selecting_room(&w, &["10.0.0.1"]);
    w.reconcile("room").await.expect("allocates");

    // WHEN a Service Changed and an Endpoints Changed event come with nothing changed, any pod
    // read failing
    no_pod_read_allowed(&w);
    let changed = w
        .reconciler
        .reconcile_service_as(
            &crate::model::claims::RunToken::random(),
            &w.cluster,
            "games",
            "room",
            None,
        )
        .await;
    let synced = w.reconciler.sync_targets(&w.cluster, "games", "room").await;

    // THEN both succeed: neither read the pods
    assert!(changed.is_ok(), "{changed:?}");
    assert!(synced.is_ok(), "{synced:?}");
    // AND a new address is checked against them again (the armed failure is met)
    w.cluster.set_slices(
        "games",
        "room",
        vec![controller_slice(&["10.0.0.1", "10.0.0.2"])],
    );
    assert!(
        w.reconciler
            .sync_targets(&w.cluster, "games", "room")
            .await
            .is_err(),
        "a changed slice reads the pods"
    );
}

#[tokio::test]
async fn a_per_pod_endpoint_naming_a_pod_not_selected_gets_no_port() {
    // GIVEN a per-pod Service's pod room-0, and a controller slice also naming room-1, which
    // exists but is not selected, and room-2, which does not exist
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.cluster
        .put_pod("games", pod("room-0", "p0", "10.0.0.1"), &[APP]);
    w.cluster.put_pod(
        "games",
        pod("room-1", "p1", "10.0.0.2"),
        &[("app", "other")],
    );
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[
            ("room-0", "10.0.0.1", true),
            ("room-1", "10.0.0.2", true),
            ("room-2", "10.0.0.3", true),
        ])],
    );

    // WHEN it is reconciled
    w.reconcile("room").await.expect("reconciles");

    // THEN only room-0 has a listener and a target; the others are told
    assert_eq!(target_ips(&w), ["10.0.0.1"]);
    assert_eq!(w.elb.target_groups().len(), 1);
    let warned = warnings(&w, NOT_A_POD);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("10.0.0.2") && warned[0].contains("10.0.0.3"));
}
