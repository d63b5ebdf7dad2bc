//! The handlers against the test bed: kube-apiserver for Services, moto for DynamoDB and ELBv2.

mod common;

use common::Stack;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use nlb_port_pool::contract::annotations::{self, AUTO_ASSIGN, FINALIZER};
use nlb_port_pool::contract::event::DetailType;
use testbed::kube_fixtures::{PortSpec, endpoint_slice, opted_in_service, service};

#[tokio::test]
async fn an_opted_in_service_gets_a_listener_and_gives_it_back() {
    // GIVEN an opted-in Service with two ready pods
    let stack = Stack::new("alloc", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::tcp("game", 7777, 8000)],
        ))
        .await;
    stack
        .put_slice(&endpoint_slice(
            &ns,
            "room-a",
            "room",
            &[("game", 8000, "TCP")],
            &[("10.0.1.5", true), ("10.0.1.6", true)],
        ))
        .await;
    let uid = stack.uid("room").await;

    // WHEN Service Changed is handled
    stack.changed("room").await.expect("allocates");

    // THEN the Service carries its address and the finalizer
    let ann = stack.annotations("room").await;
    let port: u16 = ann[annotations::ALLOCATED_PORT]
        .parse()
        .expect("a port number");
    assert!((30000..=30099).contains(&port));
    assert_eq!(
        ann[annotations::ADDRESS],
        format!("{}:{port}", stack.nlbs[0].dns_name)
    );
    assert_eq!(ann[annotations::STATUS], "Allocated");
    let svc = stack.services().get("room").await.expect("svc");
    assert!(
        svc.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&FINALIZER.to_owned())
    );
    // AND moto holds exactly one listener on that port, forwarding to a tagged group with both pods
    let listeners = stack.listeners().await;
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    assert_eq!(listeners[0].0, port);
    assert_eq!(listeners[0].3, ann[annotations::LISTENER_ARN]);
    let groups = stack.target_groups_of(&uid).await;
    assert_eq!(groups, vec![listeners[0].2.clone()]);
    let targets = stack.targets(&groups[0]).await;
    assert_eq!(
        targets.into_iter().collect::<Vec<_>>(),
        ["10.0.1.5:8000", "10.0.1.6:8000"]
    );
    assert!(
        stack
            .event_reasons("room")
            .await
            .contains(&"Allocated".to_owned())
    );

    // WHEN the Service is deleted and Service Deleted is handled
    stack.delete_service("room").await;
    assert!(
        stack
            .services()
            .get_opt("room")
            .await
            .expect("get")
            .is_some(),
        "the finalizer holds it"
    );
    stack.deleted("room", &uid).await.expect("releases");

    // THEN the Service is gone and nothing is left in moto or DynamoDB
    assert!(
        stack
            .services()
            .get_opt("room")
            .await
            .expect("get")
            .is_none()
    );
    assert!(stack.listeners().await.is_empty());
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn the_same_name_in_two_namespaces_gets_two_ports() {
    let stack = Stack::with_namespaces("twons", 1, "30000-30099", 50, 2).await;
    let other_ns = stack.namespaces[1].clone();
    for ns in [&stack.namespace, &other_ns] {
        testbed::kube_fixtures::create(
            &stack.admin,
            &opted_in_service(ns, "room", &[PortSpec::tcp("game", 7777, 7777)]),
        )
        .await;
    }
    stack.changed("room").await.expect("first namespace");
    let other_uid = testbed::kube_fixtures::service_uid(&stack.admin, &other_ns, "room").await;
    handlers::on_service_changed(
        &stack.deps,
        common::event_for(
            DetailType::ServiceChanged,
            &other_ns,
            "room",
            &other_uid,
            false,
        ),
    )
    .await
    .expect("second namespace");

    let listeners = stack.listeners().await;
    assert_eq!(listeners.len(), 2);
    assert_ne!(listeners[0].0, listeners[1].0, "two ports");
    assert_ne!(listeners[0].2, listeners[1].2, "two target groups");
}

