//! The delivery loop: what EventBridge's Lambda targets do in AWS, done from the rules' SQS
//! queues (moto cannot run Lambdas without Docker). Each queue is long-polled; each message
//! (the EventBridge event itself) is passed to its function; success deletes it, failure
//! leaves it to come back after a short delay, and after `max_receives` failed receives it
//! goes to the dead-letter queue, as after Lambda's retries. The sweep runs on a timer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName as Attr};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::aws::Route;
use super::functions::Invoker;

/// How the loop delivers.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Receives of one message before it goes to the dead-letter queue (template.yaml: one
    /// invocation and 2 Lambda retries).
    pub max_receives: u32,
    /// Delay before a failed message is received again, times its receive count.
    pub retry_delay: Duration,
    /// How often the sweep runs; `None`: never.
    pub sweep_every: Option<Duration>,
    /// How often the pool function runs on its schedule (besides Pool Low); `None`: never.
    pub pool_every: Option<Duration>,
    /// How often the reachability function runs on its schedule (besides Targets Registered);
    /// `None`: never.
    pub reach_every: Option<Duration>,
    /// The region the Scheduled Events name.
    pub region: String,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            max_receives: 3,
            retry_delay: Duration::from_secs(2),
            sweep_every: Some(Duration::from_secs(60)),
            pool_every: Some(Duration::from_secs(30)),
            reach_every: Some(Duration::from_secs(30)),
            region: "us-west-2".into(),
        }
    }
}

/// One delivery, for benchmarks.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The function.
    pub function: &'static str,
    /// From SQS's SentTimestamp (moto's fan-out from PutEvents) to the receive.
    pub queued: Duration,
    /// The invocation.
    pub invoke: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Counters of the loop.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Messages a function took (deleted).
    pub delivered: AtomicU64,
    /// Failed invocations (each one a redelivery or a dead letter).
    pub failed: AtomicU64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: AtomicU64,
    /// Sweep runs that succeeded.
    pub sweeps: AtomicU64,
    /// Every delivery's timing.
    pub timings: Mutex<Vec<Timing>>,
}

/// The running loop.
pub struct Delivery {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Its counters.
    pub stats: Arc<DeliveryStats>,
}

#[derive(Clone)]
struct Ctx {
    sqs: aws_sdk_sqs::Client,
    invoker: Invoker,
    dlq_url: String,
    settings: DeliverySettings,
    stats: Arc<DeliveryStats>,
}

impl Delivery {
    /// Starts one task per route, and the sweep timer.
    pub fn start(
        sqs: aws_sdk_sqs::Client,
        invoker: Invoker,
        routes: &[Route],
        dlq_url: &str,
        settings: DeliverySettings,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(DeliveryStats::default());
        let ctx = Ctx {
            sqs,
            invoker,
            dlq_url: dlq_url.to_owned(),
            settings,
            stats: Arc::clone(&stats),
        };
        let mut tasks: Vec<JoinHandle<()>> = routes
            .iter()
            .map(|r| tokio::spawn(poll(ctx.clone(), r.clone(), stopped.clone())))
            .collect();
        if let Some(every) = ctx.settings.pool_every {
            tasks.push(tokio::spawn(schedule_timer(
                ctx.clone(),
                "pool",
                every,
                stopped.clone(),
            )));
        }
        if let Some(every) = ctx.settings.reach_every {
            tasks.push(tokio::spawn(schedule_timer(
                ctx.clone(),
                "reachable",
                every,
                stopped.clone(),
            )));
        }
        if let Some(every) = ctx.settings.sweep_every {
            tasks.push(tokio::spawn(schedule_timer(ctx, "sweep", every, stopped)));
        }
        Self { stop, tasks, stats }
    }

