//! A churn of 1,000 Service changes (create, change ports, opt out and in, scale, delete,
//! make again) whose events are each delivered twice, in shuffled order, concurrently, some
//! while the churn goes on and the rest after it. The final state must be what the Services
//! ask for, with no leak and no port owned twice.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Stack;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use nlb_port_pool::contract::annotations::{AUTO_ASSIGN, STATUS};
use nlb_port_pool::contract::event::DetailType;
use testbed::kube_fixtures::{PortSpec, endpoint_slice, opted_in_service};
use testbed::rng::Rng;

const CHANGES: usize = 1000;
const NAMES: usize = 60;

#[derive(Clone, Debug)]
struct Pending {
    detail_type: DetailType,
    name: String,
    uid: String,
}

fn ports(variant: usize) -> Vec<PortSpec> {
    match variant % 3 {
        0 => vec![PortSpec::udp("game", 7777, 7777)],
        1 => vec![
            PortSpec::tcp("game", 7777, 7777),
            PortSpec::udp("voice", 9000, 9000),
        ],
        _ => vec![
            PortSpec::tcp("game-tcp", 7000, 7000),
            PortSpec::udp("game-udp", 7000, 7000),
        ],
    }
}

async fn deliver(stack: &Stack, p: &Pending) -> Result<(), String> {
    let event = stack.event(
        p.detail_type,
        &p.name,
        &p.uid,
        p.detail_type == DetailType::ServiceDeleted,
    );
    let result = stack.handle(event).await.map(|_| ());
    result.map_err(|e| e.to_string())
}

/// Delivers every event twice, shuffled, 8 at a time; failed deliveries come back later, as
/// EventBridge retries them. Returns (deliveries, retries).
async fn deliver_all(stack: &Stack, rng: &mut Rng, events: Vec<Pending>) -> (usize, usize) {
    let mut queue: Vec<Pending> = events.clone();
    queue.extend(events);
    let (mut delivered, mut retried) = (0, 0);
    let mut last_errors: Vec<String> = Vec::new();
    for _ in 0..50 {
        if queue.is_empty() {
            break;
        }
        rng.shuffle(&mut queue);
        let results: Vec<(Pending, Result<(), String>)> = futures::stream::iter(queue.drain(..))
            .map(|p| async move {
                let result = deliver(stack, &p).await;
                (p, result)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        last_errors.clear();
        for (p, result) in results {
            delivered += 1;
            if let Err(e) = result {
                retried += 1;
                last_errors.push(format!("{} {}: {e}", p.detail_type, p.name));
                queue.push(p);
            }
        }
        if !queue.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        queue.is_empty(),
        "{} deliveries kept failing: {last_errors:#?}",
        queue.len()
    );
    (delivered, retried)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_delivered_twice_and_shuffled_converge() {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let mut rng = Rng::from_env("CHURN_SEED", 0x5eed_1234_u64);
    // The deployed grace period: concurrent deliveries of one Service's events must not
    // overtake each other's live runs.
    let stack = Stack::new("churn", 5, "30000-30999", 50)
        .await
        .with_claim_grace(nlb_port_pool::reconcile::DEFAULT_CLAIM_GRACE)
        .await;
    let ns = stack.namespace.clone();
    let api = stack.services();
    let mut live: BTreeMap<String, usize> = BTreeMap::new(); // name -> ports variant
    let mut pending: Vec<Pending> = Vec::new();
    let mut stats = BTreeMap::<&str, usize>::new();
    let (mut delivered, mut retried) = (0, 0);
    let started = Instant::now();

    for change in 0..CHANGES {
        let name = format!("room-{}", rng.below(NAMES));
        let op = if live.contains_key(&name) {
            rng.below(5)
        } else {
            5
        };
        let (kind, detail_type) = match op {
            0 => {
                let variant = rng.below(3);
                live.insert(name.clone(), variant);
                let patch = serde_json::json!({"spec": {"ports": opted_in_service(&ns, &name, &ports(variant)).spec.and_then(|s| s.ports)}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("change ports");
                ("ports", DetailType::ServiceChanged)
            }
            1 => {
                let value = ["true", "false", "true"][rng.below(3)];
                let patch = serde_json::json!({"metadata": {"annotations": {AUTO_ASSIGN: value}}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("opt in/out");
                ("opt-in", DetailType::ServiceChanged)
            }
            2 => {
                let n = rng.below(4);
                let ips: Vec<(String, bool)> = (0..n)
                    .map(|i| (format!("10.3.{}.{}", rng.below(200), i + 1), true))
                    .collect();
                let ips_ref: Vec<(&str, bool)> =
                    ips.iter().map(|(ip, r)| (ip.as_str(), *r)).collect();
                let variant = live[&name];
                let slice_ports: Vec<(&str, i32, &str)> = ports(variant)
                    .iter()
                    .map(|p| (p.name, p.port, p.protocol))
                    .collect();
                stack
                    .put_slice(&endpoint_slice(
                        &ns,
                        &format!("{name}-a"),
                        &name,
                        &slice_ports,
                        &ips_ref,
                    ))
                    .await;
                ("endpoints", DetailType::EndpointsChanged)
            }
            3 | 4 => {
                live.remove(&name);
                let uid = stack.uid(&name).await;
                api.delete(&name, &Default::default())
                    .await
                    .expect("delete");
                pending.push(Pending {
                    detail_type: DetailType::ServiceDeleted,
                    name: name.clone(),
                    uid,
                });
                *stats.entry("delete").or_default() += 1;
                continue;
            }
            _ => {
                // A name deleted before may still be held by its finalizer: wait for it to go.
                if api.get_opt(&name).await.expect("get").is_some() {
                    continue;
                }
                let variant = rng.below(3);
                live.insert(name.clone(), variant);
                stack
                    .create_service(&opted_in_service(&ns, &name, &ports(variant)))
                    .await;
                ("create", DetailType::ServiceChanged)
            }
        };
        *stats.entry(kind).or_default() += 1;
        let uid = stack.uid(&name).await;
        pending.push(Pending {
            detail_type,
            name,
            uid,
        });
        // Some deliveries while the churn goes on, so deletions meet finalizers being held.
        if change % 25 == 24 {
            let (d, r) = deliver_all(&stack, &mut rng, std::mem::take(&mut pending)).await;
            delivered += d;
            retried += r;
        }
    }
    let (d, r) = deliver_all(&stack, &mut rng, std::mem::take(&mut pending)).await;
    delivered += d;
    retried += r;

    // THEN: without any sweep, AWS holds exactly what the live Services ask for
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "seed {}: {breaches:#?}", rng.seed());
    let services: Vec<Service> = api.list(&Default::default()).await.expect("list").items;
    for s in &services {
        let ann = s.metadata.annotations.clone().unwrap_or_default();
        let opted_in = ann.get(AUTO_ASSIGN).map(String::as_str) == Some("true");
        let status = ann.get(STATUS).map(String::as_str);
        if opted_in && s.metadata.deletion_timestamp.is_none() {
            assert_eq!(status, Some("Allocated"), "{:?}", s.metadata.name);
        } else {
            assert_eq!(
                status, None,
                "{:?} holds nothing, so says nothing",
                s.metadata.name
            );
        }
    }
    eprintln!(
        "churn: {CHANGES} changes {stats:?}, {delivered} deliveries ({retried} retried), {} Services live at the end, {:.1} s",
        services.len(),
        started.elapsed().as_secs_f64()
    );
}
