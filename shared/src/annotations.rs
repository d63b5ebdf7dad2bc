//! The annotation contract on a Service (DESIGN.md section 3), seed-compatible keys.
//!
//! Input annotations are parsed into an [`AllocationRequest`]; every rejection is an
//! [`AnnotationError`] naming the annotation and the value's problem, which the functions show
//! the user as a Warning Event and an `Error:` status. Output annotations are rendered from the
//! allocations by [`render_allocated`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pool::DEFAULT_POOL;
use crate::protocol::ListenerProtocol;

/// Every key of the project starts with this.
pub const PREFIX: &str = "nlb.port-manager/";
/// Opt-in: `"true"` or `"false"`.
pub const AUTO_ASSIGN: &str = "nlb.port-manager/auto-assign";
/// The pool to allocate from (default `default`).
pub const POOL: &str = "nlb.port-manager/pool";
/// Health check protocol: `TCP`, `HTTP` or `HTTPS`.
pub const HC_PROTOCOL: &str = "nlb.port-manager/healthcheck-protocol";
/// Health check port: `traffic-port` or a number.
pub const HC_PORT: &str = "nlb.port-manager/healthcheck-port";
/// Seconds between health checks (5 to 300).
pub const HC_INTERVAL: &str = "nlb.port-manager/healthcheck-interval";
/// Seconds before a health check times out (2 to 120).
pub const HC_TIMEOUT: &str = "nlb.port-manager/healthcheck-timeout";
/// Successes before a target is healthy (2 to 10).
pub const HC_HEALTHY_THRESHOLD: &str = "nlb.port-manager/healthcheck-healthy-threshold";
/// Failures before a target is unhealthy (2 to 10).
pub const HC_UNHEALTHY_THRESHOLD: &str = "nlb.port-manager/healthcheck-unhealthy-threshold";
/// HTTP(S) health check path.
pub const HC_PATH: &str = "nlb.port-manager/healthcheck-path";

/// The NLB of the pool to put the Service's listeners on, by name (the name in its ARN), when
/// it must share an address with another Service; unset, the pool's placement chooses.
pub const NLB: &str = "nlb.port-manager/nlb";

/// `per-service` (the default: one set of listeners for the Service) or `per-pod` (a set of
/// listeners for each pod behind it).
pub const MODE: &str = "nlb.port-manager/mode";
/// Per-pod mode: seconds a pod may be gone from the Service (no pod of that name selected by
/// its selector: deleted, or relabelled out of it) before its ports are released (default
/// [`DEFAULT_POD_RELEASE_AFTER`]). A pod of that name selected again within them gets the same
/// ports; its target is its new IP (a gone pod has no target meanwhile).
pub const POD_RELEASE_AFTER: &str = "nlb.port-manager/pod-release-after";
/// Default of [`POD_RELEASE_AFTER`], seconds.
pub const DEFAULT_POD_RELEASE_AFTER: u32 = 10;
/// Longest [`POD_RELEASE_AFTER`], seconds.
pub const MAX_POD_RELEASE_AFTER: u32 = 86_400;

/// Output: the first port's listener port (seed-compatible).
pub const ALLOCATED_PORT: &str = "nlb.port-manager/allocated-port";
/// Output: the first port's listener ARN (seed-compatible).
pub const LISTENER_ARN: &str = "nlb.port-manager/listener-arn";
/// Output: the first port's target group ARN (seed-compatible).
pub const TARGET_GROUP_ARN: &str = "nlb.port-manager/target-group-arn";
/// Output: `NLB_DNS:port` of the first port, what a client dials.
pub const ADDRESS: &str = "nlb.port-manager/address";
/// Output: JSON list with one [`AllocationRecord`] per listener.
pub const ALLOCATIONS: &str = "nlb.port-manager/allocations";
/// Output: `Allocated`, `Ready`, `Pending: <reason>` or `Error: <reason>`.
pub const STATUS: &str = "nlb.port-manager/status";

/// Output on a per-pod Service: JSON counts of its pods (see [`PodsSummary`]).
pub const PODS: &str = "nlb.port-manager/pods";
/// Output on a pod of a per-pod Service: the pod IP registered as its listeners' target
/// (absent while none is).
pub const TARGET: &str = "nlb.port-manager/target";

