//! Limits checked at the door: a Service asking for more listeners than one claim transaction
//! (DynamoDB's 100 items) or one NLB holds gets an `Error:` naming the limit, and nothing is
//! claimed or made.

use super::Outcome;
use super::tests::{NLB_A, room_with_ports, world};
use crate::contract::annotations::STATUS;
use crate::model::claims::MAX_LISTENERS_PER_CLAIM;

#[tokio::test]
async fn more_listeners_than_one_claim_transaction_holds_are_refused_at_the_door() {
    // GIVEN a Service with 50 ports, on a pool whose NLBs hold 50 listeners
    assert_eq!(MAX_LISTENERS_PER_CLAIM, 49);
    let w = world(&[NLB_A], "30000-30099", 50);
    room_with_ports(&w, 50);

    // WHEN it is reconciled
    let outcome = w.reconcile("room").await.expect("reconciles");

    // THEN it is an Error naming the limit, and nothing is claimed or made
    assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    let status = w.annotation("room", STATUS).unwrap_or_default();
    assert!(
        status.starts_with("Error:") && status.contains("at most 49"),
        "{status}"
    );
    assert!(w.store.all_claims().is_empty());
    assert!(w.elb.target_groups().is_empty());
}

#[tokio::test]
async fn more_listeners_than_one_nlb_holds_are_refused_and_the_most_that_fit_are_allocated() {
    // GIVEN a pool whose NLBs hold 10 listeners
    let w = world(&[NLB_A], "30000-30099", 10);
    room_with_ports(&w, 11);
    let outcome = w.reconcile("room").await.expect("reconciles");
    assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    let status = w.annotation("room", STATUS).unwrap_or_default();
    assert!(status.contains("at most 10"), "{status}");

    // AND 10 ports fit
    room_with_ports(&w, 10);
    let outcome = w.reconcile("room").await.expect("reconciles");
    assert!(
        matches!(outcome, Outcome::Allocated { listeners: 10, .. }),
        "{outcome:?}"
    );
}
