//! `make run` (testbed/bin/run-local) does what the docs say, from a second shell
//! (`second_shell`), and stops everything it started on Ctrl-C and on SIGTERM: the local
//! stack's processes, the functions `cargo lambda watch` ran, and the bed (its control plane
//! and kwok included).
//!
//! Each test runs the command as a user would, with a bed of its own (its stack file in a
//! directory of the test), so it does not touch the shared bed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use testbed::local_stack::build::workspace_root;
use testbed::local_stack::process::{ProcessId, descendants, signal};
use testbed::{Bed, unique_name};

enum Stop {
    /// SIGINT to the process group, as a terminal sends it.
    CtrlC,
    /// SIGTERM to run-local alone, as a supervisor sends it.
    Term,
}

/// A running run-local; if the test fails, dropping it stops run-local and its bed.
struct RunLocal {
    child: tokio::process::Child,
    stack_env: PathBuf,
}

impl Drop for RunLocal {
    fn drop(&mut self) {
        if let (Ok(None), Some(pid)) = (self.child.try_wait(), self.child.id()) {
            signal(pid, "TERM");
            let deadline = std::time::Instant::now() + Duration::from_secs(90);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if self.stack_env.exists() {
            let _ = std::process::Command::new(workspace_root().join("testbed/bin/bed-down"))
                .env("NLB_STACK_ENV", &self.stack_env)
                .status();
        }
    }
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn run_and_stop(how: Stop, extra: &[&str]) {
    // GIVEN `make run` started in a process group of its own, with a bed of its own
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("run-local"));
    std::fs::create_dir_all(&dir).expect("test directory");
    let stack_env = dir.join("stack.env");
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let child = tokio::process::Command::new(workspace_root().join("testbed/bin/run-local"))
        .args(extra)
        .env("NLB_STACK_ENV", &stack_env)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .process_group(0)
        .spawn()
        .expect("starting run-local");
    let pid = child.id().expect("run-local's pid");
    let mut run = RunLocal {
        child,
        stack_env: stack_env.clone(),
    };
    let child = &mut run.child;

    // WHEN it is up (the first run may build the stack and the functions)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1200);
    while !read(&out).contains("The local stack is up") {
        let exited = child.try_wait().expect("polling run-local");
        assert!(
            exited.is_none() && tokio::time::Instant::now() < deadline,
            "run-local did not come up ({exited:?}); stdout:\n{}\nstderr:\n{}",
            read(&out),
            read(&err)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !extra.contains(&"--no-examples") {
        // The examples settled and their table was printed (TLS and PROXY v2 rooms included).
        assert!(
            !read(&err).contains("did not settle"),
            "the examples did not settle:\n{}",
            read(&err)
        );
        assert!(
            !read(&out).contains("Error"),
            "a room failed:\n{}",
            read(&out)
        );
        for room in ["room-tls", "room-proxy", "room-paused", "fleet"] {
            assert!(read(&out).contains(room), "no {room} in:\n{}", read(&out));
        }
        // The drained room has its address and says so.
        let stdout = read(&out);
        let paused = stdout
            .lines()
            .find(|l| l.starts_with("game-rooms/room-paused"))
            .unwrap_or_else(|| panic!("no row of room-paused in:\n{stdout}"));
        assert!(
            paused.contains(".elb.amazonaws.com:") && paused.contains("Disabled"),
            "room-paused is not Disabled with its address: {paused}"
        );
        // Then the fleet's pods, each with its address, on the kwok nodes.
        let stdout = read(&out);
        let pods_table = stdout
            .split("Pods of the per-pod Service game-rooms/fleet")
            .nth(1)
            .unwrap_or_else(|| panic!("no table of the fleet's pods in:\n{stdout}"));
        for pod in ["fleet-0", "fleet-1", "fleet-2"] {
            let row = pods_table
                .lines()
                .find(|l| l.starts_with(pod))
                .unwrap_or_else(|| panic!("no row of {pod} in:\n{stdout}"));
            assert!(
                row.contains(" kwok-") && row.contains(".elb.amazonaws.com:"),
                "{pod} has no node or no address: {row}"
            );
        }
        // The forwarder timed the five per-Service rooms from creation to address.
        let bed = Bed::load(&stack_env).expect("run-local wrote its stack file");
        let url = bed
            .var("FORWARDER_METRICS_URL")
            .expect("FORWARDER_METRICS_URL");
        let port: u16 = url
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/metrics")
            .parse()
            .expect("the forwarder's port");
        let metrics = testbed::local_stack::http::get(port, "/metrics", Duration::from_secs(5))
            .await
            .expect("the forwarder's /metrics");
        let timed: u64 = metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix("nlb_port_pool_service_address_seconds_count "))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(timed >= 5, "{}", metrics.body);

        // A new user's second shell: every documented command, as printed.
        crate::second_shell::use_as_documented(&stack_env, &read(&out), SWEEP_EVERY).await;
    }
    // Every process it runs: its descendants (functions included), and the bed's servers,
    // which bed-up detached.
    let mut family: Vec<ProcessId> = descendants(pid);
    let bed = Bed::load(&stack_env).expect("run-local wrote its stack file");
    let bed_pids = std::fs::read_to_string(
        PathBuf::from(bed.var("NLB_BED_STATE").expect("NLB_BED_STATE")).join("pids"),
    )
    .expect("the bed's pid file");
    family.extend(
        bed_pids
            .split_whitespace()
            .filter_map(|p| ProcessId::of(p.parse().ok()?)),
    );
    let commands: Vec<String> = family.iter().map(ProcessId::command).collect();
    // The bed's Kubernetes is one binary (`kube apiserver`, `kube controller-manager`, ...).
    for expected in [
        "local_stack",
        "cargo-lambda",
        "forwarder",
        "allocate",
        " apiserver ",
        " controller-manager ",
        " scheduler ",
        "/kwok-",
        "etcd",
        "moto_server",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(expected)),
            "no {expected} among {commands:#?}"
        );
    }
    match how {
        Stop::CtrlC => signal_group(pid, "INT"),
        Stop::Term => signal(pid, "TERM"),
    }

    // THEN it exits within a minute and nothing it started still runs
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "run-local still runs 90 s after the signal:\n{}",
                read(&err)
            )
        })
        .expect("waiting for run-local");
    let left: Vec<String> = family
        .iter()
        .filter(|p| p.alive())
        .map(|p| format!("{} {}", p.pid, p.command()))
        .collect();
    assert!(left.is_empty(), "still running after {status}: {left:#?}");
    assert!(
        read(&err).contains("the local stack is stopped"),
        "{}",
        read(&err)
    );
    assert!(!stack_env.exists(), "the bed's stack file is still there");
}

/// Sends `sig` to the process group `pgid` (`kill -SIG -- -pgid`).
fn signal_group(pgid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} -{pgid}");
}

/// The sweep's period in the run with examples: short, so a pod gone for good is released
/// within the test (make run's default is 60 s).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

#[tokio::test]
async fn make_run_works_from_a_second_shell_as_documented_and_stops_everything_on_ctrl_c() {
    let sweep_every = SWEEP_EVERY.as_secs().to_string();
    run_and_stop(Stop::CtrlC, &["--sweep-every", &sweep_every]).await;
}

#[tokio::test]
async fn make_run_stops_everything_on_sigterm() {
    run_and_stop(Stop::Term, &["--no-examples"]).await;
}