#[tokio::test]
async fn named_target_ports_multiple_ports_and_tcp_udp() {
    // GIVEN a Service with TCP and UDP on 7777 (named targetPort) and a UDP voice port
    let stack = Stack::new("multi", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[
                PortSpec::tcp_named("game-tcp", 7777, "gs"),
                PortSpec {
                    protocol: "UDP",
                    ..PortSpec::tcp_named("game-udp", 7777, "gs")
                },
                PortSpec::udp("voice", 9000, 9100),
            ],
        ))
        .await;
    stack
        .put_slice(&endpoint_slice(
            &ns,
            "room-a",
            "room",
            &[
                ("game-tcp", 17777, "TCP"),
                ("game-udp", 17777, "UDP"),
                ("voice", 9100, "UDP"),
            ],
            &[("10.0.2.1", true), ("10.0.2.2", false)],
        ))
        .await;

    stack.changed("room").await.expect("allocates");

    // THEN two listeners: TCP_UDP for 7777 and UDP for voice, on one NLB
    let mut listeners = stack.listeners().await;
    listeners.sort_by_key(|l| l.1.clone());
    let protocols: Vec<&str> = listeners.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(protocols, ["TCP_UDP", "UDP"]);
    // AND the named port resolved to 17777 through the EndpointSlice; the unready pod is left out
    let game_targets = stack.targets(&listeners[0].2).await;
    assert_eq!(
        game_targets.into_iter().collect::<Vec<_>>(),
        ["10.0.2.1:17777"]
    );
    let voice_targets = stack.targets(&listeners[1].2).await;
    assert_eq!(
        voice_targets.into_iter().collect::<Vec<_>>(),
        ["10.0.2.1:9100"]
    );
    let records: Vec<annotations::AllocationRecord> =
        serde_json::from_str(&stack.annotations("room").await[annotations::ALLOCATIONS])
            .expect("allocations JSON");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].service_port, 7777);
}

#[tokio::test]
async fn targets_follow_the_endpoints() {
    let stack = Stack::new("scale", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::tcp("game", 7777, 8000)],
        ))
        .await;
    let slice =
        |ips: &[(&str, bool)]| endpoint_slice(&ns, "room-a", "room", &[("game", 8000, "TCP")], ips);
    stack.put_slice(&slice(&[("10.0.3.1", true)])).await;
    stack.changed("room").await.expect("allocates");
    let group = stack.listeners().await[0].2.clone();

    // WHEN the endpoints scale up
    stack
        .put_slice(&slice(&[
            ("10.0.3.1", true),
            ("10.0.3.2", true),
            ("10.0.3.3", true),
        ]))
        .await;
    stack.endpoints_changed("room").await.expect("syncs");
    assert_eq!(stack.targets(&group).await.len(), 3);

    // WHEN they scale down, one becoming unready
    stack
        .put_slice(&slice(&[("10.0.3.2", true), ("10.0.3.3", false)]))
        .await;
    stack.endpoints_changed("room").await.expect("syncs");
    assert_eq!(
        stack.targets(&group).await.into_iter().collect::<Vec<_>>(),
        ["10.0.3.2:8000"]
    );
}

