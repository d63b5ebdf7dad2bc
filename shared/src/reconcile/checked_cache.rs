//! Preflight answers (certificates, security policies) a warm instance found good lately.

/// How long a certificate or security policy found usable is trusted without asking again:
/// a warm instance's thorough passes (the sweep's share) then cost no ACM or
/// DescribeSSLPolicies call per TLS Service. A certificate revoked meanwhile is found within
/// this long; AWS keeps serving it on the listener regardless.
pub(super) const CHECK_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Preflight answers found good, by what was checked, and when.
#[derive(Default)]
pub(super) struct CheckedCache {
    at: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl CheckedCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, std::time::Instant>> {
        self.at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `key` was found good within [`CHECK_TTL`].
    pub(super) fn recently(&self, key: &str) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|at| at.elapsed() < CHECK_TTL)
    }

    /// Notes `key` as found good now.
    pub(super) fn note(&self, key: String) {
        let mut at = self.lock();
        // Bounded: entries past their time go when the map grows.
        if at.len() > 1024 {
            at.retain(|_, t| t.elapsed() < CHECK_TTL);
        }
        at.insert(key, std::time::Instant::now());
    }
}
