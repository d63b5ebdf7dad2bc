//! The sweep's listing of each NLB of the pools on its item ([`crate::model::claims::listing`]): the
//! allocation path reads it with the claims and asks ELBv2 nothing before its claim.

use std::collections::BTreeSet;

use super::{Reconciler, Result};
use crate::model::claims::{NlbListing, PortHolder, now_epoch};
use crate::model::elb::ListenerInfo;

impl Reconciler {
    /// Records on `nlb`'s item the ports of `listeners` no claim of `holders` accounts for,
    /// and its cross-zone setting.
    pub(super) async fn record_listing(
        &self,
        nlb: &str,
        listeners: &[ListenerInfo],
        holders: &[PortHolder],
        cross_zone: bool,
        made: bool,
    ) -> Result<()> {
        let listing = listing_of(listeners, holders, cross_zone, now_epoch());
        self.store.record_listing(nlb, &listing, made).await?;
        Ok(())
    }
}

/// What an NLB's listing says, from its listeners and claims as just read.
pub(super) fn listing_of(
    listeners: &[ListenerInfo],
    holders: &[PortHolder],
    cross_zone: bool,
    at: i64,
) -> NlbListing {
    let claimed: BTreeSet<u16> = holders.iter().map(|h| h.port).collect();
    NlbListing {
        foreign_ports: listeners
            .iter()
            .map(|l| l.port)
            .filter(|p| !claimed.contains(p))
            .collect(),
        cross_zone,
        at,
    }
}
