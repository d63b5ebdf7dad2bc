//! The sweep's listing of an NLB on its item, on DynamoDB (see [`crate::model::claims::listing`]).

use aws_sdk_dynamodb::types::AttributeValue;

use super::client::{DynamoClaimStore, key, unless_condition_failed};
use crate::adapters::dynamo::record::Item;
use crate::adapters::dynamo::table::{NLB_META, PK, nlb_pk};
use crate::model::claims::StoreError;
use crate::model::claims::listing::{CROSS_ZONE, FOREIGN_PORTS, LISTED_AT, NlbListing};

impl DynamoClaimStore {
    /// Writes `listing` on the NLB's item; a made NLB's item must exist (one retired meanwhile
    /// is not brought back), a pre-made NLB's is written if it has none.
    pub(super) async fn put_listing(
        &self,
        nlb_arn: &str,
        listing: &NlbListing,
        made: bool,
    ) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (an NLB's listing)";
        let ports: Vec<String> = listing.foreign_ports.iter().map(u16::to_string).collect();
        // A number set cannot be empty: no foreign port is no attribute.
        let expression = if ports.is_empty() {
            "SET #crossZone = :cz, #at = :at REMOVE #foreign"
        } else {
            "SET #crossZone = :cz, #at = :at, #foreign = :foreign"
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(nlb_pk(nlb_arn), NLB_META.to_owned())))
            .update_expression(expression)
            .expression_attribute_names("#crossZone", CROSS_ZONE)
            .expression_attribute_names("#at", LISTED_AT)
            .expression_attribute_names("#foreign", FOREIGN_PORTS)
            .expression_attribute_values(":cz", AttributeValue::Bool(listing.cross_zone))
            .expression_attribute_values(":at", AttributeValue::N(listing.at.to_string()));
        if !ports.is_empty() {
            update = update.expression_attribute_values(":foreign", AttributeValue::Ns(ports));
        }
        if made {
            update = update
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PK);
        }
        unless_condition_failed(OP, update.send().await)
    }
}

/// The listing on an NLB item, if the sweep has written one.
pub(super) fn listing_from_item(item: &Item, nlb_arn: &str) -> Result<Option<NlbListing>, String> {
    let Some(at) = item.get(LISTED_AT) else {
        return Ok(None);
    };
    let at = match at {
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map_err(|_| format!("NLB item {nlb_arn}: {LISTED_AT} {n} is not a number"))?,
        _ => return Err(format!("NLB item {nlb_arn}: {LISTED_AT} is not a number")),
    };
    let cross_zone = match item.get(CROSS_ZONE) {
        Some(AttributeValue::Bool(b)) => *b,
        _ => return Err(format!("NLB item {nlb_arn}: {CROSS_ZONE} is not a boolean")),
    };
    let foreign_ports = match item.get(FOREIGN_PORTS) {
        None => Default::default(),
        Some(AttributeValue::Ns(ns)) => ns
            .iter()
            .map(|p| {
                p.parse::<u16>().map_err(|_| {
                    format!("NLB item {nlb_arn}: {FOREIGN_PORTS} holds {p}, not a port")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(format!(
                "NLB item {nlb_arn}: {FOREIGN_PORTS} is not a number set"
            ));
        }
    };
    Ok(Some(NlbListing {
        foreign_ports,
        cross_zone,
        at,
    }))
}
