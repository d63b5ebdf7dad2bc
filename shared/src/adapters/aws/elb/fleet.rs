//! [`NlbFleet`] on the ELBv2 API.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType as SdkIpType, LoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerStateEnum, LoadBalancerTypeEnum, SubnetMapping, Tag,
};

use super::client::AwsLoadBalancing;
use super::convert::{other, quota};
use crate::model::elb::fleet::{NlbFleet, NlbInfo, NlbSpec, NlbStatus};
use crate::model::elb::{ElbError, ElbErrorKind};
use crate::model::pool::{IpAddressType, Scheme};

/// ARNs per DescribeLoadBalancers call (the API's limit).
const NLB_BATCH: usize = 20;
/// Load balancers per DescribeLoadBalancers page when counting (the API's largest page).
const PAGE_SIZE: i32 = 400;
/// Pages read when counting: 40,000 load balancers, far past any region's quota.
const MAX_PAGES: usize = 100;

fn info(lb: &LoadBalancer) -> Option<NlbInfo> {
    let state = lb.state();
    let status = match state.and_then(|s| s.code()) {
        Some(LoadBalancerStateEnum::Provisioning) => NlbStatus::Provisioning,
        Some(LoadBalancerStateEnum::Active) => NlbStatus::Active,
        Some(LoadBalancerStateEnum::Failed) => NlbStatus::Failed(
            state
                .and_then(|s| s.reason())
                .unwrap_or("no reason given")
                .to_owned(),
        ),
        other => NlbStatus::Other(other.map_or("unknown", |c| c.as_str()).to_owned()),
    };
    Some(NlbInfo {
        arn: lb.load_balancer_arn()?.to_owned(),
        name: lb.load_balancer_name()?.to_owned(),
        status,
    })
}

#[async_trait]
impl NlbFleet for AwsLoadBalancing {
    async fn create_nlb(&self, spec: &NlbSpec) -> Result<String, ElbError> {
        const OP: &str = "CreateLoadBalancer";
        self.writes.take().await;
        let mut request = self
            .client
            .create_load_balancer()
            .name(&spec.name)
            .r#type(LoadBalancerTypeEnum::Network)
            .scheme(match spec.scheme {
                Scheme::InternetFacing => LoadBalancerSchemeEnum::InternetFacing,
                Scheme::Internal => LoadBalancerSchemeEnum::Internal,
            })
            .ip_address_type(match spec.ip_address_type {
                IpAddressType::Ipv4 => SdkIpType::Ipv4,
                IpAddressType::Dualstack => SdkIpType::Dualstack,
            })
            .set_tags(Some(
                spec.tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ));
        // Subnet mappings carry Elastic IPs; plain subnets otherwise (ELBv2 takes one form).
        if spec.subnets.iter().any(|s| s.allocation_id.is_some()) {
            for s in &spec.subnets {
                request = request.subnet_mappings(
                    SubnetMapping::builder()
                        .subnet_id(&s.subnet_id)
                        .set_allocation_id(s.allocation_id.clone())
                        .build(),
                );
            }
        } else {
            for s in &spec.subnets {
                request = request.subnets(&s.subnet_id);
            }
        }
        if !spec.security_groups.is_empty() {
            request = request.set_security_groups(Some(spec.security_groups.clone()));
        }
        match request.send().await {
            Ok(out) => out
                .load_balancers()
                .first()
                .and_then(LoadBalancer::load_balancer_arn)
                .map(str::to_owned)
                .ok_or_else(|| ElbError {
                    operation: OP,
                    message: format!("the answer for {} names no load balancer", spec.name),
                    retryable: true,
                    kind: ElbErrorKind::Other,
                }),
            // An earlier attempt made it (AWS answers an identical request with the existing
            // NLB; a different one with this error): hand it back for the tags check.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_duplicate_load_balancer_name_exception()) =>
            {
                match self.nlb_named(&spec.name).await? {
                    Some(found) => Ok(found.arn),
                    None => Err(ElbError {
                        operation: OP,
                        message: format!(
                            "{} is a duplicate name, yet no load balancer has it (retry)",
                            spec.name
                        ),
                        retryable: true,
                        kind: ElbErrorKind::Other,
                    }),
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_too_many_load_balancers_exception()) =>
            {
                Err(quota(OP, &e, ElbErrorKind::TooManyLoadBalancers))
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn count_nlbs(&self) -> Result<usize, ElbError> {
        const OP: &str = "DescribeLoadBalancers (every page)";
        let mut seen = std::collections::HashSet::new();
        let mut marker: Option<String> = None;
        // Bounded, and counted by ARN: a server that ignores the marker (moto) answers the
        // same page again, which adds nothing and ends the count.
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .describe_load_balancers()
                .page_size(PAGE_SIZE)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| other(OP, &e))?;
            let before = seen.len();
            seen.extend(out.load_balancers().iter().filter_map(|lb| {
                let network = lb.r#type() == Some(&LoadBalancerTypeEnum::Network);
                Some((lb.load_balancer_arn()?.to_owned(), network))
            }));
            match out.next_marker() {
                Some(m) if !m.is_empty() && seen.len() > before => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(seen.iter().filter(|(_, network)| *network).count())
    }

    async fn nlb_named(&self, name: &str) -> Result<Option<NlbInfo>, ElbError> {
        const OP: &str = "DescribeLoadBalancers (by name)";
        match self
            .client
            .describe_load_balancers()
            .names(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.load_balancers().iter().find_map(info)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(other(OP, &e)),
        }
    }

    async fn describe_nlbs(&self, arns: &[String]) -> Result<Vec<NlbInfo>, ElbError> {
        const OP: &str = "DescribeLoadBalancers";
        let mut found = Vec::new();
        for batch in arns.chunks(NLB_BATCH) {
            match self
                .client
                .describe_load_balancers()
                .set_load_balancer_arns(Some(batch.to_vec()))
                .send()
                .await
            {
                Ok(out) => found.extend(out.load_balancers().iter().filter_map(info)),
                // One missing NLB fails the whole call: ask one by one to learn which exist.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
                {
                    if batch.len() > 1 {
                        for arn in batch {
                            found.extend(self.describe_nlbs(std::slice::from_ref(arn)).await?);
                        }
                    }
                }
                Err(e) => return Err(other(OP, &e)),
            }
        }
        Ok(found)
    }

    async fn set_cross_zone(&self, nlb_arn: &str, enabled: bool) -> Result<(), ElbError> {
        const OP: &str = "ModifyLoadBalancerAttributes";
        self.writes.take().await;
        self.client
            .modify_load_balancer_attributes()
            .load_balancer_arn(nlb_arn)
            .attributes(
                LoadBalancerAttribute::builder()
                    .key("load_balancing.cross_zone.enabled")
                    .value(enabled.to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| other(OP, &e))?;
        Ok(())
    }

    async fn delete_nlb(&self, nlb_arn: &str) -> Result<(), ElbError> {
        const OP: &str = "DeleteLoadBalancer";
        self.writes.take().await;
        match self
            .client
            .delete_load_balancer()
            .load_balancer_arn(nlb_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(other(OP, &e)),
        }
    }
}
