//! `AccessDenied` from ELBv2 on a listener or target group of the project's, read as AWS means
//! it. The roles may change these only by their tags (`aws:ResourceTag`), and IAM can deny a
//! call on one for two reasons that are no refusal of ours:
//! - the resource is **gone** (another run deleted it): AWS evaluates the tag condition
//!   against a resource with no tags and answers `AccessDenied`, not `...NotFound`. A delete
//!   is then done, and any other call learns the resource is gone;
//! - the resource is **new** and its tags have not reached IAM yet: for a few seconds after
//!   `CreateTargetGroup` or `CreateListener` a call conditioned on them can be denied (the AWS
//!   Load Balancer Controller met this). The call is tried again, briefly, with a bound.
//!
//! A Describe tells the two apart; a denial that outlasts the bound on a resource that exists
//! is a real refusal, and fails the call.

use std::future::Future;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::client::AwsLoadBalancing;
use crate::adapters::aws::error::code;
use crate::model::backoff::{Backoff, Jitter};
use crate::model::elb::ElbError;

/// How long a denial on a resource that exists is taken for tag propagation.
pub const TAG_PROPAGATION: Duration = Duration::from_secs(8);
/// The first pause before trying a denied call again; it doubles.
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// A listener or target group of the project's, as a call names it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Own<'a> {
    Listener(&'a str),
    TargetGroup(&'a str),
}

/// Which of the instance's call budgets each attempt takes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Budget {
    /// ELBv2's mutating bucket.
    Writes,
    /// Its registration bucket.
    Registrations,
    /// None: the caller took it (once, for the first attempt).
    Taken,
}

/// What a call on one of the project's resources came to. (Short-lived, returned once per
/// call: its size does not matter.)
#[allow(clippy::large_enum_variant)]
pub(super) enum Called<T, E> {
    /// ELBv2's answer (a denial that outlasted [`TAG_PROPAGATION`] included).
    Answer(Result<T, SdkError<E, HttpResponse>>),
    /// Denied, and the resource no longer exists.
    Gone,
}

impl AwsLoadBalancing {
    /// Makes `call` on `resource`; a denial is told apart as the module says. Each attempt
    /// takes from `budget`.
    pub(super) async fn on_own<T, E, F, Fut>(
        &self,
        resource: Own<'_>,
        budget: Budget,
        call: F,
    ) -> Result<Called<T, E>, ElbError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        let started = tokio::time::Instant::now();
        // Doubling from FIRST_PAUSE; the deadline below ends it before the cap matters.
        let backoff = Backoff {
            first: FIRST_PAUSE,
            cap: TAG_PROPAGATION,
            jitter: Jitter::None,
        };
        let mut attempt = 0;
        loop {
            let pause = backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            match budget {
                Budget::Writes => self.writes.take().await,
                Budget::Registrations => self.registrations.take().await,
                Budget::Taken => {}
            }
            let answer = call().await;
            let denied = matches!(&answer, Err(e) if code(e) == Some("AccessDenied"));
            if !denied {
                return Ok(Called::Answer(answer));
            }
            if !self.exists(resource).await? {
                tracing::info!(?resource, "denied on a resource that is gone: done");
                return Ok(Called::Gone);
            }
            if started.elapsed() + pause > TAG_PROPAGATION {
                return Ok(Called::Answer(answer));
            }
            tracing::info!(
                ?resource,
                pause_ms = pause.as_millis() as u64,
                "denied on a resource that exists: its tags may not have reached IAM yet; trying again"
            );
            tokio::time::sleep(pause).await;
        }
    }

    async fn exists(&self, resource: Own<'_>) -> Result<bool, ElbError> {
        Ok(match resource {
            Own::Listener(arn) => !self.fetch_listeners(&[arn.to_owned()]).await?.is_empty(),
            Own::TargetGroup(arn) => !self
                .fetch_target_groups(&[arn.to_owned()])
                .await?
                .is_empty(),
        })
    }
}
