//! AWS's IAM answers the functions take in stride, on the bed (the IAM gate answers as AWS):
//! `AccessDenied` on a listener or target group another run just deleted (AWS evaluates the
//! tag conditions of a gone resource against no tags), and on one so new that IAM has not
//! seen its tags yet (the fault proxy's `TagPropagationDelay`).

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::Stack;
use testbed::Bed;
use testbed::aws_rules::{GoneBeforeDelete, TagPropagationDelay};
use testbed::fault_proxy::{FaultPlan, FaultProxy};

/// Listeners an NLB of the stack takes.
const QUOTA: u32 = 50;

/// An allocated room `name` with one ready endpoint at `ip`; its uid.
async fn allocated_room(stack: &Stack, name: &str, ip: &str) -> String {
    stack.create_room(name).await;
    stack.room_pod(name, ip, true).await;
    stack.changed(name).await.expect("allocates");
    stack.uid(name).await
}

async fn assert_released(stack: &Stack, name: &str) {
    assert!(stack.listeners().await.is_empty(), "a listener is left");
    assert_eq!(stack.claim_items().await, 0, "a claim is left");
    let left = stack.services().get_opt(name).await.expect("reading");
    assert!(left.is_none(), "{name} is still there: {left:?}");
}

#[tokio::test]
async fn a_release_racing_the_sweep_over_the_same_listener_converges() {
    // GIVEN an allocated room whose Service is being deleted
    let stack = Stack::new("iam-race", 1, "30000-30099", QUOTA).await;
    let uid = allocated_room(&stack, "room", "10.9.0.1").await;
    stack.delete_service("room").await;

    // WHEN its release and a sweep run at once, both releasing it
    let (released, swept) = tokio::join!(stack.deleted("room", &uid), stack.run_sweep());

    // THEN neither fails but as retryable (the other run held the claims), a retry as
    // EventBridge's converges (a delete denied on what the other deleted is done), and nothing
    // is left
    if let Err(e) = released {
        let retryable = e
            .downcast_ref::<nlb_port_pool::reconcile::Error>()
            .is_some_and(nlb_port_pool::reconcile::Error::is_retryable);
        assert!(retryable, "the release failed for good: {e}");
        stack
            .deleted("room", &uid)
            .await
            .expect("the retried release succeeds");
    }
    if swept.failures > 0 {
        // The release held the Service: the next scheduled run finds nothing left to fail on.
        let again = stack.run_sweep().await;
        assert_eq!(again.failures, 0, "{again:?}");
    }
    assert_released(&stack, "room").await;
}

#[tokio::test]
async fn a_delete_denied_on_a_listener_another_run_deleted_is_done() {
    // GIVEN an allocated room, deleted; and another run that deletes its listener and target
    // group between the release's Describe and its Delete
    let bed = Bed::get();
    let stack = Stack::new("iam-gone", 1, "30000-30099", QUOTA).await;
    let uid = allocated_room(&stack, "room", "10.9.0.2").await;
    stack.delete_service("room").await;
    let other_run = Arc::new(GoneBeforeDelete::new(stack.elb.clone()));
    let proxy = FaultProxy::start_with(
        bed.aws_endpoint(),
        FaultPlan::none(),
        vec![other_run.clone()],
    )
    .await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    let stack = stack.with_function_sdk(&sdk);

    // WHEN the release runs
    stack
        .deleted("room", &uid)
        .await
        .expect("the release succeeds");

    // THEN its deletes met resources already gone, which the gate answered AccessDenied as
    // AWS does (no tags to judge), and the release took that, a Describe showing them gone,
    // as done
    assert_eq!(other_run.deleted.load(Ordering::Relaxed), 2);
    let gone = stack.gate.gone().await.expect("the gate's gone answers");
    for action in ["DeleteListener", "DeleteTargetGroup"] {
        assert!(
            gone.iter().any(|g| g.contains(action)),
            "no {action} on a gone resource was answered AccessDenied: {gone:?}"
        );
    }
    assert_released(&stack, "room").await;
}

#[tokio::test]
async fn calls_denied_while_a_new_resources_tags_propagate_are_tried_again() {
    // GIVEN functions that see IAM deny the first tag-conditioned call on each resource made
    // in the last 20 s
    let bed = Bed::get();
    let stack = Stack::new("iam-tags", 1, "30000-30099", QUOTA).await;
    let delay = Arc::new(TagPropagationDelay::new(Duration::from_secs(20)));
    let proxy =
        FaultProxy::start_with(bed.aws_endpoint(), FaultPlan::none(), vec![delay.clone()]).await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    let stack = stack.with_function_sdk(&sdk);

    // WHEN a room is allocated (its targets registered on the group just made)
    let uid = allocated_room(&stack, "room", "10.9.0.3").await;

    // THEN it is, its target registered after the denial
    let denied_at_allocation = delay.denied.load(Ordering::Relaxed);
    assert!(denied_at_allocation >= 1, "nothing was denied");
    let (_, _, group, _) = stack.listeners().await.remove(0);
    assert_eq!(
        stack.targets(&group).await,
        ["10.9.0.3:8000".to_owned()].into()
    );

    // AND WHEN it is released at once (its listener still new)
    stack.delete_service("room").await;
    stack
        .deleted("room", &uid)
        .await
        .expect("the release succeeds");

    // THEN its deletes were denied once each too, tried again, and nothing is left
    assert!(
        delay.denied.load(Ordering::Relaxed) > denied_at_allocation,
        "the release met no denial"
    );
    assert_released(&stack, "room").await;
}

#[tokio::test]
async fn an_event_the_bus_refuses_entry_by_entry_fails_the_signal_naming_why() {
    use nlb_port_pool::reconcile::GrowthSignal as _;
    // GIVEN the functions' signal sent as a role that may put events on the bus, but not the
    // functions' source (the forwarder's): AWS refuses such an entry with HTTP 200
    let bed = Bed::get();
    let bus = testbed::unique_name("iam-refused");
    let gate = testbed::iam_gate::GateStack::for_forwarder(bed, &bus, "bed")
        .await
        .expect("registering the stack");
    let mut events = aws_sdk_eventbridge::config::Builder::from(&gate.sdk_config(bed).await);
    events.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name("forwarder"));
    let client = aws_sdk_eventbridge::Client::from_conf(events.build());
    let signal = handlers::EventBridgeSignal::new(client, &bus, "forwarder");

    // WHEN it signals the reachability function
    let sent = signal.checks_due("bed").await;

    // THEN the refusal is no silent success: the signal fails naming the event, and the gate
    // refused that entry as AWS would (NotAuthorizedForSourceException)
    let err = sent.expect_err("the entry was refused");
    assert!(
        err.contains("PutEvents refused the Targets Registered event"),
        "{err}"
    );
    let denials = gate.denials().await.expect("the gate's denials");
    assert!(
        denials
            .iter()
            .any(|d| d.missing.contains("NotAuthorizedForSourceException")),
        "{denials:?}"
    );
}
