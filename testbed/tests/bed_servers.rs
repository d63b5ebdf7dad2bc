//! The test bed's servers are real and usable: each test exercises one capability the rest of
//! the project relies on, against kube-apiserver (and cluster b's) and moto on 127.0.0.1.

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum, TargetTypeEnum};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, moto, unique_name};

#[tokio::test]
async fn kube_apiserver_streams_watch_events_and_takes_patches() {
    // GIVEN a fresh namespace and a watch on its Services
    let bed = Bed::get();
    let client = bed.kube_client().await;
    let ns = unique_name("bed-watch");
    kube_fixtures::create_namespace(&client, &ns).await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let mut stream = watcher::watcher(services.clone(), watcher::Config::default()).boxed();
    // The initial list of an empty namespace ends with InitDone.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
            Ok(Ok(Some(Event::InitDone))) => break,
            Ok(Ok(Some(_))) => continue,
            other => panic!("no InitDone from the watch: {other:?}"),
        }
    }

    // WHEN a Service is created
    let svc = kube_fixtures::opted_in_service(&ns, "room", &[PortSpec::tcp("game", 7777, 7777)]);
    kube_fixtures::create(&client, &svc).await;

    // THEN the watch delivers it
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = stream.try_next().await.expect("watch stream") {
            if let Event::Apply(s) = event {
                return s;
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("the created Service arrived on the watch");
    assert_eq!(seen.metadata.name.as_deref(), Some("room"));

    // WHEN its annotations are patched by a field manager
    let patch = serde_json::json!({"metadata": {"annotations": {"example.com/patched": "yes"}}});
    services
        .patch("room", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("merge patch");

    // THEN the change is stored beside the earlier annotation
    let stored = services.get("room").await.expect("get");
    let annotations = stored.metadata.annotations.expect("annotations");
    assert_eq!(
        annotations.get("example.com/patched").map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        annotations
            .get("nlb.port-manager/auto-assign")
            .map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn rbac_refuses_a_service_account_without_a_role() {
    // GIVEN a ServiceAccount bound to no role
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let ns = unique_name("bed-rbac");
    kube_fixtures::create_namespace(&admin, &ns).await;
    let client = kube_fixtures::service_account_client(&admin, &ns, "nobody").await;

    // WHEN it lists Services
    let result = Api::<Service>::namespaced(client, &ns)
        .list(&ListParams::default())
        .await;

    // THEN RBAC refuses with 403
    match result {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn cluster_b_is_another_cluster() {
    // GIVEN the bed's two API servers
    let bed = Bed::get();
    let a = bed.kube_client().await;
    let b = bed.kube_client_b().await;
    assert_ne!(bed.kube_server(), bed.kube_server_b());

    // WHEN a namespace is made on each
    let ns_a = unique_name("bed-on-a");
    let ns_b = unique_name("bed-on-b");
    kube_fixtures::create_namespace(&a, &ns_a).await;
    kube_fixtures::create_namespace(&b, &ns_b).await;

    // THEN each exists only where it was made
    let namespaces = |client: &kube::Client| Api::<Namespace>::all(client.clone());
    let exists = async |client: &kube::Client, name: &str| {
        namespaces(client)
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("getting namespace {name}: {e}"))
            .is_some()
    };
    assert!(exists(&a, &ns_a).await && exists(&b, &ns_b).await);
    assert!(!exists(&b, &ns_a).await, "{ns_a}, made on a, is on b");
    assert!(!exists(&a, &ns_b).await, "{ns_b}, made on b, is on a");

    // AND their kube-system namespaces (a cluster's identity) differ
    let kube_system_uid = async |client: &kube::Client| {
        namespaces(client)
            .get("kube-system")
            .await
            .expect("kube-system exists")
            .metadata
            .uid
            .expect("a uid")
    };
    assert_ne!(kube_system_uid(&a).await, kube_system_uid(&b).await);
}

async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
}

#[tokio::test]
async fn dynamodb_conditional_put_succeeds_once() {
    // GIVEN an empty table
    let sdk = Bed::get().sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique_name("bed-cond");
    create_table(&dynamodb, &table).await;
    let put = || {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("port#30000".into()))
            .condition_expression("attribute_not_exists(pk)")
    };

    // WHEN the same conditional put runs twice
    put().send().await.expect("first put succeeds");
    let second = put().send().await.expect_err("second put fails");

    // THEN the second failure is the typed ConditionalCheckFailedException
    assert!(
        matches!(
            second.into_service_error(),
            PutItemError::ConditionalCheckFailedException(_)
        ),
        "not a conditional check failure"
    );
}

#[tokio::test]
async fn dynamodb_transaction_reports_cancellation_reasons_per_item() {
    // GIVEN a table holding one item
    let sdk = Bed::get().sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique_name("bed-tx");
    create_table(&dynamodb, &table).await;
    let item = |pk: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&table)
                    .item("pk", AttributeValue::S(pk.into()))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("put"),
            )
            .build()
    };
    dynamodb
        .transact_write_items()
        .transact_items(item("taken"))
        .send()
        .await
        .expect("seed");

    // WHEN a transaction writes a fresh item and the taken one
    let err = dynamodb
        .transact_write_items()
        .transact_items(item("fresh"))
        .transact_items(item("taken"))
        .send()
        .await
        .expect_err("the transaction is cancelled");

    // THEN the reasons say which item failed
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) =
        err.into_service_error()
    else {
        panic!("not a TransactionCanceledException");
    };
    let codes: Vec<Option<&str>> = e.cancellation_reasons().iter().map(|r| r.code()).collect();
    assert_eq!(codes, vec![Some("None"), Some("ConditionalCheckFailed")]);
}

