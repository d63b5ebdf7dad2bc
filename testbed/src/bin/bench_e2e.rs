//! End-to-end benchmark on the local stack (BENCHMARKS.md, "End to end (local stack)"):
//! a burst of opted-in Services created at once, latency from each Service's creation to its
//! `nlb.port-manager/allocated-port` annotation (p50, p99), then the time to release them all;
//! with the CPU each process used, to show which one bounds the rest.
//!
//! On a bed of its own, so other tests do not disturb it:
//! ```sh
//! export NLB_STACK_ENV=$PWD/.local/bench-e2e/stack.env
//! testbed/bin/bed-up
//! cargo run --profile benchmark -p testbed --bin bench_e2e    # --services 100 --runs 3
//! testbed/bin/bed-down
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use nlb_port_pool::contract::annotations::ALLOCATED_PORT;
use testbed::kube_fixtures::{PortSpec, create_namespace, endpoint_slice, opted_in_service};
use testbed::local_stack::aws::PoolSettings;
use testbed::local_stack::measure::{
    Burst, CpuSample, Tracked, function_peak_rss, ms, quantile, report,
};
use testbed::local_stack::{LocalStack, StackConfig};
use testbed::{Bed, unique_name};
use tokio::time::Instant;

/// Burst of Services through the local stack: creation -> allocated-port, and release.
#[derive(Debug, Parser)]
struct Args {
    /// Services per burst.
    #[arg(long, default_value_t = 100)]
    services: usize,
    /// Bursts (each measured on its own).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Instances per function `cargo lambda watch` may run at once.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Cargo profile of the functions and the forwarder.
    #[arg(long, default_value = "benchmark")]
    profile: String,
    /// Service creations (and deletions) in flight at once.
    #[arg(long, default_value_t = 20)]
    parallel: usize,
}

/// When each Service was first seen allocated, and when it was deleted.
#[derive(Default)]
struct Seen {
    allocated: HashMap<String, Instant>,
    deleted: HashMap<String, Instant>,
}

