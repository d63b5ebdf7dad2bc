//! What a certificate lookup answers, behind a trait ([`CertificateLookup`]).

use async_trait::async_trait;

/// A certificate as ACM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Its status: `ISSUED` is the one a listener can use; `PENDING_VALIDATION`, `EXPIRED`,
    /// `REVOKED`, `FAILED`, `INACTIVE`, `VALIDATION_TIMED_OUT` are not.
    pub status: String,
}

impl CertificateInfo {
    /// Whether a listener can serve it.
    pub fn is_usable(&self) -> bool {
        self.status == "ISSUED"
    }
}

/// An ACM call failed for a reason other than the certificate not existing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ACM {operation}: {message}")]
pub struct CertificateError {
    /// The operation.
    pub operation: &'static str,
    /// What went wrong.
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
}

/// Reads certificates.
#[async_trait]
pub trait CertificateLookup: Send + Sync {
    /// The certificate `arn`, or `None` when it does not exist (in this account and region).
    async fn describe(&self, arn: &str) -> Result<Option<CertificateInfo>, CertificateError>;
}
