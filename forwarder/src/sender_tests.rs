//! Unit tests of batching, retry and accounting with an in-memory bus.

use std::sync::Mutex;

use super::*;
use chrono::Utc;
use nlb_port_pool::contract::event::DETAIL_VERSION;

/// What the double does on its next calls; after the script it accepts everything.
#[derive(Debug, Clone)]
enum Step {
    Refuse(Vec<usize>),
    Fail,
}

#[derive(Default)]
struct MemorySink {
    script: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<Vec<String>>>,
    always_fail: bool,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl MemorySink {
    fn scripted(steps: Vec<Step>) -> Self {
        Self {
            script: Mutex::new(steps.into()),
            ..Self::default()
        }
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().expect("lock").clone()
    }

    fn accepted_names(&self) -> Vec<String> {
        // Names whose last attempt was accepted: recorded by the sink itself below.
        self.calls().concat()
    }
}

impl EventSink for MemorySink {
    async fn put(&self, batch: &[Entry]) -> Result<Vec<EntryOutcome>, SinkError> {
        if let Some(gate) = &self.gate {
            let _permit = gate
                .acquire()
                .await
                .map_err(|_| SinkError("closed".into()))?;
        }
        let step = self.script.lock().expect("lock").pop_front();
        if self.always_fail || matches!(step, Some(Step::Fail)) {
            return Err(SinkError("bus not found".into()));
        }
        let refused = match step {
            Some(Step::Refuse(idx)) => idx,
            _ => Vec::new(),
        };
        let mut accepted = Vec::new();
        let outcomes = batch
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if refused.contains(&i) {
                    EntryOutcome::Refused("ThrottlingException".into())
                } else {
                    let v: serde_json::Value = serde_json::from_str(&e.detail).expect("json");
                    accepted.push(v["name"].as_str().unwrap_or_default().to_owned());
                    EntryOutcome::Accepted
                }
            })
            .collect();
        self.calls.lock().expect("lock").push(accepted);
        Ok(outcomes)
    }
}

fn event(i: usize) -> QueuedEvent {
    QueuedEvent {
        detail_type: DetailType::ServiceChanged,
        detail: ServiceEventDetail {
            version: DETAIL_VERSION,
            cluster: "prod".into(),
            namespace: "games".into(),
            name: format!("room-{i}"),
            uid: "0b9c1f0e-2d3a-4c5b-8e7f-1a2b3c4d5e6f".into(),
            resource_version: "1".into(),
            deleting: false,
            observed_at: Utc::now(),
        },
        observed: Instant::now(),
    }
}

fn settings() -> SenderSettings {
    SenderSettings {
        concurrency: 1,
        capacity: 100,
        retry_for: Duration::from_secs(60),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(2),
    }
}

