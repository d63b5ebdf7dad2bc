//! Per-pod mode with Kubernetes' own controllers (BENCHMARKS.md, "Per-pod mode with the real
//! controllers"): a per-pod Service over a StatefulSet declaring the reachable gate, its pods
//! made by the StatefulSet controller, placed by the scheduler, run by kwok; the functions see
//! AWS's health delay. Per pod: time from its creation to its address, and to `Ready`; the
//! functions' AWS calls per pod.
//!
//! On a bed of its own, so other tests do not disturb it:
//! ```sh
//! export NLB_STACK_ENV=$PWD/.local/bench-fleet/stack.env
//! testbed/bin/bed-up
//! cargo run --profile benchmark -p testbed --bin bench_fleet    # --pods 10 --health-delay 20
//! testbed/bin/bed-down
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use nlb_port_pool::contract::annotations::{ADDRESS, AUTO_ASSIGN, MODE, POD_RELEASE_AFTER};
use nlb_port_pool::contract::pod_model::REACHABLE_GATE;
use serde_json::json;
use testbed::aws_rules::HealthDelay;
use testbed::kube_fixtures::create_namespace;
use testbed::local_stack::aws::PoolSettings;
use testbed::local_stack::measure::{ms, quantile};
use testbed::local_stack::{LocalStack, StackConfig};
use testbed::{Bed, unique_name};
use tokio::time::Instant;

/// A StatefulSet through the local stack: pod created -> address -> Ready.
#[derive(Debug, Parser)]
struct Args {
    /// Pods of the StatefulSet.
    #[arg(long, default_value_t = 10)]
    pods: usize,
    /// Seconds a new target reads `initial` (AWS: the group's interval x healthy threshold,
    /// 20 s with the rooms' defaults).
    #[arg(long, default_value_t = 20)]
    health_delay: u64,
    /// `OrderedReady` (one pod at a time, each waiting for the previous to be Ready) or
    /// `Parallel`.
    #[arg(long, default_value = "OrderedReady")]
    policy: String,
    /// Cargo profile of the functions and the forwarder.
    #[arg(long, default_value = "benchmark")]
    profile: String,
}

/// When the bench first saw each pod, its address, and it `Ready` (the bench's clock).
#[derive(Debug, Default, Clone, Copy)]
struct PodTimes {
    seen: Option<Instant>,
    addressed: Option<Instant>,
    ready: Option<Instant>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let stack_env = testbed::stack_env_path();
    let bed = Bed::load(&stack_env).map_err(anyhow::Error::msg)?;
    let admin = bed.kube_client().await;
    let ns = unique_name("bench-fleet");
    create_namespace(&admin, &ns).await;
    let dir = stack_env
        .parent()
        .context("the stack file has a directory")?
        .join(&ns);
    let delay = Arc::new(HealthDelay::new(Duration::from_secs(args.health_delay)));
    let mut config = StackConfig::new(&ns, dir);
    config.cluster = "bench".into();
    config.namespaces = vec![ns.clone()];
    config.pool = PoolSettings {
        nlbs: args.pods.div_ceil(50),
        ..PoolSettings::default()
    };
    config.profile = Some(args.profile.clone());
    config.delivery.sweep_every = None;
    config.health = Some(delay);
    let progress = |line: &str| eprintln!("==> {line}");
    let stack = LocalStack::start(&bed, config, &progress).await?;
    let measured = measure(&args, &admin, &ns).await;
    let calls = stack.functions_aws_calls().unwrap_or(0);
    let (sdk, aws) = (stack.sdk.clone(), stack.aws.clone());
    stack.stop().await;
    aws.delete(&sdk).await;
    let (times, all_ready) = measured?;
    report(&args, &times, all_ready, calls)
}

