//! Round 1 of an allocation: hold every claim the Service has, let go of those the plan drops,
//! then claim the ports it lacks while their target groups are made, the finalizer is written
//! and the pool's DNS names are read, all at once.

use super::claiming::Claimed;
use super::holding::{Held, Holding};
use super::plan::{Asked, Plan};
use super::run::Run;
use super::wiring::Wiring;
use super::{Outcome, Reconciler, Result};
use crate::contract::service_model::ServiceState;
use crate::model::claims::Claim;
use crate::model::cluster::{ServiceOutputs, Written};
use crate::model::elb::EnsuredTargetGroup;

/// Claim rounds one run goes through when the claims change under it.
const ROUNDS: usize = 3;

const DELETED: Outcome = Outcome::Nothing("the Service was deleted meanwhile");

/// How round 1 ended.
pub(super) enum Claiming {
    /// The claims to wire up (those kept, then those claimed now), and the Service as the
    /// round left it.
    Claimed {
        current: Box<ServiceState>,
        wirings: Vec<Wiring>,
        /// How many were claimed now.
        claimed: usize,
    },
    /// The run ends here (the Service gone, or waiting for room).
    Ends(Outcome),
}

/// How one attempt at claiming the missing listeners ended.
enum Attempt {
    /// Claimed: these claims, each with the target group made for it.
    Made(Box<ServiceState>, Vec<Wiring>),
    /// The claims changed under it (another run's): read as these, sort them again.
    Again(Box<ServiceState>, Vec<Claim>),
    /// The run ends here.
    Ends(Outcome),
}

