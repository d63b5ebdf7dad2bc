//! The functions under `cargo lambda watch` (from the pinned SAM tools venv), which emulates
//! the Lambda control plane on 127.0.0.1 and runs the workspace's binaries as functions of the
//! same names: `POST /2015-03-31/functions/<name>/invocations` invokes one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::http;
use super::process::ManagedChild;

/// How to run the functions.
#[derive(Debug, Clone)]
pub struct FunctionSettings {
    /// The functions' environment (CLUSTER_NAME, TABLE_NAME, ...), on top of this process's.
    pub env: BTreeMap<String, String>,
    /// Variables of this process the functions must not inherit.
    pub unset: Vec<String>,
    /// A cargo profile (`dev` when `None`).
    pub profile: Option<String>,
    /// Instances per function `cargo lambda watch` may run at once.
    pub concurrency: u32,
    /// Its log (and the functions').
    pub log: PathBuf,
}

/// How long one invocation may take before the stack calls it failed.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `cargo lambda watch`.
pub struct Functions {
    child: ManagedChild,
    invoker: Invoker,
}

/// Invokes the functions; cheap to clone.
#[derive(Debug, Clone, Copy)]
pub struct Invoker {
    port: u16,
}

/// The answer of one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Whether the function returned success (HTTP 200; errors answer 500).
    pub ok: bool,
    /// Its JSON answer, or the error.
    pub body: String,
}

impl Invoker {
    /// The port `cargo lambda watch` listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/2015-03-31/functions`; append `/<name>/invocations`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/2015-03-31/functions", self.port)
    }

    /// Invokes `function` with `payload` and waits for its answer.
    pub async fn invoke(&self, function: &str, payload: &[u8]) -> Result<Invocation> {
        let path = format!("/2015-03-31/functions/{function}/invocations");
        let r = http::post_json(self.port, &path, payload, INVOKE_TIMEOUT).await?;
        Ok(Invocation {
            ok: r.status == 200,
            body: r.body,
        })
    }
}

impl Functions {
    /// Starts `cargo lambda watch` in `root` (the workspace) on a free port.
    pub fn start(root: &Path, settings: &FunctionSettings) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = tokio::process::Command::new(root.join("testbed/bin/sam-tools"));
        cmd.current_dir(root)
            .args(["cargo", "lambda", "watch", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .args(["--concurrency", &settings.concurrency.max(1).to_string()]);
        if let Some(p) = &settings.profile {
            cmd.args(["--profile", p]);
        }
        for name in &settings.unset {
            cmd.env_remove(name);
        }
        cmd.envs(&settings.env);
        let child = ManagedChild::spawn("cargo lambda watch", cmd, &settings.log)?;
        Ok(Self {
            child,
            invoker: Invoker { port },
        })
    }

    /// Its invoker.
    pub fn invoker(&self) -> Invoker {
        self.invoker
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        self.child.log()
    }

    /// Waits until the emulator answers HTTP, then until each of `functions` has been built,
    /// started and has answered one invocation (an event it refuses, so it does nothing).
    pub async fn wait_ready(&mut self, functions: &[&str], timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while http::get(self.invoker.port, "/", Duration::from_secs(2))
            .await
            .is_err()
        {
            self.check_alive()?;
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "cargo lambda watch did not answer on 127.0.0.1:{} in {timeout:?}; its log ({}):\n{}",
                    self.invoker.port,
                    self.log().display(),
                    self.child.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let warm_up = warm_up_event();
        for f in functions {
            // The first call builds (if needed) and starts the function; the answer must be
            // the handler refusing the event, which shows its configuration was accepted.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let path = format!("/2015-03-31/functions/{f}/invocations");
            let r = http::post_json(self.invoker.port, &path, warm_up.as_bytes(), left)
                .await
                .with_context(|| format!("starting function {f}"))?;
            if !r.body.contains("invalid event") {
                bail!(
                    "function {f} did not start: {} {}; the log ({}):\n{}",
                    r.status,
                    r.body,
                    self.log().display(),
                    self.child.log_tail(30)
                );
            }
        }
        Ok(())
    }

    /// Its pid (the functions it runs are its children).
    pub fn pid(&self) -> u32 {
        self.child.id().pid
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child.running()
    }

    fn check_alive(&mut self) -> Result<()> {
        if self.child.running() {
            return Ok(());
        }
        bail!(
            "cargo lambda watch exited; its log ({}):\n{}",
            self.log().display(),
            self.child.log_tail(30)
        )
    }

    /// Stops the emulator and every function it runs (blocking; see [`ManagedChild::stop`]).
    pub fn stop(&mut self) {
        self.child.stop(Duration::from_secs(10));
    }
}

/// An EventBridge event no handler takes (unknown source and detail-type): each refuses it
/// as `invalid event` before touching AWS or Kubernetes.
fn warm_up_event() -> String {
    serde_json::json!({
        "version": "0", "id": "warm-up", "detail-type": "Local Stack Warm-up",
        "source": "nlb-port-pool.local-stack", "account": "000000000000",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-west-2", "resources": [], "detail": {}
    })
    .to_string()
}

/// A TCP port nothing listens on now.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
