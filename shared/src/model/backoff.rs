//! The one backoff policy and the one random source of every retry loop in the project.
//!
//! Each loop that waits before trying again (a claim transaction that met another, a run
//! that found the Service busy, the forwarder's PutEvents retries, a watch re-list) asks a
//! [`Backoff`] for its pause, so the policies differ only in their numbers; randomness (the
//! jitter, a random NLB among equals, a run token) comes from [`fastrand`], seeded per thread
//! from the operating system.

use std::time::Duration;

/// How far a pause is spread, so callers that met once do not meet again on the same beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// No spread.
    None,
    /// Plus a random part in `0..max` (whole milliseconds).
    Add(Duration),
    /// Times a random factor in `1 - spread ..= 1 + spread` (in thousandths).
    Scale(f64),
}

/// An exponential backoff: `first * 2^attempt`, at most `cap`, then spread by `jitter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The pause before the second attempt (attempt 0).
    pub first: Duration,
    /// The longest pause, before jitter.
    pub cap: Duration,
    /// The spread.
    pub jitter: Jitter,
}

impl Backoff {
    /// The pause after failed attempt number `attempt` (counted from 0).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay(attempt);
        match self.jitter {
            Jitter::None => exp,
            Jitter::Add(max) => {
                let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
                exp + Duration::from_millis(random_below_u64(max_ms))
            }
            Jitter::Scale(spread) => exp.mul_f64(spread_factor(spread)),
        }
    }

    /// The pause after failed attempt `attempt` before any jitter: `first * 2^attempt`, at most
    /// `cap` (for callers that draw one jitter for several pauses).
    pub fn base_delay(&self, attempt: u32) -> Duration {
        self.first
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap)
    }
}

/// A random factor in `1 - spread ..= 1 + spread` (in thousandths), never below 0.
pub fn spread_factor(spread: f64) -> f64 {
    let steps = (spread * 1000.0).round().max(0.0) as u64;
    (1.0 - spread + random_below_u64(2 * steps + 1) as f64 / 1000.0).max(0.0)
}

/// 64 random bits (not secret: unique enough for tokens, spread enough for jitter).
pub fn random_u64() -> u64 {
    fastrand::u64(..)
}

/// A random number in `0..bound` (0 when `bound` is 0).
pub fn random_below(bound: usize) -> usize {
    if bound == 0 {
        0
    } else {
        fastrand::usize(..bound)
    }
}

fn random_below_u64(bound: u64) -> u64 {
    if bound == 0 {
        0
    } else {
        fastrand::u64(..bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_first_up_to_the_cap() {
        let b = Backoff {
            first: 100 * MS,
            cap: 1000 * MS,
            jitter: Jitter::None,
        };
        let delays: Vec<u128> = (0..6).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            b.delay(u32::MAX),
            1000 * MS,
            "a huge attempt count does not overflow"
        );
    }

    #[test]
    fn added_jitter_stays_below_its_bound() {
        let b = Backoff {
            first: 20 * MS,
            cap: Duration::MAX,
            jitter: Jitter::Add(20 * MS),
        };
        for _ in 0..500 {
            let d = b.delay(1);
            assert!(d >= 40 * MS && d < 60 * MS, "{d:?}");
        }
    }

    #[test]
    fn scaled_jitter_stays_within_its_spread_and_varies() {
        let b = Backoff {
            first: 1000 * MS,
            cap: Duration::MAX,
            jitter: Jitter::Scale(0.2),
        };
        let seen: std::collections::BTreeSet<u128> =
            (0..500).map(|_| b.delay(0).as_millis()).collect();
        assert!(seen.iter().all(|d| (800..=1200).contains(d)), "{seen:?}");
        assert!(seen.len() > 10, "jitter varies: {seen:?}");
    }

    #[test]
    fn random_below_is_within_bounds() {
        assert_eq!(random_below(0), 0);
        assert!((0..1000).all(|_| random_below(3) < 3));
    }
}
