//! Services at the edges of what the API server accepts, against the test bed: 63-character
//! names, unicode and oversized annotation values, and many ports on one Service.

mod common;

use common::Stack;
use nlb_port_pool::contract::annotations::{self, AUTO_ASSIGN, STATUS};
use testbed::kube_fixtures::{PortSpec, opted_in_service, service};

/// `count` TCP ports, 7000 upward, each named `p<i>`.
fn many_ports(count: usize) -> Vec<PortSpec> {
    (0..count)
        .map(|i| {
            // PortSpec names are 'static; a test's handful of them may live as long.
            let name: &'static str = Box::leak(format!("p{i}").into_boxed_str());
            let port = 7000 + i32::try_from(i).expect("a small count");
            PortSpec::tcp(name, port, port)
        })
        .collect()
}

#[tokio::test]
async fn a_sixty_three_character_name_gets_its_port_and_gives_it_back() {
    let stack = Stack::new("long", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    let name = format!("room-{}", "x".repeat(58));
    assert_eq!(name.len(), 63);
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    stack
        .create_service(&opted_in_service(&ns, &name, &ports))
        .await;

    stack.changed(&name).await.expect("allocates");
    assert_eq!(stack.annotations(&name).await[STATUS], "Allocated");
    let uid = stack.uid(&name).await;
    assert_eq!(stack.target_groups_of(&uid).await.len(), 1);

    stack.delete_service(&name).await;
    stack.deleted(&name, &uid).await.expect("releases");
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn unicode_and_oversized_values_are_refused_with_a_short_reason() {
    let stack = Stack::new("odd", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    let huge_path = format!("/{}", "a".repeat(100_000));
    let cases: [(&str, &str, &str); 4] = [
        ("fullwidth", AUTO_ASSIGN, "ｔｒｕｅ"),
        ("pool", annotations::POOL, "игровой-пул"),
        ("emoji", annotations::HC_INTERVAL, "🕐"),
        ("huge", annotations::HC_PATH, &huge_path),
    ];
    for (name, key, value) in cases {
        let mut notes = vec![(key, value)];
        if key != AUTO_ASSIGN {
            notes.push((AUTO_ASSIGN, "true"));
        }
        let svc = service(&ns, name, &notes, &[PortSpec::tcp("g", 7777, 7777)]);
        stack.create_service(&svc).await;

        stack.changed(name).await.expect("a user error is handled");

        let status = stack.annotations(name).await[STATUS].clone();
        assert!(status.starts_with("Error: "), "{name}: {status}");
        // The reason names the annotation but does not echo a value of any size back.
        assert!(status.contains(key), "{name}: {status}");
        assert!(status.len() < 512, "{name}: a {}-byte status", status.len());
        let reasons = stack.event_reasons(name).await;
        assert!(
            reasons.contains(&"InvalidAnnotation".to_owned()),
            "{name}: {reasons:?}"
        );
    }
    assert!(stack.listeners().await.is_empty(), "nothing half-made");
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn many_ports_get_one_listener_each_or_none_at_all() {
    // GIVEN a pool of one NLB with room for 20 listeners
    let stack = Stack::new("ports", 1, "30000-30099", 20).await;
    let ns = stack.namespace.clone();

    // WHEN a Service with 20 ports asks, THEN it gets 20 listeners and target groups
    stack
        .create_service(&opted_in_service(&ns, "wide", &many_ports(20)))
        .await;
    stack.changed("wide").await.expect("allocates");
    assert_eq!(stack.annotations("wide").await[STATUS], "Allocated");
    let allocations = stack.annotations("wide").await[annotations::ALLOCATIONS].clone();
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&allocations).expect("allocations is a JSON list");
    assert_eq!(entries.len(), 20);
    assert_eq!(stack.listeners().await.len(), 20);
    let uid = stack.uid("wide").await;
    assert_eq!(stack.target_groups_of(&uid).await.len(), 20);

    // WHEN another with 2 ports asks of the full pool, THEN it waits holding nothing: a
    // Service gets all its ports or none
    stack
        .create_service(&opted_in_service(&ns, "late", &many_ports(2)))
        .await;
    stack.changed("late").await.expect("pending is a success");
    assert!(stack.annotations("late").await[STATUS].starts_with("Pending: "));
    assert_eq!(stack.listeners().await.len(), 20);
    let late_uid = stack.uid("late").await;
    assert!(stack.target_groups_of(&late_uid).await.is_empty());

    // WHEN the wide one goes, THEN all 20 come back and the late one fits
    stack.delete_service("wide").await;
    stack.deleted("wide", &uid).await.expect("releases");
    assert!(stack.target_groups_of(&uid).await.is_empty());
    stack.changed("late").await.expect("allocates");
    assert_eq!(stack.annotations("late").await[STATUS], "Allocated");
    assert_eq!(stack.listeners().await.len(), 2);
    let breaches = stack.invariant_breaches(&stack.namespaces, 20).await;
    assert!(breaches.is_empty(), "{breaches:#?}");
}
