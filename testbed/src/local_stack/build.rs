//! Building what the local stack runs, in the workspace's own target directory.
//!
//! The functions are built the way `cargo lambda watch` builds them (`cargo run --bin <name>`
//! selects only that package), so its first invocation finds them fresh: the four function
//! crates have the same dependencies, so building them together unifies no other features. The
//! forwarder (kube's `runtime` feature) is built on its own for the same reason.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};

/// The Lambda functions of the workspace, as `cargo lambda watch` names them.
pub const FUNCTIONS: [&str; 4] = ["allocate", "release", "sync-targets", "sweep"];

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

/// `cargo build` of the forwarder with `profile`; returns its executable.
pub async fn forwarder(profile: Option<&str>, output: Output) -> Result<PathBuf> {
    let args: Vec<String> = [
        "build",
        "-p",
        "forwarder",
        "--bin",
        "forwarder",
        "--message-format",
        "json-render-diagnostics",
    ]
    .map(String::from)
    .into();
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
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "cargo {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            tail.join("\n")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
