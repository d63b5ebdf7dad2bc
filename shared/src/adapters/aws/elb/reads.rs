//! The ELBv2 reads of [`AwsLoadBalancing`]: NLBs, target groups, listeners, targets, tags.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_elasticloadbalancingv2::types::{Listener, TargetHealthStateEnum};

use super::client::{AwsLoadBalancing, NLB_BATCH, TAGS_BATCH};
use super::convert::{elb_error, listener_info, other, target_group_info};
use crate::adapters::aws::error::code;
use crate::model::elb::naming::TARGET_GROUP_PREFIX;
use crate::model::elb::{ElbError, ElbErrorKind, ListenerInfo, LoadBalancing, TargetGroupInfo};
use crate::model::targets::Target;

impl AwsLoadBalancing {
    /// [`LoadBalancing::nlb_dns_names`].
    pub(super) async fn fetch_nlb_dns_names(
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

    /// [`LoadBalancing::find_target_group`].
    pub(super) async fn fetch_target_group_named(
        &self,
        name: &str,
    ) -> Result<Option<TargetGroupInfo>, ElbError> {
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

    /// [`LoadBalancing::describe_target_groups`].
    pub(super) async fn fetch_target_groups(
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

    /// [`LoadBalancing::describe_listeners`].
    pub(super) async fn fetch_listeners(
        &self,
        arns: &[String],
    ) -> Result<Vec<ListenerInfo>, ElbError> {
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

    /// [`LoadBalancing::listeners_of`].
    pub(super) async fn fetch_listeners_of(
        &self,
        nlb_arn: &str,
    ) -> Result<Vec<ListenerInfo>, ElbError> {
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

    /// [`LoadBalancing::targets`].
    pub(super) async fn fetch_targets(
        &self,
        target_group_arn: &str,
    ) -> Result<BTreeSet<Target>, ElbError> {
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

    /// [`LoadBalancing::target_health`].
    pub(super) async fn fetch_target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<crate::model::elb::TargetHealth>, ElbError> {
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
            .filter_map(|d| {
                let t = d.target()?;
                let health = d.target_health();
                Some(crate::model::elb::TargetHealth {
                    target: Target {
                        ip: t.id()?.parse().ok()?,
                        port: u16::try_from(t.port()?).ok()?,
                    },
                    state: health
                        .and_then(|h| h.state())
                        .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_owned()),
                    zone: t.availability_zone().map(str::to_owned),
                })
            })
            .collect())
    }

    /// [`LoadBalancing::tags_of`].
    pub(super) async fn fetch_tags(
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

    /// [`LoadBalancing::project_target_groups`].
    pub(super) async fn fetch_project_target_groups(
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
