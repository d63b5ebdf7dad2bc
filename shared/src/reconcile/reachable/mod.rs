//! "Reachable, not just allocated": an NLB forwards to a newly registered target only once its
//! health checks pass (90 to 300 s in AWS), so `Allocated` (the API calls returned) is not yet
//! something players can use. After an allocation or a registration, the Service is noted on
//! the reachability work list ([`crate::claims::CheckRecords`]) and the reachability function
//! is signalled; it checks target health every [`ReachSettings::check_every`] until each
//! listener has a healthy target, then writes status `Ready` (on the pod, in per-pod mode) and
//! sets the `nlb.port-manager/reachable` condition of pods that declare that readiness gate. A
//! Service still unreachable at its deadline gets a Warning Event saying why, and leaves the list.

mod check;
mod zones;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use super::{Reconciler, Result};
use crate::claims::{CheckItem, CheckRecords, now_epoch};
use crate::cluster::{Cluster, Notice, NoticeKind};
use crate::service_model::ServiceState;

/// How reachability is checked.
#[derive(Debug, Clone, Copy)]
pub struct ReachSettings {
    /// The first check after a Service is noted, and the pause between checks.
    pub check_every: Duration,
    /// How long a Service may stay unreachable before it is reported and dropped.
    pub timeout: Duration,
    /// How long one run of the reachability function keeps checking.
    pub run_for: Duration,
    /// Services checked at once.
    pub concurrency: usize,
}

impl Default for ReachSettings {
    fn default() -> Self {
        Self {
            check_every: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
            run_for: Duration::from_secs(240),
            concurrency: 16,
        }
    }
}

/// What a run of the reachability function did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReachReport {
    /// Checks made.
    pub checked: usize,
    /// Services (or pods) that became `Ready`.
    pub ready: usize,
    /// Readiness gates set True.
    pub gates_set: usize,
    /// Services still waiting at the end of the run.
    pub waiting: usize,
    /// Services reported unreachable at their deadline.
    pub timed_out: usize,
    /// Seconds from pod creation to reachable, of the pods that became reachable.
    pub pod_reachable_seconds: Vec<i64>,
    /// Seconds from creation to `Ready` of each per-Service Service that became ready.
    pub service_reachable_seconds: Vec<i64>,
    /// What failed (the run goes on with the rest).
    pub failures: Vec<String>,
}

/// What one check found.
pub(super) enum Reach {
    /// Everything the Service stands for is reachable (or there is nothing left to check).
    Done,
    /// Not yet, and why.
    Waiting(String),
}

/// What one check changed.
#[derive(Default)]
pub(super) struct Flipped {
    pub ready: usize,
    pub gates: usize,
    pub pod_seconds: Vec<i64>,
    /// Per per-Service Service that became `Ready`: seconds from its creation.
    pub service_seconds: Vec<i64>,
}

impl Reconciler {
    /// Keeps the reachability work list in `records`.
    pub fn with_check_records(mut self, records: Arc<dyn CheckRecords>) -> Self {
        self.checks = Some(records);
        self
    }

    /// Overrides [`ReachSettings::default`].
    pub fn with_reach_settings(mut self, settings: ReachSettings) -> Self {
        self.reach = settings;
        self
    }

    /// Sets the [`ReachSettings`] of a reconciler already built.
    pub fn set_reach_settings(&mut self, settings: ReachSettings) {
        self.reach = settings;
    }

    /// Notes `service` for a reachability check and signals the reachability function. A
    /// failure is logged: the Service stays `Allocated`, and its next allocation notes it again.
    pub(super) async fn note_check(&self, service: &ServiceState) {
        let Some(checks) = &self.checks else {
            return;
        };
        let now = now_epoch();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let item = CheckItem {
            uid: service.uid.clone(),
            namespace: service.key.namespace.clone(),
            name: service.key.name.clone(),
            due: now + secs(self.reach.check_every),
            deadline: now.saturating_add(secs(self.reach.timeout)),
        };
        if let Err(e) = checks.note_check(&item).await {
            tracing::warn!(service = %service.key, error = %e, "could not note a reachability check");
            return;
        }
        self.signal_checks().await;
    }

    /// One run of the reachability function: checks each Service whose check is due, until the
    /// list is empty or [`ReachSettings::run_for`] is spent.
    pub async fn tend_checks(&self, cluster: &dyn Cluster) -> Result<ReachReport> {
        let Some(checks) = &self.checks else {
            return Err(super::Error::Setup(
                "this function keeps no reachability work list".into(),
            ));
        };
        let started = Instant::now();
        let settings = self.reach;
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
                self.reach.timeout.as_secs()
            ),
            once: None,
        };
        if let Err(e) = cluster.publish(&service, &notice).await {
            tracing::warn!(service = %service.key, error = %e, "could not report the unreachable Service");
        }
    }
}
