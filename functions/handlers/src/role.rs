//! Which function a process is, which decides what it reads at start and what it builds.

/// What a function does. Every function reconciles Services with the claims table and ELBv2;
/// beyond that each builds only what its role uses (see `Deps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `allocate` and `sync-targets` (and a function of any other name, as in tests): Service
    /// events that may make listeners.
    Allocates,
    /// `release`: `Service Deleted`. It only releases: it makes no listener (no certificate to
    /// look up) and sends no signal.
    Releases,
    /// `sweep`: keeps its place in the claims table between runs.
    Sweeps,
    /// `pool`: makes, promotes and retires the managed pools' NLBs.
    TendsPools,
    /// `reachable`: works through the reachability list.
    ChecksReach,
}

impl Role {
    /// The role of the function named `function`.
    pub(crate) fn of(function: &str) -> Self {
        match function {
            "release" => Self::Releases,
            "sweep" => Self::Sweeps,
            "pool" => Self::TendsPools,
            "reachable" => Self::ChecksReach,
            _ => Self::Allocates,
        }
    }

    /// Whether the function may make a listener, so looks up TLS certificates first (only
    /// `release` never does).
    pub(crate) fn makes_listeners(self) -> bool {
        self != Self::Releases
    }
}
