//! [`HealthDelay`]: the time AWS takes to call a new target healthy, which moto does not have.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Answer, ElbCall, ElbRule};

/// AWS: a target registered in a group behind an NLB is `initial`
/// (`Elb.RegistrationInProgress`) until its health checks pass, 90 to 300 s; the NLB sends it
/// no traffic meanwhile. moto reports `healthy` at once. Here a target registered through the
/// proxy reads `initial` in DescribeTargetHealth until the delay has passed since its
/// registration (deregistering forgets it; registering it again starts over).
#[derive(Debug)]
pub struct HealthDelay {
    delay: Duration,
    /// (target group ARN, id, port) -> when registered.
    registered: Mutex<BTreeMap<(String, String, String), Instant>>,
    /// Target descriptions rewritten to `initial`.
    pub reported: AtomicUsize,
}

impl HealthDelay {
    /// A rule under which a target is `initial` for `delay` after its registration.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            registered: Mutex::new(BTreeMap::new()),
            reported: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String, String), Instant>> {
        self.registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether (group, id, port) is still in its first health checks at `now`.
    fn initial(&self, tg: &str, id: &str, port: &str, now: Instant) -> bool {
        self.lock()
            .get(&(tg.to_owned(), id.to_owned(), port.to_owned()))
            .is_some_and(|at| now.duration_since(*at) < self.delay)
    }

    fn rewrite_at(&self, call: &ElbCall, body: String, now: Instant) -> String {
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
            let id = element(member, "Id").unwrap_or_default();
            let port = element(member, "Port").unwrap_or_default();
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

/// The text of the first `<name>` element in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let from = xml.find(&open)? + open.len();
    let to = from + xml[from..].find(&format!("</{name}>"))?;
    Some(xml[from..to].trim())
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
}
