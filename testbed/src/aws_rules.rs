//! AWS's answers where moto's differ, given to the code under test through the fault proxy
//! ([`crate::fault_proxy::FaultProxy::start_with`]). Each rule sees every ELBv2 call (the
//! query protocol's form parameters) and may answer it in moto's place or rewrite moto's
//! answer. DESIGN.md section 10 lists the differences; each rule names the one it covers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

/// One ELBv2 call: its action and form parameters.
#[derive(Debug, Clone)]
pub struct ElbCall {
    /// E.g. `CreateListener`.
    pub action: String,
    /// Every form parameter, decoded (`LoadBalancerArns.member.1` -> ARN).
    pub params: BTreeMap<String, String>,
}

impl ElbCall {
    /// Parses a form-encoded ELBv2 request body; `None` when it names no action.
    pub fn parse(body: &[u8]) -> Option<ElbCall> {
        let text = std::str::from_utf8(body).ok()?;
        let params: BTreeMap<String, String> = text
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                Some((decode(k), decode(v)))
            })
            .collect();
        Some(ElbCall {
            action: params.get("Action")?.clone(),
            params,
        })
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The members of list `name` (`name.member.N`), in order.
    pub fn members(&self, name: &str) -> Vec<&str> {
        (1..)
            .map_while(|i| self.param(&format!("{name}.member.{i}")))
            .collect()
    }

    /// The targets (`Targets.member.N.Id` / `.Port`) of a RegisterTargets or DeregisterTargets.
    pub fn targets(&self) -> Vec<(String, String)> {
        (1..)
            .map_while(|i| {
                let id = self.param(&format!("Targets.member.{i}.Id"))?;
                let port = self
                    .param(&format!("Targets.member.{i}.Port"))
                    .unwrap_or_default();
                Some((id.to_owned(), port.to_owned()))
            })
            .collect()
    }
}

/// The trimmed text of the first `<name>` element in `xml`.
pub(crate) fn element_text<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let from = xml.find(&open)? + open.len();
    let to = from + xml[from..].find(&format!("</{name}>"))?;
    Some(xml[from..to].trim())
}

/// A rule's state, whether or not another thread panicked holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a rule answers in moto's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An ELBv2 error: HTTP status, code, message.
    Error(u16, String, String),
    /// A successful answer: the whole XML body.
    Ok(String),
}

/// A rule of the proxy: AWS's behaviour where moto's differs.
#[async_trait]
pub trait ElbRule: Send + Sync {
    /// An answer in moto's place, or `None` to let moto answer.
    async fn answer(&self, _call: &ElbCall) -> Option<Answer> {
        None
    }

    /// Rewrites moto's successful answer to `call`.
    fn rewrite(&self, _call: &ElbCall, body: String) -> String {
        body
    }
}

/// AWS: DescribeLoadBalancers takes at most 20 ARNs (`ValidationError`); moto takes any number.
#[derive(Debug, Default)]
pub struct DescribeLoadBalancersLimit {
    /// Calls refused.
    pub refused: AtomicUsize,
}

#[async_trait]
impl ElbRule for DescribeLoadBalancersLimit {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        let arns = call.members("LoadBalancerArns");
        if call.action != "DescribeLoadBalancers" || arns.len() <= 20 {
            return None;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Some(Answer::Error(
            400,
            "ValidationError".to_owned(),
            format!(
                "1 validation error detected: Value of length {} at 'loadBalancerArns' failed \
                 to satisfy constraint: Member must have length less than or equal to 20",
                arns.len()
            ),
        ))
    }
}

/// AWS: a deregistered target stays in DescribeTargetHealth as `draining` for the
/// deregistration delay (300 s by default), until registered again; moto drops it at once.
/// Here the delay never ends within a test.
#[derive(Debug, Default)]
pub struct DrainingTargets {
    /// (target group ARN, id, port) of targets deregistered and not registered since.
    draining: Mutex<BTreeSet<(String, String, String)>>,
    /// DescribeTargetHealth answers that listed a draining target.
    pub reported: AtomicUsize,
}

