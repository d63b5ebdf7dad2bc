//! Test support: the deploy/ manifests on the bed, the forwarder binary as a child process
//! acting as its ServiceAccount, Service writes and clean-up.

pub use crate::inbox::{Inbox, create_bus};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use testbed::iam_gate::GateStack;
use testbed::{Bed, kube_fixtures, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The namespace and ServiceAccount of deploy/.
pub const DEPLOY_NAMESPACE: &str = "nlb-port-pool";
/// The forwarder's ServiceAccount in deploy/.
pub const DEPLOY_ACCOUNT: &str = "forwarder";

/// Applies deploy/ to the bed once per test binary, with kubectl as a user would.
pub fn apply_deploy() {
    static APPLIED: OnceLock<()> = OnceLock::new();
    APPLIED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let out = std::process::Command::new("kubectl")
            .arg("apply")
            .arg("-k")
            .arg(&dir)
            .env("KUBECONFIG", Bed::get().kubeconfig())
            .output()
            .expect("running kubectl");
        assert!(
            out.status.success(),
            "kubectl apply -k deploy/ failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A kubeconfig acting as deploy/'s `forwarder` ServiceAccount, with a TokenRequest token.
pub async fn forwarder_kubeconfig(admin: &Client, dir: &Path) -> PathBuf {
    apply_deploy();
    let bed = Bed::get();
    let token = kube_fixtures::service_account_token(admin, DEPLOY_NAMESPACE, DEPLOY_ACCOUNT).await;
    let ca = bed.var("KUBE_CA_FILE").expect("KUBE_CA_FILE");
    // JSON is YAML: no YAML writer needed.
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "forwarder",
        "clusters": [{"name": "bed", "cluster": {"server": bed.kube_server(), "certificate-authority": ca}}],
        "users": [{"name": "forwarder", "user": {"token": token}}],
        "contexts": [{"name": "forwarder", "context": {"cluster": "bed", "user": "forwarder", "namespace": DEPLOY_NAMESPACE}}],
    });
    let path = dir.join("forwarder.kubeconfig");
    std::fs::write(&path, config.to_string()).expect("writing the kubeconfig");
    path
}

/// A fresh directory for one test's files.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("creating the test directory");
    dir
}

/// How to start one forwarder.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bus name.
    pub bus: String,
    /// Namespaces to watch (empty: all).
    pub namespaces: Vec<String>,
    /// The Lease name (in deploy/'s namespace).
    pub lease: String,
    /// The identity in the Lease.
    pub identity: String,
    /// More flags.
    pub extra: Vec<String>,
}

impl Options {
    /// Defaults for a test watching `namespace` and sending to `bus`.
    pub fn new(bus: &str, namespace: &str) -> Self {
        Self {
            bus: bus.to_owned(),
            namespaces: vec![namespace.to_owned()],
            lease: unique_name("lease"),
            identity: unique_name("fwd"),
            extra: vec!["--coalesce-window".into(), "500ms".into()],
        }
    }
}

/// A forwarder process.
pub struct Forwarder {
    child: Child,
    /// Its HTTP port.
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
    /// Its Lease identity.
    pub identity: String,
    /// Its stack as the bed's IAM gate knows it (its calls are checked against the
    /// ForwarderRole of template.yaml).
    pub gate: GateStack,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        testbed::iam_gate::assert_no_denials_blocking(
            std::slice::from_ref(&self.gate),
            "the forwarder",
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Forwarder {
    /// Starts the binary as deploy/'s ServiceAccount, with the bed's AWS settings.
    pub async fn start(admin: &Client, dir: &Path, opts: &Options) -> Self {
        let kubeconfig = forwarder_kubeconfig(admin, dir).await;
        let gate = GateStack::for_forwarder(Bed::get(), &opts.bus, "bed-cluster")
            .await
            .expect("registering the forwarder's stack with the IAM gate");
        let port = free_port();
        let log = dir.join(format!("{}.log", opts.identity));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forwarder"));
        cmd.envs(Bed::get().vars())
            .env("KUBECONFIG", &kubeconfig)
            .env("AWS_ACCESS_KEY_ID", &gate.access_key)
            .env("RUST_LOG", "info,forwarder=debug")
            .args(["--bus-name", &opts.bus, "--cluster-name", "bed-cluster"])
            .args(["--namespaces", &opts.namespaces.join(",")])
            .args([
                "--lease-name",
                &opts.lease,
                "--lease-namespace",
                DEPLOY_NAMESPACE,
            ])
            .args(["--lease-duration", "3s", "--identity", &opts.identity])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(&opts.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        let child = cmd.spawn().expect("starting the forwarder");
        Self {
            child,
            port,
            log,
            identity: opts.identity.clone(),
            gate,
        }
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// GET `path`: status and body, or None when nothing answers.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((status, body))
    }

    /// A metric's value (`name` with labels, as rendered).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits until `metric` satisfies `ok`, panicking with the log after `timeout`.
    pub async fn wait_metric(&self, metric: &str, timeout: Duration, ok: impl Fn(f64) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.metric(metric).await.is_some_and(&ok) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{metric} = {:?} after {timeout:?}; log:\n{}",
                self.metric(metric).await,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for /readyz to answer 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.get("/readyz").await.map(|r| r.0) != Some(200) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not ready after {timeout:?}; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until it leads and its watches are synced.
    pub async fn wait_leading(&self, timeout: Duration) {
        self.wait_metric("forwarder_leader", timeout, |v| v == 1.0)
            .await;
        self.wait_ready(timeout).await;
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the forwarder is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("waiting for the forwarder"),
            Err(_) => panic!(
                "no exit {timeout:?} after SIGTERM; log:\n{}",
                self.log_tail()
            ),
        }
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the forwarder is running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGKILL: dies without releasing anything.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

/// Merge-patches a Service as the admin.
pub async fn patch_service(admin: &Client, ns: &str, name: &str, patch: Value) -> Service {
    Api::<Service>::namespaced(admin.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patching {ns}/{name}: {e}"))
}

/// Deletes a Service (it stays, with a deletionTimestamp, while finalizers hold it).
pub async fn delete_service(admin: &Client, ns: &str, name: &str) {
    Api::<Service>::namespaced(admin.clone(), ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("deleting {ns}/{name}: {e}"));
}

/// Removes every Service of `ns` (finalizers first), so all-namespace forwarders of later
/// tests do not keep re-sending them. Namespaces themselves never go away on the bed (no
/// namespace controller runs), so they are left.
pub async fn clean_namespace(admin: &Client, ns: &str) {
    let api: Api<Service> = Api::namespaced(admin.clone(), ns);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return;
    };
    for svc in list {
        let name = svc.metadata.name.unwrap_or_default();
        let clear = json!({"metadata": {"finalizers": null}});
        // Best effort: a leftover only costs later tests an ignored event.
        let _ = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&clear))
            .await;
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
}

/// Cleans a test's namespace when dropped, also when the test fails (panics unwind).
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ns = self.0.clone();
        // Drop cannot await, and the test's runtime may be unwinding: use a runtime of its own.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let admin = Bed::get().kube_client().await;
                clean_namespace(&admin, &ns).await;
            });
        });
        let _ = done.join();
    }
}

/// The uid and resourceVersion a Service had when written.
pub fn identity_of(svc: &Service) -> (String, String) {
    (
        svc.metadata.uid.clone().unwrap_or_default(),
        svc.metadata.resource_version.clone().unwrap_or_default(),
    )
}
