//! An in-memory [`CertificateLookup`] for tests.

use async_trait::async_trait;

use crate::model::certificates::lookup::{CertificateError, CertificateInfo, CertificateLookup};

/// An in-memory [`CertificateLookup`] for tests: certificates by ARN, with their status.
#[derive(Debug, Default)]
pub struct MemoryCertificates {
    certificates: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl MemoryCertificates {
    /// Adds (or changes) a certificate.
    pub fn put(&self, arn: &str, status: &str) {
        self.certificates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(arn.to_owned(), status.to_owned());
    }
}

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
