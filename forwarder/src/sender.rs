//! Batches queued events into PutEvents calls, retries what the bus refuses, and accounts for
//! every event: sent, or dropped with a count and a log line, never lost silently.
//!
//! The bus sits behind [`EventSink`], so the batching and retry rules are tested with an
//! in-memory double. The queue is a bounded channel: when the bus is slow or refusing, the
//! sender stops taking from it, the channel fills, and the watch waits (backpressure).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nlb_port_pool::contract::event::{DetailType, EVENT_SOURCE, ServiceEventDetail};
use nlb_port_pool::model::backoff::{Backoff, Jitter, spread_factor};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, warn};

use crate::metrics::Metrics;

/// PutEvents takes at most this many entries per call.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// PutEvents takes at most this many bytes per call (256 KB).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// An event waiting in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// The detail-type.
    pub detail_type: DetailType,
    /// The detail.
    pub detail: ServiceEventDetail,
    /// When the watch event that produced it was handled, for the lag histogram.
    pub observed: Instant,
}

/// One PutEvents entry and its retry state.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The detail-type.
    pub detail_type: DetailType,
    /// The detail, as JSON.
    pub detail: String,
    /// `namespace/name`, for logs.
    key: String,
    queued_at: Instant,
    attempts: u32,
    size: usize,
}

impl Entry {
    fn new(event: &QueuedEvent, detail: String, now: Instant) -> Self {
        // AWS counts source, detail-type, detail and 14 bytes of time; the bus name is added
        // to stay on the safe side.
        let size = 14 + EVENT_SOURCE.len() + event.detail_type.as_str().len() + detail.len() + 256;
        Self {
            detail_type: event.detail_type,
            detail,
            key: format!("{}/{}", event.detail.namespace, event.detail.name),
            queued_at: event.observed.min(now),
            attempts: 0,
            size,
        }
    }
}

/// What the bus said about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Accepted.
    Accepted,
    /// Refused, with the bus's error code.
    Refused(String),
}

/// A PutEvents call that failed as a whole.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where events go: EventBridge in production, memory in tests.
pub trait EventSink: Send + Sync + 'static {
    /// Puts one batch; the outcomes are in the order of `batch`.
    fn put(
        &self,
        batch: &[Entry],
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, SinkError>> + Send;
}

/// How the sender batches and retries.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// PutEvents calls in flight at once.
    pub concurrency: usize,
    /// Entries held by the sender (waiting, retrying, in flight) before it stops taking more.
    pub capacity: usize,
    /// How long an entry is retried before it is dropped.
    pub retry_for: Duration,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
}

impl SenderSettings {
    /// The retry pause before jitter: `backoff_base` doubling to `backoff_cap`.
    fn backoff(&self) -> Backoff {
        Backoff {
            first: self.backoff_base,
            cap: self.backoff_cap,
            jitter: Jitter::None,
        }
    }
}

/// The spread of the retry pauses, so replicas and batches do not retry in step: one draw per
/// settled batch keeps its refused entries together for the retry.
const RETRY_SPREAD: f64 = 0.2;

