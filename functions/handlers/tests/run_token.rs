//! Overlapping runs against the real servers: duplicate deliveries of one event at once with
//! a sweep running, and Services whose ports change hands while a watcher checks that no
//! annotation ever names a port another Service's claim holds. Every delivery succeeds at its
//! first invocation (a busy run waits in-process), so nothing would reach EventBridge's
//! retries or the dead-letter queue.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{CLUSTER, Stack, event_for, schedule_event};
use futures::{StreamExt, TryStreamExt};
use handlers::Deps;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams, WatchEvent, WatchParams};
use lambda_runtime::{Context, LambdaEvent};
use nlb_port_pool::contract::annotations::{self, AllocationRecord};
use nlb_port_pool::contract::event::DetailType;
use nlb_port_pool::model::config::{FunctionConfig, KubeAccess};
use nlb_port_pool::reconcile::DEFAULT_CLAIM_GRACE;
use testbed::Bed;
use testbed::invariants::Claims;
use testbed::kube_fixtures::{PortSpec, opted_in_service};

/// How long a busy run waits here. The bed is slower than AWS (moto serializes DynamoDB, and
/// the machine runs other tests): a first allocation that takes about a second in AWS takes
/// several here, and a run waiting behind two others waits that long.
const BED_BUSY_WAIT: Duration = Duration::from_secs(30);

/// `count` function instances, each with its own caches, with the deployed grace.
async fn instances(stack: &Stack, count: usize) -> Vec<Deps> {
    let sdk = stack.gate.sdk_config(Bed::get()).await;
    (0..count)
        .map(|_| {
            let config = FunctionConfig {
                cluster_name: CLUSTER.to_owned(),
                kube: KubeAccess::Kubeconfig(Bed::get().kubeconfig()),
                ..stack.deps.config.clone()
            };
            let mut deps = Deps::new("allocate", config, &sdk, DEFAULT_CLAIM_GRACE);
            deps.busy_wait = BED_BUSY_WAIT;
            deps
        })
        .collect()
}

/// An event as a distinct invocation: its own request id.
fn invocation(event: handlers::Event, id: &str) -> handlers::Event {
    let mut context = Context::default();
    context.request_id = id.to_owned();
    LambdaEvent::new(event.payload, context)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_deliveries_at_once_with_a_sweep_converge_without_a_retry() {
    // GIVEN a new opted-in Service and six function instances with the deployed grace
    let stack = Stack::new("rt-dup", 2, "30000-30099", 50)
        .await
        .with_claim_grace(DEFAULT_CLAIM_GRACE)
        .await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::udp("game", 7777, 7777)],
        ))
        .await;
    let uid = stack.uid("room").await;
    let fleet = instances(&stack, 6).await;

    // WHEN its Service Changed event is delivered six times at once, one per instance, while
    // a sweep runs
    let deliveries = futures::future::join_all(fleet.iter().enumerate().map(|(i, deps)| {
        let event = invocation(
            event_for(DetailType::ServiceChanged, &ns, "room", &uid, false),
            &format!("dup-{i}"),
        );
        handlers::on_service_changed(deps, event)
    }));
    let (results, swept) = tokio::join!(
        deliveries,
        handlers::on_schedule(&stack.sweep, schedule_event())
    );

    // THEN every invocation succeeded the first time (none would be retried, none would reach
    // the dead-letter queue); exactly one claimed; one listener; nothing is held afterwards
    let outcomes: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("no invocation fails").outcome)
        .collect();
    let claimed = outcomes.iter().filter(|o| o.contains("claimed: 1")).count();
    assert_eq!(claimed, 1, "{outcomes:#?}");
    let swept = swept.expect("the sweep runs");
    assert_eq!(swept.failures, 0, "{swept:?}");
    assert_eq!(stack.listeners().await.len(), 1);
    assert_eq!(
        stack.annotations("room").await[annotations::STATUS],
        "Allocated"
    );
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "{breaches:#?}");
    let held = held_claims(&stack).await;
    assert!(held.is_empty(), "claims still held by a run: {held:?}");
}

/// Owner records whose run has not let go.
async fn held_claims(stack: &Stack) -> Vec<String> {
    let page = stack
        .dynamodb
        .scan()
        .table_name(&stack.table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    page.items()
        .iter()
        .filter(|i| {
            matches!(i.get("pk"), Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) if pk.starts_with("owner#"))
                && !matches!(i.get("heldAt"), Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) if n == "0")
        })
        .map(|i| format!("{i:?}"))
        .collect()
}

