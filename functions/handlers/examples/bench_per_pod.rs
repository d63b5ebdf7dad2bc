//! Per-pod mode benchmark against the test bed (moto + kube-apiserver on 127.0.0.1), with AWS's
//! NLB provisioning time and a new target's first health checks given to moto by the fault
//! proxy.
//!
//! Run with a bed up: `cargo run --profile benchmark -p handlers --example bench_per_pod
//! [PODS [HEALTH_SECONDS [PROVISIONING_SECONDS]]]` (default 200, 20 and 5).
//! One Service in per-pod mode; PODS pods appear at once (made and listed in two EndpointSlices
//! of 100, as the EndpointSlice controller would). A managed pool (50 listeners per NLB, spare
//! 10, min 1, max 8) starts with its one NLB. One sync-targets run takes the Endpoints Changed
//! event; the pool function, woken by Pool Low and on its schedule (every 5 s here), grows the
//! pool and allocates the pods that wait; the reachable function checks every 2 s. Reported: time until every pod has its address and
//! until every pod is Ready (target healthy), AWS calls per pod by function, NLBs made; then the
//! Service is deleted and released.
//!
//! Prints Markdown for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::contract::annotations::{
    ADDRESS, HC_HEALTHY_THRESHOLD, HC_INTERVAL, MODE, POD_RELEASE_AFTER, STATUS,
};
use nlb_port_pool::model::claims::PoolRecords;
use nlb_port_pool::model::target_policy::TargetPolicy;
use nlb_port_pool::reconcile::{PoolTender, ReachChecker, ReachSettings, Reconciler, TendSettings};
use testbed::aws_rules::{HealthDelay, ProvisioningDelay};
use testbed::call_counter::CallCounter;
use testbed::kube_fixtures::{self, PortSpec, create_namespace, opted_in_service};
use testbed::managed_bench::{ManagedPoolBed, PoolShape, WakeOnPoolLow};
use testbed::{Bed, pod_fixtures, unique_name};
use tokio::sync::Notify;

