//! Elastic pool benchmark against the test bed (moto + kube-apiserver on 127.0.0.1), with
//! AWS's provisioning delay given to moto's NLBs by the fault proxy.
//!
//! Run with a bed up: `cargo run --profile benchmark -p handlers --example bench_elastic
//! [BURST [DELAY_SECONDS]]` (default 100 and 5).
//! A managed pool (50 listeners per NLB, spare 50, min 1, max 20) starts with its one NLB;
//! 600 Services arrive in bursts of BURST, each burst allocated by 10 concurrent allocate
//! instances, the pool function woken by their Pool Low signals (one run at a time). Reported:
//! NLBs made, how long the Services that waited spent Pending, AWS calls per allocation and of
//! the pool function; then every Service is deleted and released, and the time until the pool
//! is back at min (retireAfterSeconds 60, the pool function's schedule every 5 s) and what is
//! left (claims, listeners, NLBs).
//!
//! Prints Markdown for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, PostParams};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::model::claims::{ClaimStore, PoolRecords};
use nlb_port_pool::model::pool::PoolSet;
use nlb_port_pool::reconcile::{Outcome, PoolTender, Reconciler, TendSettings};
use testbed::aws_rules::ProvisioningDelay;
use testbed::call_counter::CallCounter;
use testbed::kube_fixtures::{PortSpec, create_namespace, opted_in_service};
use testbed::managed_bench::{ManagedPoolBed, PoolShape, WakeOnPoolLow};
use testbed::{Bed, unique_name};
use tokio::sync::Notify;

const SERVICES: usize = 600;
const INSTANCES: usize = 10;
const SHAPE: PoolShape = PoolShape {
    quota: 50,
    min: 1,
    max: 20,
    spare: 50,
    retire_after_seconds: 60,
};
const SCHEDULE: Duration = Duration::from_secs(5);

struct Bench {
    namespace: String,
    table: String,
    admin: kube::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    pools: PoolSet,
    vpc: String,
    sdk: aws_config::SdkConfig,
}

