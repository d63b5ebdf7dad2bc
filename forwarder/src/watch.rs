//! The watch loop: Service, EndpointSlice and (running) Pod watchers in, queued events out.
//!
//! One watcher per scope (all namespaces, or each configured namespace). A watcher that
//! fails is replaced by a fresh one after a backoff, so every reconnect is a full re-list and
//! ends in a resync of that scope: whatever happened while the watch was away is sent.
//! Sending waits for room in the bounded queue, which holds the watch back when the bus is
//! slow (backpressure) instead of buffering without bound.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{BoxStream, SelectAll};
use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff, Event, watcher};
use kube::{Api, Client, Resource};
use nlb_port_pool::contract::event::{DETAIL_VERSION, ServiceEventDetail};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::decide::{Emission, SERVICE_NAME_LABEL};
use crate::metrics::Metrics;
use crate::pod_tracker::{POD_FIELD_SELECTOR, PodTracker};
use crate::sender::QueuedEvent;
use crate::tracker::{Coalescer, ServiceTracker, SliceTracker};

/// What to watch and how to pace it.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// The cluster name put in every event.
    pub cluster: String,
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// The EndpointSlice coalescing window.
    pub coalesce_window: Duration,
    /// The periodic resync period.
    pub resync_period: Duration,
}

type Tagged<K> = (usize, Result<Event<K>, watcher::Error>);

/// A watcher of one scope that ends after its first error, so the loop can replace it.
fn scope_stream<K>(
    api: Api<K>,
    config: watcher::Config,
    scope: usize,
    delay: Duration,
) -> BoxStream<'static, Tagged<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    futures::stream::once(tokio::time::sleep(delay))
        .flat_map(move |()| watcher(api.clone(), config.clone()))
        .scan(false, |failed, item| {
            let ended = *failed;
            *failed = item.is_err();
            future::ready((!ended).then_some(item))
        })
        .map(move |item| (scope, item))
        .boxed()
}

/// The watchers of one kind, one per scope, with their restart backoffs.
struct Watchers<K: Resource + 'static> {
    apis: Vec<Api<K>>,
    config: watcher::Config,
    backoffs: Vec<DefaultBackoff>,
    streams: SelectAll<BoxStream<'static, Tagged<K>>>,
    kind: &'static str,
}

