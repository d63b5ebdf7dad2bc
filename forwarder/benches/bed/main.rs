//! Forwarder benchmark against the test bed (a measurement, not a timed test).
//!
//! ```sh
//! cargo bench -p forwarder --bench bed      # BENCH_SERVICES=10000 BENCH_BURST=1000 BENCH_RUNS=3
//! ```
//!
//! With `BENCH_SERVICES` opted-in Services in kube-apiserver, each run starts the release
//! binary (as deploy/'s ServiceAccount, watching all namespaces, default settings) and
//! measures: the time from start to `/readyz` (Lease taken, first list done), RSS then and
//! after the initial resync was sent, the resync's throughput to the bus (events accepted by
//! PutEvents per second, a rule -> SQS target attached), and for a burst of `BENCH_BURST`
//! Service writes the lag from each write to its event arriving in SQS.

mod receiver;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use nlb_port_pool::contract::annotations::POOL;
use serde_json::json;
use support::{Measured, Proc, median, percentile};
use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, moto, unique_name};
use tokio::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let services = env_usize("BENCH_SERVICES", 10_000);
    let burst = env_usize("BENCH_BURST", 1_000).min(services);
    let runs = env_usize("BENCH_RUNS", 3);
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    support::apply_deploy();

    // GIVEN many opted-in Services (headless: no ClusterIP to allocate for 10,000)
    let ns = unique_name("bench");
    kube_fixtures::create_namespace(&admin, &ns).await;
    let names: Vec<String> = (0..services).map(|i| format!("room-{i:05}")).collect();
    let started = Instant::now();
    let api: Api<Service> = Api::namespaced(admin.clone(), &ns);
    futures::stream::iter(names.iter().map(|name| {
        let api = api.clone();
        let mut svc =
            kube_fixtures::opted_in_service(&ns, name, &[PortSpec::udp("game", 7777, 7777)]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.cluster_ip = Some("None".into());
        }
        async move { api.create(&PostParams::default(), &svc).await.map(|_| ()) }
    }))
    .buffer_unordered(32)
    .try_collect::<Vec<()>>()
    .await
    .expect("creating the Services");
    eprintln!(
        "created {services} Services in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let bus = unique_name("bench-bus");
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("creating the bus");

    let mut results = Vec::new();
    for run in 0..runs {
        let r = one_run(&admin, &sdk, &bus, &ns, services, &names[..burst], run).await;
        eprintln!("run {run}: {r:?}");
        results.push(r);
    }

    let (bare, fanned) = support::moto_put_cost(&sdk).await;
    print_report(services, burst, &results);
    println!(
        "reference, moto alone: PutEvents {bare:.2} ms per event without a rule, \
         {fanned:.2} ms per event with a rule -> SQS target (10-entry calls, one at a time)"
    );
    // Leave the bed as it was: 10,000 Services would slow every later all-namespace test.
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("deleting the Services");
}

