//! Releases grouped into DynamoDB transactions of at most [`TRANSACTION_ITEMS`] items.
//!
//! A release deletes two items per claim (the port item and the owner record) and updates the
//! NLB item once per transaction. The claim path keeps a Service's new claims within one
//! transaction ([`MAX_LISTENERS_PER_CLAIM`]), but what one owner holds on one NLB can be more:
//! claims made in several runs (ports added to a Service over time by a version that did not
//! check the limit at the door, up to the NLB's 50 listeners). One transaction of 50 claims is
//! 101 items, which DynamoDB refuses at every retry, and the Service's finalizer would never
//! come off. So a release goes per NLB in batches of at most [`CLAIMS_PER_RELEASE`] claims.
//! Each batch is safe alone: its deletes are conditional on the owner, and deleting what is
//! already gone succeeds, so a release stopped between batches is finished by the next.

use std::collections::BTreeMap;

use super::{Claim, MAX_LISTENERS_PER_CLAIM, TRANSACTION_ITEMS};

/// Claims per release transaction: two items each, and the NLB item.
pub const CLAIMS_PER_RELEASE: usize = MAX_LISTENERS_PER_CLAIM;

const _: () = assert!(2 * CLAIMS_PER_RELEASE < TRANSACTION_ITEMS);

/// The items a release transaction of `claims` claims (on one NLB) writes.
pub fn release_items(claims: usize) -> usize {
    2 * claims + 1
}

/// The release transactions of `claims`, in order: per NLB (by ARN), batches of at most
/// [`CLAIMS_PER_RELEASE`] claims, each within [`TRANSACTION_ITEMS`] items.
pub fn release_batches(claims: &[Claim]) -> Vec<(&str, Vec<&Claim>)> {
    let mut by_nlb: BTreeMap<&str, Vec<&Claim>> = BTreeMap::new();
    for c in claims {
        by_nlb.entry(c.nlb_arn.as_str()).or_default().push(c);
    }
    by_nlb
        .into_iter()
        .flat_map(|(nlb, group)| {
            group
                .chunks(CLAIMS_PER_RELEASE)
                .map(|batch| (nlb, batch.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
#[path = "batches_tests.rs"]
mod tests;
