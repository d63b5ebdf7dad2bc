//! SQS receivers that stamp each event's arrival.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Receivers long-polling one queue, stamping each message's arrival.
pub struct Receiver {
    stop: Arc<AtomicBool>,
    rx: mpsc::UnboundedReceiver<((String, String), Instant)>,
}

impl Receiver {
    pub fn start(sdk: &SdkConfig, queue: &str, namespace: &str, tasks: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        for _ in 0..tasks {
            let (sqs, queue, ns) = (
                aws_sdk_sqs::Client::new(sdk),
                queue.to_owned(),
                namespace.to_owned(),
            );
            let (stop, tx) = (Arc::clone(&stop), tx.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(out) = sqs
                        .receive_message()
                        .queue_url(&queue)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .visibility_timeout(600)
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let now = Instant::now();
                    let mut handles = Vec::new();
                    for m in out.messages() {
                        handles.extend(m.receipt_handle().map(str::to_owned));
                        let Ok(v) = serde_json::from_str::<Value>(m.body().unwrap_or_default())
                        else {
                            continue;
                        };
                        let d = &v["detail"];
                        if d["namespace"] != ns.as_str() {
                            continue;
                        }
                        let key = (
                            d["name"].as_str().unwrap_or_default().to_owned(),
                            d["resourceVersion"].as_str().unwrap_or_default().to_owned(),
                        );
                        let _ = tx.send((key, now));
                    }
                    // moto's SendMessage walks the whole queue: keep it short.
                    if !handles.is_empty() {
                        let entries = handles.into_iter().enumerate().filter_map(|(i, h)| {
                            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(h)
                                .build()
                                .ok()
                        });
                        let _ = sqs
                            .delete_message_batch()
                            .queue_url(&queue)
                            .set_entries(Some(entries.collect()))
                            .send()
                            .await;
                    }
                }
            });
        }
        Self { stop, rx }
    }

    /// Arrival times of the wanted events, waiting at most `timeout` for all of them.
    pub async fn until<V>(
        &mut self,
        wanted: &HashMap<(String, String), V>,
        timeout: Duration,
    ) -> Vec<((String, String), Instant)> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while seen.len() < wanted.len() {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((key, at))) => {
                    if wanted.contains_key(&key) && seen.insert(key.clone()) {
                        got.push((key, at));
                    }
                }
                _ => {
                    eprintln!("only {} of {} events arrived", seen.len(), wanted.len());
                    break;
                }
            }
        }
        got
    }

    /// Stops the receiving tasks (after their current long poll).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
