//! [`LoadBalancing`] on the ELBv2 API: the calls that make and change things here, the reads in
//! `reads`, `options` and `zones`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};

use super::client::{AwsLoadBalancing, TARGET_BATCH};
use super::convert::{
    certificate, descriptions, elb_error, forward, gone, hc_port_text, hc_protocol_enum, invalid,
    other, protocol_enum, quota, tags,
};
use super::denials::{Budget, Called, Own};
use crate::adapters::aws::error::code;
use crate::contract::annotations::HealthCheckSpec;
use crate::contract::listener_options::TlsListener;
use crate::contract::protocol::ListenerProtocol;
use crate::model::elb::{
    ElbError, ElbErrorKind, EnsuredTargetGroup, ListenerInfo, LoadBalancing, ResourceTags,
    TAG_SERVICE_UID, TargetGroupInfo, TargetGroupSpec, TargetHealth,
};
use crate::model::targets::Target;

#[async_trait]
impl LoadBalancing for AwsLoadBalancing {
    async fn nlb_dns_names(
        &self,
        nlb_arns: &[String],
    ) -> Result<HashMap<String, String>, ElbError> {
        self.fetch_nlb_dns_names(nlb_arns).await
    }

    async fn ensure_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> Result<EnsuredTargetGroup, ElbError> {
        const OP: &str = "CreateTargetGroup";
        self.writes.take().await;
        let hc = &spec.health_check;
        let result = self
            .client
            .create_target_group()
            .name(&spec.name)
            .protocol(protocol_enum(spec.protocol))
            .port(i32::from(spec.port))
            .vpc_id(&spec.vpc_id)
            .target_type(TargetTypeEnum::Ip)
            .health_check_enabled(true)
            .health_check_protocol(hc_protocol_enum(hc.protocol))
            .health_check_port(hc_port_text(hc.port))
            .set_health_check_interval_seconds(hc.interval_seconds)
            .set_health_check_timeout_seconds(hc.timeout_seconds)
            .set_healthy_threshold_count(hc.healthy_threshold)
            .set_unhealthy_threshold_count(hc.unhealthy_threshold)
            .set_health_check_path(hc.path.clone())
            .set_tags(Some(tags(&spec.tags)))
            .send()
            .await;
        match result {
            // AWS answers a repeated identical create with the existing group (created=true is
            // then conservative only in that we skip reading its targets: it has none we put).
            Ok(out) => out
                .target_groups()
                .first()
                .and_then(|tg| tg.target_group_arn())
                .map(|arn| EnsuredTargetGroup {
                    arn: arn.to_owned(),
                    created: true,
                })
                .ok_or_else(|| invalid(OP, "the answer names no target group")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_duplicate_target_group_name_exception()) =>
            {
                // An earlier attempt made it (or it differs in settings): find it, check it is ours.
                // Deleted between the two calls (a concurrent release): try again later.
                let found = self
                    .find_target_group(&spec.name)
                    .await?
                    .ok_or_else(|| ElbError {
                        retryable: true,
                        ..invalid(
                            OP,
                            format!("{} was deleted while being made again", spec.name),
                        )
                    })?;
                let tags = self.tags_of(std::slice::from_ref(&found.arn)).await?;
                let owner = tags.get(&found.arn).and_then(|t| t.get(TAG_SERVICE_UID));
                if owner != Some(&spec.tags.owner.uid) {
                    return Err(invalid(
                        OP,
                        format!(
                            "target group {} exists but belongs to another owner ({owner:?})",
                            spec.name
                        ),
                    ));
                }
                Ok(EnsuredTargetGroup {
                    arn: found.arn,
                    created: false,
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_too_many_target_groups_exception()) =>
            {
                Err(quota(OP, &e, ElbErrorKind::TooManyTargetGroups))
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn find_target_group(&self, name: &str) -> Result<Option<TargetGroupInfo>, ElbError> {
        self.fetch_target_group_named(name).await
    }

    async fn describe_target_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<TargetGroupInfo>, ElbError> {
        self.fetch_target_groups(arns).await
    }

    async fn modify_health_check(&self, arn: &str, hc: &HealthCheckSpec) -> Result<(), ElbError> {
        const OP: &str = "ModifyTargetGroup";
        let called = self
            .on_own(Own::TargetGroup(arn), Budget::Writes, || {
                self.client
                    .modify_target_group()
                    .target_group_arn(arn)
                    .health_check_enabled(true)
                    .health_check_protocol(hc_protocol_enum(hc.protocol))
                    .health_check_port(hc_port_text(hc.port))
                    .set_health_check_interval_seconds(hc.interval_seconds)
                    .set_health_check_timeout_seconds(hc.timeout_seconds)
                    .set_healthy_threshold_count(hc.healthy_threshold)
                    .set_unhealthy_threshold_count(hc.unhealthy_threshold)
                    .set_health_check_path(hc.path.clone())
                    .send()
            })
            .await?;
        match called {
            Called::Answer(answer) => answer.map(|_| ()).map_err(|e| other(OP, &e)),
            Called::Gone => Err(gone(OP, arn)),
        }
    }

    async fn target_group_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, ElbError> {
        self.fetch_target_group_attributes(arn).await
    }

    async fn set_target_group_attributes(
        &self,
        arn: &str,
        attributes: &[(String, String)],
    ) -> Result<(), ElbError> {
        self.writes.take().await;
        self.put_target_group_attributes(arn, attributes).await
    }

    async fn create_listener(
        &self,
        nlb_arn: &str,
        port: u16,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
        resource_tags: &ResourceTags,
    ) -> Result<String, ElbError> {
        const OP: &str = "CreateListener";
        self.writes.take().await;
        let mut request = self
            .client
            .create_listener()
            .load_balancer_arn(nlb_arn)
            .port(i32::from(port))
            .protocol(protocol_enum(protocol))
            .default_actions(forward(target_group_arn))
            .set_tags(Some(tags(resource_tags)));
        if let Some(tls) = tls {
            request = request
                .protocol(ProtocolEnum::Tls)
                .certificates(certificate(&tls.certificate))
                .ssl_policy(&tls.policy)
                .alpn_policy(tls.alpn.as_str());
        }
        let out = request.send().await.map_err(|e| {
            let kind = match e.as_service_error() {
                Some(s) if s.is_duplicate_listener_exception() => ElbErrorKind::DuplicateListener,
                Some(s) if s.is_too_many_listeners_exception() => ElbErrorKind::TooManyListeners,
                Some(s) if s.is_load_balancer_not_found_exception() => ElbErrorKind::NlbNotFound,
                _ => ElbErrorKind::Other,
            };
            elb_error(OP, &e, kind)
        })?;
        out.listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .map(str::to_owned)
            .ok_or_else(|| invalid(OP, "the answer names no listener"))
    }

    async fn modify_listener(
        &self,
        listener_arn: &str,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
    ) -> Result<(), ElbError> {
        self.writes.take().await;
        self.change_listener(listener_arn, protocol, tls, target_group_arn)
            .await
    }

    async fn tag_listener(
        &self,
        listener_arn: &str,
        resource_tags: &ResourceTags,
    ) -> Result<(), ElbError> {
        const OP: &str = "AddTags (listener)";
        self.writes.take().await;
        self.client
            .add_tags()
            .resource_arns(listener_arn)
            .set_tags(Some(tags(resource_tags)))
            .send()
            .await
            .map(drop)
            .map_err(|e| other(OP, &e))
    }

    async fn listener_certificates(&self, listener_arn: &str) -> Result<Vec<String>, ElbError> {
        self.fetch_listener_certificates(listener_arn).await
    }

    async fn set_listener_certificates(
        &self,
        listener_arn: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ElbError> {
        if !add.is_empty() {
            self.writes.take().await;
        }
        if !remove.is_empty() {
            self.writes.take().await;
        }
        self.change_listener_certificates(listener_arn, add, remove)
            .await
    }

    async fn ssl_policy_exists(&self, name: &str) -> Result<bool, ElbError> {
        self.fetch_ssl_policy_exists(name).await
    }

    async fn describe_listeners(&self, arns: &[String]) -> Result<Vec<ListenerInfo>, ElbError> {
        self.fetch_listeners(arns).await
    }

    async fn listeners_of(&self, nlb_arn: &str) -> Result<Vec<ListenerInfo>, ElbError> {
        self.fetch_listeners_of(nlb_arn).await
    }

    async fn set_listener_target(
        &self,
        listener_arn: &str,
        target_group_arn: &str,
    ) -> Result<(), ElbError> {
        const OP: &str = "ModifyListener";
        let called = self
            .on_own(Own::Listener(listener_arn), Budget::Writes, || {
                self.client
                    .modify_listener()
                    .listener_arn(listener_arn)
                    .default_actions(forward(target_group_arn))
                    .send()
            })
            .await?;
        match called {
            Called::Answer(answer) => answer.map(|_| ()).map_err(|e| other(OP, &e)),
            Called::Gone => Err(gone(OP, listener_arn)),
        }
    }

    async fn targets(&self, target_group_arn: &str) -> Result<BTreeSet<Target>, ElbError> {
        self.fetch_targets(target_group_arn).await
    }

    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>, ElbError> {
        self.fetch_target_health(target_group_arn).await
    }

    async fn nlb_zones(&self, nlb_arn: &str) -> Result<BTreeSet<String>, ElbError> {
        self.fetch_nlb_zones(nlb_arn).await
    }

    async fn nlb_cross_zone(&self, nlb_arn: &str) -> Result<bool, ElbError> {
        self.fetch_nlb_cross_zone(nlb_arn).await
    }

    async fn register(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError> {
        const OP: &str = "RegisterTargets";
        for batch in targets.chunks(TARGET_BATCH) {
            let called = self
                .on_own(
                    Own::TargetGroup(target_group_arn),
                    Budget::Registrations,
                    || {
                        self.client
                            .register_targets()
                            .target_group_arn(target_group_arn)
                            .set_targets(Some(descriptions(batch)))
                            .send()
                    },
                )
                .await?;
            match called {
                Called::Answer(answer) => answer.map_err(|e| match e.as_service_error() {
                    Some(s) if s.is_too_many_targets_exception() => {
                        quota(OP, &e, ElbErrorKind::TooManyTargets)
                    }
                    _ => other(OP, &e),
                })?,
                Called::Gone => return Err(gone(OP, target_group_arn)),
            };
        }
        Ok(())
    }

    async fn deregister(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError> {
        const OP: &str = "DeregisterTargets";
        for batch in targets.chunks(TARGET_BATCH) {
            let called = self
                .on_own(
                    Own::TargetGroup(target_group_arn),
                    Budget::Registrations,
                    || {
                        self.client
                            .deregister_targets()
                            .target_group_arn(target_group_arn)
                            .set_targets(Some(descriptions(batch)))
                            .send()
                    },
                )
                .await?;
            let result = match called {
                Called::Answer(answer) => answer,
                // The targets went with their group.
                Called::Gone => return Ok(()),
            };
            match result {
                Ok(_) => {}
                // A target deregistered meanwhile (a concurrent run did it): deregister only
                // what is still there, so deregistering is idempotent.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_invalid_target_exception()) =>
                {
                    let registered = self.targets(target_group_arn).await?;
                    let left: Vec<Target> = batch
                        .iter()
                        .filter(|t| registered.contains(t))
                        .copied()
                        .collect();
                    if !left.is_empty() {
                        self.registrations.take().await;
                        self.client
                            .deregister_targets()
                            .target_group_arn(target_group_arn)
                            .set_targets(Some(descriptions(&left)))
                            .send()
                            .await
                            .map_err(|e| other(OP, &e))?;
                    }
                }
                Err(e) => return Err(other(OP, &e)),
            }
        }
        Ok(())
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), ElbError> {
        const OP: &str = "DeleteListener";
        let called = self
            .on_own(Own::Listener(arn), Budget::Writes, || {
                self.client.delete_listener().listener_arn(arn).send()
            })
            .await?;
        let Called::Answer(answer) = called else {
            return Ok(());
        };
        match answer {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_listener_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), ElbError> {
        const OP: &str = "DeleteTargetGroup";
        let called = self
            .on_own(Own::TargetGroup(arn), Budget::Writes, || {
                self.client
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
            })
            .await?;
        let Called::Answer(answer) = called else {
            return Ok(());
        };
        match answer {
            Ok(_) => Ok(()),
            // AWS answers success for a missing group; moto says TargetGroupNotFound.
            Err(e) if code(&e) == Some("TargetGroupNotFound") => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Err(elb_error(OP, &e, ElbErrorKind::InUse))
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn tags_of(
        &self,
        arns: &[String],
    ) -> Result<HashMap<String, HashMap<String, String>>, ElbError> {
        self.fetch_tags(arns).await
    }

    async fn project_target_groups(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<TargetGroupInfo>, Option<String>), ElbError> {
        self.fetch_project_target_groups(marker).await
    }
}
