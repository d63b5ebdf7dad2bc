//! Allocating the Services that waited for ports, as soon as the pool has room again: the
//! pool function does it in its own run, right after an NLB is promoted, instead of leaving
//! them to the next sweep.

use futures::stream::{self, StreamExt};

use super::super::{Outcome, Reconciler};
use super::tend::PoolReport;
use crate::claims::WaitingService;
use crate::cluster::Cluster;
use crate::pool::NlbPool;

impl Reconciler {
    /// Reconciles each waiting Service (at most `concurrency` at once), oldest first. Those
    /// allocated, gone, or no longer asking are forgotten; the rest keep waiting. Returns how
    /// many no longer wait.
    pub(super) async fn wake(
        &self,
        cluster: &dyn Cluster,
        pool: &NlbPool,
        waiting: &[WaitingService],
        concurrency: usize,
        report: &mut PoolReport,
    ) -> usize {
        let mut oldest_first: Vec<&WaitingService> = waiting.iter().collect();
        oldest_first.sort_by_key(|w| w.since);
        let results: Vec<(&WaitingService, _)> = stream::iter(oldest_first)
            .map(|w| async move {
                let outcome = self
                    .reconcile_service(cluster, &w.namespace, &w.name, Some(&w.uid))
                    .await;
                (w, outcome)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut done = 0;
        for (w, outcome) in results {
            let finished = match &outcome {
                Ok(Outcome::Allocated { .. }) => {
                    report.woken += 1;
                    true
                }
                Ok(Outcome::Pending(_)) => false,
                Ok(_) => true,
                Err(e) => {
                    report
                        .failures
                        .push(format!("allocating {}/{}: {e}", w.namespace, w.name));
                    false
                }
            };
            if finished {
                done += 1;
                if let Ok(records) = self.records()
                    && let Err(e) = records.clear_waiting(pool.name(), &w.uid).await
                {
                    tracing::warn!(service = %w.name, error = %e, "could not forget a wait");
                }
            }
        }
        done
    }
}
