//! The Lambda handlers: an EventBridge event in, a reconcile, a summary out.
//!
//! Outcomes the user must act on (bad annotations, a full pool) are successes here: they are
//! reported on the Service, and retrying would not help. Everything else is returned as an
//! error, so EventBridge delivers the event again (and finally to the dead-letter queue).

mod deps;
mod pool_fn;
mod reachable_fn;
pub mod time_budget;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use nlb_port_pool::claims::RunToken;
use nlb_port_pool::event::{DetailType, ServiceEvent};
use nlb_port_pool::reconcile::{Error as ReconcileError, Outcome, SweepLimits};
use serde::Serialize;

pub use deps::{DEFAULT_BUSY_WAIT, Deps, StartupError};
pub use pool_fn::{EventBridgeSignal, PoolSummary, on_pool_event};
pub use reachable_fn::on_reachability_event;

/// The event type every handler takes: any `detail`, validated by the handler.
pub type Event = LambdaEvent<EventBridgeEvent<serde_json::Value>>;

/// A handler's error: what failed and why. Lambda reports it and EventBridge retries.
pub type Error = lambda_runtime::Error;

/// What a handler did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `cluster/namespace/name`.
    pub service: String,
    /// The outcome, e.g. `Allocated { listeners: 1, claimed: 1 }`.
    pub outcome: String,
}

/// Validates the event and checks it is of the kind this function handles.
pub fn parse(
    event: &EventBridgeEvent<serde_json::Value>,
    expected: DetailType,
) -> Result<ServiceEvent, Error> {
    let parsed =
        ServiceEvent::from_parts(Some(&event.source), Some(&event.detail_type), &event.detail)?;
    if parsed.detail_type != expected {
        return Err(format!(
            "invalid event: this function handles {expected:?} events, got {:?}",
            parsed.detail_type.as_str()
        )
        .into());
    }
    Ok(parsed)
}

/// An event this function must not act on: one about another cluster (a bus or rule shared by
/// several clusters' stacks), or a Service outside `WATCH_NAMESPACES`. Nothing is done, not
/// even a read, and the event counts as handled: retrying would not make it ours.
fn not_ours(deps: &Deps, event: &ServiceEvent) -> Option<Summary> {
    if event.detail.cluster != deps.config.cluster_name {
        tracing::warn!(
            service = %event.key(),
            event_cluster = %event.detail.cluster,
            cluster = %deps.config.cluster_name,
            "ignored an event about another cluster"
        );
        return Some(summary(event, &Outcome::Nothing(OTHER_CLUSTER)));
    }
    (!deps.config.manages(&event.detail.namespace)).then(|| {
        summary(
            event,
            &Outcome::Nothing("the namespace is not managed (WATCH_NAMESPACES)"),
        )
    })
}

/// The outcome of an event whose `detail.cluster` is not the function's `CLUSTER_NAME`.
pub const OTHER_CLUSTER: &str = "the event is about another cluster than CLUSTER_NAME";

/// Prints what this instance's reconciler measured since the last print as EMF lines: the
/// latencies from creation to address (`ServiceAddressSeconds`, `PodAddressSeconds`) and the
/// allocation outcomes (`AllocationsMade`, ...) of `deps.function`.
pub fn print_run_metrics(deps: &Deps, timestamp_ms: i64) {
    let measured = deps.reconciler.take_run_metrics();
    for line in nlb_port_pool::metrics::run_lines(&deps.function, &measured, timestamp_ms) {
        println!("{line}");
    }
}

fn summary(event: &ServiceEvent, outcome: &Outcome) -> Summary {
    tracing::info!(service = %event.key(), uid = %event.detail.uid, ?outcome, "reconciled");
    Summary {
        service: event.key().to_string(),
        outcome: format!("{outcome:?}"),
    }
}

/// `Service Changed`: allocate, repair, or release a Service that no longer asks.
pub async fn on_service_changed(deps: &Deps, event: Event) -> Result<Summary, Error> {
    let parsed = parse(&event.payload, DetailType::ServiceChanged)?;
    if let Some(skipped) = not_ours(deps, &parsed) {
        return Ok(skipped);
    }
    let cluster = deps.cluster().await?;
    let d = &parsed.detail;
    let token = run_token(&event);
    let outcome = retry_busy(deps.busy_wait, &parsed, || {
        deps.reconciler
            .reconcile_service_as(&token, &cluster, &d.namespace, &d.name, Some(&d.uid))
    })
    .await
    .map_err(|e| log_failure(&parsed, e))?;
    print_run_metrics(deps, chrono::Utc::now().timestamp_millis());
    Ok(summary(&parsed, &outcome))
}

