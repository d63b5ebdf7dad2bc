//! Looking up the ACM certificates a Service names for its TLS listeners, before anything is
//! made: a certificate that does not exist, or is not issued, is the user's to fix, and AWS
//! would refuse the listener only after the port was claimed and its target group made.
//!
//! This module only names its parts: the lookup and what it answers (`lookup`).
//!
//! Adapters: ACM (`aws`), memory (`memory`, for tests).

mod aws;
mod lookup;
#[cfg(any(test, feature = "test-doubles"))]
mod memory;

pub use aws::AwsCertificates;
pub use lookup::{CertificateError, CertificateInfo, CertificateLookup};
#[cfg(any(test, feature = "test-doubles"))]
pub use memory::MemoryCertificates;
