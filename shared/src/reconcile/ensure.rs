//! Ensuring an opted-in Service has its listeners, target groups, targets and annotations.
//!
//! The happy path for a new Service is three sequential rounds of AWS calls:
//! 1. claim the ports (one DynamoDB transaction) while the target groups are made and the
//!    finalizer is written;
//! 2. make the listeners;
//! 3. register the targets while the claims record their ARNs and the annotations are written.

use std::collections::{BTreeSet, HashMap};

use futures::future::join_all;

use super::wiring::{Plan, Wired};
use super::{Error, Outcome, Reconciler, Result};
use crate::annotations::{self, AllocationRecord, AllocationRequest, OUTPUT_KEYS, Status};
use crate::claims::{Claim, ClaimError, ClaimState, Owner, now_epoch};
use crate::cluster::{Cluster, NoticeKind, ServiceOutputs, Written};
use crate::elb::{EnsuredTargetGroup, ResourceTags, TargetGroupSpec, target_group_name};
use crate::failpoint;
use crate::pool::NlbPool;
use crate::service_model::{ListenerKey, ListenerSpec, ServiceState};
use crate::targets::{SliceView, Target, default_target_port, desired_targets};

/// Claim attempts before giving up on a crowded pool in one run.
const CLAIM_ATTEMPTS: usize = 6;

/// What the claim step produced.
enum Claimed {
    New(Vec<Claim>),
    Exhausted(String),
    /// Another handler holds claims for these listeners: read them and carry on from there.
    Concurrent,
}

