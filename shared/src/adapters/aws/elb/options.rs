//! The calls behind a listener's and a target group's options: TLS settings and certificates,
//! target group attributes, security policy lookups.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetGroupAttribute};

use super::client::AwsLoadBalancing;
use super::convert::{certificate, forward, gone, other, protocol_enum};
use super::denials::{Budget, Called, Own};
use crate::contract::listener_options::TlsListener;
use crate::contract::protocol::ListenerProtocol;
use crate::model::elb::ElbError;

/// Certificates per AddListenerCertificates / RemoveListenerCertificates call: the API
/// reference allows one per call.
const CERTIFICATE_BATCH: usize = 1;

impl AwsLoadBalancing {
    /// [`crate::model::elb::LoadBalancing::target_group_attributes`].
    pub(super) async fn fetch_target_group_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, ElbError> {
        const OP: &str = "DescribeTargetGroupAttributes";
        let out = self
            .client
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|e| other(OP, &e))?;
        Ok(out
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_owned(), a.value()?.to_owned())))
            .collect())
    }

    /// [`crate::model::elb::LoadBalancing::set_target_group_attributes`] (budget taken by the caller).
    pub(super) async fn put_target_group_attributes(
        &self,
        arn: &str,
        attributes: &[(String, String)],
    ) -> Result<(), ElbError> {
        const OP: &str = "ModifyTargetGroupAttributes";
        if attributes.is_empty() {
            return Ok(());
        }
        let attributes = attributes
            .iter()
            .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
            .collect();
        let attributes: Vec<TargetGroupAttribute> = attributes;
        let called = self
            .on_own(Own::TargetGroup(arn), Budget::Taken, || {
                self.client
                    .modify_target_group_attributes()
                    .target_group_arn(arn)
                    .set_attributes(Some(attributes.clone()))
                    .send()
            })
            .await?;
        match called {
            Called::Answer(answer) => answer.map(|_| ()).map_err(|e| other(OP, &e)),
            Called::Gone => Err(gone(OP, arn)),
        }
    }

    /// [`crate::model::elb::LoadBalancing::modify_listener`] (budget taken by the caller).
    pub(super) async fn change_listener(
        &self,
        listener_arn: &str,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
    ) -> Result<(), ElbError> {
        const OP: &str = "ModifyListener";
        let request = || {
            let request = self
                .client
                .modify_listener()
                .listener_arn(listener_arn)
                .default_actions(forward(target_group_arn));
            match tls {
                Some(tls) => request
                    .protocol(ProtocolEnum::Tls)
                    .certificates(certificate(&tls.certificate))
                    .ssl_policy(&tls.policy)
                    .alpn_policy(tls.alpn.as_str()),
                None => request.protocol(protocol_enum(protocol)),
            }
            .send()
        };
        match self
            .on_own(Own::Listener(listener_arn), Budget::Taken, request)
            .await?
        {
            Called::Answer(answer) => answer.map(|_| ()).map_err(|e| other(OP, &e)),
            Called::Gone => Err(gone(OP, listener_arn)),
        }
    }

    /// [`crate::model::elb::LoadBalancing::listener_certificates`].
    pub(super) async fn fetch_listener_certificates(
        &self,
        listener_arn: &str,
    ) -> Result<Vec<String>, ElbError> {
        const OP: &str = "DescribeListenerCertificates";
        let mut found = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .client
                .describe_listener_certificates()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| other(OP, &e))?;
            found.extend(
                out.certificates()
                    .iter()
                    .filter(|c| c.is_default() != Some(true))
                    .filter_map(|c| c.certificate_arn().map(str::to_owned)),
            );
            marker = out.next_marker().map(str::to_owned);
            if marker.is_none() {
                return Ok(found);
            }
        }
    }

    /// [`crate::model::elb::LoadBalancing::set_listener_certificates`] (budget taken by the caller).
    pub(super) async fn change_listener_certificates(
        &self,
        listener_arn: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ElbError> {
        const ADD: &str = "AddListenerCertificates";
        const REMOVE: &str = "RemoveListenerCertificates";
        let own = Own::Listener(listener_arn);
        for batch in add.chunks(CERTIFICATE_BATCH) {
            let called = self
                .on_own(own, Budget::Taken, || {
                    self.client
                        .add_listener_certificates()
                        .listener_arn(listener_arn)
                        .set_certificates(Some(batch.iter().map(|c| certificate(c)).collect()))
                        .send()
                })
                .await?;
            match called {
                Called::Answer(answer) => answer.map_err(|e| other(ADD, &e))?,
                Called::Gone => return Err(gone(ADD, listener_arn)),
            };
        }
        for batch in remove.chunks(CERTIFICATE_BATCH) {
            let called = self
                .on_own(own, Budget::Taken, || {
                    self.client
                        .remove_listener_certificates()
                        .listener_arn(listener_arn)
                        .set_certificates(Some(batch.iter().map(|c| certificate(c)).collect()))
                        .send()
                })
                .await?;
            match called {
                Called::Answer(answer) => answer.map_err(|e| other(REMOVE, &e))?,
                Called::Gone => return Err(gone(REMOVE, listener_arn)),
            };
        }
        Ok(())
    }

    /// [`crate::model::elb::LoadBalancing::ssl_policy_exists`].
    pub(super) async fn fetch_ssl_policy_exists(&self, name: &str) -> Result<bool, ElbError> {
        const OP: &str = "DescribeSSLPolicies";
        match self.client.describe_ssl_policies().names(name).send().await {
            Ok(out) => Ok(out.ssl_policies().iter().any(|p| p.name() == Some(name))),
            Err(e) if crate::adapters::aws::error::code(&e) == Some("SSLPolicyNotFound") => {
                Ok(false)
            }
            Err(e) => Err(other(OP, &e)),
        }
    }
}
