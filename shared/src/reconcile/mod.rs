//! Driving AWS toward what a Service asks for (level-triggered).
//!
//! Every entry point re-reads the Service from the Kubernetes API; the event that triggered
//! it only names the Service. Duplicated, late or reordered events therefore converge to the
//! same state, and a run killed between any two steps leaves claims and tagged resources that
//! the next run (or the sweep) finishes or undoes.

mod advert;
mod allocator;
mod claiming;
mod elastic;
mod ensure;
mod error;
mod fingerprint;
mod finish;
mod holding;
mod identity;
mod options;
mod per_pod;
mod quotas;
mod reachable;
mod release;
mod screening;
mod sweep;
mod sweep_groups;
mod sweep_listing;
mod sweep_share;
mod sync_targets;
mod wiring;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

pub use allocator::{Placement, PoolView};
pub use elastic::{GrowthSignal, PoolReport, TendSettings};
pub use error::{Error, Result};
pub use identity::Ownership;
pub use reachable::{ReachReport, ReachSettings};
pub use sweep::{DEFAULT_MAX_DELETIONS, PoolUse, SweepLimits, SweepReport};

use crate::annotations::{self, AllocationRequest, Mode, Status};
use crate::claims::{Claim, ClaimStore, Owner, PoolRecords, RunToken};
use crate::cluster::{Cluster, KubeError, Notice, NoticeKind, Patched, ServiceOutputs, Written};
use crate::elb::{LoadBalancing, NlbFleet};
use crate::pool::{NlbPool, PoolSet};
use crate::service_model::{ListenerSpec, ServiceState, listener_specs};
use crate::target_policy::TargetPolicy;

/// What a reconcile did, for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every listener exists; `claimed` of them were claimed by this run.
    Allocated {
        /// Listeners of the Service.
        listeners: usize,
        /// Claimed by this run.
        claimed: usize,
    },
    /// No free port in the pool: the Service waits (status `Pending`).
    Pending(String),
    /// The Service asks for something invalid (status `Error`, Warning Event).
    Rejected(String),
    /// The Service's listeners were released.
    Released {
        /// How many.
        listeners: usize,
    },
    /// Targets were brought in line with the endpoints.
    TargetsSynced {
        /// Registered.
        registered: usize,
        /// Deregistered.
        deregistered: usize,
    },
    /// A per-pod Service's pods were brought in line.
    Pods {
        /// Pods whose listeners exist.
        allocated: usize,
        /// Pods waiting for ports.
        pending: usize,
        /// Pods gone, their ports kept for the grace.
        leaving: usize,
        /// Ports released because their pod was gone longer than the grace.
        released: usize,
    },
    /// Nothing to do (not opted in and holding nothing, or gone).
    Nothing(&'static str),
}

/// What one instance measured since its metrics were last printed (see
/// [`Reconciler::take_run_metrics`] and `crate::metrics::run_lines`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMetrics {
    /// Per Service given its first address: seconds from its creation.
    pub service_address_seconds: Vec<i64>,
    /// Per pod given its first address (per-pod mode): seconds from its creation.
    pub pod_address_seconds: Vec<i64>,
    /// Services (and per-pod pods) given ports.
    pub allocations_made: usize,
    /// Reconciles that left a Service (or pods) waiting for a port.
    pub allocations_pending: usize,
    /// Services refused for a bad annotation.
    pub allocations_refused: usize,
    /// Services (or pods) whose ports were released.
    pub releases: usize,
    /// AWS's quota refusals (`TooManyTargetGroups`, `TooManyTargets`) that left a Service
    /// waiting, by quota (the `Quota` dimension of `QuotaRefused`).
    pub quota_refusals: std::collections::BTreeMap<&'static str, usize>,
}

/// Everything a reconcile needs besides the Kubernetes client (which the caller passes per
/// invocation, since an EKS client is rebuilt when its token ages).
pub struct Reconciler {
    cluster_name: String,
    vpc_id: String,
    pools: PoolSet,
    store: Arc<dyn ClaimStore>,
    elb: Arc<dyn LoadBalancing>,
    claim_grace: Duration,
    view: PoolView,
    dns_names: Mutex<HashMap<String, String>>,
    failpoints: crate::failpoint::Failpoints,
    stack_id: String,
    identity: Mutex<identity::IdentityCache>,
    targets: TargetPolicy,
    records: Option<Arc<dyn PoolRecords>>,
    fleet: Option<Arc<dyn NlbFleet>>,
    signal: Option<Arc<dyn GrowthSignal>>,
    members: elastic::MemberCache,
    checks: Option<Arc<dyn crate::claims::CheckRecords>>,
    reach: ReachSettings,
    /// Where a TLS listener's certificates are looked up before it is made; without one they
    /// are not checked (AWS then refuses a bad one at CreateListener).
    certificates: Option<Arc<dyn crate::certificates::CertificateLookup>>,
    /// Certificates and security policies found good lately.
    checked: options::CheckedCache,
    /// Seconds from creation to address of the pods allocated since last taken (a metric).
    measured: std::sync::Mutex<RunMetrics>,
}

