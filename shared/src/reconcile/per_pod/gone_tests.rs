//! Pods not served lose their targets at once (issue 29, defect 2): a pod gone keeps its ports
//! for the grace but not its target, a terminating pod loses its target, a pod made again under
//! its name gets its ports back with only its new IP registered, and the ports go after the
//! grace.

use std::net::Ipv4Addr;

use crate::contract::annotations::ADDRESS;
use crate::model::elb::{TAG_POD, TAG_SERVICE_UID};
use crate::model::targets::Target;
use crate::reconcile::Outcome;
use crate::reconcile::per_pod_tests::{APP, per_pod_service, pod, slice_of};
use crate::reconcile::tests::{NLB_A, World, world};

/// The IPs registered in the target group(s) of pod `pod` of the Service with `uid`.
pub(in crate::reconcile) fn target_ips(w: &World, uid: &str, pod: &str) -> Vec<Ipv4Addr> {
    w.elb
        .target_groups()
        .iter()
        .filter(|g| {
            g.tags.get(TAG_POD).map(String::as_str) == Some(pod)
                && g.tags.get(TAG_SERVICE_UID).map(String::as_str) == Some(uid)
        })
        .flat_map(|g| g.targets.iter().map(|t| t.ip))
        .collect()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

/// Every ELBv2 call made so far.
fn calls(w: &World) -> usize {
    w.elb.all_calls().values().sum()
}

/// Service `room` (grace `grace`) with pods room-0 and room-1 allocated.
async fn two_pods(grace: &str) -> World {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service(grace));
    w.scale_to(2);
    w.reconcile("room").await.expect("allocates");
    assert_eq!(target_ips(&w, "u1", "room-1"), [ip("10.0.0.2")]);
    w
}

