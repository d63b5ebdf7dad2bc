//! TLS termination on the NLB: what the annotations ask for, and what a listener is made with.

use super::keys::{
    ALPN_POLICY, DEFAULT_SSL_POLICY, MAX_CERTIFICATES, SSL_CERT, SSL_POLICY, SSL_PORTS,
};
use crate::contract::annotations::{AnnotationError, Annotations, invalid, shorten, value};

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

/// Reads the TLS annotations; `None` when no certificate is named.
pub(super) fn parse_tls(annotations: &Annotations) -> Result<Option<TlsOptions>, AnnotationError> {
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
