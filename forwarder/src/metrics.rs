//! Counters and gauges, shared by every task, rendered as Prometheus text.
//!
//! Plain atomics: a handful of numbers does not justify a metrics crate, and the text format
//! is simple and stable.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use nlb_port_pool::contract::event::DetailType;

use crate::histogram::Histogram;
use crate::room_clock::RoomClock;

/// The forwarder's metrics.
#[derive(Debug)]
pub struct Metrics {
    sent: [AtomicU64; 3],
    /// Entries refused by PutEvents, or in a call that failed, counted once per attempt.
    pub failed: AtomicU64,
    /// Of those, entries the bus itself refused (HTTP 200 with an error code per entry: not
    /// authorized for the source or detail-type, too large, ...), counted once per attempt.
    pub refused: AtomicU64,
    /// Entries put back for another attempt.
    pub retried: AtomicU64,
    /// Entries given up on (retried too long, abandoned at shutdown or step-down, too large).
    pub dropped: AtomicU64,
    /// PutEvents calls made.
    pub put_calls: AtomicU64,
    /// Events queued or being sent.
    pub queue_depth: AtomicI64,
    /// Watch streams that failed and were restarted with a fresh list.
    pub watch_restarts: AtomicU64,
    /// Whether this replica holds the Lease.
    pub leader: AtomicBool,
    /// Whether the leader's watches finished their first list.
    pub synced: AtomicBool,
    /// Pods with the reachable readiness gate the leader's pod watch tracks.
    pub gated_pods: AtomicU64,
    /// From the watch event to PutEvents accepting its event.
    pub lag: Histogram,
    /// The rooms' latencies and statuses, as the Service watch sees them.
    pub rooms: RoomClock,
}

/// Upper bounds of the lag histogram's buckets, in seconds.
pub const LAG_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self {
            sent: Default::default(),
            failed: AtomicU64::default(),
            refused: AtomicU64::default(),
            retried: AtomicU64::default(),
            dropped: AtomicU64::default(),
            put_calls: AtomicU64::default(),
            queue_depth: AtomicI64::default(),
            watch_restarts: AtomicU64::default(),
            leader: AtomicBool::default(),
            synced: AtomicBool::default(),
            gated_pods: AtomicU64::default(),
            lag: Histogram::with_bounds(&LAG_BUCKETS),
            rooms: RoomClock::default(),
        }
    }
}

fn index(dt: DetailType) -> usize {
    match dt {
        DetailType::ServiceChanged => 0,
        DetailType::ServiceDeleted => 1,
        DetailType::EndpointsChanged => 2,
    }
}

