//! The address written on a Service is always `DNS:port`, with the DNS name of the NLB that
//! holds the listener, even when the run's instance has not seen that NLB yet.

use super::Outcome;
use super::aws_behaviour_tests::{opted_in, slice};
use super::elastic_tests::{World, pools, reconciler, world};
use crate::contract::annotations::{ADDRESS, ALLOCATIONS};
use crate::model::claims::PoolRecords;
use crate::model::elb::LoadBalancing;

async fn allocate(w: &World, by: &super::Reconciler, name: &str, uid: &str) -> Outcome {
    w.cluster.put_service(opted_in(name, uid));
    w.cluster.set_slices("games", name, slice(&["10.0.0.5"]));
    by.reconcile_service(&w.cluster, "games", name, None)
        .await
        .expect("reconciles")
}

#[tokio::test]
async fn a_claim_on_an_nlb_newer_than_the_cached_member_list_is_advertised_with_its_dns_name() {
    // GIVEN a managed pool of one NLB (10 listeners), and an allocate instance that has read
    // the pool's members and their DNS names while it had only that NLB
    let w = world(pools(1, 3, 0, 3600), 0);
    w.tend().await;
    let stale = &w.allocate;
    assert!(matches!(
        allocate(&w, stale, "room-0", "u0").await,
        Outcome::Allocated { .. }
    ));
    // AND another instance that fills the NLB; a room that waits for the pool function's
    // second NLB, and is allocated on it by that other instance
    let fresh = reconciler(&w.pools, &w.store, &w.elb);
    for i in 1..10 {
        allocate(&w, &fresh, &format!("room-{i}"), &format!("u{i}")).await;
    }
    let waiting = allocate(&w, &fresh, "room-10", "u10").await;
    assert!(matches!(waiting, Outcome::Pending(_)), "{waiting:?}");
    w.tend().await;
    let members = w
        .store
        .pool_record("default")
        .await
        .expect("the pool's record")
        .member_arns();
    assert_eq!(members.len(), 2, "the pool grew: {members:?}");
    let outcome = fresh
        .reconcile_service(&w.cluster, "games", "room-10", None)
        .await
        .expect("reconciles");
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    let second = &members[1];
    let claims = w.store.all_claims();
    let claim = claims
        .iter()
        .find(|c| c.owner.uid == "u10")
        .expect("room-10's claim");
    assert_eq!(&claim.nlb_arn, second, "room-10 is on the second NLB");

    // WHEN the first instance reconciles room-10 afresh (its object made again under its
    // name: no output annotation yet)
    w.cluster.put_service(opted_in("room-10", "u10"));
    let outcome = stale
        .reconcile_service(&w.cluster, "games", "room-10", None)
        .await
        .expect("reconciles");

    // THEN the address names the second NLB's DNS name, never `:PORT`
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    let dns = w
        .elb
        .nlb_dns_names(std::slice::from_ref(second))
        .await
        .expect("DNS names")
        .remove(second)
        .expect("the second NLB's DNS name");
    let notes = w
        .cluster
        .get("games", "room-10")
        .expect("room-10")
        .annotations;
    assert_eq!(
        notes.get(ADDRESS),
        Some(&format!("{dns}:{}", claim.port)),
        "{notes:?}"
    );
    assert!(
        notes
            .get(ALLOCATIONS)
            .is_some_and(|a| a.contains(&format!("\"dns\":\"{dns}\""))),
        "{notes:?}"
    );
}
