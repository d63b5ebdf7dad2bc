//! The sweep function's handler: one sweep run per schedule event; its report is the answer.

use nlb_port_pool::reconcile::{SweepLimits, SweepReport};

use crate::deps::{Deps, print_run_metrics};
use crate::invocation::{Error, Event, event_time_ms, is_scheduled};
use crate::time_budget;

/// What a sweep run did: the sweep's report, whose JSON (camelCase) is the function's answer.
pub type SweepSummary = SweepReport;

/// The schedule: one sweep run; prints its metrics as EMF lines.
pub async fn on_schedule(deps: &Deps, event: Event) -> Result<SweepSummary, Error> {
    let e = &event.payload;
    if !is_scheduled(e) {
        return Err(format!(
            "invalid event: the sweep runs on schedule events (source aws.events, detail-type \
             Scheduled Event), got {:?} / {:?}",
            e.source, e.detail_type
        )
        .into());
    }
    let cursors = deps.cursors()?;
    let cluster = deps.cluster().await?;
    let limits = SweepLimits {
        stop_by: time_budget::stop_by(
            event.context.deadline,
            std::time::SystemTime::now(),
            deps.function_timeout,
        ),
        ..deps.sweep_limits
    };
    let report = deps.reconciler.sweep(&cluster, cursors, limits).await?;
    let now = event_time_ms(e);
    for line in nlb_port_pool::reconcile::metrics::sweep_lines(&report, now) {
        // EMF lines go to stdout on their own, not through the (JSON) tracing formatter.
        println!("{line}");
    }
    print_run_metrics(deps, now);
    if !report.nlbs_missing.is_empty() {
        tracing::warn!(nlbs = ?report.nlbs_missing,
            "NLBs of the pools do not exist: their Services are moved; remove them from POOLS");
    }
    match &report.deletions_blocked {
        Some(reason) => tracing::warn!(
            reason = %reason,
            deletions_left = report.deletions_left,
            "the sweep deleted nothing: the claims table is not provably this cluster's and \
             stack's (docs/deploy.md, \"The sweep deletes nothing\")"
        ),
        None if report.deletions_left > 0 => tracing::info!(
            deletions_left = report.deletions_left,
            max_deletions = deps.sweep_limits.max_deletions,
            "the sweep reached its deletion cap; later runs delete the rest"
        ),
        None => {}
    }
    tracing::info!(?report, "swept");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use nlb_port_pool::reconcile::PoolUse;

    use crate::sweep_fn::SweepSummary;

    #[test]
    fn the_answer_is_the_reports_counts_in_camel_case_without_pool_use() {
        // GIVEN a report with every field set, pool use and the Pending Services among them
        let report = SweepSummary {
            pools: vec![PoolUse {
                pool: "default".into(),
                used: 3,
                capacity: 10,
            }],
            orphan_claims_released: 1,
            leaked_listeners_deleted: 2,
            leaked_target_groups_deleted: 3,
            services_reconciled: 4,
            pending_retried: 5,
            failures: 6,
            deletions_blocked: Some("foreign".into()),
            deletions_left: 7,
            nlbs_missing: vec!["nlb-1".into()],
            services_moved: 8,
            retries_left: 9,
            cut_short: true,
            services_pending: 10,
            oldest_pending_seconds: 11,
        };

        // WHEN the function answers with it, THEN its JSON is the sweep's answer as it was: the
        // same fields in the same order, no pool use and no Pending count
        assert_eq!(
            serde_json::to_string(&report).expect("JSON"),
            r#"{"orphanClaimsReleased":1,"leakedListenersDeleted":2,"leakedTargetGroupsDeleted":3,"servicesReconciled":4,"pendingRetried":5,"failures":6,"deletionsBlocked":"foreign","deletionsLeft":7,"nlbsMissing":["nlb-1"],"servicesMoved":8,"retriesLeft":9,"cutShort":true}"#
        );
        // AND a report with nothing blocked says null, as before
        let empty = serde_json::to_value(SweepSummary::default()).expect("JSON");
        assert_eq!(empty["deletionsBlocked"], serde_json::Value::Null);
        assert_eq!(empty.as_object().map(|o| o.len()), Some(12));
    }
}
