//! [`ProvisioningDelay`]: AWS's provisioning time of a new NLB, which moto does not have.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{ElbCall, ElbRule, element_text};

/// AWS: an NLB is `provisioning` for minutes after CreateLoadBalancer, and may end `failed`
/// instead of `active`; moto's CreateLoadBalancer answer says `provisioning` too, but every
/// DescribeLoadBalancers answer says `active` (describing any NLB makes them all active), so
/// code that waits for `active` never waits. Here an NLB created through the proxy is
/// `provisioning` in the CreateLoadBalancer and DescribeLoadBalancers answers until the delay
/// has passed since the rule saw it created, then moto's answer (`active`) shows through.
#[derive(Debug)]
pub struct ProvisioningDelay {
    delay: Duration,
    /// NLB ARN -> what it reports, for NLBs seen created or named.
    nlbs: Mutex<BTreeMap<String, NlbFate>>,
    /// Delays other than `delay`, for NLBs whose name contains the text.
    slower: Mutex<Vec<(String, Duration)>>,
    /// How many of the next NLBs created stay `provisioning` for good.
    stuck_next: AtomicUsize,
    /// NLB descriptions whose state was rewritten (to `provisioning` or `failed`).
    pub reported: AtomicUsize,
}

/// What an NLB the rule knows of reports.
#[derive(Debug, Clone, Copy)]
enum NlbFate {
    /// `provisioning` until the delay has passed since the instant, then moto's state.
    CreatedAt(Instant, Duration),
    /// `provisioning` for good (AWS: rare, but an NLB can stay there far past its minutes).
    Stuck,
    /// `failed` for good.
    Failed,
}