async fn one_run(
    admin: &kube::Client,
    sdk: &aws_config::SdkConfig,
    bus: &str,
    ns: &str,
    services: usize,
    burst: &[String],
    run: usize,
) -> Measured {
    let mut m = Measured::default();
    // WHEN the forwarder starts (the bus has no rule yet: AWS fans out asynchronously, moto
    // inside PutEvents at ~5 ms per event, which would measure moto, not the forwarder)
    let t0 = Instant::now();
    let fwd = Proc::start(admin, bus, &unique_name("bench-lease")).await;
    fwd.wait_ready(Duration::from_secs(120)).await;
    m.sync_s = t0.elapsed().as_secs_f64();
    m.rss_sync_mb = fwd.rss_kb().0 as f64 / 1024.0;

    // THEN its first list re-sends every opted-in Service: the resync's throughput to the bus
    let resync_start = Instant::now();
    let (sent, done) = fwd.wait_sent_settled(services as f64).await;
    m.resync_events = sent;
    m.resync_per_s = sent / (done - resync_start).as_secs_f64().max(1e-3);
    let calls = fwd
        .metric("forwarder_put_events_calls_total")
        .await
        .unwrap_or(0.0);
    m.entries_per_call = sent / calls.max(1.0);
    let (rss, hwm) = fwd.rss_kb();
    m.rss_after_mb = rss as f64 / 1024.0;

    // WHEN a burst of Service writes lands (still no rule): the forwarder's own lag, from
    // the watch event to PutEvents accepting it, read from its histogram
    let before = fwd.lag_buckets().await;
    let t = Instant::now();
    let writes = write_burst(admin, ns, burst, &format!("a{run}")).await;
    let (sent_after, done) = fwd.wait_sent_settled(sent + burst.len() as f64).await;
    m.bus_burst_per_s = (sent_after - sent) / (done - t).as_secs_f64().max(1e-3);
    let lag = support::diff_buckets(&fwd.lag_buckets().await, &before);
    m.fwd_lag_p50 = support::bucket_quantile(&lag, 0.50) * 1e3;
    m.fwd_lag_p99 = support::bucket_quantile(&lag, 0.99) * 1e3;
    m.write_ms_p50 = percentile(
        &mut writes
            .iter()
            .map(|w| (w.2 - w.1).as_secs_f64() * 1e3)
            .collect::<Vec<_>>(),
        50.0,
    );

    // WHEN a rule sends the bus's events to a queue, and another burst lands
    let pattern = r#"{"source":["nlb-port-pool.forwarder"]}"#;
    let rule = unique_name("bench-q");
    let queue = moto::queue_behind_rule(sdk, bus, &rule, pattern).await;
    // One set of receivers for both phases: a stopped receiver could still take (and lose)
    // a message in its last long poll.
    let mut receiver = receiver::Receiver::start(sdk, &queue, ns, 4);
    let writes = write_burst(admin, ns, burst, &format!("b{run}")).await;

    // THEN each write's event arrives in SQS: lag from the write to the arrival
    let wanted: HashMap<(String, String), (Instant, Instant)> = writes
        .iter()
        .map(|(n, s, a, rv)| ((n.clone(), rv.clone()), (*s, *a)))
        .collect();
    let arrivals = receiver.until(&wanted, Duration::from_secs(300)).await;
    let mut from_sent = Vec::new();
    let mut from_acked = Vec::new();
    let first_write = writes
        .iter()
        .map(|w| w.1)
        .min()
        .unwrap_or_else(Instant::now);
    let mut last_arrival = first_write;
    for (key, arrived) in &arrivals {
        if let Some((sent, acked)) = wanted.get(key) {
            from_sent.push(arrived.saturating_duration_since(*sent).as_secs_f64() * 1e3);
            from_acked.push(arrived.saturating_duration_since(*acked).as_secs_f64() * 1e3);
            last_arrival = last_arrival.max(*arrived);
        }
    }
    m.burst_received = from_sent.len();
    m.burst_per_s = from_sent.len() as f64 / (last_arrival - first_write).as_secs_f64().max(1e-3);
    m.lag_sent_p50 = percentile(&mut from_sent, 50.0);
    m.lag_sent_p99 = percentile(&mut from_sent, 99.0);
    m.lag_acked_p50 = percentile(&mut from_acked, 50.0);
    m.lag_acked_p99 = percentile(&mut from_acked, 99.0);

    // WHEN writes come at a pace moto's fan-out keeps up with
    let paced = &burst[..burst.len().min(PACED_WRITES)];
    let writes = write_paced(admin, ns, paced, &format!("c{run}"), PACED_RATE).await;
    let wanted: HashMap<(String, String), (Instant, Instant)> = writes
        .iter()
        .map(|(n, s, a, rv)| ((n.clone(), rv.clone()), (*s, *a)))
        .collect();
    let arrivals = receiver.until(&wanted, Duration::from_secs(120)).await;
    receiver.stop();
    let mut paced_lag: Vec<f64> = arrivals
        .iter()
        .filter_map(|(key, arrived)| {
            let acked = wanted.get(key)?.1;
            Some(arrived.saturating_duration_since(acked).as_secs_f64() * 1e3)
        })
        .collect();
    m.paced_received = paced_lag.len();
    m.paced_lag_p50 = percentile(&mut paced_lag, 50.0);
    m.paced_lag_p99 = percentile(&mut paced_lag, 99.0);
    m.hwm_mb = hwm.max(fwd.rss_kb().1) as f64 / 1024.0;
    m.dropped = fwd
        .metric("forwarder_events_dropped_total")
        .await
        .unwrap_or(-1.0);
    fwd.stop().await;
    // The next run's resync goes to a bus without rules again.
    support::remove_rule(sdk, bus, &rule).await;
    m
}

