//! What a warm instance knows about the claims table's identity.

use std::time::Instant;

/// What a warm instance knows about the identity.
#[derive(Debug, Default)]
pub(super) struct IdentityCache {
    /// The live cluster's `kube-system` uid (it cannot change under a running function: another
    /// cluster means another endpoint, so another configuration and a cold start).
    pub(super) cluster_uid: Option<String>,
    /// The table proved to be this cluster's and stack's (allocation asks no more).
    pub(super) verified: bool,
    /// Allocation asked and the world proved nothing; it asks again after this.
    pub(super) unproven_until: Option<Instant>,
}
