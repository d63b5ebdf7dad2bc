//! The reachability function's handler: on `Targets Registered` and on a schedule, it checks
//! the target health of the Services on the work list until they are reachable (status
//! `Ready`, readiness gates True) or their deadline passes.

use nlb_port_pool::contract::pool_event::{
    FUNCTIONS_SOURCE, TARGETS_REGISTERED, TargetsRegistered,
};
use nlb_port_pool::reconcile::{ReachChecker, ReachReport};

use crate::deps::{Deps, print_run_metrics};
use crate::invocation::{Error, Event, event_time_ms, is_scheduled};

/// `Targets Registered` or the schedule: one run over the work list; prints its metrics.
pub async fn on_reachability_event(deps: &Deps, event: Event) -> Result<ReachReport, Error> {
    let e = &event.payload;
    if !is_scheduled(e) {
        let signal =
            TargetsRegistered::from_parts(&e.source, &e.detail_type, &e.detail).map_err(|m| {
                format!(
                    "invalid event: the reachability function runs on schedule events and \
                     {TARGETS_REGISTERED:?} events from {FUNCTIONS_SOURCE:?}: {m}"
                )
            })?;
        if signal.cluster != deps.config.cluster_name {
            tracing::warn!(event_cluster = %signal.cluster,
                "ignored a Targets Registered event about another cluster");
            return Ok(ReachReport::default());
        }
    }
    let checks = deps.checks()?;
    let cluster = deps.cluster().await?;
    let report = ReachChecker::new(&deps.reconciler, checks)
        .tend_checks(&cluster)
        .await?;
    let now = event_time_ms(e);
    println!(
        "{}",
        nlb_port_pool::reconcile::metrics::reach_line(&report, now)
    );
    print_run_metrics(deps, now);
    tracing::info!(?report, "checked reachability");
    Ok(report)
}
