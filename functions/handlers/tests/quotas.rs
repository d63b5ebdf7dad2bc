//! AWS's target group and target quotas, which moto does not enforce, given to the functions
//! through the fault proxy's rules (testbed::aws_rules::{TargetGroupQuota, TargetQuota}, AWS's
//! error codes): the Service is `Pending` with a reason naming the quota, a Warning Event says
//! so, nothing is leaked, and the Service is allocated once another room releases.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::Stack;
use nlb_port_pool::contract::annotations::STATUS;
use testbed::Bed;
use testbed::aws_rules::{ElbRule, TargetGroupQuota, TargetQuota};
use testbed::fault_proxy::{FaultPlan, FaultProxy};

/// A stack whose functions talk to ELBv2 through a proxy with `rule`.
async fn stack_with(prefix: &str, rule: Arc<dyn ElbRule>) -> (Stack, FaultProxy) {
    let stack = Stack::new(prefix, 1, "30000-30099", 50).await;
    let proxy =
        FaultProxy::start_with(Bed::get().aws_endpoint(), FaultPlan::none(), vec![rule]).await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    (stack.with_function_sdk(&sdk), proxy)
}

async fn status(stack: &Stack, name: &str) -> String {
    stack
        .annotations(name)
        .await
        .get(STATUS)
        .cloned()
        .unwrap_or_default()
}

/// Opted-in room `name` with a ready pod at `ip`, allocated (or not) by one Service Changed.
async fn room(stack: &Stack, name: &str, ip: &str) {
    stack.create_room(name).await;
    stack.room_pod(name, ip, true).await;
    stack
        .changed(name)
        .await
        .expect("a named outcome, never a failed function");
}

/// Deletes room `name` and runs the release function, as the forwarder's event would.
async fn delete_room(stack: &Stack, name: &str) {
    let uid = stack.uid(name).await;
    stack.delete_service(name).await;
    stack.deleted(name, &uid).await.expect("releases");
}

fn has_warning(events: &[(String, String, String)], reason: &str) -> bool {
    events.iter().any(|(t, r, _)| t == "Warning" && r == reason)
}

#[tokio::test]
async fn the_target_group_quota_leaves_the_service_pending_until_another_room_releases() {
    // GIVEN an account with room for one target group (AWS: TooManyTargetGroups past the
    // quota; moto has none), taken by a room
    let quota = Arc::new(TargetGroupQuota::new(1));
    let (stack, _proxy) = stack_with("tgquota", quota.clone()).await;
    room(&stack, "other", "10.4.0.9").await;
    assert_eq!(status(&stack, "other").await, "Allocated");

    // WHEN another Service is allocated
    room(&stack, "room", "10.4.0.1").await;

    // THEN AWS refused its target group, and it is Pending naming the quota, with a Warning
    // Event
    assert!(quota.refused.load(Ordering::Relaxed) > 0);
    let st = status(&stack, "room").await;
    assert!(
        st.starts_with("Pending: AWS refused a target group"),
        "{st}"
    );
    assert!(st.contains("L-B22855CB"), "{st}");
    let events = stack.events_of("room").await;
    assert!(has_warning(&events, "TargetGroupQuota"), "{events:?}");
    // AND nothing of it is left: no claim, no target group, no listener, no finalizer
    let uid = stack.uid("room").await;
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_eq!(stack.listeners().await.len(), 1, "the other room's only");
    assert_eq!(
        stack.claim_items().await,
        3,
        "the other room's only: its port item, owner record and NLB item"
    );
    let svc = stack.services().get("room").await.expect("the Service");
    assert!(svc.metadata.finalizers.unwrap_or_default().is_empty());

    // WHEN the other room is deleted and the Service retried (the sweep retries Pending ones)
    delete_room(&stack, "other").await;
    stack.run_sweep().await;

    // THEN it is allocated
    assert_eq!(status(&stack, "room").await, "Allocated");
    assert_eq!(stack.target_groups_of(&uid).await.len(), 1);
}

#[tokio::test]
async fn the_target_quota_leaves_the_service_pending_with_its_listener_kept() {
    // GIVEN an NLB with room for one target (AWS: TooManyTargets past the quota), taken by a
    // room
    let quota = Arc::new(TargetQuota::new(1));
    let (stack, _proxy) = stack_with("tquota", quota.clone()).await;
    room(&stack, "other", "10.4.0.9").await;

    // WHEN another Service is allocated
    room(&stack, "room", "10.4.0.1").await;

    // THEN AWS refused its target, and it is Pending naming the quota, with a Warning Event
    assert!(quota.refused.load(Ordering::Relaxed) > 0);
    let st = status(&stack, "room").await;
    assert!(st.starts_with("Pending: AWS refused targets"), "{st}");
    assert!(st.contains("L-B211E961"), "{st}");
    let events = stack.events_of("room").await;
    assert!(has_warning(&events, "TargetQuota"), "{events:?}");
    // AND its listener is kept, forwarding to its own target group (no listener without its
    // group), its claim kept and the finalizer holding them
    let uid = stack.uid("room").await;
    let groups = stack.target_groups_of(&uid).await;
    assert_eq!(groups.len(), 1);
    let listeners = stack.listeners().await;
    assert_eq!(listeners.len(), 2);
    assert!(listeners.iter().any(|(_, _, tg, _)| tg == &groups[0]));
    assert!(stack.targets(&groups[0]).await.is_empty());
    let svc = stack.services().get("room").await.expect("the Service");
    assert!(!svc.metadata.finalizers.unwrap_or_default().is_empty());

    // WHEN the other room is deleted and the Service retried
    delete_room(&stack, "other").await;
    stack.run_sweep().await;

    // THEN its target is registered
    assert_eq!(
        stack
            .targets(&groups[0])
            .await
            .into_iter()
            .collect::<Vec<_>>(),
        ["10.4.0.1:8000"]
    );
    assert_ne!(status(&stack, "room").await, st);
}
