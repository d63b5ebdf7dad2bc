//! The forwarder's settings, from flags and environment variables (clap).
//!
//! Every flag has an environment variable, so the Deployment sets them with `env:` and a local
//! run passes flags. Values clap cannot parse stop start-up with clap's message naming the
//! flag; [`Args::validate`] then checks what clap cannot (names, ranges) and names the
//! environment variable, the way the functions' [`ConfigError`] does.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use nlb_port_pool::contract::names;
use nlb_port_pool::model::config::ConfigError;

/// Watches Services, EndpointSlices and gated pods and puts nlb-port-pool events on an
/// EventBridge bus.
#[derive(Debug, Clone, Parser)]
#[command(name = "forwarder", version, about, args_override_self = true)]
pub struct Args {
    /// The EventBridge bus (name or ARN) the events go to.
    #[arg(long, env = "EVENT_BUS_NAME", value_name = "EVENT_BUS_NAME")]
    pub bus_name: String,

    /// The cluster's name, as events and AWS tags record it.
    #[arg(long, env = "CLUSTER_NAME", value_name = "CLUSTER_NAME")]
    pub cluster_name: String,

    /// Namespaces to watch, comma-separated; empty watches all namespaces.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = "",
        value_name = "WATCH_NAMESPACES"
    )]
    pub namespaces: Vec<String>,

    /// How often every opted-in Service is re-sent, e.g. `10m`.
    #[arg(long, env = "RESYNC_PERIOD", default_value = "10m", value_parser = parse_duration, value_name = "RESYNC_PERIOD")]
    pub resync_period: Duration,

    /// How long EndpointSlice changes of one Service are gathered into one event, e.g. `1s`.
    #[arg(long, env = "COALESCE_WINDOW", default_value = "1s", value_parser = parse_duration, value_name = "COALESCE_WINDOW")]
    pub coalesce_window: Duration,

    /// The Lease that elects the one replica that forwards.
    #[arg(
        long,
        env = "LEASE_NAME",
        default_value = "nlb-port-pool-forwarder",
        value_name = "LEASE_NAME"
    )]
    pub lease_name: String,

    /// The Lease's namespace; default `POD_NAMESPACE`, else the client's namespace.
    #[arg(long, env = "LEASE_NAMESPACE", value_name = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a Lease holder that stops renewing keeps it, e.g. `15s`.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = parse_duration, value_name = "LEASE_DURATION")]
    pub lease_duration: Duration,

    /// This replica's name in the Lease; default the pod's hostname.
    #[arg(long, env = "POD_NAME", value_name = "POD_NAME")]
    pub identity: Option<String>,

    /// Where /healthz, /readyz and /metrics listen.
    #[arg(
        long,
        env = "LISTEN_ADDRESS",
        default_value = "0.0.0.0:8080",
        value_name = "LISTEN_ADDRESS"
    )]
    pub listen: SocketAddr,

    /// Events waiting to be sent before the watch is held back.
    #[arg(
        long,
        env = "QUEUE_CAPACITY",
        default_value_t = 1000,
        value_name = "QUEUE_CAPACITY"
    )]
    pub queue_capacity: usize,

    /// PutEvents calls in flight at once.
    #[arg(
        long,
        env = "PUT_EVENTS_CONCURRENCY",
        default_value_t = 4,
        value_name = "PUT_EVENTS_CONCURRENCY"
    )]
    pub put_events_concurrency: usize,

    /// How long a refused event is retried before it is dropped (the next resync re-sends it).
    #[arg(long, env = "RETRY_FOR", default_value = "10m", value_parser = parse_duration, value_name = "RETRY_FOR")]
    pub retry_for: Duration,

    /// How long SIGTERM waits for the queue to drain.
    #[arg(long, env = "DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration, value_name = "DRAIN_TIMEOUT")]
    pub drain_timeout: Duration,
}

