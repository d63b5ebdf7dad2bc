//! Reachability against the in-memory doubles: `Ready` only once targets are healthy, the
//! readiness gate set after that, a gated pod registered while only its gate is false, and a
//! Service still unreachable at its deadline reported.

use std::time::Duration;

use super::per_pod_tests::{APP, per_pod_service, pod, slice_of};
use super::tests::{NLB_A, World, opted_in, slice, world};
use super::{ReachChecker, ReachSettings, Reconciler};
use crate::contract::annotations::{self, STATUS};
use crate::contract::service_model::PodState;
use crate::model::claims::CheckRecords;

/// A world whose reconciler keeps the work list, each `tend_checks` one look.
pub(super) fn checked_world(timeout: Duration) -> World {
    let mut w = world(&[NLB_A], "30000-30099", 50);
    let pools = w.reconciler.pools().clone();
    w.reconciler = Reconciler::new("prod", "vpc-1", pools, w.store.clone(), w.elb.clone())
        .with_claim_grace(Duration::ZERO)
        .with_target_policy(super::tests::test_targets())
        .with_check_records(w.store.clone())
        .with_reach_settings(ReachSettings {
            check_every: Duration::ZERO,
            timeout,
            run_for: Duration::ZERO,
            concurrency: 4,
        });
    w
}

impl World {
    pub(super) async fn tend(&self) -> super::ReachReport {
        ReachChecker::new(&self.reconciler, &*self.store)
            .tend_checks(&self.cluster)
            .await
            .expect("tends")
    }

    async fn listed(&self) -> usize {
        self.store.checks().await.expect("checks").len()
    }
}

#[tokio::test]
async fn a_service_is_ready_only_once_its_target_is_healthy() {
    // GIVEN an allocated Service whose target is still in its first health checks
    let w = checked_world(Duration::from_secs(600));
    w.elb
        .set_target_health(Some(("initial", Some("Elb.RegistrationInProgress"))));
    w.cluster
        .put_service(crate::contract::service_model::ServiceState {
            created: Some(crate::model::claims::now_epoch() - 120),
            ..opted_in("room", "u1")
        });
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);
    w.reconcile("room").await.expect("allocates");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    assert_eq!(w.listed().await, 1, "noted for a check");

    // WHEN the check runs
    let report = w.tend().await;

    // THEN it is still Allocated, and waits
    assert_eq!((report.checked, report.ready), (1, 0));
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    assert_eq!(w.listed().await, 1);

    // WHEN the target turns healthy and the check runs again
    w.elb.set_target_health(None);
    let report = w.tend().await;

    // THEN it is Ready, said in an Event, and off the list; its wait since creation measured
    assert_eq!(report.ready, 1);
    assert_eq!(report.service_reachable_seconds.len(), 1);
    assert!(
        (120..=125).contains(&report.service_reachable_seconds[0]),
        "{:?}",
        report.service_reachable_seconds
    );
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Ready"));
    assert!(
        w.cluster
            .notices()
            .iter()
            .any(|(_, n)| n.reason == "Reachable")
    );
    assert_eq!(w.listed().await, 0);

    // AND a reconcile that changes nothing keeps it Ready
    w.reconcile("room").await.expect("reconciles");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Ready"));
}

#[tokio::test]
async fn a_service_unreachable_at_its_deadline_is_reported_and_dropped() {
    let w = checked_world(Duration::ZERO);
    w.elb
        .set_target_health(Some(("unhealthy", Some("Target.Timeout"))));
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);
    w.reconcile("room").await.expect("allocates");

    let report = w.tend().await;

    assert_eq!(report.timed_out, 1);
    assert_eq!(w.listed().await, 0);
    let why = w
        .cluster
        .notices()
        .into_iter()
        .find(|(_, n)| n.reason == "NotReachable")
        .expect("a NotReachable Event")
        .1
        .note;
    assert!(why.contains("unhealthy (Target.Timeout)"), "{why}");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
}

