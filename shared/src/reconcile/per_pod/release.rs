//! Releasing pods' ports: one gone pod's after its grace, every pod's when the Service leaves
//! per-pod mode, and the Service's own at a switch to it. A pod's outputs go before its ports
//! are free, and only when they are this Service's (see [`crate::model::cluster::pod_outputs`]): the
//! release of a Service whose pods carry another's outputs leaves those alone.

use std::collections::BTreeSet;

use super::super::holding::{Held, Holding};
use super::super::{Error, Reconciler, Result};
use crate::contract::service_model::ServiceState;
use crate::model::claims::{Claim, RunToken};
use crate::model::cluster::{Cluster, ServiceOutputs, Written};

impl Reconciler {
    /// The state standing for pod `pod` of `service`: the pod as it is, or, when no pod of that
    /// name exists, a state with nothing to write to.
    pub(super) async fn pod_subject(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        pod: &str,
    ) -> Result<Option<ServiceState>> {
        Ok(cluster
            .pod(&service.key.namespace, pod)
            .await?
            .map(|p| service.for_pod(&p)))
    }

    /// Releases a pod's claims (its outputs removed first when the pod exists and they are this
    /// Service's); another run on them leaves them be. Returns how many were released.
    pub(super) async fn release_pod_claims(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        subject: &Option<ServiceState>,
        claims: Vec<Claim>,
    ) -> Result<usize> {
        let Some(first) = claims.first() else {
            return Ok(0);
        };
        let key = first.owner.key.clone();
        let mut holding = Holding::new(token);
        let result = async {
            let mut held = claims;
            if self.hold(&mut holding, &key, &mut held).await? == Held::Reread {
                return Ok(0); // Changed hands: the next run judges again.
            }
            if let Some(subject) = subject {
                self.write_with(cluster, subject, &|_| ServiceOutputs::default())
                    .await?;
            }
            self.release_claims(token, &held).await?;
            holding.forget(&held);
            Ok(held.len())
        }
        .await;
        match self.let_go_after_release(result, &holding).await {
            Err(Error::Busy { .. }) => Ok(0),
            other => other,
        }
    }

    /// Releases claims of what `subject` stands for (the Service's own listeners, at a switch
    /// to per-pod mode), unadvertised first.
    pub(in crate::reconcile) async fn release_subject(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        subject: &ServiceState,
        claims: Vec<Claim>,
    ) -> Result<Written> {
        let mut holding = Holding::new(token);
        let result = async {
            let mut held = claims;
            if self.hold(&mut holding, &subject.key, &mut held).await? == Held::Reread {
                held = self.claims_for(subject).await?;
                if self.hold(&mut holding, &subject.key, &mut held).await? == Held::Reread {
                    return Err(Error::Conflict(format!(
                        "the claims of {} kept changing hands while being released",
                        subject.key
                    )));
                }
            }
            let written = self.unadvertise(cluster, subject, &held).await?;
            self.release_claims(token, &held).await?;
            holding.forget(&held);
            Ok(written)
        }
        .await;
        self.let_go_after_release(result, &holding).await
    }

    /// Releases every pod's claims of `service` (switched to per-Service mode), their outputs
    /// removed first, and drops the Service's summary.
    pub(in crate::reconcile) async fn release_pods(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<Written> {
        let mut claims = self.store.claims_of(&service.uid).await?;
        claims.retain(|c| c.owner.pod.is_some());
        let mut holding = Holding::new(token);
        let result = async {
            if self.hold(&mut holding, &service.key, &mut claims).await? == Held::Reread {
                return Err(Error::Conflict(format!(
                    "the pods' claims of {} changed hands while being released",
                    service.key
                )));
            }
            self.clear_pods(cluster, service, &claims).await?;
            self.release_claims(token, &claims).await?;
            holding.forget(&claims);
            let mut drop_summary = ServiceOutputs::current(service);
            drop_summary
                .annotations
                .remove(crate::contract::annotations::PODS);
            self.write_with(cluster, service, &|_| drop_summary.clone())
                .await
        }
        .await;
        self.let_go_after_release(result, &holding).await
    }

    /// Takes every output of `service` off its pods (those that hold `claims` or carry
    /// outputs), before the claims are released with the Service. A pod whose outputs another
    /// Service wrote keeps them: the write is nothing there ([`crate::model::cluster::pod_outputs`]),
    /// and a pod cleared here names no owner, so another Service over it takes it next.
    pub(in crate::reconcile) async fn clear_pods(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        claims: &[Claim],
    ) -> Result<()> {
        let mut names: BTreeSet<String> =
            claims.iter().filter_map(|c| c.owner.pod.clone()).collect();
        for p in cluster
            .pods(&service.key.namespace, &service.selector)
            .await?
        {
            if crate::contract::annotations::OUTPUT_KEYS
                .iter()
                .any(|k| p.annotations.contains_key(*k))
            {
                names.insert(p.name);
            }
        }
        for name in names {
            if let Some(subject) = self.pod_subject(cluster, service, &name).await? {
                self.write_with(cluster, &subject, &|_| ServiceOutputs::default())
                    .await?;
            }
        }
        Ok(())
    }
}
