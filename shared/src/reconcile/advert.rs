//! What a Service advertises (its output annotations) and when: only ports it holds.
//!
//! A port is free for another Service only once its claim is released, and a claim is released
//! only by the run that holds it. So:
//! - a run advertises only claims it holds and has just recorded as active, with a write
//!   conditional on the Service being as read; when the Service changed under it, it reads
//!   again and checks it still holds every claim before writing (never re-applies an old
//!   read);
//! - a run releasing claims first takes them out of the annotations, then releases them;
//! - a run that learns it was overtaken after writing takes back what no claim supports.

use std::collections::BTreeSet;

use super::plan::Plan;
use super::run::Run;
use super::wiring::Wired;
use super::writes::{WRITE_ATTEMPTS, still_conflicting};
use super::{Error, Reconciler, Result};
use crate::contract::annotations::{self, ALLOCATIONS, AllocationRecord, OUTPUT_KEYS, STATUS};
use crate::contract::service_model::ServiceState;
use crate::model::claims::{Claim, RunToken};
use crate::model::cluster::{Cluster, Notice, Patched, ServiceOutputs, Written};

/// The records a Service advertises; `None` when its annotations cannot be read as records
/// (then nothing it advertises can be trusted).
fn advertised(service: &ServiceState) -> Option<Vec<AllocationRecord>> {
    match service.annotations.get(ALLOCATIONS) {
        Some(json) => serde_json::from_str(json).ok(),
        None if OUTPUT_KEYS
            .iter()
            .any(|k| *k != STATUS && service.annotations.contains_key(*k)) =>
        {
            None
        }
        None => Some(vec![]),
    }
}

/// The outputs of `service` without the records `keep` refuses (its status and finalizer as
/// they are).
fn outputs_keeping(
    service: &ServiceState,
    keep: &dyn Fn(&AllocationRecord) -> bool,
) -> ServiceOutputs {
    let current = ServiceOutputs::current(service);
    let records = advertised(service);
    if records.as_ref().is_some_and(|r| r.iter().all(keep)) {
        return current;
    }
    let kept: Vec<AllocationRecord> = records
        .unwrap_or_default()
        .into_iter()
        .filter(keep)
        .collect();
    let mut annotations = if kept.is_empty() {
        Default::default()
    } else {
        annotations::render_allocated(&kept)
    };
    annotations.remove(STATUS);
    if let Some(status) = service.annotations.get(STATUS) {
        annotations.insert(STATUS.to_owned(), status.clone());
    }
    ServiceOutputs {
        annotations,
        finalizer: current.finalizer,
    }
}

fn names(record: &AllocationRecord, claim: &Claim) -> bool {
    record.nlb_arn == claim.nlb_arn && record.port == claim.port
}

impl Reconciler {
    /// Takes the ports of `claims` out of what the Service advertises, before they are
    /// released. Writes nothing when it does not advertise them.
    pub(super) async fn unadvertise(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        claims: &[Claim],
    ) -> Result<Written> {
        let keep = |r: &AllocationRecord| !claims.iter().any(|c| names(r, c));
        self.write_with(cluster, service, &|s| outputs_keeping(s, &keep))
            .await
    }

