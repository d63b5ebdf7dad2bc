//! Listener and target group options a Service may ask for (issue 15): TLS termination on the
//! NLB, the client's IP (preservation, PROXY protocol v2) and what happens to connections when
//! a target leaves (deregistration delay, connection termination).
//!
//! [`ListenerOptions::parse`] reads them from the annotations; [`ListenerOptions::check`]
//! holds them against the Service's listeners (TLS only on TCP ports, PROXY v2 and disabling
//! client IP preservation only where AWS allows them), so a bad value is refused before
//! anything is made; [`ListenerOptions::setup_for`] gives what one listener is made with.

use std::collections::BTreeMap;

use crate::annotations::{AnnotationError, Annotations, invalid, shorten, value};
use crate::cross_zone::{ATTR_CROSS_ZONE, CrossZoneWant};
use crate::protocol::ListenerProtocol;
use crate::service_model::ListenerSpec;

/// `"true"` or `"false"`: whether the Service's target groups balance across zones (default:
/// the pool's `crossZone`, on unless the pool says otherwise). See [`crate::cross_zone`].
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

/// A TLS listener's ALPN policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AlpnPolicy {
    /// No ALPN negotiation.
    #[default]
    None,
    /// HTTP/1.* only.
    Http1Only,
    /// HTTP/2 only.
    Http2Only,
    /// HTTP/1.1 preferred, HTTP/2 accepted.
    Http2Optional,
    /// HTTP/2 preferred, HTTP/1.1 accepted.
    Http2Preferred,
}

impl AlpnPolicy {
    const ALL: [AlpnPolicy; 5] = [
        Self::None,
        Self::Http1Only,
        Self::Http2Only,
        Self::Http2Optional,
        Self::Http2Preferred,
    ];

    /// The ELBv2 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Http1Only => "HTTP1Only",
            Self::Http2Only => "HTTP2Only",
            Self::Http2Optional => "HTTP2Optional",
            Self::Http2Preferred => "HTTP2Preferred",
        }
    }

    /// Parses the ELBv2 name (case-insensitive); an absent policy is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

/// What the TLS annotations ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Certificate ARNs, the default one first.
    pub certificates: Vec<String>,
    /// The Service ports (names or numbers) that terminate TLS; `None`: every TCP port.
    pub ports: Option<Vec<String>>,
    /// The security policy.
    pub policy: String,
    /// The ALPN policy.
    pub alpn: AlpnPolicy,
}

/// What the target group annotations ask for; unset fields keep AWS's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttributeOptions {
    /// `preserve_client_ip.enabled`.
    pub preserve_client_ip: Option<bool>,
    /// `proxy_protocol_v2.enabled`.
    pub proxy_protocol_v2: Option<bool>,
    /// `deregistration_delay.timeout_seconds`.
    pub deregistration_delay: Option<u32>,
    /// `deregistration_delay.connection_termination.enabled`.
    pub connection_termination: Option<bool>,
    /// `load_balancing.cross_zone.enabled` ([`CROSS_ZONE`]; unset: the pool's default).
    pub cross_zone: Option<bool>,
}

/// The listener and target group options of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerOptions {
    /// TLS termination, when asked for.
    pub tls: Option<TlsOptions>,
    /// Target group attributes.
    pub attributes: AttributeOptions,
}

/// A TLS listener's settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsListener {
    /// The default certificate.
    pub certificate: String,
    /// Further certificates (SNI), in the order given.
    pub additional: Vec<String>,
    /// The security policy.
    pub policy: String,
    /// The ALPN policy.
    pub alpn: AlpnPolicy,
}

/// The target group attributes this system manages, as wanted for one listener: every key
/// the listener's protocol takes, AWS's default where the Service sets nothing (so removing
/// an annotation puts the default back).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TargetGroupAttributes {
    values: BTreeMap<&'static str, String>,
    /// Cross-zone load balancing: as the Service asks ([`ListenerOptions::setup_for`]), then
    /// resolved against the pool ([`TargetGroupAttributes::with_cross_zone`]).
    cross_zone: Option<CrossZoneWant>,
}

