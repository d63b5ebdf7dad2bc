//! The reachability function's part: it alone works through the reachability list (others
//! only add to it), so it alone builds a [`ReachChecker`].

use std::time::{Duration, Instant};

use futures::future::join_all;

use super::super::{Reconciler, Result};
use super::report::{Reach, ReachReport};
use crate::model::claims::{CheckItem, CheckRecords, now_epoch};
use crate::model::cluster::{Cluster, Notice, NoticeKind};

/// Checks the Services on the reachability work list: the reachability function's reconciler
/// and the list it works through.
pub struct ReachChecker<'a> {
    pub(super) reconciler: &'a Reconciler,
    pub(super) checks: &'a dyn CheckRecords,
}

impl<'a> ReachChecker<'a> {
    /// Works through `checks` with `reconciler`'s clients and settings.
    pub fn new(reconciler: &'a Reconciler, checks: &'a dyn CheckRecords) -> Self {
        Self { reconciler, checks }
    }
}

impl ReachChecker<'_> {
    /// One run of the reachability function: checks each Service whose check is due, until the
    /// list is empty or [`ReachSettings::run_for`] is spent.
    pub async fn tend_checks(&self, cluster: &dyn Cluster) -> Result<ReachReport> {
        let checks = self.checks;
        let started = Instant::now();
        let settings = self.reconciler.reach;
        let mut report = ReachReport::default();
        loop {
            let items = checks.checks().await?;
            let now = now_epoch();
            let (due, later): (Vec<CheckItem>, Vec<CheckItem>) =
                items.into_iter().partition(|i| i.due <= now);
            if due.is_empty() {
                let Some(next) = later.iter().map(|i| i.due).min() else {
                    break;
                };
                let wait = Duration::from_secs(u64::try_from(next - now).unwrap_or(1).max(1));
                if started.elapsed() + wait > settings.run_for {
                    report.waiting = later.len();
                    break;
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            let permits = tokio::sync::Semaphore::new(settings.concurrency.max(1));
            let results = join_all(due.iter().map(|item| {
                let permits = &permits;
                async move {
                    let _permit = permits.acquire().await;
                    self.check_service(cluster, item).await
                }
            }))
            .await;
            let next_due =
                now_epoch() + i64::try_from(settings.check_every.as_secs()).unwrap_or(10);
            for (item, result) in due.iter().zip(results) {
                report.checked += 1;
                let outcome = match result {
                    Ok((reach, flipped)) => {
                        report.ready += flipped.ready;
                        report.gates_set += flipped.gates;
                        report.pod_reachable_seconds.extend(flipped.pod_seconds);
                        report
                            .service_reachable_seconds
                            .extend(flipped.service_seconds);
                        reach
                    }
                    Err(e) => {
                        report
                            .failures
                            .push(format!("checking {}/{}: {e}", item.namespace, item.name));
                        Reach::Waiting(e.to_string())
                    }
                };
                match outcome {
                    Reach::Done => checks.clear_check(&item.uid, item.deadline).await?,
                    Reach::Waiting(reason) if now >= item.deadline => {
                        report.timed_out += 1;
                        self.report_unreachable(cluster, item, &reason).await;
                        checks.clear_check(&item.uid, item.deadline).await?;
                    }
                    Reach::Waiting(_) => checks.reschedule_check(&item.uid, next_due).await?,
                }
            }
            if started.elapsed() + settings.check_every > settings.run_for {
                report.waiting = checks.checks().await?.len();
                break;
            }
        }
        Ok(report)
    }

    /// A Warning Event on a Service still unreachable at its deadline.
    async fn report_unreachable(&self, cluster: &dyn Cluster, item: &CheckItem, reason: &str) {
        let Ok(Some(service)) = cluster.service(&item.namespace, &item.name).await else {
            return;
        };
        if service.uid != item.uid {
            return;
        }
        let notice = Notice {
            kind: NoticeKind::Warning,
            reason: "NotReachable",
            note: format!(
                "no healthy target after {}s: {reason}; the status stays Allocated (check the \
                 health check settings, security groups and that the pods listen)",
                self.reconciler.reach.timeout.as_secs()
            ),
            once: None,
        };
        if let Err(e) = cluster.publish(&service, &notice).await {
            tracing::warn!(service = %service.key, error = %e, "could not report the unreachable Service");
        }
    }
}
