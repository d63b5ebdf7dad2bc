//! A Service holding the most ports an NLB takes releases within DynamoDB's 100 items per
//! transaction, and its finalizer comes off (issue 28, item 8).

use super::Outcome;
use super::tests::{NLB_A, room_with_ports, world};
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::ListenerKey;
use crate::model::claims::{
    ClaimState, ClaimStore, MAX_LISTENERS_PER_CLAIM, NlbTerms, TRANSACTION_ITEMS,
};

#[tokio::test]
async fn a_service_holding_all_50_listeners_of_an_nlb_releases_and_lets_go() {
    // GIVEN a Service allocated with the most ports the door lets through (49), all on NLB A,
    // and a 50th claim of it on A, made by an earlier version in a later run (which checked
    // no limit): 50 claims on one NLB, 101 items in one release transaction
    let w = world(&[NLB_A], "30000-30099", 50);
    room_with_ports(&w, MAX_LISTENERS_PER_CLAIM as u16);
    let outcome = w.reconcile("room").await.expect("allocates");
    assert!(
        matches!(outcome, Outcome::Allocated { listeners: 49, .. }),
        "{outcome:?}"
    );
    let mut extra = w.store.all_claims().pop().expect("a claim");
    let used: Vec<u16> = w.store.all_claims().iter().map(|c| c.port).collect();
    extra.port = (30000..30100)
        .find(|p| !used.contains(p))
        .expect("a free port");
    extra.key = ListenerKey::new(7049, ListenerProtocol::Tcp);
    extra.port_name = "p49".into();
    extra.state = ClaimState::Claimed;
    extra.listener_arn = None;
    extra.target_group_arn = None;
    extra.token = String::new();
    extra.held_at = 0;
    let terms = NlbTerms {
        listener_quota: 50,
        made: false,
    };
    w.store
        .claim(std::slice::from_ref(&extra), terms)
        .await
        .expect("the earlier version's claim");
    assert_eq!(w.store.all_claims().len(), 50);

    // WHEN the Service is deleted and reconciled
    w.cluster.delete_service("games", "room");
    let outcome = w.reconcile("room").await.expect("releases");

    // THEN all 50 are released in transactions DynamoDB takes, nothing is left, and the
    // finalizer came off (the Service is gone)
    assert_eq!(outcome, Outcome::Released { listeners: 50 });
    let transactions = w.store.release_transactions();
    assert!(
        transactions.iter().all(|n| *n <= TRANSACTION_ITEMS),
        "{transactions:?}"
    );
    assert_eq!(
        transactions.iter().sum::<usize>(),
        2 * 50 + 2,
        "two transactions"
    );
    assert!(w.store.all_claims().is_empty(), "claims left");
    assert!(w.store.all_ports().is_empty(), "ports left");
    assert!(w.elb.listeners().is_empty(), "listeners left");
    assert!(w.elb.target_groups().is_empty(), "target groups left");
    assert!(w.cluster.get("games", "room").is_none(), "finalizer kept");
}
