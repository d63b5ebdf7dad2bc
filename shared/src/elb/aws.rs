//! [`LoadBalancing`] on the ELBv2 API.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Listener, ProtocolEnum, Tag, TargetDescription, TargetGroup,
    TargetHealthStateEnum, TargetTypeEnum,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::naming::{TAG_SERVICE_UID, TARGET_GROUP_PREFIX};
use super::{
    ElbError, ElbErrorKind, EnsuredTargetGroup, ListenerInfo, LoadBalancing, ResourceTags,
    TargetGroupInfo, TargetGroupSpec,
};
use crate::annotations::{HealthCheckPort, HealthCheckProtocol, HealthCheckSpec};
use crate::aws_error::{code, describe};
use crate::protocol::ListenerProtocol;
use crate::targets::Target;

/// Targets per RegisterTargets / DeregisterTargets call.
const TARGET_BATCH: usize = 200;
/// ARNs per DescribeTags call (the API's limit).
const TAGS_BATCH: usize = 20;
/// ARNs per DescribeLoadBalancers call (the API's limit; moto has none).
const NLB_BATCH: usize = 20;

/// The ELBv2 API.
#[derive(Debug, Clone)]
pub struct AwsLoadBalancing {
    client: Client,
}

impl AwsLoadBalancing {
    /// Uses `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn elb_error<E>(
    operation: &'static str,
    err: &SdkError<E, HttpResponse>,
    kind: ElbErrorKind,
) -> ElbError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (message, retryable) = describe(err);
    ElbError {
        operation,
        message,
        retryable: retryable || kind == ElbErrorKind::InUse,
        kind,
    }
}

fn other<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> ElbError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    elb_error(operation, err, ElbErrorKind::Other)
}

fn invalid(operation: &'static str, message: impl Into<String>) -> ElbError {
    ElbError {
        operation,
        message: message.into(),
        retryable: false,
        kind: ElbErrorKind::Other,
    }
}

fn protocol_enum(p: ListenerProtocol) -> ProtocolEnum {
    match p {
        ListenerProtocol::Tcp => ProtocolEnum::Tcp,
        ListenerProtocol::Udp => ProtocolEnum::Udp,
        ListenerProtocol::TcpUdp => ProtocolEnum::TcpUdp,
    }
}

fn hc_protocol_enum(p: HealthCheckProtocol) -> ProtocolEnum {
    match p {
        HealthCheckProtocol::Tcp => ProtocolEnum::Tcp,
        HealthCheckProtocol::Http => ProtocolEnum::Http,
        HealthCheckProtocol::Https => ProtocolEnum::Https,
    }
}

fn hc_port_text(p: HealthCheckPort) -> String {
    match p {
        HealthCheckPort::TrafficPort => "traffic-port".to_owned(),
        HealthCheckPort::Port(n) => n.to_string(),
    }
}