/// What one observed version of a Service advertises: (NLB, port) pairs.
fn advertised(svc: &Service) -> Vec<(String, u16)> {
    let ann = svc.metadata.annotations.clone().unwrap_or_default();
    let Some(json) = ann.get(annotations::ALLOCATIONS) else {
        return vec![];
    };
    let records: Vec<AllocationRecord> = serde_json::from_str(json).expect("allocations JSON");
    records.into_iter().map(|r| (r.nlb_arn, r.port)).collect()
}

/// Watches the namespace's Services until `stop`. After every event (and every 100 ms) it
/// checks the latest
/// version of every Service that advertises a port against the claims table, while that
/// version is still current (its resourceVersion read again after the table): each advertised
/// port's item must name that Service. So a version that was right when written but names a
/// port after it changed hands is caught too. Returns the breaches and how many checks ran.
async fn watch_adverts(stack: &Stack, stop: Arc<AtomicBool>) -> (Vec<String>, usize) {
    let api = stack.services();
    let mut breaches = Vec::new();
    let mut checked = 0;
    let mut version = "0".to_owned();
    let mut latest: BTreeMap<String, Service> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        let params = WatchParams::default().timeout(2);
        let mut stream = api.watch(&params, &version).await.expect("watch").boxed();
        loop {
            // Every event, and every 100 ms without one (a version can go wrong while it
            // stays current, when its port changes hands).
            match tokio::time::timeout(Duration::from_millis(100), stream.try_next()).await {
                Err(_) => {}
                Ok(next) => match next.expect("watch event") {
                    None => break,
                    Some(WatchEvent::Added(s) | WatchEvent::Modified(s)) => {
                        version = s.metadata.resource_version.clone().unwrap_or_default();
                        latest.insert(s.metadata.name.clone().unwrap_or_default(), s);
                    }
                    Some(WatchEvent::Deleted(s)) => {
                        latest.remove(&s.metadata.name.clone().unwrap_or_default());
                        continue;
                    }
                    Some(WatchEvent::Bookmark(b)) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    Some(WatchEvent::Error(e)) => panic!("watch error: {e:?}"),
                },
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if latest.values().all(|s| advertised(s).is_empty()) {
                continue;
            }
            let claims = Claims::read(&stack.dynamodb, &stack.table).await;
            for (name, svc) in &latest {
                let ads = advertised(svc);
                if ads.is_empty() {
                    continue;
                }
                let rv = svc.metadata.resource_version.clone();
                let now = api.get_opt(name).await.expect("get");
                if now.and_then(|s| s.metadata.resource_version) != rv {
                    continue; // superseded before the table was read: nothing to conclude
                }
                checked += 1;
                let uid = svc.metadata.uid.clone().unwrap_or_default();
                for (nlb, port) in ads {
                    let holder = claims.ports.get(&(nlb.clone(), port));
                    if holder != Some(&uid) {
                        breaches.push(format!(
                            "{name} (rv {rv:?}) advertises port {port} of {nlb}, whose claim is held by {holder:?}"
                        ));
                    }
                }
            }
        }
    }
    (breaches, checked)
}

