//! [`HealthDelay`]: the time AWS takes to call a new target healthy, which moto does not have.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Answer, ElbCall, ElbRule, element_text};

/// AWS: a target registered in a group behind an NLB is `initial`
/// (`Elb.RegistrationInProgress`) until its health checks pass: the group's healthy threshold
/// of checks, its interval apart (AWS's defaults, 5 checks of 30 s, make that minutes); the
/// NLB sends it no traffic meanwhile. moto reports `healthy` at once. Here a target registered
/// through the proxy reads `initial` in DescribeTargetHealth until the delay has passed since
/// its registration (deregistering forgets it; registering it again starts over).
#[derive(Debug)]
pub struct HealthDelay {
    delay: Delay,
    /// (target group ARN, id, port) -> when registered.
    registered: Mutex<BTreeMap<(String, String, String), Instant>>,
    /// Target group ARN -> (interval seconds, healthy threshold), as CreateTargetGroup and
    /// ModifyTargetGroup answered.
    checks: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Target descriptions rewritten to `initial`.
    pub reported: AtomicUsize,
}

/// How long a new target stays `initial`.
#[derive(Debug, Clone, Copy)]
enum Delay {
    /// The same for every group.
    Fixed(Duration),
    /// The group's interval x healthy threshold, times this factor (1.0: as AWS; less to
    /// keep a test short while the ratio between two settings stays AWS's).
    Checks(f64),
}

/// AWS's health check of a TCP target group when CreateTargetGroup sets none: 30 s apart,
/// healthy after 5.
pub const AWS_DEFAULT_CHECKS: (u64, u64) = (30, 5);

impl HealthDelay {
    /// A rule under which a target is `initial` for `delay` after its registration.
    pub fn new(delay: Duration) -> Self {
        Self::with(Delay::Fixed(delay))
    }

    /// A rule under which a target is `initial` for its group's interval x healthy threshold
    /// (as AWS's health checks take), scaled by `factor`.
    pub fn following_checks(factor: f64) -> Self {
        Self::with(Delay::Checks(factor))
    }

    fn with(delay: Delay) -> Self {
        Self {
            delay,
            registered: Mutex::new(BTreeMap::new()),
            checks: Mutex::new(BTreeMap::new()),
            reported: AtomicUsize::new(0),
        }
    }

    /// How long a new target of group `tg` stays `initial`.
    pub fn delay_of(&self, tg: &str) -> Duration {
        match self.delay {
            Delay::Fixed(d) => d,
            Delay::Checks(factor) => {
                let (interval, threshold) = self
                    .checks
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(tg)
                    .copied()
                    .unwrap_or(AWS_DEFAULT_CHECKS);
                Duration::from_secs_f64((interval * threshold) as f64 * factor)
            }
        }
    }

