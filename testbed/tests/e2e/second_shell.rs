//! A new user's second shell next to `make run`: every command the ready message, the README
//! and docs/local-stack.md show, taken from those files and run as printed (each block in a
//! fresh bash that sourced the stack file, as the docs say), and what each must show. Also
//! what `make run` promises of the sweep: a per-pod pod gone for good is released within its
//! `pod-release-after` and one sweep period.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use testbed::Bed;
use testbed::local_stack::build::workspace_root;

/// A block of shell commands and where it was printed.
struct Block {
    from: String,
    text: String,
}

/// What marks a block the test does not run, on the line before it, with the reason.
const NOT_RUN: &str = "<!-- not run by the second-shell test";

/// The `sh` blocks of `file`'s local sections (`sections`: the `## ` headings; all when
/// empty), in order, but those marked [`NOT_RUN`].
fn documented_blocks(file: &str, sections: &[&str]) -> Vec<Block> {
    let text = std::fs::read_to_string(workspace_root().join(file))
        .unwrap_or_else(|e| panic!("reading {file}: {e}"));
    let mut blocks = Vec::new();
    let mut section = "";
    let mut open: Option<(usize, String)> = None;
    let mut previous = "";
    for (n, line) in text.lines().enumerate() {
        if let Some((start, body)) = open.as_mut() {
            if line.starts_with("```") {
                blocks.push(Block {
                    from: format!("{file}:{start}"),
                    text: std::mem::take(body),
                });
                open = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading;
        } else if line == "```sh"
            && (sections.is_empty() || sections.contains(&section))
            && !previous.starts_with(NOT_RUN)
        {
            open = Some((n + 1, String::new()));
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    blocks
}

/// The commands of the ready message `make run` printed ("In another shell:" up to "Logs:").
fn ready_message_block(stdout: &str) -> Block {
    let text: String = stdout
        .lines()
        .skip_while(|l| !l.contains("In another shell:"))
        .skip(1)
        .take_while(|l| !l.starts_with("Logs:"))
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    assert!(
        text.contains("source "),
        "no commands in the ready message:\n{stdout}"
    );
    Block {
        from: "make run's ready message".into(),
        text,
    }
}

/// Runs `block` in a fresh bash from the repository's root, as a user who sourced the stack
/// file: the shell has none of this test's AWS or Kubernetes settings, and finds an AWS CLI on
/// its PATH (the SAM tools' venv, at the end).
fn run(block: &Block, stack_env: &Path, path: &str) -> String {
    let env_path = stack_env.display().to_string();
    let script = format!(
        "set -euo pipefail\nsource {env_path}\n{}",
        block.text.replace(".local/stack.env", &env_path)
    );
    let mut command = std::process::Command::new("bash");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(workspace_root())
        .env("PATH", path)
        .env_remove("KUBECONFIG");
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name.starts_with("NLB_") {
            command.env_remove(name);
        }
    }
    let out = command.output().expect("running bash");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        block.from,
        out.status,
        block.text
    );
    assert!(
        !stderr.contains("AccessDenied") && !stdout.contains("AccessDenied"),
        "{} was refused by the IAM gate:\n{stdout}{stderr}",
        block.from
    );
    eprintln!(
        "[second shell] {} ran: {} lines out",
        block.from,
        stdout.lines().count()
    );
    stdout
}

/// What a block's output must show, by what the block does.
fn check(block: &Block, out: &str) {
    let t = &block.text;
    let from = &block.from;
    if t.contains("port-manager/address}'") {
        let address = regex_like_address(out);
        assert!(address, "{from}: no NLB_DNS:port address in:\n{out}");
    }
    if t.contains("delete pod fleet-1") {
        // Made again under its name, the pod has the address it had.
        let addresses: Vec<&str> = out
            .split_whitespace()
            .filter(|w| w.contains(".elb.amazonaws.com:"))
            .collect();
        assert!(
            addresses.len() == 2 && addresses[0] == addresses[1],
            "{from}: fleet-1 did not keep its address:\n{out}"
        );
    }
    if t.contains("scale statefulset fleet --replicas 4") {
        assert!(
            out.contains("\"allocated\":4"),
            "{from}: fleet-3 has no port:\n{out}"
        );
    }
    if t.contains("annotate svc room-paused nlb.port-manager/network-disabled-") {
        // Drained with its address, then its pods as healthy targets on that same address.
        let (first, rest) = out.split_once('\n').unwrap_or((out, ""));
        assert!(
            first.starts_with("Disabled "),
            "{from}: not Disabled at first:\n{out}"
        );
        let address = first.trim_start_matches("Disabled ").trim();
        assert!(
            regex_like_address(address) && rest.contains(address),
            "{from}: the address {address:?} did not stay:\n{out}"
        );
        assert!(
            rest.matches("healthy").count() >= 2,
            "{from}: its two pods are not its targets:\n{out}"
        );
    }
    if t.contains("get svc/my-room") {
        assert!(out.contains("my-room"), "{from}:\n{out}");
    }
    if t.contains("nlb-pool-cli -- get -A") {
        for room in ["game-rooms/room-alpha", "my-room"] {
            assert!(out.contains(room), "{from}: no {room} in:\n{out}");
        }
    }
    if t.contains("events/sweep.json") {
        // However the answer is printed (cargo lambda pretty-prints, curl does not).
        let compact: String = out.chars().filter(|c| !c.is_whitespace()).collect();
        let runs = compact.matches("\"cutShort\":false").count();
        assert!(runs >= 2, "{from}: not two whole sweep runs in:\n{out}");
        assert!(
            !compact.contains("\"cutShort\":true"),
            "{from}: a sweep run was cut short:\n{out}"
        );
    }
    if t.contains("describe-listeners") {
        assert!(out.contains("UDP"), "{from}: no UDP listener in:\n{out}");
    }
    if t.contains("pool#default") {
        assert!(out.contains("pool#default"), "{from}:\n{out}");
    }
}

/// Whether `out` holds `<name>.elb.amazonaws.com:<port>`.
fn regex_like_address(out: &str) -> bool {
    out.split_whitespace().any(|word| {
        word.split_once(".elb.amazonaws.com:")
            .is_some_and(|(dns, port)| !dns.is_empty() && port.parse::<u16>().is_ok())
    })
}

/// Waits until every opted-in Service is Allocated, Ready or Disabled (drained on purpose) and
/// every deleted one is gone.
async fn settled(client: &kube::Client) {
    let api: Api<Service> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let list = api
            .list(&ListParams::default())
            .await
            .expect("listing Services");
        let waiting: Vec<String> = list
            .items
            .iter()
            .filter(|s| {
                let a = s.metadata.annotations.clone().unwrap_or_default();
                let opted =
                    a.get("nlb.port-manager/auto-assign").map(String::as_str) == Some("true");
                let status = a
                    .get("nlb.port-manager/status")
                    .cloned()
                    .unwrap_or_default();
                s.metadata.deletion_timestamp.is_some()
                    || (opted
                        && !(status.starts_with("Allocated")
                            || status == "Ready"
                            || status == "Disabled"))
            })
            .map(|s| {
                format!(
                    "{}/{}",
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default()
                )
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Services not settled after 180 s: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every NLB's listener ports, as the bed's admin reads them.
async fn listener_ports(elb: &aws_sdk_elasticloadbalancingv2::Client) -> Vec<i32> {
    let nlbs = elb
        .describe_load_balancers()
        .send()
        .await
        .expect("describing NLBs");
    let mut ports = Vec::new();
    for nlb in nlbs.load_balancers() {
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(nlb.load_balancer_arn().unwrap_or_default())
            .send()
            .await
            .expect("describing listeners");
        ports.extend(listeners.listeners().iter().filter_map(|l| l.port()));
    }
    ports
}

fn kubectl(bed: &Bed, args: &[&str]) {
    let out = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", bed.kubeconfig())
        .output()
        .expect("running kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The per-pod example `fleet` loses its last pod for good (its StatefulSet scaled from 3 to
/// 2): with `pod-release-after` 5 s and the sweep every `sweep_every`, fleet-2's port is
/// released within the pod's grace period, both and a margin. The fleet is then made whole
/// again (a new fleet-2, a new port), as the docs' commands find it.
async fn per_pod_release(bed: &Bed, sweep_every: Duration) {
    let client = bed.kube_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "game-rooms");
    let pod = pods.get("fleet-2").await.expect("pod fleet-2");
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let port: i32 = pod
        .metadata
        .annotations
        .unwrap_or_default()
        .get("nlb.port-manager/allocated-port")
        .and_then(|p| p.parse().ok())
        .expect("fleet-2 has its port");
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&bed.sdk_config().await);
    assert!(listener_ports(&elb).await.contains(&port));

    let release_after = |seconds: u32| {
        kubectl(
            bed,
            &[
                "-n",
                "game-rooms",
                "annotate",
                "--overwrite",
                "svc",
                "fleet",
                &format!("nlb.port-manager/pod-release-after={seconds}"),
            ],
        )
    };
    let scale = |replicas: u32| {
        kubectl(
            bed,
            &[
                "-n",
                "game-rooms",
                "scale",
                "statefulset",
                "fleet",
                "--replicas",
                &replicas.to_string(),
            ],
        )
    };
    release_after(5);
    scale(2);
    let gone_at = tokio::time::Instant::now();

    let allowed =
        Duration::from_secs(grace.unsigned_abs() + 5) + sweep_every + Duration::from_secs(45);
    while listener_ports(&elb).await.contains(&port) {
        assert!(
            gone_at.elapsed() < allowed,
            "fleet-2's listener on port {port} is still there {allowed:?} after the fleet was \
             scaled down"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "[second shell] fleet-2's port {port} released {:.1} s after the fleet was scaled down",
        gone_at.elapsed().as_secs_f64()
    );

    // As the examples made it: three pods, each Ready (it has a port and is reachable).
    release_after(60);
    scale(3);
    kubectl(
        bed,
        &[
            "-n",
            "game-rooms",
            "rollout",
            "status",
            "statefulset",
            "fleet",
            "--timeout",
            "120s",
        ],
    );
}

/// Uses the running stack described by `stack_env` as a new user would from a second shell.
pub async fn use_as_documented(stack_env: &Path, stdout: &str, sweep_every: Duration) {
    let bed = Bed::load(stack_env).expect("run-local wrote its stack file");
    let client = bed.kube_client().await;
    per_pod_release(&bed, sweep_every).await;

    let mut blocks = vec![ready_message_block(stdout)];
    blocks.extend(documented_blocks(
        "README.md",
        &["The two commands", "Try a function locally"],
    ));
    blocks.extend(documented_blocks("docs/local-stack.md", &[]));
    assert!(blocks.len() >= 10, "too few blocks found: {}", blocks.len());
    // An AWS CLI on the shell's PATH: the SAM tools' venv has one (after the system's tools).
    let sam_bin =
        std::process::Command::new(workspace_root().join("testbed/bin/install-sam-tools"))
            .output()
            .expect("running install-sam-tools");
    let sam_bin = String::from_utf8_lossy(&sam_bin.stdout).trim().to_owned();
    let path = format!("{}:{sam_bin}", std::env::var("PATH").unwrap_or_default());
    for block in &blocks {
        settled(&client).await;
        let out = run(block, stack_env, &path);
        check(block, &out);
    }
    settled(&client).await;
}