/// Queues `n` events, closes the queue and runs the sender to the end.
async fn send_all(sink: Arc<MemorySink>, settings: SenderSettings, n: usize) -> Arc<Metrics> {
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = mpsc::channel(n.max(1));
    for i in 0..n {
        tx.send(event(i)).await.expect("queue");
        metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
    }
    drop(tx);
    let (_abandon_tx, abandon_rx) = watch::channel(false);
    run(sink, settings, rx, Arc::clone(&metrics), abandon_rx).await;
    metrics
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn expected(n: usize) -> Vec<String> {
    sorted((0..n).map(|i| format!("room-{i}")).collect())
}

#[tokio::test(start_paused = true)]
async fn batches_hold_at_most_ten_entries_and_every_event_is_sent_once() {
    let sink = Arc::new(MemorySink::default());
    let metrics = send_all(Arc::clone(&sink), settings(), 25).await;
    let calls = sink.calls();
    assert!(
        calls.iter().all(|c| c.len() <= MAX_BATCH_ENTRIES),
        "{calls:?}"
    );
    assert_eq!(calls.len(), 3, "25 queued events fit in 3 calls: {calls:?}");
    assert_eq!(sorted(sink.accepted_names()), expected(25));
    assert_eq!(metrics.sent(DetailType::ServiceChanged), 25);
    assert_eq!(metrics.queue_depth.load(Ordering::Relaxed), 0);
    assert_eq!(metrics.put_calls.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn refused_entries_are_retried_until_accepted() {
    let sink = Arc::new(MemorySink::scripted(vec![
        Step::Refuse(vec![1, 3]),
        Step::Refuse(vec![0]),
    ]));
    let metrics = send_all(Arc::clone(&sink), settings(), 5).await;
    assert_eq!(sorted(sink.accepted_names()), expected(5));
    assert_eq!(metrics.sent(DetailType::ServiceChanged), 5);
    assert_eq!(metrics.failed.load(Ordering::Relaxed), 3);
    assert_eq!(
        metrics.refused.load(Ordering::Relaxed),
        3,
        "refused one by one by the bus: counted apart, never silent"
    );
    assert_eq!(metrics.retried.load(Ordering::Relaxed), 3);
    assert_eq!(metrics.dropped.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_call_is_retried_with_backoff() {
    let sink = Arc::new(MemorySink::scripted(vec![
        Step::Fail,
        Step::Fail,
        Step::Fail,
    ]));
    let start = Instant::now();
    let metrics = send_all(Arc::clone(&sink), settings(), 3).await;
    assert_eq!(sorted(sink.accepted_names()), expected(3));
    assert_eq!(metrics.failed.load(Ordering::Relaxed), 9);
    assert_eq!(
        metrics.refused.load(Ordering::Relaxed),
        0,
        "a failed call is no refusal"
    );
    // 100 + 200 + 400 ms, each within ±20 %.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(560), "{waited:?}");
    assert!(waited <= Duration::from_millis(840), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn entries_refused_for_too_long_are_dropped_and_counted() {
    let sink = Arc::new(MemorySink {
        always_fail: true,
        ..MemorySink::default()
    });
    let s = SenderSettings {
        retry_for: Duration::from_secs(5),
        ..settings()
    };
    let metrics = send_all(sink, s, 4).await;
    assert_eq!(metrics.dropped.load(Ordering::Relaxed), 4);
    assert_eq!(metrics.sent(DetailType::ServiceChanged), 0);
    assert_eq!(metrics.queue_depth.load(Ordering::Relaxed), 0);
    assert!(metrics.retried.load(Ordering::Relaxed) >= 4);
}

#[tokio::test(start_paused = true)]
async fn a_full_sender_holds_the_queue_back_and_abandon_counts_what_is_left() {
    // GIVEN a bus that does not answer and a sender that holds at most 10 entries
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let sink = Arc::new(MemorySink {
        gate: Some(Arc::clone(&gate)),
        ..MemorySink::default()
    });
    let s = SenderSettings {
        capacity: 10,
        ..settings()
    };
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = mpsc::channel(5);
    let (abandon_tx, abandon_rx) = watch::channel(false);
    let task = tokio::spawn(run(sink, s, rx, Arc::clone(&metrics), abandon_rx));

    // WHEN more is queued than sender and queue hold
    let mut queued = 0;
    for i in 0..40 {
        match tokio::time::timeout(Duration::from_millis(50), tx.send(event(i))).await {
            Ok(Ok(())) => {
                queued += 1;
                metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
            }
            _ => break,
        }
    }

    // THEN the producer waits before more than sender (10) and queue (5) hold
    assert!((5..=15).contains(&queued), "{queued}");
    // AND abandoning counts every held event as dropped
    abandon_tx.send(true).expect("abandon");
    task.await.expect("sender ends");
    assert_eq!(metrics.dropped.load(Ordering::Relaxed), queued);
    assert_eq!(metrics.queue_depth.load(Ordering::Relaxed), 0);
    drop(gate);
}

#[tokio::test(start_paused = true)]
async fn calls_run_concurrently_up_to_the_limit() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let sink = Arc::new(MemorySink {
        gate: Some(Arc::clone(&gate)),
        ..MemorySink::default()
    });
    let s = SenderSettings {
        concurrency: 3,
        ..settings()
    };
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = mpsc::channel(100);
    let (_abandon_tx, abandon_rx) = watch::channel(false);
    let task = tokio::spawn(run(
        Arc::clone(&sink),
        s,
        rx,
        Arc::clone(&metrics),
        abandon_rx,
    ));
    for i in 0..50 {
        tx.send(event(i)).await.expect("queue");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        metrics.put_calls.load(Ordering::Relaxed),
        3,
        "three calls wait at the gate"
    );
    gate.add_permits(1000);
    drop(tx);
    task.await.expect("sender ends");
    assert_eq!(sorted(sink.accepted_names()), expected(50));
}

#[test]
fn oversized_entries_are_dropped_not_sent() {
    let metrics = Metrics::default();
    let mut ready = VecDeque::new();
    let big = QueuedEvent {
        detail: ServiceEventDetail {
            name: "x".repeat(MAX_BATCH_BYTES),
            ..event(0).detail
        },
        ..event(0)
    };
    let now = Instant::now();
    for e in [&big, &event(1)] {
        ready.push_back(Entry::new(
            e,
            serde_json::to_string(&e.detail).expect("json"),
            now,
        ));
    }
    let batch = take_batch(&mut ready, &metrics);
    assert_eq!(batch.len(), 1);
    assert_eq!(metrics.dropped.load(Ordering::Relaxed), 1);
}
