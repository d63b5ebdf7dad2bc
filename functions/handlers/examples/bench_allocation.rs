//! Allocation benchmark against the test bed (moto + kube-apiserver on 127.0.0.1).
//!
//! Run with a bed up: `cargo run --profile benchmark -p handlers --example bench_allocation
//! [fill|concurrency]`.
//! 1. Fill one pool (10 NLBs x 50 listeners = 500) one Service at a time, with one warm
//!    reconciler: AWS calls and wall time per allocation at the 1st, 250th and 500th.
//! 2. 500 allocations at concurrency 1, 10 and 50 (that many independent reconcilers, as that
//!    many Lambda instances): throughput, latency percentiles, calls per allocation.
//!
//! Prints Markdown for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::reconcile::{Outcome, Reconciler};
use testbed::call_counter::{CallCounter, Calls};
use testbed::kube_fixtures::{PortSpec, create_namespace, opted_in_service};
use testbed::moto::{PoolFixture, pool_fixture};
use testbed::{Bed, unique_name};

const SERVICES: usize = 500;
const NLBS: usize = 10;

/// The pool's NLBs in the concurrency runs (`BENCH_NLBS`, default [`NLBS`]).
fn nlbs() -> usize {
    std::env::var("BENCH_NLBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(NLBS)
}
const QUOTA: u32 = 50;

struct Setup {
    fixture: PoolFixture,
    namespace: String,
    names: Vec<String>,
    admin: kube::Client,
    sdk: aws_config::SdkConfig,
}

async fn setup(prefix: &str) -> Setup {
    let bed = Bed::get();
    // moto serializes DynamoDB and copies the table on every transaction, so at concurrency 50
    // calls queue for seconds; longer timeouts measure that queueing instead of failing on it.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(180))
        .build();
    let sdk = bed.sdk_config_at(bed.aws_endpoint(), Some(timeouts)).await;
    let admin = bed.kube_client().await;
    let fixture = pool_fixture(&sdk, prefix, nlbs(), "30000-32767", QUOTA).await;
    if std::env::var("BENCH_LISTED").is_ok_and(|v| v == "1") {
        list_as_the_sweep_does(&sdk, &fixture).await;
    }
    let namespace = unique_name(prefix);
    create_namespace(&admin, &namespace).await;
    let names: Vec<String> = (0..SERVICES).map(|i| format!("room-{i:03}")).collect();
    let api: Api<Service> = Api::namespaced(admin.clone(), &namespace);
    futures::stream::iter(&names)
        .for_each_concurrent(20, |n| {
            let svc = opted_in_service(&namespace, n, &[PortSpec::udp("game", 7777, 7777)]);
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &svc)
                    .await
                    .expect("creating a Service");
            }
        })
        .await;
    Setup {
        fixture,
        namespace,
        names,
        admin,
        sdk,
    }
}

/// The documented setup after a sweep run: each NLB with cross-zone load balancing on, and
/// its listing (no foreign listener) on its item in the claims table.
async fn list_as_the_sweep_does(sdk: &aws_config::SdkConfig, fixture: &PoolFixture) {
    use nlb_port_pool::model::claims::{ClaimStore, NlbListing, now_epoch};
    let store = DynamoClaimStore::new(aws_sdk_dynamodb::Client::new(sdk), &fixture.table);
    for nlb in &fixture.nlbs {
        testbed::moto::set_nlb_cross_zone(sdk, &nlb.arn, true).await;
        let listing = NlbListing {
            cross_zone: true,
            at: now_epoch(),
            ..Default::default()
        };
        store
            .record_listing(&nlb.arn, &listing, false)
            .await
            .expect("recording a listing");
    }
}

