//! One run of the pool function over its pools: every pool looked at (at most
//! [`TendSettings::pools_at_once`] at a time), then, while some pool's NLBs are provisioning,
//! looks again every poll until the run's time is up. A look never sleeps, so a pool whose NLB
//! provisions slowly (or never) holds up no other pool: Services that start waiting in another
//! pool meanwhile are seen at the next poll (the pool function runs one at a time, so their
//! `Pool Low` would otherwise wait for this run to end).

use std::time::Instant;

use futures::StreamExt;

use super::super::Result;
use super::tend::{PoolReport, PoolRun, TendSettings};
use super::tender::PoolTender;
use crate::model::claims::PoolRecord;
use crate::model::cluster::Cluster;

impl PoolTender<'_> {
    /// One run over the managed pools among `names` (the others are left out of the answer):
    /// each pool's report, or what ended its run (the other pools go on).
    pub async fn tend_pools(
        &self,
        cluster: &dyn Cluster,
        names: &[String],
        settings: TendSettings,
    ) -> Result<Vec<(String, Result<PoolReport>)>> {
        let deadline = Instant::now() + settings.wait_active;
        let mut runs = Vec::with_capacity(names.len());
        for name in names {
            let pool = self.reconciler.pool(name)?.clone();
            if pool.managed().is_none() {
                continue;
            }
            runs.push(PoolRun {
                report: PoolReport {
                    pool: name.clone(),
                    ..PoolReport::default()
                },
                pool,
                retired: 0,
                provisioning: false,
                looked: Instant::now(),
                error: None,
            });
        }
        let first: Vec<(&mut PoolRun, Option<PoolRecord>)> =
            runs.iter_mut().map(|r| (r, None)).collect();
        self.passes(cluster, first, &settings).await;
        loop {
            let waiting_for = runs.iter().any(|r| r.provisioning && r.error.is_none());
            if !waiting_for || Instant::now() + settings.poll > deadline {
                break;
            }
            tokio::time::sleep(settings.poll).await;
            let due = self.due(&mut runs, &settings).await;
            self.passes(cluster, due, &settings).await;
        }
        Ok(runs
            .into_iter()
            .map(|r| {
                let name = r.report.pool.clone();
                (name, r.error.map_or(Ok(r.report), Err))
            })
            .collect())
    }

    /// The pools to look at again now: those provisioning, those where Services wait (their
    /// records are read for that, and handed to the pass), and those not looked at for
    /// [`TendSettings::idle_look`].
    async fn due<'a>(
        &self,
        runs: &'a mut [PoolRun],
        settings: &TendSettings,
    ) -> Vec<(&'a mut PoolRun, Option<PoolRecord>)> {
        let mut due = Vec::new();
        for run in runs.iter_mut().filter(|r| r.error.is_none()) {
            if run.provisioning || run.looked.elapsed() >= settings.idle_look {
                due.push((run, None));
                continue;
            }
            let read = match self.reconciler.records() {
                Ok(records) => records.pool_record(run.pool.name()).await,
                Err(e) => {
                    run.error = Some(e);
                    continue;
                }
            };
            match read {
                Ok(record) if !record.waiting.is_empty() => due.push((run, Some(record))),
                Ok(_) => {}
                Err(e) => run.error = Some(e.into()),
            }
        }
        due
    }

    /// A pass on each of `due`, at most [`TendSettings::pools_at_once`] at a time; a pass
    /// that fails ends its pool's run.
    async fn passes(
        &self,
        cluster: &dyn Cluster,
        due: Vec<(&mut PoolRun, Option<PoolRecord>)>,
        settings: &TendSettings,
    ) {
        futures::stream::iter(due)
            .for_each_concurrent(settings.pools_at_once.max(1), |(run, record)| async move {
                run.looked = Instant::now();
                if let Err(e) = self.pass(cluster, run, record, settings).await {
                    tracing::warn!(pool = run.pool.name(), error = %e, "tending the pool failed");
                    run.error = Some(e);
                    run.provisioning = false;
                }
            })
            .await;
    }
}