const SHAPE: PoolShape = PoolShape {
    quota: 50,
    min: 1,
    max: 8,
    spare: 10,
    retire_after_seconds: 3600,
};
const SERVICE: &str = "fleet";

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pods: usize = arg(1, 200);
    // HEALTH_SECONDS "checks": a target is healthy after its group's interval x healthy
    // threshold, as AWS's checks take; BENCH_HC=aws gives the Service AWS's own defaults (30 s,
    // 5 healthy checks: what it had before the room defaults of 10 s and 2).
    let follow_checks = std::env::args().nth(2).as_deref() == Some("checks");
    let health = Duration::from_secs(arg(2, 20));
    let provisioning = Duration::from_secs(arg(3, 5));
    let bed = Bed::get();
    let provisioning_rule = Arc::new(ProvisioningDelay::new(provisioning));
    let health_rule = Arc::new(if follow_checks {
        HealthDelay::following_checks(1.0)
    } else {
        HealthDelay::new(health)
    });
    let prefix = format!("bench-per-pod-{pods}");
    let ManagedPoolBed {
        proxy,
        sdk,
        admin_sdk,
        table,
        vpc,
        pools,
    } = ManagedPoolBed::start(
        &prefix,
        SHAPE,
        vec![provisioning_rule.clone(), health_rule.clone()],
    )
    .await;
    let reach = ReachSettings {
        check_every: Duration::from_secs(2),
        timeout: Duration::from_secs(600),
        run_for: Duration::ZERO,
        concurrency: 16,
    };
    let reconciler = |counter: &CallCounter| {
        let (dynamodb, elb) = counter.clients(&sdk);
        let store = Arc::new(DynamoClaimStore::new(dynamodb, &table));
        let elb = Arc::new(AwsLoadBalancing::new(elb));
        let r = Reconciler::new("bench", &vpc, pools.clone(), store.clone(), elb.clone())
            .with_pool_records(store.clone())
            .with_check_records(store.clone())
            .with_reach_settings(reach)
            // The benchmark's slices are written by hand, as the tests' are.
            .with_target_policy(TargetPolicy::new([kube_fixtures::SLICE_MANAGER], vec![]));
        (r, store, elb)
    };
    let admin = bed.kube_client().await;
    let namespace = unique_name(&prefix);
    create_namespace(&admin, &namespace).await;
    let cluster = KubeCluster::new(admin.clone(), "bench", "bench");

    // The pool function with its first NLB, then a runner woken by Pool Low.
    let pool_counter = CallCounter::default();
    let (pool_fn, store, elb) = reconciler(&pool_counter);
    let pool_fn = Arc::new(pool_fn);
    let settings = TendSettings {
        wait_active: provisioning * 4,
        poll: Duration::from_millis(500),
        ..TendSettings::default()
    };
    PoolTender::new(&pool_fn, &*elb)
        .tend_pool(&cluster, "default", settings)
        .await
        .expect("the first pool run");
    pool_counter.take();
    let wake = Arc::new(Notify::new());
    let runner = {
        let (pool_fn, elb, wake, cluster) =
            (pool_fn.clone(), elb.clone(), wake.clone(), cluster.clone());
        tokio::spawn(async move {
            loop {
                // Pool Low, or its schedule (PoolRate; 5 s here).
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                if let Err(e) = PoolTender::new(&pool_fn, &*elb)
                    .tend_pool(&cluster, "default", settings)
                    .await
                {
                    eprintln!("pool function: {e}");
                }
            }
        })
    };
    // The reachable function: one look every 2 s.
    let reach_counter = CallCounter::default();
    let (reachable, reach_store, _) = reconciler(&reach_counter);
    let reachable = Arc::new(reachable.with_growth_signal(Arc::new(WakeOnPoolLow(wake.clone()))));
    let reach_loop = {
        let (reachable, reach_store, cluster) =
            (reachable.clone(), reach_store.clone(), cluster.clone());
        tokio::spawn(async move {
            loop {
                let checker = ReachChecker::new(&reachable, &*reach_store);
                if let Err(e) = checker.tend_checks(&cluster).await {
                    eprintln!("reachable function: {e}");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };

    // The Service and its pods (made before the clock starts: the kubelet's part).
    let mut svc = opted_in_service(&namespace, SERVICE, &[PortSpec::udp("game", 7777, 7777)]);
    let notes = svc.metadata.annotations.get_or_insert_with(BTreeMap::new);
    notes.insert(MODE.to_owned(), "per-pod".to_owned());
    notes.insert(POD_RELEASE_AFTER.to_owned(), "0".to_owned());
    if std::env::var("BENCH_HC").is_ok_and(|v| v == "aws") {
        notes.insert(HC_INTERVAL.to_owned(), "30".to_owned());
        notes.insert(HC_HEALTHY_THRESHOLD.to_owned(), "5".to_owned());
    }
    Api::<Service>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &svc)
        .await
        .expect("the Service");
    let names: Vec<(String, String)> = (0..pods)
        .map(|i| {
            (
                format!("{SERVICE}-{i}"),
                format!("10.40.{}.{}", i / 250, i % 250 + 1),
            )
        })
        .collect();
    for (pod, ip) in &names {
        pod_fixtures::run_pod(&admin, &namespace, pod, SERVICE, false, (ip, true, true)).await;
    }

    // Go: the slices appear, one Endpoints Changed reaches sync-targets.
    let sync_counter = CallCounter::default();
    let sync = reconciler(&sync_counter)
        .0
        .with_growth_signal(Arc::new(WakeOnPoolLow(wake.clone())));
    let started = Instant::now();
    let slices = Api::<k8s_openapi::api::discovery::v1::EndpointSlice>::namespaced(
        admin.clone(),
        &namespace,
    );
    for (n, chunk) in names.chunks(100).enumerate() {
        let listed: Vec<(&str, &str, bool)> = chunk
            .iter()
            .map(|(p, ip)| (p.as_str(), ip.as_str(), true))
            .collect();
        let slice = pod_fixtures::pod_slice(
            &namespace,
            &format!("{SERVICE}-{n}"),
            SERVICE,
            7777,
            &listed,
        );
        slices
            .patch(
                &format!("{SERVICE}-{n}"),
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&slice),
            )
            .await
            .expect("the slice");
    }
    let first = sync
        .sync_targets(&cluster, &namespace, SERVICE)
        .await
        .expect("sync-targets");
    let after_sync = started.elapsed();

    // Watch the pods: every address, then every Ready.
    let pod_api: Api<Pod> = Api::namespaced(admin.clone(), &namespace);
    let (mut all_addressed, mut all_ready) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while all_ready.is_none() && Instant::now() < deadline {
        let list = pod_api
            .list(&ListParams::default().labels(&format!("app={SERVICE}")))
            .await
            .expect("pods");
        let notes: Vec<BTreeMap<String, String>> = list
            .items
            .into_iter()
            .map(|p| p.metadata.annotations.unwrap_or_default())
            .collect();
        let addressed = notes.iter().filter(|a| a.contains_key(ADDRESS)).count();
        let ready = notes
            .iter()
            .filter(|a| a.get(STATUS).map(String::as_str) == Some("Ready"))
            .count();
        if addressed == pods && all_addressed.is_none() {
            all_addressed = Some(started.elapsed());
        }
        if ready == pods {
            all_ready = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (sync_calls, pool_calls, reach_calls) = (
        sync_counter.take(),
        pool_counter.take(),
        reach_counter.take(),
    );
    let members = store
        .pool_record("default")
        .await
        .expect("record")
        .members
        .len();
    let secs =
        |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
    println!(
        "### Per-pod mode: {pods} pods behind one Service, health delay {}, provisioning delay {} s\n",
        if follow_checks {
            "the group's interval x healthy threshold".to_owned()
        } else {
            format!("{} s", health.as_secs())
        },
        provisioning.as_secs()
    );
    println!(
        "| first sync-targets run | all addressed | all Ready | NLBs made | calls/pod: sync-targets | pool function | reachable | total |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let per = |n: usize| n as f64 / pods as f64;
    println!(
        "| {:.1} s ({first:?}) | {} | {} | {members} | {:.2} | {:.2} | {:.2} | {:.2} |",
        after_sync.as_secs_f64(),
        secs(all_addressed),
        secs(all_ready),
        per(sync_calls.total()),
        per(pool_calls.total()),
        per(reach_calls.total()),
        per(sync_calls.total() + pool_calls.total() + reach_calls.total()),
    );
    println!("\nsync-targets calls: {:?}", sync_calls.counts);
    println!("pool function calls: {:?}", pool_calls.counts);
    println!("reachable calls: {:?}\n", reach_calls.counts);

    // Everything goes.
    reach_loop.abort();
    runner.abort();
    let released = Instant::now();
    Api::<Service>::namespaced(admin.clone(), &namespace)
        .delete(SERVICE, &DeleteParams::default())
        .await
        .expect("deleting the Service");
    for _ in 0..10 {
        match sync
            .reconcile_service(&cluster, &namespace, SERVICE, None)
            .await
        {
            Ok(_) => break,
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("releasing: {e}"),
        }
    }
    let claims =
        testbed::invariants::Claims::read(&aws_sdk_dynamodb::Client::new(&admin_sdk), &table).await;
    println!("| released all | claims left |\n|---|---|");
    println!(
        "| {:.1} s | {} |\n",
        released.elapsed().as_secs_f64(),
        claims.held()
    );
    drop(proxy);
}
