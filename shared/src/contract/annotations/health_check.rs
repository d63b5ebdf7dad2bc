//! The health check a Service's target groups get, and its defaults.

use serde::{Deserialize, Serialize};

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
