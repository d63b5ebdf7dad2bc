//! The Service events' functions (allocate, release, sync-targets): one pipeline, an event in,
//! a reconcile, a summary out, each function's only difference the reconcile it runs.
//!
//! Outcomes the user must act on (bad annotations, a full pool) are successes here: they are
//! reported on the Service, and retrying would not help. Everything else is returned as an
//! error, so EventBridge delivers the event again (and finally to the dead-letter queue).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use nlb_port_pool::contract::event::{DetailType, ServiceEvent};
use nlb_port_pool::model::claims::RunToken;
use nlb_port_pool::reconcile::{Error as ReconcileError, Outcome};
use serde::Serialize;

use crate::busy::retry_busy;
use crate::deps::{Deps, print_run_metrics};
use crate::invocation::{Error, Event, OTHER_CLUSTER};

/// What a handler did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `cluster/namespace/name`.
    pub service: String,
    /// The outcome, e.g. `Allocated { listeners: 1, claimed: 1 }`.
    pub outcome: String,
}

/// `Service Changed`: allocate, repair, or release a Service that no longer asks.
pub async fn on_service_changed(deps: &Deps, event: Event) -> Result<Summary, Error> {
    on_service_event(deps, event, DetailType::ServiceChanged).await
}

/// `Service Deleted`: release the Service (or the object of that uid) and let it go.
pub async fn on_service_deleted(deps: &Deps, event: Event) -> Result<Summary, Error> {
    on_service_event(deps, event, DetailType::ServiceDeleted).await
}

/// `Endpoints Changed`: bring the Service's targets in line with its ready endpoints.
pub async fn on_endpoints_changed(deps: &Deps, event: Event) -> Result<Summary, Error> {
    on_service_event(deps, event, DetailType::EndpointsChanged).await
}

/// An event of kind `handles`: validated, skipped when it is not ours, then the reconcile of
/// that kind, tried again while another run is on the Service; its run metrics printed.
async fn on_service_event(
    deps: &Deps,
    event: Event,
    handles: DetailType,
) -> Result<Summary, Error> {
    let parsed = parse(&event.payload, handles)?;
    if let Some(skipped) = not_ours(deps, &parsed) {
        return Ok(skipped);
    }
    let cluster = deps.cluster().await?;
    let (reconciler, cluster, d) = (&deps.reconciler, &cluster, &parsed.detail);
    // The token of this invocation's run: its Lambda request id (with random bits), so a
    // claim names the invocation that holds it.
    let token = &RunToken::for_request(&event.context.request_id);
    let outcome = retry_busy(deps.busy_wait, &parsed, move || async move {
        match handles {
            DetailType::ServiceChanged => {
                reconciler
                    .reconcile_service_as(token, cluster, &d.namespace, &d.name, Some(&d.uid))
                    .await
            }
            DetailType::ServiceDeleted => {
                reconciler
                    .release_if_unwanted_as(token, cluster, &d.namespace, &d.name, &d.uid)
                    .await
            }
            DetailType::EndpointsChanged => {
                reconciler
                    .sync_targets(cluster, &d.namespace, &d.name)
                    .await
            }
        }
    })
    .await
    .map_err(|e| log_failure(&parsed, e))?;
    print_run_metrics(deps, chrono::Utc::now().timestamp_millis());
    Ok(summary(&parsed, &outcome))
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

fn summary(event: &ServiceEvent, outcome: &Outcome) -> Summary {
    tracing::info!(service = %event.key(), uid = %event.detail.uid, ?outcome, "reconciled");
    Summary {
        service: event.key().to_string(),
        outcome: format!("{outcome:?}"),
    }
}

fn log_failure(event: &ServiceEvent, err: ReconcileError) -> Error {
    tracing::warn!(service = %event.key(), retryable = err.is_retryable(), error = %err, "reconcile failed");
    Box::new(err)
}
