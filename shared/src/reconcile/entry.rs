//! The entry points: read the Service and its slices, decide, and hand the run to the step
//! that carries it out.

use super::decide::Decision;
use super::outcome::Outcome;
use super::reconciler::{Reconciler, service_key};
use super::run::Run;
use super::{Result, per_pod};
use crate::contract::annotations::{self, Mode};
use crate::model::claims::RunToken;
use crate::model::cluster::{Cluster, Written};
use crate::model::targets::without_targets;

impl Reconciler {
    /// Brings the Service `namespace/name` and its listeners in line as a run of its own (a
    /// random token), checking every listener against AWS even when nothing asked for changed:
    /// the sweep's way, which finds what changed in AWS behind the system's back.
    pub async fn reconcile_service(
        &self,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
        event_uid: Option<&str>,
    ) -> Result<Outcome> {
        let token = RunToken::random();
        let service = (namespace, name, event_uid);
        self.counted_pass(&token, cluster, service, per_pod::Pass::Thorough)
            .await
    }

    /// Brings the Service `namespace/name` and its listeners in line: allocates, repairs or
    /// releases, as the run `token`. `event_uid`, when given, is the uid the event saw: if the
    /// Service is gone or now has another uid, that earlier object's claims are released.
    /// The events' way: a listener made from what is asked for now (its claim's fingerprint,
    /// see `fingerprint`) and advertised as such costs no ELBv2 call.
    pub async fn reconcile_service_as(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
        event_uid: Option<&str>,
    ) -> Result<Outcome> {
        let service = (namespace, name, event_uid);
        self.counted_pass(token, cluster, service, per_pod::Pass::Changed)
            .await
    }

    /// A pass over Service `(namespace, name, event uid)`, counted among the run metrics.
    async fn counted_pass(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        (namespace, name, event_uid): (&str, &str, Option<&str>),
        pass: per_pod::Pass,
    ) -> Result<Outcome> {
        let outcome = self
            .reconcile_pass(token, cluster, namespace, name, event_uid, pass)
            .await;
        self.tally(&outcome);
        outcome
    }

    /// [`Reconciler::reconcile_service_as`], going over a per-pod Service's pods as `pass` says:
    /// every pod checked against AWS, or only those whose outputs do not already say what they
    /// hold (a Service woken because ports are free again: its waiting pods are the news).
    pub(super) async fn reconcile_pass(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
        event_uid: Option<&str>,
        pass: per_pod::Pass,
    ) -> Result<Outcome> {
        let (service, slices) = tokio::join!(
            cluster.service(namespace, name),
            cluster.endpoint_slices(namespace, name)
        );
        let service = service?;
        let mut released_orphans = 0;
        if let Some(uid) = event_uid
            && service.as_ref().map(|s| s.uid.as_str()) != Some(uid)
        {
            released_orphans = self
                .release_uid_as(token, cluster, uid, &service_key(self, namespace, name))
                .await?;
        }
        let Some(service) = service else {
            return Ok(match released_orphans {
                0 => Outcome::Nothing("the Service does not exist"),
                n => Outcome::Released { listeners: n },
            });
        };
        match self.decide(&service) {
            Decision::Release => self.release_service(token, cluster, &service).await,
            Decision::Reject(reason, message) => {
                self.reject(cluster, &service, reason, message).await
            }
            Decision::Ensure(request, specs) if request.mode == Mode::PerPod => {
                let pool = self.pool(&request.pool)?.clone();
                if let Err(e) = self.preflight(&pool, &request).await? {
                    return self
                        .reject(cluster, &service, "InvalidAnnotation", e.to_string())
                        .await;
                }
                let screened = self.screen(&service, slices?);
                let run = Run {
                    token,
                    cluster,
                    service: &service,
                    pool: &pool,
                    request: &request,
                    specs: &specs,
                    slices: &screened.trusted,
                };
                let (outcome, reported) = tokio::join!(
                    self.ensure_pods(&run, pass),
                    self.report_rejections(cluster, &service, &screened.rejections)
                );
                reported?;
                outcome
            }
            Decision::Ensure(request, specs) => {
                let pool = self.pool(&request.pool)?.clone();
                let screened = self.screen(&service, slices?);
                let service = if service.annotations.contains_key(annotations::PODS) {
                    // Switched from per-pod mode: the pods' listeners go first.
                    match self.release_pods(token, cluster, &service).await? {
                        Written::Done(after) => *after,
                        Written::Gone => {
                            return Ok(Outcome::Nothing("the Service was deleted meanwhile"));
                        }
                    }
                } else {
                    service
                };
                let trusted = self
                    .admit_gated(cluster, &service, screened.trusted)
                    .await?;
                // Taken out of its listeners: the claims and listeners stay, with no target.
                let trusted = match request.network_disabled {
                    true => without_targets(trusted),
                    false => trusted,
                };
                if pass != per_pod::Pass::Thorough
                    && self
                        .already_made(&service, &pool, &request, &specs, &trusted)
                        .await?
                {
                    // Nothing asked for changed since the listeners were made: no ELBv2 call.
                    // (A slice left out is still told, once, as on the full pass.)
                    self.report_rejections(cluster, &service, &screened.rejections)
                        .await?;
                    return Ok(Outcome::Allocated {
                        listeners: specs.len(),
                        claimed: 0,
                    });
                }
                if let Err(e) = self.preflight(&pool, &request).await? {
                    return self
                        .reject(cluster, &service, "InvalidAnnotation", e.to_string())
                        .await;
                }
                // After the no-op check: targets made before were the pods' (checked then),
                // so an unchanged Service costs no pod read.
                let (trusted, not_pods) = self.own_pods_only(cluster, &service, trusted).await?;
                let rejections = [screened.rejections, not_pods].concat();
                let run = Run {
                    token,
                    cluster,
                    service: &service,
                    pool: &pool,
                    request: &request,
                    specs: &specs,
                    slices: &trusted,
                };
                let (outcome, reported) = tokio::join!(
                    self.ensure(&run),
                    self.report_rejections(cluster, &service, &rejections)
                );
                let outcome = outcome?;
                reported?;
                self.after_allocation(&pool, &service, specs.len(), &outcome)
                    .await;
                // With no ready endpoint there is no target to wait for: nothing to check.
                let targets = trusted.iter().any(|s| !s.ready.is_empty());
                if let Outcome::Allocated { claimed, .. } = outcome
                    && targets
                    && (claimed > 0
                        || service
                            .annotations
                            .get(annotations::STATUS)
                            .map(String::as_str)
                            != Some("Ready"))
                {
                    self.note_check(&service).await;
                }
                Ok(outcome)
            }
        }
    }
}