/// Output on a pod of a per-pod Service: whose outputs the pod carries, as `name/uid` of that
/// Service (see [`service_ref`]). Two per-pod Services may select the same pods (a TCP and a
/// UDP Service, a blue/green move); the first to write a pod's outputs owns them, and the
/// others leave the pod alone (their addresses for it are in their own [`PODS`] summary).
pub const SERVICE: &str = "nlb.port-manager/service";

/// The finalizer that holds a Service's deletion until its listeners are released.
pub const FINALIZER: &str = "nlb.port-manager/release";

/// Every output key, so a release can remove exactly what the system wrote.
pub const OUTPUT_KEYS: [&str; 9] = [
    ALLOCATED_PORT,
    LISTENER_ARN,
    TARGET_GROUP_ARN,
    ADDRESS,
    ALLOCATIONS,
    STATUS,
    PODS,
    TARGET,
    SERVICE,
];

/// The value of [`SERVICE`] naming the Service `name` with `uid`. The uid tells a Service from
/// a later one of the same name; the name lets a reader (and a run judging whether the owner
/// is still there) find it.
pub fn service_ref(name: &str, uid: &str) -> String {
    format!("{name}/{uid}")
}

/// The (name, uid) a [`SERVICE`] value names; `None` when it is not `name/uid`.
pub fn parse_service_ref(value: &str) -> Option<(&str, &str)> {
    let (name, uid) = value.split_once('/')?;
    (!name.is_empty() && !uid.is_empty() && !uid.contains('/')).then_some((name, uid))
}

/// How a Service's listeners are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One listener per Service port, the Service's ready pods as targets.
    #[default]
    PerService,
    /// One listener per Service port for each pod, that pod its only target.
    PerPod,
}

/// What a per-pod Service's `pods` annotation counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsSummary {
    /// Pods whose listeners all exist.
    pub allocated: usize,
    /// Of those, pods whose every listener has a healthy target.
    #[serde(default)]
    pub ready: usize,
    /// Pods waiting for ports.
    pub pending: usize,
    /// Pods whose allocation failed (their status says why).
    pub errors: usize,
    /// Pods gone from the Service (no pod of that name selected) whose ports are kept for the
    /// grace period.
    pub leaving: usize,
    /// Pods whose outputs another per-pod Service writes (see [`SERVICE`]), by name: this
    /// Service's address for each, which the pod's own annotations do not show. Counted in
    /// `allocated` (and `ready`) like the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shared: BTreeMap<String, SharedPod>,
}

/// This Service's listeners for a pod whose outputs belong to another Service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedPod {
    /// `NLB_DNS:port` of the first port: what a client dials.
    pub address: String,
    /// Each of these listeners has a healthy target (the pod's IP).
    #[serde(default)]
    pub ready: bool,
}

/// Longest annotation value this code reads; longer ones are refused before parsing.
const MAX_VALUE_LEN: usize = 4096;

/// A Service's annotations.
pub type Annotations = BTreeMap<String, String>;

/// An input annotation whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: {problem}")]
pub struct AnnotationError {
    /// The annotation's key.
    pub key: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

pub(crate) fn invalid(key: &'static str, problem: impl Into<String>) -> AnnotationError {
    AnnotationError {
        key,
        problem: problem.into(),
    }
}

/// Whether the Service asks for a port: `Ok(false)` when the key is absent or `"false"`.
pub fn opt_in(annotations: &Annotations) -> Result<bool, AnnotationError> {
    match annotations.get(AUTO_ASSIGN).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(invalid(
            AUTO_ASSIGN,
            format!("{:?} is neither \"true\" nor \"false\"", shorten(other)),
        )),
    }
}

/// Whether the annotations carry the opt-in key at all, whatever its value.
pub fn mentions_opt_in(annotations: &Annotations) -> bool {
    annotations.contains_key(AUTO_ASSIGN)
}

/// Health check protocol of a target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthCheckProtocol {
    /// A TCP connect (the default; also what UDP target groups use).
    #[serde(rename = "TCP")]
    Tcp,
    /// An HTTP GET of the path.
    #[serde(rename = "HTTP")]
    Http,
    /// An HTTPS GET of the path.
    #[serde(rename = "HTTPS")]
    Https,
}

impl HealthCheckProtocol {
    /// The ELBv2 protocol name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
        }
    }
}

/// Where health checks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthCheckPort {
    /// The port traffic goes to (the default).
    TrafficPort,
    /// A fixed port.
    Port(u16),
}