impl Reconciler {
    /// Round 1 for `run`, whose claims were read as `existing`: held and sorted by `plan`
    /// (again whenever they change under it, up to [`ROUNDS`] times), then those it lacks
    /// claimed.
    pub(super) async fn claim_round<'a>(
        &self,
        run: &Run<'_>,
        asked: &Asked<'a>,
        plan: &mut Plan<'a>,
        mut existing: Vec<Claim>,
        holding: &mut Holding<'_>,
    ) -> Result<Claiming> {
        let service = run.service;
        let mut current = service.clone();
        let mut wirings: Vec<Wiring> = Vec::new();
        let mut claimed = 0;
        for _ in 0..ROUNDS {
            // Hold every claim of the Service before acting on any of them.
            if self.hold(holding, &service.key, &mut existing).await? == Held::Reread {
                existing = self.claims_for(service).await?;
                continue;
            }
            plan.split(asked, std::mem::take(&mut existing));
            if !plan.drop.is_empty() {
                match self.drop_claims(run, holding, &current, &plan.drop).await? {
                    Written::Done(after) => current = *after,
                    Written::Gone => return Ok(Claiming::Ends(DELETED)),
                }
            }
            wirings = plan.keep.iter().cloned().map(Wiring::kept).collect();
            if plan.missing.is_empty() {
                break;
            }
            match self
                .claim_missing(run, asked, plan, &current, holding)
                .await?
            {
                Attempt::Made(after, new) => {
                    current = *after;
                    claimed = new.len();
                    wirings.extend(new);
                    break;
                }
                Attempt::Again(after, now) => {
                    current = *after;
                    existing = now;
                }
                Attempt::Ends(outcome) => return Ok(Claiming::Ends(outcome)),
            }
        }
        Ok(Claiming::Claimed {
            current: Box::new(current),
            wirings,
            claimed,
        })
    }

    /// One attempt at the listeners `plan` lacks: their ports claimed, their target groups
    /// made, the finalizer written on `current` and the DNS names read, all at once. Whatever
    /// cannot go on is undone: no claim or group is left without its listener.
    async fn claim_missing(
        &self,
        run: &Run<'_>,
        asked: &Asked<'_>,
        plan: &Plan<'_>,
        current: &ServiceState,
        holding: &mut Holding<'_>,
    ) -> Result<Attempt> {
        // Before the first claim of a warm instance: is the table this cluster's?
        self.check_before_claims(run.cluster).await?;
        let prefer = plan.keep.first().map(|c| c.nlb_arn.clone());
        // The view says whether the NLBs the claims may go to balance across zones, so a new
        // group can follow them instead of costing an attribute call.
        self.fresh_view(run.pool).await?;
        let candidates: Vec<String> = match asked.only {
            Some(nlb) => vec![nlb.to_owned()],
            None => self.with_cached_members(run.pool).nlb_arns().to_vec(),
        };
        let groups = self.missing_groups(run, plan, &candidates);
        let (claimed, groups, held, dns) = tokio::join!(
            self.claim_ports(
                run,
                asked.owner,
                &plan.missing,
                prefer.as_deref(),
                asked.only
            ),
            self.make_target_groups(&groups),
            self.hold_finalizer(run, current),
            self.dns_names(run.pool),
        );
        if let Ok(Claimed::New(new)) = &claimed {
            holding.add(new);
        }
        let new_of = |claimed: &Result<Claimed>| match claimed {
            Ok(Claimed::New(new)) => new.clone(),
            _ => vec![],
        };
        let groups: Vec<EnsuredTargetGroup> = match groups.iter().find_map(|g| g.as_ref().err()) {
            None => groups.into_iter().flatten().collect(),
            Some(e) => {
                // The round's claims and the groups it did make go (a refused group, say for
                // the quota, leaves neither a claim nor a group without its listener).
                let e = e.clone();
                let made: Vec<EnsuredTargetGroup> = groups.into_iter().flatten().collect();
                self.undo(holding, &new_of(&claimed), &made).await?;
                return Err(e);
            }
        };
        dns?;
        let held = match held {
            Ok(h) => h,
            Err(e) => {
                // Nothing is left half-made: what this round claimed and made goes again.
                self.undo(holding, &new_of(&claimed), &groups).await?;
                return Err(e);
            }
        };
        Ok(match (claimed?, held) {
            (Claimed::New(new), Written::Gone) => {
                self.undo(holding, &new, &groups).await?;
                Attempt::Ends(DELETED)
            }
            (_, Written::Gone) => {
                self.undo(holding, &[], &groups).await?;
                Attempt::Ends(DELETED)
            }
            (Claimed::Exhausted(reason), Written::Done(after)) => {
                // A duplicate run may have claimed these very listeners since this one read
                // the claims (taking the last port): then its claims decide, and this run
                // must neither delete the target groups it uses nor call the Service Pending.
                let now = self.claims_for(run.service).await?;
                if plan
                    .missing
                    .iter()
                    .any(|s| now.iter().any(|c| c.key == s.key))
                {
                    return Ok(Attempt::Again(after, now));
                }
                self.undo(holding, &[], &groups).await?;
                let holds_nothing = plan.keep.is_empty();
                Attempt::Ends(
                    self.pending(run.cluster, &after, holds_nothing, reason)
                        .await?,
                )
            }
            (Claimed::Concurrent, Written::Done(after)) => {
                Attempt::Again(after, self.claims_for(run.service).await?)
            }
            (Claimed::New(new), Written::Done(after)) => {
                let made = new.into_iter().zip(groups).map(|(claim, group)| Wiring {
                    claim,
                    fresh_tg: Some(group),
                    fresh: true,
                });
                Attempt::Made(after, made.collect())
            }
        })
    }

    /// Lets `claims` go for good: out of what `service` advertises first (no moment may
    /// advertise a port once it is free for others to claim), then released.
    pub(super) async fn drop_claims(
        &self,
        run: &Run<'_>,
        holding: &mut Holding<'_>,
        service: &ServiceState,
        claims: &[Claim],
    ) -> Result<Written> {
        let written = self.unadvertise(run.cluster, service, claims).await?;
        if let Written::Done(_) = &written {
            self.release_claims(run.token, claims).await?;
            holding.forget(claims);
        }
        Ok(written)
    }

    /// Makes sure the Service holds the finalizer before anything it owns can outlive it.
    async fn hold_finalizer(&self, run: &Run<'_>, service: &ServiceState) -> Result<Written> {
        // A pod never carries the finalizer: its Service's holds the deletion.
        if service.has_finalizer() || service.pod.is_some() {
            return Ok(Written::Done(Box::new(service.clone())));
        }
        let want = |s: &ServiceState| ServiceOutputs {
            finalizer: true,
            ..ServiceOutputs::current(s)
        };
        self.write_with(run.cluster, service, &want).await
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
        self.delete_made_groups(groups).await
    }
}
