//! Wiring: clients, HTTP, signals, the elector and the forwarding sessions, and the order in
//! which they stop (watch, drain the queue, release the Lease, stop HTTP).

use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Args;
use crate::eventbridge::EventBridgeSink;
use crate::forwarding::Forwarder;
use crate::leader::{LeaderElector, LeaseSettings};
use crate::metrics::Metrics;
use crate::sender::SenderSettings;
use crate::watch::WatchSettings;

/// Why the forwarder could not start; the message names the setting or service.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No usable Kubernetes client configuration.
    #[error("cannot reach the Kubernetes API (KUBECONFIG or in-cluster config): {0}")]
    Kube(#[source] kube::Error),
    /// No AWS region configured.
    #[error("environment variable AWS_REGION: is required but not set")]
    NoRegion,
    /// The HTTP address cannot be bound.
    #[error("LISTEN_ADDRESS {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("installing the SIGTERM handler: {0}")]
    Signals(#[source] std::io::Error),
}

/// Runs the forwarder until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> Result<(), StartError> {
    let sdk = nlb_port_pool::adapters::aws::sdk::load_sdk_config("forwarder").await;
    if sdk.region().is_none() {
        return Err(StartError::NoRegion);
    }
    let client = Client::try_default().await.map_err(StartError::Kube)?;
    let lease_namespace = args
        .lease_namespace
        .clone()
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let identity = args.identity.clone().unwrap_or_else(hostname);
    let metrics = Arc::new(Metrics::default());

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| StartError::Listen {
            address: args.listen,
            source,
        })?;
    let (http_stop_tx, mut http_stop) = watch::channel(false);
    let server = axum::serve(listener, crate::http::router(Arc::clone(&metrics)))
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|v| *v).await;
        });
    let http = tokio::spawn(async move {
        if let Err(e) = server.await {
            warn!(error = %e, "the HTTP server stopped");
        }
    });

    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(StartError::Signals)?;
    tokio::spawn(async move {
        let interrupt = async {
            // Without a Ctrl-C handler, only SIGTERM stops us: wait on it alone.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM: stopping"),
            () = interrupt => info!("interrupted: stopping"),
        }
        shutdown_tx.send_replace(true);
    });

    info!(
        identity = %identity, lease = %args.lease_name, lease_namespace = %lease_namespace,
        bus = %args.bus_name, cluster = %args.cluster_name, "forwarder starting"
    );
    let (leader_tx, leader) = watch::channel(false);
    let (release_tx, release) = watch::channel(false);
    let elector = LeaderElector::new(
        Api::<Lease>::namespaced(client.clone(), &lease_namespace),
        LeaseSettings {
            name: args.lease_name.clone(),
            identity,
            duration: args.lease_duration,
        },
    );
    let elector = tokio::spawn(elector.run(leader_tx, release));

    let forwarder = Forwarder {
        client,
        sink: Arc::new(EventBridgeSink::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            args.bus_name.clone(),
        )),
        watch: WatchSettings {
            cluster: args.cluster_name.clone(),
            namespaces: args
                .watched_namespaces()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            coalesce_window: args.coalesce_window,
            resync_period: args.resync_period,
        },
        sender: SenderSettings {
            concurrency: args.put_events_concurrency,
            capacity: args.queue_capacity,
            retry_for: args.retry_for,
            backoff_base: std::time::Duration::from_millis(200),
            backoff_cap: std::time::Duration::from_secs(5),
        },
        queue_capacity: args.queue_capacity,
        drain_timeout: args.drain_timeout,
        metrics: Arc::clone(&metrics),
    };
    forwarder.run(leader, shutdown).await;

    release_tx.send_replace(true);
    if let Err(e) = elector.await {
        warn!(error = %e, "the elector task failed");
    }
    http_stop_tx.send_replace(true);
    if let Err(e) = http.await {
        warn!(error = %e, "the HTTP task failed");
    }
    info!("stopped");
    Ok(())
}

/// The pod's hostname (its name in a Deployment), for the Lease's holderIdentity.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("forwarder-{}", std::process::id()))
}