#[tokio::main]
async fn main() -> Result<()> {
    // Every delivery is a log line: only when asked for (RUST_LOG=info); failures are counted.
    if std::env::var_os("RUST_LOG").is_some() {
        nlb_port_pool::adapters::telemetry::init_tracing();
    }
    let args = Args::parse();
    let stack_env = testbed::stack_env_path();
    if std::env::var_os("NLB_STACK_ENV").is_none() {
        eprintln!("note: NLB_STACK_ENV is not set; a dedicated bed gives steadier figures");
    }
    let bed = Bed::load(&stack_env).map_err(anyhow::Error::msg)?;
    let admin = bed.kube_client().await;
    let ns = unique_name("bench");
    create_namespace(&admin, &ns).await;
    let dir = stack_env
        .parent()
        .context("the stack file has a directory")?
        .join(&ns);
    let mut config = StackConfig::new(&ns, dir);
    config.cluster = "bench".into();
    config.namespaces = vec![ns.clone()];
    config.pool = PoolSettings {
        nlbs: args.services.div_ceil(50) + 1,
        ..PoolSettings::default()
    };
    config.profile = Some(args.profile.clone());
    config.concurrency = args.concurrency;
    config.delivery.sweep_every = None;
    let progress = |line: &str| eprintln!("==> {line}");
    // Ctrl-C or SIGTERM stops the stack's processes before the bench exits.
    let stack = tokio::select! {
        s = LocalStack::start(&bed, config, &progress) => s?,
        _ = interrupted() => bail!("interrupted"),
    };
    let measured = tokio::select! {
        r = measure(&args, &bed, &admin, &ns, &stack) => r,
        _ = interrupted() => Err(anyhow::anyhow!("interrupted")),
    };
    let peaks = function_peak_rss(stack.functions.pid());
    let (sdk, aws) = (stack.sdk.clone(), stack.aws.clone());
    stack.stop().await;
    aws.delete(&sdk).await;
    let bursts = measured?;
    let settings = format!(
        "{} Services per burst, {} runs, {} instances per function, profile {}, {} creations in flight",
        args.services, args.runs, args.concurrency, args.profile, args.parallel
    );
    println!("{}", report(&settings, &bursts));
    for (function, mib) in peaks {
        println!("| peak RSS of a {function} process (VmHWM), MiB | {mib:.1} |");
    }
    Ok(())
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn measure(
    args: &Args,
    bed: &Bed,
    admin: &kube::Client,
    ns: &str,
    stack: &LocalStack,
) -> Result<Vec<Burst>> {
    let tracked = tracked(bed, stack)?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watch = tokio::spawn(watch_services(
        admin.clone(),
        ns.to_owned(),
        Arc::clone(&seen),
    ));
    let warm = args.concurrency as usize * 2;
    eprintln!("==> warm-up: {warm} Services");
    let bench = Bench {
        admin,
        ns,
        args,
        stack,
        seen: &seen,
        tracked: &tracked,
    };
    burst(bench, "warm", warm).await?;
    let mut bursts = Vec::new();
    for run in 1..=args.runs {
        eprintln!("==> burst {run}/{}: {} Services", args.runs, args.services);
        let tag = format!("r{run}");
        let b = burst(bench, &tag, args.services).await?;
        eprintln!(
            "    p50 {} ms, p99 {} ms, all allocated in {:.1} s, released in {:.1} s",
            ms(quantile(&b.latencies, 0.5)),
            ms(quantile(&b.latencies, 0.99)),
            b.makespan.as_secs_f64(),
            b.release.as_secs_f64()
        );
        bursts.push(b);
    }
    watch.abort();
    Ok(bursts)
}

fn tracked(bed: &Bed, stack: &LocalStack) -> Result<Vec<Tracked>> {
    let state = std::path::PathBuf::from(bed.var("NLB_BED_STATE").context("NLB_BED_STATE")?);
    let pid_of = |name: &str| -> Result<u32> {
        let text = std::fs::read_to_string(state.join(format!("{name}.pid")))?;
        Ok(text.trim().parse()?)
    };
    let entry = |name: &str, pid: u32, tree: bool| Tracked {
        name: name.into(),
        pid,
        tree,
    };
    let mut out = vec![
        entry("moto (one Python process)", pid_of("moto")?, false),
        entry("kube-apiserver", pid_of("kube-apiserver")?, false),
        entry("etcd", pid_of("etcd")?, false),
        entry(
            "functions (cargo lambda watch and instances)",
            stack.functions.pid(),
            true,
        ),
        entry(
            "bench (delivery loop, watch, writes)",
            std::process::id(),
            false,
        ),
    ];
    if let Some(f) = &stack.forwarder {
        out.insert(3, entry("forwarder", f.pid(), false));
    }
    Ok(out)
}

async fn watch_services(client: kube::Client, ns: String, seen: Arc<Mutex<Seen>>) {
    let api: Api<Service> = Api::namespaced(client, &ns);
    let stream = watcher(api, watcher::Config::default());
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let now = Instant::now();
        let Ok(mut s) = seen.lock() else { return };
        match event {
            Ok(watcher::Event::Apply(svc) | watcher::Event::InitApply(svc)) => {
                let allocated = svc
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(ALLOCATED_PORT));
                if allocated {
                    let name = svc.metadata.name.unwrap_or_default();
                    s.allocated.entry(name).or_insert(now);
                }
            }
            Ok(watcher::Event::Delete(svc)) => {
                s.deleted.insert(svc.metadata.name.unwrap_or_default(), now);
            }
            _ => {}
        }
    }
}

/// What every burst of one run measures with.
#[derive(Clone, Copy)]
struct Bench<'a> {
    admin: &'a kube::Client,
    ns: &'a str,
    args: &'a Args,
    stack: &'a LocalStack,
    seen: &'a Mutex<Seen>,
    tracked: &'a [Tracked],
}

