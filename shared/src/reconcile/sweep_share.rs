//! The sweep's Services: each run retries a bounded number of those that need it (Pending,
//! failed, being deleted, pods leaving, moving off an NLB) and reconciles the next share of the
//! others, each list taken up where the last run left it. The cursor is saved after every
//! batch, and no batch starts past the run's stop time, so a run cut short loses at most the
//! batch in flight and the next run goes on from there.

use std::collections::BTreeMap;

use futures::StreamExt;

use super::sweep_limits::SweepLimits;
use super::sweep_report::SweepReport;
use super::{Outcome, Reconciler, Result};
use crate::contract::annotations::STATUS;
use crate::contract::service_model::ServiceState;
use crate::model::claims::{CursorStore, SweepCursor};
use crate::model::cluster::Cluster;

/// A Service's key in the sweep's lists and cursor: `namespace/name`.
pub(super) fn key_of(s: &ServiceState) -> String {
    format!("{}/{}", s.key.namespace, s.key.name)
}

/// A per-pod Service with pods gone whose grace runs out: retried every run, so their ports
/// are released within a sweep period of the grace.
fn pods_leaving(s: &ServiceState) -> bool {
    s.annotations
        .get(crate::contract::annotations::PODS)
        .and_then(|json| {
            serde_json::from_str::<crate::contract::annotations::PodsSummary>(json).ok()
        })
        .is_some_and(|p| p.leaving > 0)
}

/// Up to `n` entries of `items` in key order, starting after `after` and wrapping round to
/// the start; none twice.
pub(super) fn next_share<'a, V>(
    items: &'a BTreeMap<String, V>,
    after: Option<&str>,
    n: usize,
) -> Vec<(&'a String, &'a V)> {
    let after = after.unwrap_or_default();
    let later =
        items.range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded));
    let earlier =
        items.range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(after)));
    later.chain(earlier).take(n).collect()
}

/// One Service to reconcile this run.
struct Job<'a> {
    key: &'a String,
    service: &'a ServiceState,
    /// A retry (Pending, failed, deleting, leaving, moving), not the share.
    retry: bool,
}

impl Reconciler {
    /// Retries up to [`SweepLimits::retries_per_run`] of the Services that need it (those in
    /// `moving` among them) and reconciles the next [`SweepLimits::services_per_run`] of the
    /// others, saving the cursor after every batch.
    pub(super) async fn reconcile_share(
        &self,
        cluster: &dyn Cluster,
        services: &BTreeMap<String, ServiceState>,
        moving: &BTreeMap<String, ServiceState>,
        (cursors, cursor): (&dyn CursorStore, &mut SweepCursor),
        limits: SweepLimits,
        report: &mut SweepReport,
    ) -> Result<()> {
        let needs_retry = |s: &ServiceState| {
            s.annotations
                .get(STATUS)
                .is_some_and(|st| st.starts_with("Pending") || st.starts_with("Error"))
                || s.deleting
                || pods_leaving(s)
                || moving.contains_key(&key_of(s))
        };
        let mut retries: BTreeMap<String, &ServiceState> = services
            .iter()
            .filter(|(_, s)| needs_retry(s))
            .map(|(k, s)| (k.clone(), s))
            .collect();
        // Those read afresh (newer than the list) are not in it.
        for (k, m) in moving {
            if services.get(k).is_none_or(|s| s.uid != m.uid) {
                retries.insert(k.clone(), m);
            }
        }
        let others: BTreeMap<String, &ServiceState> = services
            .iter()
            .filter(|(_, s)| !needs_retry(s))
            .map(|(k, s)| (k.clone(), s))
            .collect();
        let jobs: Vec<Job<'_>> = next_share(
            &retries,
            cursor.retries_after.as_deref(),
            limits.retries_per_run,
        )
        .into_iter()
        .map(|(key, s)| Job {
            key,
            service: s,
            retry: true,
        })
        .chain(
            next_share(
                &others,
                cursor.services_after.as_deref(),
                limits.services_per_run,
            )
            .into_iter()
            .map(|(key, s)| Job {
                key,
                service: s,
                retry: false,
            }),
        )
        .collect();
        let mut retried = 0;
        for batch in jobs.chunks(limits.batch()) {
            if limits.time_is_up() {
                report.cut_short = true;
                break;
            }
            report.failures += self.reconcile_batch(cluster, batch, limits).await;
            report.services_reconciled += batch.len();
            for job in batch {
                if job.retry {
                    retried += 1;
                    cursor.retries_after = Some(job.key.clone());
                } else {
                    cursor.services_after = Some(job.key.clone());
                }
            }
            cursors.save_cursor(cursor).await?;
        }
        report.pending_retried = retried;
        report.retries_left = retries.len() - retried;
        Ok(())
    }

    /// Reconciles `batch`, [`SweepLimits::concurrency`] at once; returns how many failed.
    async fn reconcile_batch(
        &self,
        cluster: &dyn Cluster,
        batch: &[Job<'_>],
        limits: SweepLimits,
    ) -> usize {
        futures::stream::iter(batch)
            .map(|job| async move {
                let s = job.service;
                let result = self
                    .reconcile_service(cluster, &s.key.namespace, &s.key.name, Some(&s.uid))
                    .await;
                match result {
                    Ok(outcome) => {
                        if !matches!(
                            outcome,
                            Outcome::Allocated { claimed: 0, .. } | Outcome::Nothing(_)
                        ) {
                            tracing::info!(service = %s.key, ?outcome, "sweep reconciled");
                        }
                        0
                    }
                    // An event's run is on it right now: nothing for the sweep to do.
                    Err(super::Error::Busy { reason, .. }) => {
                        tracing::info!(service = %s.key, reason, "busy; left to the run on it");
                        0
                    }
                    Err(e) => {
                        tracing::warn!(service = %s.key, error = %e, "sweep could not reconcile");
                        1
                    }
                }
            })
            .buffer_unordered(limits.concurrency.max(1))
            .fold(0, |a, b| async move { a + b })
            .await
    }
}
