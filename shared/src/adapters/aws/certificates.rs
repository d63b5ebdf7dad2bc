//! [`CertificateLookup`] on ACM.

use async_trait::async_trait;

use crate::model::certificates::lookup::{CertificateError, CertificateInfo, CertificateLookup};

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
                    crate::adapters::aws::error::code(&e),
                    Some("InvalidArnException" | "AccessDeniedException")
                ) =>
            {
                Ok(None)
            }
            Err(e) => {
                let (message, retryable) = crate::adapters::aws::error::describe(&e);
                Err(CertificateError {
                    operation: OP,
                    message,
                    retryable,
                })
            }
        }
    }
}