fn reconciler(setup: &Setup, counter: &CallCounter) -> Reconciler {
    let (dynamodb, elb) = counter.clients(&setup.sdk);
    Reconciler::new(
        "bench",
        &setup.fixture.nlbs[0].vpc_id,
        setup.fixture.pools.clone(),
        Arc::new(DynamoClaimStore::new(dynamodb, &setup.fixture.table)),
        Arc::new(AwsLoadBalancing::new(elb)),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    percentile(values, 0.5)
}

fn calls_text(calls: &Calls) -> String {
    calls
        .counts
        .iter()
        .map(|(op, n)| format!("{} {n}", op.split('.').next_back().unwrap_or(op)))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn fill_one_pool() {
    let setup = setup("bench-fill").await;
    let counter = CallCounter::default();
    let reconciler = reconciler(&setup, &counter);
    let cluster = KubeCluster::new(setup.admin.clone(), "bench", "bench");
    let mut rows: Vec<(usize, Calls, Duration)> = Vec::new();
    for (i, name) in setup.names.iter().enumerate() {
        counter.take();
        let started = Instant::now();
        let outcome = reconciler
            .reconcile_service(&cluster, &setup.namespace, name, None)
            .await
            .expect("allocation");
        let took = started.elapsed();
        assert!(
            matches!(outcome, Outcome::Allocated { claimed: 1, .. }),
            "{i}: {outcome:?}"
        );
        rows.push((i + 1, counter.take(), took));
    }
    println!(
        "### Filling one pool ({NLBS} NLBs x {QUOTA} listeners = {SERVICES}), one warm reconciler\n"
    );
    println!("| allocation | AWS calls | calls by operation | wall time | of which in AWS calls |");
    println!("|---|---|---|---|---|");
    for n in [1, 2, 250, 500] {
        let (_, calls, took) = &rows[n - 1];
        let aws: Duration = calls.time.values().sum();
        println!(
            "| #{n} | {} | {} | {:.1} ms | {:.1} ms |",
            calls.total(),
            calls_text(calls),
            took.as_secs_f64() * 1e3,
            aws.as_secs_f64() * 1e3
        );
    }
    println!();
    println!(
        "| window | median AWS calls | median wall time | median time in AWS calls | slowest operation (median) |"
    );
    println!("|---|---|---|---|---|");
    for (from, to) in [(2, 50), (226, 275), (451, 500)] {
        let window = &rows[from - 1..to];
        let mut calls: Vec<usize> = window.iter().map(|r| r.1.total()).collect();
        calls.sort_unstable();
        let mut times: Vec<Duration> = window.iter().map(|r| r.2).collect();
        let mut aws: Vec<Duration> = window.iter().map(|r| r.1.time.values().sum()).collect();
        let mut by_op: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        for r in window {
            for (op, t) in &r.1.time {
                by_op.entry(op.as_str()).or_default().push(*t);
            }
        }
        let (slow_op, slow_t) = by_op
            .iter_mut()
            .map(|(op, ts)| (*op, median(ts)))
            .max_by_key(|(_, t)| *t)
            .unwrap_or(("-", Duration::ZERO));
        println!(
            "| #{from}-#{to} | {} | {:.1} ms | {:.1} ms | {slow_op} {:.1} ms |",
            calls[calls.len() / 2],
            median(&mut times).as_secs_f64() * 1e3,
            median(&mut aws).as_secs_f64() * 1e3,
            slow_t.as_secs_f64() * 1e3
        );
    }
    println!();
}

async fn at_concurrency(concurrency: usize) -> String {
    let setup = setup(&format!("bench-c{concurrency}")).await;
    let counter = CallCounter::default();
    let reconcilers: Vec<Reconciler> = (0..concurrency)
        .map(|_| reconciler(&setup, &counter))
        .collect();
    let cluster = KubeCluster::new(setup.admin.clone(), "bench", "bench");
    if std::env::var("BENCH_WARM_TABLE").is_ok_and(|v| v == "1") {
        // A table in use: its identity recorded by an earlier allocation (not counted), so
        // each cold instance reads it (GetItem) instead of proving the table empty.
        let api: Api<Service> = Api::namespaced(setup.admin.clone(), &setup.namespace);
        let svc = opted_in_service(
            &setup.namespace,
            "warm-up",
            &[PortSpec::udp("game", 7777, 7777)],
        );
        api.create(&PostParams::default(), &svc)
            .await
            .expect("warm-up Service");
        reconciler(&setup, &CallCounter::default())
            .reconcile_service(&cluster, &setup.namespace, "warm-up", None)
            .await
            .expect("warm-up allocation");
    }
    let started = Instant::now();
    let results: Vec<(Duration, usize)> = futures::stream::iter(setup.names.iter().enumerate())
        .map(|(i, name)| {
            let reconciler = &reconcilers[i % concurrency];
            let cluster = &cluster;
            let ns = &setup.namespace;
            async move {
                let t = Instant::now();
                for attempt in 0..10 {
                    match reconciler.reconcile_service(cluster, ns, name, None).await {
                        Ok(Outcome::Allocated { .. }) => return (t.elapsed(), attempt),
                        Ok(other) => panic!("{name}: {other:?}"),
                        Err(e) if e.is_retryable() => {
                            eprintln!("{name}: attempt {attempt} failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await
                        }
                        Err(e) => panic!("{name}: {e}"),
                    }
                }
                panic!("{name}: kept failing");
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().map(|r| r.0).collect();
    latencies.sort_unstable();
    let retries: usize = results.iter().map(|r| r.1).sum();
    let calls = counter.snapshot().total();
    format!(
        "| {concurrency} | {:.1} s | {:.0} | {:.1} ms | {:.1} ms | {:.2} | {retries} |",
        wall.as_secs_f64(),
        SERVICES as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        calls as f64 / SERVICES as f64,
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let only: Option<String> = std::env::args().nth(1);
    if only.as_deref().is_none_or(|o| o == "fill") {
        fill_one_pool().await;
    }
    if only.as_deref().is_none_or(|o| o == "concurrency") {
        println!("### {SERVICES} allocations at concurrency 1, 10, 50 (independent reconcilers)\n");
        println!(
            "| concurrency | wall time | allocations/s | p50 latency | p99 latency | AWS calls per allocation | retried runs |"
        );
        println!("|---|---|---|---|---|---|---|");
        let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
            .ok()
            .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
            .unwrap_or_else(|| vec![1, 10, 50]);
        for c in levels {
            println!("{}", at_concurrency(c).await);
        }
    }
}
