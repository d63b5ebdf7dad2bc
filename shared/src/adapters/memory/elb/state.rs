//! The double's state behind one lock, and what every operation does first: count the call,
//! fail it if a test asked, wait out the latency.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use super::resources::{ElbQuotas, MadeNlb, MemoryListener, MemoryTargetGroup, Zones};
use crate::contract::protocol::ListenerProtocol;
use crate::model::elb::{ElbError, ElbErrorKind, ListenerInfo, ResourceTags};

#[derive(Default)]
pub(super) struct State {
    pub(super) nlbs: BTreeMap<String, String>,
    /// NLBs made through [`crate::model::elb::NlbFleet`], by ARN (also in `nlbs` while they exist).
    pub(super) made: BTreeMap<String, MadeNlb>,
    /// Describes of a made NLB that still report it provisioning.
    pub(super) provisioning_polls: usize,
    pub(super) target_groups: BTreeMap<String, MemoryTargetGroup>,
    pub(super) listeners: BTreeMap<String, MemoryListener>,
    pub(super) next_id: u64,
    pub(super) failures: HashMap<&'static str, VecDeque<ElbError>>,
    pub(super) calls: BTreeMap<&'static str, usize>,
    /// What every target's health reads (state, reason); `None`: healthy, as moto answers.
    pub(super) health: Option<(String, Option<String>)>,
    /// AWS's target group and target quotas, when a test sets them.
    pub(super) quotas: ElbQuotas,
    /// NLBs' zones and cross-zone settings, and targets' zones.
    pub(super) zones: Zones,
}

impl State {
    /// Adds a listener (no checks: the caller made them); returns its ARN.
    pub(super) fn add_listener(
        &mut self,
        nlb_arn: &str,
        port: u16,
        protocol: ListenerProtocol,
        target_group_arn: Option<&str>,
        tags: HashMap<String, String>,
    ) -> String {
        self.next_id += 1;
        let arn = format!("{nlb_arn}/listener/{}", self.next_id);
        let info = ListenerInfo {
            arn: arn.clone(),
            nlb_arn: nlb_arn.to_owned(),
            port,
            protocol: Some(protocol),
            target_group_arn: target_group_arn.map(str::to_owned),
            tls: None,
        };
        self.listeners.insert(
            arn.clone(),
            MemoryListener {
                info,
                tags,
                certificates: Vec::new(),
            },
        );
        arn
    }
}

/// ELBv2 in memory.
#[derive(Default)]
pub struct MemoryLoadBalancing {
    state: Mutex<State>,
    latency: std::time::Duration,
}

pub(super) fn tag_map(tags: &ResourceTags) -> HashMap<String, String> {
    tags.pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// AWS's default quota of listeners per NLB.
pub(super) const LISTENERS_PER_NLB: usize = 50;

pub(super) fn nlb_not_found(operation: &'static str, nlb_arn: &str) -> ElbError {
    ElbError {
        operation,
        message: format!("load balancer {nlb_arn} not found"),
        retryable: false,
        kind: ElbErrorKind::NlbNotFound,
    }
}

pub(super) fn not_found(operation: &'static str, what: &str) -> ElbError {
    ElbError {
        operation,
        message: format!("{what} not found"),
        retryable: false,
        kind: ElbErrorKind::NotFound,
    }
}

impl MemoryLoadBalancing {
    /// An ELBv2 with the NLBs `(arn, dns name)`.
    pub fn with_nlbs(nlbs: &[(&str, &str)]) -> Self {
        let lb = Self::default();
        lb.lock().nlbs = nlbs
            .iter()
            .map(|(a, d)| ((*a).to_owned(), (*d).to_owned()))
            .collect();
        lb
    }

    /// Every call takes `latency` (of tokio time), like a network round trip.
    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency = latency;
        self
    }

    pub(super) async fn round_trip(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes every target's health read `state` (with `reason`); `None`: healthy again.
    pub fn set_target_health(&self, health: Option<(&str, Option<&str>)>) {
        self.lock().health = health.map(|(s, r)| (s.to_owned(), r.map(str::to_owned)));
    }

    /// Makes the next call of `operation` fail with `error`.
    pub fn fail_next(&self, operation: &'static str, error: ElbError) {
        self.lock()
            .failures
            .entry(operation)
            .or_default()
            .push_back(error);
    }

    /// How many times `operation` was called.
    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// Every call so far, by operation.
    pub fn all_calls(&self) -> BTreeMap<&'static str, usize> {
        self.lock().calls.clone()
    }

    /// Every target group.
    pub fn target_groups(&self) -> Vec<MemoryTargetGroup> {
        self.lock().target_groups.values().cloned().collect()
    }

    /// Every listener.
    pub fn listeners(&self) -> Vec<MemoryListener> {
        self.lock().listeners.values().cloned().collect()
    }

    /// Deletes a listener behind the system's back (drift).
    pub fn remove_listener(&self, arn: &str) {
        self.lock().listeners.remove(arn);
    }

    /// Deletes an NLB behind the system's back, with its listeners (as AWS does).
    pub fn remove_nlb(&self, nlb_arn: &str) {
        let mut st = self.lock();
        st.nlbs.remove(nlb_arn);
        st.listeners.retain(|_, l| l.info.nlb_arn != nlb_arn);
    }

    /// A listener someone else made on `nlb_arn` at `port` (no project tags); returns its ARN.
    pub fn add_foreign_listener(&self, nlb_arn: &str, port: u16) -> String {
        self.lock()
            .add_listener(nlb_arn, port, ListenerProtocol::Tcp, None, HashMap::new())
    }

    pub(super) fn enter(
        &self,
        operation: &'static str,
    ) -> Result<std::sync::MutexGuard<'_, State>, ElbError> {
        let mut st = self.lock();
        *st.calls.entry(operation).or_default() += 1;
        if let Some(err) = st.failures.get_mut(operation).and_then(VecDeque::pop_front) {
            return Err(err);
        }
        Ok(st)
    }
}
