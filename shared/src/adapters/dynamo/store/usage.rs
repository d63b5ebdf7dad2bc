//! An NLB item read back as the [`NlbUsage`] the claim transaction and the pools act on.

use aws_sdk_dynamodb::types::AttributeValue;

use super::listing::listing_from_item;
use crate::adapters::dynamo::record::Item;
use crate::adapters::dynamo::table::PK;
use crate::model::claims::{NlbState, NlbUsage};

/// The usage an NLB item records: its claimed ports, state, empty-since and listing.
pub(super) fn usage_from_item(item: &Item) -> Result<NlbUsage, String> {
    let pk = match item.get(PK) {
        Some(AttributeValue::S(pk)) => pk,
        _ => return Err("an NLB item has no pk".to_owned()),
    };
    let nlb_arn = pk.strip_prefix("nlb#").unwrap_or(pk).to_owned();
    let ports = match item.get("ports") {
        None => Default::default(),
        Some(AttributeValue::Ns(ns)) => ns
            .iter()
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| format!("NLB item {nlb_arn}: port {p} is out of range"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("NLB item {nlb_arn}: ports is not a number set")),
    };
    let state = match item.get("state") {
        None => None,
        Some(AttributeValue::S(state)) => Some(
            state
                .parse::<NlbState>()
                .map_err(|e| format!("NLB item {nlb_arn}: {e}"))?,
        ),
        Some(_) => return Err(format!("NLB item {nlb_arn}: state is not a string")),
    };
    let empty_since = match item.get("emptySince") {
        None => None,
        Some(AttributeValue::N(n)) => Some(
            n.parse::<i64>()
                .map_err(|_| format!("NLB item {nlb_arn}: emptySince {n} is not a number"))?,
        ),
        Some(_) => return Err(format!("NLB item {nlb_arn}: emptySince is not a number")),
    };
    let listing = listing_from_item(item, &nlb_arn)?;
    Ok(NlbUsage {
        nlb_arn,
        ports,
        active: state.is_none_or(|s| s == NlbState::Active),
        state,
        empty_since,
        listing,
    })
}
