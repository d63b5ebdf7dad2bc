//! How long an invocation may work: the deadline its runtime hands it, checked against what
//! Lambda can give.
//!
//! Lambda's deadline is always the invocation's start plus the function's timeout (1 to 900
//! seconds). Local runtimes are not so careful: `cargo lambda watch` (1.9) sends a fixed
//! `Lambda-Runtime-Deadline-Ms: 600000`, ten minutes after the epoch, so taken at its word every
//! run would be over before it starts. A deadline Lambda could not have given is replaced by
//! the function's configured timeout from now, and said once per process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The functions' timeout when nothing says otherwise: template.yaml's `Globals.Function.Timeout`
/// (the sweep keeps it). A unit test holds the two together.
pub const DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The shortest and longest timeouts Lambda accepts: a deadline outside them, counted from
/// the invocation's start, was not given by Lambda.
const LAMBDA_TIMEOUTS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(900);

/// The time budget of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBudget {
    /// When the run must be over.
    pub deadline: Instant,
    /// Whether the runtime's deadline was replaced by the configured timeout.
    pub substituted: bool,
}

impl TimeBudget {
    /// The budget of an invocation that starts at `now` with the runtime's `deadline_ms`
    /// (milliseconds since the epoch) and the function's configured `timeout`. `None` when
    /// no deadline is known at all (0, as in a bare test context).
    pub fn of_invocation(deadline_ms: u64, now: SystemTime, timeout: Duration) -> Option<Self> {
        if deadline_ms == 0 {
            return None;
        }
        let given = UNIX_EPOCH + Duration::from_millis(deadline_ms);
        let left = given.duration_since(now).unwrap_or_default();
        let (left, substituted) = if LAMBDA_TIMEOUTS.contains(&left) {
            (left, false)
        } else {
            (timeout, true)
        };
        Some(Self {
            deadline: Instant::now() + left,
            substituted,
        })
    }

    /// When to start no more work: two thirds of the way from now to the deadline, so the
    /// work in flight and the last saves finish well inside it.
    pub fn stop_starting_work(&self) -> Instant {
        let now = Instant::now();
        now + self.deadline.saturating_duration_since(now) * 2 / 3
    }
}

/// Whether this process has said that its runtime's deadline was replaced.
static SAID: AtomicBool = AtomicBool::new(false);

/// When a sweep run starts no more work (see [`TimeBudget`]); logs the first substitution.
pub fn stop_by(deadline_ms: u64, now: SystemTime, timeout: Duration) -> Option<Instant> {
    let budget = TimeBudget::of_invocation(deadline_ms, now, timeout)?;
    if budget.substituted && !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            deadline_ms,
            timeout_seconds = timeout.as_secs(),
            "the runtime's invocation deadline is not one Lambda gives (a local runtime?): \
             budgeting the function's timeout instead"
        );
    }
    Some(budget.stop_starting_work())
}

/// The function's configured timeout: `AWS_LAMBDA_FUNCTION_TIMEOUT` where the runtime sets it
/// (SAM's emulator does; Lambda and `cargo lambda watch` do not), else
/// [`DEFAULT_FUNCTION_TIMEOUT`].
pub fn configured_timeout(value: Option<&str>) -> Result<Duration, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(DEFAULT_FUNCTION_TIMEOUT),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .filter(|t| LAMBDA_TIMEOUTS.contains(t))
            .ok_or_else(|| {
                format!("AWS_LAMBDA_FUNCTION_TIMEOUT={v:?} is not a number of seconds in 1..=900")
            }),
    }
}

#[cfg(test)]
mod tests {
    // By name, not `super`: testbed/bin/import-circles reads `super` as the file's parent.
    use crate::time_budget::*;

    fn ms(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis() as u64
    }

    fn left(stop: Instant) -> Duration {
        stop.saturating_duration_since(Instant::now())
    }

