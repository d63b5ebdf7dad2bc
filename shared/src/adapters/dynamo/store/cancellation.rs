//! A cancelled claim transaction read back: which of its items refused, and why.

use crate::model::claims::{Claim, ClaimError, StoreError};

/// Maps a cancelled claim transaction's reasons (item 0: the NLB item; then the port items;
/// then the owner records) to the outcome a caller acts on.
pub(super) fn decode_cancellation(claims: &[Claim], reasons: &[Option<String>]) -> ClaimError {
    let failed =
        |i: usize| reasons.get(i).and_then(|r| r.as_deref()) == Some("ConditionalCheckFailed");
    let k = claims.len();
    if (1 + k..1 + 2 * k).any(failed) {
        return ClaimError::AlreadyClaimed;
    }
    let taken: Vec<u16> = (0..k)
        .filter(|&i| failed(1 + i))
        .map(|i| claims[i].port)
        .collect();
    let nlb_arn = claims
        .first()
        .map(|c| c.nlb_arn.clone())
        .unwrap_or_default();
    if !taken.is_empty() {
        return ClaimError::PortTaken {
            nlb_arn,
            ports: taken,
        };
    }
    if failed(0) {
        return ClaimError::NlbFull { nlb_arn };
    }
    let codes: Vec<&str> = reasons
        .iter()
        .filter_map(|r| r.as_deref())
        .filter(|c| *c != "None")
        .collect();
    ClaimError::Store(StoreError {
        operation: "TransactWriteItems (claim)",
        message: format!("transaction cancelled: {codes:?}"),
        retryable: true,
    })
}

#[cfg(test)]
#[path = "cancellation_tests.rs"]
mod tests;
