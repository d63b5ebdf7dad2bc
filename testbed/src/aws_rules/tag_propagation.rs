//! [`TagPropagationDelay`]: the seconds IAM takes to see a new resource's tags, which moto
//! (no IAM) does not have.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Answer, ElbCall, ElbRule, element_text, lock};

/// The calls the roles may make on a target group only by its tags, and the parameter naming it.
const ON_TARGET_GROUP: [&str; 6] = [
    "RegisterTargets",
    "DeregisterTargets",
    "ModifyTargetGroup",
    "ModifyTargetGroupAttributes",
    "DeleteTargetGroup",
    "AddTags",
];
/// The same for a listener.
const ON_LISTENER: [&str; 4] = [
    "ModifyListener",
    "DeleteListener",
    "AddListenerCertificates",
    "RemoveListenerCertificates",
];

/// AWS: for a few seconds after CreateTargetGroup or CreateListener, a call conditioned on the
/// new resource's tags (`aws:ResourceTag`) can be denied, IAM not having seen them yet (the
/// AWS Load Balancer Controller retries such denials). Here the first such call on each
/// resource made through the proxy within `window` of its creation is answered
/// `AccessDenied`; later ones pass.
#[derive(Debug)]
pub struct TagPropagationDelay {
    window: Duration,
    /// Resource ARN -> when made.
    made: Mutex<BTreeMap<String, Instant>>,
    /// Resources already denied once.
    denied_once: Mutex<BTreeSet<String>>,
    /// Calls denied.
    pub denied: AtomicUsize,
}

impl TagPropagationDelay {
    /// A rule denying the first tag-conditioned call on a new resource within `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            made: Mutex::new(BTreeMap::new()),
            denied_once: Mutex::new(BTreeSet::new()),
            denied: AtomicUsize::new(0),
        }
    }

    fn subject(call: &ElbCall) -> Option<&str> {
        let action = call.action.as_str();
        if ON_TARGET_GROUP.contains(&action) {
            // AddTags names its resources as a list; the first is enough here.
            return call
                .param("TargetGroupArn")
                .or_else(|| call.members("ResourceArns").first().copied());
        }
        ON_LISTENER
            .contains(&action)
            .then(|| call.param("ListenerArn"))
            .flatten()
    }
}

#[async_trait]
impl ElbRule for TagPropagationDelay {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        let arn = Self::subject(call)?;
        let made = lock(&self.made).get(arn).copied()?;
        if made.elapsed() >= self.window || !lock(&self.denied_once).insert(arn.to_owned()) {
            return None;
        }
        self.denied.fetch_add(1, Ordering::Relaxed);
        Some(Answer::Error(
            403,
            "AccessDenied".to_owned(),
            format!(
                "User is not authorized to perform: elasticloadbalancing:{} on resource: {arn} \
                 (the fault proxy's tag propagation delay)",
                call.action
            ),
        ))
    }

    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        let element = match call.action.as_str() {
            "CreateTargetGroup" => "TargetGroupArn",
            "CreateListener" => "ListenerArn",
            _ => return body,
        };
        if let Some(arn) = element_text(&body, element) {
            lock(&self.made)
                .entry(arn.to_owned())
                .or_insert_with(Instant::now);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: &str, params: &[(&str, &str)]) -> ElbCall {
        let mut all: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        all.insert("Action".into(), action.into());
        ElbCall {
            action: action.into(),
            params: all,
        }
    }

    #[tokio::test]
    async fn the_first_tag_conditioned_call_on_a_new_resource_is_denied_once() {
        // GIVEN a target group just made through the proxy
        let rule = TagPropagationDelay::new(Duration::from_secs(5));
        let tg = "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/npp-a/1";
        let made = format!(
            "<CreateTargetGroupResult><TargetGroups><member><TargetGroupArn>{tg}</TargetGroupArn></member></TargetGroups></CreateTargetGroupResult>"
        );
        rule.rewrite(&call("CreateTargetGroup", &[]), made);

        // WHEN targets are registered, twice
        let register = call("RegisterTargets", &[("TargetGroupArn", tg)]);
        let first = rule.answer(&register).await;
        let second = rule.answer(&register).await;

        // THEN the first is denied, the second passes; a resource not made here is not touched
        assert!(matches!(first, Some(Answer::Error(403, ref code, _)) if code == "AccessDenied"));
        assert_eq!(second, None);
        let other = call("RegisterTargets", &[("TargetGroupArn", "arn:other")]);
        assert_eq!(rule.answer(&other).await, None);
        assert_eq!(rule.denied.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn past_the_window_nothing_is_denied() {
        let rule = TagPropagationDelay::new(Duration::ZERO);
        let l = "arn:aws:elasticloadbalancing:us-west-2:1:listener/app/a/1/2";
        rule.rewrite(
            &call("CreateListener", &[]),
            format!("<ListenerArn>{l}</ListenerArn>"),
        );
        let modify = call("ModifyListener", &[("ListenerArn", l)]);
        assert_eq!(rule.answer(&modify).await, None);
    }
}