/// Sends everything from `queue` until it is closed and empty, or until `abandon` turns true
/// (step-down, drain timeout), when whatever is left is counted as dropped.
pub async fn run<S: EventSink>(
    sink: Arc<S>,
    settings: SenderSettings,
    mut queue: mpsc::Receiver<QueuedEvent>,
    metrics: Arc<Metrics>,
    mut abandon: watch::Receiver<bool>,
) {
    let mut ready: VecDeque<Entry> = VecDeque::new();
    let mut waiting: Vec<(Instant, Entry)> = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    let mut flying = 0usize;
    let mut closed = false;
    // A dropped abandon handle means nobody can abandon any more: stop polling it.
    let mut can_abandon = true;
    loop {
        let now = Instant::now();
        // Retries go first: they are the oldest.
        let (due, later): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|(at, _)| *at <= now);
        waiting = later;
        for (_, entry) in due.into_iter().rev() {
            ready.push_front(entry);
        }
        let held = |r: &VecDeque<Entry>, w: &Vec<(Instant, Entry)>, f: usize| r.len() + w.len() + f;
        while !closed && held(&ready, &waiting, flying) < settings.capacity {
            match queue.try_recv() {
                Ok(event) => push(&mut ready, event, &metrics, now),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
            }
        }
        while in_flight.len() < settings.concurrency && !ready.is_empty() {
            let batch = take_batch(&mut ready, &metrics);
            if batch.is_empty() {
                continue;
            }
            flying += batch.len();
            metrics.put_calls.fetch_add(1, Ordering::Relaxed);
            let sink = Arc::clone(&sink);
            in_flight.push(async move {
                let result = sink.put(&batch).await;
                (batch, result)
            });
        }
        if closed && ready.is_empty() && waiting.is_empty() && in_flight.is_empty() {
            return;
        }
        let next_retry = waiting.iter().map(|(at, _)| *at).min();
        let room = !closed
            && held(&ready, &waiting, flying) < settings.capacity
            && in_flight.len() < settings.concurrency;
        tokio::select! {
            biased;
            changed = abandon.changed(), if can_abandon => {
                can_abandon = changed.is_ok();
                if can_abandon && *abandon.borrow() {
                    queue.close();
                    let mut left = ready.len() + waiting.len() + flying;
                    while queue.try_recv().is_ok() {
                        left += 1;
                    }
                    if left > 0 {
                        warn!(events = left, "stopped with events unsent; the next leader's resync sends them");
                    }
                    give_up(&metrics, left);
                    return;
                }
            }
            Some((batch, result)) = in_flight.next(), if !in_flight.is_empty() => {
                flying -= batch.len();
                settle(batch, result, &settings, &metrics, &mut waiting);
            }
            event = queue.recv(), if room => match event {
                Some(event) => push(&mut ready, event, &metrics, Instant::now()),
                None => closed = true,
            },
            _ = sleep_until_opt(next_retry), if next_retry.is_some() => {}
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

fn give_up(metrics: &Metrics, n: usize) {
    let n = n as u64;
    metrics.dropped.fetch_add(n, Ordering::Relaxed);
    metrics
        .queue_depth
        .fetch_sub(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
}

fn push(ready: &mut VecDeque<Entry>, event: QueuedEvent, metrics: &Metrics, now: Instant) {
    match serde_json::to_string(&event.detail) {
        Ok(detail) => ready.push_back(Entry::new(&event, detail, now)),
        Err(e) => {
            error!(error = %e, service = %event.detail.name, "event detail does not serialize; dropped");
            give_up(metrics, 1);
        }
    }
}

/// Up to [`MAX_BATCH_ENTRIES`] entries under [`MAX_BATCH_BYTES`], oldest first.
fn take_batch(ready: &mut VecDeque<Entry>, metrics: &Metrics) -> Vec<Entry> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < MAX_BATCH_ENTRIES {
        let Some(size) = ready.front().map(|e| e.size) else {
            break;
        };
        if size > MAX_BATCH_BYTES {
            if let Some(e) = ready.pop_front() {
                error!(service = %e.key, bytes = size, "event larger than PutEvents allows; dropped");
                give_up(metrics, 1);
            }
            continue;
        }
        if bytes + size > MAX_BATCH_BYTES {
            break;
        }
        bytes += size;
        if let Some(e) = ready.pop_front() {
            batch.push(e);
        }
    }
    batch
}

fn settle(
    batch: Vec<Entry>,
    result: Result<Vec<EntryOutcome>, SinkError>,
    settings: &SenderSettings,
    metrics: &Metrics,
    waiting: &mut Vec<(Instant, Entry)>,
) {
    let outcomes = match result {
        Ok(outcomes) => outcomes,
        Err(e) => {
            warn!(error = %e, entries = batch.len(), "PutEvents failed; retrying");
            vec![EntryOutcome::Refused(CALL_FAILED.to_owned()); batch.len()]
        }
    };
    let mut outcomes = outcomes.into_iter();
    let jitter = spread_factor(RETRY_SPREAD);
    for entry in batch {
        // A short answer leaves the rest unaccounted for: treat them as refused.
        match outcomes
            .next()
            .unwrap_or(EntryOutcome::Refused(NO_RESULT.to_owned()))
        {
            EntryOutcome::Accepted => {
                metrics.add_sent(entry.detail_type, 1);
                metrics.lag.observe(entry.queued_at.elapsed());
                metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            }
            EntryOutcome::Refused(code) => {
                metrics.failed.fetch_add(1, Ordering::Relaxed);
                if !matches!(code.as_str(), CALL_FAILED | NO_RESULT) {
                    // Never a silent drop: a refusal by the bus says the role or the entry is
                    // wrong (e.g. NotAuthorizedForSourceException), and it shows.
                    metrics.refused.fetch_add(1, Ordering::Relaxed);
                    warn!(service = %entry.key, detail_type = %entry.detail_type, code,
                        attempts = entry.attempts + 1, "PutEvents refused the entry");
                }
                retry_or_drop(entry, &code, jitter, settings, metrics, waiting);
            }
        }
    }
}

/// The code of entries in a PutEvents call that failed as a whole.
const CALL_FAILED: &str = "CallFailed";
/// The code of entries the answer left out.
const NO_RESULT: &str = "NoResult";

fn retry_or_drop(
    mut entry: Entry,
    code: &str,
    jitter: f64,
    settings: &SenderSettings,
    metrics: &Metrics,
    waiting: &mut Vec<(Instant, Entry)>,
) {
    entry.attempts += 1;
    let now = Instant::now();
    if now.duration_since(entry.queued_at) >= settings.retry_for {
        error!(
            service = %entry.key, detail_type = %entry.detail_type, attempts = entry.attempts, code,
            "event dropped after retrying; the next resync sends it again"
        );
        give_up(metrics, 1);
        return;
    }
    metrics.retried.fetch_add(1, Ordering::Relaxed);
    let delay = settings
        .backoff()
        .base_delay(entry.attempts.saturating_sub(1))
        .mul_f64(jitter);
    waiting.push((now + delay, entry));
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
