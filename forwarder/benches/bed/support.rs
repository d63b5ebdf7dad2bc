//! Benchmark plumbing: the forwarder process, moto reference costs, statistics.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::json;
use testbed::{Bed, kube_fixtures, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub sync_s: f64,
    pub rss_sync_mb: f64,
    pub rss_after_mb: f64,
    pub hwm_mb: f64,
    pub resync_events: f64,
    pub resync_per_s: f64,
    pub entries_per_call: f64,
    pub bus_burst_per_s: f64,
    pub fwd_lag_p50: f64,
    pub fwd_lag_p99: f64,
    pub burst_received: usize,
    pub burst_per_s: f64,
    pub write_ms_p50: f64,
    pub lag_sent_p50: f64,
    pub lag_sent_p99: f64,
    pub lag_acked_p50: f64,
    pub lag_acked_p99: f64,
    pub paced_received: usize,
    pub paced_lag_p50: f64,
    pub paced_lag_p99: f64,
    pub dropped: f64,
}

/// The `p`th percentile (nearest rank); NaN for no values.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The median.
pub fn median(values: &mut [f64]) -> f64 {
    percentile(values, 50.0)
}

/// `after - before`, bucket by bucket.
pub fn diff_buckets(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(le, n)| {
            let was = before.iter().find(|(b, _)| b == le).map_or(0.0, |b| b.1);
            (*le, n - was)
        })
        .collect()
}

/// A quantile from cumulative buckets, interpolated linearly inside the bucket (as
/// Prometheus' `histogram_quantile` does).
pub fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let Some(total) = buckets.last().map(|b| b.1).filter(|t| *t > 0.0) else {
        return f64::NAN;
    };
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, n) in buckets {
        if n >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let inside = (rank - prev.1) / (n - prev.1).max(1.0);
            return prev.0 + (le - prev.0) * inside;
        }
        prev = (le, n);
    }
    prev.0
}

/// The bus alone, for reference: milliseconds per event of sequential 10-entry PutEvents
/// calls on a fresh bus, without a rule and with a rule -> SQS target.
pub async fn moto_put_cost(sdk: &SdkConfig) -> (f64, f64) {
    use aws_sdk_eventbridge::types::PutEventsRequestEntry;
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let bus = unique_name("bench-ref");
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("bus");
    let calls = 20;
    let measure = || async {
        let start = Instant::now();
        for _ in 0..calls {
            let entries = (0..10)
                .map(|i| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&bus)
                        .source("nlb-port-pool.forwarder")
                        .detail_type("Service Changed")
                        .detail(
                            json!({"namespace": "bench-ref", "name": format!("r{i}")}).to_string(),
                        )
                        .build()
                })
                .collect();
            events
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .expect("put");
        }
        start.elapsed().as_secs_f64() * 1e3 / f64::from(calls * 10)
    };
    let bare = measure().await;
    let pattern = r#"{"source":["nlb-port-pool.forwarder"]}"#;
    testbed::moto::queue_behind_rule(sdk, &bus, &unique_name("bench-ref"), pattern).await;
    (bare, measure().await)
}

/// Detaches and deletes a rule made by `moto::queue_behind_rule`.
pub async fn remove_rule(sdk: &SdkConfig, bus: &str, rule: &str) {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let _ = events
        .remove_targets()
        .rule(rule)
        .event_bus_name(bus)
        .ids("queue")
        .send()
        .await;
    let _ = events
        .delete_rule()
        .name(rule)
        .event_bus_name(bus)
        .send()
        .await;
}

/// `kubectl apply -k deploy/`, as a user installs it.
pub fn apply_deploy() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let out = std::process::Command::new("kubectl")
        .arg("apply")
        .arg("-k")
        .arg(&dir)
        .env("KUBECONFIG", Bed::get().kubeconfig())
        .output()
        .expect("running kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The release forwarder binary, as deploy/'s ServiceAccount, all namespaces, defaults.
pub struct Proc {
    child: Child,
    port: u16,
}

impl Proc {
    pub async fn start(admin: &kube::Client, bus: &str, lease: &str) -> Self {
        let bed = Bed::get();
        let token = kube_fixtures::service_account_token(admin, "nlb-port-pool", "forwarder").await;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("bench"));
        std::fs::create_dir_all(&dir).expect("bench dir");
        let kubeconfig = dir.join("kubeconfig");
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "f",
            "clusters": [{"name": "bed", "cluster": {"server": bed.kube_server(),
                "certificate-authority": bed.var("KUBE_CA_FILE")}}],
            "users": [{"name": "f", "user": {"token": token}}],
            "contexts": [{"name": "f", "context": {"cluster": "bed", "user": "f", "namespace": "nlb-port-pool"}}],
        });
        std::fs::write(&kubeconfig, config.to_string()).expect("kubeconfig");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.join("forwarder.log")).expect("log");
        let gate = testbed::iam_gate::GateStack::for_forwarder(bed, bus, "bench")
            .await
            .expect("registering the forwarder's stack with the IAM gate");
        let child = Command::new(env!("CARGO_BIN_EXE_forwarder"))
            .envs(bed.vars())
            .env("AWS_ACCESS_KEY_ID", &gate.access_key)
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .args(["--bus-name", bus, "--cluster-name", "bench"])
            .args(["--lease-name", lease, "--lease-namespace", "nlb-port-pool"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("starting the forwarder");
        eprintln!("forwarder log: {}", dir.join("forwarder.log").display());
        Self { child, port }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let leading = self.metric("forwarder_leader").await == Some(1.0);
            if leading && self.get("/readyz").await.map(|r| r.0) == Some(200) {
                return;
            }
            assert!(Instant::now() < deadline, "the forwarder did not get ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits until the count of sent events reaches `at_least` and stops moving for 1.5 s;
    /// returns the count and when it last moved. (It may exceed `at_least`: other tests'
    /// opted-in Services are in the cluster too.)
    pub async fn wait_sent_settled(&self, at_least: f64) -> (f64, Instant) {
        let name = "forwarder_events_sent_total{detail_type=\"Service Changed\"}";
        let start = Instant::now();
        let (mut last, mut moved) = (f64::NAN, Instant::now());
        loop {
            let sent = self.metric(name).await.unwrap_or(0.0);
            if sent != last {
                (last, moved) = (sent, Instant::now());
            } else if sent >= at_least && moved.elapsed() > Duration::from_millis(1500) {
                return (sent, moved);
            }
            assert!(
                start.elapsed() < Duration::from_secs(900),
                "sending stalled at {sent}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The lag histogram: (upper bound in s, cumulative count), `+Inf` last.
    pub async fn lag_buckets(&self) -> Vec<(f64, f64)> {
        let (_, body) = self.get("/metrics").await.unwrap_or_default();
        body.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("forwarder_event_lag_seconds_bucket{le=\"")?;
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.parse().ok()?))
            })
            .collect()
    }

    /// (VmRSS, VmHWM) in kB.
    pub fn rss_kb(&self) -> (u64, u64) {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}
