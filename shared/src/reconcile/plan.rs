//! What a Service (or a pod of a per-pod Service) should have, worked out from what the run
//! read: plain data in, plain data out, no call. The steps carry it out: claiming (round 1),
//! target groups (round 1), listeners (round 2), targets and advert (round 3).

use std::collections::BTreeSet;

use crate::contract::annotations::{
    self, AllocationRecord, AllocationRequest, OUTPUT_KEYS, Status,
};
use crate::contract::listener_options::TlsListener;
use crate::contract::service_model::{ListenerKey, ListenerSpec, ServiceState};
use crate::model::claims::{Claim, Owner};
use crate::model::cluster::{Notice, NoticeKind, ServiceOutputs};
use crate::model::elb::{ResourceTags, TargetGroupSpec, target_group_name};
use crate::model::pool::NlbPool;
use crate::model::targets::{SliceView, Target, default_target_port, desired_targets};

use super::fingerprint::listener_fingerprint;

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

/// The targets a listener should have, or why they cannot be resolved (a named target port
/// no endpoint resolves).
pub(super) type Targets = std::result::Result<BTreeSet<Target>, String>;

/// What the plan is made from: the Service as the run read it, its pool as configured now.
pub(super) struct Asked<'a> {
    /// Whose listeners they are (the Service, or one of its pods).
    pub owner: &'a Owner,
    /// The pool, as configured now.
    pub pool: &'a NlbPool,
    /// The ARN of the NLB the Service names, if it names one.
    pub only: Option<&'a str>,
    /// What its annotations ask for.
    pub request: &'a AllocationRequest,
    /// Its listeners.
    pub specs: &'a [ListenerSpec],
    /// Its endpoints (for a pod: only its own).
    pub slices: &'a [SliceView],
    /// The VPC its target groups are made in.
    pub vpc_id: &'a str,
    /// It is taken out of its listeners (its `slices` then list no ready endpoint): its
    /// status says `Disabled`.
    pub disabled: bool,
}

/// One listener the Service asks for, and what it is made from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ListenerPlan<'a> {
    /// The listener.
    pub spec: &'a ListenerSpec,
    /// Its target group (cross-zone load balancing not yet resolved against the NLB, which
    /// only the view knows).
    pub group: TargetGroupSpec,
    /// TLS termination, if the listener terminates TLS.
    pub tls: Option<TlsListener>,
    /// Its targets.
    pub targets: Targets,
    /// What it is made from (see `fingerprint`), noted on its claim once made.
    pub made_from: String,
}

/// What a Service should have, against the claims it holds as read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan<'a> {
    /// Every listener the Service asks for, in the order of its ports.
    pub listeners: Vec<ListenerPlan<'a>>,
    /// Claims that stay: within the pool as configured now, for a listener it asks for.
    pub keep: Vec<Claim>,
    /// Claims that go: outside the pool as configured now (another pool, an NLB taken out of
    /// it, a port its range no longer holds, not the NLB the Service names) or for a port the
    /// Service dropped.
    pub drop: Vec<Claim>,
    /// Listeners no kept claim is for: to claim.
    pub missing: Vec<&'a ListenerSpec>,
    /// The subject is taken out of its listeners ([`Asked::disabled`]).
    pub disabled: bool,
}

impl<'a> Plan<'a> {
    /// The plan for `asked`, holding `claims` (as read).
    pub fn new(asked: &Asked<'a>, claims: Vec<Claim>) -> Self {
        let mut plan = Self {
            listeners: asked
                .specs
                .iter()
                .map(|spec| ListenerPlan::new(asked, spec))
                .collect(),
            keep: Vec::new(),
            drop: Vec::new(),
            missing: Vec::new(),
            disabled: asked.disabled,
        };
        plan.split(asked, claims);
        plan
    }

    /// Sorts `claims` (as read again) into those kept and dropped, and the listeners missing.
    pub fn split(&mut self, asked: &Asked<'a>, claims: Vec<Claim>) {
        let (keep, drop): (Vec<Claim>, Vec<Claim>) = claims.into_iter().partition(|c| {
            placed_within(c, asked.pool, asked.only) && asked.specs.iter().any(|s| s.key == c.key)
        });
        self.missing = asked
            .specs
            .iter()
            .filter(|s| !keep.iter().any(|c| c.key == s.key))
            .collect();
        self.keep = keep;
        self.drop = drop;
    }