async fn measure(
    args: &Args,
    admin: &kube::Client,
    ns: &str,
) -> Result<(BTreeMap<String, PodTimes>, Duration)> {
    let times = Arc::new(std::sync::Mutex::new(BTreeMap::<String, PodTimes>::new()));
    let watch = tokio::spawn(watch_pods(admin.clone(), ns.to_owned(), times.clone()));
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "fleet", "namespace": ns,
                     "annotations": {AUTO_ASSIGN: "true", MODE: "per-pod", POD_RELEASE_AFTER: "60"}},
        "spec": {"selector": {"app": "fleet"},
                 "ports": [{"name": "game", "protocol": "UDP", "port": 7777, "targetPort": 8000}]}});
    let service: Service = serde_json::from_value(service).context("the Service manifest")?;
    Api::<Service>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &service)
        .await
        .context("creating the Service")?;
    let set = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "fleet", "namespace": ns},
        "spec": {"replicas": args.pods, "serviceName": "fleet",
                 "podManagementPolicy": args.policy,
                 "selector": {"matchLabels": {"app": "fleet"}},
                 "template": {"metadata": {"labels": {"app": "fleet"}},
                              "spec": {"automountServiceAccountToken": false,
                                       "terminationGracePeriodSeconds": 1,
                                       "readinessGates": [{"conditionType": REACHABLE_GATE}],
                                       "containers": [{"name": "game", "image": "game-server:local"}]}}}});
    let set: StatefulSet = serde_json::from_value(set).context("the StatefulSet manifest")?;
    let started = Instant::now();
    Api::<StatefulSet>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &set)
        .await
        .context("creating the StatefulSet")?;
    eprintln!("==> StatefulSet of {} ({}) created", args.pods, args.policy);
    let limit = Duration::from_secs(60 + args.pods as u64 * (args.health_delay + 30));
    loop {
        let snapshot = lock(&times).clone();
        let ready = snapshot.values().filter(|t| t.ready.is_some()).count();
        if ready == args.pods {
            watch.abort();
            return Ok((snapshot, started.elapsed()));
        }
        if started.elapsed() > limit {
            watch.abort();
            bail!("{ready} of {} pods Ready after {limit:?}", args.pods);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn watch_pods(
    client: kube::Client,
    ns: String,
    times: Arc<std::sync::Mutex<BTreeMap<String, PodTimes>>>,
) {
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = stream.next().await {
        let pods = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => vec![p],
            _ => continue,
        };
        let now = Instant::now();
        let mut all = lock(&times);
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let entry = all.entry(name).or_default();
            entry.seen.get_or_insert(now);
            let annotated = pod
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ADDRESS));
            if annotated {
                entry.addressed.get_or_insert(now);
            }
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                entry.ready.get_or_insert(now);
            }
        }
    }
}

fn report(
    args: &Args,
    times: &BTreeMap<String, PodTimes>,
    all_ready: Duration,
    calls: usize,
) -> Result<()> {
    let since_seen = |pick: fn(&PodTimes) -> Option<Instant>| -> Vec<Duration> {
        times
            .values()
            .filter_map(|t| Some(pick(t)? - t.seen?))
            .collect()
    };
    let to_address = since_seen(|t| t.addressed);
    let to_ready = since_seen(|t| t.ready);
    if to_ready.len() != args.pods {
        bail!("{} of {} pods have times", to_ready.len(), args.pods);
    }
    println!(
        "| pods | policy | health delay | pod created -> address, median (max) | pod created -> Ready, median (max) | all Ready | AWS calls per pod |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} s | {} ms ({} ms) | {} ms ({} ms) | {:.1} s | {:.2} |",
        args.pods,
        args.policy,
        args.health_delay,
        ms(quantile(&to_address, 0.5)),
        ms(quantile(&to_address, 1.0)),
        ms(quantile(&to_ready, 0.5)),
        ms(quantile(&to_ready, 1.0)),
        all_ready.as_secs_f64(),
        calls as f64 / args.pods as f64
    );
    Ok(())
}