#[tokio::test]
async fn a_gated_pod_gets_its_condition_only_after_its_target_is_healthy() {
    // GIVEN a per-pod Service whose pod declares the gate, its containers not ready yet
    let w = checked_world(Duration::from_secs(600));
    w.elb
        .set_target_health(Some(("initial", Some("Elb.RegistrationInProgress"))));
    w.cluster.put_service(per_pod_service("10"));
    let starting = PodState {
        gated: true,
        containers_ready: false,
        ..pod("room-0", "pod-0", "10.0.0.1")
    };
    w.cluster.put_pod("games", starting.clone(), &[APP]);
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[("room-0", "10.0.0.1", false)])],
    );
    w.reconcile("room").await.expect("allocates");

    // THEN it has its port but no target: its containers are not ready
    assert!(w.pod_annotation("room-0", annotations::ADDRESS).is_some());
    assert!(w.elb.target_groups()[0].targets.is_empty());

    // WHEN its containers become ready (no endpoint change: the gate keeps it not ready)
    let mut ready_containers = w.cluster.get_pod("games", "room-0").expect("pod");
    ready_containers.containers_ready = true;
    w.cluster.put_pod("games", ready_containers, &[APP]);
    w.tend().await;

    // THEN the check registers it, but the gate stays unset while the target is initial
    assert_eq!(w.elb.target_groups()[0].targets.len(), 1);
    assert!(!w.cluster.get_pod("games", "room-0").expect("pod").reachable);
    assert_eq!(
        w.pod_annotation("room-0", STATUS).as_deref(),
        Some("Allocated")
    );

    // WHEN the target turns healthy
    w.elb.set_target_health(None);
    let report = w.tend().await;

    // THEN the pod is Ready, its gate True, the Service's summary counts it
    assert_eq!((report.ready, report.gates_set), (1, 1));
    assert!(w.cluster.get_pod("games", "room-0").expect("pod").reachable);
    assert_eq!(w.pod_annotation("room-0", STATUS).as_deref(), Some("Ready"));
    assert_eq!(w.summary().ready, 1);
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Ready"));
    assert_eq!(w.listed().await, 0);
}

#[tokio::test]
async fn a_per_service_gated_pod_is_registered_and_its_gate_set() {
    // GIVEN a per-Service Service: one ready pod, one held back only by the gate
    let w = checked_world(Duration::from_secs(600));
    let mut svc = opted_in("room", "u1");
    svc.selector.insert(APP.0.into(), APP.1.into());
    w.cluster.put_service(svc);
    w.cluster
        .put_pod("games", pod("room-0", "pod-0", "10.0.0.1"), &[APP]);
    let gated = PodState {
        gated: true,
        ..pod("room-1", "pod-1", "10.0.0.2")
    };
    w.cluster.put_pod("games", gated, &[APP]);
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[
            ("room-0", "10.0.0.1", true),
            ("room-1", "10.0.0.2", false),
        ])],
    );

    // WHEN it is allocated and checked
    w.reconcile("room").await.expect("allocates");
    w.tend().await;

    // THEN both are targets, and the gated pod's condition is True
    assert_eq!(w.elb.target_groups()[0].targets.len(), 2);
    assert!(w.cluster.get_pod("games", "room-1").expect("pod").reachable);
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Ready"));
}

#[tokio::test]
async fn a_service_without_ready_endpoints_is_not_reported_unreachable() {
    // GIVEN an allocated Service with no ready endpoint, whose deadline has passed
    let w = checked_world(Duration::ZERO);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &[])]);
    w.reconcile("room").await.expect("allocates");

    // WHEN it is checked
    let report = w.tend().await;

    // THEN there was nothing to wait for: no NotReachable Event, off the list
    assert_eq!(report.timed_out, 0, "{report:?}");
    assert!(
        !w.cluster
            .notices()
            .iter()
            .any(|(_, n)| n.reason == "NotReachable")
    );
    assert_eq!(w.listed().await, 0);
}