/// The stack id of a reconciler not given one (`STACK_ID` unset: local runs and tests).
pub const DEFAULT_STACK_ID: &str = "local";

/// The key of Service `namespace/name` in the reconciler's cluster.
fn service_key(reconciler: &Reconciler, namespace: &str, name: &str) -> crate::event::ServiceKey {
    crate::cluster::service_key(&reconciler.cluster_name, namespace, name)
}

/// How long a claim may stay unfinished before another run takes it over: longer than any
/// function runs, so a live handler is never overtaken.
pub const DEFAULT_CLAIM_GRACE: Duration = Duration::from_secs(120);

/// Attempts of a Service write that meets conflicting writers.
const WRITE_ATTEMPTS: usize = 4;

/// A Service write that kept meeting other writers: retryable.
fn still_conflicting(service: &ServiceState) -> Error {
    Error::Kube(KubeError {
        action: format!(
            "patch Service {}/{}",
            service.key.namespace, service.key.name
        ),
        message: format!("still conflicting after {WRITE_ATTEMPTS} attempts"),
        retryable: true,
    })
}

/// What a Service's annotations and state call for.
enum Decision {
    Release,
    Ensure(AllocationRequest, Vec<ListenerSpec>),
    Reject(&'static str, String),
}

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
            vpc_id: vpc_id.into(),
            pools,
            store,
            elb,
            claim_grace: DEFAULT_CLAIM_GRACE,
            view: PoolView::default(),
            dns_names: Mutex::new(HashMap::new()),
            failpoints: crate::failpoint::Failpoints::default(),
            stack_id: DEFAULT_STACK_ID.to_owned(),
            identity: Mutex::new(identity::IdentityCache::default()),
            targets: TargetPolicy::default(),
            records: None,
            fleet: None,
            signal: None,
            members: elastic::MemberCache::default(),
            checks: None,
            reach: ReachSettings::default(),
            certificates: None,
            checked: options::CheckedCache::default(),
            measured: std::sync::Mutex::new(RunMetrics::default()),
        }
    }

    /// Looks up TLS listeners' certificates in `lookup` before making them.
    pub fn with_certificates(
        mut self,
        lookup: Arc<dyn crate::certificates::CertificateLookup>,
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

    fn measure(&self) -> std::sync::MutexGuard<'_, RunMetrics> {
        self.measured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `outcome` among the allocation outcomes.
    fn tally(&self, outcome: &Result<Outcome>) {
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
    pub fn failpoints(&self) -> &crate::failpoint::Failpoints {
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
        let outcome = self
            .reconcile_pass(
                &RunToken::random(),
                cluster,
                namespace,
                name,
                event_uid,
                per_pod::Pass::Thorough,
            )
            .await;
        self.tally(&outcome);
        outcome
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
        let outcome = self
            .reconcile_pass(
                token,
                cluster,
                namespace,
                name,
                event_uid,
                per_pod::Pass::Changed,
            )
            .await;
        self.tally(&outcome);
        outcome
    }

    /// [`Reconciler::reconcile_service_as`], going over a per-pod Service's pods as `pass` says:
    /// every pod checked against AWS, or only those whose outputs do not already say what they
    /// hold (a Service woken because ports are free again: its waiting pods are the news).
    async fn reconcile_pass(
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
                let (outcome, reported) = tokio::join!(
                    self.ensure_pods(
                        token,
                        cluster,
                        &service,
                        &pool,
                        &request,
                        &specs,
                        &screened.trusted,
                        pass
                    ),
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
                let (outcome, reported) = tokio::join!(
                    self.ensure(token, cluster, &service, &pool, &request, &specs, &trusted),
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

    fn pool(&self, name: &str) -> Result<&NlbPool> {
        // decide() has checked the name; a miss here is a bug, reported rather than panicked.
        self.pools
            .get(name)
            .ok_or_else(|| Error::Setup(format!("pool {name} is not configured")))
    }

    /// Why `listeners` listeners can never be allocated together in `pool`, if they cannot:
    /// one claim transaction holds [`crate::claims::MAX_LISTENERS_PER_CLAIM`] and one NLB
    /// the pool's quota (less its blocked ports). Checked at the door, so such a Service gets
    /// an `Error:` naming the limit instead of a transaction DynamoDB refuses at every retry.
    fn listener_limit(&self, pool: &str, listeners: usize) -> Option<String> {
        let per_claim = crate::claims::MAX_LISTENERS_PER_CLAIM;
        let per_nlb = self
            .pools
            .get(pool)
            .map_or(usize::MAX, |p| p.per_nlb() as usize);
        let limit = per_claim.min(per_nlb);
        (listeners > limit).then(|| {
            format!(
                "the Service asks for {listeners} listeners (one per port; TCP and UDP on one \
                 port share one), more than fit together: at most {limit} (one claim \
                 transaction holds {per_claim}, DynamoDB taking 100 items; one NLB of pool \
                 {pool:?} holds {per_nlb}); split its ports over several Services"
            )
        })
    }

    fn decide(&self, service: &ServiceState) -> Decision {
        if service.deleting {
            return Decision::Release;
        }
        match annotations::opt_in(&service.annotations) {
            Err(e) => return Decision::Reject("InvalidAnnotation", e.to_string()),
            Ok(false) => return Decision::Release,
            Ok(true) => {}
        }
        let request = match annotations::parse_request(&service.annotations) {
            Ok(r) => r,
            Err(e) => return Decision::Reject("InvalidAnnotation", e.to_string()),
        };
        if self.pools.get(&request.pool).is_none() {
            return Decision::Reject(
                "InvalidAnnotation",
                format!(
                    "annotation {}: pool {:?} is not configured (pools: {})",
                    annotations::POOL,
                    request.pool,
                    self.pools.names()
                ),
            );
        }
        if request.mode == Mode::PerPod && service.selector.is_empty() {
            return Decision::Reject(
                "InvalidService",
                format!(
                    "annotation {}: per-pod mode needs a Service with a selector (its pods)",
                    annotations::MODE
                ),
            );
        }
        let specs = match listener_specs(service) {
            Ok(specs) => specs,
            Err(e) => return Decision::Reject("InvalidService", e),
        };
        if let Some(limit) = self.listener_limit(&request.pool, specs.len()) {
            return Decision::Reject("InvalidService", limit);
        }
        match request.options.check(&specs) {
            Ok(()) => Decision::Ensure(request, specs),
            Err(e) => Decision::Reject("InvalidAnnotation", e.to_string()),
        }
    }

    /// A user error: status `Error: ...` and a Warning Event, keeping whatever the Service
    /// already holds (an edit gone wrong must not cost a game its port).
    async fn reject(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        reason: &'static str,
        message: String,
    ) -> Result<Outcome> {
        let status = Status::Error(message.clone()).to_string();
        let want = |s: &ServiceState| {
            let mut outputs = ServiceOutputs::current(s);
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), status.clone());
            outputs
        };
        self.write_and_tell(
            cluster,
            service,
            &want,
            NoticeKind::Warning,
            reason,
            &message,
        )
        .await?;
        Ok(Outcome::Rejected(message))
    }

    /// Writes the outputs `want` computes and, when the status changes, publishes an Event
    /// saying why.
    async fn write_and_tell(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        want: &(dyn Fn(&ServiceState) -> ServiceOutputs + Sync),
        kind: NoticeKind,
        reason: &'static str,
        note: &str,
    ) -> Result<()> {
        let status_changed = service.annotations.get(annotations::STATUS)
            != want(service).annotations.get(annotations::STATUS);
        self.write_with(cluster, service, want).await?;
        if status_changed {
            let notice = Notice {
                kind,
                reason,
                note: note.to_owned(),
                once: None,
            };
            cluster.publish(service, &notice).await?;
        }
        Ok(())
    }

    /// Writes the outputs `want` computes from the Service as it is: when it changed under the
    /// write, it is read again and `want` asked again. Outputs computed from an old read are
    /// never re-applied, so a write cannot bring back a port another run took away meanwhile.
    async fn write_with(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        want: &(dyn Fn(&ServiceState) -> ServiceOutputs + Sync),
    ) -> Result<Written> {
        let mut current = service.clone();
        for _ in 0..WRITE_ATTEMPTS {
            match cluster
                .write_outputs_if_unchanged(&current, &want(&current))
                .await?
            {
                Patched::Done(after) => return Ok(Written::Done(after)),
                Patched::Gone => return Ok(Written::Gone),
                Patched::Changed => match self.reread(cluster, service).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(Written::Gone),
                },
            }
        }
        Err(still_conflicting(service))
    }

    /// The Service read again, if it is still the same object (for a pod's state: the pod).
    async fn reread(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<Option<ServiceState>> {
        if let Some(pod) = &service.pod {
            return Ok(cluster
                .pod(&service.key.namespace, &pod.name)
                .await?
                .filter(|p| p.uid == pod.uid)
                .map(|p| service.for_pod(&p)));
        }
        Ok(cluster
            .service(&service.key.namespace, &service.key.name)
            .await?
            .filter(|s| s.uid == service.uid))
    }

    fn owner(&self, service: &ServiceState) -> Owner {
        Owner {
            key: service.key.clone(),
            uid: service.uid.clone(),
            pod: service.pod_name().map(str::to_owned),
        }
    }

    /// The claims of `owner`: a pod's (one prefix query), or the Service's own listeners'.
    async fn claims_of_owner(&self, owner: &Owner) -> Result<Vec<Claim>> {
        Ok(match &owner.pod {
            Some(pod) => self.store.claims_of_pod(&owner.uid, pod).await?,
            None => {
                let mut all = self.store.claims_of(&owner.uid).await?;
                all.retain(|c| c.owner.pod.is_none());
                all
            }
        })
    }

    /// The claims of what `service` stands for (the Service, or one of its pods).
    async fn claims_for(&self, service: &ServiceState) -> Result<Vec<Claim>> {
        self.claims_of_owner(&self.owner(service)).await
    }

    /// The DNS names of a pool's NLBs, read once per process (they never change). An NLB that
    /// does not exist is left out and noted in the view, so no claim goes to it: the rest of
    /// the pool goes on.
    async fn dns_names(&self, pool: &NlbPool) -> Result<HashMap<String, String>> {
        let pool = &self.with_cached_members(pool);
        let (names, absent) = self.cached_dns_names(pool.nlb_arns()).await?;
        for nlb in &absent {
            tracing::warn!(nlb = %nlb, pool = pool.name(),
                "an NLB of the pool does not exist (check POOLS); no claim goes to it");
            self.view.mark_unusable(nlb);
        }
        Ok(names)
    }

    /// The DNS names of the pool's NLBs and of `holders` (the NLBs that hold a run's claims,
    /// one of which this instance may not know as a member yet: a managed NLB made after its
    /// member list was read), each that exists.
    async fn dns_names_of(
        &self,
        pool: &NlbPool,
        holders: &BTreeSet<&str>,
    ) -> Result<HashMap<String, String>> {
        let mut names = self.dns_names(pool).await?;
        let unseen: Vec<String> = holders
            .iter()
            .filter(|a| !names.contains_key(**a))
            .map(|a| (*a).to_owned())
            .collect();
        names.extend(self.cached_dns_names(&unseen).await?.0);
        Ok(names)
    }

    /// The DNS names of `arns` that exist, from the process's cache or read (once) from ELBv2;
    /// and those found not to exist by this call.
    async fn cached_dns_names(
        &self,
        arns: &[String],
    ) -> Result<(HashMap<String, String>, Vec<String>)> {
        let mut cache = self.dns_names.lock().await;
        let missing: Vec<String> = arns
            .iter()
            .filter(|a| !cache.contains_key(*a))
            .cloned()
            .collect();
        let mut absent = Vec::new();
        if !missing.is_empty() {
            let found = self.elb.nlb_dns_names(&missing).await?;
            absent = missing
                .into_iter()
                .filter(|a| !found.contains_key(a))
                .collect();
            cache.extend(found);
        }
        let names = arns
            .iter()
            .filter_map(|a| Some((a.clone(), cache.get(a)?.clone())))
            .collect();
        Ok((names, absent))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sweep_bounds_tests;
#[cfg(test)]
mod sweep_tests;

#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod run_token_tests;

#[cfg(test)]
mod address_tests;
#[cfg(test)]
mod aws_behaviour_tests;
#[cfg(test)]
mod cross_zone_tests;
#[cfg(test)]
mod elastic_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod no_op_tests;
#[cfg(test)]
mod options_tests;
#[cfg(test)]
mod own_pods_tests;
#[cfg(test)]
mod per_pod_tests;
#[cfg(test)]
mod quotas_tests;
#[cfg(test)]
mod reachable_tests;
#[cfg(test)]
mod reachable_zones_tests;
#[cfg(test)]
mod release_batches_tests;
#[cfg(test)]
mod screening_tests;
#[cfg(test)]
mod stalling;
