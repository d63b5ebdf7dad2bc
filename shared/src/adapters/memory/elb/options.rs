//! The in-memory double's listener and target group options, as AWS keeps them.

use std::collections::BTreeMap;

use super::state::{MemoryLoadBalancing, not_found};
use crate::contract::listener_options::TlsListener;
use crate::contract::protocol::ListenerProtocol;
use crate::model::elb::{ElbError, ElbErrorKind, ListenerInfo, ListenerTlsInfo};

/// Security policies the double knows (a few of AWS's).
pub(super) const SSL_POLICIES: [&str; 4] = [
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
];

/// Gives `info` the protocol and TLS settings asked for.
pub(super) fn apply_tls(
    info: &mut ListenerInfo,
    protocol: ListenerProtocol,
    tls: Option<&TlsListener>,
) {
    match tls {
        Some(tls) => {
            info.protocol = None;
            info.tls = Some(ListenerTlsInfo {
                certificate: Some(tls.certificate.clone()),
                policy: Some(tls.policy.clone()),
                alpn: Some(tls.alpn.as_str().to_owned()),
            });
        }
        None => {
            info.protocol = Some(protocol);
            info.tls = None;
        }
    }
}

impl MemoryLoadBalancing {
    pub(super) fn read_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, ElbError> {
        const OP: &str = "DescribeTargetGroupAttributes";
        let st = self.enter(OP)?;
        st.target_groups
            .get(arn)
            .map(|t| t.attributes.clone())
            .ok_or_else(|| not_found(OP, arn))
    }

    pub(super) fn write_attributes(
        &self,
        arn: &str,
        attributes: &[(String, String)],
    ) -> Result<(), ElbError> {
        const OP: &str = "ModifyTargetGroupAttributes";
        let mut st = self.enter(OP)?;
        let tg = st
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found(OP, arn))?;
        let udp = tg.protocol != ListenerProtocol::Tcp;
        for (key, value) in attributes {
            // AWS: UDP always keeps the client IP and takes no PROXY header.
            let refused = udp
                && ((key == "preserve_client_ip.enabled" && value == "false")
                    || (key == "proxy_protocol_v2.enabled" && value == "true"));
            if refused {
                return Err(ElbError {
                    operation: OP,
                    message: format!("{key}={value} is not supported for {}", tg.protocol),
                    retryable: false,
                    kind: ElbErrorKind::Other,
                });
            }
        }
        for (key, value) in attributes {
            tg.attributes.insert(key.clone(), value.clone());
        }
        Ok(())
    }

    pub(super) fn change_listener(
        &self,
        listener_arn: &str,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
    ) -> Result<(), ElbError> {
        const OP: &str = "ModifyListener";
        let mut st = self.enter(OP)?;
        let listener = st
            .listeners
            .get_mut(listener_arn)
            .ok_or_else(|| not_found(OP, listener_arn))?;
        apply_tls(&mut listener.info, protocol, tls);
        listener.info.target_group_arn = Some(target_group_arn.to_owned());
        Ok(())
    }

    pub(super) fn read_certificates(&self, listener_arn: &str) -> Result<Vec<String>, ElbError> {
        const OP: &str = "DescribeListenerCertificates";
        let st = self.enter(OP)?;
        st.listeners
            .get(listener_arn)
            .map(|l| l.certificates.clone())
            .ok_or_else(|| not_found(OP, listener_arn))
    }

    pub(super) fn change_certificates(
        &self,
        listener_arn: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ElbError> {
        const OP: &str = "AddListenerCertificates";
        let mut st = self.enter(OP)?;
        let listener = st
            .listeners
            .get_mut(listener_arn)
            .ok_or_else(|| not_found(OP, listener_arn))?;
        listener.certificates.retain(|c| !remove.contains(c));
        for c in add {
            if !listener.certificates.contains(c) {
                listener.certificates.push(c.clone());
            }
        }
        Ok(())
    }
}
