//! Per-pod mode on the bed (moto, kube-apiserver, the IAM gate): pods scaled 0 -> 200 -> 100
//! -> 0, a StatefulSet pod made again keeps its port, a pod flapping NotReady keeps its port,
//! switching modes, and the readiness gate set only once the target is healthy. The bed has
//! no kubelet: tests write the pods' status and the EndpointSlices with `targetRef`s.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::Stack;
use common::pods::run_reachable;
use nlb_port_pool::annotations::{ADDRESS, PODS, STATUS, TARGET};
use testbed::aws_rules::HealthDelay;
use testbed::fault_proxy::{FaultPlan, FaultProxy};
use testbed::{Bed, pod_fixtures};

/// Listeners an NLB of the stack takes.
const QUOTA: u32 = 50;

/// Every pod's address, by pod.
async fn addresses(stack: &Stack) -> Vec<(String, String)> {
    stack
        .pods()
        .await
        .into_iter()
        .filter_map(|(name, p)| {
            let a = p.metadata.annotations?.get(ADDRESS)?.clone();
            Some((name, a))
        })
        .collect()
}

async fn assert_invariants(stack: &Stack) {
    let breaches = stack
        .invariant_breaches(std::slice::from_ref(&stack.namespace), QUOTA as usize)
        .await;
    assert!(breaches.is_empty(), "invariants broken: {breaches:#?}");
}

#[tokio::test]
async fn pods_scale_from_0_to_200_to_100_to_0_each_with_its_own_port() {
    // GIVEN a per-pod Service (grace 0: a pod gone is released at once) and 4 NLBs of 50
    let stack = Stack::new("per-pod-scale", 4, "30000-30999", QUOTA).await;
    stack.create_per_pod_room("room", "0").await;
    stack.changed("room").await.expect("no pods yet");

    // WHEN 200 pods come
    stack.scale_pods("room", 200).await;
    let summary = stack.endpoints_changed("room").await.expect("allocates");

    // THEN each has its own address: 200 listeners over the 4 NLBs, no invariant broken
    assert!(summary.outcome.contains("allocated: 200"), "{summary:?}");
    let all = addresses(&stack).await;
    assert_eq!(all.len(), 200);
    let distinct: BTreeSet<&String> = all.iter().map(|(_, a)| a).collect();
    assert_eq!(distinct.len(), 200, "an address given twice");
    assert_eq!(stack.listeners().await.len(), 200);
    assert_invariants(&stack).await;
    let summary = stack.annotations("room").await;
    assert!(
        summary
            .get(PODS)
            .is_some_and(|p| p.contains("\"allocated\":200")),
        "{summary:?}"
    );

    // WHEN half go
    stack.scale_pods("room", 100).await;
    stack.endpoints_changed("room").await.expect("releases");

    // THEN their listeners went; the others kept their addresses
    assert_eq!(stack.listeners().await.len(), 100);
    let kept = addresses(&stack).await;
    assert!(kept.iter().all(|k| all.contains(k)), "an address moved");
    assert_invariants(&stack).await;

    // WHEN all go, and the Service is deleted
    stack.scale_pods("room", 0).await;
    stack.endpoints_changed("room").await.expect("releases");
    assert!(stack.listeners().await.is_empty());
    let uid = stack.uid("room").await;
    stack.delete_service("room").await;
    stack.deleted("room", &uid).await.expect("released");

    // THEN nothing is left
    assert_eq!(stack.claim_items().await, 0);
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_invariants(&stack).await;
}

#[tokio::test]
async fn a_statefulset_pod_made_again_keeps_its_port_and_a_flapping_pod_too() {
    // GIVEN two allocated pods, grace 60 s
    let stack = Stack::new("per-pod-stable", 1, "30000-30099", QUOTA).await;
    stack.create_per_pod_room("room", "60").await;
    stack.scale_pods("room", 2).await;
    stack.endpoints_changed("room").await.expect("allocates");
    let before = addresses(&stack).await;

    // WHEN room-0 is deleted and made again under its name, with another IP
    pod_fixtures::delete_pod(&stack.admin, &stack.namespace, "room-0").await;
    stack
        .put_pod_slice("room", &[("room-1", &common::pods::pod_ip(1), true)])
        .await;
    stack.endpoints_changed("room").await.expect("leaving");
    pod_fixtures::run_pod(
        &stack.admin,
        &stack.namespace,
        "room-0",
        "room",
        false,
        ("10.20.9.9", true, true),
    )
    .await;
    stack
        .put_pod_slice(
            "room",
            &[
                ("room-0", "10.20.9.9", true),
                ("room-1", &common::pods::pod_ip(1), true),
            ],
        )
        .await;
    stack.endpoints_changed("room").await.expect("back");

    // THEN it has its old address, its target its new IP
    assert_eq!(addresses(&stack).await, before);
    let ann = stack.pod_annotations("room-0").await;
    assert_eq!(ann.get(TARGET).map(String::as_str), Some("10.20.9.9"));

    // WHEN room-1 turns NotReady, then ready again
    stack
        .put_pod_slice(
            "room",
            &[
                ("room-0", "10.20.9.9", true),
                ("room-1", &common::pods::pod_ip(1), false),
            ],
        )
        .await;
    stack.endpoints_changed("room").await.expect("not ready");
    assert_eq!(stack.pod_annotations("room-1").await.get(TARGET), None);
    stack.scale_pods("room", 2).await;
    stack.endpoints_changed("room").await.expect("ready");

    // THEN it kept its port throughout
    let after = addresses(&stack).await;
    assert_eq!(after, before);
    assert_invariants(&stack).await;
}