impl TargetGroupAttributes {
    /// What `options` ask of a target group of `protocol`.
    pub fn wanted(options: &AttributeOptions, protocol: ListenerProtocol) -> Self {
        let flag = |b: bool| if b { "true" } else { "false" }.to_owned();
        let mut map = BTreeMap::new();
        if protocol == ListenerProtocol::Tcp {
            map.insert(
                ATTR_PRESERVE_CLIENT_IP,
                flag(options.preserve_client_ip.unwrap_or(false)),
            );
            map.insert(
                ATTR_PROXY_PROTOCOL_V2,
                flag(options.proxy_protocol_v2.unwrap_or(false)),
            );
        }
        map.insert(
            ATTR_DEREGISTRATION_DELAY,
            options.deregistration_delay.unwrap_or(300).to_string(),
        );
        map.insert(
            ATTR_CONNECTION_TERMINATION,
            flag(options.connection_termination.unwrap_or(false)),
        );
        Self {
            values: map,
            cross_zone: options.cross_zone.map(|enabled| CrossZoneWant {
                enabled,
                nlbs_agree: false,
            }),
        }
    }

    /// Resolves cross-zone load balancing: as the Service asked, else `pool_default`;
    /// `nlbs_have(enabled)` says whether every NLB the group may sit behind is known to have
    /// that value itself (then a new group follows its NLB and needs no attribute call).
    pub fn with_cross_zone(mut self, pool_default: bool, nlbs_have: impl Fn(bool) -> bool) -> Self {
        let enabled = self.cross_zone.map_or(pool_default, |c| c.enabled);
        self.cross_zone = Some(CrossZoneWant {
            enabled,
            nlbs_agree: nlbs_have(enabled),
        });
        self
    }

    /// Cross-zone load balancing as resolved (`None` before [`Self::with_cross_zone`] when the
    /// Service asks nothing).
    pub fn cross_zone(&self) -> Option<CrossZoneWant> {
        self.cross_zone
    }

    /// Whether a group with AWS's defaults is as wanted (so nothing needs reading or setting
    /// unless something changed).
    pub fn is_aws_default(&self, protocol: ListenerProtocol) -> bool {
        self.values == Self::aws_defaults(protocol).values
            && self.cross_zone.is_none_or(|c| c.nlbs_agree)
    }

    /// What a group just made (with AWS's defaults) must be given: the wanted values that are
    /// not AWS's, and cross-zone unless the group's NLBs already have it.
    pub fn on_creation(&self, protocol: ListenerProtocol) -> Vec<(String, String)> {
        let defaults = Self::aws_defaults(protocol);
        let mut changes: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(k, v)| defaults.values.get(*k) != Some(*v))
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(c) = self.cross_zone.filter(|c| !c.nlbs_agree) {
            changes.push((ATTR_CROSS_ZONE.to_owned(), c.value().to_owned()));
        }
        changes
    }

    /// AWS's defaults for an IP target group of `protocol`.
    pub fn aws_defaults(protocol: ListenerProtocol) -> Self {
        Self::wanted(&AttributeOptions::default(), protocol)
    }

    /// The wanted values that differ from `have` (a target group's attributes as described);
    /// a key `have` lacks counts as AWS's default.
    pub fn differences(
        &self,
        have: &BTreeMap<String, String>,
        protocol: ListenerProtocol,
    ) -> Vec<(String, String)> {
        let defaults = Self::aws_defaults(protocol);
        let mut changes: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(key, want)| {
                let current = have
                    .get(**key)
                    .map(String::as_str)
                    .or_else(|| defaults.values.get(**key).map(String::as_str));
                current != Some(want.as_str())
            })
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(c) = self.cross_zone
            && !c.satisfied_by(have.get(ATTR_CROSS_ZONE).map(String::as_str))
        {
            changes.push((ATTR_CROSS_ZONE.to_owned(), c.value().to_owned()));
        }
        changes
    }

    /// Every wanted key and value (cross-zone aside: see [`Self::cross_zone`]).
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

/// What one listener is made with besides its port and protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenerSetup {
    /// TLS termination, if the listener terminates TLS.
    pub tls: Option<TlsListener>,
    /// The target group's attributes.
    pub attributes: TargetGroupAttributes,
    /// The target group's protocol.
    pub protocol: ListenerProtocol,
}

