//! Child processes of the local stack: each in a process group of its own (so a terminal's
//! Ctrl-C reaches only the stack, which stops them in order), logging to a file, and stopped
//! with SIGTERM, then SIGKILL, together with every process it started.
//!
//! `cargo lambda watch` runs each function in a session of its own, so a process group signal
//! would miss them: [`ManagedChild::stop`] walks `/proc` for descendants before signalling.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

/// A process as `/proc` knows it: its pid and start time (so a reused pid is not mistaken
/// for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22).
    pub start: u64,
}

struct Stat {
    ppid: u32,
    state: char,
    start: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

impl ProcessId {
    /// The process `pid` as it is now, if it runs.
    pub fn of(pid: u32) -> Option<Self> {
        stat(pid).map(|s| Self {
            pid,
            start: s.start,
        })
    }

    /// Whether it still runs (a zombie has finished).
    pub fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start == self.start && s.state != 'Z')
    }

    /// Its command line, for messages.
    pub fn command(&self) -> String {
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    }
}

/// Every running descendant of `root` (children, their children, ...), not `root` itself.
pub fn descendants(root: u32) -> Vec<ProcessId> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<(u32, Stat)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| stat(pid).map(|s| (pid, s)))
        .collect();
    let mut out: Vec<ProcessId> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, s) in all.iter().filter(|(_, s)| s.ppid == parent) {
            if s.state != 'Z' {
                out.push(ProcessId {
                    pid: *pid,
                    start: s.start,
                });
            }
            frontier.push(*pid);
        }
    }
    out
}

/// Sends `signal` (e.g. `TERM`) to one process; a process already gone is not an error.
pub fn signal(pid: u32, signal: &str) {
    // std has no kill(2) with a signal other than KILL; the `kill` program does it.
    let _ = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A started child process, stopped (with its descendants) when dropped.
pub struct ManagedChild {
    name: String,
    child: tokio::process::Child,
    id: ProcessId,
    log: PathBuf,
    stopped: bool,
}

impl ManagedChild {
    /// Starts `cmd` in its own process group, stdout and stderr to `log` (truncated).
    pub fn spawn(name: &str, mut cmd: tokio::process::Command, log: &Path) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("the child has no pid")?;
        let id = ProcessId::of(pid).unwrap_or(ProcessId { pid, start: 0 });
        Ok(Self {
            name: name.to_owned(),
            child,
            id,
            log: log.to_owned(),
            stopped: false,
        })
    }

    /// The process.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines of its log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGKILL to the process alone (a crash: nothing drained, nothing handed over), then
    /// reaps it. Blocking, briefly.
    pub fn kill(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self.child.start_kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to the process, up to `grace` for it to exit (it stops its own children),
    /// then SIGTERM to any descendant left, and SIGKILL to whatever still runs 2 s later.
    /// Blocking: call it from `spawn_blocking` in async code (or let `Drop` call it).
    pub fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let mut family = descendants(self.id.pid);
        signal(self.id.pid, "TERM");
        let deadline = Instant::now() + grace;
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            // Functions started while stopping are family too.
            for d in descendants(self.id.pid) {
                if !family.contains(&d) {
                    family.push(d);
                }
            }
        }
        if self.running() {
            tracing::warn!(process = %self.name, pid = self.id.pid, ?grace, "no exit after SIGTERM: SIGKILL");
            let _ = self.child.start_kill();
        }
        let left: Vec<ProcessId> = family.into_iter().filter(ProcessId::alive).collect();
        for p in &left {
            signal(p.pid, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while left.iter().any(ProcessId::alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in left.iter().filter(|p| p.alive()) {
            tracing::warn!(process = %self.name, pid = p.pid, command = %p.command(), "a child outlived SIGTERM: SIGKILL");
            signal(p.pid, "KILL");
        }
        // Reap it, so no zombie stays behind while the stack runs on.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stopping_a_child_stops_its_grandchildren_too() {
        // GIVEN a shell that started a sleeping grandchild in a session of its own
        let dir = std::env::temp_dir().join(crate::unique_name("managed-child"));
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "setsid sleep 300 & sleep 300"]);
        let mut child = ManagedChild::spawn("sh", cmd, &dir.join("sh.log")).expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut family = descendants(child.id().pid);
        while family.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            family = descendants(child.id().pid);
        }
        assert_eq!(family.len(), 2, "sh should have two sleeping children");

        // WHEN it is stopped
        tokio::task::spawn_blocking(move || {
            child.stop(Duration::from_secs(5));
            child
        })
        .await
        .expect("stop");

        // THEN nothing of it runs
        assert!(family.iter().all(|p| !p.alive()), "{family:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
