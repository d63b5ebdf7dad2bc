//! Listener and target group protocols.

use serde::{Deserialize, Serialize};

/// The protocol of one listener and its target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ListenerProtocol {
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// TCP and UDP on one port number.
    #[serde(rename = "TCP_UDP")]
    TcpUdp,
}

impl ListenerProtocol {
    /// The ELBv2 protocol name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::TcpUdp => "TCP_UDP",
        }
    }

    /// From a Service port's protocol (`TCP`, `UDP`; Kubernetes' default is TCP).
    pub fn from_service_protocol(p: Option<&str>) -> Result<Self, String> {
        match p.unwrap_or("TCP") {
            "TCP" => Ok(Self::Tcp),
            "UDP" => Ok(Self::Udp),
            other => Err(format!(
                "protocol {other} is not supported by an NLB listener (TCP or UDP)"
            )),
        }
    }

    /// The protocol serving both `self` and `other` on one port number.
    pub fn merge(self, other: Self) -> Self {
        if self == other { self } else { Self::TcpUdp }
    }

    /// Parses the ELBv2 name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "TCP_UDP" => Some(Self::TcpUdp),
            _ => None,
        }
    }
}

impl std::fmt::Display for ListenerProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_tcp_and_udp() {
        use ListenerProtocol::*;
        assert_eq!(Tcp.merge(Udp), TcpUdp);
        assert_eq!(Udp.merge(Udp), Udp);
        assert_eq!(TcpUdp.merge(Tcp), TcpUdp);
    }

    #[test]
    fn reads_service_protocols() {
        assert_eq!(
            ListenerProtocol::from_service_protocol(None),
            Ok(ListenerProtocol::Tcp)
        );
        assert_eq!(
            ListenerProtocol::from_service_protocol(Some("UDP")),
            Ok(ListenerProtocol::Udp)
        );
        assert!(ListenerProtocol::from_service_protocol(Some("SCTP")).is_err());
        for p in [
            ListenerProtocol::Tcp,
            ListenerProtocol::Udp,
            ListenerProtocol::TcpUdp,
        ] {
            assert_eq!(ListenerProtocol::parse(p.as_str()), Some(p));
        }
    }
}
