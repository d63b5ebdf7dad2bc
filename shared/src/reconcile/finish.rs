//! Rounds two and three of an allocation: the listeners, then targets, records and
//! annotations together.

use std::collections::{BTreeSet, HashMap};

use futures::future::join_all;

use super::fingerprint::{listener_fingerprint, listener_half};
use super::wiring::{Build, Plan, Wired};
use super::{Error, Reconciler, Result};
use crate::annotations::{self, AllocationRecord, AllocationRequest, Status};
use crate::claims::{Claim, RunToken};
use crate::cluster::{Cluster, Notice, NoticeKind, ServiceOutputs};
use crate::elb::TargetGroupSpec;
use crate::failpoint;
use crate::pool::NlbPool;
use crate::service_model::{ListenerKey, ListenerSpec, ServiceState};
use crate::targets::Target;

/// The desired targets of each listener, or why they cannot be resolved.
pub(super) type DesiredTargets =
    HashMap<ListenerKey, std::result::Result<BTreeSet<Target>, String>>;

impl Reconciler {
    /// Makes or repairs each planned listener, then registers targets, records the claims and
    /// writes the annotations. Returns what each listener is now made from (its claim and
    /// fingerprint), for the run to note as it lets the claims go.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish_allocation(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        current: &ServiceState,
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        plans: Vec<Plan>,
        targets: &DesiredTargets,
        tg_spec: &(dyn Fn(&ListenerSpec) -> TargetGroupSpec + Sync),
    ) -> Result<Vec<(Claim, String)>> {
        let made_from = |spec: &ListenerSpec| {
            listener_fingerprint(pool.name(), request, spec, &targets[&spec.key])
        };
        // Whether each claim's NLB balances across zones (a group following it needs no
        // attribute of its own): read with the claims once a minute, fresh after a claim.
        self.fresh_view(pool).await?;
        // Round 2: the listeners (and repairs of what earlier runs made).
        let wired: Vec<Wired> = join_all(plans.into_iter().map(|plan| {
            let spec = specs.iter().find(|s| s.key == plan.claim.key);
            let build = spec.map(|spec| Build {
                group: self.cross_zone_for(
                    tg_spec(spec),
                    pool,
                    std::slice::from_ref(&plan.claim.nlb_arn),
                ),
                tls: request.options.setup_for(spec).tls,
                changed: plan.claim.applied.as_deref().map(listener_half)
                    != Some(listener_half(&made_from(spec))),
            });
            async move {
                match build {
                    Some(build) => self.wire(plan, &build).await,
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
        let holders: BTreeSet<&str> = wired.iter().map(|w| w.claim.nlb_arn.as_str()).collect();
        let dns = self.dns_names_of(pool, &holders).await?;
        let mut records = Vec::with_capacity(specs.len());
        for spec in specs {
            let Some(w) = wired.iter().find(|w| w.claim.key == spec.key) else {
                continue;
            };
            // Never a guess: an address without its DNS name is no address.
            let dns = dns.get(&w.claim.nlb_arn).ok_or_else(|| {
                Error::Conflict(format!(
                    "NLB {}, which holds the claim of port {}, has no DNS name to advertise \
                     (DescribeLoadBalancers does not find it)",
                    w.claim.nlb_arn, w.claim.port
                ))
            })?;
            records.push(AllocationRecord {
                name: spec.name.clone(),
                protocol: spec.protocol,
                service_port: spec.service_port,
                port: w.claim.port,
                nlb_arn: w.claim.nlb_arn.clone(),
                dns: dns.clone(),
                listener_arn: w.listener_arn.clone(),
                target_group_arn: w.target_group_arn.clone(),
                tls: request.options.setup_for(spec).tls.is_some(),
            });
        }
        let target_problem = specs
            .iter()
            .find_map(|s| targets[&s.key].as_ref().err().cloned());
        let mut outputs = ServiceOutputs {
            annotations: annotations::render_allocated(&records),
            finalizer: true,
        };
        if current.pod.is_some()
            && let Some(ip) = registered_ip(specs, targets)
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
        // Targets and records first: the annotations advertise only claims this run holds
        // and has recorded as active (the record's condition proves both).
        let finish = join_all(wired.iter().map(|w| {
            let desired = targets[&w.claim.key].clone().unwrap_or_default();
            self.finish_listener(token, w, desired)
        }));
        finish.await.into_iter().collect::<Result<Vec<()>>>()?;
        let advertised: Vec<_> = wired.iter().map(|w| w.claim.clone()).collect();
        let notice = Notice {
            kind,
            reason,
            note,
            once: None,
        };
        self.advertise(token, cluster, current, &advertised, &outputs, notice)
            .await?;
        if current.pod.is_none()
            && !current.annotations.contains_key(annotations::ADDRESS)
            && let Some(created) = current.created
        {
            // Its first address: the latency a player's room waited for it.
            self.measure()
                .service_address_seconds
                .push(crate::claims::now_epoch() - created);
        }
        self.failpoints.check(failpoint::ENSURE_AFTER_OUTPUTS)?;
        // What each listener is now made from, for the next event to compare with.
        Ok(specs
            .iter()
            .filter_map(|spec| {
                let w = wired.iter().find(|w| w.claim.key == spec.key)?;
                Some((w.claim.clone(), made_from(spec)))
            })
            .collect())
    }
}

/// The pod IP registered as the first listener's target, if any.
fn registered_ip(specs: &[ListenerSpec], targets: &DesiredTargets) -> Option<String> {
    let first = specs.first()?;
    let t = targets.get(&first.key)?.as_ref().ok()?.iter().next()?;
    Some(t.ip.to_string())
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
