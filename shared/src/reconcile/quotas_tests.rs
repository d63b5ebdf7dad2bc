//! AWS's target group and target quotas met as named outcomes: the Service is `Pending` with a
//! reason naming the quota, a Warning Event and a `QuotaRefused` count; nothing is leaked; and
//! the Service is allocated once other rooms release.

use super::Outcome;
use super::tests::{NLB_A, World, opted_in, slice, world};
use crate::adapters::memory::ElbQuotas;
use crate::contract::annotations::STATUS;
use crate::model::cluster::NoticeKind;

/// Service `name` (uid `uid`), opted in, with `ports` TCP ports (7000 and up) and a ready
/// endpoint at `ip`.
fn room(w: &World, name: &str, uid: &str, ports: u16, ip: &str) {
    let mut svc = opted_in(name, uid);
    svc.ports = super::tests::tcp_ports(ports);
    w.cluster.put_service(svc);
    let slices = (0..ports)
        .map(|i| {
            let mut s = slice(&format!("p{i}"), 8000 + i, &[ip]);
            s.name = format!("{name}-p{i}");
            s
        })
        .collect();
    w.cluster.set_slices("games", name, slices);
}

/// The Warning Events about `name`, by reason.
fn warnings(w: &World, name: &str) -> Vec<&'static str> {
    w.cluster
        .notices()
        .into_iter()
        .filter(|(about, n)| about.ends_with(name) && n.kind == NoticeKind::Warning)
        .map(|(_, n)| n.reason)
        .collect()
}

fn owner_claims(w: &World, uid: &str) -> usize {
    w.store
        .all_claims()
        .iter()
        .filter(|c| c.owner.uid == uid)
        .count()
}

#[tokio::test]
async fn the_target_group_quota_leaves_the_service_pending_and_nothing_made() {
    // GIVEN one room allocated, and an account with room for one more target group
    let w = world(&[NLB_A], "30000-30099", 50);
    room(&w, "other", "u0", 1, "10.0.0.9");
    w.reconcile("other").await.expect("allocates");
    w.elb.set_quotas(ElbQuotas {
        target_groups: Some(2),
        ..ElbQuotas::default()
    });
    w.reconciler.take_run_metrics();

    // WHEN a Service with two ports is reconciled (one group fits, the second is refused)
    room(&w, "room", "u1", 2, "10.0.0.1");
    let outcome = w
        .reconcile("room")
        .await
        .expect("a named outcome, not a failure");

    // THEN it is Pending naming the quota and its code, with a Warning Event and a count
    let Outcome::Pending(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("Target Groups per Region"), "{reason}");
    assert!(reason.contains("L-B22855CB"), "{reason}");
    let status = w.annotation("room", STATUS).unwrap_or_default();
    assert!(
        status.starts_with("Pending: AWS refused a target group"),
        "{status}"
    );
    assert_eq!(warnings(&w, "room"), ["TargetGroupQuota"]);
    let measured = w.reconciler.take_run_metrics();
    assert_eq!(
        measured.quota_refusals.get("TargetGroupsPerRegion"),
        Some(&1)
    );
    assert_eq!(measured.allocations_pending, 1);
    // AND nothing of it is left: no claim, no target group (the one made went again), no
    // listener, no finalizer holding a Service that holds nothing
    assert_eq!(owner_claims(&w, "u1"), 0);
    assert_eq!(
        w.elb.target_groups().len(),
        1,
        "only the other room's group"
    );
    assert_eq!(w.elb.listeners().len(), 1, "only the other room's listener");
    let svc = w.cluster.get("games", "room").expect("the Service");
    assert!(svc.finalizers.is_empty(), "{:?}", svc.finalizers);

    // WHEN the other room is deleted and the Service retried (the sweep retries Pending ones)
    w.cluster.delete_service("games", "other");
    w.reconcile("other").await.expect("releases");
    let outcome = w.reconcile("room").await.expect("allocates");

    // THEN it is allocated
    assert!(
        matches!(outcome, Outcome::Allocated { listeners: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
}

#[tokio::test]
async fn the_target_quota_keeps_the_listener_and_waits_for_room() {
    // GIVEN one room with its target on NLB A, whose target quota is then reached
    let w = world(&[NLB_A], "30000-30099", 50);
    room(&w, "other", "u0", 1, "10.0.0.9");
    w.reconcile("other").await.expect("allocates");
    w.elb.set_quotas(ElbQuotas {
        targets_per_nlb: Some(1),
        ..ElbQuotas::default()
    });
    w.reconciler.take_run_metrics();

    // WHEN another Service is allocated on A
    room(&w, "room", "u1", 1, "10.0.0.1");
    let outcome = w
        .reconcile("room")
        .await
        .expect("a named outcome, not a failure");

    // THEN it is Pending naming the target quotas, with a Warning Event and a count
    let Outcome::Pending(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("L-B211E961"), "{reason}");
    let status = w.annotation("room", STATUS).unwrap_or_default();
    assert!(
        status.starts_with("Pending: AWS refused targets"),
        "{status}"
    );
    assert_eq!(warnings(&w, "room"), ["TargetQuota"]);
    let measured = w.reconciler.take_run_metrics();
    assert_eq!(
        measured.quota_refusals.get("TargetsPerLoadBalancer"),
        Some(&1)
    );
    // AND its claim, listener and target group are kept, the listener forwarding to its group,
    // and the finalizer holds them
    assert_eq!(owner_claims(&w, "u1"), 1);
    let groups: Vec<String> = w
        .elb
        .target_groups()
        .into_iter()
        .map(|g| g.info.arn)
        .collect();
    assert_eq!(groups.len(), 2);
    assert!(w.elb.listeners().iter().all(|l| {
        l.info
            .target_group_arn
            .as_ref()
            .is_some_and(|t| groups.contains(t))
    }));
    let svc = w.cluster.get("games", "room").expect("the Service");
    assert!(!svc.finalizers.is_empty());

    // WHEN the other room is deleted and the Service retried
    w.cluster.delete_service("games", "other");
    w.reconcile("other").await.expect("releases");
    let outcome = w.reconcile("room").await.expect("registers");

    // THEN its target is registered and it is allocated
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    let targets: usize = w.elb.target_groups().iter().map(|g| g.targets.len()).sum();
    assert_eq!(targets, 1);
}

#[tokio::test]
async fn the_target_quota_met_when_endpoints_change_is_a_named_outcome_too() {
    // GIVEN an allocated Service with no endpoint yet, on an NLB at its target quota
    let w = world(&[NLB_A], "30000-30099", 50);
    room(&w, "other", "u0", 1, "10.0.0.9");
    w.reconcile("other").await.expect("allocates");
    room(&w, "room", "u1", 1, "10.0.0.1");
    w.cluster.set_slices("games", "room", vec![]);
    w.reconcile("room").await.expect("allocates");
    w.elb.set_quotas(ElbQuotas {
        targets_per_nlb: Some(1),
        ..ElbQuotas::default()
    });

    // WHEN its pod becomes ready (Endpoints Changed)
    w.cluster
        .set_slices("games", "room", vec![slice("p0", 8000, &["10.0.0.1"])]);
    let outcome = w
        .reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("a named outcome, not a failure");

    // THEN it is Pending naming the quota, with a Warning Event
    assert!(matches!(outcome, Outcome::Pending(_)), "{outcome:?}");
    let status = w.annotation("room", STATUS).unwrap_or_default();
    assert!(status.contains("L-B211E961"), "{status}");
    assert_eq!(warnings(&w, "room"), ["TargetQuota"]);
}
