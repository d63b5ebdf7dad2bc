//! Errors of a reconcile: everything that is not the user's to fix.

use crate::model::certificates::CertificateError;
use crate::model::claims::{Claim, HoldError, ReleaseError, StoreError};
use crate::model::cluster::KubeError;
use crate::model::elb::ElbError;

/// A reconcile that did not finish. The function fails, EventBridge delivers the event again
/// (and the sweep retries), and the next run picks up where this one stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// ELBv2 failed.
    #[error(transparent)]
    Elb(#[from] ElbError),
    /// The Kubernetes API failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// ACM failed (looking up a TLS listener's certificate).
    #[error(transparent)]
    Certificates(#[from] CertificateError),
    /// Another handler is allocating this Service right now.
    #[error("Service {service}: {reason}")]
    Busy {
        /// The Service.
        service: String,
        /// What is in progress.
        reason: String,
    },
    /// State changed under the reconcile (a claim released meanwhile): run again.
    #[error("{0}")]
    Conflict(String),
    /// The deployment is wrong (a pool is not configured, the claims table is another
    /// cluster's or stack's): an operator must act; retrying alone will not help. (A missing
    /// NLB or a foreign listener on a port is not: the claim moves, see `ListenerRefused`.)
    #[error("{0}")]
    Setup(String),
    /// AWS refused the listener of a claim: its NLB is at the listener quota, a listener the
    /// system did not make holds the port, or the NLB is gone. The claim moves to another
    /// port or NLB (`ensure` does this before the error reaches a caller).
    #[error("listener for port {} of NLB {} refused: {reason}", claim.port, claim.nlb_arn)]
    ListenerRefused {
        /// The claim whose listener was refused.
        claim: Box<Claim>,
        /// Why, for the Service's Event and status.
        reason: String,
        /// The whole NLB takes no listener now (full or gone), not just this port.
        nlb_unusable: bool,
    },
    /// A test stopped the run at a failpoint.
    #[error("stopped at failpoint {0}")]
    Injected(&'static str),
}

impl Error {
    /// Whether trying again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(e) => e.retryable,
            Error::Elb(e) => e.retryable,
            Error::Kube(e) => e.retryable,
            Error::Certificates(e) => e.retryable,
            Error::Busy { .. }
            | Error::Conflict(_)
            | Error::Injected(_)
            | Error::ListenerRefused { .. } => true,
            Error::Setup(_) => false,
        }
    }
}

/// The result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A write on a claim this run believed it held was refused: another run took it over (this
/// run stalled past the grace) or released it. Whatever is left is that run's; try again.
impl From<HoldError> for Error {
    fn from(e: HoldError) -> Self {
        match e {
            HoldError::Store(s) => Error::Store(s),
            lost => Error::Conflict(format!("this run no longer holds its claims: {lost}")),
        }
    }
}

/// A release refused because the claims changed hands under it: read again and try again.
impl From<ReleaseError> for Error {
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::Store(s) => Error::Store(s),
            changed => Error::Conflict(format!("release refused: {changed}")),
        }
    }
}
