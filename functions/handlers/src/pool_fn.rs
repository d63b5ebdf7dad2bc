//! The pool function's handler.

use nlb_port_pool::contract::pool_event::{FUNCTIONS_SOURCE, POOL_LOW, PoolLow};
use nlb_port_pool::reconcile::{PoolReport, PoolTender};
use serde::Serialize;

use crate::deps::{Deps, print_run_metrics};
use crate::invocation::{Error, Event, OTHER_CLUSTER, event_time_ms, is_scheduled};

/// What a pool function run did, per managed pool it looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSummary {
    /// Why it ran: `schedule`, or the `Pool Low` reason.
    pub trigger: String,
    /// Each pool's report.
    pub pools: Vec<PoolReport>,
}

/// `Pool Low` or the schedule: one run of the pool function over every managed pool (the pool
/// a `Pool Low` names is one of them; the function runs one at a time, so a pool left out
/// would wait for this run to end). Pools are tended at once (see
/// [`PoolTender::tend_pools`]). A pool whose run failed fails the
/// invocation after the others ran, so Lambda retries and the errors alarm sees it.
pub async fn on_pool_event(deps: &Deps, event: Event) -> Result<PoolSummary, Error> {
    let e = &event.payload;
    let (trigger, pools): (String, Vec<String>) = if is_scheduled(e) {
        ("schedule".into(), managed_pools(deps))
    } else if e.source == FUNCTIONS_SOURCE && e.detail_type == POOL_LOW {
        let low = PoolLow::from_parts(&e.source, &e.detail_type, &e.detail)?;
        if low.cluster != deps.config.cluster_name {
            tracing::warn!(event_cluster = %low.cluster, "ignored a Pool Low event about another cluster");
            return Ok(PoolSummary {
                trigger: OTHER_CLUSTER.into(),
                pools: vec![],
            });
        }
        let managed = managed_pools(deps);
        if !managed.contains(&low.pool) {
            tracing::warn!(pool = %low.pool, "Pool Low names no managed pool");
        }
        (low.reason, managed)
    } else {
        return Err(format!(
            "invalid event: the pool function runs on schedule events and {POOL_LOW:?} events \
                 from {FUNCTIONS_SOURCE:?}, got {:?} / {:?}",
            e.source, e.detail_type
        )
        .into());
    };
    let cluster = deps.cluster().await?;
    let now = event_time_ms(e);
    let mut reports = Vec::with_capacity(pools.len());
    let mut failed = Vec::new();
    let runs = PoolTender::new(&deps.reconciler, deps.fleet()?)
        .tend_pools(&cluster, &pools, deps.tend_settings)
        .await?;
    for (pool, run) in runs {
        match run {
            Ok(report) => {
                println!(
                    "{}",
                    nlb_port_pool::reconcile::metrics::pool_line(&report, now)
                );
                if report.at_max {
                    tracing::warn!(
                        pool,
                        waiting = report.waiting,
                        "the managed pool needs more NLBs than its max allows"
                    );
                }
                if let Some(held) = &report.nlb_quota {
                    tracing::warn!(
                        pool,
                        outcome = "NlbQuotaReached",
                        waiting = report.waiting,
                        refused = report.quota_refused,
                        "{held}"
                    );
                }
                tracing::info!(?report, "tended the pool");
                reports.push(report);
            }
            Err(err) => {
                tracing::warn!(pool, error = %err, "tending the pool failed");
                failed.push(format!("pool {pool}: {err}"));
            }
        }
    }
    // The waiting Services it allocated, and their latencies.
    print_run_metrics(deps, now);
    if !failed.is_empty() {
        return Err(failed.join("; ").into());
    }
    Ok(PoolSummary {
        trigger,
        pools: reports,
    })
}

fn managed_pools(deps: &Deps) -> Vec<String> {
    deps.config
        .pools
        .pools()
        .filter(|p| p.managed().is_some())
        .map(|p| p.name().to_owned())
        .collect()
}
