//! The sweep: what events alone cannot promise. It releases claims whose Service is gone,
//! deletes the project's listeners and target groups that no claim accounts for, reconciles a
//! bounded share of the Services each run (which retries Pending ones, takes over unfinished
//! claims and repairs drift), and reports pool use.
//!
//! It only ever deletes what is provably unowned, and it reads listeners before claims: a claim
//! is always written before its listener, so a listener seen without a claim read afterwards
//! has none. Runs may overlap each other and the event-driven functions.
//!
//! "Unowned" is only as true as the claims table: an emptied or replaced table, or a rebuilt
//! cluster of the same name, would make every listener look leaked. So a run deletes on
//! absence only when the table's identity is this cluster's and this stack's (see
//! `reconcile::identity`), and at most [`SweepLimits::max_deletions`] times; what it leaves
//! is counted in the report and left to later runs. Releasing the claims of a Service that is
//! gone deletes its listener too, so it counts against the same budget and is blocked alike.
//! A blocked run reconciles no Service either: it reports pool use and what it left.

use std::collections::{BTreeMap, HashMap, HashSet};
use tokio::time::Instant;

use futures::{StreamExt, TryStreamExt};

use super::identity::Ownership;
use super::sweep_groups::SeenClaims;
use super::{Reconciler, Result};
use crate::claims::{CursorStore, PortHolder};
use crate::cluster::Cluster;
use crate::elb::{
    ElbErrorKind, ListenerInfo, TAG_POD, TAG_SERVICE_UID, target_group_name, target_group_name_in,
};
use crate::event::ServiceKey;
use crate::pool::NlbPool;
use crate::service_model::ServiceState;

/// How much one sweep run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// Services reconciled per run, besides those retried.
    pub services_per_run: usize,
    /// Services retried per run: Pending, in Error, being deleted, with pods leaving, or moving
    /// off an NLB. When more wait, the next run goes on after the last one retried.
    pub retries_per_run: usize,
    /// Pages (400 each) of target groups checked per run.
    pub target_group_pages: usize,
    /// Reconciles, and NLBs read, at once.
    pub concurrency: usize,
    /// Deletions on absence per run: leaked listeners, leaked target groups, and claims of
    /// Services that are gone (each with its listener and target group). The rest wait for
    /// later runs, so a table that lies costs at most this many before an alarm is seen.
    pub max_deletions: usize,
    /// No batch of reconciles and no page of target groups starts after this instant (the
    /// invocation's deadline less a margin); later runs go on from the saved cursor. Tokio's
    /// clock, so tests and benchmarks may pause it.
    pub stop_by: Option<Instant>,
}

/// [`SweepLimits::max_deletions`] unless `SWEEP_MAX_DELETIONS` says otherwise.
pub const DEFAULT_MAX_DELETIONS: usize = 20;

impl Default for SweepLimits {
    fn default() -> Self {
        Self {
            services_per_run: 200,
            retries_per_run: 100,
            target_group_pages: 5,
            concurrency: 8,
            max_deletions: DEFAULT_MAX_DELETIONS,
            stop_by: None,
        }
    }
}

impl SweepLimits {
    /// Whether the run must start no more work.
    pub fn time_is_up(&self) -> bool {
        self.stop_by.is_some_and(|t| Instant::now() >= t)
    }

    /// Reconciles between two saves of the cursor.
    pub(super) fn batch(&self) -> usize {
        self.concurrency.max(1) * 4
    }

    /// Runs that reconcile every one of `services` Services at least once (retries aside).
    pub fn runs_to_check_all(&self, services: usize) -> usize {
        services.div_ceil(self.services_per_run.max(1))
    }
}

/// How many deletions on absence a run may still make, and how many it left.
#[derive(Debug)]
pub(super) struct DeletionBudget {
    left: usize,
    deferred: usize,
}

impl DeletionBudget {
    fn new(left: usize) -> Self {
        Self { left, deferred: 0 }
    }

