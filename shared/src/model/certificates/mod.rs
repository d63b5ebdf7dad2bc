//! Looking up the ACM certificates a Service names for its TLS listeners, before anything is
//! made: a certificate that does not exist, or is not issued, is the user's to fix, and AWS
//! would refuse the listener only after the port was claimed and its target group made.
//!
//! This module only names its parts: the lookup and what it answers (`lookup`).

pub(crate) mod lookup;

pub use lookup::{CertificateError, CertificateInfo, CertificateLookup};
