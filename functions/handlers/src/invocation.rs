//! What every handler takes and answers: the Lambda event, the error, and what is read off
//! every event alike.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;

/// The event type every handler takes: any `detail`, validated by the handler.
pub type Event = LambdaEvent<EventBridgeEvent<serde_json::Value>>;

/// A handler's error: what failed and why. Lambda reports it and EventBridge retries.
pub type Error = lambda_runtime::Error;

/// The outcome of an event whose `detail.cluster` is not the function's `CLUSTER_NAME`.
pub const OTHER_CLUSTER: &str = "the event is about another cluster than CLUSTER_NAME";

/// Whether `event` is one of EventBridge's schedule events.
pub(crate) fn is_scheduled(event: &EventBridgeEvent<serde_json::Value>) -> bool {
    event.source == "aws.events" && event.detail_type == "Scheduled Event"
}

/// When `event` happened (milliseconds since the epoch): its `time`, else now. The metrics'
/// timestamp.
pub(crate) fn event_time_ms(event: &EventBridgeEvent<serde_json::Value>) -> i64 {
    event.time.map_or_else(
        || chrono::Utc::now().timestamp_millis(),
        |t| t.timestamp_millis(),
    )
}