impl ListenerSetup {
    /// Nothing asked beyond a plain listener with AWS's defaults.
    pub fn is_plain(&self) -> bool {
        self.tls.is_none() && self.attributes.is_aws_default(self.protocol)
    }

    /// The listener's protocol as ELBv2 names it: `TLS` when it terminates TLS.
    pub fn listener_protocol(&self) -> &'static str {
        if self.tls.is_some() {
            "TLS"
        } else {
            self.protocol.as_str()
        }
    }
}

impl ListenerOptions {
    /// Reads the options from a Service's annotations; each bad value names its annotation.
    pub fn parse(annotations: &Annotations) -> Result<Self, AnnotationError> {
        let get = |key: &'static str| value(annotations, key);
        let flag = |key: &'static str| -> Result<Option<bool>, AnnotationError> {
            match get(key)? {
                None | Some("") => Ok(None),
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                Some(other) => Err(invalid(
                    key,
                    format!("{:?} is neither \"true\" nor \"false\"", shorten(other)),
                )),
            }
        };
        let proxy_protocol_v2 = match get(PROXY_PROTOCOL)? {
            None | Some("") => None,
            Some(v) if v.eq_ignore_ascii_case("v2") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("none") => Some(false),
            Some(other) => {
                return Err(invalid(
                    PROXY_PROTOCOL,
                    format!("{:?} is neither v2 nor none", shorten(other)),
                ));
            }
        };
        let deregistration_delay = match get(DEREGISTRATION_DELAY)? {
            None | Some("") => None,
            Some(raw) => match raw.strip_suffix('s').unwrap_or(raw).parse::<u32>() {
                Ok(n) if n <= MAX_DEREGISTRATION_DELAY => Some(n),
                _ => {
                    return Err(invalid(
                        DEREGISTRATION_DELAY,
                        format!(
                            "{:?} is not a number of seconds from 0 to {MAX_DEREGISTRATION_DELAY}",
                            shorten(raw)
                        ),
                    ));
                }
            },
        };
        let attributes = AttributeOptions {
            preserve_client_ip: flag(PRESERVE_CLIENT_IP)?,
            proxy_protocol_v2,
            deregistration_delay,
            connection_termination: flag(CONNECTION_TERMINATION)?,
            cross_zone: flag(CROSS_ZONE)?,
        };
        Ok(Self {
            tls: parse_tls(annotations)?,
            attributes,
        })
    }

    /// Holds the options against the Service's listeners: every `ssl-ports` entry names a TCP
    /// port of the Service, TLS applies to at least one, and the attributes asked for suit
    /// each listener's protocol.
    pub fn check(&self, specs: &[ListenerSpec]) -> Result<(), AnnotationError> {
        if let Some(tls) = &self.tls {
            match &tls.ports {
                Some(selectors) => {
                    for selector in selectors {
                        let Some(spec) = specs.iter().find(|s| selects(selector, s)) else {
                            return Err(invalid(
                                SSL_PORTS,
                                format!("the Service has no port {:?}", shorten(selector)),
                            ));
                        };
                        if spec.protocol != ListenerProtocol::Tcp {
                            return Err(invalid(
                                SSL_PORTS,
                                format!(
                                    "port {:?} is {}: only a TCP port can terminate TLS",
                                    shorten(selector),
                                    spec.protocol
                                ),
                            ));
                        }
                    }
                }
                None if !specs.iter().any(|s| s.protocol == ListenerProtocol::Tcp) => {
                    return Err(invalid(
                        SSL_CERT,
                        "is set but the Service has no TCP-only port to terminate TLS on",
                    ));
                }
                None => {}
            }
        }
        let udp = specs
            .iter()
            .find(|s| s.protocol != ListenerProtocol::Tcp)
            .map(|s| s.name.as_str());
        if let Some(port) = udp {
            if self.attributes.proxy_protocol_v2 == Some(true) {
                return Err(invalid(
                    PROXY_PROTOCOL,
                    format!("v2 is for TCP ports only; port {port:?} carries UDP"),
                ));
            }
            if self.attributes.preserve_client_ip == Some(false) {
                return Err(invalid(
                    PRESERVE_CLIENT_IP,
                    format!(
                        "AWS always preserves the client IP of UDP traffic; port {port:?} \
                         carries UDP"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// What the listener of `spec` is made with (after [`ListenerOptions::check`]).
    pub fn setup_for(&self, spec: &ListenerSpec) -> ListenerSetup {
        let tls = self.tls.as_ref().filter(|tls| {
            spec.protocol == ListenerProtocol::Tcp
                && match &tls.ports {
                    None => true,
                    Some(selectors) => selectors.iter().any(|s| selects(s, spec)),
                }
        });
        ListenerSetup {
            tls: tls.map(|t| TlsListener {
                certificate: t.certificates[0].clone(),
                additional: t.certificates[1..].to_vec(),
                policy: t.policy.clone(),
                alpn: t.alpn,
            }),
            attributes: TargetGroupAttributes::wanted(&self.attributes, spec.protocol),
            protocol: spec.protocol,
        }
    }
}

/// Whether `selector` (a port name or number) names the listener `spec`.
fn selects(selector: &str, spec: &ListenerSpec) -> bool {
    spec.name == selector
        || spec.service_port.to_string() == selector
        || spec
            .ports
            .iter()
            .any(|p| p.name.as_deref() == Some(selector))
}

fn parse_tls(annotations: &Annotations) -> Result<Option<TlsOptions>, AnnotationError> {
    let get = |key: &'static str| value(annotations, key);
    let list = |raw: &str| -> Vec<String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let certificates = get(SSL_CERT)?.map(list).unwrap_or_default();
    if certificates.is_empty() {
        for key in [SSL_PORTS, SSL_POLICY, ALPN_POLICY] {
            if get(key)?.is_some_and(|v| !v.is_empty()) {
                return Err(invalid(key, format!("is set but {SSL_CERT} is not")));
            }
        }
        return Ok(None);
    }
    if certificates.len() > MAX_CERTIFICATES {
        return Err(invalid(
            SSL_CERT,
            format!(
                "names {} certificates (a listener takes at most {MAX_CERTIFICATES})",
                certificates.len()
            ),
        ));
    }
    for (i, arn) in certificates.iter().enumerate() {
        if certificates[..i].contains(arn) {
            return Err(invalid(SSL_CERT, format!("names {:?} twice", shorten(arn))));
        }
        if !is_certificate_arn(arn) {
            return Err(invalid(
                SSL_CERT,
                format!(
                    "{:?} is not an ACM certificate ARN \
                     (arn:aws:acm:REGION:ACCOUNT:certificate/ID)",
                    shorten(arn)
                ),
            ));
        }
    }
    let ports = match get(SSL_PORTS)? {
        None | Some("") | Some("*") => None,
        Some(raw) => Some(list(raw)),
    };
    let policy = match get(SSL_POLICY)? {
        None | Some("") => DEFAULT_SSL_POLICY.to_owned(),
        Some(p)
            if p.starts_with("ELBSecurityPolicy-")
                && p.len() <= 128
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            p.to_owned()
        }
        Some(other) => {
            return Err(invalid(
                SSL_POLICY,
                format!(
                    "{:?} is not an ELBv2 security policy name (ELBSecurityPolicy-...)",
                    shorten(other)
                ),
            ));
        }
    };
    let alpn = match get(ALPN_POLICY)? {
        None | Some("") => AlpnPolicy::None,
        Some(raw) => AlpnPolicy::parse(raw).ok_or_else(|| {
            invalid(
                ALPN_POLICY,
                format!(
                    "{:?} is not one of None, HTTP1Only, HTTP2Only, HTTP2Optional, \
                     HTTP2Preferred",
                    shorten(raw)
                ),
            )
        })?,
    };
    Ok(Some(TlsOptions {
        certificates,
        ports,
        policy,
        alpn,
    }))
}

/// `arn:<partition>:acm:<region>:<account>:certificate/<id>`.
fn is_certificate_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].strip_prefix("certificate/").is_some_and(|id| {
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
#[path = "listener_options_tests.rs"]
mod tests;
