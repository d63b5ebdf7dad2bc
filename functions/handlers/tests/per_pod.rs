//! Per-pod mode on the bed (moto, kube-apiserver, the IAM gate): pods scaled 0 -> 200 -> 100
//! -> 0, a StatefulSet pod made again keeps its port (its old IP deregistered at once), a
//! terminating pod loses its target, a pod flapping NotReady keeps its port, switching modes,
//! the readiness gate set only once the target is healthy, and two per-pod Services over the
//! same pods. Tests write the pods' status and the EndpointSlices with `targetRef`s (hand-made
//! pods no kubelet runs).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::Stack;
use common::pods::{pod_ip, run_reachable};
use nlb_port_pool::contract::annotations::{ADDRESS, PODS, SERVICE, STATUS, TARGET, service_ref};
use testbed::aws_rules::HealthDelay;
use testbed::fault_proxy::{FaultPlan, FaultProxy};
use testbed::kube_fixtures::PortSpec;
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

/// `ip:8000` of each of `ips`, as target sets read.
fn targets(ips: &[&str]) -> BTreeSet<String> {
    ips.iter().map(|ip| format!("{ip}:8000")).collect()
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
    let group = stack.pod_target_group("room-0").await;
    assert_eq!(stack.targets(&group).await, targets(&[&pod_ip(0)]));

    // WHEN room-0 is deleted
    pod_fixtures::delete_pod(&stack.admin, &stack.namespace, "room-0").await;
    stack
        .put_pod_slice("room", &[("room-1", &pod_ip(1), true)])
        .await;
    stack.endpoints_changed("room").await.expect("leaving");

    // THEN its target is deregistered in that run (its IP may soon be another pod's), while
    // its listener and target group are kept for the grace
    assert!(stack.targets(&group).await.is_empty());
    assert_eq!(stack.listeners().await.len(), 2);

    // WHEN it is made again under its name, with another IP
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
            &[("room-0", "10.20.9.9", true), ("room-1", &pod_ip(1), true)],
        )
        .await;
    stack.endpoints_changed("room").await.expect("back");

    // THEN it has its old address, its target its new IP only
    assert_eq!(addresses(&stack).await, before);
    let ann = stack.pod_annotations("room-0").await;
    assert_eq!(ann.get(TARGET).map(String::as_str), Some("10.20.9.9"));
    assert_eq!(stack.targets(&group).await, targets(&["10.20.9.9"]));

    // WHEN room-1 turns NotReady, then ready again
    stack
        .put_pod_slice(
            "room",
            &[("room-0", "10.20.9.9", true), ("room-1", &pod_ip(1), false)],
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
async fn a_terminating_pod_loses_its_target_at_once_and_keeps_its_port() {
    // GIVEN an allocated pod, grace 10 s
    let stack = Stack::new("per-pod-terminating", 1, "30000-30099", QUOTA).await;
    stack.create_per_pod_room("room", "10").await;
    stack.scale_pods("room", 1).await;
    stack.endpoints_changed("room").await.expect("allocates");
    let before = addresses(&stack).await;
    let group = stack.pod_target_group("room-0").await;

    // WHEN it starts terminating, its endpoint still listed ready (the slice lags)
    stack.terminate_pod("room-0").await;
    stack.endpoints_changed("room").await.expect("terminating");

    // THEN its target is deregistered in that run; it keeps its listener and address
    assert!(stack.targets(&group).await.is_empty());
    assert_eq!(stack.listeners().await.len(), 1);
    assert_eq!(addresses(&stack).await, before);

    // WHEN it is gone, and made again under its name with another IP
    stack.finish_terminating("room-0").await;
    stack.put_pod_slice("room", &[]).await;
    stack.endpoints_changed("room").await.expect("gone");
    pod_fixtures::run_pod(
        &stack.admin,
        &stack.namespace,
        "room-0",
        "room",
        false,
        ("10.20.7.7", true, true),
    )
    .await;
    stack
        .put_pod_slice("room", &[("room-0", "10.20.7.7", true)])
        .await;
    stack.endpoints_changed("room").await.expect("back");

    // THEN its address is the same, only its new IP registered
    assert_eq!(addresses(&stack).await, before);
    assert_eq!(stack.targets(&group).await, targets(&["10.20.7.7"]));
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

#[tokio::test]
async fn per_pod_services_over_the_same_pods_leave_the_pods_outputs_to_the_first() {
    // GIVEN pods room-0 and room-1 carrying per-pod Service room's outputs
    let stack = Stack::new("per-pod-shared", 1, "30000-30099", QUOTA).await;
    stack.create_per_pod_room("room", "10").await;
    stack.scale_pods("room", 2).await;
    stack
        .endpoints_changed("room")
        .await
        .expect("room allocates");
    let room = stack.pod_outputs().await;
    let room_ref = service_ref("room", &stack.uid("room").await);
    assert!(
        room.values().all(|o| o.get(SERVICE) == Some(&room_ref)),
        "{room:?}"
    );
    let (ip0, ip1) = (pod_ip(0), pod_ip(1));
    let listed = [
        ("room-0", ip0.as_str(), true),
        ("room-1", ip1.as_str(), true),
    ];

    // WHEN a UDP per-pod Service over the same pods comes, and its endpoints are synced
    let udp = PortSpec::udp("game", 7777, 8000);
    stack
        .create_per_pod_service("room-udp", "room", "10", udp)
        .await;
    stack.put_pod_slice("room-udp", &listed).await;
    stack.changed("room-udp").await.expect("room-udp allocates");
    stack.endpoints_changed("room-udp").await.expect("synced");

    // THEN it has a listener per pod, each pod its target, but the pods' outputs are room's
    assert_eq!(stack.listeners().await.len(), 4);
    let udp_uid = stack.uid("room-udp").await;
    assert_eq!(stack.all_targets_of(&udp_uid).await, targets(&[&ip0, &ip1]));
    assert_eq!(stack.pod_outputs().await, room);
    // AND its own summary lists its address for each; one Warning names room
    let shared = stack.pods_summary("room-udp").await.shared;
    assert_eq!(shared.len(), 2, "{shared:?}");
    let warned: Vec<String> = stack
        .events_of("room-udp")
        .await
        .into_iter()
        .filter(|(kind, reason, _)| kind == "Warning" && reason == "PodsShared")
        .map(|(_, _, note)| note)
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("/room,"), "{}", warned[0]);

    // WHEN room-udp is deleted
    stack.delete_service("room-udp").await;
    stack.deleted("room-udp", &udp_uid).await.expect("released");

    // THEN the pods keep room's outputs
    assert_eq!(stack.pod_outputs().await, room);

    // WHEN another per-pod Service over them comes, and then room is deleted
    let voice = PortSpec::udp("voice", 7778, 8000);
    stack
        .create_per_pod_service("room-voice", "room", "10", voice)
        .await;
    stack.put_pod_slice("room-voice", &listed).await;
    stack
        .changed("room-voice")
        .await
        .expect("room-voice allocates");
    let theirs = stack.pods_summary("room-voice").await.shared;
    let room_uid = stack.uid("room").await;
    stack.delete_service("room").await;
    stack.deleted("room", &room_uid).await.expect("released");

    // THEN room's release clears the pods' outputs
    assert!(stack.pod_outputs().await.values().all(BTreeMap::is_empty));

    // AND room-voice's next run takes them, with the addresses its summary listed
    stack
        .endpoints_changed("room-voice")
        .await
        .expect("takes over");
    let voice_ref = service_ref("room-voice", &stack.uid("room-voice").await);
    for (pod, outputs) in stack.pod_outputs().await {
        assert_eq!(outputs.get(SERVICE), Some(&voice_ref), "{pod}");
        assert_eq!(
            outputs.get(ADDRESS),
            theirs.get(&pod).map(|s| &s.address),
            "{pod}"
        );
    }
    assert!(stack.pods_summary("room-voice").await.shared.is_empty());
    assert_invariants(&stack).await;
}
