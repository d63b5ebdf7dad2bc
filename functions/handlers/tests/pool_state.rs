//! The state of an NLB's item in the claims table: only an `active` NLB (or a pre-made one,
//! whose item has no state) takes claims, checked by DynamoDB in the claim transaction.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::Stack;
use nlb_port_pool::adapters::dynamo::table::{NLB_META, PK, SK, nlb_pk};
use nlb_port_pool::contract::annotations::{ADDRESS, STATUS};

/// Sets the `state` of NLB `arn`'s item, as the pool's lifecycle would.
async fn set_state(stack: &Stack, arn: &str, state: &str) {
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key(PK, AttributeValue::S(nlb_pk(arn)))
        .key(SK, AttributeValue::S(NLB_META.to_owned()))
        .update_expression("SET #state = :state")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":state", AttributeValue::S(state.to_owned()))
        .send()
        .await
        .expect("setting the NLB item's state");
}

#[tokio::test]
async fn an_nlb_whose_item_is_not_active_takes_no_claim() {
    // GIVEN a pool of one NLB, being retired, and a warm function that has not read that yet
    // (its view of the pool is from before, with room)
    let stack = Stack::new("state", 1, "30000-30099", 50).await;
    stack.create_room("first").await;
    stack.changed("first").await.expect("allocates");
    set_state(&stack, &stack.nlbs[0].arn, "draining").await;

    // WHEN another Service is allocated
    stack.create_room("late").await;
    stack.changed("late").await.expect("reconciles");

    // THEN DynamoDB refused the claim the view chose there, and the Service waits
    let ann = stack.annotations("late").await;
    let status = ann.get(STATUS).cloned().unwrap_or_default();
    assert!(status.starts_with("Pending"), "{status}");
    assert!(!ann.contains_key(ADDRESS));
    assert_eq!(stack.listeners().await.len(), 1, "only the first Service's");
}
