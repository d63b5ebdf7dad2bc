//! Who holds a claim key (`nlb.port-manager/claim-key`): the Service whose claims carry it, and
//! whether it offers them to the next Service naming the key.
//!
//! The **key item** (`claimkey#<key>`, `meta`) names one holder. A Service naming the key takes
//! it when nobody holds it; the holder offers its listeners when it is network-disabled or
//! deleted (`offered_at`), and another Service naming the key then takes them over in one
//! transaction with the key item, the port items and the owner records (see
//! [`super::ClaimStore::hand_over`]), in this cluster or another sharing the table.

use super::claim::Owner;

/// How long a deleted Service's keyed listeners wait for another Service naming its key before
/// the sweep releases them, seconds.
pub const HAND_OVER_WINDOW_SECONDS: i64 = 600;

/// The holder of a claim key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHold {
    /// The key.
    pub key: String,
    /// The Service holding it (never a pod: claim keys are for per-Service mode).
    pub owner: Owner,
    /// Since when the holder offers its listeners (seconds since the epoch); `None`: it keeps
    /// them.
    pub offered_at: Option<i64>,
}

impl KeyHold {
    /// Whether the holder is the Service of `owner` (same uid).
    pub fn held_by(&self, owner: &Owner) -> bool {
        self.owner.uid == owner.uid
    }
}

impl std::fmt::Display for KeyHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = &self.owner.key;
        write!(
            f,
            "Service {}/{} of cluster {} (uid {})",
            k.namespace, k.name, k.cluster, self.owner.uid
        )
    }
}