    /// Takes `n` deletions if the budget has them; otherwise counts them as left.
    pub(super) fn take(&mut self, n: usize) -> bool {
        if n <= self.left {
            self.left -= n;
            true
        } else {
            self.deferred += n;
            false
        }
    }

    /// Gives back deletions taken but not made.
    pub(super) fn refund(&mut self, n: usize) {
        self.left += n;
    }
}

/// Use of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUse {
    /// The pool.
    pub pool: String,
    /// Claimed listener ports.
    pub used: usize,
    /// Listener ports the pool can hold.
    pub capacity: usize,
}

impl PoolUse {
    /// Use in percent.
    pub fn percent(&self) -> f64 {
        if self.capacity == 0 {
            // A managed pool with no NLB yet (min 0) is empty, not full: it grows on demand.
            return if self.used == 0 { 0.0 } else { 100.0 };
        }
        self.used as f64 * 100.0 / self.capacity as f64
    }
}

/// What a sweep run did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepReport {
    /// Use of each pool, read from the claims.
    pub pools: Vec<PoolUse>,
    /// Claims released because their Service is gone or was replaced.
    pub orphan_claims_released: usize,
    /// Listeners deleted because no claim accounts for them.
    pub leaked_listeners_deleted: usize,
    /// Target groups deleted because no claim or live Service accounts for them.
    pub leaked_target_groups_deleted: usize,
    /// Services reconciled.
    pub services_reconciled: usize,
    /// Of those, ones that were Pending or in Error.
    pub pending_retried: usize,
    /// Reconciles that failed (logged; the next run tries again).
    pub failures: usize,
    /// Why this run deleted nothing on absence, when it did not: the claims table's identity
    /// is another cluster's or stack's, or is not recorded and the world does not prove to be
    /// this system's. An operator must look (docs/deploy.md).
    pub deletions_blocked: Option<String>,
    /// Deletions found but not made (blocked, or beyond [`SweepLimits::max_deletions`]); at
    /// least this many, since a run stops checking target groups at the first page it cannot
    /// finish.
    pub deletions_left: usize,
    /// NLBs of the pools that do not exist (deleted out of band): the rest of the pool goes
    /// on, and the Services with claims on them are moved. An operator should remove them
    /// from `POOLS`.
    pub nlbs_missing: Vec<String>,
    /// Services with claims on an NLB that is gone or out of the pools, or on a port out of
    /// the pool's range, or whose listener is gone: retried, which moves or repairs them.
    pub services_moved: usize,
    /// Services that needed a retry beyond [`SweepLimits::retries_per_run`] (or the stop time):
    /// later runs take them.
    pub retries_left: usize,
    /// The run reached [`SweepLimits::stop_by`] and left work to later runs.
    pub cut_short: bool,
    /// Opted-in Services whose status is `Pending` as the run listed them.
    pub services_pending: usize,
    /// Seconds since the creation of the oldest of them (0 when none): what
    /// `PendingTooLongAlarm` watches.
    pub oldest_pending_seconds: i64,
}

/// What one NLB holds: its listeners (with their tags) read before its claims.
struct NlbSeen {
    nlb: String,
    /// Its listeners; none when it is gone.
    listeners: Vec<ListenerInfo>,
    /// ELBv2 says it does not exist.
    gone: bool,
    tags: HashMap<String, HashMap<String, String>>,
    holders: Vec<PortHolder>,
}

/// What sweeping one NLB found.
struct NlbSwept {
    /// Ports claimed on it.
    holders: usize,
    /// Live Services whose claims on it must move, or whose listener must be made again.
    misplaced: Vec<ServiceState>,
}

/// Whether `l` forwards to the target group the holder of its port makes: a name no one else
/// makes (a hash of the owner and listener), so the listener is the holder's.
fn forwards_to_its_group(l: &ListenerInfo, h: &PortHolder) -> bool {
    l.target_group_arn
        .as_deref()
        .and_then(target_group_name_in)
        .is_some_and(|name| name == target_group_name(&h.owner, &h.key))
}

