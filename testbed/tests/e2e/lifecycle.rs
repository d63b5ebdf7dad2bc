//! A Service's whole life through the chain: kubectl -> kube-apiserver -> forwarder -> bus ->
//! rule -> queue -> delivery loop -> functions (cargo lambda watch) -> moto and the Service.

use std::time::Duration;

use nlb_port_pool::contract::annotations::{
    ADDRESS, ALLOCATED_PORT, FINALIZER, STATUS, TARGET_GROUP_ARN,
};

use crate::support::{TestStack, kubectl, room_manifest};

#[tokio::test]
async fn a_service_gets_a_port_follows_its_endpoints_and_goes_only_after_release() {
    // GIVEN a local stack managing this test's namespace
    let t = TestStack::start("e2e-life", true).await;
    let ns = t.namespace.clone();

    // WHEN an opted-in Service with two ready endpoints is applied with kubectl
    let two = [("10.2.0.1", true), ("10.2.0.2", true)];
    kubectl(
        &["apply", "-f", "-"],
        Some(&room_manifest(&ns, "room", &two)),
    );

    // THEN it carries its address and port, and moto has its listener and targets
    let svc = t
        .wait_for_annotation("room", ALLOCATED_PORT, Duration::from_secs(120))
        .await;
    let notes = svc.metadata.annotations.clone().unwrap_or_default();
    let port: i32 = notes[ALLOCATED_PORT].parse().expect("a port number");
    assert!((30000..=32767).contains(&port), "{port}");
    let dns_names: Vec<&str> = t
        .stack()
        .aws
        .nlbs
        .iter()
        .map(|n| n.dns_name.as_str())
        .collect();
    assert!(
        dns_names
            .iter()
            .any(|d| notes[ADDRESS] == format!("{d}:{port}")),
        "address {} is not one of {dns_names:?} with port {port}",
        notes[ADDRESS]
    );
    assert_eq!(notes[STATUS], "Allocated");
    let finalizers = svc.metadata.finalizers.clone().unwrap_or_default();
    assert!(finalizers.iter().any(|f| f == FINALIZER), "{finalizers:?}");
    let target_group = notes[TARGET_GROUP_ARN].clone();
    assert_eq!(t.listeners().await, vec![(port, target_group.clone())]);
    t.wait_for_targets(&target_group, &["10.2.0.1:7777", "10.2.0.2:7777"])
        .await;

    // WHEN the endpoints scale up (one more ready, one starting), THEN the targets follow
    let four = [
        ("10.2.0.1", true),
        ("10.2.0.2", true),
        ("10.2.0.3", true),
        ("10.2.0.4", false),
    ];
    kubectl(
        &["apply", "-f", "-"],
        Some(&room_manifest(&ns, "room", &four)),
    );
    t.wait_for_targets(
        &target_group,
        &["10.2.0.1:7777", "10.2.0.2:7777", "10.2.0.3:7777"],
    )
    .await;

    // WHEN they scale down to one, THEN so do the targets
    let one = [("10.2.0.3", true)];
    kubectl(
        &["apply", "-f", "-"],
        Some(&room_manifest(&ns, "room", &one)),
    );
    t.wait_for_targets(&target_group, &["10.2.0.3:7777"]).await;

    // WHEN the Service is deleted with kubectl
    kubectl(
        &["delete", "service", "room", "-n", &ns, "--wait=false"],
        None,
    );

    // THEN it stays, held by the finalizer, until the release is done, and then it is gone
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while let Some(svc) = t.services().get_opt("room").await.expect("reading") {
        assert!(svc.metadata.deletion_timestamp.is_some(), "{svc:?}");
        let finalizers = svc.metadata.finalizers.clone().unwrap_or_default();
        assert!(finalizers.iter().any(|f| f == FINALIZER), "{finalizers:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Service is still there after 120 s; {}",
            t.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and by then nothing is left in moto or DynamoDB
    assert_eq!(t.listeners().await, vec![], "listeners left");
    assert_eq!(
        t.target_groups().await,
        Vec::<String>::new(),
        "target groups left"
    );
    assert_eq!(t.claim_items().await, 0, "claims left");

    // AND no delivery failed for good
    let stats = &t.stack().delivery.as_ref().expect("delivery").stats;
    assert_eq!(
        stats
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(t.dead_letters().await, 0);
    t.stop().await;
}