impl ProvisioningDelay {
    /// A rule under which an NLB is `provisioning` for `delay` after its creation.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            nlbs: Mutex::new(BTreeMap::new()),
            slower: Mutex::new(Vec::new()),
            stuck_next: AtomicUsize::new(0),
            reported: AtomicUsize::new(0),
        }
    }

    /// NLBs created from now on whose name contains `name_part` (e.g. `npp-<pool>-`: one
    /// pool's) provision for `delay` instead.
    pub fn delay_named(&self, name_part: &str, delay: Duration) {
        self.slower
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name_part.to_owned(), delay));
    }

    /// The next `count` NLBs created stay `provisioning` for good.
    pub fn stick_next(&self, count: usize) {
        self.stuck_next.store(count, Ordering::Relaxed);
    }

    /// Counts `nlb_arn` as created now: for NLBs made past the proxy (straight in moto).
    pub fn created(&self, nlb_arn: &str) {
        self.lock().insert(
            nlb_arn.to_owned(),
            NlbFate::CreatedAt(Instant::now(), self.delay),
        );
    }

    /// The fate of an NLB named `name` created at `now`.
    fn fate_of_new(&self, name: &str, now: Instant) -> NlbFate {
        let stuck = self
            .stuck_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if stuck {
            return NlbFate::Stuck;
        }
        let delay = self
            .slower
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(part, _)| name.contains(part.as_str()))
            .map_or(self.delay, |(_, d)| *d);
        NlbFate::CreatedAt(now, delay)
    }

    /// Makes `nlb_arn` report `failed` from now on, AWS's other end of provisioning.
    pub fn fail(&self, nlb_arn: &str) {
        self.lock().insert(nlb_arn.to_owned(), NlbFate::Failed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, NlbFate>> {
        self.nlbs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state `nlb_arn` reports at `now` in moto's place, `None` to keep moto's.
    fn state_at(&self, nlb_arn: &str, now: Instant) -> Option<&'static str> {
        match self.lock().get(nlb_arn)? {
            NlbFate::Failed => Some("failed"),
            NlbFate::Stuck => Some("provisioning"),
            NlbFate::CreatedAt(at, delay) if now.duration_since(*at) < *delay => {
                Some("provisioning")
            }
            NlbFate::CreatedAt(..) => None,
        }
    }

    /// [`ElbRule::rewrite`] as seen at `now` (tests pass their own clock).
    fn rewrite_at(&self, call: &ElbCall, body: String, now: Instant) -> String {
        let create = match call.action.as_str() {
            "CreateLoadBalancer" => true,
            "DescribeLoadBalancers" => false,
            _ => return body,
        };
        let mut edits = Vec::new();
        for member in load_balancer_members(&body) {
            let text = &body[member.clone()];
            let Some(arn) = element_text(text, "LoadBalancerArn") else {
                continue;
            };
            if create && !self.lock().contains_key(arn) {
                // Kept when already named (by `fail`, or by `created` before moto answered).
                let fate = self.fate_of_new(call.param("Name").unwrap_or_default(), now);
                self.lock().entry(arn.to_owned()).or_insert(fate);
            }
            if let Some(edit) = self
                .state_at(arn, now)
                .and_then(|code| state_edit(text, member.start, code))
            {
                edits.push(edit);
            }
        }
        if edits.is_empty() {
            return body;
        }
        self.reported.fetch_add(edits.len(), Ordering::Relaxed);
        let mut body = body;
        // From the end, so the ranges still to apply stay valid.
        for (range, replacement) in edits.into_iter().rev() {
            body.replace_range(range, &replacement);
        }
        body
    }
}

#[async_trait]
impl ElbRule for ProvisioningDelay {
    fn rewrite(&self, call: &ElbCall, body: String) -> String {
        self.rewrite_at(call, body, Instant::now())
    }
}

/// The byte ranges of the load balancers (`<member>...</member>` directly in
/// `<LoadBalancers>`) of a CreateLoadBalancer or DescribeLoadBalancers answer. Depth is
/// counted because each one holds `<member>`s of its own (AvailabilityZones).
pub(super) fn load_balancer_members(body: &str) -> Vec<Range<usize>> {
    const OPEN: &str = "<member>";
    const CLOSE: &str = "</member>";
    let Some(list) = body.find("<LoadBalancers>") else {
        return Vec::new(); // `<LoadBalancers/>`: none
    };
    let list = list + "<LoadBalancers>".len();
    let end = body[list..]
        .find("</LoadBalancers>")
        .map_or(body.len(), |e| list + e);
    let mut members = Vec::new();
    let (mut at, mut depth, mut start) = (list, 0usize, list);
    while at < end {
        let (open, close) = (body[at..end].find(OPEN), body[at..end].find(CLOSE));
        match (open, close) {
            (Some(o), c) if c.is_none_or(|c| o < c) => {
                if depth == 0 {
                    start = at + o;
                }
                depth += 1;
                at += o + OPEN.len();
            }
            (_, Some(c)) => {
                at += c + CLOSE.len();
                // A close with none open (not moto's answer) ends no member.
                if depth == 1 {
                    members.push(start..at);
                }
                depth = depth.saturating_sub(1);
            }
            _ => break,
        }
    }
    members
}

/// The edit that makes `member` (at `offset` in the body) report `code`: its whole `<State>`
/// element is replaced, so a `<Reason>` moto's state had does not stay with the new code.
/// `None` for a `<State>` that is never closed (not moto's answer: left alone).
fn state_edit(member: &str, offset: usize, code: &str) -> Option<(Range<usize>, String)> {
    let range = if let Some(s) = member.find("<State>") {
        s..s + member[s..].find("</State>")? + "</State>".len()
    } else if let Some(s) = member.find("<State/>") {
        s..s + "<State/>".len()
    } else {
        // No state at all: added last (the SDK's XML parser reads elements in any order).
        let end = member.len() - "</member>".len();
        end..end
    };
    Some((
        offset + range.start..offset + range.end,
        format!("<State><Code>{code}</Code></State>"),
    ))
}

#[cfg(test)]
#[path = "provisioning_delay_tests.rs"]
mod tests;
