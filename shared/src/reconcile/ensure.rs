//! Ensuring an opted-in Service has its listeners, target groups, targets and annotations.
//!
//! The happy path for a new Service is three sequential rounds of AWS calls:
//! 1. claim the ports (one DynamoDB transaction) while the target groups are made and the
//!    finalizer is written;
//! 2. make the listeners;
//! 3. register the targets while the claims record their ARNs and the annotations are written.

use std::collections::{BTreeSet, HashMap};

use futures::future::join_all;

use super::claiming::Claimed;
use super::holding::{Held, Holding};
use super::wiring::Plan;
use super::{Error, Outcome, Reconciler, Result};
use crate::annotations::{self, AllocationRequest, OUTPUT_KEYS, Status};
use crate::claims::{Claim, HoldError, RunToken};
use crate::cluster::{Cluster, Notice, NoticeKind, ServiceOutputs, Written};
use crate::elb::{EnsuredTargetGroup, ResourceTags, TargetGroupSpec, target_group_name};
use crate::failpoint;
use crate::pool::NlbPool;
use crate::service_model::{ListenerKey, ListenerSpec, ServiceState};
use crate::targets::{SliceView, Target, default_target_port, desired_targets};

/// Listener refusals (an NLB full or gone, a foreign listener on the port) one run moves
/// claims past before it calls the Service `Pending`.
const REFUSALS_PER_RUN: usize = 3;

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