/// `Service Deleted`: release the Service (or the object of that uid) and let it go.
pub async fn on_service_deleted(deps: &Deps, event: Event) -> Result<Summary, Error> {
    let parsed = parse(&event.payload, DetailType::ServiceDeleted)?;
    if let Some(skipped) = not_ours(deps, &parsed) {
        return Ok(skipped);
    }
    let cluster = deps.cluster().await?;
    let d = &parsed.detail;
    let token = run_token(&event);
    let outcome = retry_busy(deps.busy_wait, &parsed, || {
        deps.reconciler
            .release_if_unwanted_as(&token, &cluster, &d.namespace, &d.name, &d.uid)
    })
    .await
    .map_err(|e| log_failure(&parsed, e))?;
    print_run_metrics(deps, chrono::Utc::now().timestamp_millis());
    Ok(summary(&parsed, &outcome))
}

/// `Endpoints Changed`: bring the Service's targets in line with its ready endpoints.
pub async fn on_endpoints_changed(deps: &Deps, event: Event) -> Result<Summary, Error> {
    let parsed = parse(&event.payload, DetailType::EndpointsChanged)?;
    if let Some(skipped) = not_ours(deps, &parsed) {
        return Ok(skipped);
    }
    let cluster = deps.cluster().await?;
    let d = &parsed.detail;
    let outcome = retry_busy(deps.busy_wait, &parsed, || {
        deps.reconciler
            .sync_targets(&cluster, &d.namespace, &d.name)
    })
    .await
    .map_err(|e| log_failure(&parsed, e))?;
    print_run_metrics(deps, chrono::Utc::now().timestamp_millis());
    Ok(summary(&parsed, &outcome))
}

/// The schedule: one sweep run; prints its metrics as EMF lines.
pub async fn on_schedule(deps: &Deps, event: Event) -> Result<SweepSummary, Error> {
    let e = &event.payload;
    if e.source != "aws.events" || e.detail_type != "Scheduled Event" {
        return Err(format!(
            "invalid event: the sweep runs on schedule events (source aws.events, detail-type \
             Scheduled Event), got {:?} / {:?}",
            e.source, e.detail_type
        )
        .into());
    }
    let cluster = deps.cluster().await?;
    let limits = SweepLimits {
        stop_by: time_budget::stop_by(
            event.context.deadline,
            std::time::SystemTime::now(),
            deps.function_timeout,
        ),
        ..deps.sweep_limits
    };
    let report = deps
        .reconciler
        .sweep(&cluster, deps.cursors.as_ref(), limits)
        .await?;
    let now = e.time.map_or_else(
        || chrono::Utc::now().timestamp_millis(),
        |t| t.timestamp_millis(),
    );
    for line in nlb_port_pool::metrics::sweep_lines(&report, now) {
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
    Ok(SweepSummary {
        orphan_claims_released: report.orphan_claims_released,
        leaked_listeners_deleted: report.leaked_listeners_deleted,
        leaked_target_groups_deleted: report.leaked_target_groups_deleted,
        services_reconciled: report.services_reconciled,
        pending_retried: report.pending_retried,
        failures: report.failures,
        deletions_blocked: report.deletions_blocked,
        deletions_left: report.deletions_left,
        nlbs_missing: report.nlbs_missing,
        services_moved: report.services_moved,
        retries_left: report.retries_left,
        cut_short: report.cut_short,
    })
}

/// What a sweep run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepSummary {
    /// Claims released because their Service is gone.
    pub orphan_claims_released: usize,
    /// Listeners no claim accounted for, deleted.
    pub leaked_listeners_deleted: usize,
    /// Target groups no claim or Service accounted for, deleted.
    pub leaked_target_groups_deleted: usize,
    /// Services reconciled.
    pub services_reconciled: usize,
    /// Of those, Pending or in Error.
    pub pending_retried: usize,
    /// Reconciles that failed.
    pub failures: usize,
    /// Why nothing was deleted on absence, when nothing was allowed to be.
    pub deletions_blocked: Option<String>,
    /// Deletions found and left to later runs (blocked, or beyond `SWEEP_MAX_DELETIONS`).
    pub deletions_left: usize,
    /// NLBs of the pools that do not exist (deleted out of band; remove them from `POOLS`).
    pub nlbs_missing: Vec<String>,
    /// Services moved off an NLB that is gone or out of the pools, or a port out of range,
    /// or whose listener is gone.
    pub services_moved: usize,
    /// Services that needed a retry and were left to later runs (`retriesPerRun` reached).
    pub retries_left: usize,
    /// The run stopped starting work at two thirds of its time; later runs go on.
    pub cut_short: bool,
}

