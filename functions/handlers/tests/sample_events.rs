//! Every file in events/ parses, and drives its handler against the test bed.

mod common;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use common::Stack;
use lambda_runtime::{Context, LambdaEvent};
use nlb_port_pool::contract::event::{DetailType, ServiceEvent};
use nlb_port_pool::contract::pool_event;
use testbed::kube_fixtures::{PortSpec, endpoint_slice, opted_in_service};

fn samples() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a readable sample");
            (
                path.file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned(),
                text,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_sample_parses() {
    let files = samples();
    assert_eq!(
        files.len(),
        6,
        "one sample per detail-type, the sweep's, Pool Low and Targets Registered: {files:?}"
    );
    let mut kinds = Vec::new();
    for (name, text) in &files {
        let raw: EventBridgeEvent<serde_json::Value> = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{name} is not an EventBridge event: {e}"));
        if raw.source == "aws.events" {
            assert_eq!(raw.detail_type, "Scheduled Event", "{name}");
            kinds.push("Scheduled Event".to_owned());
            continue;
        }
        if raw.source == pool_event::FUNCTIONS_SOURCE {
            let cluster = match raw.detail_type.as_str() {
                pool_event::POOL_LOW => {
                    pool_event::PoolLow::from_parts(&raw.source, &raw.detail_type, &raw.detail)
                        .map(|e| e.cluster)
                }
                pool_event::TARGETS_REGISTERED => pool_event::TargetsRegistered::from_parts(
                    &raw.source,
                    &raw.detail_type,
                    &raw.detail,
                )
                .map(|e| e.cluster),
                other => panic!("{name}: no function takes detail-type {other}"),
            }
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                cluster, "local",
                "{name}: the samples name the local cluster"
            );
            kinds.push(raw.detail_type.clone());
            continue;
        }
        let event = ServiceEvent::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            event.detail.deleting,
            event.detail_type == DetailType::ServiceDeleted,
            "{name}"
        );
        kinds.push(event.detail_type.as_str().to_owned());
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "Endpoints Changed",
            "Pool Low",
            "Scheduled Event",
            "Service Changed",
            "Service Deleted",
            "Targets Registered"
        ]
    );
}

#[tokio::test]
async fn every_forwarder_sample_drives_its_handler() {
    // GIVEN the samples' Service (room-1) in a namespace of this test, with one pod
    let stack = Stack::new("samples", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room-1",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    stack
        .put_slice(&endpoint_slice(
            &ns,
            "room-1-a",
            "room-1",
            &[("game", 7777, "TCP")],
            &[("10.0.9.1", true)],
        ))
        .await;
    let uid = stack.uid("room-1").await;
    let load = |file: &str| -> handlers::Event {
        let text = samples()
            .into_iter()
            .find(|(n, _)| n == file)
            .expect("sample exists")
            .1;
        let mut event: EventBridgeEvent<serde_json::Value> =
            serde_json::from_str(&text).expect("sample JSON");
        // The samples name namespace games; point them at this test's and at the real uid.
        event.detail["namespace"] = ns.clone().into();
        event.detail["uid"] = uid.clone().into();
        event.detail["cluster"] = common::CLUSTER.into();
        LambdaEvent::new(event, Context::default())
    };

    // WHEN each sample is handled in the order a Service lives
    let changed = handlers::on_service_changed(&stack.deps, load("service-changed.json"))
        .await
        .expect("changed");
    let endpoints = handlers::on_endpoints_changed(&stack.deps, load("endpoints-changed.json"))
        .await
        .expect("endpoints");
    stack.delete_service("room-1").await;
    let deleted = handlers::on_service_deleted(&stack.deps, load("service-deleted.json"))
        .await
        .expect("deleted");

    // THEN each did its part and nothing is left
    assert!(changed.outcome.starts_with("Allocated"), "{changed:?}");
    assert!(
        endpoints.outcome.starts_with("TargetsSynced"),
        "{endpoints:?}"
    );
    assert!(deleted.outcome.starts_with("Released"), "{deleted:?}");
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn samples_about_another_cluster_change_nothing() {
    // GIVEN an opted-in Service with a pod, in a stack of cluster "bed", and the samples as
    // another cluster's forwarder would send them (they name cluster "local")
    let stack = Stack::new("samples-foreign", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room-1",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    stack
        .put_slice(&endpoint_slice(
            &ns,
            "room-1-a",
            "room-1",
            &[("game", 7777, "TCP")],
            &[("10.0.9.1", true)],
        ))
        .await;
    let uid = stack.uid("room-1").await;
    let load = |file: &str| -> handlers::Event {
        let text = samples()
            .into_iter()
            .find(|(n, _)| n == file)
            .expect("sample exists")
            .1;
        let mut event: EventBridgeEvent<serde_json::Value> =
            serde_json::from_str(&text).expect("sample JSON");
        event.detail["namespace"] = ns.clone().into();
        event.detail["uid"] = uid.clone().into();
        assert_ne!(event.detail["cluster"], common::CLUSTER);
        LambdaEvent::new(event, Context::default())
    };

    // WHEN each is handled
    let outcomes = [
        handlers::on_service_changed(&stack.deps, load("service-changed.json")).await,
        handlers::on_endpoints_changed(&stack.deps, load("endpoints-changed.json")).await,
        handlers::on_service_deleted(&stack.deps, load("service-deleted.json")).await,
    ];

    // THEN each succeeds saying why, and the Service got nothing
    for outcome in outcomes {
        let outcome = outcome.expect("ignored, not failed");
        assert!(
            outcome.outcome.contains(handlers::OTHER_CLUSTER),
            "{outcome:?}"
        );
    }
    let ann = stack.annotations("room-1").await;
    assert!(
        !ann.contains_key(nlb_port_pool::contract::annotations::STATUS),
        "{ann:?}"
    );
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
    // AND the same Service's own-cluster event is acted on (the test could fail)
    assert!(
        stack
            .changed("room-1")
            .await
            .expect("changed")
            .outcome
            .starts_with("Allocated")
    );
    stack.delete_service("room-1").await;
    stack.deleted("room-1", &uid).await.expect("released");
}
