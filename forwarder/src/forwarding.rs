//! A forwarding session per leadership term: watch and sender run only while this replica
//! holds the Lease. Each term starts with fresh watches, so the new leader's first list
//! re-sends every opted-in Service (whatever the previous leader had not sent is covered).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::Client;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::sender::{self, EventSink, SenderSettings};
use crate::watch::{self as watch_loop, WatchSettings};

/// Everything a session needs.
pub struct Forwarder<S: EventSink> {
    /// The Kubernetes client the watches use.
    pub client: Client,
    /// The bus.
    pub sink: Arc<S>,
    /// What to watch.
    pub watch: WatchSettings,
    /// How to send.
    pub sender: SenderSettings,
    /// Capacity of the queue between watch and sender.
    pub queue_capacity: usize,
    /// How long shutdown waits for the queue to drain.
    pub drain_timeout: Duration,
    /// Shared metrics.
    pub metrics: Arc<Metrics>,
}

/// Resolves when the flag becomes `want`, or when its sender is gone.
async fn until(flag: &mut watch::Receiver<bool>, want: bool) {
    // An error means the sender is gone: nothing will change any more, so stop waiting.
    let _ = flag.wait_for(|v| *v == want).await;
}

enum Stop {
    LostLease,
    Shutdown,
}

impl<S: EventSink> Forwarder<S> {
    /// Forwards during every leadership term until `shutdown`; then drains the queue.
    pub async fn run(self, mut leader: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                biased;
                () = until(&mut shutdown, true) => return,
                () = until(&mut leader, true) => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if !*leader.borrow() {
                // The elector is gone without making us leader: there is nothing to do.
                until(&mut shutdown, true).await;
                return;
            }
            self.metrics.leader.store(true, Ordering::Relaxed);
            info!("leading: watching and forwarding");
            let stop = self.term(&mut leader, &mut shutdown).await;
            self.metrics.leader.store(false, Ordering::Relaxed);
            self.metrics.synced.store(false, Ordering::Relaxed);
            // A standby tracks no pod; the next term's watch counts afresh.
            self.metrics.gated_pods.store(0, Ordering::Relaxed);
            if matches!(stop, Stop::Shutdown) {
                return;
            }
        }
    }

    async fn term(
        &self,
        leader: &mut watch::Receiver<bool>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Stop {
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let (abandon_tx, abandon_rx) = watch::channel(false);
        let watch_task = tokio::spawn(watch_loop::run(
            self.client.clone(),
            self.watch.clone(),
            tx,
            Arc::clone(&self.metrics),
        ));
        let mut sender_task = tokio::spawn(sender::run(
            Arc::clone(&self.sink),
            self.sender.clone(),
            rx,
            Arc::clone(&self.metrics),
            abandon_rx,
        ));
        let stop = tokio::select! {
            biased;
            () = until(shutdown, true) => Stop::Shutdown,
            () = until(leader, false) => Stop::LostLease,
            _ = &mut sender_task => {
                // The sender only ends when the queue closes, i.e. the watch ended: treat it
                // like a lost term, so the next one starts afresh.
                warn!("the sender stopped unexpectedly; restarting the term");
                watch_task.abort();
                return Stop::LostLease;
            }
        };
        // Stopping the watch drops the queue's sender, which lets the sender finish.
        watch_task.abort();
        // The task was aborted: its JoinError says nothing new.
        let _ = watch_task.await;
        match stop {
            Stop::LostLease => {
                // Another replica may lead now and re-sends everything on its first list.
                abandon_tx.send_replace(true);
            }
            Stop::Shutdown => {
                info!(
                    timeout_ms = self.drain_timeout.as_millis() as u64,
                    "draining the queue"
                );
                if tokio::time::timeout(self.drain_timeout, &mut sender_task)
                    .await
                    .is_ok()
                {
                    info!("queue drained");
                    return stop;
                }
                warn!("the queue did not drain in time");
                abandon_tx.send_replace(true);
            }
        }
        if let Err(e) = sender_task.await {
            warn!(error = %e, "the sender task failed");
        }
        stop
    }
}
