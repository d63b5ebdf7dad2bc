//! How long `kubectl nlb-pool` takes, and how many AWS calls it makes, on a pool of N
//! allocated Services, against the test bed (moto + kube-apiserver on 127.0.0.1).
//!
//! Run with a bed up: `cargo run --profile benchmark -p nlb-pool-cli --example bench_cli
//! [SERVICES]` (default 500; one NLB per 50, plus one). Each command runs 5 times through the
//! library (as the binary does, minus process start); the median wall time and the calls of
//! one run are printed as Markdown for BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use nlb_pool_cli::collect::Sources;
use nlb_pool_cli::progress::Progress;
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::reconcile::Reconciler;
use testbed::call_counter::{CallCounter, Calls};
use testbed::kube_fixtures::{PortSpec, create_namespace, opted_in_service};
use testbed::moto::pool_fixture;
use testbed::{Bed, unique_name};

const RUNS: usize = 5;

fn ops(calls: &Calls) -> String {
    calls
        .counts
        .iter()
        .map(|(op, n)| format!("{} {n}", op.split('.').next_back().unwrap_or(op)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let services: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("SERVICES: a number"))
        .unwrap_or(500);
    let bed = Bed::get();
    let sdk = bed.sdk_config().await;
    let admin = bed.kube_client().await;
    let nlbs = services.div_ceil(50) + 1;
    let fixture = pool_fixture(&sdk, "bench-cli", nlbs, "30000-32767", 50).await;
    let namespace = unique_name("bench-cli");
    create_namespace(&admin, &namespace).await;
    let names: Vec<String> = (0..services).map(|i| format!("room-{i:04}")).collect();
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
    // A cluster name of its own: doctor judges every target group tagged with it.
    let cluster_name = unique_name("bench");
    let reconciler = Reconciler::new(
        &cluster_name,
        &fixture.nlbs[0].vpc_id,
        fixture.pools.clone(),
        Arc::new(DynamoClaimStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &fixture.table,
        )),
        Arc::new(AwsLoadBalancing::new(
            aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        )),
    );
    let cluster = KubeCluster::new(admin.clone(), &cluster_name, "bench");
    let started = Instant::now();
    futures::stream::iter(&names)
        .for_each_concurrent(8, |n| {
            let (reconciler, cluster, namespace) = (&reconciler, &cluster, &namespace);
            async move {
                reconciler
                    .reconcile_service(cluster, namespace, n, None)
                    .await
                    .expect("allocates");
            }
        })
        .await;
    eprintln!("allocated {services} Services in {:?}", started.elapsed());

    let counter = CallCounter::default();
    let (dynamodb, elb) = counter.clients(&sdk);
    let sources = Sources {
        cluster: cluster_name.clone(),
        pools: fixture.pools.clone(),
        stack_id: None,
        namespace: Some(namespace.clone()),
        store: Arc::new(DynamoClaimStore::new(dynamodb, &fixture.table)),
        elb: Arc::new(AwsLoadBalancing::new(elb)),
        kube: admin.clone(),
        dead_letters: None,
    };
    let silent = Progress::silent();
    println!("### kubectl nlb-pool on {services} Services, {nlbs} NLBs\n");
    println!(
        "| command | median wall time | AWS calls (one run) | by operation | time in the slowest operation |"
    );
    println!("|---|---|---|---|---|");
    for command in ["status", "get (every Service)", "doctor"] {
        let mut times = Vec::new();
        let mut calls = Calls::default();
        for _ in 0..RUNS {
            counter.take();
            let t = Instant::now();
            match command {
                "status" => {
                    let s = sources.snapshot(false, &silent).await.expect("status");
                    assert_eq!(nlb_pool_cli::status::report(&s).pools[0].used, services);
                }
                "doctor" => {
                    let s = sources.snapshot(true, &silent).await.expect("doctor");
                    let r = nlb_pool_cli::doctor::report(&s);
                    assert!(!r.has_warnings(), "{:?}", r.findings);
                }
                _ => {
                    let rows = nlb_pool_cli::list::list(&sources).await.expect("get");
                    assert_eq!(rows.len(), services);
                }
            }
            times.push(t.elapsed());
            calls = counter.take();
        }
        times.sort_unstable();
        let median: Duration = times[RUNS / 2];
        let (slow_op, slow_time) = calls
            .time
            .iter()
            .max_by_key(|(_, t)| **t)
            .map(|(op, t)| (op.split('.').next_back().unwrap_or(op).to_owned(), *t))
            .unwrap_or_default();
        println!(
            "| {command} | {:.2} s | {} | {} | {slow_op} {:.2} s |",
            median.as_secs_f64(),
            calls.total(),
            ops(&calls),
            slow_time.as_secs_f64()
        );
    }
}
