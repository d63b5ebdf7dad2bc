//! One reachability check of one Service: target health of each listener, then status `Ready`
//! and the readiness gates of the pods whose targets are healthy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use futures::future::join_all;

use super::super::Result;
use super::super::decide::Decision;
use super::super::per_pod::Pass;
use super::super::run::Run;
use super::checker::ReachChecker;
use super::report::{Flipped, Reach};
use crate::contract::annotations::{self, AllocationRequest, Mode, PodsSummary, SharedPod, Status};
use crate::contract::service_model::{ListenerSpec, PodState, ServiceState};
use crate::model::claims::{CheckItem, Claim, RunToken};
use crate::model::cluster::{Cluster, NoticeKind, ServiceOutputs};
use crate::model::elb::TargetHealth;

/// What the health of a subject's listeners says.
struct Health {
    /// Why it is not reachable yet; `None`: every listener has a healthy target.
    problem: Option<String>,
    /// The IPs healthy in every listener's group.
    healthy_ips: BTreeSet<Ipv4Addr>,
    /// Some listener's group has a target at all (none: nothing to wait for).
    registered: bool,
}

impl ReachChecker<'_> {
    pub(super) async fn check_service(
        &self,
        cluster: &dyn Cluster,
        item: &CheckItem,
    ) -> Result<(Reach, Flipped)> {
        let Some(service) = cluster
            .service(&item.namespace, &item.name)
            .await?
            .filter(|s| s.uid == item.uid)
        else {
            return Ok((Reach::Done, Flipped::default()));
        };
        match self.reconciler.decide(&service) {
            Decision::Ensure(request, specs) if request.mode == Mode::PerPod => {
                self.check_pods(cluster, &service, &request, &specs).await
            }
            Decision::Ensure(..) => self.check_own(cluster, &service).await,
            _ => Ok((Reach::Done, Flipped::default())),
        }
    }

    /// The health of `claims` (one subject's listeners): one DescribeTargetHealth each, and
    /// whether every zone of the NLB reaches a healthy target.
    async fn health_of(&self, claims: &[Claim]) -> Result<Health> {
        if let Some(c) = claims.iter().find(|c| c.target_group_arn.is_none()) {
            return Ok(Health {
                problem: Some(format!("listener {} is still being made", c.key)),
                healthy_ips: BTreeSet::new(),
                registered: true,
            });
        }
        let reads = join_all(claims.iter().filter_map(|c| {
            let tg = c.target_group_arn.as_deref()?;
            Some(async move { (c, self.reconciler.elb.target_health(tg).await) })
        }))
        .await;
        let mut problem = None;
        let mut registered = false;
        let mut healthy_ips: Option<BTreeSet<Ipv4Addr>> = None;
        for (claim, read) in reads {
            let targets = read?;
            registered |= !targets.is_empty();
            let mut healthy: BTreeSet<Ipv4Addr> = targets
                .iter()
                .filter(|t| t.is_healthy())
                .map(|t| t.target.ip)
                .collect();
            if healthy.is_empty() && problem.is_none() {
                problem = Some(describe(claim, &targets));
            }
            // Healthy is not enough: every zone of the NLB must reach a target.
            if let (false, Some(group)) = (healthy.is_empty(), claim.target_group_arn.as_deref())
                && let Some(why) = self.zone_problem(claim, group, &targets).await?
            {
                healthy.clear();
                problem.get_or_insert(why);
            }
            healthy_ips = Some(match healthy_ips {
                None => healthy,
                Some(all) => all.intersection(&healthy).copied().collect(),
            });
        }
        Ok(Health {
            problem,
            healthy_ips: healthy_ips.unwrap_or_default(),
            registered,
        })
    }

    /// A per-Service Service: `Ready` once each listener has a healthy target; the gate of each
    /// gated pod whose IP is healthy everywhere.
    async fn check_own(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<(Reach, Flipped)> {
        let status = service.annotations.get(annotations::STATUS).cloned();
        let allocated = Status::Allocated.to_string();
        let ready = Status::Ready.to_string();
        if status.as_ref() != Some(&allocated) && status.as_ref() != Some(&ready) {
            return Ok((Reach::Done, Flipped::default())); // Pending or Error: nothing to check.
        }
        let claims = self.reconciler.claims_for(service).await?;
        if claims.is_empty() {
            return Ok((Reach::Done, Flipped::default()));
        }
        let health = self.health_of(&claims).await?;
        if !health.registered {
            // No ready endpoint: nothing to wait for (a registration notes it again).
            return Ok((Reach::Done, Flipped::default()));
        }
        let mut flipped = Flipped::default();
        let pods = cluster
            .pods(&service.key.namespace, &service.selector)
            .await?;
        let mut waiting_gate = None;
        for pod in pods.iter().filter(|p| p.gated && !p.reachable) {
            match pod.ip {
                Some(ip) if health.healthy_ips.contains(&ip) => {
                    self.set_gate(cluster, service, pod, &mut flipped).await?;
                }
                Some(_) if pod.containers_ready => {
                    waiting_gate.get_or_insert_with(|| {
                        format!("pod {}: its target is not healthy yet", pod.name)
                    });
                }
                _ => {}
            }
        }
        if let Some(problem) = health.problem {
            return Ok((Reach::Waiting(problem), flipped));
        }
        if status.as_ref() == Some(&allocated) {
            self.write_ready(cluster, service).await?;
            flipped.ready += 1;
            if let Some(created) = service.created {
                flipped
                    .service_seconds
                    .push(crate::model::claims::now_epoch() - created);
            }
        }
        Ok(match waiting_gate {
            Some(why) => (Reach::Waiting(why), flipped),
            None => (Reach::Done, flipped),
        })
    }

    /// A per-pod Service: pods whose containers became ready since are registered first (their
    /// endpoints did not change, so no event said so); then each `Allocated` pod whose
    /// listeners have a healthy target at its own IP becomes `Ready`, its gate set. A pod whose
    /// outputs another Service writes is that Service's to mark and gate: this one only notes
    /// in its own summary that its listeners for the pod are reachable.
    async fn check_pods(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
    ) -> Result<(Reach, Flipped)> {
        let pool = self.reconciler.pool(&request.pool)?.clone();
        let slices = cluster
            .endpoint_slices(&service.key.namespace, &service.key.name)
            .await?;
        let screened = self.reconciler.screen(service, slices);
        let token = RunToken::random();
        let run = Run {
            token: &token,
            cluster,
            service,
            pool: &pool,
            request,
            specs,
            slices: &screened.trusted,
        };
        self.reconciler.ensure_pods(&run, Pass::Recheck).await?;
        let (pods, claims) = tokio::join!(
            cluster.pods(&service.key.namespace, &service.selector),
            self.reconciler.store.claims_of(&service.uid)
        );
        let mut by_pod: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
        for c in claims? {
            if let Some(p) = c.owner.pod.clone() {
                by_pod.entry(p).or_default().push(c);
            }
        }
        let pods = pods?;
        let mine = annotations::service_ref(&service.key.name, &service.uid);
        let theirs = |p: &PodState| {
            p.annotations
                .get(annotations::SERVICE)
                .is_some_and(|o| *o != mine)
        };
        let shared = match pods.iter().any(theirs) {
            // The summary as the pass above wrote it: which shared pods are known reachable.
            true => self.shared_pods(cluster, service).await?,
            false => BTreeMap::new(),
        };
        let allocated = Status::Allocated.to_string();
        let ready = Status::Ready.to_string();
        let mut flipped = Flipped::default();
        let mut reached = BTreeSet::new();
        let mut waiting: Option<String> = None;
        let mut count_waiting = 0;
        for pod in pods {
            let status = pod.annotations.get(annotations::STATUS);
            let Some(held) = by_pod.get(&pod.name) else {
                continue;
            };
            if theirs(&pod) {
                if shared.get(&pod.name).is_none_or(|p| p.ready) {
                    continue; // not allocated for this Service yet, or known reachable
                }
                let health = self.health_of(held).await?;
                if !health.registered {
                    continue; // not ready: no target to wait for (its readiness re-registers it)
                }
                match health.problem {
                    None if reaches(&health, &pod) => {
                        reached.insert(pod.name.clone());
                        flipped.ready += 1;
                    }
                    problem => {
                        count_waiting += 1;
                        let why = problem.unwrap_or_else(|| "its own IP is not healthy".into());
                        waiting.get_or_insert_with(|| format!("pod {}: {why}", pod.name));
                    }
                }
                continue;
            }
            if status == Some(&ready) {
                if pod.gated && !pod.reachable {
                    self.set_gate(cluster, service, &pod, &mut flipped).await?;
                }
                continue;
            }
            if status != Some(&allocated) {
                continue;
            }
            if !pod.annotations.contains_key(annotations::TARGET) && !pod.gated {
                continue; // Not ready: no target to wait for (its readiness re-registers it).
            }
            if pod.gated && !pod.containers_ready {
                count_waiting += 1;
                waiting.get_or_insert_with(|| format!("pod {}: containers not ready", pod.name));
                continue;
            }
            let health = self.health_of(held).await?;
            if let Some(problem) = health.problem {
                count_waiting += 1;
                waiting.get_or_insert_with(|| format!("pod {}: {problem}", pod.name));
                continue;
            }
            if !reaches(&health, &pod) {
                // A healthy target that is not this pod (the IP of the pod it replaced, until
                // the pass above deregisters it) does not make it reachable.
                count_waiting += 1;
                waiting.get_or_insert_with(|| {
                    format!("pod {}: its own IP is not a healthy target yet", pod.name)
                });
                continue;
            }
            let subject = service.for_pod(&pod);
            self.write_ready(cluster, &subject).await?;
            flipped.ready += 1;
            if let Some(created) = pod.created {
                flipped
                    .pod_seconds
                    .push(crate::model::claims::now_epoch() - created);
            }
            if pod.gated && !pod.reachable {
                self.set_gate(cluster, service, &pod, &mut flipped).await?;
            }
        }
        if flipped.ready > 0 {
            // The summary counts the pods now ready.
            self.reconciler
                .ensure_pods_noting(&run, Pass::Recheck, &reached)
                .await?;
        }
        Ok(match waiting {
            Some(why) if count_waiting > 1 => (
                Reach::Waiting(format!(
                    "{count_waiting} pods not reachable yet, e.g. {why}"
                )),
                flipped,
            ),
            Some(why) => (Reach::Waiting(why), flipped),
            None => (Reach::Done, flipped),
        })
    }

    /// The pods of `service`'s summary (as it is now) whose outputs another Service writes.
    async fn shared_pods(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<BTreeMap<String, SharedPod>> {
        let now = cluster
            .service(&service.key.namespace, &service.key.name)
            .await?;
        Ok(now
            .and_then(|s| s.annotations.get(annotations::PODS).cloned())
            .and_then(|json| serde_json::from_str::<PodsSummary>(&json).ok())
            .map(|summary| summary.shared)
            .unwrap_or_default())
    }

    /// Writes status `Ready` on what `subject` stands for, with a `Reachable` Event.
    async fn write_ready(&self, cluster: &dyn Cluster, subject: &ServiceState) -> Result<()> {
        let ready = Status::Ready.to_string();
        let want = |s: &ServiceState| {
            let mut outputs = ServiceOutputs::current(s);
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), ready.clone());
            outputs
        };
        self.reconciler
            .write_and_tell(
                cluster,
                subject,
                &want,
                NoticeKind::Normal,
                "Reachable",
                "every listener has a healthy target",
            )
            .await
    }

    async fn set_gate(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pod: &PodState,
        flipped: &mut Flipped,
    ) -> Result<()> {
        cluster
            .set_pod_reachable(
                &service.key.namespace,
                &pod.name,
                &pod.uid,
                "its NLB target is healthy",
            )
            .await?;
        flipped.gates += 1;
        tracing::info!(service = %service.key, pod = %pod.name, "readiness gate set: reachable");
        Ok(())
    }
}

/// Whether one of `pod`'s own IPs is healthy in every listener's group.
fn reaches(health: &Health, pod: &PodState) -> bool {
    pod.ips.iter().any(|ip| health.healthy_ips.contains(ip))
}

/// Why a listener has no healthy target, from its targets' health.
fn describe(claim: &Claim, targets: &[TargetHealth]) -> String {
    match targets.first() {
        None => format!(
            "listener {}: no target registered (no ready endpoint)",
            claim.key
        ),
        Some(t) => format!(
            "listener {}: target {} is {}{}",
            claim.key,
            t.target,
            t.state,
            t.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    }
}