impl DrainingTargets {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, String, String)>> {
        self.draining
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ElbRule for DrainingTargets {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        let tg = call.param("TargetGroupArn").unwrap_or_default().to_owned();
        match call.action.as_str() {
            "DeregisterTargets" => {
                let mut draining = self.lock();
                for (id, port) in call.targets() {
                    draining.insert((tg.clone(), id, port));
                }
            }
            "RegisterTargets" => {
                let mut draining = self.lock();
                for (id, port) in call.targets() {
                    draining.remove(&(tg.clone(), id, port));
                }
            }
            _ => {}
        }
        None
    }

    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        if call.action != "DescribeTargetHealth" {
            return body;
        }
        let tg = call.param("TargetGroupArn").unwrap_or_default();
        let members: String = self
            .lock()
            .iter()
            .filter(|(t, id, _)| t == tg && !body.contains(&format!("<Id>{id}</Id>")))
            .map(|(_, id, port)| {
                format!(
                    "<member><Target><Id>{id}</Id><Port>{port}</Port></Target>\
                     <TargetHealth><State>draining</State>\
                     <Reason>Target.DeregistrationInProgress</Reason>\
                     <Description>Target deregistration is in progress</Description>\
                     </TargetHealth></member>"
                )
            })
            .collect();
        if members.is_empty() {
            return body;
        }
        self.reported.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = body.find("<TargetHealthDescriptions>") {
            let at = at + "<TargetHealthDescriptions>".len();
            format!("{}{members}{}", &body[..at], &body[at..])
        } else {
            body.replacen(
                "<TargetHealthDescriptions/>",
                &format!("<TargetHealthDescriptions>{members}</TargetHealthDescriptions>"),
                1,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_form_parameters() {
        let call = ElbCall::parse(
            b"Action=DeregisterTargets&Version=2015-12-01&TargetGroupArn=arn%3Aaws%3Atg%2Fx\
              &Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=80&Targets.member.2.Id=10.0.0.2",
        )
        .expect("a call");
        assert_eq!(call.action, "DeregisterTargets");
        assert_eq!(call.param("TargetGroupArn"), Some("arn:aws:tg/x"));
        assert_eq!(
            call.targets(),
            vec![
                ("10.0.0.1".to_owned(), "80".to_owned()),
                ("10.0.0.2".to_owned(), String::new())
            ]
        );
        assert!(ElbCall::parse(b"Version=1").is_none());
    }

    #[tokio::test]
    async fn draining_targets_are_listed_until_registered_again() {
        let rule = DrainingTargets::default();
        let call = |body: &str| ElbCall::parse(body.as_bytes()).expect("call");
        rule.answer(&call(
            "Action=DeregisterTargets&TargetGroupArn=tg&Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=80",
        ))
        .await;
        let describe = call("Action=DescribeTargetHealth&TargetGroupArn=tg");
        let body = rule.rewrite(&describe, "<TargetHealthDescriptions/>".to_owned());
        assert!(body.contains("<State>draining</State>"), "{body}");
        rule.answer(&call(
            "Action=RegisterTargets&TargetGroupArn=tg&Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=80",
        ))
        .await;
        let body = rule.rewrite(&describe, "<TargetHealthDescriptions/>".to_owned());
        assert_eq!(body, "<TargetHealthDescriptions/>");
    }

    #[tokio::test]
    async fn more_than_twenty_nlbs_are_refused() {
        let rule = DescribeLoadBalancersLimit::default();
        let arns: String = (1..=21)
            .map(|i| format!("&LoadBalancerArns.member.{i}=a{i}"))
            .collect();
        let call =
            ElbCall::parse(format!("Action=DescribeLoadBalancers{arns}").as_bytes()).expect("call");
        assert!(matches!(
            rule.answer(&call).await,
            Some(Answer::Error(400, ..))
        ));
    }
}

/// AWS: an NLB takes at most 50 listeners, whoever made them, and CreateListener beyond that
/// is `TooManyListeners`; moto has no quota. Here the NLBs named are full from the start.
#[derive(Debug, Default)]
pub struct FullNlbs {
    /// The NLBs (ARNs) that take no listener.
    pub full: Mutex<BTreeSet<String>>,
    /// CreateListener calls refused.
    pub refused: AtomicUsize,
}

impl FullNlbs {
    /// A rule under which `nlb_arns` are full.
    pub fn of(nlb_arns: &[&str]) -> Self {
        Self {
            full: Mutex::new(nlb_arns.iter().map(|a| (*a).to_owned()).collect()),
            refused: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl ElbRule for FullNlbs {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        let nlb = call.param("LoadBalancerArn")?;
        let full = self
            .full
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(nlb);
        if call.action != "CreateListener" || !full {
            return None;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Some(Answer::Error(
            400,
            "TooManyListeners".to_owned(),
            format!("The load balancer '{nlb}' has too many listeners"),
        ))
    }
}

mod gone_before_delete;
mod health_delay;
mod nlb_quota;
mod provisioning_delay;
mod quotas;
mod tag_propagation;
mod target_zones;

pub use gone_before_delete::GoneBeforeDelete;
pub use health_delay::HealthDelay;
pub use nlb_quota::RegionalNlbQuota;
pub use provisioning_delay::ProvisioningDelay;
pub use quotas::{TargetGroupQuota, TargetQuota};
pub use tag_propagation::TagPropagationDelay;
pub use target_zones::{TargetZones, ZONE_SUBNETS, players_reach, zone_of};

/// Counts the ELBv2 calls that pass the proxy, by action, and changes nothing: for tests and
/// benchmarks of what a handler costs.
#[derive(Debug, Default)]
pub struct CountElbCalls {
    counts: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

impl CountElbCalls {
    /// The calls counted so far, by action, and zero them.
    pub fn take(&self) -> std::collections::BTreeMap<String, usize> {
        std::mem::take(
            &mut *self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

#[async_trait]
impl ElbRule for CountElbCalls {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(call.action.clone())
            .or_default() += 1;
        None
    }
}
