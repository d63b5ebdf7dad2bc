//! The forwarder binary as the stack runs it: against the bed's kube-apiserver as deploy/'s
//! ServiceAccount, putting events on the stack's bus in moto.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use super::functions::free_port;
use super::http;
use super::kube_access::DEPLOY_NAMESPACE;
use super::process::ManagedChild;

/// How to run the forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderSettings {
    /// The built binary.
    pub exe: PathBuf,
    /// The bus.
    pub bus: String,
    /// The cluster name events carry.
    pub cluster: String,
    /// Namespaces to watch (empty: all).
    pub namespaces: Vec<String>,
    /// Its Lease (in deploy/'s namespace).
    pub lease: String,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
    /// The bed's variables (AWS endpoint, region, fake credentials).
    pub env: BTreeMap<String, String>,
    /// Its log.
    pub log: PathBuf,
}

/// A running forwarder.
pub struct ForwarderProcess {
    child: ManagedChild,
    port: u16,
}

impl ForwarderProcess {
    /// Starts it; [`ForwarderProcess::wait_ready`] waits for its first sync.
    pub fn start(s: &ForwarderSettings) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = tokio::process::Command::new(&s.exe);
        cmd.envs(&s.env)
            .env("KUBECONFIG", &s.kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("WATCH_NAMESPACES")
            .args(["--bus-name", &s.bus, "--cluster-name", &s.cluster])
            .args(["--namespaces", &s.namespaces.join(",")])
            .args([
                "--lease-name",
                &s.lease,
                "--lease-namespace",
                DEPLOY_NAMESPACE,
            ])
            .args(["--identity", "local-stack", "--lease-duration", "5s"])
            // A restarted stack takes the Lease over at once; events wait 500 ms at most.
            .args(["--coalesce-window", "500ms", "--drain-timeout", "5s"])
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        let child = ManagedChild::spawn("forwarder", cmd, &s.log)?;
        Ok(Self { child, port })
    }

    /// Its `/metrics` port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        self.child.log()
    }

    /// Waits until `/readyz` answers 200: it holds the Lease and has listed everything.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(r) = http::get(self.port, "/readyz", Duration::from_secs(2)).await
                && r.status == 200
            {
                return Ok(());
            }
            if !self.child.running() || tokio::time::Instant::now() > deadline {
                bail!(
                    "the forwarder did not become ready in {timeout:?}; its log ({}):\n{}",
                    self.log().display(),
                    self.child.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Its pid, for measuring its memory.
    pub fn pid(&self) -> u32 {
        self.child.id().pid
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child.running()
    }

    /// Kills it (SIGKILL: as a crash or an evicted pod; its queue is lost, its Lease stays
    /// until it expires). Blocking, briefly.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Stops it (SIGTERM: it drains its queue and gives up the Lease). Blocking.
    pub fn stop(&mut self) {
        self.child.stop(Duration::from_secs(10));
    }
}