impl<K> Watchers<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + 'static,
    K::DynamicType: Default,
{
    fn new(
        client: &Client,
        namespaces: &[String],
        config: watcher::Config,
        kind: &'static str,
    ) -> Self {
        let apis: Vec<Api<K>> = if namespaces.is_empty() {
            vec![Api::all(client.clone())]
        } else {
            namespaces
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect()
        };
        let mut streams = SelectAll::new();
        for (i, api) in apis.iter().enumerate() {
            streams.push(scope_stream(api.clone(), config.clone(), i, Duration::ZERO));
        }
        Self {
            backoffs: apis.iter().map(|_| DefaultBackoff::default()).collect(),
            apis,
            config,
            streams,
            kind,
        }
    }

    fn scopes(&self) -> usize {
        self.apis.len()
    }

    /// Replaces the failed watcher of `scope` after its backoff.
    fn restart(&mut self, scope: usize, error: &watcher::Error, metrics: &Metrics) {
        metrics.watch_restarts.fetch_add(1, Ordering::Relaxed);
        let (Some(api), Some(backoff)) = (self.apis.get(scope), self.backoffs.get_mut(scope))
        else {
            return;
        };
        let delay = backoff.next().unwrap_or(Duration::from_secs(30));
        warn!(kind = self.kind, scope, error = %error, delay_ms = delay.as_millis() as u64, "watch failed; re-listing after a backoff");
        self.streams
            .push(scope_stream(api.clone(), self.config.clone(), scope, delay));
    }

    fn listed(&mut self, scope: usize) {
        if let Some(b) = self.backoffs.get_mut(scope) {
            b.reset();
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Watches until the queue's receiver is gone (the session ended).
pub async fn run(
    client: Client,
    settings: WatchSettings,
    queue: mpsc::Sender<QueuedEvent>,
    metrics: Arc<Metrics>,
) {
    let mut services: Watchers<Service> = Watchers::new(
        &client,
        &settings.namespaces,
        watcher::Config::default(),
        "Service",
    );
    let slice_config = watcher::Config::default().labels(SERVICE_NAME_LABEL);
    let mut slices: Watchers<EndpointSlice> =
        Watchers::new(&client, &settings.namespaces, slice_config, "EndpointSlice");
    // Gated pods wake their Services: their slices do not change until the functions act.
    let pod_config = watcher::Config::default().fields(POD_FIELD_SELECTOR);
    let mut pods: Watchers<Pod> = Watchers::new(&client, &settings.namespaces, pod_config, "Pod");
    let mut service_tracker = ServiceTracker::new(services.scopes());
    let mut slice_tracker = SliceTracker::new(slices.scopes());
    let mut pod_tracker = PodTracker::new(pods.scopes());
    let mut coalescer = Coalescer::new(settings.coalesce_window);
    let period = settings.resync_period;
    let mut resync = tokio::time::interval_at(Instant::now() + period, period);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    metrics.synced.store(false, Ordering::Relaxed);
    metrics.gated_pods.store(0, Ordering::Relaxed);
    loop {
        let next_window = coalescer.next_deadline();
        let emissions = tokio::select! {
            Some((scope, item)) = services.streams.next() => match item {
                Ok(event) => {
                    let listed = matches!(event, Event::InitDone);
                    metrics.rooms.observe(scope, &event);
                    let out = service_tracker.apply(scope, event);
                    if listed {
                        services.listed(scope);
                        info!(scope, tracked = service_tracker.len(), events = out.len(), "Services listed; resyncing");
                    }
                    out
                }
                Err(e) => {
                    services.restart(scope, &e, &metrics);
                    Vec::new()
                }
            },
            Some((scope, item)) = slices.streams.next() => {
                match item {
                    Ok(event) => {
                        if matches!(event, Event::InitDone) {
                            slices.listed(scope);
                        }
                        let now = Instant::now();
                        for key in slice_tracker.apply(scope, event) {
                            if service_tracker.opted_in(&key) {
                                coalescer.mark(key, now);
                            }
                        }
                    }
                    Err(e) => slices.restart(scope, &e, &metrics),
                }
                Vec::new()
            },
            Some((scope, item)) = pods.streams.next() => {
                match item {
                    Ok(event) => {
                        if matches!(event, Event::InitDone) {
                            pods.listed(scope);
                        }
                        let now = Instant::now();
                        // Only Services that want endpoints events come back: no filter here.
                        for key in pod_tracker.apply(scope, event, &service_tracker) {
                            coalescer.mark(key, now);
                        }
                        metrics.gated_pods.store(pod_tracker.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => pods.restart(scope, &e, &metrics),
                }
                Vec::new()
            },
            () = sleep_until_opt(next_window), if next_window.is_some() => coalescer
                .take_due(Instant::now())
                .iter()
                .filter_map(|key| service_tracker.endpoints(key))
                .collect(),
            _ = resync.tick() => {
                info!(tracked = service_tracker.len(), "periodic resync");
                service_tracker.resync(None)
            }
        };
        metrics.synced.store(
            service_tracker.synced() && slice_tracker.synced() && pod_tracker.synced(),
            Ordering::Relaxed,
        );
        for emission in emissions {
            let event = queued(&settings.cluster, emission);
            debug!(service = %format_args!("{}/{}", event.detail.namespace, event.detail.name), detail_type = %event.detail_type, "queued");
            metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
            if queue.send(event).await.is_err() {
                metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

fn queued(cluster: &str, e: Emission) -> QueuedEvent {
    QueuedEvent {
        detail_type: e.detail_type,
        detail: ServiceEventDetail {
            version: DETAIL_VERSION,
            cluster: cluster.to_owned(),
            namespace: e.key.namespace,
            name: e.key.name,
            uid: e.uid,
            resource_version: e.resource_version,
            deleting: e.deleting,
            observed_at: Utc::now(),
        },
        observed: Instant::now(),
    }
}