#[tokio::test]
async fn switching_a_service_between_modes_moves_its_listeners() {
    let stack = Stack::new("per-pod-switch", 1, "30000-30099", QUOTA).await;
    stack.create_per_pod_room("room", "10").await;
    stack.scale_pods("room", 3).await;
    stack.changed("room").await.expect("per-pod");
    assert_eq!(stack.listeners().await.len(), 3);

    stack.set_mode("room", "per-service").await;
    stack.changed("room").await.expect("per-service");
    assert_eq!(stack.listeners().await.len(), 1);
    assert!(
        addresses(&stack).await.is_empty(),
        "the pods keep addresses"
    );
    assert!(stack.annotations("room").await.contains_key(ADDRESS));
    assert_invariants(&stack).await;

    stack.set_mode("room", "per-pod").await;
    stack.changed("room").await.expect("per-pod again");
    assert_eq!(stack.listeners().await.len(), 3);
    assert!(!stack.annotations("room").await.contains_key(ADDRESS));
    assert_invariants(&stack).await;
}

#[tokio::test]
async fn the_readiness_gate_turns_true_only_once_the_target_is_healthy() {
    // GIVEN functions that see AWS's health delay (targets `initial` for 4 s)
    let bed = Bed::get();
    let stack = Stack::new("per-pod-gate", 1, "30000-30099", QUOTA).await;
    let delay = Arc::new(HealthDelay::new(Duration::from_secs(4)));
    let proxy =
        FaultProxy::start_with(bed.aws_endpoint(), FaultPlan::none(), vec![delay.clone()]).await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    let mut stack = stack.with_function_sdk(&sdk);
    let reachable = stack.reachable_deps(&sdk);
    stack.create_per_pod_room("room", "10").await;

    // AND a pod declaring the gate: containers ready, not Ready (its gate is false)
    pod_fixtures::run_pod(
        &stack.admin,
        &stack.namespace,
        "room-0",
        "room",
        true,
        ("10.20.0.1", true, false),
    )
    .await;
    stack
        .put_pod_slice("room", &[("room-0", "10.20.0.1", false)])
        .await;

    // WHEN its endpoint is synced
    stack.endpoints_changed("room").await.expect("allocates");

    // THEN it has its address and its target is registered, status Allocated, gate not set
    let ann = stack.pod_annotations("room-0").await;
    assert!(ann.contains_key(ADDRESS));
    assert_eq!(ann.get(TARGET).map(String::as_str), Some("10.20.0.1"));
    assert_eq!(ann.get(STATUS).map(String::as_str), Some("Allocated"));
    // (its first check is due a check period after the registration)
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let report = run_reachable(&reachable).await;
    assert_eq!(report.checked, 1, "{report:?}");
    assert_eq!(report.gates_set, 0, "{report:?}");
    assert!(!pod_fixtures::reachable(&stack.admin, &stack.namespace, "room-0").await);
    assert!(
        delay.reported.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the target was reported initial"
    );

    // WHEN the health checks pass
    tokio::time::sleep(Duration::from_secs(5)).await;
    let report = run_reachable(&reachable).await;

    // THEN the pod is Ready and its condition True, set by the functions' identity
    assert_eq!((report.ready, report.gates_set), (1, 1), "{report:?}");
    assert!(pod_fixtures::reachable(&stack.admin, &stack.namespace, "room-0").await);
    let ann = stack.pod_annotations("room-0").await;
    assert_eq!(ann.get(STATUS).map(String::as_str), Some("Ready"));
    assert!(
        stack
            .annotations("room")
            .await
            .get(PODS)
            .is_some_and(|p| p.contains("\"ready\":1")),
    );
}
