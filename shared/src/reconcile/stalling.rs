//! Test doubles that stall one run at a chosen step until the test lets it go on, so a test
//! can run another run in between (as if the first were paused past the grace).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::adapters::memory::{MemoryClaimStore, MemoryCluster};
use crate::contract::annotations;
use crate::contract::service_model::ServiceState;
use crate::model::claims::{
    Claim, ClaimError, ClaimStore, HoldError, NlbTerms, NlbUsage, PortHolder, ReleaseError,
    RunToken, StoreError, TableIdentity, TakeOverError,
};
use crate::model::cluster::{Cluster, KubeError, Notice, Patched, ServiceOutputs, Written};
use crate::model::targets::SliceView;

/// A claim store that stops `record_resources` until a permit is given: a run that stalls.
pub(super) struct StallingStore {
    pub inner: Arc<MemoryClaimStore>,
    pub gate: Semaphore,
}

#[async_trait]
impl ClaimStore for StallingStore {
    async fn claims_of(&self, uid: &str) -> Result<Vec<Claim>, StoreError> {
        self.inner.claims_of(uid).await
    }
    async fn claim(&self, claims: &[Claim], quota: NlbTerms) -> Result<(), ClaimError> {
        self.inner.claim(claims, quota).await
    }
    async fn note_gone(&self, claims: &[Claim], since: Option<i64>) -> Result<(), StoreError> {
        self.inner.note_gone(claims, since).await
    }
    async fn note_applied(&self, applied: &[(Claim, String)]) -> Result<(), StoreError> {
        self.inner.note_applied(applied).await
    }
    async fn take_over(
        &self,
        claims: &[Claim],
        token: &RunToken,
        now: i64,
        stale_before: i64,
    ) -> Result<(), TakeOverError> {
        self.inner.take_over(claims, token, now, stale_before).await
    }
    async fn record_resources(
        &self,
        claim: &Claim,
        token: &RunToken,
        l: &str,
        t: &str,
        now: i64,
    ) -> Result<(), HoldError> {
        let _permit = self.gate.acquire().await.expect("gate");
        self.inner.record_resources(claim, token, l, t, now).await
    }
    async fn let_go(&self, claims: &[Claim], token: &RunToken) -> Result<(), HoldError> {
        self.inner.let_go(claims, token).await
    }
    async fn release(&self, claims: &[Claim], token: &RunToken) -> Result<(), ReleaseError> {
        self.inner.release(claims, token).await
    }
    async fn record_listing(
        &self,
        nlb: &str,
        listing: &crate::model::claims::NlbListing,
        made: bool,
    ) -> Result<(), StoreError> {
        self.inner.record_listing(nlb, listing, made).await
    }
    async fn nlb_usage(&self, arns: &[String]) -> Result<Vec<NlbUsage>, StoreError> {
        self.inner.nlb_usage(arns).await
    }
    async fn port_holders(&self, nlb: &str) -> Result<Vec<PortHolder>, StoreError> {
        self.inner.port_holders(nlb).await
    }
    async fn key_hold(
        &self,
        key: &str,
    ) -> Result<Option<crate::model::claims::KeyHold>, crate::model::claims::StoreError> {
        self.inner.key_hold(key).await
    }
    async fn take_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<crate::model::claims::KeyHold, crate::model::claims::StoreError> {
        self.inner.take_key(key, owner).await
    }
    async fn offer_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
        offered_at: Option<i64>,
    ) -> Result<bool, crate::model::claims::StoreError> {
        self.inner.offer_key(key, owner, offered_at).await
    }
    async fn hand_over(
        &self,
        hold: &crate::model::claims::KeyHold,
        from: &[crate::model::claims::Claim],
        to: &[crate::model::claims::Claim],
    ) -> Result<bool, crate::model::claims::StoreError> {
        self.inner.hand_over(hold, from, to).await
    }
    async fn drop_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<(), crate::model::claims::StoreError> {
        self.inner.drop_key(key, owner).await
    }
    async fn identities(&self) -> Result<Vec<TableIdentity>, StoreError> {
        self.inner.identities().await
    }
    async fn record_identity(&self, identity: &TableIdentity) -> Result<TableIdentity, StoreError> {
        self.inner.record_identity(identity).await
    }
}

/// A cluster that stops writes of outputs advertising a port until a permit is given.
pub(super) struct StallingCluster {
    pub inner: Arc<MemoryCluster>,
    pub gate: Semaphore,
    pub waiting: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Cluster for StallingCluster {
    async fn cluster_uid(&self) -> Result<String, KubeError> {
        self.inner.cluster_uid().await
    }
    async fn service(&self, ns: &str, name: &str) -> Result<Option<ServiceState>, KubeError> {
        self.inner.service(ns, name).await
    }
    async fn endpoint_slices(&self, ns: &str, name: &str) -> Result<Vec<SliceView>, KubeError> {
        self.inner.endpoint_slices(ns, name).await
    }
    async fn write_outputs(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Written, KubeError> {
        self.inner.write_outputs(service, outputs).await
    }
    async fn write_outputs_if_unchanged(
        &self,
        service: &ServiceState,
        outputs: &ServiceOutputs,
    ) -> Result<Patched, KubeError> {
        if outputs.annotations.contains_key(annotations::ALLOCATIONS) {
            self.waiting
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let _permit = self.gate.acquire().await.expect("gate");
        }
        self.inner
            .write_outputs_if_unchanged(service, outputs)
            .await
    }
    async fn publish(&self, service: &ServiceState, notice: &Notice) -> Result<(), KubeError> {
        self.inner.publish(service, notice).await
    }
    async fn services_of_interest(&self) -> Result<Vec<ServiceState>, KubeError> {
        self.inner.services_of_interest().await
    }
    async fn pods(
        &self,
        ns: &str,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<crate::contract::service_model::PodState>, KubeError> {
        self.inner.pods(ns, selector).await
    }
    async fn set_pod_reachable(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        message: &str,
    ) -> Result<(), KubeError> {
        self.inner.set_pod_reachable(ns, name, uid, message).await
    }
    async fn pod(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<crate::contract::service_model::PodState>, KubeError> {
        self.inner.pod(ns, name).await
    }
}