    /// Notes each target group's checks an answer describes.
    fn note_checks(&self, body: &str) {
        let mut checks = self
            .checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for member in body.split("<member>").skip(1) {
            let number =
                |name: &str| element_text(member, name).and_then(|v| v.parse::<u64>().ok());
            if let (Some(arn), Some(interval), Some(threshold)) = (
                element_text(member, "TargetGroupArn"),
                number("HealthCheckIntervalSeconds"),
                number("HealthyThresholdCount"),
            ) {
                checks.insert(arn.to_owned(), (interval, threshold));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String, String), Instant>> {
        self.registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether (group, id, port) is still in its first health checks at `now`.
    fn initial(&self, tg: &str, id: &str, port: &str, now: Instant) -> bool {
        let delay = self.delay_of(tg);
        self.lock()
            .get(&(tg.to_owned(), id.to_owned(), port.to_owned()))
            .is_some_and(|at| now.duration_since(*at) < delay)
    }

    fn rewrite_at(&self, call: &ElbCall, body: String, now: Instant) -> String {
        if matches!(
            call.action.as_str(),
            "CreateTargetGroup" | "ModifyTargetGroup" | "DescribeTargetGroups"
        ) {
            self.note_checks(&body);
            return body;
        }
        if call.action != "DescribeTargetHealth" {
            return body;
        }
        let tg = call.param("TargetGroupArn").unwrap_or_default();
        let mut out = String::with_capacity(body.len());
        let mut rest = body.as_str();
        let mut rewritten = 0;
        while let Some(start) = rest.find("<member>") {
            let Some(len) = rest[start..].find("</member>") else {
                break;
            };
            let end = start + len + "</member>".len();
            let member = &rest[start..end];
            let id = element_text(member, "Id").unwrap_or_default();
            let port = element_text(member, "Port").unwrap_or_default();
            out.push_str(&rest[..start]);
            match health_range(member) {
                Some(range) if self.initial(tg, id, port, now) => {
                    out.push_str(&member[..range.start]);
                    out.push_str(
                        "<TargetHealth><State>initial</State>\
                         <Reason>Elb.RegistrationInProgress</Reason>\
                         <Description>Target registration is in progress</Description>\
                         </TargetHealth>",
                    );
                    out.push_str(&member[range.end..]);
                    rewritten += 1;
                }
                _ => out.push_str(member),
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        self.reported.fetch_add(rewritten, Ordering::Relaxed);
        out
    }
}

#[async_trait]
impl ElbRule for HealthDelay {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        let tg = call.param("TargetGroupArn").unwrap_or_default().to_owned();
        match call.action.as_str() {
            "RegisterTargets" => {
                let now = Instant::now();
                let mut registered = self.lock();
                for (id, port) in call.targets() {
                    // Registering a registered target changes nothing in AWS.
                    registered.entry((tg.clone(), id, port)).or_insert(now);
                }
            }
            "DeregisterTargets" => {
                let mut registered = self.lock();
                for (id, port) in call.targets() {
                    registered.remove(&(tg.clone(), id, port));
                }
            }
            _ => {}
        }
        None
    }

    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        self.rewrite_at(call, body, Instant::now())
    }
}

/// The byte range of the `<TargetHealth>` element of a target description.
fn health_range(member: &str) -> Option<std::ops::Range<usize>> {
    let start = member.find("<TargetHealth>")?;
    let end = start + member[start..].find("</TargetHealth>")? + "</TargetHealth>".len();
    Some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: &str, tg: &str, targets: &[(&str, u16)]) -> ElbCall {
        let mut body = format!("Action={action}&TargetGroupArn={tg}");
        for (i, (id, port)) in targets.iter().enumerate() {
            body.push_str(&format!(
                "&Targets.member.{n}.Id={id}&Targets.member.{n}.Port={port}",
                n = i + 1
            ));
        }
        ElbCall::parse(body.as_bytes()).expect("a call")
    }

    const ANSWER: &str = "<DescribeTargetHealthResult><TargetHealthDescriptions>\
        <member><Target><Id>10.0.0.1</Id><Port>80</Port></Target>\
        <TargetHealth><State>healthy</State></TargetHealth></member>\
        <member><Target><Id>10.0.0.2</Id><Port>80</Port></Target>\
        <TargetHealth><State>healthy</State></TargetHealth></member>\
        </TargetHealthDescriptions></DescribeTargetHealthResult>";

    #[tokio::test]
    async fn a_new_target_is_initial_until_the_delay_has_passed() {
        let rule = HealthDelay::new(Duration::from_secs(60));
        rule.answer(&call("RegisterTargets", "tg", &[("10.0.0.1", 80)]))
            .await;
        let describe = call("DescribeTargetHealth", "tg", &[]);
        let now = Instant::now();
        let body = rule.rewrite_at(&describe, ANSWER.to_owned(), now);
        assert_eq!(body.matches("<State>initial</State>").count(), 1);
        assert!(body.contains("Elb.RegistrationInProgress"));
        assert_eq!(
            body.matches("<State>healthy</State>").count(),
            1,
            "the other target"
        );
        let later = rule.rewrite_at(&describe, ANSWER.to_owned(), now + Duration::from_secs(61));
        assert_eq!(later, ANSWER);
        // Another group's target of the same address is not this one.
        let other = call("DescribeTargetHealth", "tg-2", &[]);
        assert_eq!(rule.rewrite_at(&other, ANSWER.to_owned(), now), ANSWER);
        // Deregistered: forgotten.
        rule.answer(&call("DeregisterTargets", "tg", &[("10.0.0.1", 80)]))
            .await;
        assert_eq!(rule.rewrite_at(&describe, ANSWER.to_owned(), now), ANSWER);
    }

    #[tokio::test]
    async fn the_delay_follows_the_groups_interval_and_healthy_threshold() {
        let rule = HealthDelay::following_checks(1.0);
        let made = |arn: &str, interval: u32, threshold: u32| {
            format!(
                "<CreateTargetGroupResult><TargetGroups><member>\
                 <TargetGroupArn>{arn}</TargetGroupArn>\
                 <HealthCheckIntervalSeconds>{interval}</HealthCheckIntervalSeconds>\
                 <HealthyThresholdCount>{threshold}</HealthyThresholdCount>\
                 </member></TargetGroups></CreateTargetGroupResult>"
            )
        };
        let create = call("CreateTargetGroup", "", &[]);
        rule.rewrite_at(&create, made("tg-room", 10, 2), Instant::now());
        rule.rewrite_at(&create, made("tg-aws", 30, 5), Instant::now());
        assert_eq!(rule.delay_of("tg-room"), Duration::from_secs(20));
        assert_eq!(rule.delay_of("tg-aws"), Duration::from_secs(150));
        assert_eq!(
            rule.delay_of("tg-unseen"),
            Duration::from_secs(150),
            "AWS's defaults"
        );
        let modified =
            made("tg-aws", 5, 3).replace("CreateTargetGroupResult", "ModifyTargetGroupResult");
        rule.rewrite_at(
            &call("ModifyTargetGroup", "tg-aws", &[]),
            modified,
            Instant::now(),
        );
        assert_eq!(rule.delay_of("tg-aws"), Duration::from_secs(15));

        rule.answer(&call("RegisterTargets", "tg-room", &[("10.0.0.1", 80)]))
            .await;
        let describe = call("DescribeTargetHealth", "tg-room", &[]);
        let now = Instant::now();
        let early = rule.rewrite_at(&describe, ANSWER.to_owned(), now + Duration::from_secs(19));
        assert!(early.contains("<State>initial</State>"));
        let later = rule.rewrite_at(&describe, ANSWER.to_owned(), now + Duration::from_secs(21));
        assert_eq!(later, ANSWER);
    }
}
