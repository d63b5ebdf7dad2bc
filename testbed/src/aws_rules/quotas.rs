//! [`TargetGroupQuota`] and [`TargetQuota`]: AWS's target group and target quotas, which moto
//! does not enforce, answered with AWS's error codes (`TooManyTargetGroups` on
//! CreateTargetGroup, `TooManyTargets` on RegisterTargets, HTTP 400, type `Sender`). The
//! messages follow the shape of AWS's (`The maximum number of targets per load balancer
//! '1000' has been reached`, as AWS answered the AWS Load Balancer Controller); the code under
//! test acts on the codes only.
//!
//! The bed is shared by tests running at once, so a rule counts only what passed through its
//! own proxy: the target groups one test's functions made, the targets they registered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{Answer, ElbCall, ElbRule, element_text, lock};

/// AWS: an account holds at most so many target groups in a region ("Target Groups per
/// Region", 3,000 by default); CreateTargetGroup beyond that is `TooManyTargetGroups`. Here
/// the limit is `limit` target groups made through the proxy and not deleted since.
#[derive(Debug)]
pub struct TargetGroupQuota {
    limit: usize,
    /// ARNs of the target groups made through the proxy that still exist.
    live: Mutex<BTreeSet<String>>,
    /// CreateTargetGroup calls refused.
    pub refused: AtomicUsize,
}

impl TargetGroupQuota {
    /// A rule allowing `limit` target groups.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            live: Mutex::new(BTreeSet::new()),
            refused: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl ElbRule for TargetGroupQuota {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        if call.action != "CreateTargetGroup" || lock(&self.live).len() < self.limit {
            return None;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Some(Answer::Error(
            400,
            "TooManyTargetGroups".to_owned(),
            format!(
                "The maximum number of target groups '{}' has been reached",
                self.limit
            ),
        ))
    }

    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        match call.action.as_str() {
            "CreateTargetGroup" => {
                if let Some(arn) = element_text(&body, "TargetGroupArn") {
                    lock(&self.live).insert(arn.to_owned());
                }
            }
            "DeleteTargetGroup" => {
                if let Some(arn) = call.param("TargetGroupArn") {
                    lock(&self.live).remove(arn);
                }
            }
            _ => {}
        }
        body
    }
}

/// AWS: an NLB takes at most so many targets per zone ("Targets per Availability Zone per
/// Network Load Balancer", 500 by default, a target in N target groups counting N times);
/// RegisterTargets beyond that is `TooManyTargets`. Here the limit is `limit` targets
/// registered through the proxy (a test's stack on one NLB in one zone) and not deregistered
/// or deleted with their group since.
#[derive(Debug)]
pub struct TargetQuota {
    limit: usize,
    /// Target group ARN -> its registered targets (`id:port`).
    registered: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// RegisterTargets calls refused.
    pub refused: AtomicUsize,
}

impl TargetQuota {
    /// A rule allowing `limit` targets.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            registered: Mutex::new(BTreeMap::new()),
            refused: AtomicUsize::new(0),
        }
    }
}

fn target_ids(call: &ElbCall) -> Vec<String> {
    call.targets()
        .into_iter()
        .map(|(id, port)| format!("{id}:{port}"))
        .collect()
}

#[async_trait]
impl ElbRule for TargetQuota {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        if call.action != "RegisterTargets" {
            return None;
        }
        let tg = call.param("TargetGroupArn").unwrap_or_default();
        let registered = lock(&self.registered);
        let held: usize = registered.values().map(BTreeSet::len).sum();
        let new = target_ids(call)
            .iter()
            .filter(|t| !registered.get(tg).is_some_and(|r| r.contains(*t)))
            .count();
        if held + new <= self.limit {
            return None;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Some(Answer::Error(
            400,
            "TooManyTargets".to_owned(),
            format!(
                "The maximum number of targets per Availability Zone per load balancer '{}' \
                 has been reached",
                self.limit
            ),
        ))
    }

    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        let tg = call.param("TargetGroupArn").unwrap_or_default().to_owned();
        let mut registered = lock(&self.registered);
        match call.action.as_str() {
            "RegisterTargets" => registered.entry(tg).or_default().extend(target_ids(call)),
            "DeregisterTargets" => {
                if let Some(r) = registered.get_mut(&tg) {
                    for t in target_ids(call) {
                        r.remove(&t);
                    }
                }
            }
            "DeleteTargetGroup" => {
                registered.remove(&tg);
            }
            _ => {}
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(body: &str) -> ElbCall {
        ElbCall::parse(body.as_bytes()).expect("a call")
    }

    #[tokio::test]
    async fn target_groups_past_the_limit_are_refused_until_one_is_deleted() {
        // GIVEN a quota of one target group, and one made
        let rule = TargetGroupQuota::new(1);
        let create = call("Action=CreateTargetGroup&Name=a");
        assert_eq!(rule.answer(&create).await, None);
        rule.rewrite(
            &create,
            "<TargetGroups><member><TargetGroupArn>tg-a</TargetGroupArn></member></TargetGroups>"
                .to_owned(),
        );

        // WHEN another is made
        let refused = rule.answer(&call("Action=CreateTargetGroup&Name=b")).await;

        // THEN AWS's code answers it; after a delete one fits again
        assert!(
            matches!(refused, Some(Answer::Error(400, ref code, _)) if code == "TooManyTargetGroups")
        );
        rule.rewrite(
            &call("Action=DeleteTargetGroup&TargetGroupArn=tg-a"),
            String::new(),
        );
        assert_eq!(
            rule.answer(&call("Action=CreateTargetGroup&Name=b")).await,
            None
        );
    }

    #[tokio::test]
    async fn targets_past_the_limit_are_refused_until_one_is_deregistered() {
        let rule = TargetQuota::new(1);
        let first = call(
            "Action=RegisterTargets&TargetGroupArn=a&Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=80",
        );
        assert_eq!(rule.answer(&first).await, None);
        rule.rewrite(&first, String::new());
        // registering the same target again is no new target
        assert_eq!(rule.answer(&first).await, None);
        let second = call(
            "Action=RegisterTargets&TargetGroupArn=b&Targets.member.1.Id=10.0.0.2&Targets.member.1.Port=80",
        );
        assert!(
            matches!(rule.answer(&second).await, Some(Answer::Error(400, ref code, _)) if code == "TooManyTargets")
        );
        rule.rewrite(
            &call(
                "Action=DeregisterTargets&TargetGroupArn=a&Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=80",
            ),
            String::new(),
        );
        assert_eq!(rule.answer(&second).await, None);
    }
}