/// Seconds between health checks unless `healthcheck-interval` says otherwise: 10, not AWS's
/// 30, so a room is reachable about 20 s after its pod is ready instead of minutes.
pub const DEFAULT_HC_INTERVAL: i32 = 10;
/// Healthy and unhealthy thresholds unless annotated: AWS's minimum, 2 (AWS's default
/// healthy threshold for a TCP check is 5).
pub const DEFAULT_HC_THRESHOLD: i32 = 2;

/// A target group's health check; an unset timeout keeps AWS's default for the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    /// Protocol, `TCP` unless overridden.
    pub protocol: HealthCheckProtocol,
    /// Port, `traffic-port` unless overridden.
    pub port: HealthCheckPort,
    /// Seconds between checks.
    pub interval_seconds: Option<i32>,
    /// Seconds before a check times out.
    pub timeout_seconds: Option<i32>,
    /// Successes before healthy.
    pub healthy_threshold: Option<i32>,
    /// Failures before unhealthy.
    pub unhealthy_threshold: Option<i32>,
    /// HTTP(S) path.
    pub path: Option<String>,
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        Self {
            protocol: HealthCheckProtocol::Tcp,
            port: HealthCheckPort::TrafficPort,
            interval_seconds: Some(DEFAULT_HC_INTERVAL),
            timeout_seconds: None,
            healthy_threshold: Some(DEFAULT_HC_THRESHOLD),
            unhealthy_threshold: Some(DEFAULT_HC_THRESHOLD),
            path: None,
        }
    }
}

/// What an opted-in Service asks for, from its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRequest {
    /// The pool's name.
    pub pool: String,
    /// The health check of every target group of the Service.
    pub health_check: HealthCheckSpec,
    /// Per-Service or per-pod listeners.
    pub mode: Mode,
    /// Per-pod mode: seconds a gone pod keeps its ports.
    pub pod_release_after: u32,
    /// The NLB of the pool asked for by name ([`NLB`]).
    pub nlb: Option<String>,
    /// TLS and target group options.
    pub options: crate::listener_options::ListenerOptions,
}

/// The trimmed value of `key`, refused when longer than this code reads.
pub(crate) fn value<'a>(
    annotations: &'a Annotations,
    key: &'static str,
) -> Result<Option<&'a str>, AnnotationError> {
    match annotations.get(key) {
        None => Ok(None),
        Some(v) if v.len() > MAX_VALUE_LEN => Err(invalid(
            key,
            format!("value is {} bytes long (at most {MAX_VALUE_LEN})", v.len()),
        )),
        Some(v) => Ok(Some(v.trim())),
    }
}

