//! Only trusted EndpointSlices and allowed addresses become targets; the rest is reported once.

use super::Outcome;
use super::tests::{NLB_A, TEST_MANAGER, World, opted_in, slice, world};
use crate::model::cluster::{KubeError, NoticeKind};
use crate::model::target_policy::{OUTSIDE_CIDRS, TargetPolicy, UNTRUSTED_SLICE};
use crate::model::targets::SliceView;

fn by(manager: &str, mut s: SliceView, name: &str) -> SliceView {
    s.managed_by = Some(manager.to_owned());
    s.name = name.to_owned();
    s
}

pub(super) fn target_ips(w: &World) -> Vec<String> {
    w.elb
        .target_groups()
        .iter()
        .flat_map(|g| g.targets.iter().map(|t| t.ip.to_string()))
        .collect()
}

pub(super) fn warnings(w: &World, reason: &str) -> Vec<String> {
    w.cluster
        .notices()
        .into_iter()
        .filter(|(_, n)| n.kind == NoticeKind::Warning && n.reason == reason)
        .map(|(_, n)| n.note)
        .collect()
}

#[tokio::test]
async fn an_untrusted_slice_adds_no_target_and_is_reported_once() {
    // GIVEN an opted-in Service with the controller's slice and a hand-written one listing a
    // node's kubelet
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.set_slices(
        "games",
        "room",
        vec![
            slice("game", 8000, &["10.0.0.1"]),
            by("kubectl", slice("game", 10250, &["10.0.50.5"]), "room-evil"),
        ],
    );

    // WHEN it is allocated, and its endpoints are synced twice more
    let outcome = w.reconcile("room").await.expect("allocates");
    for _ in 0..2 {
        w.reconciler
            .sync_targets(&w.cluster, "games", "room")
            .await
            .expect("syncs");
    }

    // THEN the target group holds the pod only
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    assert_eq!(target_ips(&w), ["10.0.0.1"]);
    // AND one Warning names the slice and its manager, however many runs saw it
    let warned = warnings(&w, UNTRUSTED_SLICE);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("room-evil") && warned[0].contains("\"kubectl\""),
        "{}",
        warned[0]
    );
    // AND the allocation itself was reported as usual
    assert_eq!(
        w.annotation("room", crate::contract::annotations::STATUS)
            .as_deref(),
        Some("Allocated")
    );
}

#[tokio::test]
async fn a_changed_rejection_is_reported_again() {
    // GIVEN an allocated Service whose untrusted slice was reported
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    let evil = |manager: &str| by(manager, slice("game", 8000, &["10.0.0.9"]), "room-evil");
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice("game", 8000, &["10.0.0.1"]), evil("kubectl")],
    );
    w.reconcile("room").await.expect("allocates");

    // WHEN the slice is relabelled with another untrusted manager
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice("game", 8000, &["10.0.0.1"]), evil("helm")],
    );
    w.reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("syncs");

    // THEN both are reported, and the address never became a target
    assert_eq!(warnings(&w, UNTRUSTED_SLICE).len(), 2);
    assert_eq!(target_ips(&w), ["10.0.0.1"]);
}

#[tokio::test]
async fn an_allowed_manager_is_trusted() {
    // GIVEN a policy allowing the testbed's manager, and only its slice
    let mut w = world(&[NLB_A], "30000-30099", 50);
    w.reconciler = w
        .reconciler
        .with_target_policy(TargetPolicy::new(["testbed.nlb-port-pool"], vec![]));
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.set_slices(
        "games",
        "room",
        vec![by(
            "testbed.nlb-port-pool",
            slice("game", 8000, &["10.0.0.1"]),
            "room-1",
        )],
    );

    // WHEN it is allocated THEN the slice's address is a target and nothing is reported
    w.reconcile("room").await.expect("allocates");
    assert_eq!(target_ips(&w), ["10.0.0.1"]);
    assert!(warnings(&w, UNTRUSTED_SLICE).is_empty());
}

#[tokio::test]
async fn addresses_outside_the_cidrs_are_refused() {
    // GIVEN TARGET_CIDRS 10.0.0.0/16 and a trusted slice also listing 192.168.7.7
    let mut w = world(&[NLB_A], "30000-30099", 50);
    w.reconciler = w.reconciler.with_target_policy(TargetPolicy::new(
        [TEST_MANAGER],
        vec!["10.0.0.0/16".parse().expect("cidr")],
    ));
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice("game", 8000, &["10.0.0.1", "192.168.7.7"])],
    );

    // WHEN it is allocated and synced again
    w.reconcile("room").await.expect("allocates");
    w.reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("syncs");

    // THEN only the inside address is a target, and one Warning names the other and the CIDR
    assert_eq!(target_ips(&w), ["10.0.0.1"]);
    let warned = warnings(&w, OUTSIDE_CIDRS);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("192.168.7.7") && warned[0].contains("10.0.0.0/16"),
        "{}",
        warned[0]
    );
}

#[tokio::test]
async fn a_failed_report_fails_the_run_and_the_retry_reports() {
    // GIVEN an allocated Service, then an untrusted slice, and an Event API failing once
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);
    w.reconcile("room").await.expect("allocates");
    w.cluster.set_slices(
        "games",
        "room",
        vec![
            slice("game", 8000, &["10.0.0.1", "10.0.0.2"]),
            by("kubectl", slice("game", 8000, &["10.0.0.9"]), "room-evil"),
        ],
    );
    w.cluster.fail_next(
        "publish",
        KubeError {
            action: "publish".into(),
            message: "etcd timeout".into(),
            retryable: true,
        },
    );

    // WHEN the endpoints are synced, and synced again (the retry)
    let first = w.reconciler.sync_targets(&w.cluster, "games", "room").await;
    let second = w.reconciler.sync_targets(&w.cluster, "games", "room").await;

    // THEN the first run fails (so the event is retried), the trusted targets were synced
    // anyway, and the retry reports the slice
    assert!(first.is_err());
    assert!(second.is_ok(), "{second:?}");
    assert_eq!(target_ips(&w), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(warnings(&w, UNTRUSTED_SLICE).len(), 1);
}