impl Reconciler {
    pub(super) async fn ensure(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
    ) -> Result<Outcome> {
        let owner = self.owner(service);
        let targets: HashMap<ListenerKey, std::result::Result<BTreeSet<Target>, String>> = specs
            .iter()
            .map(|s| (s.key.clone(), desired_targets(s, slices)))
            .collect();
        let tg_spec = |spec: &ListenerSpec| TargetGroupSpec {
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
        let touched = service.has_finalizer()
            || OUTPUT_KEYS
                .iter()
                .any(|k| service.annotations.contains_key(*k));
        let mut existing = if touched {
            self.store.claims_of(&service.uid).await?
        } else {
            vec![]
        };
        let mut current = service.clone();
        let mut plans: Vec<Plan> = Vec::new();
        let mut claimed_now = 0;
        for _ in 0..3 {
            let (kept, stale): (Vec<Claim>, Vec<Claim>) = existing
                .drain(..)
                .partition(|c| c.pool == pool.name() && specs.iter().any(|s| s.key == c.key));
            self.check_not_busy(service, &kept)?;
            if !stale.is_empty() {
                self.release_claims(&stale).await?;
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
            // Round 1: claim, make target groups, hold the finalizer, all at once.
            let prefer = plans.first().map(|p| p.claim.nlb_arn.clone());
            let tg_specs: Vec<TargetGroupSpec> = missing.iter().map(|s| tg_spec(s)).collect();
            let (claimed, groups, held, dns) = tokio::join!(
                self.claim_ports(pool, &owner, &missing, prefer.as_deref()),
                join_all(tg_specs.iter().map(|t| self.elb.ensure_target_group(t))),
                self.hold_finalizer(cluster, &current),
                self.dns_names(pool),
            );
            let groups: Vec<EnsuredTargetGroup> =
                match groups.into_iter().collect::<std::result::Result<_, _>>() {
                    Ok(g) => g,
                    Err(e) => {
                        if let Ok(Claimed::New(new)) = &claimed {
                            self.release_claims(new).await?;
                        }
                        return Err(e.into());
                    }
                };
            dns?;
            let new = match (claimed?, held?) {
                (Claimed::New(new), Written::Gone) => {
                    self.undo(&new, &groups).await?;
                    return Ok(Outcome::Nothing("the Service was deleted meanwhile"));
                }
                (_, Written::Gone) => {
                    self.undo(&[], &groups).await?;
                    return Ok(Outcome::Nothing("the Service was deleted meanwhile"));
                }
                (Claimed::Exhausted(reason), Written::Done(after)) => {
                    self.undo(&[], &groups).await?;
                    return self
                        .pending(cluster, &after, plans.is_empty(), reason)
                        .await;
                }
                (Claimed::Concurrent, Written::Done(after)) => {
                    current = *after;
                    existing = self.store.claims_of(&service.uid).await?;
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

        // Round 2: the listeners (and repairs of what earlier runs made).
        let wired: Vec<Wired> = join_all(plans.into_iter().map(|plan| {
            let spec = specs.iter().find(|s| s.key == plan.claim.key);
            let tg = spec.map(&tg_spec);
            async move {
                match tg {
                    Some(tg) => self.wire(plan, &tg).await,
                    None => Err(Error::Conflict(format!(
                        "no listener spec for claim {}",
                        plan.claim.key
                    ))),
                }
            }
        }))
        .await
        .into_iter()
        .collect::<Result<_>>()?;
        self.failpoints.check(failpoint::ENSURE_AFTER_LISTENERS)?;

        // Round 3: targets and records, while the annotations are written.
        let dns = self.dns_names(pool).await?;
        let mut records = Vec::with_capacity(specs.len());
        for spec in specs {
            let Some(w) = wired.iter().find(|w| w.claim.key == spec.key) else {
                continue;
            };
            records.push(AllocationRecord {
                name: spec.name.clone(),
                protocol: spec.protocol,
                service_port: spec.service_port,
                port: w.claim.port,
                nlb_arn: w.claim.nlb_arn.clone(),
                dns: dns.get(&w.claim.nlb_arn).cloned().unwrap_or_default(),
                listener_arn: w.listener_arn.clone(),
                target_group_arn: w.target_group_arn.clone(),
            });
        }
        let target_problem = specs
            .iter()
            .find_map(|s| targets[&s.key].as_ref().err().cloned());
        let mut outputs = ServiceOutputs {
            annotations: annotations::render_allocated(&records),
            finalizer: true,
        };
        let (kind, reason, note) = match &target_problem {
            Some(problem) => {
                outputs.annotations.insert(
                    annotations::STATUS.to_owned(),
                    Status::Error(problem.clone()).to_string(),
                );
                (NoticeKind::Warning, "TargetPortUnresolved", problem.clone())
            }
            None => (NoticeKind::Normal, "Allocated", allocated_note(&records)),
        };
        let finish = join_all(wired.iter().map(|w| {
            let desired = targets[&w.claim.key].clone().unwrap_or_default();
            self.finish_listener(w, desired)
        }));
        let (finished, written) = tokio::join!(
            finish,
            self.write_and_tell(cluster, &current, &outputs, kind, reason, &note)
        );
        finished.into_iter().collect::<Result<Vec<()>>>()?;
        written?;
        self.failpoints.check(failpoint::ENSURE_AFTER_OUTPUTS)?;
        Ok(Outcome::Allocated {
            listeners: specs.len(),
            claimed: claimed_now,
        })
    }

    /// Fails when another run is still working on these claims (claimed recently, not done).
    fn check_not_busy(&self, service: &ServiceState, kept: &[Claim]) -> Result<()> {
        let grace = i64::try_from(self.claim_grace.as_secs()).unwrap_or(i64::MAX);
        let now = now_epoch();
        match kept
            .iter()
            .find(|c| c.state == ClaimState::Claimed && now - c.claimed_at < grace)
        {
            Some(c) => Err(Error::Busy {
                service: service.key.to_string(),
                reason: format!(
                    "listener {} was claimed {}s ago and is not finished; another run is on it \
                     (taken over after {}s)",
                    c.key,
                    now - c.claimed_at,
                    grace
                ),
            }),
            None => Ok(()),
        }
    }

    /// Claims ports for `missing` in one transaction, choosing again when the choice was
    /// refused (a port taken meanwhile, an NLB full).
    async fn claim_ports(
        &self,
        pool: &NlbPool,
        owner: &Owner,
        missing: &[&ListenerSpec],
        prefer: Option<&str>,
    ) -> Result<Claimed> {
        for attempt in 0..CLAIM_ATTEMPTS {
            if !self.view.is_fresh(pool) {
                let usage = self.store.nlb_usage(pool.nlb_arns()).await?;
                self.view.update(&usage);
            }
            let Some(placement) = self.view.choose(pool, missing.len(), prefer) else {
                return Ok(Claimed::Exhausted(format!(
                    "pool {} has no NLB with room for {} more listener(s) ({} NLBs, {} listeners each, ports {})",
                    pool.name(),
                    missing.len(),
                    pool.nlb_arns().len(),
                    pool.listener_quota(),
                    pool.ports()
                )));
            };
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
                    claimed_at: now_epoch(),
                })
                .collect();
            match self.store.claim(&claims, pool.listener_quota()).await {
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
                    // meets its own writes. Claims on exactly the chosen ports are this run's.
                    let existing = self.store.claims_of(&owner.uid).await?;
                    let ours = claims.iter().all(|c| {
                        existing
                            .iter()
                            .any(|e| e.key == c.key && e.nlb_arn == c.nlb_arn && e.port == c.port)
                    });
                    if ours {
                        self.view.add_ports(&placement.nlb_arn, &placement.ports);
                        return Ok(Claimed::New(claims));
                    }
                    return Ok(Claimed::Concurrent);
                }
                Err(ClaimError::Store(e)) if e.retryable && attempt + 1 < CLAIM_ATTEMPTS => {
                    // A transaction conflict: another claim touched the same NLB item.
                    let backoff = 20 * (1u64 << attempt) + super::allocator::random(20) as u64;
                    tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                }
                Err(ClaimError::Store(e)) => return Err(e.into()),
            }
        }
        Err(Error::Busy {
            service: owner.key.to_string(),
            reason: format!("the pool's claims kept changing for {CLAIM_ATTEMPTS} attempts"),
        })
    }

    /// Makes sure the Service holds the finalizer before anything it owns can outlive it.
    async fn hold_finalizer(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<Written> {
        if service.has_finalizer() {
            return Ok(Written::Done(Box::new(service.clone())));
        }
        let mut outputs = ServiceOutputs::current(service);
        outputs.finalizer = true;
        Ok(cluster.write_outputs(service, &outputs).await?)
    }

    /// Undoes a round that cannot go on: frees new claims, deletes target groups it made.
    async fn undo(&self, claims: &[Claim], groups: &[EnsuredTargetGroup]) -> Result<()> {
        if !claims.is_empty() {
            self.release_claims(claims).await?;
        }
        for g in groups.iter().filter(|g| g.created) {
            self.elb.delete_target_group(&g.arn).await?;
        }
        Ok(())
    }

    /// No room in the pool: status `Pending`, a Warning Event, and the finalizer only if the
    /// Service still holds other listeners.
    async fn pending(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        holds_nothing: bool,
        reason: String,
    ) -> Result<Outcome> {
        let mut outputs = ServiceOutputs::current(service);
        outputs.finalizer = !holds_nothing;
        outputs.annotations.insert(
            annotations::STATUS.to_owned(),
            Status::Pending(reason.clone()).to_string(),
        );
        self.write_and_tell(
            cluster,
            service,
            &outputs,
            NoticeKind::Warning,
            "PoolExhausted",
            &reason,
        )
        .await?;
        Ok(Outcome::Pending(reason))
    }
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
