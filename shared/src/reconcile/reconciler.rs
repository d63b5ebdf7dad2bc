//! The reconciler: the clients, settings and caches every entry point shares, and how it is
//! built.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::allocator::PoolView;
use super::checked_cache::CheckedCache;
use super::elastic::{GrowthSignal, MemberCache};
use super::identity_cache::IdentityCache;
use super::outcome::{Outcome, RunMetrics};
use super::reachable::ReachSettings;
use super::{Error, Result};
use crate::model::claims::{ClaimStore, PoolRecords};
use crate::model::elb::LoadBalancing;
use crate::model::pool::{NlbPool, PoolSet};
use crate::model::target_policy::TargetPolicy;

/// Everything a reconcile needs besides the Kubernetes client (which the caller passes per
/// invocation, since an EKS client is rebuilt when its token ages).
pub struct Reconciler {
    pub(super) cluster_name: String,
    /// The other clusters sharing the claims table and pools (`SHARED_CLUSTERS`).
    pub(super) shared_clusters: Vec<String>,
    pub(super) vpc_id: String,
    pub(super) pools: PoolSet,
    pub(super) store: Arc<dyn ClaimStore>,
    pub(super) elb: Arc<dyn LoadBalancing>,
    pub(super) claim_grace: Duration,
    pub(super) view: PoolView,
    pub(super) dns_names: Mutex<HashMap<String, String>>,
    pub(super) failpoints: crate::reconcile::failpoint::Failpoints,
    pub(super) stack_id: String,
    pub(super) identity: Mutex<IdentityCache>,
    pub(super) targets: TargetPolicy,
    pub(super) records: Option<Arc<dyn PoolRecords>>,
    pub(super) signal: Option<Arc<dyn GrowthSignal>>,
    pub(super) members: MemberCache,
    pub(super) checks: Option<Arc<dyn crate::model::claims::CheckRecords>>,
    pub(super) reach: ReachSettings,
    /// Where a TLS listener's certificates are looked up before it is made; without one they
    /// are not checked (AWS then refuses a bad one at CreateListener).
    pub(super) certificates: Option<Arc<dyn crate::model::certificates::CertificateLookup>>,
    /// Certificates and security policies found good lately.
    pub(super) checked: CheckedCache,
    /// Seconds from creation to address of the pods allocated since last taken (a metric).
    pub(super) measured: std::sync::Mutex<RunMetrics>,
}

/// The stack id of a reconciler not given one (`STACK_ID` unset: local runs and tests).
pub const DEFAULT_STACK_ID: &str = "local";

/// The key of Service `namespace/name` in the reconciler's cluster.
pub(super) fn service_key(
    reconciler: &Reconciler,
    namespace: &str,
    name: &str,
) -> crate::contract::event::ServiceKey {
    crate::model::cluster::service_key(&reconciler.cluster_name, namespace, name)
}

/// How long a claim may stay unfinished before another run takes it over: longer than any
/// function runs, so a live handler is never overtaken.
pub const DEFAULT_CLAIM_GRACE: Duration = Duration::from_secs(120);

impl Reconciler {
    /// A reconciler for `cluster_name`, making target groups in `vpc_id`.
    pub fn new(
        cluster_name: impl Into<String>,
        vpc_id: impl Into<String>,
        pools: PoolSet,
        store: Arc<dyn ClaimStore>,
        elb: Arc<dyn LoadBalancing>,
    ) -> Self {
        Self {
            cluster_name: cluster_name.into(),
            shared_clusters: Vec::new(),
            vpc_id: vpc_id.into(),
            pools,
            store,
            elb,
            claim_grace: DEFAULT_CLAIM_GRACE,
            view: PoolView::default(),
            dns_names: Mutex::new(HashMap::new()),
            failpoints: crate::reconcile::failpoint::Failpoints::default(),
            stack_id: DEFAULT_STACK_ID.to_owned(),
            identity: Mutex::new(IdentityCache::default()),
            targets: TargetPolicy::default(),
            records: None,
            signal: None,
            members: MemberCache::default(),
            checks: None,
            reach: ReachSettings::default(),
            certificates: None,
            checked: CheckedCache::default(),
            measured: std::sync::Mutex::new(RunMetrics::default()),
        }
    }

    /// Looks up TLS listeners' certificates in `lookup` before making them.
    pub fn with_certificates(
        mut self,
        lookup: Arc<dyn crate::model::certificates::CertificateLookup>,
    ) -> Self {
        self.certificates = Some(lookup);
        self
    }

    /// Overrides [`DEFAULT_CLAIM_GRACE`].
    pub fn with_claim_grace(mut self, grace: Duration) -> Self {
        self.claim_grace = grace;
        self
    }

    /// Takes what this instance measured since the last call, for the functions' metrics
    /// (`ServiceAddressSeconds`, `PodAddressSeconds`, the allocation outcomes).
    pub fn take_run_metrics(&self) -> RunMetrics {
        std::mem::take(&mut *self.measure())
    }

    pub(super) fn measure(&self) -> std::sync::MutexGuard<'_, RunMetrics> {
        self.measured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `outcome` among the allocation outcomes.
    pub(super) fn tally(&self, outcome: &Result<Outcome>) {
        let mut m = self.measure();
        match outcome {
            Ok(Outcome::Allocated { claimed, .. }) if *claimed > 0 => m.allocations_made += 1,
            Ok(Outcome::Pending(_)) => m.allocations_pending += 1,
            Ok(Outcome::Rejected(_)) => m.allocations_refused += 1,
            Ok(Outcome::Released { listeners }) if *listeners > 0 => m.releases += 1,
            // Per-pod: pods given ports are counted as they are (with their latency).
            Ok(Outcome::Pods {
                pending, released, ..
            }) => {
                m.allocations_pending += pending;
                m.releases += released;
            }
            _ => {}
        }
    }

    /// The failpoints of this reconciler (armed only in tests built with `failpoints`).
    pub fn failpoints(&self) -> &crate::reconcile::failpoint::Failpoints {
        &self.failpoints
    }

    /// The configured pools.
    pub fn pools(&self) -> &PoolSet {
        &self.pools
    }

    /// The cluster this reconciler acts for.
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    pub(super) fn pool(&self, name: &str) -> Result<&NlbPool> {
        // decide() has checked the name; a miss here is a bug, reported rather than panicked.
        self.pools
            .get(name)
            .ok_or_else(|| Error::Setup(format!("pool {name} is not configured")))
    }
}
