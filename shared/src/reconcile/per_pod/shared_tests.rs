//! Two per-pod Services over the same pods (issue 29, defect 3): the pod's outputs are the
//! first Service's; the second gets its listeners and targets, lists its addresses in its own
//! summary, is told once, and never writes, clears or gates the pod; the first's release
//! clears them and the second takes them on its next run.

use std::time::Duration;

use super::PODS_SHARED;
use super::gone_tests::target_ips;
use crate::contract::annotations::{
    self, ADDRESS, Annotations, PREFIX, PodsSummary, SERVICE, STATUS, TARGET,
};
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::cluster::{Cluster, NoticeKind};
use crate::reconcile::Outcome;
use crate::reconcile::per_pod_tests::{APP, per_pod_service, pod, slice_of};
use crate::reconcile::reachable_tests::checked_world;
use crate::reconcile::tests::{NLB_A, World, world};

/// A second per-pod Service, `room-udp` (uid `u2`), selecting the same pods as `room`: UDP.
fn udp_twin() -> ServiceState {
    let mut s = per_pod_service("10");
    s.key.name = "room-udp".into();
    s.uid = "u2".into();
    for p in &mut s.ports {
        p.protocol = "UDP".into();
    }
    s
}

impl World {
    /// Lists the endpoints of `room` under `room-udp` too (the same pods behind both).
    async fn mirror(&self) {
        let slices = self
            .cluster
            .endpoint_slices("games", "room")
            .await
            .expect("slices");
        self.cluster.set_slices("games", "room-udp", slices);
    }

    fn pod_outputs(&self, pod: &str) -> Annotations {
        let p = self.cluster.get_pod("games", pod).expect("pod");
        p.annotations
            .into_iter()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .collect()
    }

    fn summary_of(&self, service: &str) -> PodsSummary {
        let json = self
            .annotation(service, annotations::PODS)
            .expect("summary");
        serde_json::from_str(&json).expect("summary JSON")
    }

    /// How many Events went to pods.
    fn pod_notices(&self) -> usize {
        let notices = self.cluster.notices();
        notices
            .iter()
            .filter(|(who, _)| who.contains("/pod/"))
            .count()
    }

    fn shared_warnings(&self) -> Vec<(String, String)> {
        self.cluster
            .notices()
            .into_iter()
            .filter(|(_, n)| n.reason == PODS_SHARED && n.kind == NoticeKind::Warning)
            .map(|(who, n)| (who, n.note))
            .collect()
    }
}

/// `room` allocated over room-0 and room-1, then `room-udp` over the same pods.
async fn both(w: &World) {
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(2);
    w.reconcile("room").await.expect("room allocates");
    w.cluster.put_service(udp_twin());
    w.mirror().await;
}