/// Parses the pool and health check annotations of an opted-in Service.
pub fn parse_request(annotations: &Annotations) -> Result<AllocationRequest, AnnotationError> {
    let get = |key: &'static str| value(annotations, key);
    let pool = match get(POOL)? {
        None | Some("") => DEFAULT_POOL.to_owned(),
        Some(p) => {
            crate::names::validate_label(p)
                .map_err(|e| invalid(POOL, format!("{:?} {e}", shorten(p))))?;
            p.to_owned()
        }
    };
    let protocol = match get(HC_PROTOCOL)?.map(str::to_ascii_uppercase).as_deref() {
        None | Some("TCP") => HealthCheckProtocol::Tcp,
        Some("HTTP") => HealthCheckProtocol::Http,
        Some("HTTPS") => HealthCheckProtocol::Https,
        Some(other) => {
            return Err(invalid(
                HC_PROTOCOL,
                format!("{:?} is not TCP, HTTP or HTTPS", shorten(other)),
            ));
        }
    };
    let port = match get(HC_PORT)? {
        None | Some("traffic-port") => HealthCheckPort::TrafficPort,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => HealthCheckPort::Port(n),
            _ => {
                return Err(invalid(
                    HC_PORT,
                    format!(
                        "{:?} is neither traffic-port nor a port 1-65535",
                        shorten(p)
                    ),
                ));
            }
        },
    };
    let bounded = |key: &'static str, lo: i32, hi: i32| -> Result<Option<i32>, AnnotationError> {
        let Some(raw) = get(key)? else {
            return Ok(None);
        };
        match raw.parse::<i32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(
                key,
                format!("{:?} is not a whole number from {lo} to {hi}", shorten(raw)),
            )),
        }
    };
    let interval_seconds = bounded(HC_INTERVAL, 5, 300)?.or(Some(DEFAULT_HC_INTERVAL));
    let timeout_seconds = bounded(HC_TIMEOUT, 2, 120)?;
    if let (Some(i), Some(t)) = (interval_seconds, timeout_seconds)
        && t > i
    {
        return Err(invalid(
            HC_TIMEOUT,
            format!("{t}s is longer than the interval of {i}s"),
        ));
    }
    let healthy_threshold = bounded(HC_HEALTHY_THRESHOLD, 2, 10)?.or(Some(DEFAULT_HC_THRESHOLD));
    let unhealthy_threshold =
        bounded(HC_UNHEALTHY_THRESHOLD, 2, 10)?.or(Some(DEFAULT_HC_THRESHOLD));
    let path = match get(HC_PATH)? {
        None => None,
        Some(_) if protocol == HealthCheckProtocol::Tcp => {
            return Err(invalid(
                HC_PATH,
                "is set but the health check protocol is TCP",
            ));
        }
        Some(p) if !p.starts_with('/') || p.chars().any(char::is_control) => {
            return Err(invalid(
                HC_PATH,
                format!("{:?} is not a path starting with /", shorten(p)),
            ));
        }
        Some(p) => Some(p.to_owned()),
    };
    let mode = match get(MODE)? {
        None | Some("") | Some("per-service") => Mode::PerService,
        Some("per-pod") => Mode::PerPod,
        Some(other) => {
            return Err(invalid(
                MODE,
                format!("{:?} is neither per-service nor per-pod", shorten(other)),
            ));
        }
    };
    let pod_release_after = match get(POD_RELEASE_AFTER)? {
        None | Some("") => DEFAULT_POD_RELEASE_AFTER,
        Some(raw) => match raw.strip_suffix('s').unwrap_or(raw).parse::<u32>() {
            Ok(n) if n <= MAX_POD_RELEASE_AFTER => n,
            _ => {
                return Err(invalid(
                    POD_RELEASE_AFTER,
                    format!(
                        "{:?} is not a number of seconds from 0 to {MAX_POD_RELEASE_AFTER}",
                        shorten(raw)
                    ),
                ));
            }
        },
    };
    let nlb = match get(NLB)? {
        None | Some("") => None,
        Some(name) if is_nlb_name(name) => Some(name.to_owned()),
        Some(other) => {
            return Err(invalid(
                NLB,
                format!(
                    "{:?} is not a load balancer name (1-32 letters, digits and hyphens)",
                    shorten(other)
                ),
            ));
        }
    };
    Ok(AllocationRequest {
        pool,
        mode,
        pod_release_after,
        nlb,
        options: crate::listener_options::ListenerOptions::parse(annotations)?,
        health_check: HealthCheckSpec {
            protocol,
            port,
            interval_seconds,
            timeout_seconds,
            healthy_threshold,
            unhealthy_threshold,
            path,
        },
    })
}

/// A load balancer name as AWS allows it: 1 to 32 letters, digits and inner hyphens.
fn is_nlb_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// One listener of a Service, as the `allocations` annotation lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationRecord {
    /// The Service port's name (or its number, for an unnamed port).
    pub name: String,
    /// The listener protocol.
    pub protocol: ListenerProtocol,
    /// The Service port this listener stands for.
    pub service_port: u16,
    /// The listener port on the NLB.
    pub port: u16,
    /// The NLB.
    pub nlb_arn: String,
    /// The NLB's DNS name.
    pub dns: String,
    /// The listener.
    pub listener_arn: String,
    /// The target group.
    pub target_group_arn: String,
    /// Whether the listener terminates TLS (protocol `TLS` in AWS; `protocol` stays the
    /// Service port's `TCP`, which the target group speaks). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

impl AllocationRecord {
    /// The listener protocol as ELBv2 names it: `TLS` for a TLS listener, else `protocol`.
    pub fn listener_protocol(&self) -> String {
        if self.tls {
            "TLS".to_owned()
        } else {
            self.protocol.to_string()
        }
    }
}

/// The output annotations of an allocated Service; `records` must not be empty.
pub fn render_allocated(records: &[AllocationRecord]) -> Annotations {
    let mut out = Annotations::new();
    if let Some(first) = records.first() {
        out.insert(ALLOCATED_PORT.to_owned(), first.port.to_string());
        out.insert(LISTENER_ARN.to_owned(), first.listener_arn.clone());
        out.insert(TARGET_GROUP_ARN.to_owned(), first.target_group_arn.clone());
        out.insert(ADDRESS.to_owned(), format!("{}:{}", first.dns, first.port));
    }
    // Serializing plain strings and numbers cannot fail; an empty list is the fallback anyway.
    let json = serde_json::to_string(records).unwrap_or_else(|_| "[]".to_owned());
    out.insert(ALLOCATIONS.to_owned(), json);
    out.insert(STATUS.to_owned(), Status::Allocated.to_string());
    out
}

