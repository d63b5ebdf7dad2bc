//! `nlb.port-manager/network-disabled` on the bed (moto, kube-apiserver, the IAM gate): a
//! Service's targets out and back on the same listener and address; one pod of a per-pod
//! Service alone; an unreadable value on a pod. The sweep's thorough pass keeps a disabled
//! room as it is.

mod common;

use common::Stack;
use nlb_port_pool::contract::annotations::{ADDRESS, NETWORK_DISABLED, STATUS, TARGET};
use testbed::pod_fixtures;

const QUOTA: u32 = 50;

fn status(notes: &std::collections::BTreeMap<String, String>) -> &str {
    notes.get(STATUS).map(String::as_str).unwrap_or_default()
}

#[tokio::test]
async fn a_disabled_room_keeps_its_listener_and_address_with_no_target() {
    // GIVEN an allocated room with one ready pod
    let stack = Stack::new("net-disabled", 1, "30000-30099", QUOTA).await;
    stack.create_room("room").await;
    stack.room_pod("room", "10.0.1.10", true).await;
    stack.changed("room").await.expect("allocates");
    let before = stack.listeners().await;
    let address = stack.annotations("room").await[ADDRESS].clone();
    let group = stack.target_groups_of(&stack.uid("room").await).await;
    assert_eq!(stack.targets(&group[0]).await.len(), 1);

    // WHEN it is network-disabled
    stack
        .annotate("room", &[(NETWORK_DISABLED, Some("true"))])
        .await;
    stack.changed("room").await.expect("disables");

    // THEN its target is out, its listener and address kept, its status Disabled
    assert!(stack.targets(&group[0]).await.is_empty());
    assert_eq!(stack.listeners().await, before);
    let notes = stack.annotations("room").await;
    assert_eq!((status(&notes), &notes[ADDRESS]), ("Disabled", &address));
    assert!(
        stack
            .event_reasons("room")
            .await
            .contains(&"NetworkDisabled".to_owned())
    );

    // AND its endpoints changing, or a sweep, register nothing
    stack.room_pod("room", "10.0.1.11", true).await;
    stack.endpoints_changed("room").await.expect("syncs");
    stack.run_sweep().await;
    assert!(stack.targets(&group[0]).await.is_empty());
    assert_eq!(status(&stack.annotations("room").await), "Disabled");

    // WHEN the annotation goes
    stack.annotate("room", &[(NETWORK_DISABLED, None)]).await;
    stack.changed("room").await.expect("enables");

    // THEN its ready pod is its target again, on the same listener and address
    assert_eq!(stack.targets(&group[0]).await.len(), 1);
    assert_eq!(stack.listeners().await, before);
    let notes = stack.annotations("room").await;
    assert_eq!(notes[ADDRESS], address);
    assert_ne!(status(&notes), "Disabled");
}

#[tokio::test]
async fn one_pod_of_a_fleet_is_disabled_alone_and_enabled_again() {
    // GIVEN a per-pod Service with two allocated pods
    let stack = Stack::new("net-disabled-pod", 1, "30000-30099", QUOTA).await;
    stack.create_per_pod_room("room", "10").await;
    stack.scale_pods("room", 2).await;
    stack.endpoints_changed("room").await.expect("allocates");
    let (group0, group1) = (
        stack.pod_target_group("room-0").await,
        stack.pod_target_group("room-1").await,
    );
    let address = stack.pod_annotations("room-1").await[ADDRESS].clone();

    // WHEN room-1 is network-disabled (the forwarder's pod watch sends Endpoints Changed)
    let ns = &stack.namespace;
    pod_fixtures::annotate(&stack.admin, ns, "room-1", NETWORK_DISABLED, Some("true")).await;
    stack.endpoints_changed("room").await.expect("disables");

    // THEN only its target is out; it keeps its address, says Disabled, has no target noted
    assert!(stack.targets(&group1).await.is_empty());
    assert_eq!(stack.targets(&group0).await.len(), 1);
    let notes = stack.pod_annotations("room-1").await;
    assert_eq!((status(&notes), &notes[ADDRESS]), ("Disabled", &address));
    assert!(!notes.contains_key(TARGET));
    let summary = stack.pods_summary("room").await;
    assert_eq!((summary.allocated, summary.disabled), (2, 1));

    // WHEN the value is unreadable: an error on the pod, nothing changes
    pod_fixtures::annotate(&stack.admin, ns, "room-1", NETWORK_DISABLED, Some("yes")).await;
    stack.endpoints_changed("room").await.expect("rejects");
    let notes = stack.pod_annotations("room-1").await;
    assert!(status(&notes).starts_with("Error: annotation"), "{notes:?}");
    assert!(stack.targets(&group1).await.is_empty());

    // WHEN the annotation goes
    pod_fixtures::annotate(&stack.admin, ns, "room-1", NETWORK_DISABLED, None).await;
    stack.endpoints_changed("room").await.expect("enables");

    // THEN its target is back on the same address
    assert_eq!(stack.targets(&group1).await.len(), 1);
    let notes = stack.pod_annotations("room-1").await;
    assert_eq!(notes[ADDRESS], address);
    assert!(notes.contains_key(TARGET));
}
