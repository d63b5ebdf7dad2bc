//! Every file of events/ through `cargo lambda invoke --data-file` against the functions as
//! `cargo lambda watch` runs them: each returns success.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testbed::local_stack::build::workspace_root;

use crate::support::{CLUSTER, TestStack, kubectl, room_manifest};

/// The sample files, each with the function its event goes to and its place in a Service's
/// life (created, endpoints, deleted, then the sweep and the pool function).
fn samples() -> Vec<(PathBuf, serde_json::Value, &'static str, u8)> {
    let dir = workspace_root().join("events");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("reading events/") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a readable sample");
        let event: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let (function, rank) = match event["detail-type"].as_str().unwrap_or_default() {
            "Service Changed" => ("allocate", 0),
            "Endpoints Changed" => ("sync-targets", 1),
            "Service Deleted" => ("release", 2),
            "Scheduled Event" => ("sweep", 3),
            "Pool Low" => ("pool", 4),
            "Targets Registered" => ("reachable", 5),
            other => panic!(
                "{}: detail-type {other:?} has no function here; add it to this test",
                path.display()
            ),
        };
        out.push((path, event, function, rank));
    }
    out.sort_by_key(|s| s.3);
    out
}

/// `cargo lambda invoke --data-file file function` against the stack; its JSON answer.
fn invoke(port: u16, file: &Path, function: &str) -> serde_json::Value {
    let out = std::process::Command::new(workspace_root().join("testbed/bin/sam-tools"))
        .args(["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1"])
        .args([
            "--invoke-port",
            &port.to_string(),
            "--output-format",
            "json",
        ])
        .arg("--data-file")
        .arg(file)
        .arg(function)
        .output()
        .expect("running cargo lambda invoke");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo lambda invoke {function} --data-file {} failed: {stdout}{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{function} answered {stdout:?}: {e}"))
}

#[tokio::test]
async fn every_sample_event_succeeds_through_cargo_lambda_invoke() {
    // GIVEN the functions alone, and the samples' Service (room-1) in this test's namespace
    let t = TestStack::start("e2e-samples", false).await;
    let ns = t.namespace.clone();
    let samples = samples();
    let kinds: Vec<&str> = samples.iter().map(|s| s.2).collect();
    assert_eq!(
        kinds,
        [
            "allocate",
            "sync-targets",
            "release",
            "sweep",
            "pool",
            "reachable"
        ]
    );
    kubectl(
        &["apply", "-f", "-"],
        Some(&room_manifest(&ns, "room-1", &[("10.3.0.1", true)])),
    );
    let uid = t
        .services()
        .get("room-1")
        .await
        .expect("room-1")
        .metadata
        .uid
        .expect("a uid");
    let port = t.stack().functions.invoker().port();

    for (path, mut event, function, _) in samples {
        if function == "release" {
            kubectl(
                &["delete", "service", "room-1", "-n", &ns, "--wait=false"],
                None,
            );
        }
        // WHEN the sample, pointed at this test's Service, is invoked with cargo lambda
        if event["source"] == "nlb-port-pool.forwarder" {
            event["detail"]["namespace"] = ns.clone().into();
            event["detail"]["uid"] = uid.clone().into();
        }
        if event["detail"].get("cluster").is_some() {
            event["detail"]["cluster"] = CLUSTER.into();
        }
        let file = t.dir.join(path.file_name().expect("a file name"));
        std::fs::write(&file, event.to_string()).expect("writing the event");
        let answer = invoke(port, &file, function);

        // THEN it succeeds and did its part
        let outcome = answer["outcome"].as_str().unwrap_or_default().to_owned();
        match function {
            "allocate" => assert!(outcome.starts_with("Allocated"), "{answer}"),
            "sync-targets" => assert!(outcome.starts_with("TargetsSynced"), "{answer}"),
            "release" => assert!(outcome.starts_with("Released"), "{answer}"),
            "pool" => assert!(answer["pools"].is_array(), "{answer}"),
            "reachable" => assert!(answer["checked"].is_number(), "{answer}"),
            _ => assert_eq!(answer["failures"], 0, "{answer}"),
        }
    }

    // AND the Service went, leaving nothing behind
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while t
        .services()
        .get_opt("room-1")
        .await
        .expect("reading")
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "room-1 is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(t.listeners().await, vec![]);
    assert_eq!(t.claim_items().await, 0);
    t.stop().await;
}
