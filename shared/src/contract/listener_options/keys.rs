//! The annotation keys of the listener options, their bounds, and the target group attributes
//! they set.

/// `"true"` or `"false"`: whether the Service's target groups balance across zones (default:
/// the pool's `crossZone`, on unless the pool says otherwise). See [`crate::contract::cross_zone`].
pub const CROSS_ZONE: &str = "nlb.port-manager/cross-zone";
/// ACM certificate ARNs, comma-separated: the first is the TLS listeners' default
/// certificate, the others are added to them (served by SNI).
pub const SSL_CERT: &str = "nlb.port-manager/ssl-cert";
/// Which Service ports terminate TLS, by name or number, comma-separated (default: every TCP
/// port of the Service).
pub const SSL_PORTS: &str = "nlb.port-manager/ssl-ports";
/// The TLS listeners' security policy (default [`DEFAULT_SSL_POLICY`]).
pub const SSL_POLICY: &str = "nlb.port-manager/ssl-negotiation-policy";
/// The TLS listeners' ALPN policy: `None` (the default), `HTTP1Only`, `HTTP2Only`,
/// `HTTP2Optional` or `HTTP2Preferred`.
pub const ALPN_POLICY: &str = "nlb.port-manager/alpn-policy";
/// `"true"` or `"false"`: whether targets see the client's IP as the source (TCP and TLS
/// ports; UDP always preserves it).
pub const PRESERVE_CLIENT_IP: &str = "nlb.port-manager/preserve-client-ip";
/// `v2` or `none`: whether each TCP connection starts with a PROXY protocol v2 header.
pub const PROXY_PROTOCOL: &str = "nlb.port-manager/proxy-protocol";
/// Seconds a deregistered target keeps its connections (0 to 3600, AWS's default 300).
pub const DEREGISTRATION_DELAY: &str = "nlb.port-manager/deregistration-delay";
/// `"true"` or `"false"`: whether a deregistered target's connections are closed when the
/// deregistration delay ends (AWS's default `false`: they may outlive it).
pub const CONNECTION_TERMINATION: &str = "nlb.port-manager/connection-termination";

/// The security policy of a TLS listener whose Service names none: TLS 1.3 and 1.2, AWS's
/// recommended policy for new listeners.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/// Certificates one listener may carry (AWS's default quota).
pub const MAX_CERTIFICATES: usize = 25;
/// Longest deregistration delay AWS accepts, seconds.
pub const MAX_DEREGISTRATION_DELAY: u32 = 3600;

/// Target group attribute: client IP preservation.
pub const ATTR_PRESERVE_CLIENT_IP: &str = "preserve_client_ip.enabled";
/// Target group attribute: PROXY protocol v2.
pub const ATTR_PROXY_PROTOCOL_V2: &str = "proxy_protocol_v2.enabled";
/// Target group attribute: the deregistration delay.
pub const ATTR_DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// Target group attribute: connection termination at the end of the deregistration delay.
pub const ATTR_CONNECTION_TERMINATION: &str = "deregistration_delay.connection_termination.enabled";
