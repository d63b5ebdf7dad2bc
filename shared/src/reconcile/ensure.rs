//! Ensuring an opted-in Service has its listeners, target groups, targets and annotations:
//! the plan of what it should have ([`super::plan`]), carried out in rounds of AWS calls.
//!
//! The happy path for a new Service is three sequential rounds:
//! 1. claim the ports (one DynamoDB transaction) while the target groups are made and the
//!    finalizer is written ([`super::claim_round`]);
//! 2. make the listeners ([`super::listeners`]);
//! 3. register the targets while the claims record their ARNs ([`super::register`]), then
//!    write the annotations ([`super::advert`]).

use super::claim_key::KeyStep;
use super::claim_round::Claiming;
use super::holding::Holding;
use super::plan::{Asked, Plan, may_hold_claims};
use super::run::Run;
use super::{Error, Outcome, Reconciler, Result};
use crate::model::claims::{Claim, HoldError};
use crate::model::cluster::{Notice, NoticeKind, Written};
use crate::reconcile::failpoint;

/// Listener refusals (an NLB full or gone, a foreign listener on the port) one run moves
/// claims past before it calls the Service `Pending`.
const REFUSALS_PER_RUN: usize = 3;

impl Reconciler {
    /// Allocates, repairs or keeps the listeners of an opted-in Service, as `run`'s token.
    /// However the run ends (short of a kill), it lets go of the claims it holds, so the next
    /// run need not wait out the grace period that protects a run still alive.
    pub(super) async fn ensure(&self, run: &Run<'_>) -> Result<Outcome> {
        let service = run.service;
        let mut holding = Holding::new(run.token);
        let result = self.ensure_moving(run, &mut holding).await;
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
                self.withdraw_advert(run.cluster, service).await?;
                Err(lost.into())
            }
            Err(_) => result,
        }
    }

    /// [`Reconciler::ensure_with`], moving a claim whose listener AWS refused (its NLB full or
    /// gone, a listener the system did not make on its port) to another port or NLB, up to
    /// [`REFUSALS_PER_RUN`] times; then the Service is `Pending` with AWS's reasons. Each move
    /// is told in a Warning Event.
    async fn ensure_moving(&self, run: &Run<'_>, holding: &mut Holding<'_>) -> Result<Outcome> {
        let (cluster, service) = (run.cluster, run.service);
        let mut refusals: Vec<String> = Vec::new();
        let mut current = service.clone();
        loop {
            let result = self.ensure_with(&run.on(&current), holding).await;
            let (claim, reason, nlb_unusable) = match result {
                Err(Error::ListenerRefused {
                    claim,
                    reason,
                    nlb_unusable,
                }) => (*claim, reason, nlb_unusable),
                Ok(outcome) => {
                    if !refusals.is_empty() {
                        self.tell_refusals(&run.on(&current), &refusals).await?;
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
                .drop_claims(run, holding, &fresh, std::slice::from_ref(&claim))
                .await?
            {
                Written::Done(after) => *after,
                Written::Gone => return Ok(Outcome::Nothing("the Service was deleted meanwhile")),
            };
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
    async fn tell_refusals(&self, run: &Run<'_>, refusals: &[String]) -> Result<()> {
        let notice = Notice {
            kind: NoticeKind::Warning,
            reason: "ListenerRefused",
            note: format!(
                "moved to another port or NLB after AWS refused a listener: {}",
                refusals.join("; ")
            ),
            once: None,
        };
        Ok(run.cluster.publish(run.service, &notice).await?)
    }

    /// One pass of the plan for `run`'s Service: round 1 claims what it lacks, round 2 makes
    /// the listeners, round 3 registers the targets and advertises the claims.
    async fn ensure_with(&self, run: &Run<'_>, holding: &mut Holding<'_>) -> Result<Outcome> {
        let owner = self.owner(run.service);
        let existing = if may_hold_claims(run.service) {
            self.claims_for(run.service).await?
        } else {
            vec![]
        };
        let existing = match self.settle_key(run, &owner, existing).await? {
            KeyStep::Go(claims) => claims,
            KeyStep::Ends(outcome) => return Ok(outcome),
        };
        let only = self.only_nlb(run)?;
        let asked = Asked {
            owner: &owner,
            pool: run.pool,
            only: only.as_deref(),
            request: run.request,
            specs: run.specs,
            slices: run.slices,
            vpc_id: &self.vpc_id,
            disabled: run.disabled(),
        };
        // The claims are sorted in round 1, once this run holds them.
        let mut plan = Plan::new(&asked, vec![]);

        // Round 1: the claims.
        let (current, wirings, claimed) = match self
            .claim_round(run, &asked, &mut plan, existing, holding)
            .await?
        {
            Claiming::Claimed {
                current,
                wirings,
                claimed,
            } => (current, wirings, claimed),
            Claiming::Ends(outcome) => return Ok(outcome),
        };
        self.failpoints.check(failpoint::ENSURE_AFTER_CLAIM)?;
        if wirings.len() < run.specs.len() {
            return Err(Error::Busy {
                service: run.service.key.to_string(),
                reason: "claims kept changing while allocating".to_owned(),
            });
        }
        let run = &run.on(&current);

        // Round 2: the listeners (and repairs of what earlier runs made).
        let wired = self.make_listeners(run, &plan, wirings).await?;
        self.failpoints.check(failpoint::ENSURE_AFTER_LISTENERS)?;

        // Round 3: targets and records first: the annotations advertise only claims this run
        // holds and has recorded as active (the record's condition proves both).
        let records = self.records_of(run, &plan, &wired).await?;
        self.register_targets(run, &plan, &wired).await?;
        self.advertise_allocation(run, &plan, &wired, &records)
            .await?;
        self.failpoints.check(failpoint::ENSURE_AFTER_OUTPUTS)?;

        // What each listener is now made from, for the next event to compare with.
        let made: Vec<Claim> = wired.into_iter().map(|w| w.claim).collect();
        holding.made(&plan.made(&made));
        Ok(Outcome::Allocated {
            listeners: run.specs.len(),
            claimed,
        })
    }

    /// The ARN of the NLB `run`'s Service names, if it names one. A Service naming an NLB the
    /// pool no longer lists is busy: it waits for the preflight to say so.
    fn only_nlb(&self, run: &Run<'_>) -> Result<Option<String>> {
        let Some(name) = &run.request.nlb else {
            return Ok(None);
        };
        match self.named_nlb(run.pool, run.request) {
            Some(arn) => Ok(Some(arn)),
            None => Err(Error::Busy {
                service: run.service.key.to_string(),
                reason: format!("NLB {name} is not among the pool's members as last read"),
            }),
        }
    }
}
