//! Allocating the Services that waited for ports, as soon as the pool has room again: the
//! pool function does it in its own run, right after an NLB is promoted, instead of leaving
//! them to the next sweep.

use futures::future::join_all;

use super::super::Outcome;
use super::tend::PoolReport;
use super::tender::PoolTender;
use crate::model::claims::WaitingService;
use crate::model::cluster::{Cluster, Notice, NoticeKind};
use crate::model::pool::NlbPool;

impl PoolTender<'_> {
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
        // At most `concurrency` at once, each starting as soon as one ends: a slow Service does
        // not hold up a batch behind it (the last of 50 waiting Services would otherwise wait
        // for seven rounds).
        let permits = tokio::sync::Semaphore::new(concurrency.max(1));
        let outcomes = join_all(oldest_first.iter().map(|w| {
            let permits = &permits;
            async move {
                let _permit = permits.acquire().await;
                self.reconciler
                    .reconcile_woken(cluster, &w.namespace, &w.name, &w.uid)
                    .await
            }
        }))
        .await;
        let results: Vec<(&WaitingService, _)> = oldest_first.into_iter().zip(outcomes).collect();
        let mut done = 0;
        for (w, outcome) in results {
            let finished = match &outcome {
                Ok(Outcome::Allocated { .. }) => {
                    report.woken += 1;
                    true
                }
                Ok(Outcome::Pending(_) | Outcome::Pods { pending: 1.., .. }) => false,
                Ok(Outcome::Pods { .. }) => {
                    report.woken += 1;
                    true
                }
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
                if let Ok(records) = self.reconciler.records()
                    && let Err(e) = records.clear_waiting(pool.name(), &w.uid).await
                {
                    tracing::warn!(service = %w.name, error = %e, "could not forget a wait");
                }
            }
        }
        done
    }

    /// Tells each Service that waits in a pool held back by the region's NLB quota why, with a
    /// Warning Event `NlbQuotaReached` (once per Service: its `Pending` status names the pool's
    /// growth, this names what stops it). The oldest, up to `coming` listeners (free, or on
    /// NLBs provisioning), are not told: they are allocated when those NLBs are active.
    pub(super) async fn tell_held(
        &self,
        cluster: &dyn Cluster,
        waiting: &[WaitingService],
        coming: usize,
        held: &str,
    ) {
        let mut oldest_first: Vec<&WaitingService> = waiting.iter().collect();
        oldest_first.sort_by_key(|w| w.since);
        let mut covered = 0usize;
        let beyond = oldest_first.into_iter().filter(|w| {
            covered = covered.saturating_add(w.listeners as usize);
            covered > coming
        });
        let notice = Notice {
            kind: NoticeKind::Warning,
            reason: "NlbQuotaReached",
            note: held.to_owned(),
            once: Some("nlb-quota".to_owned()),
        };
        for w in beyond {
            let told = match cluster.service(&w.namespace, &w.name).await {
                Ok(Some(service)) if service.uid == w.uid => {
                    cluster.publish(&service, &notice).await
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = told {
                tracing::warn!(service = %w.name, namespace = %w.namespace, error = %e,
                    "could not tell a waiting Service about the NLB quota");
            }
        }
    }
}
