//! What tests read from and put into the in-memory claim store directly, bypassing the
//! conditions the store's operations keep.

use super::MemoryClaimStore;
use crate::model::claims::{Claim, TableIdentity};

impl MemoryClaimStore {
    /// How many times one owner's claims were read (`claims_of`), for tests of what a pass costs.
    pub fn owner_reads(&self) -> usize {
        self.lock().owner_reads
    }

    /// Every owner record, for assertions.
    pub fn all_claims(&self) -> Vec<Claim> {
        self.lock().owners.values().cloned().collect()
    }

    /// Puts claims straight in, bypassing every condition: for tests that build a broken state.
    pub fn insert_unchecked(&self, claim: Claim) {
        let mut st = self.lock();
        st.nlbs
            .entry(claim.nlb_arn.clone())
            .or_default()
            .insert(claim.port);
        st.hold(&claim);
    }

    /// Replaces every identity item with `identity`, bypassing their conditions: for tests of
    /// another cluster's or stack's table (`None`: a table with none).
    pub fn set_identity(&self, identity: Option<TableIdentity>) {
        self.lock().identities = identity.into_iter().collect();
    }

    /// Adds an identity item beside those there: another cluster sharing the table.
    pub fn add_identity(&self, identity: TableIdentity) {
        self.lock().identities.push(identity);
    }

    /// Records an NLB's listing as a sweep run would have (see [`crate::model::claims::NlbListing`]).
    pub fn set_listing(&self, nlb_arn: &str, listing: crate::model::claims::NlbListing) {
        self.lock().listings.insert(nlb_arn.to_owned(), listing);
    }

    /// Forgets an NLB's listing (as before the sweep's first run).
    pub fn remove_listing(&self, nlb_arn: &str) {
        self.lock().listings.remove(nlb_arn);
    }

    /// An NLB's listing, if recorded.
    pub fn listing(&self, nlb_arn: &str) -> Option<crate::model::claims::NlbListing> {
        self.lock().listings.get(nlb_arn).cloned()
    }

    /// Every claimed (NLB, port), for assertions.
    pub fn all_ports(&self) -> Vec<(String, u16)> {
        self.lock().ports.keys().cloned().collect()
    }
}
