//! [`TargetZones`]: the zone AWS detects for an IP target in one of the VPC's subnets, which
//! moto does not report; and [`players_reach`], which zones' players reach a listener's
//! targets as AWS routes them.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_config::SdkConfig;

use super::{Answer, ElbCall, ElbRule, element_text};

/// The bed's VPCs (`crate::moto`) have a subnet per zone: `10.0.1.0/24` in zone a,
/// `10.0.2.0/24` in b, `10.0.3.0/24` in c. A pod of a test that models zones takes an IP
/// from one of them.
pub const ZONE_SUBNETS: [(&str, &str); 3] = [("10.0.1.", "a"), ("10.0.2.", "b"), ("10.0.3.", "c")];

/// The zone of `ip` in `region`'s bed VPC, if it is in one of its subnets.
pub fn zone_of(region: &str, ip: &str) -> Option<String> {
    ZONE_SUBNETS
        .iter()
        .find(|(prefix, _)| ip.starts_with(prefix))
        .map(|(_, az)| format!("{region}{az}"))
}

/// AWS: DescribeTargetHealth gives an IP target's `AvailabilityZone`, detected from the VPC
/// subnet the IP is in. moto gives none. Here each target description of an IP in the bed
/// VPC's subnets gets its zone.
#[derive(Debug)]
pub struct TargetZones {
    region: String,
}

impl TargetZones {
    /// Zones of `region` (e.g. `us-east-1`).
    pub fn new(region: &str) -> Self {
        Self {
            region: region.to_owned(),
        }
    }

    fn rewrite_health(&self, body: String) -> String {
        let mut out = String::with_capacity(body.len());
        let mut rest = body.as_str();
        while let Some(start) = rest.find("<Target>") {
            let Some(len) = rest[start..].find("</Target>") else {
                break;
            };
            let end = start + len;
            let target = &rest[start..end];
            out.push_str(&rest[..end]);
            let id = element_text(target, "Id");
            if !target.contains("<AvailabilityZone>")
                && let Some(zone) = id.and_then(|ip| zone_of(&self.region, ip))
            {
                out.push_str(&format!("<AvailabilityZone>{zone}</AvailabilityZone>"));
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

#[async_trait]
impl ElbRule for TargetZones {
    async fn answer(&self, _call: &ElbCall) -> Option<Answer> {
        None
    }

    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        if call.action == "DescribeTargetHealth" {
            self.rewrite_health(body)
        } else {
            body
        }
    }
}

/// The zones of `nlb_arn` whose players cannot reach a healthy target of `target_group_arn`,
/// as AWS routes: a node forwards to a target in its own zone, or in any zone when cross-zone
/// load balancing is on for the group (its own attribute, or its NLB's when it follows it).
/// Read from moto as it stands (`sdk` points at it, not at the proxy).
pub async fn players_reach(
    sdk: &SdkConfig,
    nlb_arn: &str,
    target_group_arn: &str,
) -> BTreeSet<String> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let lb = elb
        .describe_load_balancers()
        .load_balancer_arns(nlb_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describing NLB {nlb_arn}: {e:?}"));
    let zones: BTreeSet<String> = lb
        .load_balancers()
        .iter()
        .flat_map(|l| l.availability_zones())
        .filter_map(|z| z.zone_name().map(str::to_owned))
        .collect();
    let attribute = |attrs: &[aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute]| {
        attrs
            .iter()
            .find(|a| a.key() == Some("load_balancing.cross_zone.enabled"))
            .and_then(|a| a.value().map(str::to_owned))
    };
    let nlb_on = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(nlb_arn)
        .send()
        .await
        .map(|o| attribute(o.attributes()).as_deref() == Some("true"))
        .unwrap_or_else(|e| panic!("NLB attributes of {nlb_arn}: {e:?}"));
    let group_value = elb
        .describe_target_group_attributes()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("attributes of {target_group_arn}: {e:?}"))
        .attributes()
        .iter()
        .find(|a| a.key() == Some("load_balancing.cross_zone.enabled"))
        .and_then(|a| a.value().map(str::to_owned));
    let on = match group_value.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => nlb_on,
    };
    let health = elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("target health of {target_group_arn}: {e:?}"));
    let healthy: Vec<Option<String>> = health
        .target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target_health()
                .and_then(|h| h.state())
                .is_some_and(|s| s.as_str() == "healthy")
        })
        .map(|d| {
            d.target()
                .and_then(|t| t.id())
                .and_then(|ip| zone_of(&region, ip))
        })
        .collect();
    zones
        .into_iter()
        .filter(|zone| {
            !healthy
                .iter()
                .any(|target_zone| on || target_zone.as_deref() == Some(zone.as_str()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_in_a_subnet_gets_its_zone_and_others_none() {
        let rule = TargetZones::new("us-east-1");
        let body = "<TargetHealthDescriptions>\
            <member><Target><Id>10.0.2.7</Id><Port>80</Port></Target></member>\
            <member><Target><Id>10.9.0.1</Id><Port>80</Port></Target></member>\
            </TargetHealthDescriptions>"
            .to_owned();
        let out = rule.rewrite_health(body);
        assert_eq!(out.matches("<AvailabilityZone>").count(), 1, "{out}");
        assert!(
            out.contains("<Port>80</Port><AvailabilityZone>us-east-1b</AvailabilityZone></Target>"),
            "{out}"
        );
    }
}
