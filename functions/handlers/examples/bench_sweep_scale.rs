//! The sweep at 10,000 Services: does a run stay inside the sweep function's 60-second timeout,
//! and what does it call? Against the in-memory doubles with a fixed latency per call (ELBv2
//! and DynamoDB), on tokio's paused clock: time passes only in those latencies, so a run's
//! duration is their critical path, with no CPU time and no kube-apiserver reads (an
//! approximation of AWS from below: AWS's own latencies vary, and throttling adds more).
//! Calls are exact.
//!
//! Run: `cargo run --profile benchmark -p handlers --example bench_sweep_scale
//! [SERVICES [ELBV2_MS [DYNAMODB_MS]]]` (default 10000, 60 and 10). Prints Markdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nlb_port_pool::adapters::memory::{
    MEMORY_CLUSTER_UID, MemoryClaimStore, MemoryCluster, MemoryLoadBalancing,
};
use nlb_port_pool::contract::annotations::AUTO_ASSIGN;
use nlb_port_pool::contract::event::ServiceKey;
use nlb_port_pool::contract::service_model::{ServicePortSpec, ServiceState, TargetPort};
use nlb_port_pool::model::claims::TableIdentity;
use nlb_port_pool::model::pool::PoolSet;
use nlb_port_pool::reconcile::{DEFAULT_STACK_ID, Reconciler, SweepLimits, SweepReport};
use tokio::time::Instant;

const QUOTA: usize = 50;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn room(i: usize) -> ServiceState {
    ServiceState {
        created: None,
        key: ServiceKey {
            cluster: "prod".into(),
            namespace: "games".into(),
            name: format!("room-{i:05}"),
        },
        uid: format!("u-{i}"),
        resource_version: String::new(),
        deleting: false,
        finalizers: vec![],
        annotations: [(AUTO_ASSIGN.to_owned(), "true".to_owned())].into(),
        ports: vec![ServicePortSpec {
            name: Some("game".into()),
            port: 7777,
            protocol: "UDP".into(),
            target_port: TargetPort::Number(7777),
        }],
        external_name: false,
        selector: Default::default(),
        pod: None,
    }
}

/// One sweep run as the function makes it: stopping at two thirds of 60 s.
async fn run(
    reconciler: &Reconciler,
    cluster: &MemoryCluster,
    store: &MemoryClaimStore,
    elb: &MemoryLoadBalancing,
) -> (Duration, SweepReport, BTreeMap<&'static str, usize>, usize) {
    let limits = SweepLimits {
        stop_by: Some(Instant::now() + Duration::from_secs(40)),
        ..SweepLimits::default()
    };
    let (calls, reads) = (elb.all_calls(), store.owner_reads());
    let started = Instant::now();
    let report = reconciler
        .sweep(cluster, store, limits)
        .await
        .expect("the sweep runs");
    let took = started.elapsed();
    let mut made = elb.all_calls();
    for (op, n) in calls {
        *made.entry(op).or_default() -= n;
    }
    made.retain(|_, n| *n > 0);
    (took, report, made, store.owner_reads() - reads)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let services = arg(1, 10_000) as usize;
    let elb_latency = Duration::from_millis(arg(2, 60));
    let ddb_latency = Duration::from_millis(arg(3, 10));
    let nlbs: Vec<(String, String)> = (0..services.div_ceil(QUOTA))
        .map(|i| {
            (
                format!("arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/games-{i}/{i}"),
                format!("games-{i}.elb"),
            )
        })
        .collect();
    let arns: Vec<String> = nlbs.iter().map(|(a, _)| format!("\"{a}\"")).collect();
    let pools = PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"30000-30049","listenerQuota":{QUOTA}}}}}"#,
        arns.join(",")
    ))
    .expect("pools");
    let pairs: Vec<(&str, &str)> = nlbs.iter().map(|(a, d)| (a.as_str(), d.as_str())).collect();
    let store = Arc::new(MemoryClaimStore::new().with_latency(ddb_latency));
    store.set_identity(Some(TableIdentity {
        cluster_name: "prod".into(),
        cluster_uid: MEMORY_CLUSTER_UID.into(),
        stack_id: DEFAULT_STACK_ID.into(),
    }));
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&pairs).with_latency(elb_latency));
    let reconciler = Reconciler::new("prod", "vpc-1", pools, store.clone(), elb.clone())
        .with_claim_grace(Duration::from_secs(120));
    let cluster = MemoryCluster::new();
    for i in 0..services {
        cluster.put_service(room(i));
    }
    // Allocated as events would, 16 at once (on the paused clock this costs no wall time).
    futures::stream::iter(0..services)
        .map(|i| {
            let (reconciler, cluster) = (&reconciler, &cluster);
            async move {
                let s = room(i);
                // Many at once on one pool may find its claims changing: again, as events are.
                for _ in 0..10 {
                    let result = reconciler
                        .reconcile_service(cluster, &s.key.namespace, &s.key.name, Some(&s.uid))
                        .await;
                    if result.is_ok() {
                        return;
                    }
                }
                panic!("{} could not be allocated in 10 tries", s.key);
            }
        })
        .buffer_unordered(16)
        .count()
        .await;
    let claims = store.all_claims().len();
    assert_eq!(claims, services, "every Service holds its port");

    println!(
        "| run ({services} Services on {} NLBs, ELBv2 {} ms, DynamoDB {} ms a call) | duration | cut short | reconciled (retries) | ELBv2 calls | claims reads by owner |",
        nlbs.len(),
        elb_latency.as_millis(),
        ddb_latency.as_millis()
    );
    println!("|---|---|---|---|---|---|");
    for n in 1..=3 {
        let (took, report, calls, reads) = run(&reconciler, &cluster, &store, &elb).await;
        let total: usize = calls.values().sum();
        println!(
            "| {n} | {:.1} s | {} | {} ({}) | {total} {calls:?} | {reads} |",
            took.as_secs_f64(),
            report.cut_short,
            report.services_reconciled,
            report.pending_retried,
        );
    }
    let limits = SweepLimits::default();
    println!(
        "\nEvery Service is checked fully within {} runs (SweepServicesPerRun {}).",
        limits.runs_to_check_all(services),
        limits.services_per_run
    );
}