/// `n` Services named `<tag>-NNN` made at once, timed to their addresses, then deleted.
async fn burst(bench: Bench<'_>, tag: &str, n: usize) -> Result<Burst> {
    let Bench {
        admin,
        ns,
        args,
        stack,
        seen,
        tracked,
    } = bench;
    let names: Vec<String> = (0..n).map(|i| format!("{tag}-{i:03}")).collect();
    let services: Api<Service> = Api::namespaced(admin.clone(), ns);
    let slices: Api<EndpointSlice> = Api::namespaced(admin.clone(), ns);
    let stats = &stack.delivery.as_ref().context("events are on")?.stats;
    let failed_before = stats.failed.load(std::sync::atomic::Ordering::Relaxed);
    stats.timings.lock().map(|mut t| t.clear()).ok();

    let cpu0 = CpuSample::take(tracked);
    let t0 = Instant::now();
    let created: HashMap<String, Instant> = futures::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let (services, slices) = (services.clone(), slices.clone());
            async move {
                let ip = format!("10.9.{}.{}", i / 250, i % 250 + 1);
                let slice = endpoint_slice(
                    ns,
                    &format!("{name}-1"),
                    name,
                    &[("game", 7777, "TCP")],
                    &[(&ip, true)],
                );
                slices.create(&PostParams::default(), &slice).await?;
                let svc = opted_in_service(ns, name, &[PortSpec::tcp("game", 7777, 7777)]);
                services.create(&PostParams::default(), &svc).await?;
                Ok::<_, kube::Error>((name.clone(), Instant::now()))
            }
        })
        .buffer_unordered(args.parallel)
        .try_collect()
        .await?;
    let done = wait_all(seen, &names, |s| &s.allocated, Duration::from_secs(900)).await?;
    let cpu1 = CpuSample::take(tracked);
    let latencies = names
        .iter()
        .map(|n| done[n].saturating_duration_since(created[n]))
        .collect();
    let makespan = names.iter().map(|n| done[n]).max().unwrap_or(t0) - t0;
    let timings = stats.timings.lock().map(|t| t.clone()).unwrap_or_default();

    let t1 = Instant::now();
    futures::stream::iter(names.iter())
        .map(|name| {
            let services = services.clone();
            async move {
                services
                    .delete(name, &DeleteParams::default())
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(args.parallel)
        .try_collect::<Vec<()>>()
        .await?;
    let gone = wait_all(seen, &names, |s| &s.deleted, Duration::from_secs(900)).await?;
    let cpu2 = CpuSample::take(tracked);
    let release = names.iter().map(|n| gone[n]).max().unwrap_or(t1) - t1;
    for name in &names {
        let _ = slices
            .delete(&format!("{name}-1"), &DeleteParams::default())
            .await;
    }
    let listeners = listeners_left(stack).await?;
    if listeners > 0 {
        bail!("{listeners} listeners left after the release");
    }

    let mut invocations: HashMap<&'static str, Vec<Duration>> = HashMap::new();
    for t in &timings {
        invocations.entry(t.function).or_default().push(t.invoke);
    }
    Ok(Burst {
        latencies,
        makespan,
        release,
        cpu_burst: cpu0.used_until(&cpu1, t1 - t0),
        cpu_release: cpu1.used_until(&cpu2, release),
        invocations,
        queued: timings.iter().map(|t| t.queued).collect(),
        failed: (stats.failed.load(std::sync::atomic::Ordering::Relaxed) - failed_before) as usize,
    })
}

async fn wait_all(
    seen: &Mutex<Seen>,
    names: &[String],
    pick: impl Fn(&Seen) -> &HashMap<String, Instant>,
    timeout: Duration,
) -> Result<HashMap<String, Instant>> {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let s = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let map = pick(&s);
            let missing = names.iter().filter(|n| !map.contains_key(*n)).count();
            if missing == 0 {
                return Ok(names.iter().map(|n| (n.clone(), map[n])).collect());
            }
            if Instant::now() > deadline {
                bail!(
                    "{missing} of {} Services not done after {timeout:?}",
                    names.len()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn listeners_left(stack: &LocalStack) -> Result<usize> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&stack.sdk);
    let mut n = 0;
    for nlb in &stack.aws.nlbs {
        let out = elb
            .describe_listeners()
            .load_balancer_arn(&nlb.arn)
            .send()
            .await?;
        n += out.listeners().len();
    }
    Ok(n)
}
