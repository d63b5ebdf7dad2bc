//! The bus -> rule -> queue the tests read the forwarder's events from.

use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use testbed::{moto, unique_name};

/// A bus of its own with a queue behind a rule matching the forwarder's events.
pub struct Inbox {
    sdk: SdkConfig,
    queue_url: String,
    namespace: String,
    /// Every event for `namespace` received so far.
    pub events: Vec<Value>,
}

/// Creates the bus `bus`.
pub async fn create_bus(sdk: &SdkConfig, bus: &str) {
    aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(bus)
        .send()
        .await
        .expect("creating the bus");
}

impl Inbox {
    /// A queue receiving every forwarder event of `bus` (which must exist); only events
    /// about `namespace` are kept, since other tests share the cluster.
    pub async fn new(sdk: &SdkConfig, bus: &str, namespace: &str) -> Self {
        // The rule filters on the namespace too: moto delivers to SQS slowly (milliseconds
        // per event), and an all-namespace forwarder also sends other tests' Services.
        let pattern =
            json!({"source": ["nlb-port-pool.forwarder"], "detail": {"namespace": [namespace]}});
        let queue_url =
            moto::queue_behind_rule(sdk, bus, &unique_name("fwd-q"), &pattern.to_string()).await;
        Self {
            sdk: sdk.clone(),
            queue_url,
            namespace: namespace.to_owned(),
            events: Vec::new(),
        }
    }

    /// Collects what arrives for about `wait`.
    pub async fn collect(&mut self, wait: Duration) {
        let got = moto::receive_json(&self.sdk, &self.queue_url, usize::MAX, wait).await;
        self.events.extend(
            got.into_iter()
                .filter(|e| e["detail"]["namespace"] == self.namespace.as_str()),
        );
    }

    /// The events of `detail_type` for Service `name`, in arrival order.
    pub fn of(&self, detail_type: &str, name: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["detail-type"] == detail_type && e["detail"]["name"] == name)
            .collect()
    }

    /// Waits until `n` events of `detail_type` for `name` arrived; returns the last.
    pub async fn wait_for(
        &mut self,
        detail_type: &str,
        name: &str,
        n: usize,
        timeout: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.of(detail_type, name).len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} x {detail_type:?} for {name} did not arrive in {timeout:?}; got {:#?}",
                self.summary()
            );
            self.collect(Duration::from_millis(500)).await;
        }
        self.of(detail_type, name)
            .last()
            .map(|v| (*v).clone())
            .unwrap_or_default()
    }

    /// `(detail-type, name)` of everything received, for messages.
    pub fn summary(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .map(|e| {
                (
                    e["detail-type"].as_str().unwrap_or_default().to_owned(),
                    e["detail"]["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}
