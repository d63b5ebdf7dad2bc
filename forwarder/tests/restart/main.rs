//! kube-apiserver restarted under a running forwarder: the watch recovers and nothing is lost.
//!
//! Restarting the API server would disturb every other test on the shared bed, so this test
//! binary starts a private bed of its own (testbed/bin/bed-up with its own NLB_STACK_ENV) and
//! stops it at the end.

#[path = "../bed/inbox.rs"]
mod inbox;
#[path = "../bed/support.rs"]
#[allow(dead_code)] // shared with the bed tests; this test uses part of it
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, unique_name};

use crate::support::{Forwarder, Inbox, Options};

const ARRIVE: Duration = Duration::from_secs(30);

/// A bed of this test binary's own, stopped when dropped.
struct PrivateBed {
    env_file: PathBuf,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testbed/bin")
        .join(name)
}

fn run(name: &str, env_file: &Path) {
    let out = Command::new(script(name))
        .env("NLB_STACK_ENV", env_file)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivateBed {
    fn start() -> PrivateBed {
        let env_file = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(unique_name("restart-bed"))
            .join("stack.env");
        run("bed-up", &env_file);
        // SAFETY: the only test of this binary sets it before anything reads the environment
        // (Bed::get reads it once, after this).
        unsafe { std::env::set_var("NLB_STACK_ENV", &env_file) };
        PrivateBed { env_file }
    }
}

impl Drop for PrivateBed {
    fn drop(&mut self) {
        let _ = Command::new(script("bed-down"))
            .env("NLB_STACK_ENV", &self.env_file)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_recovers_when_kube_apiserver_restarts() {
    // GIVEN a forwarder announcing Services of a private bed
    let private = PrivateBed::start();
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("restart");
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("restart-bus");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    let dir = support::test_dir(&ns);
    let forwarder = Forwarder::start(&admin, &dir, &Options::new(&bus, &ns)).await;
    forwarder.wait_leading(ARRIVE).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "before", &ports),
    )
    .await;
    inbox.wait_for("Service Changed", "before", 1, ARRIVE).await;

    // WHEN kube-apiserver restarts, and a Service is made once it is back
    let restarted = Instant::now();
    run("bed-restart-apiserver", &private.env_file);
    let admin = bed.kube_client().await;
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "after", &ports),
    )
    .await;

    // THEN the forwarder announces it: its watch came back by itself
    inbox.wait_for("Service Changed", "after", 1, ARRIVE).await;
    eprintln!(
        "event for a Service made after the restart arrived {:.1} s after the restart began",
        restarted.elapsed().as_secs_f64()
    );
    // AND the re-list after reconnecting re-sent what it knew (nothing lost meanwhile)
    inbox.wait_for("Service Changed", "before", 2, ARRIVE).await;
    forwarder.kill().await;
}