/// Writes in the paced phase, and their rate per second.
const PACED_WRITES: usize = 500;
const PACED_RATE: u64 = 50;

/// PATCHes like [`write_burst`], but one every `1/rate` s.
async fn write_paced(
    admin: &kube::Client,
    ns: &str,
    names: &[String],
    tag: &str,
    rate: u64,
) -> Vec<(String, Instant, Instant, String)> {
    let api: Api<Service> = Api::namespaced(admin.clone(), ns);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        tick.tick().await;
        let (api, name) = (api.clone(), name.clone());
        let patch = json!({"metadata": {"annotations": {POOL: format!("{tag}-{i}")}}});
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let svc = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("patching a Service");
            let rv = svc.metadata.resource_version.unwrap_or_default();
            (name, sent, Instant::now(), rv)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a write task"));
    }
    out
}

/// PATCHes an input annotation of every Service in `names`, 16 at a time: (name, sent,
/// answered, resourceVersion).
async fn write_burst(
    admin: &kube::Client,
    ns: &str,
    names: &[String],
    tag: &str,
) -> Vec<(String, Instant, Instant, String)> {
    let api: Api<Service> = Api::namespaced(admin.clone(), ns);
    futures::stream::iter(names.iter().enumerate().map(|(i, name)| {
        let api = api.clone();
        let patch = json!({"metadata": {"annotations": {POOL: format!("{tag}-{i}")}}});
        async move {
            let sent = Instant::now();
            let svc = api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("patching a Service");
            let acked = Instant::now();
            let rv = svc.metadata.resource_version.unwrap_or_default();
            (name.clone(), sent, acked, rv)
        }
    }))
    .buffer_unordered(16)
    .collect()
    .await
}

/// A report line: its label and how to read it from a run.
type Row = (&'static str, fn(&Measured) -> f64);

fn print_report(services: usize, burst: usize, results: &[Measured]) {
    println!("## Forwarder (medians of {} runs)", results.len());
    println!("services: {services}, burst: {burst}");
    println!("| measure | median | runs |");
    println!("|---|---|---|");
    let rows: [Row; 21] = [
        ("time to initial sync (start -> /readyz), s", |r| r.sync_s),
        ("RSS after initial sync, MB", |r| r.rss_sync_mb),
        ("RSS after the resync was sent, MB", |r| r.rss_after_mb),
        ("peak RSS (VmHWM), MB", |r| r.hwm_mb),
        ("resync events sent", |r| r.resync_events),
        ("resync throughput to the bus, events/s", |r| r.resync_per_s),
        ("entries per PutEvents call (resync)", |r| {
            r.entries_per_call
        }),
        (
            "burst without rule: write -> bus throughput (write-bound), events/s",
            |r| r.bus_burst_per_s,
        ),
        (
            "burst without rule: watch event -> PutEvents accepted p50, ms",
            |r| r.fwd_lag_p50,
        ),
        (
            "burst without rule: watch event -> PutEvents accepted p99, ms",
            |r| r.fwd_lag_p99,
        ),
        ("burst with rule -> SQS: events received", |r| {
            r.burst_received as f64
        }),
        (
            "burst with rule: first write -> last event in SQS, events/s",
            |r| r.burst_per_s,
        ),
        ("Service PATCH round trip p50, ms", |r| r.write_ms_p50),
        ("lag PATCH sent -> event in SQS p50, ms", |r| r.lag_sent_p50),
        ("lag PATCH sent -> event in SQS p99, ms", |r| r.lag_sent_p99),
        ("lag PATCH answered -> event in SQS p50, ms", |r| {
            r.lag_acked_p50
        }),
        ("lag PATCH answered -> event in SQS p99, ms", |r| {
            r.lag_acked_p99
        }),
        ("paced (50/s, rule -> SQS): events received", |r| {
            r.paced_received as f64
        }),
        ("paced: lag PATCH answered -> event in SQS p50, ms", |r| {
            r.paced_lag_p50
        }),
        ("paced: lag PATCH answered -> event in SQS p99, ms", |r| {
            r.paced_lag_p99
        }),
        ("events dropped", |r| r.dropped),
    ];
    for (name, f) in rows {
        let all: Vec<String> = results.iter().map(|r| fmt(f(r))).collect();
        let med = median(&mut results.iter().map(f).collect::<Vec<_>>());
        println!("| {name} | {} | {} |", fmt(med), all.join(", "));
    }
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