#[tokio::test]
async fn removing_the_opt_in_releases_the_port() {
    let stack = Stack::new("optout", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    stack.changed("room").await.expect("allocates");
    let uid = stack.uid("room").await;

    let patch = serde_json::json!({"metadata": {"annotations": {AUTO_ASSIGN: null}}});
    stack
        .services()
        .patch("room", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    stack.changed("room").await.expect("releases");

    let svc = stack.services().get("room").await.expect("still there");
    assert!(svc.metadata.finalizers.unwrap_or_default().is_empty());
    let ann = svc.metadata.annotations.unwrap_or_default();
    assert!(
        annotations::OUTPUT_KEYS
            .iter()
            .all(|k| !ann.contains_key(*k)),
        "{ann:?}"
    );
    assert!(stack.listeners().await.is_empty());
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn an_exhausted_pool_makes_services_wait_for_a_free_port() {
    // GIVEN a pool of one NLB with a quota of one listener, used by "first"
    let stack = Stack::new("full", 1, "30000-30099", 1).await;
    let ns = stack.namespace.clone();
    for name in ["first", "second"] {
        stack
            .create_service(&opted_in_service(
                &ns,
                name,
                &[PortSpec::tcp("game", 7777, 7777)],
            ))
            .await;
    }
    stack.changed("first").await.expect("first fits");

    // WHEN the second asks
    stack.changed("second").await.expect("pending is a success");

    // THEN it is Pending with a PoolExhausted Event, holding nothing
    assert!(stack.annotations("second").await[annotations::STATUS].starts_with("Pending: "));
    assert!(
        stack
            .event_reasons("second")
            .await
            .contains(&"PoolExhausted".to_owned())
    );
    assert_eq!(stack.listeners().await.len(), 1);

    // WHEN the first is deleted and released, and the second's next event comes
    let first_uid = stack.uid("first").await;
    stack.delete_service("first").await;
    stack.deleted("first", &first_uid).await.expect("release");
    stack.changed("second").await.expect("allocates");

    // THEN the second holds the freed capacity
    assert_eq!(
        stack.annotations("second").await[annotations::STATUS],
        "Allocated"
    );
    assert_eq!(stack.listeners().await.len(), 1);
}

#[tokio::test]
async fn duplicated_and_reordered_events_converge() {
    let stack = Stack::new("order", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    // A delete event for a Service not yet made (reordered) does nothing.
    handlers::on_service_deleted(
        &stack.deps,
        stack.event(DetailType::ServiceDeleted, "room", "0000-1111", true),
    )
    .await
    .expect("nothing to release");
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    let uid = stack.uid("room").await;

    // Create delivered twice, and a stale endpoints event in between.
    stack.changed("room").await.expect("first delivery");
    stack.endpoints_changed("room").await.expect("endpoints");
    stack.changed("room").await.expect("second delivery");
    assert_eq!(stack.listeners().await.len(), 1);
    assert_eq!(stack.target_groups_of(&uid).await.len(), 1);

    // A late Service Changed after the release does not bring anything back.
    stack.delete_service("room").await;
    stack.deleted("room", &uid).await.expect("release");
    stack.deleted("room", &uid).await.expect("release again");
    handlers::on_service_changed(
        &stack.deps,
        stack.event(DetailType::ServiceChanged, "room", &uid, false),
    )
    .await
    .expect("late change");
    assert!(stack.listeners().await.is_empty());
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn bad_annotations_and_services_are_reported_on_the_service() {
    let stack = Stack::new("bad", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    let cases: Vec<(&str, Service)> = vec![
        (
            "yes",
            service(
                &ns,
                "yes",
                &[(AUTO_ASSIGN, "yes")],
                &[PortSpec::tcp("g", 1, 1)],
            ),
        ),
        (
            "interval",
            service(
                &ns,
                "interval",
                &[(AUTO_ASSIGN, "true"), (annotations::HC_INTERVAL, "1")],
                &[PortSpec::tcp("g", 1, 1)],
            ),
        ),
        (
            "pool",
            service(
                &ns,
                "pool",
                &[(AUTO_ASSIGN, "true"), (annotations::POOL, "elsewhere")],
                &[PortSpec::tcp("g", 1, 1)],
            ),
        ),
    ];
    for (name, svc) in &cases {
        stack.create_service(svc).await;
        stack.changed(name).await.expect("a user error is handled");
        let status = stack.annotations(name).await[annotations::STATUS].clone();
        assert!(status.starts_with("Error: "), "{name}: {status}");
        assert!(
            stack
                .event_reasons(name)
                .await
                .contains(&"InvalidAnnotation".to_owned()),
            "{name}"
        );
    }
    // A headless Service may have no ports: nothing to listen on.
    let mut headless = service(&ns, "headless", &[(AUTO_ASSIGN, "true")], &[]);
    if let Some(spec) = headless.spec.as_mut() {
        spec.cluster_ip = Some("None".to_owned());
        spec.ports = None;
    }
    stack.create_service(&headless).await;
    stack.changed("headless").await.expect("handled");
    assert!(stack.annotations("headless").await[annotations::STATUS].contains("no ports"));

    assert!(stack.listeners().await.is_empty(), "nothing half-made");
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn malformed_events_are_refused_with_the_reason() {
    let stack = Stack::new("garbage", 1, "30000-30099", 50).await;
    let mut missing_uid = stack.event(DetailType::ServiceChanged, "room", "u", false);
    missing_uid
        .payload
        .detail
        .as_object_mut()
        .map(|d| d.remove("uid"));
    let err = handlers::on_service_changed(&stack.deps, missing_uid)
        .await
        .expect_err("no uid");
    assert!(err.to_string().contains("uid"), "{err}");

    let mut wrong_type = stack.event(DetailType::EndpointsChanged, "room", "abc", false);
    wrong_type.payload.detail["extra"] = serde_json::json!({"ignored": true});
    let err = handlers::on_service_changed(&stack.deps, wrong_type)
        .await
        .expect_err("wrong type");
    assert!(err.to_string().contains("Endpoints Changed"), "{err}");

    let mut bad_name = stack.event(DetailType::ServiceChanged, "../../etc", "abc", false);
    bad_name.payload.source = "nlb-port-pool.forwarder".into();
    let err = handlers::on_service_changed(&stack.deps, bad_name)
        .await
        .expect_err("bad name");
    assert!(err.to_string().contains("detail.name"), "{err}");

    let garbage: Result<aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value>, _> =
        serde_json::from_str("{\"detail\": 1");
    assert!(
        garbage.is_err(),
        "the runtime refuses what does not parse before a handler runs"
    );
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}
