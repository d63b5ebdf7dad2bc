//! One run of the pool function on one managed pool: finish what was being made, promote what
//! AWS reports active, retire what has been idle long enough, grow when low, and allocate the
//! Services that waited; while NLBs are provisioning, look again until the run's time is up.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::super::{Error, Reconciler, Result};
use crate::claims::{NlbState, NlbUsage, PoolRecord};
use crate::cluster::Cluster;
use crate::elb::{NlbFleet, NlbStatus};
use crate::pool::NlbPool;

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
}

impl Default for TendSettings {
    fn default() -> Self {
        Self {
            wait_active: Duration::from_secs(240),
            poll: Duration::from_secs(5),
            retire_per_run: 1,
            wake_concurrency: 16,
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
    /// What failed (the run goes on with the rest).
    pub failures: Vec<String>,
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

impl Reconciler {
    pub(super) fn fleet(&self) -> Result<&std::sync::Arc<dyn NlbFleet>> {
        self.fleet
            .as_ref()
            .ok_or_else(|| Error::Setup("only the pool function makes NLBs".into()))
    }

    /// One run on the managed pool `name` (see the module docs); a pool that is not managed
    /// is left alone.
    pub async fn tend_pool(
        &self,
        cluster: &dyn Cluster,
        name: &str,
        settings: TendSettings,
    ) -> Result<PoolReport> {
        let pool = self.pool(name)?.clone();
        let mut report = PoolReport {
            pool: name.to_owned(),
            ..PoolReport::default()
        };
        if pool.managed().is_none() {
            return Ok(report);
        }
        let deadline = Instant::now() + settings.wait_active;
        let mut retired = 0;
        loop {
            let record = self.records()?.pool_record(name).await?;
            let record = if self.finish_members(&pool, &record, &mut report).await? {
                self.records()?.pool_record(name).await?
            } else {
                record
            };
            let census = self.look(&pool, &record, &mut report).await?;
            let budget = settings.retire_per_run.saturating_sub(retired);
            retired += self
                .retire_idle(&pool, &census, budget, record.waiting.len(), &mut report)
                .await?;
            let made = self.grow(&pool, &record, &census, &mut report).await?;
            let mut waiting = record.waiting.len();
            if census.free > 0 && !record.waiting.is_empty() {
                waiting -= self
                    .wake(
                        cluster,
                        &pool,
                        &record.waiting,
                        settings.wake_concurrency,
                        &mut report,
                    )
                    .await;
            }
            report.provisioning = census.count(NlbState::Provisioning) + made;
            report.active = census.count(NlbState::Active);
            report.draining = census.count(NlbState::Draining);
            report.free = census.free;
            report.waiting = waiting;
            if report.provisioning == 0 || Instant::now() + settings.poll > deadline {
                return Ok(report);
            }
            tokio::time::sleep(settings.poll).await;
        }
    }

    /// Looks at every member: its item and what AWS says. Promotes what AWS reports active,
    /// notes what is gone, keeps `emptySince` up to date, and counts the free room.
    async fn look(
        &self,
        pool: &NlbPool,
        record: &PoolRecord,
        report: &mut PoolReport,
    ) -> Result<Census> {
        let arns = record.member_arns();
        let premade = pool.premade_arns().to_vec();
        let all: Vec<String> = premade.iter().chain(&arns).cloned().collect();
        let (usage, described) = tokio::join!(
            self.store.nlb_usage(&all),
            self.fleet()?.describe_nlbs(&arns)
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
                self.settle(pool, &mut view, report).await?;
            }
            if view.state() == NlbState::Active {
                free += per_nlb.saturating_sub(view.claims());
            }
            members.push(view);
        }
        self.members
            .lock_pools()
            .insert(pool.name().to_owned(), arns);
        Ok(Census {
            members,
            free: u32::try_from(free).unwrap_or(u32::MAX),
        })
    }
}