    /// Stops receiving; invocations in flight finish (up to `timeout`).
    pub async fn stop(mut self, timeout: Duration) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let abort = t.abort_handle();
            if tokio::time::timeout(timeout, t).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn poll(ctx: Ctx, route: Route, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        let receive = ctx
            .sqs
            .receive_message()
            .queue_url(&route.queue_url)
            .max_number_of_messages(10)
            // Below the SDK's 10 s attempt timeout (nlb_port_pool::adapters::aws::sdk), which would cut it.
            .wait_time_seconds(5)
            .message_system_attribute_names(Attr::All)
            .send();
        let received = tokio::select! {
            _ = stopped.changed() => break,
            r = receive => r,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                warn!(queue = %route.rule, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receiving failed; again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let deliveries = messages.iter().map(|m| deliver(&ctx, &route, m));
        futures::future::join_all(deliveries).await;
    }
}

async fn deliver(ctx: &Ctx, route: &Route, message: &aws_sdk_sqs::types::Message) {
    let attr = |a: Attr| message.attributes().and_then(|m| m.get(&a)).cloned();
    let receives: u32 = attr(Attr::ApproximateReceiveCount)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let queued = attr(Attr::SentTimestamp)
        .and_then(|v| v.parse::<u64>().ok())
        .map(|sent| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            now.saturating_sub(Duration::from_millis(sent))
        })
        .unwrap_or_default();
    let body = message.body().unwrap_or_default();
    let service = service_of(body);
    let started = tokio::time::Instant::now();
    let result = ctx.invoker.invoke(route.function, body.as_bytes()).await;
    let took = started.elapsed();
    let (ok, answer) = match result {
        Ok(inv) => (inv.ok, inv.body),
        Err(e) => (false, format!("{e:#}")),
    };
    if let Ok(mut t) = ctx.stats.timings.lock() {
        t.push(Timing {
            function: route.function,
            queued,
            invoke: took,
            ok,
        });
    }
    let handle = message.receipt_handle().unwrap_or_default();
    let ms = took.as_millis() as u64;
    if ok {
        ctx.stats.delivered.fetch_add(1, Ordering::Relaxed);
        info!(detail_type = %route.detail_type, %service, function = route.function, ms, outcome = %outcome_of(&answer), "delivered");
        delete(ctx, &route.queue_url, handle).await;
        return;
    }
    ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
    if receives >= ctx.settings.max_receives {
        ctx.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        warn!(detail_type = %route.detail_type, %service, function = route.function, receives, error = %answer, "failed {receives} times: moved to the dead-letter queue");
        let attribute = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .ok()
        };
        let sent = ctx
            .sqs
            .send_message()
            .queue_url(&ctx.dlq_url)
            .message_body(body)
            .set_message_attributes(Some(
                [
                    ("function", route.function),
                    ("error", truncate(&answer, 1000)),
                ]
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), attribute(v)?)))
                .collect(),
            ))
            .send()
            .await;
        match sent {
            Ok(_) => delete(ctx, &route.queue_url, handle).await,
            Err(e) => {
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "sending to the dead-letter queue failed; the message stays")
            }
        }
        return;
    }
    let delay = ctx.settings.retry_delay * receives;
    warn!(detail_type = %route.detail_type, %service, function = route.function, attempt = receives, ms, error = %answer, "invocation failed; redelivery in {delay:?}");
    let _ = ctx
        .sqs
        .change_message_visibility()
        .queue_url(&route.queue_url)
        .receipt_handle(handle)
        .visibility_timeout(i32::try_from(delay.as_secs()).unwrap_or(i32::MAX))
        .send()
        .await;
}

async fn delete(ctx: &Ctx, queue_url: &str, handle: &str) {
    if let Err(e) = ctx
        .sqs
        .delete_message()
        .queue_url(queue_url)
        .receipt_handle(handle)
        .send()
        .await
    {
        warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "deleting a delivered message failed; it will be delivered again");
    }
}

/// Invokes `function` with a Scheduled Event every `every`, as its schedule rule does.
async fn schedule_timer(
    ctx: Ctx,
    function: &'static str,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = ticks.tick() => {}
        }
        let event = scheduled_event(&ctx.settings.region);
        match ctx.invoker.invoke(function, event.as_bytes()).await {
            Ok(inv) if inv.ok => {
                if function == "sweep" {
                    ctx.stats.sweeps.fetch_add(1, Ordering::Relaxed);
                }
                info!(function, summary = %inv.body, "scheduled run");
            }
            Ok(inv) => {
                warn!(function, error = %inv.body, "scheduled run failed; next in {every:?}")
            }
            Err(e) => {
                warn!(function, error = %format!("{e:#}"), "scheduled run failed; next in {every:?}")
            }
        }
    }
}

/// The event EventBridge's schedule rule sends the sweep (as events/sweep.json).
pub fn scheduled_event(region: &str) -> String {
    serde_json::json!({
        "version": "0",
        "id": format!("local-{}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()),
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:123456789012:rule/nlb-port-pool-sweep")],
        "detail": {}
    })
    .to_string()
}

/// `namespace/name` of an event body, for logs.
fn service_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .map(|e| {
            let d = &e["detail"];
            format!(
                "{}/{}",
                d["namespace"].as_str().unwrap_or("?"),
                d["name"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_else(|| "?".into())
}

/// The `outcome` of a handler's summary, else the answer itself.
fn outcome_of(answer: &str) -> String {
    serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v["outcome"].as_str().map(str::to_owned))
        .unwrap_or_else(|| truncate(answer, 200).to_owned())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_services_and_outcomes_for_logs() {
        let body = r#"{"detail":{"namespace":"games","name":"room-1"}}"#;
        assert_eq!(service_of(body), "games/room-1");
        assert_eq!(service_of("not json"), "?");
        assert_eq!(
            outcome_of(r#"{"service":"c/games/room-1","outcome":"Allocated"}"#),
            "Allocated"
        );
        assert_eq!(outcome_of("boom"), "boom");
        assert_eq!(truncate("héllo", 2), "hé");
    }

    #[test]
    fn the_scheduled_event_is_what_the_sweep_takes() {
        let event: serde_json::Value =
            serde_json::from_str(&scheduled_event("eu-west-1")).expect("JSON");
        assert_eq!(event["source"], "aws.events");
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["region"], "eu-west-1");
    }
}
