//! Resync benchmark against the test bed (moto + kube-apiserver on 127.0.0.1): what a forwarder
//! restart costs once many Services are allocated, and what one sweep run costs at that size.
//!
//! Run with a bed up: `cargo run --profile benchmark -p handlers --example bench_resync
//! [SERVICES [CONCURRENCY]]` (default 2000 and 16).
//! SERVICES one-port Services, each with one ready pod, are allocated by events (CONCURRENCY
//! reconcilers at once, as that many Lambda instances). Then the restart's resync: Service
//! Changed and Endpoints Changed for every Service, as the allocate and sync-targets functions
//! handle them now; and, in the same run, the Service Changed pass every event made before
//! fingerprints (every listener checked in AWS: the sweep's pass now). Then one sweep run.
//! AWS calls are counted per operation by an SDK interceptor.
//!
//! Prints Markdown for BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::model::claims::RunToken;
use nlb_port_pool::model::target_policy::TargetPolicy;
use nlb_port_pool::reconcile::{Outcome, Reconciler, SweepLimits};
use testbed::call_counter::{CallCounter, Calls};
use testbed::kube_fixtures::{self, PortSpec, create_namespace, endpoint_slice, opted_in_service};
use testbed::moto::pool_fixture;
use testbed::{Bed, unique_name};

const QUOTA: u32 = 50;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// (ELBv2 calls, DynamoDB calls) per Service.
fn per_service(calls: &Calls, services: usize) -> (f64, f64) {
    let of = |prefix: &str| {
        calls
            .counts
            .iter()
            .filter(|(op, _)| op.starts_with(prefix))
            .map(|(_, n)| n)
            .sum::<usize>() as f64
            / services as f64
    };
    (of("Elastic Load Balancing"), of("DynamoDB"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let services = arg(1, 2000);
    let concurrency = arg(2, 16).max(1);
    let bed = Bed::get();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(180))
        .build();
    let sdk = bed.sdk_config_at(bed.aws_endpoint(), Some(timeouts)).await;
    let admin = bed.kube_client().await;
    let prefix = format!("bench-resync-{services}");
    let nlbs = services.div_ceil(QUOTA as usize) + 1;
    let fixture = pool_fixture(&sdk, &prefix, nlbs, "30000-39999", QUOTA).await;
    let namespace = unique_name(&prefix);
    create_namespace(&admin, &namespace).await;
    let names: Vec<String> = (0..services).map(|i| format!("room-{i:05}")).collect();
    let svc_api: Api<Service> = Api::namespaced(admin.clone(), &namespace);
    let slice_api: Api<EndpointSlice> = Api::namespaced(admin.clone(), &namespace);
    futures::stream::iter(names.iter().enumerate())
        .for_each_concurrent(20, |(i, n)| {
            let svc = opted_in_service(&namespace, n, &[PortSpec::udp("game", 7777, 7777)]);
            let ip = format!("10.{}.{}.{}", 8 + i / 65536, (i / 256) % 256, i % 256);
            let slice = endpoint_slice(
                &namespace,
                &format!("{n}-a"),
                n,
                &[("game", 7777, "UDP")],
                &[(ip.as_str(), true)],
            );
            let (svc_api, slice_api) = (svc_api.clone(), slice_api.clone());
            async move {
                svc_api
                    .create(&PostParams::default(), &svc)
                    .await
                    .expect("creating a Service");
                slice_api
                    .create(&PostParams::default(), &slice)
                    .await
                    .expect("creating a slice");
            }
        })
        .await;
    let cluster = KubeCluster::new(admin.clone(), "bench", "bench");
    let counter = CallCounter::default();
    let reconcilers: Vec<Reconciler> = (0..concurrency)
        .map(|_| {
            let (dynamodb, elb) = counter.clients(&sdk);
            let store = Arc::new(DynamoClaimStore::new(dynamodb, &fixture.table));
            Reconciler::new(
                "bench",
                &fixture.nlbs[0].vpc_id,
                fixture.pools.clone(),
                store,
                Arc::new(AwsLoadBalancing::new(elb)),
            )
            // The fixtures' slices, trusted as the EndpointSlice controller's would be.
            .with_target_policy(TargetPolicy::new([kube_fixtures::SLICE_MANAGER], vec![]))
        })
        .collect();

    // One pass over every Service, `concurrency` at a time: its wall time and calls.
    #[derive(Clone, Copy)]
    enum Pass {
        Event,
        Thorough,
        Endpoints,
    }
    let pass = |kind: Pass| {
        let (names, reconcilers, cluster, namespace) = (&names, &reconcilers, &cluster, &namespace);
        let counter = counter.clone();
        async move {
            counter.take();
            let started = Instant::now();
            futures::stream::iter(names.iter().enumerate())
                .for_each_concurrent(concurrency, |(i, n)| async move {
                    let r = &reconcilers[i % reconcilers.len()];
                    let outcome = match kind {
                        Pass::Event => {
                            r.reconcile_service_as(&RunToken::random(), cluster, namespace, n, None)
                                .await
                        }
                        Pass::Thorough => r.reconcile_service(cluster, namespace, n, None).await,
                        Pass::Endpoints => r.sync_targets(cluster, namespace, n).await,
                    };
                    match outcome {
                        Ok(Outcome::Allocated { .. } | Outcome::TargetsSynced { .. }) => {}
                        other => panic!("{n}: {other:?}"),
                    }
                })
                .await;
            (started.elapsed(), counter.take())
        }
    };

    let (allocation, allocated_calls) = pass(Pass::Event).await;
    let (event_time, event_calls) = pass(Pass::Event).await;
    let (endpoints_time, endpoints_calls) = pass(Pass::Endpoints).await;
    let (thorough_time, thorough_calls) = pass(Pass::Thorough).await;
    counter.take();
    let store = DynamoClaimStore::new(aws_sdk_dynamodb::Client::new(&sdk), &fixture.table);
    let started = Instant::now();
    let report = reconcilers[0]
        .sweep(&cluster, &store, SweepLimits::default())
        .await
        .expect("the sweep runs");
    let (sweep_time, sweep_calls) = (started.elapsed(), counter.take());

    println!(
        "### Resync: {services} allocated Services, {concurrency} reconcilers at once, {nlbs} NLBs\n"
    );
    println!("| pass | wall time | ELBv2 calls per Service | DynamoDB calls per Service |");
    println!("|---|---|---|---|");
    let row = |what: &str, time: Duration, calls: &Calls| {
        let (elb, dynamodb) = per_service(calls, services);
        println!(
            "| {what} | {:.1} s | {elb:.3} | {dynamodb:.3} |",
            time.as_secs_f64()
        );
    };
    row("allocation (for scale)", allocation, &allocated_calls);
    row("Service Changed resync, now", event_time, &event_calls);
    row(
        "Endpoints Changed resync, now",
        endpoints_time,
        &endpoints_calls,
    );
    row(
        "Service Changed resync, every listener checked (the events' pass before)",
        thorough_time,
        &thorough_calls,
    );
    println!(
        "\nOne sweep run: {:.1} s, {} calls ({:?}); {} Services reconciled, {} failures.\n",
        sweep_time.as_secs_f64(),
        sweep_calls.total(),
        sweep_calls.counts,
        report.services_reconciled,
        report.failures
    );
    println!("Resync calls, now: {:?}", event_calls.counts);
    println!("Endpoints resync calls, now: {:?}", endpoints_calls.counts);
    println!("Thorough pass calls: {:?}", thorough_calls.counts);
}
