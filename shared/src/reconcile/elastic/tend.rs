//! One look of the pool function at one managed pool: finish what was being made, promote what
//! AWS reports active (and give up on what stays provisioning past the limit), retire what has
//! been idle long enough, grow when low (within the region's NLB quota), and allocate the
//! Services that waited. A run repeats looks while NLBs are provisioning (`run`).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::super::{Error, Result};
use super::tender::PoolTender;
use crate::model::claims::{NlbState, NlbUsage, PoolRecord};
use crate::model::cluster::Cluster;
use crate::model::elb::NlbStatus;
use crate::model::pool::NlbPool;

/// The default of [`TendSettings::provisioning_limit`] (the template's
/// `NlbProvisioningLimitSeconds`).
const DEFAULT_PROVISIONING_LIMIT: Duration = Duration::from_secs(15 * 60);

/// How the pool function runs.
#[derive(Debug, Clone, Copy)]
pub struct TendSettings {
    /// How long a run keeps looking at NLBs that are provisioning (AWS takes minutes), so the
    /// Services waiting for them are allocated the moment they are active.
    pub wait_active: Duration,
    /// The pause between two looks.
    pub poll: Duration,
    /// Most NLBs one run retires per pool (deleting is the dangerous verb: a few at a time).
    pub retire_per_run: usize,
    /// Most waiting Services allocated at once.
    pub wake_concurrency: usize,
    /// How long a made NLB may stay `provisioning` (AWS: minutes) before it counts as failed:
    /// deleted (after the tags check) and replaced (`POOL_PROVISIONING_LIMIT_SECONDS`).
    pub provisioning_limit: Duration,
    /// The region's quota of Network Load Balancers (`NLB_QUOTA`): no pool grows past it,
    /// counting every NLB of the region. `None`: not counted (AWS's refusal still stops it).
    pub nlb_quota: Option<u32>,
    /// Most pools looked at at once.
    pub pools_at_once: usize,
    /// While a run waits for some pool's NLBs, how often it looks at the pools with nothing
    /// provisioning (their records are read every poll, and a pool where Services wait is
    /// looked at at once).
    pub idle_look: Duration,
}

impl Default for TendSettings {
    fn default() -> Self {
        Self {
            wait_active: Duration::from_secs(240),
            poll: Duration::from_secs(5),
            retire_per_run: 1,
            wake_concurrency: 16,
            provisioning_limit: DEFAULT_PROVISIONING_LIMIT,
            nlb_quota: None,
            pools_at_once: 4,
            idle_look: Duration::from_secs(30),
        }
    }
}

/// What a run did to one pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolReport {
    /// The pool.
    pub pool: String,
    /// Names of the NLBs this run made.
    pub made: Vec<String>,
    /// Names of NLBs an earlier run made but had not recorded, adopted by their tags.
    pub adopted: Vec<String>,
    /// NLBs AWS reported active, now taking claims.
    pub promoted: Vec<String>,
    /// NLBs deleted after being idle.
    pub retired: Vec<String>,
    /// Made NLBs found deleted out of band (their Services are moved).
    pub gone: Vec<String>,
    /// Made NLBs in each state at the end of the run.
    pub provisioning: usize,
    /// See `provisioning`.
    pub active: usize,
    /// See `provisioning`.
    pub draining: usize,
    /// Listeners the pool's active NLBs can still take (claims counted).
    pub free: u32,
    /// Services waiting for ports at the end of the run.
    pub waiting: usize,
    /// Waiting Services this run allocated.
    pub woken: usize,
    /// The pool needs more NLBs than its `max` allows.
    pub at_max: bool,
    /// Why the pool needs more NLBs than the region's NLB quota lets it make (the quota
    /// counted, or AWS's `TooManyLoadBalancers`); `None` when it is not held back by it.
    pub nlb_quota: Option<String>,
    /// CreateLoadBalancer calls AWS refused with `TooManyLoadBalancers`.
    pub quota_refused: usize,
    /// Made NLBs still `provisioning` past the limit: deleted (after the tags check) and
    /// replaced.
    pub stuck: Vec<String>,
    /// What failed (the run goes on with the rest).
    pub failures: Vec<String>,
}

/// One pool's part of a run: its report so far, and what the next pass needs.
pub(super) struct PoolRun {
    pub pool: NlbPool,
    pub report: PoolReport,
    /// NLBs retired in this run so far.
    pub retired: usize,
    /// Whether its last pass left NLBs provisioning.
    pub provisioning: bool,
    /// When its last pass started.
    pub looked: std::time::Instant,
    /// What ended its run, if anything failed.
    pub error: Option<Error>,
}

/// One made NLB as this look saw it.
pub(super) struct MemberView {
    pub seq: u64,
    /// The id of the pool's records.
    pub pool_id: String,
    pub arn: Option<String>,
    /// When its member was added (seconds since the epoch).
    pub created_at: i64,
    pub usage: Option<NlbUsage>,
    pub aws: Option<NlbStatus>,
}

impl MemberView {
    /// The state of its item (`provisioning` until its ARN is recorded).
    pub fn state(&self) -> NlbState {
        self.usage
            .as_ref()
            .and_then(|u| u.state)
            .unwrap_or(NlbState::Provisioning)
    }

