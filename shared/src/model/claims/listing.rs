//! What the sweep last saw on an NLB, kept on the NLB's item so an allocation reads it with the
//! claims instead of asking ELBv2 (whose Describe budget is the account's, shared with every
//! other tool): the ports other listeners hold, and the NLB's cross-zone setting.
//!
//! A listener made between two sweeps is met by the claim path as before: CreateListener
//! answers `DuplicateListener` and the claim moves to another port.

use std::collections::BTreeSet;

/// An NLB as the sweep listed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NlbListing {
    /// Ports held by listeners no claim accounts for: other tools' listeners, leftovers the
    /// sweep has not deleted yet. Each counts against the NLB's listener quota too.
    pub foreign_ports: BTreeSet<u16>,
    /// Whether the NLB balances across zones (`load_balancing.cross_zone.enabled`).
    pub cross_zone: bool,
    /// When it was listed (seconds since the epoch).
    pub at: i64,
}

/// The item attributes of a listing on an NLB item.
pub(crate) const FOREIGN_PORTS: &str = "foreignPorts";
/// See [`FOREIGN_PORTS`].
pub(crate) const CROSS_ZONE: &str = "crossZone";
/// See [`FOREIGN_PORTS`].
pub(crate) const LISTED_AT: &str = "listedAt";