impl Reconciler {
    /// Allocates, repairs or keeps the listeners of an opted-in Service, as the run `token`.
    /// However the run ends (short of a kill), it lets go of the claims it holds, so the next
    /// run need not wait out the grace period that protects a run still alive.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ensure(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
    ) -> Result<Outcome> {
        let mut holding = Holding::new(token);
        let result = self
            .ensure_moving(cluster, service, pool, request, specs, slices, &mut holding)
            .await;
        if matches!(result, Err(Error::Injected(_))) {
            return result; // a kill: nothing runs after it
        }
        match self.let_go(&holding).await {
            Ok(()) => result,
            Err(HoldError::Store(e)) => {
                // Held until the grace passes: later runs wait, nothing is wrong.
                tracing::warn!(service = %service.key, error = %e, "could not let the claims go");
                result
            }
            Err(lost) if result.is_ok() => {
                // Overtaken while it worked (it stalled past the grace): what it advertised
                // may name ports the newer run has since let go. Take it back.
                self.withdraw_advert(cluster, service).await?;
                Err(lost.into())
            }
            Err(_) => result,
        }
    }

    /// [`Reconciler::ensure_with`], moving a claim whose listener AWS refused (its NLB full or
    /// gone, a listener the system did not make on its port) to another port or NLB, up to
    /// [`REFUSALS_PER_RUN`] times; then the Service is `Pending` with AWS's reasons. Each move
    /// is told in a Warning Event.
    #[allow(clippy::too_many_arguments)]
    async fn ensure_moving(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
        holding: &mut Holding<'_>,
    ) -> Result<Outcome> {
        let mut refusals: Vec<String> = Vec::new();
        let mut current = service.clone();
        loop {
            let result = self
                .ensure_with(cluster, &current, pool, request, specs, slices, holding)
                .await;
            let (claim, reason, nlb_unusable) = match result {
                Err(Error::ListenerRefused {
                    claim,
                    reason,
                    nlb_unusable,
                }) => (*claim, reason, nlb_unusable),
                Ok(outcome) => {
                    if !refusals.is_empty() {
                        self.tell_refusals(cluster, &current, &refusals).await?;
                    }
                    return Ok(outcome);
                }
                // A quota of the account or NLB (not this claim's port): waiting, not moving.
                Err(Error::Elb(e)) if super::quotas::quota_of(&e).is_some() => {
                    return self.wait_for_quota(cluster, &current, &e).await;
                }
                Err(e) => return Err(e),
            };
            tracing::warn!(service = %service.key, nlb = %claim.nlb_arn, port = claim.port,
                reason, "AWS refused the listener; moving the claim");
            if nlb_unusable {
                self.view.mark_unusable(&claim.nlb_arn);
            } else {
                self.view.add_ports(&claim.nlb_arn, &[claim.port]);
            }
            refusals.push(reason);
            // The refused claim goes, unadvertised first, so the next round claims elsewhere.
            let Some(fresh) = self.reread(cluster, service).await? else {
                return Ok(Outcome::Nothing("the Service was deleted meanwhile"));
            };
            current = match self
                .unadvertise(cluster, &fresh, std::slice::from_ref(&claim))
                .await?
            {
                Written::Done(after) => *after,
                Written::Gone => return Ok(Outcome::Nothing("the Service was deleted meanwhile")),
            };
            self.release_claims(holding.token, std::slice::from_ref(&claim))
                .await?;
            holding.forget(std::slice::from_ref(&claim));
            if refusals.len() >= REFUSALS_PER_RUN {
                let reason = format!(
                    "AWS refused {} listener(s) in a row: {}",
                    refusals.len(),
                    refusals.join("; ")
                );
                let holds_nothing = self.claims_for(service).await?.is_empty();
                return self.pending(cluster, &current, holds_nothing, reason).await;
            }
        }
    }

    /// A Warning Event saying which listeners AWS refused and why the claims moved.
    async fn tell_refusals(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        refusals: &[String],
    ) -> Result<()> {
        let notice = Notice {
            kind: NoticeKind::Warning,
            reason: "ListenerRefused",
            note: format!(
                "moved to another port or NLB after AWS refused a listener: {}",
                refusals.join("; ")
            ),
            once: None,
        };
        Ok(cluster.publish(service, &notice).await?)
    }

    #[allow(clippy::too_many_arguments)]
    async fn ensure_with(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
        holding: &mut Holding<'_>,
    ) -> Result<Outcome> {
        let token = holding.token;
        let owner = self.owner(service);
        let targets: HashMap<ListenerKey, std::result::Result<BTreeSet<Target>, String>> = specs
            .iter()
            .map(|s| (s.key.clone(), desired_targets(s, slices)))
            .collect();
        let tg_spec = |spec: &ListenerSpec| TargetGroupSpec {
            attributes: request.options.setup_for(spec).attributes,
            name: target_group_name(&owner, &spec.key),
            protocol: spec.protocol,
            port: match &targets[&spec.key] {
                Ok(t) => default_target_port(spec, t),
                Err(_) => default_target_port(spec, &BTreeSet::new()),
            },
            vpc_id: self.vpc_id.clone(),
            health_check: request.health_check.clone(),
            tags: ResourceTags {
                owner: owner.clone(),
                pool: pool.name().to_owned(),
                listener: spec.key.clone(),
            },
        };

        // Claims exist only for a Service this system has touched (it then holds the finalizer
        // or output annotations); a claim left without either is met by the transaction.
        // A pod's claims are keyed by its name: a pod made again under it holds them unmarked.
        let touched = service.pod.is_some()
            || service.has_finalizer()
            || OUTPUT_KEYS
                .iter()
                .any(|k| service.annotations.contains_key(*k));
        let mut existing = if touched {
            self.claims_for(service).await?
        } else {
            vec![]
        };
        // A Service naming an NLB the pool no longer lists waits for the preflight to say so.
        let only = match &request.nlb {
            None => None,
            Some(name) => Some(self.named_nlb(pool, request).ok_or_else(|| Error::Busy {
                service: service.key.to_string(),
                reason: format!("NLB {name} is not among the pool's members as last read"),
            })?),
        };
        let mut current = service.clone();
        let mut plans: Vec<Plan> = Vec::new();
        let mut claimed_now = 0;
        for _ in 0..3 {
            // Hold every claim of the Service before acting on any of them.
            if self.hold(holding, &service.key, &mut existing).await? == Held::Reread {
                existing = self.claims_for(service).await?;
                continue;
            }
            // A claim outside the pool as configured now (another pool, an NLB taken out of
            // it, a port the range no longer holds) or for a port the Service dropped goes.
            let (kept, stale): (Vec<Claim>, Vec<Claim>) = existing.drain(..).partition(|c| {
                placed_within(c, pool, only.as_deref()) && specs.iter().any(|s| s.key == c.key)
            });
            if !stale.is_empty() {
                // No moment may advertise a port once it is free for others to claim.
                match self.unadvertise(cluster, &current, &stale).await? {
                    Written::Done(after) => current = *after,
                    Written::Gone => {
                        return Ok(Outcome::Nothing("the Service was deleted meanwhile"));
                    }
                }
                self.release_claims(token, &stale).await?;
                holding.forget(&stale);
            }
            plans = kept
                .into_iter()
                .map(|claim| Plan {
                    claim,
                    fresh_tg: None,
                    fresh: false,
                })
                .collect();
            let missing: Vec<&ListenerSpec> = specs
                .iter()
                .filter(|s| !plans.iter().any(|p| p.claim.key == s.key))
                .collect();
            if missing.is_empty() {
                break;
            }
            // Before the first claim of a warm instance: is the table this cluster's?
            self.check_before_claims(cluster).await?;
            // Round 1: claim, make target groups, hold the finalizer, all at once.
            let prefer = plans.first().map(|p| p.claim.nlb_arn.clone());
            // The view says whether the NLBs the claims may go to balance across zones, so a new
            // group can follow them instead of costing an attribute call.
            self.fresh_view(pool).await?;
            let candidates: Vec<String> = match &only {
                Some(nlb) => vec![nlb.clone()],
                None => self.with_cached_members(pool).nlb_arns().to_vec(),
            };
            let tg_specs: Vec<TargetGroupSpec> = missing
                .iter()
                .map(|s| self.cross_zone_for(tg_spec(s), pool, &candidates))
                .collect();
            let (claimed, groups, held, dns) = tokio::join!(
                self.claim_ports(
                    token,
                    pool,
                    &owner,
                    &missing,
                    prefer.as_deref(),
                    only.as_deref()
                ),
                join_all(tg_specs.iter().map(|t| self.make_target_group(t))),
                self.hold_finalizer(cluster, &current),
                self.dns_names(pool),
            );
            if let Ok(Claimed::New(new)) = &claimed {
                holding.add(new);
            }
            let groups: Vec<EnsuredTargetGroup> = match groups.iter().find_map(|g| g.as_ref().err())
            {
                None => groups.into_iter().flatten().collect(),
                Some(e) => {
                    // The round's claims and the groups it did make go (a refused group, say
                    // for the quota, leaves neither a claim nor a group without its listener).
                    let e = e.clone();
                    let made: Vec<EnsuredTargetGroup> = groups.into_iter().flatten().collect();
                    let new = match &claimed {
                        Ok(Claimed::New(new)) => new.as_slice(),
                        _ => &[],
                    };
                    self.undo(holding, new, &made).await?;
                    return Err(e);
                }
            };
            dns?;
            let held = match held {
                Ok(h) => h,
                Err(e) => {
                    // Nothing is left half-made: what this round claimed and made goes again.
                    let new = match &claimed {
                        Ok(Claimed::New(new)) => new.as_slice(),
                        _ => &[],
                    };
                    self.undo(holding, new, &groups).await?;
                    return Err(e);
                }
            };
            let new = match (claimed?, held) {
                (Claimed::New(new), Written::Gone) => {
                    self.undo(holding, &new, &groups).await?;
                    return Ok(Outcome::Nothing("the Service was deleted meanwhile"));
                }
                (_, Written::Gone) => {
                    self.undo(holding, &[], &groups).await?;
                    return Ok(Outcome::Nothing("the Service was deleted meanwhile"));
                }
                (Claimed::Exhausted(reason), Written::Done(after)) => {
                    // A duplicate run may have claimed these very listeners since this one
                    // read the claims (taking the last port): then its claims decide, and
                    // this run must neither delete the target groups it uses nor call the
                    // Service Pending.
                    let now = self.claims_for(service).await?;
                    if missing.iter().any(|s| now.iter().any(|c| c.key == s.key)) {
                        current = *after;
                        existing = now;
                        continue;
                    }
                    self.undo(holding, &[], &groups).await?;
                    return self
                        .pending(cluster, &after, plans.is_empty(), reason)
                        .await;
                }
                (Claimed::Concurrent, Written::Done(after)) => {
                    current = *after;
                    existing = self.claims_for(service).await?;
                    continue;
                }
                (Claimed::New(new), Written::Done(after)) => {
                    current = *after;
                    new
                }
            };
            claimed_now = new.len();
            for (claim, group) in new.into_iter().zip(groups) {
                plans.push(Plan {
                    claim,
                    fresh_tg: Some(group),
                    fresh: true,
                });
            }
            break;
        }
        self.failpoints.check(failpoint::ENSURE_AFTER_CLAIM)?;
        if plans.len() < specs.len() {
            return Err(Error::Busy {
                service: service.key.to_string(),
                reason: "claims kept changing while allocating".to_owned(),
            });
        }

        let made = self
            .finish_allocation(
                token, cluster, &current, pool, request, specs, plans, &targets, &tg_spec,
            )
            .await?;
        holding.made(&made);
        Ok(Outcome::Allocated {
            listeners: specs.len(),
            claimed: claimed_now,
        })
    }

    /// Makes sure the Service holds the finalizer before anything it owns can outlive it.
    async fn hold_finalizer(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<Written> {
        // A pod never carries the finalizer: its Service's holds the deletion.
        if service.has_finalizer() || service.pod.is_some() {
            return Ok(Written::Done(Box::new(service.clone())));
        }
        let want = |s: &ServiceState| ServiceOutputs {
            finalizer: true,
            ..ServiceOutputs::current(s)
        };
        self.write_with(cluster, service, &want).await
    }

    /// Undoes a round that cannot go on: frees new claims, deletes target groups it made.
    async fn undo(
        &self,
        holding: &mut Holding<'_>,
        claims: &[Claim],
        groups: &[EnsuredTargetGroup],
    ) -> Result<()> {
        if !claims.is_empty() {
            self.release_claims(holding.token, claims).await?;
            holding.forget(claims);
        }
        for g in groups.iter().filter(|g| g.created) {
            self.elb.delete_target_group(&g.arn).await?;
        }
        Ok(())
    }

    /// No room in the pool: status `Pending`, a Warning Event, and the finalizer only if the
    /// Service still holds other listeners.
    pub(super) async fn pending(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        holds_nothing: bool,
        reason: String,
    ) -> Result<Outcome> {
        self.waits(cluster, service, holds_nothing, "PoolExhausted", reason)
            .await
    }

    /// The Service waits: status `Pending: <reason>`, a Warning Event `event` when the status
    /// changes, the finalizer only if it still holds listeners.
    pub(super) async fn waits(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        holds_nothing: bool,
        event: &'static str,
        reason: String,
    ) -> Result<Outcome> {
        let status = Status::Pending(reason.clone()).to_string();
        let want = |s: &ServiceState| {
            let mut outputs = ServiceOutputs::current(s);
            outputs.finalizer = !holds_nothing;
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), status.clone());
            outputs
        };
        self.write_and_tell(cluster, service, &want, NoticeKind::Warning, event, &reason)
            .await?;
        Ok(Outcome::Pending(reason))
    }
}