#[tokio::test]
async fn a_gone_pod_loses_its_target_at_once_and_keeps_its_ports_for_the_grace() {
    // GIVEN two allocated pods, a grace of 60 s
    let w = two_pods("60").await;

    // WHEN room-1 goes (deleted, out of the endpoints)
    w.scale_to(1);
    let outcome = w.sync().await;

    // THEN in that same run its target is deregistered (its IP may be another pod's soon),
    // while its claim, listener and target group are kept, noted gone
    assert!(
        matches!(
            outcome,
            Outcome::Pods {
                leaving: 1,
                released: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(target_ips(&w, "u1", "room-1").is_empty());
    assert_eq!(target_ips(&w, "u1", "room-0"), [ip("10.0.0.1")]);
    assert_eq!(
        (w.elb.listeners().len(), w.elb.target_groups().len()),
        (2, 2)
    );
    let claim = w
        .store
        .all_claims()
        .into_iter()
        .find(|c| c.owner.pod.as_deref() == Some("room-1"))
        .expect("room-1 keeps its claim");
    assert!(claim.gone_since.is_some());

    // AND the next event costs no ELBv2 call: the claim says its group holds no target
    let before = calls(&w);
    w.sync().await;
    assert_eq!(calls(&w), before, "{:?}", w.elb.all_calls());

    // WHEN the grace has run out (the Service's grace set to 0)
    w.cluster.put_service(per_pod_service("0"));
    let outcome = w.reconcile("room").await.expect("reconciles");

    // THEN its ports are released; room-0 keeps its own
    assert!(
        matches!(
            outcome,
            Outcome::Pods {
                released: 1,
                leaving: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        (w.elb.listeners().len(), w.elb.target_groups().len()),
        (1, 1)
    );
    assert_eq!(w.store.all_claims().len(), 1);
}

#[tokio::test]
async fn a_pod_made_again_within_the_grace_gets_its_ports_with_only_its_new_ip() {
    // GIVEN two allocated pods; room-1's address
    let w = two_pods("60").await;
    let address = w.pod_annotation("room-1", ADDRESS).expect("address");

    // WHEN room-1 is made again under its name with another IP, the endpoints still listing
    // its old IP (the slice has not caught up)
    w.cluster.delete_pod("games", "room-1");
    w.cluster
        .put_pod("games", pod("room-1", "pod-1-again", "10.0.0.99"), &[APP]);
    w.sync().await;

    // THEN the old IP is deregistered in that run (it is no longer room-1's)
    assert!(target_ips(&w, "u1", "room-1").is_empty());

    // WHEN the endpoints list it at its new IP
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[
            ("room-0", "10.0.0.1", true),
            ("room-1", "10.0.0.99", true),
        ])],
    );
    w.sync().await;

    // THEN it has its old address again, and only its new IP is registered
    assert_eq!(w.pod_annotation("room-1", ADDRESS), Some(address));
    assert_eq!(target_ips(&w, "u1", "room-1"), [ip("10.0.0.99")]);
    assert_eq!(w.elb.listeners().len(), 2);
}

#[tokio::test]
async fn a_pod_gone_and_back_within_the_grace_keeps_its_port() {
    // GIVEN two allocated pods; room-1 gone (its target deregistered)
    let w = two_pods("60").await;
    let address = w.pod_annotation("room-1", ADDRESS).expect("address");
    w.scale_to(1);
    w.sync().await;

    // WHEN the fleet scales back to 2 within the grace, room-1 at another IP
    w.cluster
        .put_pod("games", pod("room-1", "pod-1-again", "10.0.0.42"), &[APP]);
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[
            ("room-0", "10.0.0.1", true),
            ("room-1", "10.0.0.42", true),
        ])],
    );
    let outcome = w.sync().await;

    // THEN it is back on its port, its new IP its only target, no longer noted gone
    assert!(
        matches!(
            outcome,
            Outcome::Pods {
                allocated: 2,
                leaving: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(w.pod_annotation("room-1", ADDRESS), Some(address));
    assert_eq!(target_ips(&w, "u1", "room-1"), [ip("10.0.0.42")]);
    assert!(w.store.all_claims().iter().all(|c| c.gone_since.is_none()));
}

#[tokio::test]
async fn a_terminating_pod_loses_its_target_and_keeps_its_ports() {
    // GIVEN two allocated pods, a grace of 10 s
    let w = two_pods("10").await;
    let address = w.pod_annotation("room-1", ADDRESS).expect("address");

    // WHEN room-1 starts terminating, the endpoints still listing it ready
    w.cluster.terminate_pod("games", "room-1");
    let outcome = w.sync().await;

    // THEN its target is deregistered in that run; it keeps its port and address, and its
    // grace has not started (a StatefulSet makes its successor only once it is gone)
    assert!(target_ips(&w, "u1", "room-1").is_empty());
    assert_eq!(w.pod_annotation("room-1", ADDRESS), Some(address));
    assert_eq!(w.elb.listeners().len(), 2);
    assert!(w.store.all_claims().iter().all(|c| c.gone_since.is_none()));
    assert!(
        matches!(outcome, Outcome::Pods { leaving: 0, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_thorough_pass_deregisters_a_gone_pods_target_put_back_by_hand() {
    // GIVEN room-1 gone, its target deregistered and noted so
    let w = two_pods("60").await;
    w.scale_to(1);
    w.sync().await;

    // WHEN its old IP is registered again behind the system's back
    let group = w
        .store
        .all_claims()
        .into_iter()
        .find(|c| c.owner.pod.as_deref() == Some("room-1"))
        .and_then(|c| c.target_group_arn)
        .expect("room-1's group");
    let target = Target {
        ip: ip("10.0.0.2"),
        port: 8000,
    };
    crate::model::elb::LoadBalancing::register(w.elb.as_ref(), &group, &[target])
        .await
        .expect("registers");

    // THEN an event does not look (the claim says none is left), the sweep's pass does
    w.sync().await;
    assert_eq!(target_ips(&w, "u1", "room-1"), [ip("10.0.0.2")]);
    w.reconcile("room").await.expect("reconciles");
    assert!(target_ips(&w, "u1", "room-1").is_empty());
}
