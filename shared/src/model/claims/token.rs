//! The token that names one run on the claims it holds.

use crate::model::backoff::random_u64;

/// One run of a reconcile (an invocation, or one Service of a sweep). Claims written by the
/// run carry it, and the run changes a claim only while the claim still carries it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunToken(String);

impl RunToken {
    /// A token for a run with no outside name: 128 random bits.
    pub fn random() -> Self {
        Self(format!("{:016x}{:016x}", random_u64(), random_u64()))
    }

    /// A token for a run of the invocation `request_id` (the Lambda request id), so the claims
    /// say which invocation holds them. Random bits follow it: Lambda keeps the request id when
    /// it retries an asynchronous invocation, and each attempt is a run of its own.
    pub fn for_request(request_id: &str) -> Self {
        let id: String = request_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        if id.is_empty() {
            return Self::random();
        }
        Self(format!("{id}/{:016x}", random_u64()))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