fn variant(round: usize, service: usize) -> Vec<PortSpec> {
    if (round + service).is_multiple_of(2) {
        vec![PortSpec::tcp("game", 7777, 7777)]
    } else {
        vec![PortSpec::udp("voice", 9000, 9000)]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ports_changing_hands_are_never_advertised_by_two_services() {
    // GIVEN three Services on one NLB with three ports, so a freed port soon changes hands,
    // three function instances, and a watcher of every version of their annotations
    const SERVICES: usize = 3;
    const ROUNDS: usize = 6;
    let stack = Stack::new("rt-hands", 1, "30000-30002", 50)
        .await
        .with_claim_grace(DEFAULT_CLAIM_GRACE)
        .await;
    let ns = stack.namespace.clone();
    let names: Vec<String> = (0..SERVICES).map(|i| format!("room-{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        stack
            .create_service(&opted_in_service(&ns, n, &variant(0, i)))
            .await;
    }
    let mut uids = BTreeMap::new();
    for n in &names {
        uids.insert(n.clone(), stack.uid(n).await);
    }
    let fleet = instances(&stack, 3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_adverts(&stack, stop.clone());
    let churn = async {
        let mut failures = Vec::new();
        for round in 0..ROUNDS {
            // WHEN every Service changes its port each round (the old port is released, the
            // new one claimed), each change delivered three times at once, and a sweep
            // runs every other round
            if round > 0 {
                for (i, n) in names.iter().enumerate() {
                    let ports = opted_in_service(&ns, n, &variant(round, i))
                        .spec
                        .and_then(|s| s.ports);
                    let patch = serde_json::json!({"spec": {"ports": ports}});
                    stack
                        .services()
                        .patch(n, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .expect("change ports");
                }
            }
            let mut work = Vec::new();
            for n in &names {
                for (k, deps) in fleet.iter().enumerate() {
                    let event = invocation(
                        event_for(DetailType::ServiceChanged, &ns, n, &uids[n], false),
                        &format!("r{round}-{n}-{k}"),
                    );
                    work.push(async move {
                        (n.clone(), handlers::on_service_changed(deps, event).await)
                    });
                }
            }
            let deliveries = futures::future::join_all(work);
            let sweep = async {
                if round % 2 == 1 {
                    Some(handlers::on_schedule(&stack.sweep, schedule_event()).await)
                } else {
                    None
                }
            };
            let (results, swept) = tokio::join!(deliveries, sweep);
            for (n, r) in results {
                if let Err(e) = r {
                    failures.push(format!("round {round} {n}: {e}"));
                }
            }
            if let Some(Err(e)) = swept {
                failures.push(format!("round {round} sweep: {e}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
        failures
    };
    let (failures, (breaches, checked)) = tokio::join!(churn, watcher);

    // THEN no delivery failed, no observed version named a port another Service held, and
    // the end state is what the Services ask for
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(breaches.is_empty(), "{breaches:#?}");
    assert!(
        checked >= SERVICES,
        "the watcher checked {checked} versions"
    );
    for n in &names {
        assert_eq!(
            stack.annotations(n).await[annotations::STATUS],
            "Allocated",
            "{n}"
        );
    }
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "{breaches:#?}");
    eprintln!("ports changing hands: {checked} advertised versions checked");
}

#[tokio::test]
async fn a_conditional_write_refuses_a_stale_read_and_a_replaced_object() {
    // GIVEN a Service read, then changed by someone else
    use kube::api::{DeleteParams, PostParams};
    use nlb_port_pool::adapters::kube::KubeCluster;
    use nlb_port_pool::model::cluster::{Cluster, Patched};
    let stack = Stack::new("rt-cw", 1, "30000-30009", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(&ns, "room", &[PortSpec::tcp("g", 1, 1)]))
        .await;
    let cluster = KubeCluster::new(stack.admin.clone(), CLUSTER, "test");
    let read = cluster
        .service(&ns, "room")
        .await
        .expect("get")
        .expect("exists");
    let theirs = serde_json::json!({"metadata": {"annotations": {"team/owner": "blue"}}});
    stack
        .services()
        .patch("room", &PatchParams::default(), &Patch::Merge(&theirs))
        .await
        .expect("their patch");
    let outputs = nlb_port_pool::model::cluster::ServiceOutputs {
        annotations: [(annotations::STATUS.to_owned(), "Allocated".to_owned())].into(),
        finalizer: true,
    };

    // WHEN outputs are written on the condition that it is as read
    let stale = cluster
        .write_outputs_if_unchanged(&read, &outputs)
        .await
        .expect("answers");

    // THEN nothing is written: the caller must read again
    assert_eq!(stale, Patched::Changed);
    assert!(
        !stack
            .annotations("room")
            .await
            .contains_key(annotations::STATUS)
    );

    // WHEN it is read again and written
    let fresh = cluster
        .service(&ns, "room")
        .await
        .expect("get")
        .expect("exists");
    let done = cluster
        .write_outputs_if_unchanged(&fresh, &outputs)
        .await
        .expect("writes");

    // THEN it is written, keeping the other writer's annotation
    assert!(matches!(done, Patched::Done(_)), "{done:?}");
    let ann = stack.annotations("room").await;
    assert_eq!(ann[annotations::STATUS], "Allocated");
    assert_eq!(ann["team/owner"], "blue");

    // WHEN the object is replaced by another of the same name, and the old read is written
    let finalizer_off = serde_json::json!({"metadata": {"finalizers": null}});
    stack
        .services()
        .patch(
            "room",
            &PatchParams::default(),
            &Patch::Merge(&finalizer_off),
        )
        .await
        .expect("drop the finalizer");
    stack
        .services()
        .delete("room", &DeleteParams::default())
        .await
        .expect("delete");
    stack
        .services()
        .create(
            &PostParams::default(),
            &opted_in_service(&ns, "room", &[PortSpec::tcp("g", 1, 1)]),
        )
        .await
        .expect("create again");
    let replaced = cluster
        .write_outputs_if_unchanged(&fresh, &outputs)
        .await
        .expect("answers");

    // THEN the new object is untouched (the API server refuses the old uid)
    assert!(
        matches!(replaced, Patched::Changed | Patched::Gone),
        "{replaced:?}"
    );
    assert!(
        !stack
            .annotations("room")
            .await
            .contains_key(annotations::STATUS)
    );
}