#[tokio::test]
async fn elbv2_makes_a_tcp_target_group_and_listener_on_an_nlb() {
    // GIVEN a network load balancer in moto
    let sdk = Bed::get().sdk_config().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let nlb = moto::create_nlb(&sdk, &unique_name("bed-nlb")).await;

    // WHEN a TCP target group and a listener forwarding to it are created
    let tg = elb
        .create_target_group()
        .name(unique_name("bed-tg"))
        .protocol(ProtocolEnum::Tcp)
        .port(7777)
        .vpc_id(&nlb.vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .send()
        .await
        .expect("create target group");
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_owned();
    elb.create_listener()
        .load_balancer_arn(&nlb.arn)
        .protocol(ProtocolEnum::Tcp)
        .port(30000)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .expect("create listener");

    // THEN the NLB lists the listener on that port, forwarding to the group
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&nlb.arn)
        .send()
        .await
        .expect("describe listeners");
    let listener = &listeners.listeners()[0];
    assert_eq!(listener.port(), Some(30000));
    assert_eq!(
        listener.default_actions()[0].target_group_arn(),
        Some(tg_arn.as_str())
    );
}

#[tokio::test]
async fn eventbridge_rule_delivers_a_matching_event_to_sqs() {
    // GIVEN a bus with a rule that sends one detail-type to a queue
    let sdk = Bed::get().sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let bus = unique_name("bed-bus");
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("create bus");
    let pattern = r#"{"source":["nlb-port-pool.forwarder"],"detail-type":["Service Changed"]}"#;
    let queue = moto::queue_behind_rule(&sdk, &bus, &unique_name("bed-q"), pattern).await;

    // WHEN a matching and a non-matching event are put on the bus
    let entry = |detail_type: &str| {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&bus)
            .source("nlb-port-pool.forwarder")
            .detail_type(detail_type)
            .detail(r#"{"name":"room"}"#)
            .build()
    };
    let out = events
        .put_events()
        .entries(entry("Service Changed"))
        .entries(entry("Something Else"))
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);

    // THEN only the matching one reaches the queue
    let received = moto::receive_json(&sdk, &queue, 2, Duration::from_secs(3)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["detail-type"], "Service Changed");
    assert_eq!(received[0]["detail"]["name"], "room");
}