/// The token of this invocation's run: its Lambda request id (with random bits), so a claim
/// names the invocation that holds it.
fn run_token(event: &Event) -> RunToken {
    RunToken::for_request(&event.context.request_id)
}

/// Runs `attempt` again while another run holds the Service's claims (a duplicate delivery,
/// the sweep, an event for the same Service), with a short growing pause, for at most
/// `busy_wait`. Routine overlaps then end here instead of in EventBridge's retries and the
/// dead-letter queue; a run still busy after that fails as retryable.
async fn retry_busy<F, Fut>(
    busy_wait: std::time::Duration,
    event: &ServiceEvent,
    attempt: F,
) -> Result<Outcome, ReconcileError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, ReconcileError>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = BUSY_FIRST_PAUSE;
    loop {
        match attempt().await {
            Err(ReconcileError::Busy { reason, .. }) if started.elapsed() + pause <= busy_wait => {
                tracing::info!(service = %event.key(), reason, pause_ms = pause.as_millis() as u64,
                    "another run is on this Service; trying again");
                // Jitter, so runs that met once do not meet again on the same beat.
                let random = RunToken::random();
                let jitter = std::time::Duration::from_millis(
                    u64::from_str_radix(&random.as_str()[..4], 16).unwrap_or(0) % 50,
                );
                tokio::time::sleep(pause + jitter).await;
                pause = (pause * 2).min(BUSY_MAX_PAUSE);
            }
            other => return other,
        }
    }
}

/// The first pause after a busy answer; it doubles up to [`BUSY_MAX_PAUSE`].
const BUSY_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest pause between two attempts.
const BUSY_MAX_PAUSE: std::time::Duration = std::time::Duration::from_millis(1600);

fn log_failure(event: &ServiceEvent, err: nlb_port_pool::reconcile::Error) -> Error {
    tracing::warn!(service = %event.key(), retryable = err.is_retryable(), error = %err, "reconcile failed");
    Box::new(err)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn event() -> ServiceEvent {
        let detail = serde_json::json!({
            "version": 1, "cluster": "c", "namespace": "n", "name": "s", "uid": "0a-1",
            "resourceVersion": "1", "deleting": false, "observedAt": "2026-11-26T10:00:00Z"
        });
        ServiceEvent::from_parts(
            Some(nlb_port_pool::event::EVENT_SOURCE),
            Some("Service Changed"),
            &detail,
        )
        .expect("event")
    }

    fn busy() -> ReconcileError {
        ReconcileError::Busy {
            service: "c/n/s".into(),
            reason: "another run".into(),
        }
    }

    #[tokio::test]
    async fn a_busy_run_is_tried_again_until_the_other_run_is_done() {
        // GIVEN a Service another run holds for the first two attempts
        let attempts = AtomicUsize::new(0);
        let run = || async {
            match attempts.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(busy()),
                _ => Ok(Outcome::Allocated {
                    listeners: 1,
                    claimed: 0,
                }),
            }
        };

        // WHEN the handler runs it with the default wait
        let outcome = retry_busy(DEFAULT_BUSY_WAIT, &event(), run).await;

        // THEN it succeeds at the third attempt, with no failure for EventBridge to retry
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_run_still_busy_after_the_wait_fails_as_retryable() {
        // GIVEN a Service another run holds throughout, and a wait of a quarter second
        let attempts = AtomicUsize::new(0);
        let run = || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err(busy())
        };

        // WHEN the handler runs it
        let started = std::time::Instant::now();
        let outcome = retry_busy(Duration::from_millis(250), &event(), run).await;

        // THEN it gives up within the wait, failing as retryable (EventBridge tries later)
        let err = outcome.expect_err("still busy");
        assert!(err.is_retryable(), "{err}");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() < Duration::from_millis(400));
    }
}