fn tags(t: &ResourceTags) -> Vec<Tag> {
    t.pairs()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn forward(target_group_arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

fn target_group_info(tg: &TargetGroup) -> Option<TargetGroupInfo> {
    let protocol = match tg.health_check_protocol() {
        Some(ProtocolEnum::Http) => HealthCheckProtocol::Http,
        Some(ProtocolEnum::Https) => HealthCheckProtocol::Https,
        _ => HealthCheckProtocol::Tcp,
    };
    let port = match tg.health_check_port() {
        None | Some("traffic-port") => HealthCheckPort::TrafficPort,
        Some(p) => p
            .parse()
            .map_or(HealthCheckPort::TrafficPort, HealthCheckPort::Port),
    };
    Some(TargetGroupInfo {
        arn: tg.target_group_arn()?.to_owned(),
        name: tg.target_group_name()?.to_owned(),
        health_check: HealthCheckSpec {
            protocol,
            port,
            interval_seconds: tg.health_check_interval_seconds(),
            timeout_seconds: tg.health_check_timeout_seconds(),
            healthy_threshold: tg.healthy_threshold_count(),
            unhealthy_threshold: tg.unhealthy_threshold_count(),
            path: tg.health_check_path().map(str::to_owned),
        },
        vpc_id: tg.vpc_id().map(str::to_owned),
    })
}

fn listener_info(l: &Listener) -> Option<ListenerInfo> {
    Some(ListenerInfo {
        arn: l.listener_arn()?.to_owned(),
        nlb_arn: l.load_balancer_arn()?.to_owned(),
        port: u16::try_from(l.port()?).ok()?,
        protocol: l
            .protocol()
            .and_then(|p| ListenerProtocol::parse(p.as_str())),
        target_group_arn: l
            .default_actions()
            .iter()
            .find_map(|a| a.target_group_arn().map(str::to_owned)),
    })
}

fn descriptions(targets: &[Target]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| {
            TargetDescription::builder()
                .id(t.ip.to_string())
                .port(i32::from(t.port))
                .build()
        })
        .collect()
}

#[async_trait]
impl LoadBalancing for AwsLoadBalancing {
    async fn nlb_dns_names(
        &self,
        nlb_arns: &[String],
    ) -> Result<HashMap<String, String>, ElbError> {
        const OP: &str = "DescribeLoadBalancers";
        let mut found = HashMap::new();
        for batch in nlb_arns.chunks(NLB_BATCH) {
            let result = self
                .client
                .describe_load_balancers()
                .set_load_balancer_arns(Some(batch.to_vec()))
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                // One missing NLB fails the whole call: ask one by one to learn which exist.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
                {
                    if batch.len() > 1 {
                        for arn in batch {
                            found.extend(self.nlb_dns_names(std::slice::from_ref(arn)).await?);
                        }
                    }
                    continue;
                }
                Err(e) => return Err(other(OP, &e)),
            };
            found.extend(out.load_balancers().iter().filter_map(|lb| {
                Some((
                    lb.load_balancer_arn()?.to_owned(),
                    lb.dns_name()?.to_owned(),
                ))
            }));
        }
        Ok(found)
    }

    async fn ensure_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> Result<EnsuredTargetGroup, ElbError> {
        const OP: &str = "CreateTargetGroup";
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
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn find_target_group(&self, name: &str) -> Result<Option<TargetGroupInfo>, ElbError> {
        const OP: &str = "DescribeTargetGroups (by name)";
        match self
            .client
            .describe_target_groups()
            .names(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.target_groups().iter().find_map(target_group_info)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn describe_target_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<TargetGroupInfo>, ElbError> {
        const OP: &str = "DescribeTargetGroups";
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let result = self
            .client
            .describe_target_groups()
            .set_target_group_arns(Some(arns.to_vec()))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .target_groups()
                .iter()
                .filter_map(target_group_info)
                .collect()),
            // One missing ARN fails the whole call: ask one by one to learn which exist.
            Err(e)
                if arns.len() > 1
                    && e.as_service_error()
                        .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                let mut found = Vec::new();
                for arn in arns {
                    found.extend(
                        self.describe_target_groups(std::slice::from_ref(arn))
                            .await?,
                    );
                }
                Ok(found)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn modify_health_check(&self, arn: &str, hc: &HealthCheckSpec) -> Result<(), ElbError> {
        const OP: &str = "ModifyTargetGroup";
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
            .await
            .map_err(|e| other(OP, &e))?;
        Ok(())
    }

    async fn create_listener(
        &self,
        nlb_arn: &str,
        port: u16,
        protocol: ListenerProtocol,
        target_group_arn: &str,
        resource_tags: &ResourceTags,
    ) -> Result<String, ElbError> {
        const OP: &str = "CreateListener";
        let out = self
            .client
            .create_listener()
            .load_balancer_arn(nlb_arn)
            .port(i32::from(port))
            .protocol(protocol_enum(protocol))
            .default_actions(forward(target_group_arn))
            .set_tags(Some(tags(resource_tags)))
            .send()
            .await
            .map_err(|e| {
                let kind = match e.as_service_error() {
                    Some(s) if s.is_duplicate_listener_exception() => {
                        ElbErrorKind::DuplicateListener
                    }
                    Some(s) if s.is_too_many_listeners_exception() => {
                        ElbErrorKind::TooManyListeners
                    }
                    Some(s) if s.is_load_balancer_not_found_exception() => {
                        ElbErrorKind::NlbNotFound
                    }
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

    async fn describe_listeners(&self, arns: &[String]) -> Result<Vec<ListenerInfo>, ElbError> {
        const OP: &str = "DescribeListeners";
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let result = self
            .client
            .describe_listeners()
            .set_listener_arns(Some(arns.to_vec()))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.listeners().iter().filter_map(listener_info).collect()),
            Err(e)
                if arns.len() > 1
                    && e.as_service_error()
                        .is_some_and(|s| s.is_listener_not_found_exception()) =>
            {
                let mut found = Vec::new();
                for arn in arns {
                    found.extend(self.describe_listeners(std::slice::from_ref(arn)).await?);
                }
                Ok(found)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_listener_not_found_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn listeners_of(&self, nlb_arn: &str) -> Result<Vec<ListenerInfo>, ElbError> {
        const OP: &str = "DescribeListeners (of an NLB)";
        let pages: Vec<Listener> = self
            .client
            .describe_listeners()
            .load_balancer_arn(nlb_arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| {
                let gone = e
                    .as_service_error()
                    .is_some_and(|s| s.is_load_balancer_not_found_exception());
                let kind = if gone {
                    ElbErrorKind::NlbNotFound
                } else {
                    ElbErrorKind::Other
                };
                elb_error(OP, &e, kind)
            })?;
        Ok(pages.iter().filter_map(listener_info).collect())
    }

    async fn set_listener_target(
        &self,
        listener_arn: &str,
        target_group_arn: &str,
    ) -> Result<(), ElbError> {
        const OP: &str = "ModifyListener";
        self.client
            .modify_listener()
            .listener_arn(listener_arn)
            .default_actions(forward(target_group_arn))
            .send()
            .await
            .map_err(|e| other(OP, &e))?;
        Ok(())
    }

    async fn targets(&self, target_group_arn: &str) -> Result<BTreeSet<Target>, ElbError> {
        const OP: &str = "DescribeTargetHealth";
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| other(OP, &e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            // `draining`: deregistered, finishing its connections for the deregistration delay
            // (300 s by default). It no longer counts as registered, so a pod back within that
            // time is registered again (as the AWS Load Balancer Controller does). `unused` (a
            // group not yet behind a listener, an AZ not enabled) and `unhealthy.draining` are
            // registered. moto never reports `draining` (deregistering removes the target at
            // once); the bed gets AWS's answer through testbed::aws_rules::DrainingTargets.
            .filter(|d| {
                d.target_health().and_then(|h| h.state()) != Some(&TargetHealthStateEnum::Draining)
            })
            .filter_map(|d| {
                let t = d.target()?;
                Some(Target {
                    ip: t.id()?.parse().ok()?,
                    port: u16::try_from(t.port()?).ok()?,
                })
            })
            .collect())
    }

    async fn register(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError> {
        const OP: &str = "RegisterTargets";
        for batch in targets.chunks(TARGET_BATCH) {
            self.client
                .register_targets()
                .target_group_arn(target_group_arn)
                .set_targets(Some(descriptions(batch)))
                .send()
                .await
                .map_err(|e| other(OP, &e))?;
        }
        Ok(())
    }

    async fn deregister(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError> {
        const OP: &str = "DeregisterTargets";
        for batch in targets.chunks(TARGET_BATCH) {
            let result = self
                .client
                .deregister_targets()
                .target_group_arn(target_group_arn)
                .set_targets(Some(descriptions(batch)))
                .send()
                .await;
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
        match self.client.delete_listener().listener_arn(arn).send().await {
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
        match self
            .client
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
        {
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
        const OP: &str = "DescribeTags";
        let mut out = HashMap::new();
        for batch in arns.chunks(TAGS_BATCH) {
            let result = self
                .client
                .describe_tags()
                .set_resource_arns(Some(batch.to_vec()))
                .send()
                .await;
            let described = match result {
                Ok(d) => d,
                // One missing resource fails the batch: fall back to one at a time.
                Err(e) if batch.len() > 1 && code(&e).is_some_and(|c| c.ends_with("NotFound")) => {
                    for arn in batch {
                        out.extend(self.tags_of(std::slice::from_ref(arn)).await?);
                    }
                    continue;
                }
                Err(e) if code(&e).is_some_and(|c| c.ends_with("NotFound")) => continue,
                Err(e) => return Err(other(OP, &e)),
            };
            for d in described.tag_descriptions() {
                let Some(arn) = d.resource_arn() else {
                    continue;
                };
                let tags = d
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect();
                out.insert(arn.to_owned(), tags);
            }
        }
        Ok(out)
    }

    async fn project_target_groups(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<TargetGroupInfo>, Option<String>), ElbError> {
        const OP: &str = "DescribeTargetGroups (page)";
        let out = self
            .client
            .describe_target_groups()
            .set_marker(marker)
            .page_size(400)
            .send()
            .await
            .map_err(|e| other(OP, &e))?;
        let groups = out
            .target_groups()
            .iter()
            .filter_map(target_group_info)
            .filter(|tg| tg.name.starts_with(TARGET_GROUP_PREFIX))
            .collect();
        Ok((groups, out.next_marker().map(str::to_owned)))
    }
}
