//! Looking up the ACM certificates a Service names for its TLS listeners, before anything is
//! made: a certificate that does not exist, or is not issued, is the user's to fix, and AWS
//! would refuse the listener only after the port was claimed and its target group made.

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

/// [`CertificateLookup`] on ACM.
#[derive(Debug, Clone)]
pub struct AwsCertificates {
    client: aws_sdk_acm::Client,
}

impl AwsCertificates {
    /// Uses `client`.
    pub fn new(client: aws_sdk_acm::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl CertificateLookup for AwsCertificates {
    async fn describe(&self, arn: &str) -> Result<Option<CertificateInfo>, CertificateError> {
        const OP: &str = "DescribeCertificate";
        match self
            .client
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(Some(CertificateInfo {
                status: out
                    .certificate()
                    .and_then(|c| c.status())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            // Malformed, or (AWS's answers) of another account or region: InvalidArn, or
            // AccessDenied where IAM allows this account's and region's certificates only.
            Err(e)
                if matches!(
                    crate::aws_error::code(&e),
                    Some("InvalidArnException" | "AccessDeniedException")
                ) =>
            {
                Ok(None)
            }
            Err(e) => {
                let (message, retryable) = crate::aws_error::describe(&e);
                Err(CertificateError {
                    operation: OP,
                    message,
                    retryable,
                })
            }
        }
    }
}

/// An in-memory [`CertificateLookup`] for tests: certificates by ARN, with their status.
#[cfg(any(test, feature = "test-doubles"))]
#[derive(Debug, Default)]
pub struct MemoryCertificates {
    certificates: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

#[cfg(any(test, feature = "test-doubles"))]
impl MemoryCertificates {
    /// Adds (or changes) a certificate.
    pub fn put(&self, arn: &str, status: &str) {
        self.certificates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(arn.to_owned(), status.to_owned());
    }
}

#[cfg(any(test, feature = "test-doubles"))]
#[async_trait]
impl CertificateLookup for MemoryCertificates {
    async fn describe(&self, arn: &str) -> Result<Option<CertificateInfo>, CertificateError> {
        Ok(self
            .certificates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(arn)
            .map(|status| CertificateInfo {
                status: status.clone(),
            }))
    }
}
