//! [`ListenerOptions`]: read from the annotations, held against the Service's listeners, and
//! turned into what each listener is made with ([`ListenerSetup`]).

use super::attributes::{AttributeOptions, TargetGroupAttributes};
use super::keys::{
    CONNECTION_TERMINATION, CROSS_ZONE, DEREGISTRATION_DELAY, MAX_DEREGISTRATION_DELAY,
    PRESERVE_CLIENT_IP, PROXY_PROTOCOL, SSL_CERT, SSL_PORTS,
};
use super::tls::{TlsListener, TlsOptions, parse_tls};
use crate::contract::annotations::{AnnotationError, Annotations, invalid, shorten, value};
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::ListenerSpec;

/// The listener and target group options of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerOptions {
    /// TLS termination, when asked for.
    pub tls: Option<TlsOptions>,
    /// Target group attributes.
    pub attributes: AttributeOptions,
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
