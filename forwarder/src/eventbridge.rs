//! The EventBridge side of [`EventSink`]: one PutEvents call per batch.

use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use nlb_port_pool::contract::event::EVENT_SOURCE;

use crate::sender::{Entry, EntryOutcome, EventSink, SinkError};

/// Puts events on one bus.
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    /// A sink for `bus` (name or ARN). Its calls carry the forwarder's SDK app id.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        let mut config = client.config().to_builder();
        config.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name("forwarder"));
        Self {
            client: aws_sdk_eventbridge::Client::from_conf(config.build()),
            bus: bus.into(),
        }
    }
}

impl EventSink for EventBridgeSink {
    async fn put(&self, batch: &[Entry]) -> Result<Vec<EntryOutcome>, SinkError> {
        let entries = batch
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(EVENT_SOURCE)
                    .detail_type(e.detail_type.as_str())
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                // The service's code and message say it all; the full context is for the
                // errors without them (timeouts, connection failures).
                SinkError(match (e.code(), e.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_owned(),
                    _ => DisplayErrorContext(&e).to_string(),
                })
            })?;
        // The result entries are in request order; a missing one is treated as refused by
        // the sender.
        Ok(out
            .entries()
            .iter()
            .map(|r| match r.error_code() {
                None => EntryOutcome::Accepted,
                Some(code) => EntryOutcome::Refused(code.to_owned()),
            })
            .collect())
    }
}