    #[test]
    fn lambdas_deadline_is_kept_and_work_stops_at_two_thirds_of_it() {
        // GIVEN a deadline 60 s ahead, as Lambda gives it
        let now = SystemTime::now();
        let deadline = ms(now + Duration::from_secs(60));

        // WHEN the sweep asks when to stop starting work (its configured timeout says 300 s)
        let stop = stop_by(deadline, now, Duration::from_secs(300)).expect("a stop time");

        // THEN it is 40 s from now: the runtime's deadline decides
        let left = left(stop);
        assert!(
            left > Duration::from_secs(38) && left <= Duration::from_secs(40),
            "{left:?}"
        );
    }

    #[test]
    fn cargo_lambda_watchs_fixed_deadline_is_replaced_by_the_timeout() {
        // GIVEN the deadline cargo lambda watch sends: 600000 ms after the epoch
        let now = SystemTime::now();

        // WHEN the budget is read with a 60 s timeout
        let budget =
            TimeBudget::of_invocation(600_000, now, DEFAULT_FUNCTION_TIMEOUT).expect("a budget");

        // THEN the run gets the 60 s, not none
        assert!(budget.substituted);
        let until_deadline = left(budget.deadline);
        assert!(
            until_deadline > Duration::from_secs(58),
            "{until_deadline:?}"
        );
        let stop = left(budget.stop_starting_work());
        assert!(stop > Duration::from_secs(38), "{stop:?}");
    }

    #[test]
    fn a_deadline_absurdly_near_or_far_is_replaced_and_unknown_means_none() {
        let now = SystemTime::now();
        let timeout = Duration::from_secs(30);
        for (what, deadline) in [
            ("a second ago", ms(now) - 1_000),
            ("in 200 ms", ms(now) + 200),
            ("in a day", ms(now) + 86_400_000),
        ] {
            let budget = TimeBudget::of_invocation(deadline, now, timeout).expect("a budget");
            assert!(budget.substituted, "{what}");
            assert!(left(budget.deadline) > Duration::from_secs(29), "{what}");
        }
        assert_eq!(
            TimeBudget::of_invocation(0, now, timeout),
            None,
            "no deadline known: no stop"
        );
    }

    #[test]
    fn the_configured_timeout_comes_from_sams_variable_or_the_templates_default() {
        assert_eq!(configured_timeout(None), Ok(DEFAULT_FUNCTION_TIMEOUT));
        assert_eq!(configured_timeout(Some("")), Ok(DEFAULT_FUNCTION_TIMEOUT));
        assert_eq!(
            configured_timeout(Some("300")),
            Ok(Duration::from_secs(300))
        );
        for bad in ["0", "901", "1m", "-5"] {
            let err = configured_timeout(Some(bad)).expect_err(bad);
            assert!(err.contains("AWS_LAMBDA_FUNCTION_TIMEOUT"), "{err}");
        }
    }

    #[test]
    fn the_default_timeout_is_the_templates() {
        // The sweep has no Timeout of its own: it takes Globals.Function.Timeout.
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
                .expect("reading template.yaml");
        let globals = template
            .split_once("\nGlobals:")
            .and_then(|(_, rest)| rest.split_once("\nResources:"))
            .map(|(globals, _)| globals)
            .expect("template.yaml has Globals before Resources");
        let timeout = globals
            .lines()
            .find_map(|l| l.trim().strip_prefix("Timeout:"))
            .and_then(|t| t.trim().parse::<u64>().ok())
            .expect("Globals.Function.Timeout");
        assert_eq!(Duration::from_secs(timeout), DEFAULT_FUNCTION_TIMEOUT);
        let sweep = template
            .split_once("\n  SweepFn:")
            .and_then(|(_, rest)| rest.split("\n\n").next())
            .expect("SweepFn in template.yaml");
        assert!(
            !sweep.contains("Timeout:"),
            "SweepFn sets its own Timeout: DEFAULT_FUNCTION_TIMEOUT no longer matches it"
        );
    }
}