#[tokio::test]
async fn a_second_service_over_the_same_pods_never_writes_their_outputs() {
    // GIVEN room's pods carrying its outputs
    let w = world(&[NLB_A], "30000-30099", 50);
    both(&w).await;
    let before = [w.pod_outputs("room-0"), w.pod_outputs("room-1")];
    assert_eq!(before[0].get(SERVICE).map(String::as_str), Some("room/u1"));

    let pod_notices = w.pod_notices();

    // WHEN room-udp is reconciled, its endpoints synced, and reconciled again
    let outcome = w.reconcile("room-udp").await.expect("room-udp allocates");
    w.reconciler
        .sync_targets(&w.cluster, "games", "room-udp")
        .await
        .expect("syncs");
    w.reconcile("room-udp").await.expect("again");

    // THEN it holds a listener per pod, each pod its target
    assert!(
        matches!(outcome, Outcome::Pods { allocated: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(w.elb.listeners().len(), 4);
    let ip = w.cluster.get_pod("games", "room-0").and_then(|p| p.ip);
    assert_eq!(target_ips(&w, "u2", "room-0"), [ip.expect("ip")]);
    // AND the pods' outputs are still room's, unchanged
    assert_eq!([w.pod_outputs("room-0"), w.pod_outputs("room-1")], before);
    // AND room-udp's summary lists its own address for each, not room's
    let summary = w.summary_of("room-udp");
    assert_eq!(summary.allocated, 2);
    assert_eq!(summary.shared.len(), 2);
    for (pod, entry) in &summary.shared {
        assert!(entry.address.starts_with("nlb-0.elb:"), "{entry:?}");
        assert_ne!(Some(&entry.address), w.pod_outputs(pod).get(ADDRESS));
    }
    // AND it was told once, on itself, naming room
    let warned = w.shared_warnings();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, "games/room-udp");
    assert!(
        warned[0].1.contains("Service games/room,"),
        "{}",
        warned[0].1
    );
    // AND no Event of room-udp's went to the pods
    assert_eq!(w.pod_notices(), pod_notices);
}

#[tokio::test]
async fn releasing_the_second_service_leaves_the_pods_outputs() {
    // GIVEN both Services allocated, the pods carrying room's outputs
    let w = world(&[NLB_A], "30000-30099", 50);
    both(&w).await;
    w.reconcile("room-udp").await.expect("room-udp allocates");
    let before = w.pod_outputs("room-0");

    // WHEN room-udp is deleted
    w.cluster.delete_service("games", "room-udp");
    w.reconcile("room-udp").await.expect("releases");

    // THEN its listeners went, the pods' outputs did not
    assert!(w.cluster.get("games", "room-udp").is_none());
    assert_eq!(w.elb.listeners().len(), 2);
    assert!(w.store.all_claims().iter().all(|c| c.owner.uid == "u1"));
    assert_eq!(w.pod_outputs("room-0"), before);
}

#[tokio::test]
async fn releasing_the_first_clears_the_outputs_and_the_second_takes_them_over() {
    // GIVEN both Services allocated, the pods carrying room's outputs
    let w = world(&[NLB_A], "30000-30099", 50);
    both(&w).await;
    w.reconcile("room-udp").await.expect("room-udp allocates");
    let theirs = w.summary_of("room-udp").shared;

    // WHEN room is deleted
    w.cluster.delete_service("games", "room");
    w.reconcile("room").await.expect("releases");

    // THEN the pods carry no output
    assert!(
        w.pod_outputs("room-0").is_empty(),
        "{:?}",
        w.pod_outputs("room-0")
    );

    // WHEN room-udp's next run comes (an endpoint event)
    w.reconciler
        .sync_targets(&w.cluster, "games", "room-udp")
        .await
        .expect("syncs");

    // THEN the pods carry room-udp's outputs, its addresses as its summary listed them
    for p in ["room-0", "room-1"] {
        let outputs = w.pod_outputs(p);
        assert_eq!(
            outputs.get(SERVICE).map(String::as_str),
            Some("room-udp/u2")
        );
        assert_eq!(outputs.get(ADDRESS), theirs.get(p).map(|s| &s.address));
        assert!(outputs.contains_key(TARGET) && outputs.contains_key(STATUS));
    }
    assert!(w.summary_of("room-udp").shared.is_empty());
}

#[tokio::test]
async fn an_owner_that_no_longer_speaks_for_the_pod_is_taken_over() {
    // GIVEN pods whose outputs name Services that cannot speak for them any more: one that no
    // longer exists, one whose selector no longer selects the pod
    let w = world(&[NLB_A], "30000-30099", 50);
    let mut other = per_pod_service("10");
    other.key.name = "other".into();
    other.uid = "u7".into();
    other.selector.insert("app".into(), "elsewhere".into());
    w.cluster.put_service(other);
    w.cluster.put_service(per_pod_service("10"));
    let named = |name: &str, uid: &str, ip: &str, owner: &str| PodState {
        annotations: [
            (SERVICE.to_owned(), owner.to_owned()),
            (ADDRESS.to_owned(), "stale.elb:1".to_owned()),
        ]
        .into(),
        ..pod(name, uid, ip)
    };
    w.cluster.put_pod(
        "games",
        named("room-0", "p0", "10.0.0.1", "deleted/u9"),
        &[APP],
    );
    w.cluster.put_pod(
        "games",
        named("room-1", "p1", "10.0.0.2", "other/u7"),
        &[APP],
    );
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[
            ("room-0", "10.0.0.1", true),
            ("room-1", "10.0.0.2", true),
        ])],
    );

    // WHEN room is reconciled
    w.reconcile("room").await.expect("allocates");

    // THEN it owns both pods' outputs now, and nobody was told of sharing
    for p in ["room-0", "room-1"] {
        let outputs = w.pod_outputs(p);
        assert_eq!(outputs.get(SERVICE).map(String::as_str), Some("room/u1"));
        assert!(
            outputs
                .get(ADDRESS)
                .is_some_and(|a| a.starts_with("nlb-0.elb:"))
        );
    }
    assert!(w.shared_warnings().is_empty());
    assert!(w.summary_of("room").shared.is_empty());
}