/// A Service's key in the sweep's lists and cursor: `namespace/name`.
pub(super) fn key_of(s: &ServiceState) -> String {
    format!("{}/{}", s.key.namespace, s.key.name)
}

impl Reconciler {
    /// One sweep run; see the module docs. Individual failures are counted, not fatal.
    pub async fn sweep(
        &self,
        cluster: &dyn Cluster,
        cursors: &dyn CursorStore,
        limits: SweepLimits,
    ) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let services: BTreeMap<String, ServiceState> = cluster
            .services_of_interest()
            .await?
            .into_iter()
            .map(|s| (key_of(&s), s))
            .collect();
        let now = crate::claims::now_epoch();
        let pending: Vec<&ServiceState> = services
            .values()
            .filter(|s| {
                s.annotations
                    .get(crate::annotations::STATUS)
                    .is_some_and(|st| st.starts_with("Pending"))
            })
            .collect();
        report.services_pending = pending.len();
        report.oldest_pending_seconds = pending
            .iter()
            .filter_map(|s| s.created)
            .min()
            .map_or(0, |created| (now - created).max(0));
        // A table not proven this cluster's gets nothing written but the cursor: no NLB
        // listing either.
        let (mut budget, own) = match self.check_ownership(cluster).await? {
            Ownership::Own => (DeletionBudget::new(limits.max_deletions), true),
            Ownership::Foreign(why) | Ownership::Unproven(why) => {
                report.deletions_blocked = Some(why);
                (DeletionBudget::new(0), false)
            }
        };
        let mut cursor = cursors.load_cursor().await?;
        let mut moving: BTreeMap<String, ServiceState> = BTreeMap::new();
        let mut claimed = SeenClaims::default();
        let mut swept_nlbs: Vec<String> = Vec::new();
        let configured: Vec<NlbPool> = self.pools.pools().cloned().collect();
        for pool in &configured {
            // A managed pool's members as the table lists them now.
            let pool = self.refresh_members(pool).await?;
            let mut used = 0;
            let listed = own.then_some(&pool);
            for seen in self.see_nlbs(pool.nlb_arns(), listed, limits).await? {
                claimed.add(&seen.holders);
                swept_nlbs.push(seen.nlb.clone());
                let swept = self
                    .sweep_nlb(
                        cluster,
                        seen,
                        Some(&pool),
                        &services,
                        &mut budget,
                        &mut report,
                    )
                    .await?;
                used += swept.holders;
                moving.extend(swept.misplaced.into_iter().map(|s| (key_of(&s), s)));
            }
            report.pools.push(PoolUse {
                pool: pool.name().to_owned(),
                used,
                capacity: pool.capacity() as usize,
            });
        }
        // NLBs taken out of the pools since an earlier run: swept until no claim is left.
        let in_pools: HashSet<String> = swept_nlbs.iter().cloned().collect();
        let retired: Vec<String> = cursor
            .nlbs
            .iter()
            .filter(|n| !in_pools.contains(*n))
            .cloned()
            .collect();
        for seen in self.see_nlbs(&retired, None, limits).await? {
            claimed.add(&seen.holders);
            let nlb = seen.nlb.clone();
            let swept = self
                .sweep_nlb(cluster, seen, None, &services, &mut budget, &mut report)
                .await?;
            moving.extend(swept.misplaced.into_iter().map(|s| (key_of(&s), s)));
            if swept.holders > 0 {
                swept_nlbs.push(nlb);
            }
        }
        cursor.nlbs = swept_nlbs;
        cursors.save_cursor(&cursor).await?;
        // Reconciling every Service against a table that is not provably theirs would claim
        // new ports for Services that hold listeners: while blocked, the run only reports.
        if report.deletions_blocked.is_none() {
            report.services_moved = moving.len();
            self.reconcile_share(
                cluster,
                &services,
                &moving,
                (cursors, &mut cursor),
                limits,
                &mut report,
            )
            .await?;
        }
        self.sweep_target_groups(
            cluster,
            &services,
            &claimed,
            (cursors, &mut cursor),
            limits,
            (&mut budget, &mut report),
        )
        .await?;
        report.deletions_left = budget.deferred;
        Ok(report)
    }

    /// Reads `nlbs`, [`SweepLimits::concurrency`] at once, in their order; those of `pool`
    /// have their listing recorded for allocations.
    async fn see_nlbs(
        &self,
        nlbs: &[String],
        pool: Option<&NlbPool>,
        limits: SweepLimits,
    ) -> Result<Vec<NlbSeen>> {
        futures::stream::iter(nlbs)
            .map(|nlb| self.see_nlb(nlb.as_str(), pool.map(|p| p.is_made(nlb))))
            .buffered(limits.concurrency.max(1))
            .try_collect()
            .await
    }

    /// One NLB's listeners and their tags, then its claims (see the module docs). An NLB of
    /// the pools (`made`: whether the pool function made it) has its listing recorded: the
    /// ports other listeners hold and its cross-zone setting.
    async fn see_nlb(&self, nlb: &str, made: Option<bool>) -> Result<NlbSeen> {
        let (listed, cross_zone) = tokio::join!(self.elb.listeners_of(nlb), async {
            match made {
                Some(_) => self.elb.nlb_cross_zone(nlb).await.map(Some),
                None => Ok(None),
            }
        });
        let (listeners, gone) = match listed {
            Ok(listeners) => (listeners, false),
            Err(e) if e.kind == ElbErrorKind::NlbNotFound => (vec![], true),
            Err(e) => return Err(e.into()),
        };
        let holders = self.store.port_holders(nlb).await?;
        match (cross_zone, made) {
            (Ok(Some(cross_zone)), Some(made)) if !gone => {
                self.record_listing(nlb, &listeners, &holders, cross_zone, made)
                    .await?;
            }
            (Err(e), _) if !gone && e.kind != ElbErrorKind::NlbNotFound => return Err(e.into()),
            _ => {}
        }
        // Tags only of listeners that do not forward to their port holder's own target group
        // (named from its owner and listener): leftovers, foreign or repointed listeners.
        let by_port: HashMap<u16, &PortHolder> = holders.iter().map(|h| (h.port, h)).collect();
        let arns: Vec<String> = listeners
            .iter()
            .filter(|l| {
                !by_port
                    .get(&l.port)
                    .is_some_and(|h| forwards_to_its_group(l, h))
            })
            .map(|l| l.arn.clone())
            .collect();
        let tags = match arns.is_empty() {
            true => HashMap::new(),
            false => self.elb.tags_of(&arns).await?,
        };
        Ok(NlbSeen {
            nlb: nlb.to_owned(),
            listeners,
            gone,
            tags,
            holders,
        })
    }

    /// Leaked listeners and orphan claims of one NLB of `pool` (`None`: out of the pools), and
    /// the live Services whose claims on it must move (it is gone or out of the pools, or their
    /// port is out of the range) or whose listener is gone.
    async fn sweep_nlb(
        &self,
        cluster: &dyn Cluster,
        seen: NlbSeen,
        pool: Option<&NlbPool>,
        services: &BTreeMap<String, ServiceState>,
        budget: &mut DeletionBudget,
        report: &mut SweepReport,
    ) -> Result<NlbSwept> {
        let NlbSeen {
            nlb,
            listeners,
            gone,
            tags,
            holders,
        } = seen;
        if gone {
            tracing::warn!(
                nlb,
                "an NLB of the pools does not exist; moving its Services"
            );
            report.nlbs_missing.push(nlb.clone());
        }
        let by_port: HashMap<u16, &PortHolder> = holders.iter().map(|h| (h.port, h)).collect();
        for l in &listeners {
            if by_port
                .get(&l.port)
                .is_some_and(|h| forwards_to_its_group(l, h))
            {
                continue; // The holder's own.
            }
            let Some(t) = tags.get(&l.arn).filter(|t| self.is_ours(t)) else {
                continue;
            };
            let claimed_by_owner = by_port.get(&l.port).is_some_and(|h| {
                Some(&h.owner.uid) == t.get(TAG_SERVICE_UID)
                    && h.owner.pod.as_ref() == t.get(TAG_POD)
            });
            if !claimed_by_owner && budget.take(1) {
                self.delete_leaked_listener(l, report).await?;
            }
        }
        let mut owners: BTreeMap<&str, &PortHolder> = BTreeMap::new();
        for h in &holders {
            owners.entry(h.owner.uid.as_str()).or_insert(h);
        }
        // A claim older than the grace whose port has no listener lost it behind the system's
        // back (events trust what they made): its Service is reconciled in this run. A younger
        // claim's listener may still be in the making.
        let listener_ports: std::collections::HashSet<u16> =
            listeners.iter().map(|l| l.port).collect();
        let settled_before = crate::claims::now_epoch()
            - i64::try_from(self.claim_grace.as_secs()).unwrap_or(i64::MAX);
        let misplaced_uid = |uid: &str| {
            gone || holders.iter().filter(|h| h.owner.uid == uid).any(|h| {
                !pool.is_some_and(|p| p.takes_port(h.port))
                    || (!listener_ports.contains(&h.port) && h.claimed_at < settled_before)
            })
        };
        let mut misplaced = Vec::new();
        for (uid, h) in owners {
            // The same cluster's Services only: a pool may be shared with another cluster.
            if h.owner.key.cluster != self.cluster_name {
                continue;
            }
            let live = self
                .live_service(
                    cluster,
                    services,
                    &h.owner.key.namespace,
                    &h.owner.key.name,
                    uid,
                )
                .await?;
            match live {
                None => {
                    report.orphan_claims_released += self
                        .release_orphan(cluster, uid, &h.owner.key, budget)
                        .await?;
                }
                Some(service) if misplaced_uid(uid) => misplaced.push(service),
                Some(_) => {}
            }
        }
        Ok(NlbSwept {
            holders: holders.len(),
            misplaced,
        })
    }

    /// Releases the claims of `uid` recorded for `key` (a Service that is gone) if the budget
    /// covers them all; returns how many were released.
    async fn release_orphan(
        &self,
        cluster: &dyn Cluster,
        uid: &str,
        key: &ServiceKey,
        budget: &mut DeletionBudget,
    ) -> Result<usize> {
        // Only those recorded for this Service, as `release_uid` does.
        let count = self
            .store
            .claims_of(uid)
            .await?
            .iter()
            .filter(|c| &c.owner.key == key)
            .count();
        if count == 0 || !budget.take(count) {
            return Ok(0);
        }
        match self.release_uid(cluster, uid, key).await {
            Ok(n) => Ok(n),
            // Another run holds them (a deletion being handled): it releases them.
            Err(super::Error::Busy { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The Service `namespace/name` if it exists with `uid`: from the list read at the start,
    /// or, when the list does not show it (it may be newer than the list), read afresh.
    pub(super) async fn live_service(
        &self,
        cluster: &dyn Cluster,
        services: &BTreeMap<String, ServiceState>,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<Option<ServiceState>> {
        if let Some(s) = services
            .get(&format!("{namespace}/{name}"))
            .filter(|s| s.uid == uid)
        {
            return Ok(Some(s.clone()));
        }
        Ok(cluster
            .service(namespace, name)
            .await?
            .filter(|s| s.uid == uid))
    }

    pub(super) fn is_ours(&self, tags: &HashMap<String, String>) -> bool {
        crate::elb::owned_by_cluster(tags, &self.cluster_name)
    }

    async fn delete_leaked_listener(
        &self,
        l: &ListenerInfo,
        report: &mut SweepReport,
    ) -> Result<()> {
        tracing::warn!(listener = %l.arn, port = l.port, "deleting a listener no claim accounts for");
        self.elb.delete_listener(&l.arn).await?;
        report.leaked_listeners_deleted += 1;
        Ok(())
    }
}
