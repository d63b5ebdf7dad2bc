//! Keeping target groups in line with the Service's ready endpoints.

use std::collections::BTreeSet;

use super::decide::Decision;
use super::fingerprint::{listener_fingerprint, listener_half};
use super::per_pod::Pass;
use super::run::Run;
use super::{Error, Outcome, Reconciler, Result};
use crate::contract::annotations::{AllocationRequest, Mode};
use crate::contract::service_model::{ListenerSpec, ServiceState};
use crate::model::claims::{Claim, ClaimState, RunToken};
use crate::model::cluster::Cluster;
use crate::model::targets::{SliceView, Target, desired_targets, without_targets};

impl Reconciler {
    /// Registers and deregisters targets of an allocated Service after its endpoints changed.
    /// Allocation itself is left to `reconcile_service`: a Service without claims is skipped.
    pub async fn sync_targets(
        &self,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
    ) -> Result<Outcome> {
        let outcome = self.sync_targets_of(cluster, namespace, name).await;
        self.tally(&outcome);
        outcome
    }

    async fn sync_targets_of(
        &self,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
    ) -> Result<Outcome> {
        let (service, slices) = tokio::join!(
            cluster.service(namespace, name),
            cluster.endpoint_slices(namespace, name)
        );
        let Some(service) = service? else {
            return Ok(Outcome::Nothing("the Service does not exist"));
        };
        let Decision::Ensure(request, specs) = self.decide(&service) else {
            return Ok(Outcome::Nothing("the Service does not ask for listeners"));
        };
        let screened = self.screen(&service, slices?);
        if request.mode == Mode::PerPod {
            // Pods come and go with the endpoints: each one that changed is allocated or left.
            let pool = self.pool(&request.pool)?.clone();
            let token = RunToken::random();
            let run = Run {
                token: &token,
                cluster,
                service: &service,
                pool: &pool,
                request: &request,
                specs: &specs,
                slices: &screened.trusted,
            };
            let (outcome, reported) = tokio::join!(
                self.ensure_pods(&run, Pass::Changed),
                self.report_rejections(cluster, &service, &screened.rejections)
            );
            reported?;
            return outcome;
        }
        let trusted = self
            .admit_gated(cluster, &service, screened.trusted)
            .await?;
        // Taken out of its listeners: no target, whatever the endpoints say.
        let trusted = match request.network_disabled {
            true => without_targets(trusted),
            false => trusted,
        };
        // Listeners made from these very targets (checked against the pods then) cost no pod
        // read and no ELBv2 call.
        let claims = self.claims_for(&service).await?;
        if self.made_from(&claims, &request, &specs, &trusted) {
            self.report_rejections(cluster, &service, &screened.rejections)
                .await?;
            return Ok(Outcome::TargetsSynced {
                registered: 0,
                deregistered: 0,
            });
        }
        let (trusted, not_pods) = self.own_pods_only(cluster, &service, trusted).await?;
        let rejections = [screened.rejections, not_pods].concat();
        let (synced, reported) = tokio::join!(
            self.sync_listeners(&service, &claims, &request, &specs, &trusted),
            self.report_rejections(cluster, &service, &rejections)
        );
        let outcome = match synced {
            // A target quota: the Service waits for room (see `quotas`).
            Err(Error::Elb(e)) if super::quotas::quota_of(&e).is_some() => {
                reported?;
                return self.wait_for_quota(cluster, &service, &e).await;
            }
            synced => synced?,
        };
        reported?;
        if let Outcome::TargetsSynced { registered, .. } = outcome
            && registered > 0
        {
            // New targets take a while to pass their health checks.
            self.note_check(&service).await;
        }
        Ok(outcome)
    }

    /// Whether every listener the Service holds, active, was made from `slices`' targets.
    fn made_from(
        &self,
        claims: &[Claim],
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
    ) -> bool {
        let held: Vec<(&ListenerSpec, &Claim)> = specs
            .iter()
            .filter_map(|spec| Some((spec, claims.iter().find(|c| c.key == spec.key)?)))
            .collect();
        !held.is_empty()
            && held.iter().all(|(spec, claim)| {
                let desired = desired_targets(spec, slices);
                claim.state == ClaimState::Active
                    && claim.applied.as_deref()
                        == Some(
                            listener_fingerprint(&request.pool, request, spec, &desired).as_str(),
                        )
            })
    }

    /// Brings the target group of each listener the Service holds in line with `slices`; a
    /// listener whose claim says it was made from these very targets costs no call.
    async fn sync_listeners(
        &self,
        service: &ServiceState,
        claims: &[Claim],
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
    ) -> Result<Outcome> {
        let mut registered = 0;
        let mut deregistered = 0;
        let mut work = Vec::new();
        for spec in specs {
            let Some(claim) = claims.iter().find(|c| c.key == spec.key) else {
                continue;
            };
            let Some(tg) = claim
                .target_group_arn
                .clone()
                .filter(|_| claim.state == ClaimState::Active)
            else {
                return Err(Error::Busy {
                    service: service.key.to_string(),
                    reason: format!("listener {} is still being made", claim.key),
                });
            };
            let desired = desired_targets(spec, slices);
            let made_from = listener_fingerprint(&request.pool, request, spec, &desired);
            if claim.applied.as_deref() == Some(made_from.as_str()) {
                continue; // made from these targets already
            }
            // An unresolvable targetPort is reported by the allocation path; leave targets be.
            if let Ok(desired) = desired {
                work.push((claim, tg, desired, made_from));
            }
        }
        if !specs.iter().any(|s| claims.iter().any(|c| c.key == s.key)) {
            return Ok(Outcome::Nothing("the Service holds no listener yet"));
        }
        if work.is_empty() {
            return Ok(Outcome::TargetsSynced {
                registered: 0,
                deregistered: 0,
            });
        }
        let results = futures::future::join_all(
            work.iter()
                .map(|(_, tg, desired, _)| self.sync_target_group(tg, desired, false)),
        )
        .await;
        for r in results {
            let (r, d) = r?;
            registered += r;
            deregistered += d;
        }
        // Noted only where the listener itself was made as asked now: a sync changes targets,
        // not what a pending Service Changed run is still to apply (a new health check, say).
        let made: Vec<(Claim, String)> = work
            .into_iter()
            .filter(|(claim, _, _, made_from)| {
                claim.applied.as_deref().map(listener_half) == Some(listener_half(made_from))
            })
            .map(|(claim, _, _, made_from)| (claim.clone(), made_from))
            .collect();
        self.note_applied(service, &made).await;
        Ok(Outcome::TargetsSynced {
            registered,
            deregistered,
        })
    }

    /// Registers what is desired and missing, deregisters what is registered and not desired.
    /// A group made in this run is known to be empty, which saves reading it.
    pub(super) async fn sync_target_group(
        &self,
        target_group_arn: &str,
        desired: &BTreeSet<Target>,
        known_empty: bool,
    ) -> Result<(usize, usize)> {
        let current = if known_empty {
            BTreeSet::new()
        } else {
            self.elb.targets(target_group_arn).await?
        };
        let add: Vec<Target> = desired.difference(&current).copied().collect();
        let remove: Vec<Target> = current.difference(desired).copied().collect();
        let (added, removed) = tokio::join!(
            async {
                if add.is_empty() {
                    Ok(())
                } else {
                    self.elb.register(target_group_arn, &add).await
                }
            },
            async {
                if remove.is_empty() {
                    Ok(())
                } else {
                    self.elb.deregister(target_group_arn, &remove).await
                }
            }
        );
        added?;
        removed?;
        Ok((add.len(), remove.len()))
    }
}
