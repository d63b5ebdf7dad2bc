//! Claiming listener ports: choose, claim in one transaction, choose again when refused.

use std::time::Duration;

use futures::future::join_all;

use super::run::Run;
use super::{Error, Reconciler, Result};
use crate::contract::service_model::ListenerSpec;
use crate::model::backoff::{Backoff, Jitter};
use crate::model::claims::{Claim, ClaimError, ClaimState, NlbTerms, Owner, now_epoch};
use crate::model::elb::ElbErrorKind;
use crate::model::pool::NlbPool;

/// Claim attempts before giving up on a crowded pool in one run.
const CLAIM_ATTEMPTS: u32 = 6;

/// The pause after a claim transaction that met another: 20 ms doubling, plus up to 20 ms.
const CLAIM_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(20),
    cap: Duration::MAX,
    jitter: Jitter::Add(Duration::from_millis(20)),
};

/// What the claim step produced.
pub(super) enum Claimed {
    New(Vec<Claim>),
    Exhausted(String),
    /// Another handler holds claims for these listeners: read them and carry on from there.
    Concurrent,
}

impl Reconciler {
    /// Reads the view of `pool` again: the claims of each NLB and, from the sweep's listing on
    /// its item, the ports other listeners hold (every listener counts against the NLB's
    /// quota, whoever made it). Only an NLB the sweep has not listed yet has its listeners
    /// read here; an NLB found gone then takes no claim until it is read again.
    pub(super) async fn refresh_view(&self, pool: &NlbPool) -> Result<()> {
        // A managed pool's members are read with its view: a new NLB is seen when the view is.
        let pool = &self.refresh_members(pool).await?;
        let usage = self.store.nlb_usage(pool.nlb_arns()).await?;
        self.view.update(&usage);
        let unlisted: Vec<&String> = pool
            .nlb_arns()
            .iter()
            .filter(|nlb| {
                !usage
                    .iter()
                    .any(|u| &u.nlb_arn == *nlb && u.listing.is_some())
            })
            .collect();
        let listings = join_all(unlisted.iter().map(|nlb| self.elb.listeners_of(nlb))).await;
        for (nlb, listed) in unlisted.into_iter().zip(listings) {
            match listed {
                Ok(listeners) => {
                    let ports: Vec<u16> = listeners.iter().map(|l| l.port).collect();
                    self.view.add_ports(nlb, &ports);
                }
                Err(e) if e.kind == ElbErrorKind::NlbNotFound => {
                    tracing::warn!(
                        nlb,
                        pool = pool.name(),
                        "an NLB of the pool does not exist; no claim goes to it (remove it from POOLS)"
                    );
                    self.view.mark_unusable(nlb);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads the view of `pool` unless it is fresh (a managed pool whose members were never
    /// read has no NLB to be fresh about: it is read).
    pub(super) async fn fresh_view(&self, pool: &NlbPool) -> Result<()> {
        let live = self.with_cached_members(pool);
        if live.nlb_arns().is_empty() || !self.view.is_fresh(&live) {
            self.refresh_view(pool).await?;
        }
        Ok(())
    }

    /// Claims ports for `missing` in one transaction, choosing again when the choice was
    /// refused (a port taken meanwhile, an NLB full).
    pub(super) async fn claim_ports(
        &self,
        run: &Run<'_>,
        owner: &Owner,
        missing: &[&ListenerSpec],
        prefer: Option<&str>,
        only: Option<&str>,
    ) -> Result<Claimed> {
        let (token, pool) = (run.token, run.pool);
        let exhausted = |pool: &NlbPool| {
            let unusable = match self.view.unusable(pool) {
                0 => String::new(),
                n => format!(", {n} of them full, gone or not active"),
            };
            let growth = match pool.managed() {
                None => String::new(),
                Some(m) if pool.nlb_arns().len() - pool.premade_arns().len() >= m.max as usize => {
                    format!(
                        "; the pool is at its limit of {} made NLBs (raise managed.max)",
                        m.max
                    )
                }
                Some(_) => match self.held_back(pool) {
                    Some(why) => format!("; the pool cannot grow: {why}"),
                    None => {
                        "; the pool is growing: the Service is allocated when a new NLB is active"
                            .to_owned()
                    }
                },
            };
            if let Some(arn) = only {
                return Claimed::Exhausted(format!(
                    "NLB {arn}, which the Service names, has no room for {} more listener(s) \
                     ({} listeners each, ports {}, {} of them blocked)",
                    missing.len(),
                    pool.listener_quota(),
                    pool.ports(),
                    pool.ports().len() - pool.usable_ports()
                ));
            }
            Claimed::Exhausted(format!(
                "pool {} has no NLB with room for {} more listener(s) ({} NLBs{unusable}, {} \
                 listeners each, ports {}){growth}",
                pool.name(),
                missing.len(),
                pool.nlb_arns().len(),
                pool.listener_quota(),
                pool.ports()
            ))
        };
        // Whether the view was read from the store during this run.
        let mut read = false;
        for attempt in 0..CLAIM_ATTEMPTS {
            let mut live = self.with_cached_members(pool);
            if !self.view.is_fresh(&live) {
                self.refresh_view(pool).await?;
                live = self.with_cached_members(pool);
                read = true;
            }
            let mut placement = self.view.choose(&live, missing.len(), prefer, only);
            if placement.is_none() && !read {
                // The view is a warm instance's memory: ports another function released since
                // (release and the sweep run apart from allocate), NLBs made since, are not in
                // it. Read the store before telling a Service to wait.
                self.refresh_view(pool).await?;
                live = self.with_cached_members(pool);
                read = true;
                placement = self.view.choose(&live, missing.len(), prefer, only);
            }
            let Some(placement) = placement else {
                return Ok(exhausted(&live));
            };
            let now = now_epoch();
            let claims: Vec<Claim> = missing
                .iter()
                .zip(&placement.ports)
                .map(|(spec, &port)| Claim {
                    owner: owner.clone(),
                    key: spec.key.clone(),
                    port_name: spec.name.clone(),
                    protocol: spec.protocol,
                    service_port: spec.service_port,
                    pool: pool.name().to_owned(),
                    nlb_arn: placement.nlb_arn.clone(),
                    port,
                    state: ClaimState::Claimed,
                    listener_arn: None,
                    target_group_arn: None,
                    claimed_at: now,
                    token: token.as_str().to_owned(),
                    held_at: now,
                    gone_since: None,
                    applied: None,
                    claim_key: run.request.claim_key.clone(),
                })
                .collect();
            let terms = NlbTerms {
                listener_quota: pool.listener_quota(),
                made: live.is_made(&placement.nlb_arn),
            };
            match self.store.claim(&claims, terms).await {
                Ok(()) => {
                    self.view.add_ports(&placement.nlb_arn, &placement.ports);
                    return Ok(Claimed::New(claims));
                }
                Err(ClaimError::PortTaken { nlb_arn, ports }) => {
                    self.view.add_ports(&nlb_arn, &ports)
                }
                Err(ClaimError::NlbFull { nlb_arn }) => self.view.forget(&nlb_arn),
                Err(ClaimError::AlreadyClaimed) => {
                    // The SDK retries a transaction whose answer was lost; the retry then
                    // meets its own writes. Claims carrying this run's token are its own.
                    let existing = self.claims_of_owner(owner).await?;
                    let ours = claims.iter().all(|c| {
                        existing.iter().any(|e| {
                            e.key == c.key
                                && e.nlb_arn == c.nlb_arn
                                && e.port == c.port
                                && e.held_by(token)
                        })
                    });
                    if ours {
                        self.view.add_ports(&placement.nlb_arn, &placement.ports);
                        return Ok(Claimed::New(claims));
                    }
                    return Ok(Claimed::Concurrent);
                }
                Err(ClaimError::Store(e)) if e.retryable && attempt + 1 < CLAIM_ATTEMPTS => {
                    // A transaction conflict: another claim touched the same NLB item.
                    tokio::time::sleep(CLAIM_BACKOFF.delay(attempt)).await;
                }
                Err(ClaimError::Store(e)) => return Err(e.into()),
            }
        }
        Err(Error::Busy {
            service: owner.key.to_string(),
            reason: format!("the pool's claims kept changing for {CLAIM_ATTEMPTS} attempts"),
        })
    }
}
