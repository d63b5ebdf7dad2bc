//! [`RegionalNlbQuota`]: AWS's quota of Network Load Balancers per region, which moto does not
//! enforce.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::element_text;
use super::provisioning_delay::load_balancer_members;
use super::{Answer, ElbCall, ElbRule};

/// AWS: an account holds at most its quota of NLBs in a region ("Network Load Balancers per
/// Region", L-69A177A2, 50 by default), and CreateLoadBalancer beyond it answers
/// `TooManyLoadBalancers`; moto makes any number. The shared bed's moto holds every test's
/// NLBs, so the region this rule shows is one test's account: the NLBs of its VPC. A listing
/// of every load balancer (DescribeLoadBalancers naming none) shows only those, and
/// CreateLoadBalancer is refused once as many as the quota exist (counted from what passed
/// the proxy: created minus deleted).
#[derive(Debug)]
pub struct RegionalNlbQuota {
    vpc_id: String,
    quota: AtomicUsize,
    /// NLBs created through the proxy and not deleted through it.
    live: Mutex<BTreeSet<String>>,
    /// CreateLoadBalancer calls refused.
    pub refused: AtomicUsize,
}

impl RegionalNlbQuota {
    /// The region of the account whose NLBs are in `vpc_id`, with no quota until one is set.
    pub fn new(vpc_id: &str) -> Self {
        Self {
            vpc_id: vpc_id.to_owned(),
            quota: AtomicUsize::new(usize::MAX),
            live: Mutex::new(BTreeSet::new()),
            refused: AtomicUsize::new(0),
        }
    }

    /// Refuses CreateLoadBalancer once `quota` NLBs exist.
    pub fn set_quota(&self, quota: usize) {
        self.quota.store(quota, Ordering::Relaxed);
    }

    fn live(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ElbRule for RegionalNlbQuota {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        match call.action.as_str() {
            "DeleteLoadBalancer" => {
                if let Some(arn) = call.param("LoadBalancerArn") {
                    self.live().remove(arn);
                }
                None
            }
            "CreateLoadBalancer" if self.live().len() >= self.quota.load(Ordering::Relaxed) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                // AWS's code and message (ELBv2 API reference, CreateLoadBalancer errors).
                Some(Answer::Error(
                    400,
                    "TooManyLoadBalancers".to_owned(),
                    "Exceeded quota of account 123456789012".to_owned(),
                ))
            }
            _ => None,
        }
    }

    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        match call.action.as_str() {
            "CreateLoadBalancer" => {
                for m in load_balancer_members(&body) {
                    if let Some(arn) = element_text(&body[m], "LoadBalancerArn") {
                        self.live().insert(arn.to_owned());
                    }
                }
                body
            }
            "DescribeLoadBalancers"
                if call.members("LoadBalancerArns").is_empty()
                    && call.members("Names").is_empty() =>
            {
                let mut body = body;
                let others: Vec<_> = load_balancer_members(&body)
                    .into_iter()
                    .filter(|m| {
                        element_text(&body[m.clone()], "VpcId") != Some(self.vpc_id.as_str())
                    })
                    .collect();
                // From the end, so the ranges still to cut stay valid.
                for m in others.into_iter().rev() {
                    body.replace_range(m, "");
                }
                body
            }
            _ => body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(body: &str) -> ElbCall {
        ElbCall::parse(body.as_bytes()).expect("call")
    }

    fn lb(arn: &str, vpc: &str) -> String {
        format!(
            "<member><LoadBalancerArn>{arn}</LoadBalancerArn><VpcId>{vpc}</VpcId>\
             <AvailabilityZones><member><ZoneName>a</ZoneName></member></AvailabilityZones>\
             </member>"
        )
    }

    fn listing(members: &str) -> String {
        format!("<R><LoadBalancers>{members}</LoadBalancers></R>")
    }

    #[tokio::test]
    async fn creates_past_the_quota_are_refused_until_one_is_deleted() {
        // GIVEN a quota of 1 and one NLB created through the rule
        let rule = RegionalNlbQuota::new("vpc-1");
        rule.set_quota(1);
        let create = call("Action=CreateLoadBalancer&Name=a");
        assert!(rule.answer(&create).await.is_none());
        rule.rewrite(&create, listing(&lb("arn-a", "vpc-1")));

        // WHEN another is created, THEN AWS's TooManyLoadBalancers; after a delete, it passes
        assert!(matches!(
            rule.answer(&create).await,
            Some(Answer::Error(400, code, _)) if code == "TooManyLoadBalancers"
        ));
        rule.answer(&call("Action=DeleteLoadBalancer&LoadBalancerArn=arn-a"))
            .await;
        assert!(rule.answer(&create).await.is_none());
    }

    #[test]
    fn a_listing_of_every_nlb_shows_only_the_accounts() {
        // GIVEN moto's listing of the shared bed's NLBs
        let rule = RegionalNlbQuota::new("vpc-1");
        let body = listing(&[lb("mine", "vpc-1"), lb("other", "vpc-2")].concat());

        // WHEN the rule rewrites it for a listing of every NLB, and for one by ARN
        let all = rule.rewrite(&call("Action=DescribeLoadBalancers"), body.clone());
        let by_arn = rule.rewrite(
            &call("Action=DescribeLoadBalancers&LoadBalancerArns.member.1=other"),
            body.clone(),
        );

        // THEN the first shows this account's NLB only; the second is moto's answer
        assert!(all.contains("mine") && !all.contains("other"), "{all}");
        assert_eq!(by_arn, body);
    }
}
