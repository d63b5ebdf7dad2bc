//! The Lambda handlers: an EventBridge event in, a reconcile, a summary out.
//!
//! Outcomes the user must act on (bad annotations, a full pool) are successes here: they are
//! reported on the Service, and retrying would not help. Everything else is returned as an
//! error, so EventBridge delivers the event again (and finally to the dead-letter queue).

mod deps;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use nlb_port_pool::event::{DetailType, ServiceEvent};
use nlb_port_pool::reconcile::Outcome;
use serde::Serialize;

pub use deps::{Deps, StartupError};

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
    let outcome = deps
        .reconciler
        .reconcile_service(&cluster, &d.namespace, &d.name, Some(&d.uid))
        .await
        .map_err(|e| log_failure(&parsed, e))?;
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
    let outcome = deps
        .reconciler
        .release_if_unwanted(&cluster, &d.namespace, &d.name, &d.uid)
        .await
        .map_err(|e| log_failure(&parsed, e))?;
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
    let outcome = deps
        .reconciler
        .sync_targets(&cluster, &d.namespace, &d.name)
        .await
        .map_err(|e| log_failure(&parsed, e))?;
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
    let report = deps
        .reconciler
        .sweep(&cluster, deps.cursors.as_ref(), deps.sweep_limits)
        .await?;
    let now = e.time.map_or_else(
        || chrono::Utc::now().timestamp_millis(),
        |t| t.timestamp_millis(),
    );
    for line in nlb_port_pool::metrics::sweep_lines(&report, now) {
        // EMF lines go to stdout on their own, not through the (JSON) tracing formatter.
        println!("{line}");
    }
    tracing::info!(?report, "swept");
    Ok(SweepSummary {
        orphan_claims_released: report.orphan_claims_released,
        leaked_listeners_deleted: report.leaked_listeners_deleted,
        leaked_target_groups_deleted: report.leaked_target_groups_deleted,
        services_reconciled: report.services_reconciled,
        pending_retried: report.pending_retried,
        failures: report.failures,
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
}

fn log_failure(event: &ServiceEvent, err: nlb_port_pool::reconcile::Error) -> Error {
    tracing::warn!(service = %event.key(), retryable = err.is_retryable(), error = %err, "reconcile failed");
    Box::new(err)
}