    pub fn claims(&self) -> usize {
        self.usage.as_ref().map_or(0, |u| u.ports.len())
    }
}

/// The pool at one look.
pub(super) struct Census {
    pub members: Vec<MemberView>,
    /// Room left on active NLBs (pre-made ones included).
    pub free: u32,
}

impl Census {
    pub fn count(&self, state: NlbState) -> usize {
        self.members.iter().filter(|m| m.state() == state).count()
    }
}

impl PoolTender<'_> {
    /// One run on the managed pool `name` alone (see [`PoolTender::tend_pools`]); a pool that
    /// is not managed is left alone.
    pub async fn tend_pool(
        &self,
        cluster: &dyn Cluster,
        name: &str,
        settings: TendSettings,
    ) -> Result<PoolReport> {
        let mut runs = self
            .tend_pools(cluster, &[name.to_owned()], settings)
            .await?;
        match runs.pop() {
            Some((_, report)) => report,
            None => Ok(PoolReport {
                pool: name.to_owned(),
                ..PoolReport::default()
            }),
        }
    }

    /// One look at one pool (see the module docs): it never sleeps, so one pool's wait for
    /// provisioning NLBs holds up no other pool. `record` is the pool's record if just read.
    pub(super) async fn pass(
        &self,
        cluster: &dyn Cluster,
        run: &mut PoolRun,
        record: Option<PoolRecord>,
        settings: &TendSettings,
    ) -> Result<()> {
        let (pool, name) = (&run.pool, run.pool.name());
        let report = &mut run.report;
        let record = match record {
            Some(r) => r,
            None => self.reconciler.records()?.pool_record(name).await?,
        };
        let record = if self.finish_members(pool, &record, report).await? {
            self.reconciler.records()?.pool_record(name).await?
        } else {
            record
        };
        let census = self.look(pool, &record, settings, report).await?;
        let budget = settings.retire_per_run.saturating_sub(run.retired);
        run.retired += self
            .retire_idle(pool, &census, budget, record.waiting.len(), report)
            .await?;
        let made = self
            .grow(pool, &record, &census, settings.nlb_quota, report)
            .await?;
        let mut waiting = record.waiting.len();
        if census.free > 0 && !record.waiting.is_empty() {
            waiting -= self
                .wake(
                    cluster,
                    pool,
                    &record.waiting,
                    settings.wake_concurrency,
                    report,
                )
                .await;
        }
        report.provisioning = census.count(NlbState::Provisioning) + made;
        // Waiting Services' statuses name what holds the pool back (read with its members).
        if report.nlb_quota != record.held {
            self.reconciler
                .records()?
                .set_held(pool.name(), report.nlb_quota.as_deref())
                .await?;
        }
        if let Some(held) = report.nlb_quota.clone()
            && waiting > 0
        {
            let coming = census.free as usize + report.provisioning * pool.per_nlb() as usize;
            self.tell_held(cluster, &record.waiting, coming, &held)
                .await;
        }
        report.active = census.count(NlbState::Active);
        report.draining = census.count(NlbState::Draining);
        report.free = census.free;
        report.waiting = waiting;
        run.provisioning = report.provisioning > 0;
        Ok(())
    }

    /// Looks at every member: its item and what AWS says. Promotes what AWS reports active,
    /// notes what is gone, keeps `emptySince` up to date, and counts the free room.
    async fn look(
        &self,
        pool: &NlbPool,
        record: &PoolRecord,
        settings: &TendSettings,
        report: &mut PoolReport,
    ) -> Result<Census> {
        let arns = record.member_arns();
        let premade = pool.premade_arns().to_vec();
        let all: Vec<String> = premade.iter().chain(&arns).cloned().collect();
        let (usage, described) = tokio::join!(
            self.reconciler.store.nlb_usage(&all),
            self.fleet.describe_nlbs(&arns)
        );
        let usage: HashMap<String, NlbUsage> =
            usage?.into_iter().map(|u| (u.nlb_arn.clone(), u)).collect();
        let described: HashMap<String, NlbStatus> =
            described?.into_iter().map(|i| (i.arn, i.status)).collect();
        let per_nlb = pool.per_nlb() as usize;
        let mut free = premade
            .iter()
            .filter_map(|a| usage.get(a))
            .filter(|u| u.active)
            .map(|u| per_nlb.saturating_sub(u.ports.len()))
            .sum::<usize>();
        let mut members = Vec::with_capacity(record.members.len());
        for m in &record.members {
            let mut view = MemberView {
                seq: m.seq,
                pool_id: record.id.clone().unwrap_or_default(),
                arn: m.arn.clone(),
                created_at: m.created_at,
                usage: m.arn.as_ref().and_then(|a| usage.get(a).cloned()),
                aws: m.arn.as_ref().and_then(|a| described.get(a).cloned()),
            };
            if view.arn.is_some() {
                self.settle(pool, &mut view, settings.provisioning_limit, report)
                    .await?;
            }
            if view.state() == NlbState::Active {
                free += per_nlb.saturating_sub(view.claims());
            }
            members.push(view);
        }
        self.reconciler
            .members
            .lock_pools()
            .insert(pool.name().to_owned(), arns);
        Ok(Census {
            members,
            free: u32::try_from(free).unwrap_or(u32::MAX),
        })
    }
}