impl Bench {
    /// A reconciler, its store and its ELBv2 client (the pool function's fleet).
    fn reconciler(
        &self,
        counter: &CallCounter,
    ) -> (Reconciler, Arc<DynamoClaimStore>, Arc<AwsLoadBalancing>) {
        let (dynamodb, elb) = counter.clients(&self.sdk);
        let store = Arc::new(DynamoClaimStore::new(dynamodb, &self.table));
        let elb = Arc::new(AwsLoadBalancing::new(elb));
        let reconciler = Reconciler::new(
            "bench",
            &self.vpc,
            self.pools.clone(),
            store.clone(),
            elb.clone(),
        )
        .with_pool_records(store.clone());
        (reconciler, store, elb)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let burst: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let delay = Duration::from_secs(
        std::env::args()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(5),
    );
    let bed = Bed::get();
    let rule = Arc::new(ProvisioningDelay::new(delay));
    let prefix = format!("bench-elastic-{burst}");
    let ManagedPoolBed {
        proxy,
        sdk,
        admin_sdk,
        table,
        vpc,
        pools,
    } = ManagedPoolBed::start(&prefix, SHAPE, vec![rule.clone()]).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin_sdk);
    let admin = bed.kube_client().await;
    let namespace = unique_name(&prefix);
    create_namespace(&admin, &namespace).await;
    let b = Bench {
        namespace,
        table,
        admin,
        dynamodb,
        pools,
        vpc,
        sdk,
    };
    let names: Vec<String> = (0..SERVICES).map(|i| format!("room-{i:03}")).collect();
    let api: Api<Service> = Api::namespaced(b.admin.clone(), &b.namespace);
    futures::stream::iter(&names)
        .for_each_concurrent(20, |n| {
            let svc = opted_in_service(&b.namespace, n, &[PortSpec::udp("game", 7777, 7777)]);
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &svc)
                    .await
                    .expect("creating a Service");
            }
        })
        .await;
    let cluster = KubeCluster::new(b.admin.clone(), "bench", "bench");

    // The pool function: woken by signals, one run at a time.
    let pool_counter = CallCounter::default();
    let (pool_fn, store, elb) = b.reconciler(&pool_counter);
    let pool_fn = Arc::new(pool_fn);
    let settings = TendSettings {
        wait_active: delay * 4,
        poll: Duration::from_millis(500),
        ..TendSettings::default()
    };
    let first = PoolTender::new(&pool_fn, &*elb)
        .tend_pool(&cluster, "default", settings)
        .await
        .expect("the first run");
    assert_eq!(first.promoted.len(), 1, "{first:?}");
    let wake = Arc::new(Notify::new());
    let runner = {
        let (pool_fn, elb, wake, cluster) =
            (pool_fn.clone(), elb.clone(), wake.clone(), cluster.clone());
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                if let Err(e) = PoolTender::new(&pool_fn, &*elb)
                    .tend_pool(&cluster, "default", settings)
                    .await
                {
                    eprintln!("pool function: {e}");
                }
            }
        })
    };
    pool_counter.take();

    // The allocate instances.
    let counter = CallCounter::default();
    let instances: Vec<Reconciler> = (0..INSTANCES)
        .map(|_| {
            b.reconciler(&counter)
                .0
                .with_growth_signal(Arc::new(WakeOnPoolLow(wake.clone())))
        })
        .collect();
    let mut waited: Vec<Duration> = Vec::new();
    let mut pending_first = 0;
    let started = Instant::now();
    for chunk in names.chunks(burst) {
        let results: Vec<(String, Outcome, Instant)> =
            futures::stream::iter(chunk.iter().enumerate())
                .map(|(i, name)| {
                    let r = &instances[i % INSTANCES];
                    let (cluster, ns) = (&cluster, &b.namespace);
                    async move {
                        for _ in 0..10 {
                            match r.reconcile_service(cluster, ns, name, None).await {
                                Ok(o) => return (name.clone(), o, Instant::now()),
                                Err(e) if e.is_retryable() => {
                                    tokio::time::sleep(Duration::from_millis(100)).await
                                }
                                Err(e) => panic!("{name}: {e}"),
                            }
                        }
                        panic!("{name}: kept failing")
                    }
                })
                .buffer_unordered(INSTANCES)
                .collect()
                .await;
        // Each waiting Service's wait runs from its own Pending answer to its status Allocated.
        let mut pending: Vec<(String, Instant)> = results
            .into_iter()
            .filter(|(_, o, _)| matches!(o, Outcome::Pending(_)))
            .map(|(n, _, at)| (n, at))
            .collect();
        pending_first += pending.len();
        // The waiting Services are allocated by the pool function's run; watch their status.
        let deadline = Instant::now() + Duration::from_secs(300);
        while !pending.is_empty() {
            assert!(Instant::now() < deadline, "still Pending: {pending:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut still = Vec::new();
            for (n, since) in pending {
                let s = api.get(&n).await.expect("the Service");
                let status = s
                    .metadata
                    .annotations
                    .unwrap_or_default()
                    .get("nlb.port-manager/status")
                    .cloned()
                    .unwrap_or_default();
                if status == "Allocated" {
                    waited.push(since.elapsed());
                } else {
                    still.push((n, since));
                }
            }
            pending = still;
        }
        // Let the pool regrow its spare before the next burst, as between real bursts (the
        // last allocations' Pool Low may still be on its way: a second to reach the runner).
        tokio::time::sleep(Duration::from_secs(1)).await;
        while pool_busy(&store).await {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let fill = started.elapsed();
    let allocate_calls = counter.take();
    let pool_calls = pool_counter.take();
    let members = store
        .pool_record("default")
        .await
        .expect("record")
        .members
        .len();
    waited.sort_unstable();
    println!(
        "### Elastic pool: {SERVICES} Services in bursts of {burst}, provisioning delay {} s\n",
        delay.as_secs()
    );
    println!(
        "| NLBs at the end | Services that waited | longest wait | median wait | fill wall time | AWS calls per allocation (allocate) | pool function calls |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {members} | {pending_first} | {:.1} s | {:.1} s | {:.1} s | {:.2} | {} |",
        waited.last().copied().unwrap_or_default().as_secs_f64(),
        percentile(&waited, 0.5).as_secs_f64(),
        fill.as_secs_f64(),
        allocate_calls.total() as f64 / SERVICES as f64,
        pool_calls.total(),
    );
    let by_op: BTreeMap<String, usize> = pool_calls.counts.clone();
    println!("\npool function calls by operation: {by_op:?}\n");

    // Everything goes; the pool shrinks back to min.
    runner.abort();
    let released = Instant::now();
    futures::stream::iter(names.iter().enumerate())
        .for_each_concurrent(INSTANCES, |(i, n)| {
            let (api, r, cluster, ns) = (
                api.clone(),
                &instances[i % INSTANCES],
                &cluster,
                &b.namespace,
            );
            async move {
                api.delete(n, &DeleteParams::default())
                    .await
                    .expect("deleting");
                for _ in 0..10 {
                    match r.reconcile_service(cluster, ns, n, None).await {
                        Ok(_) => return,
                        Err(e) if e.is_retryable() => {
                            tokio::time::sleep(Duration::from_millis(100)).await
                        }
                        Err(e) => panic!("{n}: {e}"),
                    }
                }
            }
        })
        .await;
    let release_time = released.elapsed();
    let shrink = Instant::now();
    loop {
        PoolTender::new(&pool_fn, &*elb)
            .tend_pool(&cluster, "default", settings)
            .await
            .expect("a pool run");
        let left = store
            .pool_record("default")
            .await
            .expect("record")
            .members
            .len();
        if left <= SHAPE.min as usize || shrink.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(SCHEDULE).await;
    }
    let to_min = shrink.elapsed();
    let record = store.pool_record("default").await.expect("record");
    let claims = testbed::invariants::Claims::read(&b.dynamodb, &b.table).await;
    let usage = store.nlb_usage(&record.member_arns()).await.expect("usage");
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&admin_sdk);
    let mut listeners = 0;
    for u in &usage {
        listeners += elb
            .describe_listeners()
            .load_balancer_arn(&u.nlb_arn)
            .send()
            .await
            .map(|d| d.listeners().len())
            .unwrap_or(0);
    }
    println!(
        "| released all | pool back at min (retireAfterSeconds 60, schedule {} s) | NLBs left | claims left | listeners left |",
        SCHEDULE.as_secs()
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {:.1} s | {:.1} s | {} | {} | {listeners} |\n",
        release_time.as_secs_f64(),
        to_min.as_secs_f64(),
        record.members.len(),
        claims.held()
    );
    drop(proxy);
}

/// Whether a made NLB is still provisioning (or being made).
async fn pool_busy(store: &DynamoClaimStore) -> bool {
    let record = store.pool_record("default").await.expect("record");
    if record.members.iter().any(|m| m.arn.is_none()) {
        return true;
    }
    let usage = store.nlb_usage(&record.member_arns()).await.expect("usage");
    usage
        .iter()
        .any(|u| u.state == Some(nlb_port_pool::model::claims::NlbState::Provisioning))
}
