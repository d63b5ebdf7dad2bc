//! What an opted-in Service asks for ([`AllocationRequest`]), parsed from its annotations.

use super::health_check::{
    DEFAULT_HC_INTERVAL, DEFAULT_HC_THRESHOLD, HealthCheckPort, HealthCheckProtocol,
    HealthCheckSpec,
};
use super::keys::{
    CLAIM_KEY, DEFAULT_POD_RELEASE_AFTER, DEFAULT_POOL, HC_HEALTHY_THRESHOLD, HC_INTERVAL, HC_PATH,
    HC_PORT, HC_PROTOCOL, HC_TIMEOUT, HC_UNHEALTHY_THRESHOLD, MAX_POD_RELEASE_AFTER, MODE, NLB,
    POD_RELEASE_AFTER, POOL,
};
use super::value::{AnnotationError, Annotations, invalid, shorten, value};
use crate::contract::listener_options::ListenerOptions;

/// How a Service's listeners are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One listener per Service port, the Service's ready pods as targets.
    #[default]
    PerService,
    /// One listener per Service port for each pod, that pod its only target.
    PerPod,
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
    pub options: ListenerOptions,
    /// The Service's targets are taken out of its listeners ([`super::keys::NETWORK_DISABLED`]);
    /// in per-pod mode, every pod's. A pod can also be disabled alone, by its own annotation.
    pub network_disabled: bool,
    /// The key other Services may take its listeners over by ([`super::keys::CLAIM_KEY`]).
    pub claim_key: Option<String>,
}

/// Parses the pool and health check annotations of an opted-in Service.
pub fn parse_request(annotations: &Annotations) -> Result<AllocationRequest, AnnotationError> {
    let get = |key: &'static str| value(annotations, key);
    let pool = match get(POOL)? {
        None | Some("") => DEFAULT_POOL.to_owned(),
        Some(p) => {
            crate::contract::names::validate_label(p)
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
    let claim_key = match get(CLAIM_KEY)? {
        None | Some("") => None,
        Some(k) => {
            crate::contract::names::validate_label(k)
                .map_err(|e| invalid(CLAIM_KEY, format!("{:?} {e}", shorten(k))))?;
            Some(k.to_owned())
        }
    };
    if claim_key.is_some() && mode == Mode::PerPod {
        return Err(invalid(
            CLAIM_KEY,
            "is for per-Service mode: a per-pod Service's pods keep their ports by name",
        ));
    }
    Ok(AllocationRequest {
        network_disabled: super::value::network_disabled(annotations)?,
        claim_key,
        pool,
        mode,
        pod_release_after,
        nlb,
        options: ListenerOptions::parse(annotations)?,
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
pub(super) fn is_nlb_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}