#[tokio::test]
async fn a_shared_pod_is_reachable_in_the_second_services_summary_and_gated_by_its_owner() {
    // GIVEN both Services over a gated pod (containers ready, its gate false), targets still
    // in their first health checks
    let w = checked_world(Duration::from_secs(600));
    w.elb
        .set_target_health(Some(("initial", Some("Elb.RegistrationInProgress"))));
    w.cluster.put_service(per_pod_service("10"));
    let gated = PodState {
        gated: true,
        ..pod("room-0", "pod-0", "10.0.0.1")
    };
    w.cluster.put_pod("games", gated, &[APP]);
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[("room-0", "10.0.0.1", false)])],
    );
    w.reconcile("room").await.expect("room allocates");
    w.cluster.put_service(udp_twin());
    w.mirror().await;
    w.reconcile("room-udp").await.expect("room-udp allocates");
    w.tend().await;
    assert!(!w.summary_of("room-udp").shared["room-0"].ready);

    // WHEN the targets turn healthy and the checks run
    w.elb.set_target_health(None);
    let report = w.tend().await;

    // THEN the pod is Ready and gated by room; room-udp notes its listeners reachable in its
    // own summary and turns Ready, writing nothing on the pod
    assert_eq!(report.gates_set, 1, "{report:?}");
    let p = w.cluster.get_pod("games", "room-0").expect("pod");
    assert!(p.reachable);
    assert_eq!(
        p.annotations.get(SERVICE).map(String::as_str),
        Some("room/u1")
    );
    assert_eq!(p.annotations.get(STATUS).map(String::as_str), Some("Ready"));
    let summary = w.summary_of("room-udp");
    assert!(summary.shared["room-0"].ready, "{summary:?}");
    assert_eq!(summary.ready, 1);
    assert_eq!(w.annotation("room-udp", STATUS).as_deref(), Some("Ready"));

    // AND a thorough pass that changes nothing keeps it so
    w.reconcile("room-udp").await.expect("reconciles");
    assert!(w.summary_of("room-udp").shared["room-0"].ready);
}

#[tokio::test]
async fn a_pod_written_before_pods_named_their_owner_is_named_without_an_aws_call() {
    // GIVEN an allocated pod whose outputs name no Service (written by an earlier version)
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(1);
    w.reconcile("room").await.expect("allocates");
    let mut unnamed = w.cluster.get_pod("games", "room-0").expect("pod");
    unnamed.annotations.remove(SERVICE);
    w.cluster.put_pod("games", unnamed, &[APP]);
    let before = w.elb.all_calls().values().sum::<usize>();

    // WHEN its endpoints are synced with nothing changed
    w.sync().await;

    // THEN it names room, and no ELBv2 call was made
    let outputs = w.pod_outputs("room-0");
    assert_eq!(outputs.get(SERVICE).map(String::as_str), Some("room/u1"));
    assert_eq!(w.elb.all_calls().values().sum::<usize>(), before);
}