impl Metrics {
    /// Counts `n` events of `dt` accepted by the bus.
    pub fn add_sent(&self, dt: DetailType, n: u64) {
        if let Some(c) = self.sent.get(index(dt)) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Events of `dt` accepted by the bus so far.
    pub fn sent(&self, dt: DetailType) -> u64 {
        self.sent
            .get(index(dt))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Ready: a standby is always ready (it has nothing to sync); the leader once its watches
    /// listed everything.
    pub fn ready(&self) -> bool {
        !self.leader.load(Ordering::Relaxed) || self.synced.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let flag = |b: &AtomicBool| u8::from(b.load(Ordering::Relaxed));
        out.push_str(
            "# HELP forwarder_events_sent_total Events accepted by the EventBridge bus.\n\
             # TYPE forwarder_events_sent_total counter\n",
        );
        for dt in DetailType::ALL {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "forwarder_events_sent_total{{detail_type=\"{dt}\"}} {}",
                self.sent(dt)
            );
        }
        let counters = [
            (
                "events_failed_total",
                "Entry attempts refused by PutEvents or lost in a failed call.",
                get(&self.failed),
            ),
            (
                "events_refused_total",
                "Entry attempts the bus refused one by one (e.g. NotAuthorizedForSourceException).",
                get(&self.refused),
            ),
            (
                "events_retried_total",
                "Entries put back for another attempt.",
                get(&self.retried),
            ),
            (
                "events_dropped_total",
                "Entries given up on; the next resync sends them again.",
                get(&self.dropped),
            ),
            (
                "put_events_calls_total",
                "PutEvents calls made.",
                get(&self.put_calls),
            ),
            (
                "watch_restarts_total",
                "Watch streams restarted after an error.",
                get(&self.watch_restarts),
            ),
        ];
        for (name, help, value) in counters {
            let _ = write!(
                out,
                "# HELP forwarder_{name} {help}\n# TYPE forwarder_{name} counter\nforwarder_{name} {value}\n"
            );
        }
        let gauges = [
            (
                "queue_depth",
                "Events queued or being sent.",
                self.queue_depth.load(Ordering::Relaxed),
            ),
            (
                "leader",
                "1 when this replica holds the Lease and forwards.",
                i64::from(flag(&self.leader)),
            ),
            (
                "watches_synced",
                "1 when the leader's watches finished their first list.",
                i64::from(flag(&self.synced)),
            ),
            (
                "gated_pods",
                "Pods with the nlb.port-manager/reachable readiness gate the leader tracks.",
                i64::try_from(get(&self.gated_pods)).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = write!(
                out,
                "# HELP forwarder_{name} {help}\n# TYPE forwarder_{name} gauge\nforwarder_{name} {value}\n"
            );
        }
        self.lag.render(
            &mut out,
            "forwarder_event_lag_seconds",
            "From the watch event to PutEvents accepting its event.",
        );
        self.rooms.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn renders_every_metric() {
        let m = Metrics::default();
        m.add_sent(DetailType::ServiceDeleted, 3);
        m.dropped.fetch_add(2, Ordering::Relaxed);
        m.queue_depth.fetch_add(5, Ordering::Relaxed);
        m.leader.store(true, Ordering::Relaxed);
        m.lag.observe(Duration::from_millis(30));
        m.lag.observe(Duration::from_secs(60));
        let text = m.render();
        for line in [
            "forwarder_events_sent_total{detail_type=\"Service Deleted\"} 3",
            "forwarder_events_sent_total{detail_type=\"Service Changed\"} 0",
            "forwarder_events_dropped_total 2",
            "forwarder_events_failed_total 0",
            "forwarder_events_refused_total 0",
            "forwarder_events_retried_total 0",
            "forwarder_queue_depth 5",
            "forwarder_watch_restarts_total 0",
            "forwarder_leader 1",
            "forwarder_watches_synced 0",
            "forwarder_gated_pods 0",
            "forwarder_event_lag_seconds_bucket{le=\"0.005\"} 0",
            "forwarder_event_lag_seconds_bucket{le=\"0.05\"} 1",
            "forwarder_event_lag_seconds_bucket{le=\"+Inf\"} 2",
            "forwarder_event_lag_seconds_count 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn the_alerts_use_only_metrics_the_forwarder_serves() {
        let alerts = include_str!("../../deploy/prometheus-alerts.yaml");
        let served = Metrics::default().render();
        let names = metric_names(alerts);
        assert!(
            names.contains(&"forwarder_events_refused_total"),
            "{names:?}"
        );
        for name in names {
            assert!(
                served.lines().any(|l| l.starts_with(&format!("{name} "))),
                "an alert uses {name}, which /metrics does not serve:\n{served}"
            );
        }
    }

    /// The forwarder's metric names `text` mentions, once each.
    fn metric_names(text: &str) -> Vec<&str> {
        let mut names: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("forwarder_") || w.starts_with("nlb_port_pool_"))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    #[test]
    fn the_grafana_dashboard_queries_only_metrics_the_forwarder_serves() {
        let dashboard = include_str!("../../deploy/grafana-dashboard.json");
        let served = Metrics::default().render();
        let names = metric_names(dashboard);
        assert!(names.len() >= 10, "{names:?}");
        for name in names {
            assert!(
                served
                    .lines()
                    .any(|l| l.starts_with(&format!("{name} "))
                        || l.starts_with(&format!("{name}{{"))),
                "the dashboard queries {name}, which /metrics does not serve:\n{served}"
            );
        }
    }

    #[test]
    fn a_standby_is_ready_and_a_leader_once_synced() {
        let m = Metrics::default();
        assert!(m.ready());
        m.leader.store(true, Ordering::Relaxed);
        assert!(!m.ready());
        m.synced.store(true, Ordering::Relaxed);
        assert!(m.ready());
    }
}
