//! An NLB's zones and cross-zone setting, on ELBv2 (for the sweep's listing and the
//! reachability check; see [`crate::contract::cross_zone`]).

use std::collections::BTreeSet;

use super::client::AwsLoadBalancing;
use super::convert::elb_error;
use crate::contract::cross_zone::ATTR_CROSS_ZONE;
use crate::model::elb::{ElbError, ElbErrorKind};

/// The error kind of an ELBv2 failure that says the NLB does not exist.
fn kind_of<E: aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata>(
    e: Option<&E>,
) -> ElbErrorKind {
    match e.and_then(|e| e.code()) {
        Some("LoadBalancerNotFound") => ElbErrorKind::NlbNotFound,
        _ => ElbErrorKind::Other,
    }
}

impl AwsLoadBalancing {
    /// [`crate::model::elb::LoadBalancing::nlb_zones`].
    pub(super) async fn fetch_nlb_zones(
        &self,
        nlb_arn: &str,
    ) -> Result<BTreeSet<String>, ElbError> {
        const OP: &str = "DescribeLoadBalancers (zones)";
        let out = self
            .client
            .describe_load_balancers()
            .load_balancer_arns(nlb_arn)
            .send()
            .await
            .map_err(|e| elb_error(OP, &e, kind_of(e.as_service_error())))?;
        let Some(lb) = out.load_balancers().first() else {
            return Err(ElbError {
                operation: OP,
                message: format!("load balancer {nlb_arn} not found"),
                retryable: false,
                kind: ElbErrorKind::NlbNotFound,
            });
        };
        Ok(lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_owned))
            .collect())
    }

    /// [`crate::model::elb::LoadBalancing::nlb_cross_zone`]; an NLB that does not list the attribute
    /// has AWS's default for NLBs, off.
    pub(super) async fn fetch_nlb_cross_zone(&self, nlb_arn: &str) -> Result<bool, ElbError> {
        const OP: &str = "DescribeLoadBalancerAttributes";
        let out = self
            .client
            .describe_load_balancer_attributes()
            .load_balancer_arn(nlb_arn)
            .send()
            .await
            .map_err(|e| elb_error(OP, &e, kind_of(e.as_service_error())))?;
        Ok(out
            .attributes()
            .iter()
            .any(|a| a.key() == Some(ATTR_CROSS_ZONE) && a.value() == Some("true")))
    }
}