    /// The listener of `key`, if the Service asks for it.
    pub fn listener(&self, key: &ListenerKey) -> Option<&ListenerPlan<'a>> {
        self.listeners.iter().find(|l| &l.spec.key == key)
    }

    /// The targets of the listener of `key` (none for a listener it does not ask for).
    pub fn targets_of(&self, key: &ListenerKey) -> BTreeSet<Target> {
        self.listener(key)
            .and_then(|l| l.targets.as_ref().ok())
            .cloned()
            .unwrap_or_default()
    }

    /// What the listener of each of `made` (claims whose listeners were made) is made from, in
    /// the order of the Service's ports, for its claim to note.
    pub fn made(&self, made: &[Claim]) -> Vec<(Claim, String)> {
        self.listeners
            .iter()
            .filter_map(|l| {
                let claim = made.iter().find(|c| c.key == l.spec.key)?;
                Some((claim.clone(), l.made_from.clone()))
            })
            .collect()
    }

    /// What the Service's outputs say once every listener exists, as `records` (one per
    /// listener made, in the order of its ports) describe them, and the Event told if its
    /// status changes. `current` is the Service as last written.
    pub fn outputs(
        &self,
        current: &ServiceState,
        records: &[AllocationRecord],
    ) -> (ServiceOutputs, Notice) {
        let target_problem = self
            .listeners
            .iter()
            .find_map(|l| l.targets.as_ref().err().cloned());
        let mut outputs = ServiceOutputs {
            annotations: annotations::render_allocated(records),
            finalizer: true,
        };
        if current.pod.is_some()
            && let Some(ip) = self.registered_ip()
        {
            // What the pod's fast path compares with its IP (see per_pod).
            outputs
                .annotations
                .insert(annotations::TARGET.to_owned(), ip);
        }
        // Listeners unchanged since they were found reachable stay `Ready`.
        let unchanged = |k: &str| current.annotations.get(k) == outputs.annotations.get(k);
        if target_problem.is_none()
            && current
                .annotations
                .get(annotations::STATUS)
                .map(String::as_str)
                == Some("Ready")
            && unchanged(annotations::ALLOCATIONS)
            && unchanged(annotations::TARGET)
        {
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), Status::Ready.to_string());
        }
        if self.disabled {
            // No target on purpose: neither `Ready` nor waiting for one (the reachability
            // check leaves a `Disabled` subject alone).
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), Status::Disabled.to_string());
        }
        let (kind, reason, note) = match target_problem {
            _ if self.disabled => (
                NoticeKind::Normal,
                "NetworkDisabled",
                format!(
                    "targets taken out ({} is \"true\"); {}",
                    annotations::NETWORK_DISABLED,
                    allocated_note(records)
                ),
            ),
            Some(problem) => {
                outputs.annotations.insert(
                    annotations::STATUS.to_owned(),
                    Status::Error(problem.clone()).to_string(),
                );
                (NoticeKind::Warning, "TargetPortUnresolved", problem)
            }
            None => (NoticeKind::Normal, "Allocated", allocated_note(records)),
        };
        let notice = Notice {
            kind,
            reason,
            note,
            once: None,
        };
        (outputs, notice)
    }

    /// The pod IP registered as the first listener's target, if any.
    fn registered_ip(&self) -> Option<String> {
        let first = self.listeners.first()?;
        let t = first.targets.as_ref().ok()?.iter().next()?;
        Some(t.ip.to_string())
    }
}

impl<'a> ListenerPlan<'a> {
    fn new(asked: &Asked<'a>, spec: &'a ListenerSpec) -> Self {
        let targets = desired_targets(spec, asked.slices);
        let setup = asked.request.options.setup_for(spec);
        let group = TargetGroupSpec {
            attributes: setup.attributes,
            name: target_group_name(asked.owner, &spec.key),
            protocol: spec.protocol,
            port: match &targets {
                Ok(t) => default_target_port(spec, t),
                Err(_) => default_target_port(spec, &BTreeSet::new()),
            },
            vpc_id: asked.vpc_id.to_owned(),
            health_check: asked.request.health_check.clone(),
            tags: ResourceTags {
                owner: asked.owner.clone(),
                pool: asked.pool.name().to_owned(),
                listener: spec.key.clone(),
            },
        };
        let made_from = listener_fingerprint(asked.pool.name(), asked.request, spec, &targets);
        Self {
            spec,
            group,
            tls: setup.tls,
            targets,
            made_from,
        }
    }

    /// The record advertising this listener, made on `claim` with `listener_arn` and
    /// `target_group_arn`, on the NLB of DNS name `dns`.
    pub fn record(
        &self,
        claim: &Claim,
        listener_arn: &str,
        target_group_arn: &str,
        dns: &str,
    ) -> AllocationRecord {
        AllocationRecord {
            name: self.spec.name.clone(),
            protocol: self.spec.protocol,
            service_port: self.spec.service_port,
            port: claim.port,
            nlb_arn: claim.nlb_arn.clone(),
            dns: dns.to_owned(),
            listener_arn: listener_arn.to_owned(),
            target_group_arn: target_group_arn.to_owned(),
            tls: self.tls.is_some(),
        }
    }
}

/// Whether `claim` lies within `pool` as configured now: its pool, one of its NLBs, a port of
/// its range. In a managed pool, a claim on an NLB that is not pre-made is on one the pool
/// function made (claims on made NLBs are only ever made in their pool): this instance's list
/// of members may be older than the claim, so it is no reason to move it. A made NLB that is
/// gone is found by AWS's answer instead (the listener is refused, the sweep sees it missing).
///
/// A Service that names an NLB (`only`, its ARN) has its claims there; a port the pool blocks
/// is not within it.
pub(super) fn placed_within(claim: &Claim, pool: &NlbPool, only: Option<&str>) -> bool {
    let nlb_of_pool = pool.nlb_arns().contains(&claim.nlb_arn)
        || (pool.managed().is_some() && !pool.premade_arns().contains(&claim.nlb_arn));
    claim.pool == pool.name()
        && nlb_of_pool
        && only.is_none_or(|arn| claim.nlb_arn == arn)
        && pool.takes_port(claim.port)
}

/// Whether `service` may hold claims: only one this system has touched does (it then holds
/// the finalizer or output annotations); a claim left without either is met by the claim
/// transaction. A pod's claims are keyed by its name: a pod made again under it holds them
/// unmarked.
pub(super) fn may_hold_claims(service: &ServiceState) -> bool {
    service.pod.is_some()
        || service.has_finalizer()
        || OUTPUT_KEYS
            .iter()
            .any(|k| service.annotations.contains_key(*k))
}

fn allocated_note(records: &[AllocationRecord]) -> String {
    let parts: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {}/{} -> {}:{}",
                r.name, r.service_port, r.protocol, r.dns, r.port
            )
        })
        .collect();
    format!("listeners: {}", parts.join(", "))
}
