//! A Service holding every listener of an NLB releases within DynamoDB's 100 items per
//! transaction (moto enforces them, as DynamoDB does), and its finalizer comes off (issue 28,
//! item 8).

mod common;

use common::Stack;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::contract::protocol::ListenerProtocol;
use nlb_port_pool::contract::service_model::ListenerKey;
use nlb_port_pool::model::claims::{ClaimState, ClaimStore, MAX_LISTENERS_PER_CLAIM, NlbTerms};
use testbed::kube_fixtures::{self, PortSpec};

#[tokio::test]
async fn a_service_holding_all_50_listeners_of_an_nlb_is_released_and_let_go() {
    // GIVEN a Service with the most ports the door lets through (49), allocated on the one NLB
    let stack = Stack::new("bigrelease", 1, "30000-30099", 50).await;
    let ports: Vec<PortSpec> = (0..MAX_LISTENERS_PER_CLAIM as i32)
        .map(|i| {
            let name: &'static str = Box::leak(format!("p{i}").into_boxed_str());
            PortSpec::tcp(name, 7000 + i, 8000 + i)
        })
        .collect();
    stack
        .create_service(&kube_fixtures::opted_in_service(
            &stack.namespace,
            "big",
            &ports,
        ))
        .await;
    stack.changed("big").await.expect("allocates");
    assert_eq!(stack.listeners().await.len(), MAX_LISTENERS_PER_CLAIM);
    // AND a 50th claim of it on the NLB, as an earlier version made in a later run (it checked
    // no limit at the door): 50 claims, 101 items in one release transaction
    let store = DynamoClaimStore::new(stack.dynamodb.clone(), stack.table.clone());
    let uid = stack.uid("big").await;
    let claims = store.claims_of(&uid).await.expect("its claims");
    let mut extra = claims.first().expect("a claim").clone();
    extra.port = (30000..30100)
        .find(|p| !claims.iter().any(|c| c.port == *p))
        .expect("a free port");
    extra.key = ListenerKey::new(7049, ListenerProtocol::Tcp);
    extra.port_name = "p49".into();
    extra.state = ClaimState::Claimed;
    extra.listener_arn = None;
    extra.target_group_arn = None;
    // Let go as its run ended, as the others were.
    extra.token = claims[0].token.clone();
    extra.held_at = claims[0].held_at;
    let terms = NlbTerms {
        listener_quota: 50,
        made: false,
    };
    store
        .claim(std::slice::from_ref(&extra), terms)
        .await
        .expect("the earlier version's claim");

    // WHEN the Service is deleted and the release function runs
    stack.delete_service("big").await;
    stack.deleted("big", &uid).await.expect("releases");

    // THEN every claim, listener and target group is gone, and so is the Service (its
    // finalizer came off)
    assert_eq!(stack.claim_items().await, 0);
    assert!(stack.listeners().await.is_empty());
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert!(
        stack
            .services()
            .get_opt("big")
            .await
            .expect("read")
            .is_none(),
        "the finalizer still holds the Service"
    );
}
