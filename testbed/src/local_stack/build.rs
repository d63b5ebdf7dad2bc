//! Building what the local stack runs, in the workspace's own target directory.
//!
//! The functions are built the way `cargo lambda watch` builds them (`cargo run --bin <name>`
//! selects only that package), so its first invocation finds them fresh: the four function
//! crates have the same dependencies, so building them together unifies no other features. The
//! forwarder (kube's `runtime` feature) is built apart from them, together with the
//! `local_stack` runner exactly as `testbed/bin/run-local` builds it ([`FORWARDER_AND_RUNNER`]),
//! so `make run` and the tests share one build of their dependencies instead of two (each
//! feature set is a copy of ~1 GB in `target/`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};

/// The Lambda functions of the workspace, as `cargo lambda watch` names them.
pub const FUNCTIONS: [&str; 6] = [
    "allocate",
    "release",
    "sync-targets",
    "sweep",
    "pool",
    "reachable",
];

/// Where cargo's progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// To this process's stderr (the user watches the build).
    Inherit,
    /// Kept, and shown only in the error when the build fails (tests).
    Capture,
}

/// The workspace root (this crate is `testbed/` in it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo build` of the four functions with `profile` (`dev` when `None`).
pub async fn functions(profile: Option<&str>, output: Output) -> Result<()> {
    let mut args: Vec<String> = vec!["build".into()];
    for f in FUNCTIONS {
        args.extend(["-p".into(), f.into()]);
    }
    cargo(&args, profile, output).await.map(drop)
}

/// The cargo arguments that build the forwarder and the local stack's runner, here and in
/// `testbed/bin/run-local` (which must stay the same, or each builds its own copy).
pub const FORWARDER_AND_RUNNER: [&str; 9] = [
    "build",
    "-p",
    "forwarder",
    "-p",
    "testbed",
    "--bin",
    "forwarder",
    "--bin",
    "local_stack",
];

/// `cargo build` of the forwarder (with the runner, see [`FORWARDER_AND_RUNNER`]) with
/// `profile`; returns the forwarder's executable.
pub async fn forwarder(profile: Option<&str>, output: Output) -> Result<PathBuf> {
    let mut args: Vec<String> = FORWARDER_AND_RUNNER.map(String::from).into();
    args.extend(["--message-format".into(), "json-render-diagnostics".into()]);
    let stdout = cargo(&args, profile, output).await?;
    executable(&stdout, "forwarder")
        .with_context(|| "cargo build -p forwarder named no forwarder executable".to_owned())
}

/// The `executable` of the compiler-artifact message for bin target `name`.
fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

async fn cargo(args: &[String], profile: Option<&str>, output: Output) -> Result<String> {
    let mut cmd = tokio::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cmd.args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = profile {
        cmd.args(["--profile", p]);
    }
    cmd.stderr(match output {
        Output::Inherit => Stdio::inherit(),
        Output::Capture => Stdio::piped(),
    });
    // spawn, not output(): tokio's output() pipes stderr even when told to inherit it.
    let out = cmd
        .spawn()
        .with_context(|| format!("running cargo {}", args.join(" ")))?
        .wait_with_output()
        .await?;
    if !out.status.success() {
        bail!(
            "cargo {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            failure_tail(&String::from_utf8_lossy(&out.stderr))
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last lines of cargo's error output, each cut to a readable length: a failed link
/// prints the linker's command line (tens of thousands of characters) before the linker's
/// own message (`No space left on device`, say), which must stay in view.
fn failure_tail(stderr: &str) -> String {
    const LINES: usize = 40;
    const LINE_CHARS: usize = 300;
    let tail: Vec<&str> = stderr.lines().rev().take(LINES).collect();
    tail.into_iter()
        .rev()
        .map(|line| match line.char_indices().nth(LINE_CHARS) {
            Some((cut, _)) => format!("{} [... {} more bytes]", &line[..cut], line.len() - cut),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_shows_the_linker_message_after_its_long_command_line() {
        let command = format!("  = note: \"cc\" {}", "-l some-library ".repeat(5000));
        let stderr = format!(
            "error: linking with `cc` failed: exit status: 1\n{command}\n  = note: /usr/bin/ld: \
             final link failed: No space left on device\n"
        );

        let tail = failure_tail(&stderr);

        assert!(tail.len() < 1000, "{} bytes", tail.len());
        assert!(tail.contains("linking with `cc` failed"));
        assert!(tail.contains("No space left on device"));
        assert!(tail.contains("more bytes]"));
    }

    #[test]
    fn run_local_builds_the_forwarder_and_runner_as_the_tests_do() {
        let script = std::fs::read_to_string(workspace_root().join("testbed/bin/run-local"))
            .expect("reading testbed/bin/run-local");
        let command = format!("cargo {}", FORWARDER_AND_RUNNER.join(" "));
        assert!(
            script.lines().any(|l| l.trim() == command),
            "run-local must run `{command}` (the same feature set as the tests' build)"
        );
    }

    #[test]
    fn finds_the_executable_among_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"nlb-port-pool"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"forwarder"},"executable":"/t/debug/forwarder"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#
        );
        assert_eq!(
            executable(messages, "forwarder"),
            Some(PathBuf::from("/t/debug/forwarder"))
        );
        assert_eq!(executable(messages, "allocate"), None);
    }
}