/// The `status` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every port has its listener (the API calls returned; players may not reach it yet).
    Allocated,
    /// Every listener has a healthy target: players can reach it.
    Ready,
    /// Waiting for something that may resolve by itself (a free port).
    Pending(String),
    /// The user must change something.
    Error(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Allocated => f.write_str("Allocated"),
            Status::Ready => f.write_str("Ready"),
            Status::Pending(r) => write!(f, "Pending: {r}"),
            Status::Error(r) => write!(f, "Error: {r}"),
        }
    }
}

/// Cuts a user's value for quoting in a message.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        let head: String = s.chars().take(64).collect();
        format!("{head}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn opt_in_accepts_only_true_and_false() {
        assert_eq!(opt_in(&ann(&[])), Ok(false));
        assert_eq!(opt_in(&ann(&[(AUTO_ASSIGN, "true")])), Ok(true));
        assert_eq!(opt_in(&ann(&[(AUTO_ASSIGN, "false")])), Ok(false));
        for bad in ["True", "yes", "1", "", " true"] {
            let err = opt_in(&ann(&[(AUTO_ASSIGN, bad)])).expect_err(bad);
            assert_eq!(err.key, AUTO_ASSIGN);
        }
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let req = parse_request(&ann(&[(AUTO_ASSIGN, "true")])).expect("defaults");
        assert_eq!(req.pool, DEFAULT_POOL);
        assert_eq!(req.health_check, HealthCheckSpec::default());
        // Sized for rooms: a new target is healthy after 2 checks 10 s apart, not 5 of 30 s.
        let hc = &req.health_check;
        assert_eq!(
            (
                hc.interval_seconds,
                hc.healthy_threshold,
                hc.unhealthy_threshold
            ),
            (Some(10), Some(2), Some(2))
        );
        assert_eq!(req.mode, Mode::PerService);
        assert_eq!(req.pod_release_after, DEFAULT_POD_RELEASE_AFTER);
    }

    #[test]
    fn reads_the_mode_and_the_pod_grace() {
        let req =
            parse_request(&ann(&[(MODE, "per-pod"), (POD_RELEASE_AFTER, "300s")])).expect("valid");
        assert_eq!((req.mode, req.pod_release_after), (Mode::PerPod, 300));
        let req =
            parse_request(&ann(&[(MODE, "per-service"), (POD_RELEASE_AFTER, "0")])).expect("valid");
        assert_eq!((req.mode, req.pod_release_after), (Mode::PerService, 0));
        let req = parse_request(&ann(&[(NLB, "game-edge-1")])).expect("valid");
        assert_eq!(req.nlb.as_deref(), Some("game-edge-1"));
        for (key, value) in [
            (NLB, "-edge"),
            (NLB, "a/b"),
            (MODE, "pod"),
            (POD_RELEASE_AFTER, "-1"),
            (POD_RELEASE_AFTER, "86401"),
            (POD_RELEASE_AFTER, "10m"),
        ] {
            let e = parse_request(&ann(&[(key, value)])).expect_err(value);
            assert_eq!(e.key, key, "{value}");
        }
    }

    #[test]
    fn reads_every_override() {
        let req = parse_request(&ann(&[
            (POOL, "eu-1"),
            (HC_PROTOCOL, "http"),
            (HC_PORT, "8080"),
            (HC_INTERVAL, "10"),
            (HC_TIMEOUT, "5"),
            (HC_HEALTHY_THRESHOLD, "3"),
            (HC_UNHEALTHY_THRESHOLD, "4"),
            (HC_PATH, "/healthz"),
        ]))
        .expect("valid");
        assert_eq!(req.pool, "eu-1");
        let hc = req.health_check;
        assert_eq!(hc.protocol, HealthCheckProtocol::Http);
        assert_eq!(hc.port, HealthCheckPort::Port(8080));
        assert_eq!(
            (
                hc.interval_seconds,
                hc.timeout_seconds,
                hc.healthy_threshold,
                hc.unhealthy_threshold
            ),
            (Some(10), Some(5), Some(3), Some(4))
        );
        assert_eq!(hc.path.as_deref(), Some("/healthz"));
    }

    #[test]
    fn rejects_each_bad_value_naming_the_key() {
        let huge = "x".repeat(5000);
        let cases: Vec<(&str, &str)> = vec![
            (POOL, "Bad Pool"),
            (POOL, &huge),
            (HC_PROTOCOL, "UDP"),
            (HC_PORT, "0"),
            (HC_PORT, "70000"),
            (HC_INTERVAL, "1"),
            (HC_INTERVAL, "ten"),
            (HC_TIMEOUT, "500"),
            (HC_HEALTHY_THRESHOLD, "11"),
            (HC_UNHEALTHY_THRESHOLD, "-1"),
            (HC_PATH, "/x"),
        ];
        for (key, value) in cases {
            let err = parse_request(&ann(&[(key, value)])).expect_err(key);
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().len() < 300, "message stays short: {err}");
        }
        let err =
            parse_request(&ann(&[(HC_PROTOCOL, "HTTP"), (HC_PATH, "health")])).expect_err("path");
        assert_eq!(err.key, HC_PATH);
        let err =
            parse_request(&ann(&[(HC_INTERVAL, "5"), (HC_TIMEOUT, "10")])).expect_err("t > i");
        assert_eq!(err.key, HC_TIMEOUT);
    }

    #[test]
    fn renders_seed_compatible_output() {
        let records = vec![AllocationRecord {
            name: "game".into(),
            protocol: ListenerProtocol::TcpUdp,
            service_port: 7777,
            port: 30001,
            nlb_arn: "arn:nlb".into(),
            dns: "nlb-1.elb.us-west-2.amazonaws.com".into(),
            listener_arn: "arn:listener".into(),
            target_group_arn: "arn:tg".into(),
            tls: false,
        }];
        let out = render_allocated(&records);
        assert_eq!(out[ALLOCATED_PORT], "30001");
        assert_eq!(out[ADDRESS], "nlb-1.elb.us-west-2.amazonaws.com:30001");
        assert_eq!(out[STATUS], "Allocated");
        let back: Vec<AllocationRecord> = serde_json::from_str(&out[ALLOCATIONS]).expect("json");
        assert_eq!(back, records);
        assert!(out[ALLOCATIONS].contains("\"protocol\":\"TCP_UDP\""));
        // `tls` is written only for a TLS listener, and read as false when absent.
        assert!(!out[ALLOCATIONS].contains("tls"));
        let tls = AllocationRecord {
            tls: true,
            ..records[0].clone()
        };
        let text = serde_json::to_string(&tls).expect("json");
        assert!(text.contains("\"tls\":true"), "{text}");
        assert_eq!(
            serde_json::from_str::<AllocationRecord>(&text).expect("back"),
            tls
        );
        assert_eq!(
            (records[0].listener_protocol(), tls.listener_protocol()),
            ("TCP_UDP".to_owned(), "TLS".to_owned())
        );
        assert!(out.keys().all(|k| OUTPUT_KEYS.contains(&k.as_str())));
    }

    #[test]
    fn a_service_ref_round_trips_and_odd_values_name_nothing() {
        let value = service_ref("room-tcp", "6f1c-uid");
        assert_eq!(value, "room-tcp/6f1c-uid");
        assert_eq!(parse_service_ref(&value), Some(("room-tcp", "6f1c-uid")));
        for odd in ["", "room", "/uid", "room/", "a/b/c"] {
            assert_eq!(parse_service_ref(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn a_summary_without_shared_pods_reads_and_writes_as_before() {
        let old = r#"{"allocated":2,"ready":1,"pending":0,"errors":0,"leaving":1}"#;
        let summary: PodsSummary = serde_json::from_str(old).expect("old summary");
        assert!(summary.shared.is_empty());
        assert_eq!(serde_json::to_string(&summary).expect("json"), old);
        let mut shared = summary;
        shared.shared.insert(
            "room-0".into(),
            SharedPod {
                address: "nlb.elb:30001".into(),
                ready: false,
            },
        );
        let text = serde_json::to_string(&shared).expect("json");
        assert!(
            text.ends_with(r#""shared":{"room-0":{"address":"nlb.elb:30001","ready":false}}}"#),
            "{text}"
        );
    }

    #[test]
    fn status_text() {
        assert_eq!(
            Status::Pending("pool exhausted".into()).to_string(),
            "Pending: pool exhausted"
        );
        assert_eq!(Status::Error("x".into()).to_string(), "Error: x");
    }
}
