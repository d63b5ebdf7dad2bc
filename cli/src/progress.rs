//! Progress of a long scan, on stderr, when stderr is a terminal: one line rewritten in place,
//! so piped output (`-o json | jq`) and tests see none of it.

use std::io::{IsTerminal as _, Write as _};

/// Where progress goes.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Progress on stderr if it is a terminal and `quiet` is not set.
    pub fn to_terminal(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// No progress at all.
    pub fn silent() -> Self {
        Self { enabled: false }
    }

    /// Shows `what` as the current step.
    pub fn say(&self, what: &str) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{what}...");
            let _ = err.flush();
        }
    }

    /// Clears the progress line.
    pub fn done(&self) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
