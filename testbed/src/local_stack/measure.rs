//! Measuring the local stack for the end-to-end benchmark: quantiles of durations, and the
//! CPU time each process of the stack and the bed spends, to show which one bounds the rest.

use std::collections::HashMap;
use std::time::Duration;

/// The nearest-rank `q` quantile (0 < q <= 1) of `values`; zero when empty.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with one decimal, for tables.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// CPU time (user + system) a process and, optionally, its descendants have used.
pub fn cpu_time(pid: u32, with_descendants: bool) -> Duration {
    let mut pids = vec![pid];
    if with_descendants {
        pids.extend(super::process::descendants(pid).iter().map(|p| p.pid));
    }
    let ticks: u64 = pids.iter().filter_map(|p| ticks(*p)).sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; the state (field 3) is fields[0].
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The highest peak resident memory (VmHWM, in MiB) of each function's processes under `root`
/// (`cargo lambda watch` runs each function as a long-lived process, as a warm Lambda).
pub fn function_peak_rss(root: u32) -> Vec<(String, f64)> {
    let mut peaks: HashMap<String, f64> = HashMap::new();
    for p in super::process::descendants(root) {
        let command = p.command();
        let exe = command.split(' ').next().unwrap_or_default();
        let name = exe.rsplit('/').next().unwrap_or_default();
        if !super::build::FUNCTIONS.contains(&name) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid)).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
        if let Some(kib) = kib {
            let peak = peaks.entry(name.to_owned()).or_default();
            *peak = peak.max(kib / 1024.0);
        }
    }
    let mut out: Vec<(String, f64)> = peaks.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One process (or process tree) whose CPU time is tracked.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// What it is.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// Whether its descendants count (the functions under `cargo lambda watch`).
    pub tree: bool,
}

/// CPU times of tracked processes at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample(Vec<(String, Duration)>);

impl CpuSample {
    /// Reads the CPU time of each of `tracked`.
    pub fn take(tracked: &[Tracked]) -> Self {
        Self(
            tracked
                .iter()
                .map(|t| (t.name.clone(), cpu_time(t.pid, t.tree)))
                .collect(),
        )
    }

    /// Per process: CPU seconds used between `self` and `later`, and that as a share of one
    /// core over `wall`.
    pub fn used_until(&self, later: &CpuSample, wall: Duration) -> Vec<(String, Duration, f64)> {
        self.0
            .iter()
            .zip(&later.0)
            .map(|((name, before), (_, after))| {
                let used = after.saturating_sub(*before);
                let share = used.as_secs_f64() / wall.as_secs_f64().max(1e-9);
                (name.clone(), used, share)
            })
            .collect()
    }
}

/// What one burst measured.
#[derive(Debug, Clone, Default)]
pub struct Burst {
    /// Each Service's creation -> allocated-port visible.
    pub latencies: Vec<Duration>,
    /// First creation -> last allocated.
    pub makespan: Duration,
    /// Deletions sent -> last Service gone.
    pub release: Duration,
    /// CPU per process during the burst: name, time, share of one core.
    pub cpu_burst: Vec<(String, Duration, f64)>,
    /// The same during the release.
    pub cpu_release: Vec<(String, Duration, f64)>,
    /// Invocation durations per function.
    pub invocations: HashMap<&'static str, Vec<Duration>>,
    /// SQS SentTimestamp -> received, per delivery.
    pub queued: Vec<Duration>,
    /// Failed invocations (each retried).
    pub failed: usize,
}

/// The middle value (the upper one of an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The figures as a Markdown table (median, then each run), under a line naming the machine
/// and `settings`.
pub fn report(settings: &str, bursts: &[Burst]) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let runs = |f: &dyn Fn(&Burst) -> f64| -> String {
        let all: Vec<String> = bursts.iter().map(|b| format!("{:.1}", f(b))).collect();
        format!("{:.1} | {}", median(bursts.iter().map(f)), all.join(", "))
    };
    let msf = |d: Duration| d.as_secs_f64() * 1000.0;
    let model = std::process::Command::new("lscpu")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let model = model
        .lines()
        .find_map(|l| l.strip_prefix("Model name:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    line(format!(
        "\nmachine: nproc {cores}, lscpu model {model}; date {}",
        chrono::Utc::now().format("%F")
    ));
    line(format!("{settings}\n"));
    line("| measure | median | runs |\n|---|---|---|".to_owned());
    line(format!(
        "| created -> allocated-port visible p50, ms | {} |",
        runs(&|b| msf(quantile(&b.latencies, 0.5)))
    ));
    line(format!(
        "| created -> allocated-port visible p99, ms | {} |",
        runs(&|b| msf(quantile(&b.latencies, 0.99)))
    ));
    line(format!(
        "| first create -> last allocated, s | {} |",
        runs(&|b| b.makespan.as_secs_f64())
    ));
    line(format!(
        "| delete all -> last Service gone, s | {} |",
        runs(&|b| b.release.as_secs_f64())
    ));
    line(format!(
        "| SQS SentTimestamp -> received p50, ms | {} |",
        runs(&|b| msf(quantile(&b.queued, 0.5)))
    ));
    for f in ["allocate", "sync-targets", "release"] {
        let inv = |b: &Burst| b.invocations.get(f).cloned().unwrap_or_default();
        line(format!(
            "| {f} invocations in the burst | {} |",
            runs(&|b| inv(b).len() as f64)
        ));
        line(format!(
            "| {f} invocation p50, ms | {} |",
            runs(&|b| msf(quantile(&inv(b), 0.5)))
        ));
    }
    line(format!(
        "| failed invocations (retried) | {} |",
        runs(&|b| b.failed as f64)
    ));
    for (phase, pick) in [
        (
            "burst",
            (|b: &Burst| &b.cpu_burst) as fn(&Burst) -> &Vec<(String, Duration, f64)>,
        ),
        ("release", |b: &Burst| &b.cpu_release),
    ] {
        let names = bursts.first().map(|b| pick(b).clone()).unwrap_or_default();
        for (i, (name, _, _)) in names.iter().enumerate() {
            line(format!(
                "| CPU in the {phase}: {name}, % of one core | {} |",
                runs(&|b| pick(b)[i].2 * 100.0)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
        assert_eq!(
            quantile(&[Duration::from_millis(7)], 0.99),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn this_process_uses_cpu() {
        let start = cpu_time(std::process::id(), false);
        let mut x = 0u64;
        let until = std::time::Instant::now() + Duration::from_millis(100);
        while std::time::Instant::now() < until {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_time(std::process::id(), false) >= start);
        assert_eq!(ms(Duration::from_micros(1500)), "1.5");
    }
}
