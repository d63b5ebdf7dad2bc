//! The signals the functions send each other through the stack's bus.

use async_trait::async_trait;
use nlb_port_pool::contract::pool_event::{
    FUNCTIONS_SOURCE, POOL_LOW, PoolLow, TARGETS_REGISTERED, TargetsRegistered,
};
use nlb_port_pool::reconcile::GrowthSignal;

/// The signals as events on the stack's bus: `Pool Low` to the pool function, `Targets
/// Registered` to the reachability function.
pub struct EventBridgeSignal {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    pool_low: bool,
    /// The function sending, for its metrics.
    function: String,
}

impl EventBridgeSignal {
    /// Puts events on `bus` with `client`, as `function`.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: &str, function: &str) -> Self {
        Self {
            client,
            bus: bus.to_owned(),
            pool_low: true,
            function: function.to_owned(),
        }
    }

    /// Sends no `Pool Low` (the pool function does not signal itself).
    pub fn without_pool_low(mut self) -> Self {
        self.pool_low = false;
        self
    }

    async fn put(&self, detail_type: &str, detail: String) -> Result<(), String> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(FUNCTIONS_SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "PutEvents: {}",
                    nlb_port_pool::adapters::aws::error::describe(&e).0
                )
            })?;
        if out.failed_entry_count() > 0 {
            // Refused entry by entry with HTTP 200: said, counted and alarmed on
            // (SignalsRefusedAlarm), never dropped in silence.
            let codes: Vec<&str> = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .collect();
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            tracing::error!(detail_type, codes = ?codes, why = %why, "PutEvents refused the entry");
            println!(
                "{}",
                nlb_port_pool::reconcile::metrics::signal_refused_line(
                    &self.function,
                    detail_type,
                    chrono::Utc::now().timestamp_millis()
                )
            );
            return Err(format!("PutEvents refused the {detail_type} event: {why}"));
        }
        Ok(())
    }
}

#[async_trait]
impl GrowthSignal for EventBridgeSignal {
    async fn pool_low(&self, cluster: &str, pool: &str, reason: &str) -> Result<(), String> {
        if !self.pool_low {
            return Ok(());
        }
        let detail = serde_json::to_string(&PoolLow::new(cluster, pool, reason))
            .map_err(|e| format!("encoding the Pool Low detail: {e}"))?;
        self.put(POOL_LOW, detail).await
    }

    async fn checks_due(&self, cluster: &str) -> Result<(), String> {
        let detail = serde_json::to_string(&TargetsRegistered::new(cluster))
            .map_err(|e| format!("encoding the Targets Registered detail: {e}"))?;
        self.put(TARGETS_REGISTERED, detail).await
    }
}