    /// After learning it was overtaken: takes back every advertised port that no claim of the
    /// Service supports now.
    pub(super) async fn withdraw_advert(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<()> {
        let claims = self.claims_for(service).await?;
        let Some(current) = self.reread(cluster, service).await? else {
            return Ok(());
        };
        let keep = |r: &AllocationRecord| claims.iter().any(|c| names(r, c));
        self.write_with(cluster, &current, &|s| outputs_keeping(s, &keep))
            .await?;
        Ok(())
    }

    /// Round 3's records: one per listener made, in the order of the Service's ports, each
    /// naming its NLB's DNS name (never a guess: an address without it is no address).
    pub(super) async fn records_of(
        &self,
        run: &Run<'_>,
        plan: &Plan<'_>,
        wired: &[Wired],
    ) -> Result<Vec<AllocationRecord>> {
        let holders: BTreeSet<&str> = wired.iter().map(|w| w.claim.nlb_arn.as_str()).collect();
        let dns = self.dns_names_of(run.pool, &holders).await?;
        let mut records = Vec::with_capacity(plan.listeners.len());
        for listener in &plan.listeners {
            let Some(w) = wired.iter().find(|w| w.claim.key == listener.spec.key) else {
                continue;
            };
            let dns = dns.get(&w.claim.nlb_arn).ok_or_else(|| {
                Error::Conflict(format!(
                    "NLB {}, which holds the claim of port {}, has no DNS name to advertise \
                     (DescribeLoadBalancers does not find it)",
                    w.claim.nlb_arn, w.claim.port
                ))
            })?;
            records.push(listener.record(&w.claim, &w.listener_arn, &w.target_group_arn, dns));
        }
        Ok(records)
    }

    /// Round 3's advert, once the targets are registered and the claims recorded: the outputs
    /// `plan` makes of `records`, which advertise the claims of `wired`.
    pub(super) async fn advertise_allocation(
        &self,
        run: &Run<'_>,
        plan: &Plan<'_>,
        wired: &[Wired],
        records: &[AllocationRecord],
    ) -> Result<()> {
        let current = run.service;
        let (outputs, notice) = plan.outputs(current, records);
        let advertised: Vec<Claim> = wired.iter().map(|w| w.claim.clone()).collect();
        self.advertise(run, &advertised, &outputs, notice).await?;
        if current.pod.is_none()
            && !current.annotations.contains_key(annotations::ADDRESS)
            && let Some(created) = current.created
        {
            // Its first address: the latency a player's room waited for it.
            self.measure()
                .service_address_seconds
                .push(crate::model::claims::now_epoch() - created);
        }
        Ok(())
    }

    /// Writes `outputs`, which advertise `claims` (held by `run`'s token and just recorded as
    /// active), on `run`'s Service and publishes an Event when the status changes.
    async fn advertise(
        &self,
        run: &Run<'_>,
        claims: &[Claim],
        outputs: &ServiceOutputs,
        notice: Notice,
    ) -> Result<()> {
        let (token, cluster, service) = (run.token, run.cluster, run.service);
        let mut current = service.clone();
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                current = match self.reread(cluster, service).await? {
                    Some(s) => s,
                    None => return Ok(()),
                };
                self.check_still_held(token, service, claims).await?;
            }
            match cluster
                .write_outputs_if_unchanged(&current, outputs)
                .await?
            {
                Patched::Done(_) => {
                    if current.annotations.get(STATUS) != outputs.annotations.get(STATUS) {
                        cluster.publish(&current, &notice).await?;
                    }
                    return Ok(());
                }
                // Deleted meanwhile: its release is the deletion's business.
                Patched::Gone => return Ok(()),
                Patched::Changed => {}
            }
        }
        Err(still_conflicting(service))
    }

    /// Fails unless `token`'s run still holds every one of `claims` on the same port.
    async fn check_still_held(
        &self,
        token: &RunToken,
        service: &ServiceState,
        claims: &[Claim],
    ) -> Result<()> {
        let now = self.claims_for(service).await?;
        let lost = claims.iter().find(|c| {
            !now.iter().any(|n| {
                n.key == c.key && n.nlb_arn == c.nlb_arn && n.port == c.port && n.held_by(token)
            })
        });
        match lost {
            Some(c) => Err(Error::Conflict(format!(
                "{} {}: this run no longer holds its claim on port {}; not advertising it",
                service.key, c.key, c.port
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::annotations::{ADDRESS, ALLOCATED_PORT};
    use crate::contract::protocol::ListenerProtocol;

    fn record(port: u16) -> AllocationRecord {
        AllocationRecord {
            name: format!("p{port}"),
            protocol: ListenerProtocol::Tcp,
            service_port: port,
            port,
            nlb_arn: "arn:nlb".into(),
            dns: "nlb.elb".into(),
            listener_arn: format!("arn:l{port}"),
            target_group_arn: format!("arn:t{port}"),
            tls: false,
        }
    }

    fn service(records: &[AllocationRecord]) -> ServiceState {
        let mut s = ServiceState {
            created: None,
            key: crate::contract::event::ServiceKey {
                cluster: "c".into(),
                namespace: "n".into(),
                name: "s".into(),
            },
            uid: "u".into(),
            resource_version: "1".into(),
            deleting: false,
            finalizers: vec![annotations::FINALIZER.into()],
            annotations: annotations::render_allocated(records),
            ports: vec![],
            external_name: false,
            selector: Default::default(),
            pod: None,
        };
        s.annotations.insert("team/x".into(), "kept".into());
        s
    }

    #[test]
    fn only_refused_records_are_taken_out() {
        let s = service(&[record(1), record(2)]);
        let out = outputs_keeping(&s, &|r| r.port != 1);
        assert_eq!(
            out.annotations.get(ALLOCATED_PORT).map(String::as_str),
            Some("2")
        );
        assert_eq!(
            out.annotations.get(ADDRESS).map(String::as_str),
            Some("nlb.elb:2")
        );
        assert_eq!(
            out.annotations.get(STATUS).map(String::as_str),
            Some("Allocated")
        );
        assert!(out.finalizer);
        assert_eq!(outputs_keeping(&s, &|_| true), ServiceOutputs::current(&s));
    }

    #[test]
    fn the_last_record_out_leaves_only_the_status() {
        let s = service(&[record(1)]);
        let out = outputs_keeping(&s, &|_| false);
        assert_eq!(out.annotations.keys().collect::<Vec<_>>(), [STATUS]);
    }

    #[test]
    fn unreadable_records_are_all_taken_out() {
        let mut s = service(&[record(1)]);
        s.annotations.insert(ALLOCATIONS.into(), "not json".into());
        let out = outputs_keeping(&s, &|_| true);
        assert_eq!(out.annotations.keys().collect::<Vec<_>>(), [STATUS]);
    }
}