impl Args {
    /// Checks what clap's parsers cannot; the error names the environment variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        names::validate_cluster_name(&self.cluster_name)
            .map_err(|p| ConfigError::new("CLUSTER_NAME", p))?;
        validate_bus(&self.bus_name).map_err(|p| ConfigError::new("EVENT_BUS_NAME", p))?;
        for ns in self.watched_namespaces() {
            names::validate_label(ns).map_err(|p| {
                ConfigError::new("WATCH_NAMESPACES", format!("namespace {ns:?} {p}"))
            })?;
        }
        names::validate_label(&self.lease_name).map_err(|p| ConfigError::new("LEASE_NAME", p))?;
        if let Some(ns) = &self.lease_namespace {
            names::validate_label(ns).map_err(|p| ConfigError::new("LEASE_NAMESPACE", p))?;
        }
        if self.lease_duration < Duration::from_secs(2) {
            return Err(ConfigError::new("LEASE_DURATION", "must be at least 2s"));
        }
        if self.resync_period < Duration::from_secs(1) {
            return Err(ConfigError::new("RESYNC_PERIOD", "must be at least 1s"));
        }
        if self.coalesce_window > Duration::from_secs(60) {
            return Err(ConfigError::new("COALESCE_WINDOW", "must be at most 60s"));
        }
        if !(1..=1_000_000).contains(&self.queue_capacity) {
            return Err(ConfigError::new("QUEUE_CAPACITY", "must be 1 to 1000000"));
        }
        if !(1..=64).contains(&self.put_events_concurrency) {
            return Err(ConfigError::new(
                "PUT_EVENTS_CONCURRENCY",
                "must be 1 to 64",
            ));
        }
        Ok(())
    }

    /// The namespaces to watch; empty means all.
    pub fn watched_namespaces(&self) -> Vec<&str> {
        self.namespaces
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// An EventBridge bus name (1 to 256 of `A-Za-z0-9._-/`) or a bus ARN.
fn validate_bus(bus: &str) -> Result<(), String> {
    if bus.starts_with("arn:") {
        return if bus.len() <= 1600 && !bus.chars().any(char::is_whitespace) {
            Ok(())
        } else {
            Err("is not a usable ARN".to_owned())
        };
    }
    if bus.is_empty() || bus.len() > 256 {
        return Err("must be 1 to 256 characters".to_owned());
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    if !bus.chars().all(ok) {
        return Err("may hold only letters, digits, '.', '_', '-' and '/'".to_owned());
    }
    Ok(())
}

/// Parses `500ms`, `30s`, `10m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 30s, 10m or 1h"))?;
    let millis = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{s:?} has unknown unit {unit:?} (ms, s, m, h)")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["forwarder", "--bus-name", "bus", "--cluster-name", "prod"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    #[test]
    fn defaults_are_usable() {
        let a = args(&[]).expect("minimal flags");
        assert!(a.validate().is_ok());
        assert!(a.watched_namespaces().is_empty());
        assert_eq!(a.resync_period, Duration::from_secs(600));
        assert_eq!(a.coalesce_window, Duration::from_secs(1));
        assert_eq!(a.lease_duration, Duration::from_secs(15));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "soon", "5d", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clap_names_the_flag_of_an_unparsable_value() {
        let err = args(&["--resync-period", "soon"]).expect_err("bad duration");
        assert!(err.to_string().contains("--resync-period"), "{err}");
    }

    #[test]
    fn validation_names_the_variable() {
        let cases: [(&[&str], &str); 6] = [
            (&["--cluster-name", "bad name"], "CLUSTER_NAME"),
            (&["--bus-name", "bus with spaces"], "EVENT_BUS_NAME"),
            (&["--namespaces", "ok,Not_OK"], "WATCH_NAMESPACES"),
            (&["--lease-duration", "1s"], "LEASE_DURATION"),
            (&["--queue-capacity", "0"], "QUEUE_CAPACITY"),
            (&["--put-events-concurrency", "0"], "PUT_EVENTS_CONCURRENCY"),
        ];
        for (extra, name) in cases {
            let err = args(extra).expect("parses").validate().expect_err(name);
            assert_eq!(err.name, name, "{err}");
        }
    }

    #[test]
    fn reads_namespace_lists_and_bus_arns() {
        let a = args(&[
            "--namespaces",
            "games, tools,",
            "--bus-name",
            "arn:aws:events:us-west-2:123456789012:event-bus/nlb",
        ])
        .expect("parses");
        assert!(a.validate().is_ok());
        assert_eq!(a.watched_namespaces(), vec!["games", "tools"]);
    }
}
