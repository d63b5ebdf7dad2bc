//! Waiting out another run on the same Service, inside the invocation.

use std::time::Duration;

use nlb_port_pool::contract::event::ServiceEvent;
use nlb_port_pool::model::backoff::{Backoff, Jitter};
use nlb_port_pool::reconcile::{Error as ReconcileError, Outcome};

/// How long a handler keeps trying by default while another run holds the Service's claims:
/// long enough for a duplicate delivery to wait out the run it met (an allocation takes about a
/// second in AWS, more when ELBv2 throttles), short next to the functions' 60 s timeout.
pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_secs(10);

/// The first pause after a busy answer; it doubles up to [`BUSY_MAX_PAUSE`].
const BUSY_FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two attempts (before jitter).
const BUSY_MAX_PAUSE: Duration = Duration::from_millis(1600);
/// The pauses: doubling, plus jitter so runs that met once do not meet again on the same beat.
const BUSY_BACKOFF: Backoff = Backoff {
    first: BUSY_FIRST_PAUSE,
    cap: BUSY_MAX_PAUSE,
    jitter: Jitter::Add(Duration::from_millis(50)),
};

/// Runs `attempt` again while another run holds the Service's claims (a duplicate delivery,
/// the sweep, an event for the same Service), with a short growing pause, for at most
/// `busy_wait`. Routine overlaps then end here instead of in EventBridge's retries and the
/// dead-letter queue; a run still busy after that fails as retryable.
pub(crate) async fn retry_busy<F, Fut>(
    busy_wait: Duration,
    event: &ServiceEvent,
    attempt: F,
) -> Result<Outcome, ReconcileError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, ReconcileError>>,
{
    let started = tokio::time::Instant::now();
    let mut attempts = 0;
    loop {
        let result = attempt().await;
        let Err(ReconcileError::Busy { reason, .. }) = &result else {
            return result;
        };
        let pause = BUSY_BACKOFF.delay(attempts);
        if started.elapsed() + pause > busy_wait {
            return result;
        }
        tracing::info!(service = %event.key(), reason, pause_ms = pause.as_millis() as u64,
            "another run is on this Service; trying again");
        tokio::time::sleep(pause).await;
        attempts += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use crate::busy::{DEFAULT_BUSY_WAIT, ReconcileError, retry_busy};
    use nlb_port_pool::contract::event::ServiceEvent;
    use nlb_port_pool::reconcile::Outcome;

    fn event() -> ServiceEvent {
        let detail = serde_json::json!({
            "version": 1, "cluster": "c", "namespace": "n", "name": "s", "uid": "0a-1",
            "resourceVersion": "1", "deleting": false, "observedAt": "2026-11-26T10:00:00Z"
        });
        ServiceEvent::from_parts(
            Some(nlb_port_pool::contract::event::EVENT_SOURCE),
            Some("Service Changed"),
            &detail,
        )
        .expect("event")
    }

    fn busy() -> ReconcileError {
        ReconcileError::Busy {
            service: "c/n/s".into(),
            reason: "another run".into(),
        }
    }

    #[tokio::test]
    async fn a_busy_run_is_tried_again_until_the_other_run_is_done() {
        // GIVEN a Service another run holds for the first two attempts
        let attempts = AtomicUsize::new(0);
        let run = || async {
            match attempts.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(busy()),
                _ => Ok(Outcome::Allocated {
                    listeners: 1,
                    claimed: 0,
                }),
            }
        };

        // WHEN the handler runs it with the default wait
        let outcome = retry_busy(DEFAULT_BUSY_WAIT, &event(), run).await;

        // THEN it succeeds at the third attempt, with no failure for EventBridge to retry
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_run_still_busy_after_the_wait_fails_as_retryable() {
        // GIVEN a Service another run holds throughout, and a wait of a quarter second
        let attempts = AtomicUsize::new(0);
        let run = || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err(busy())
        };

        // WHEN the handler runs it
        let started = std::time::Instant::now();
        let outcome = retry_busy(Duration::from_millis(250), &event(), run).await;

        // THEN it gives up within the wait, failing as retryable (EventBridge tries later)
        let err = outcome.expect_err("still busy");
        assert!(err.is_retryable(), "{err}");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() < Duration::from_millis(400));
    }
}
