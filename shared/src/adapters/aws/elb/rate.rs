//! A per-instance budget for ELBv2 calls that change things. ELBv2 throttles per account and
//! Region with token buckets shared by everything in the account (the AWS Load Balancer
//! Controller, other teams' deploys): a burst of events should slow this instance down, not
//! spend the account's tokens. A call waits for a token here before it is sent; waiters are
//! served in the order they came.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How fast one instance may make calls of one kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallRate {
    /// Calls per second, sustained; 0 or less (or not finite) for no limit.
    pub per_second: f64,
    /// Calls that may go at once after a quiet spell (the bucket's size, at least 1).
    pub burst: u32,
}

impl CallRate {
    /// No limit: for tests and benchmarks against the local stack.
    pub const UNLIMITED: Self = Self {
        per_second: 0.0,
        burst: 1,
    };

    fn is_limited(&self) -> bool {
        self.per_second.is_finite() && self.per_second > 0.0
    }
}

/// A token bucket; clones share it.
#[derive(Debug, Clone)]
pub struct CallBudget {
    rate: CallRate,
    /// Tokens left (negative: owed by waiters) and when it was last filled.
    state: Arc<Mutex<(f64, Instant)>>,
}

impl CallBudget {
    /// A full bucket of `rate`.
    pub fn new(rate: CallRate) -> Self {
        let burst = f64::from(rate.burst.max(1));
        Self {
            rate,
            state: Arc::new(Mutex::new((burst, Instant::now()))),
        }
    }

    /// Waits until a call may be made, and takes its token.
    pub async fn take(&self) {
        if !self.rate.is_limited() {
            return;
        }
        let wait = {
            // A panic elsewhere poisons the lock; the counts are still whole.
            let mut st = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let burst = f64::from(self.rate.burst.max(1));
            let refill = now.saturating_duration_since(st.1).as_secs_f64() * self.rate.per_second;
            st.0 = (st.0 + refill).min(burst);
            st.1 = now;
            // Take the token now, owing it if there is none: later callers queue behind.
            st.0 -= 1.0;
            if st.0 >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-st.0 / self.rate.per_second)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
#[path = "rate_tests.rs"]
mod tests;
