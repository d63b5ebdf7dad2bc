//! Cross-zone load balancing of the target groups made here, and the sweep's listing of each
//! NLB that spares an allocation every ELBv2 read (see `crate::contract::cross_zone`,
//! `crate::model::claims::listing`).

use std::collections::BTreeMap;

use super::tests::{NLB_A, World, opted_in, slice, world};
use crate::contract::annotations;
use crate::contract::cross_zone::{ATTR_CROSS_ZONE, FOLLOW_NLB};
use crate::contract::listener_options::CROSS_ZONE;

fn cross_zone_of_group(w: &World) -> Option<String> {
    w.elb.target_groups()[0]
        .attributes
        .get(ATTR_CROSS_ZONE)
        .cloned()
}

async fn sweep(w: &World) {
    w.reconciler
        .sweep(&w.cluster, w.store.as_ref(), super::SweepLimits::default())
        .await
        .expect("sweeps");
}

async fn allocate(w: &World, name: &str, uid: &str, annotations: &[(&str, &str)]) {
    let mut svc = opted_in(name, uid);
    for (k, v) in annotations {
        svc.annotations.insert((*k).to_owned(), (*v).to_owned());
    }
    w.cluster.put_service(svc);
    w.cluster
        .set_slices("games", name, vec![slice("game", 8000, &["10.0.0.1"])]);
    w.reconcile(name).await.expect("allocates");
    assert_eq!(
        w.annotation(name, annotations::STATUS).as_deref(),
        Some("Allocated")
    );
}

#[tokio::test]
async fn before_the_first_sweep_a_new_group_is_given_cross_zone_and_the_nlb_is_read() {
    // GIVEN an NLB the sweep has not listed yet (a new stack)
    let w = world(&[NLB_A], "30000-30099", 50);
    w.store.remove_listing(NLB_A);

    // WHEN a Service is allocated
    allocate(&w, "room", "u1", &[]).await;

    // THEN its target group balances across zones by its own attribute (its NLB's setting is
    // not known), and the NLB's listeners were read for the ports others hold
    assert_eq!(cross_zone_of_group(&w).as_deref(), Some("true"));
    assert_eq!(w.elb.calls("ModifyTargetGroupAttributes"), 1);
    assert_eq!(w.elb.calls("DescribeListeners (of an NLB)"), 1);
}

#[tokio::test]
async fn after_a_sweep_an_allocation_reads_nothing_and_never_takes_a_foreign_port() {
    // GIVEN an NLB with another tool's listener on the first port of the range, and
    // cross-zone on, listed by a sweep run
    let w = world(&[NLB_A], "30000-30001", 50);
    w.store.remove_listing(NLB_A);
    w.elb.add_foreign_listener(NLB_A, 30000);
    sweep(&w).await;
    let listing = w.store.listing(NLB_A).expect("the sweep listed the NLB");
    assert_eq!(
        listing.foreign_ports.into_iter().collect::<Vec<_>>(),
        [30000]
    );
    assert!(listing.cross_zone);
    let before = w.elb.all_calls();

    // WHEN a Service is allocated by a cold function (its view empty)
    allocate(&w, "room", "u1", &[]).await;

    // THEN it got the other port, with no ELBv2 read and no attribute call: its group follows
    // an NLB that balances across zones
    assert_eq!(
        w.annotation("room", annotations::ADDRESS),
        Some("nlb-0.elb:30001".to_owned())
    );
    let calls: BTreeMap<&str, usize> = w
        .elb
        .all_calls()
        .into_iter()
        .map(|(op, n)| (op, n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        calls,
        BTreeMap::from([
            ("CreateListener", 1),
            ("CreateTargetGroup", 1),
            // The NLB's DNS name, once per instance.
            ("DescribeLoadBalancers", 1),
            ("RegisterTargets", 1)
        ])
    );
    assert_eq!(cross_zone_of_group(&w), None, "follows its NLB");
}

#[tokio::test]
async fn a_service_that_says_off_gets_off_and_on_again_when_it_stops_saying_so() {
    // GIVEN NLBs listed with cross-zone on
    let w = world(&[NLB_A], "30000-30099", 50);

    // WHEN a Service asks for cross-zone off
    allocate(&w, "room", "u1", &[(CROSS_ZONE, "false")]).await;

    // THEN its group has it off by its own attribute
    assert_eq!(cross_zone_of_group(&w).as_deref(), Some("false"));

    // WHEN the annotation goes
    let mut svc = w.cluster.get("games", "room").expect("service");
    svc.annotations.remove(CROSS_ZONE);
    w.cluster.put_service(svc);
    w.reconcile("room").await.expect("reconciles");

    // THEN the group balances across zones again
    let have = cross_zone_of_group(&w);
    assert!(
        have.as_deref() == Some("true") || have.as_deref() == Some(FOLLOW_NLB),
        "{have:?}"
    );
}

#[tokio::test]
async fn an_nlb_listed_with_cross_zone_off_gets_groups_with_it_on() {
    // GIVEN an NLB listed with cross-zone off (AWS's default for an NLB)
    let w = world(&[NLB_A], "30000-30099", 50);
    w.elb.set_nlb_cross_zone(NLB_A, false);
    w.store.remove_listing(NLB_A);
    sweep(&w).await;
    assert!(!w.store.listing(NLB_A).expect("listed").cross_zone);

    // WHEN a Service is allocated
    allocate(&w, "room", "u1", &[]).await;

    // THEN its group has cross-zone on by its own attribute
    assert_eq!(cross_zone_of_group(&w).as_deref(), Some("true"));
}

#[test]
fn a_bad_cross_zone_value_names_the_annotation() {
    let mut svc = opted_in("room", "u1");
    svc.annotations.insert(CROSS_ZONE.into(), "maybe".into());
    let err = crate::contract::listener_options::ListenerOptions::parse(&svc.annotations)
        .expect_err("refused");
    assert!(err.to_string().contains(CROSS_ZONE), "{err}");
}

#[tokio::test]
async fn a_made_nlb_is_listed_when_it_turns_active_so_its_first_rooms_cost_no_attribute_call() {
    use super::elastic_tests::{pools, world as elastic_world};
    // GIVEN a managed pool (made NLBs cross-zone on by default) whose pool function makes its
    // first NLB
    let w = elastic_world(pools(1, 2, 0, 3600), 0);
    let report = w.tend().await;
    let nlb = report
        .promoted
        .first()
        .cloned()
        .expect("an NLB made active");

    // THEN the NLB is listed on its item: cross-zone on, no foreign port
    let listing = w.store.listing(&nlb).expect("listed as it turned active");
    assert!(listing.cross_zone && listing.foreign_ports.is_empty());

    // AND a room's target group follows it: no attribute call, no listener read
    w.rooms(0..1).await;
    assert_eq!(w.elb.calls("ModifyTargetGroupAttributes"), 0);
    assert_eq!(w.elb.calls("DescribeListeners (of an NLB)"), 0);
}
