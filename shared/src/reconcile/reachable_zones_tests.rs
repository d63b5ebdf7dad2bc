//! `Ready` means reachable from every zone of the NLB: a target group with cross-zone load
//! balancing off (set by hand, or following an NLB with it off) is `NotReachable` with the
//! reason unless each zone has a healthy target of its own.

use std::time::Duration;

use super::reachable_tests::checked_world;
use super::tests::{NLB_A, World, opted_in, slice};
use crate::contract::annotations::STATUS;
use crate::contract::cross_zone::ATTR_CROSS_ZONE;
use crate::model::elb::LoadBalancing;

async fn allocated(w: &World, ips: &[&str]) -> String {
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, ips)]);
    w.reconcile("room").await.expect("allocates");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    w.elb.target_groups()[0].info.arn.clone()
}

fn not_reachable_note(w: &World) -> Option<String> {
    w.cluster
        .notices()
        .into_iter()
        .find(|(_, n)| n.reason == "NotReachable")
        .map(|(_, n)| n.note)
}

#[tokio::test]
async fn a_group_set_to_cross_zone_off_by_hand_with_one_pod_is_not_ready() {
    // GIVEN a one-pod room in zone a, its group set to cross-zone off by hand
    let w = checked_world(Duration::ZERO);
    w.elb
        .place_target("10.0.0.1".parse().expect("ip"), "us-west-2a");
    let group = allocated(&w, &["10.0.0.1"]).await;
    w.elb
        .set_target_group_attributes(&group, &[(ATTR_CROSS_ZONE.into(), "false".into())])
        .await
        .expect("set");

    // WHEN it is checked (at its deadline)
    let report = w.tend().await;

    // THEN it is not Ready: the healthy target is not reachable from zones b and c
    assert_eq!((report.ready, report.timed_out), (0, 1), "{report:?}");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    let why = not_reachable_note(&w).expect("a NotReachable Event");
    assert!(why.contains("cross-zone load balancing is off"), "{why}");
    assert!(why.contains("us-west-2b, us-west-2c"), "{why}");
    assert!(why.contains("its own attribute"), "{why}");
}

#[tokio::test]
async fn a_group_following_an_nlb_turned_off_since_is_not_ready_with_one_pod() {
    // GIVEN a one-pod room whose group follows its NLB (listed with cross-zone on), and the
    // NLB's cross-zone turned off by hand since
    let w = checked_world(Duration::ZERO);
    w.elb
        .place_target("10.0.0.1".parse().expect("ip"), "us-west-2a");
    allocated(&w, &["10.0.0.1"]).await;
    w.elb.set_nlb_cross_zone(NLB_A, false);

    // WHEN it is checked
    w.tend().await;

    // THEN it is not Ready, and the reason says the group follows its NLB
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    let why = not_reachable_note(&w).expect("a NotReachable Event");
    assert!(why.contains("it follows its NLB's setting"), "{why}");
}

#[tokio::test]
async fn a_group_following_an_nlb_with_cross_zone_off_is_ready_only_with_a_target_in_every_zone() {
    // GIVEN an NLB with cross-zone off, and a room with a pod in each of its three zones
    let w = checked_world(Duration::ZERO);
    w.elb.set_nlb_cross_zone(NLB_A, false);
    for (ip, zone) in [
        ("10.0.0.1", "us-west-2a"),
        ("10.0.0.2", "us-west-2b"),
        ("10.0.0.3", "us-west-2c"),
    ] {
        w.elb.place_target(ip.parse().expect("ip"), zone);
    }
    let group = allocated(&w, &["10.0.0.1", "10.0.0.2", "10.0.0.3"]).await;
    w.elb
        .set_target_group_attributes(
            &group,
            &[(
                ATTR_CROSS_ZONE.into(),
                "use_load_balancer_configuration".into(),
            )],
        )
        .await
        .expect("set");

    // WHEN it is checked
    let report = w.tend().await;

    // THEN it is Ready: every zone's node has a healthy target of its own
    assert_eq!(report.ready, 1, "{report:?}");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Ready"));
    assert_eq!(not_reachable_note(&w), None);
}

#[tokio::test]
async fn a_group_with_cross_zone_on_is_ready_with_one_pod() {
    // GIVEN an NLB with cross-zone off, as the sweep listed it
    let w = checked_world(Duration::ZERO);
    w.elb.set_nlb_cross_zone(NLB_A, false);
    w.store
        .set_listing(NLB_A, crate::model::claims::NlbListing::default());
    w.elb
        .place_target("10.0.0.1".parse().expect("ip"), "us-west-2a");
    let group = allocated(&w, &["10.0.0.1"]).await;
    assert_eq!(
        w.elb.target_groups()[0]
            .attributes
            .get(ATTR_CROSS_ZONE)
            .map(String::as_str),
        Some("true"),
        "made with cross-zone on, its NLB's being off"
    );
    let _ = group;

    let report = w.tend().await;

    assert_eq!(report.ready, 1, "{report:?}");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Ready"));
}
