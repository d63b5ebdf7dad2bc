//! Listener and target group options a Service may ask for (issue 15): TLS termination on the
//! NLB, the client's IP (preservation, PROXY protocol v2) and what happens to connections when
//! a target leaves (deregistration delay, connection termination).
//!
//! [`ListenerOptions::parse`] reads them from the annotations; [`ListenerOptions::check`]
//! holds them against the Service's listeners (TLS only on TCP ports, PROXY v2 and disabling
//! client IP preservation only where AWS allows them), so a bad value is refused before
//! anything is made; [`ListenerOptions::setup_for`] gives what one listener is made with.
//!
//! This module only names its parts: the keys (`keys`), TLS (`tls`), target group attributes
//! (`attributes`) and the options as a whole (`options`).

mod attributes;
mod keys;
mod options;
mod tls;

pub use attributes::{AttributeOptions, TargetGroupAttributes};
pub use keys::{
    ALPN_POLICY, ATTR_CONNECTION_TERMINATION, ATTR_DEREGISTRATION_DELAY, ATTR_PRESERVE_CLIENT_IP,
    ATTR_PROXY_PROTOCOL_V2, CONNECTION_TERMINATION, CROSS_ZONE, DEFAULT_SSL_POLICY,
    DEREGISTRATION_DELAY, MAX_CERTIFICATES, MAX_DEREGISTRATION_DELAY, PRESERVE_CLIENT_IP,
    PROXY_PROTOCOL, SSL_CERT, SSL_POLICY, SSL_PORTS,
};
pub use options::{ListenerOptions, ListenerSetup};
pub use tls::{AlpnPolicy, TlsListener, TlsOptions};

#[cfg(test)]
mod tests;
