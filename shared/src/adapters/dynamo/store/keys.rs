//! Claim keys on DynamoDB: the key item (`claimkey#<key>`, `meta`) naming its holder, and the
//! hand-over transaction (see [`crate::model::claims::KeyHold`]).

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::client::{DynamoClaimStore, corrupt, key, s, store_error, unless_condition_failed};
use crate::adapters::dynamo::record::{HELD_AT, Item, TOKEN, owner_item};
use crate::adapters::dynamo::table::{NLB_META, PK, nlb_pk, owner_pk, port_sk};
use crate::contract::event::ServiceKey;
use crate::model::claims::{Claim, KeyHold, Owner, StoreError};

/// Partition key of a claim key's item.
fn key_pk(claim_key: &str) -> String {
    format!("claimkey#{claim_key}")
}

fn key_item_key(claim_key: &str) -> std::collections::HashMap<String, AttributeValue> {
    key(key_pk(claim_key), NLB_META.to_owned())
}

const OFFERED_AT: &str = "offeredAt";

fn hold_from_item(claim_key: &str, item: &Item) -> Result<KeyHold, String> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(format!(
            "the item of claim key {claim_key} has no text {name}"
        )),
    };
    let offered_at = match item.get(OFFERED_AT) {
        Some(AttributeValue::N(n)) => Some(
            n.parse()
                .map_err(|_| format!("the item of claim key {claim_key}: {OFFERED_AT} {n}"))?,
        ),
        _ => None,
    };
    Ok(KeyHold {
        key: claim_key.to_owned(),
        owner: Owner {
            key: ServiceKey {
                cluster: text("cluster")?,
                namespace: text("namespace")?,
                name: text("name")?,
            },
            uid: text("uid")?,
            pod: None,
        },
        offered_at,
    })
}

fn hold_item(claim_key: &str, owner: &Owner) -> Item {
    let mut item: Item = key_item_key(claim_key);
    item.insert("cluster".into(), s(&owner.key.cluster));
    item.insert("namespace".into(), s(&owner.key.namespace));
    item.insert("name".into(), s(&owner.key.name));
    item.insert("uid".into(), s(&owner.uid));
    item
}

impl DynamoClaimStore {
    pub(super) async fn read_key_hold(
        &self,
        claim_key: &str,
    ) -> Result<Option<KeyHold>, StoreError> {
        // A Query of its one-item partition, not GetItem: every role that may read the key
        // (the release function's too) already queries the table.
        const OP: &str = "Query (claim key)";
        let items = self.partition(OP, key_pk(claim_key), None).await?;
        items
            .first()
            .map(|i| hold_from_item(claim_key, i).map_err(|m| corrupt(OP, m)))
            .transpose()
    }

    pub(super) async fn put_key_hold(
        &self,
        claim_key: &str,
        owner: &Owner,
    ) -> Result<KeyHold, StoreError> {
        const OP: &str = "PutItem (claim key)";
        // Held already, the usual case once taken: one read, no write.
        if let Some(hold) = self.read_key_hold(claim_key).await? {
            return Ok(hold);
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(hold_item(claim_key, owner)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(KeyHold {
                key: claim_key.to_owned(),
                owner: owner.clone(),
                offered_at: None,
            }),
            // Held already (by this Service or another): the holder as it is.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                self.read_key_hold(claim_key)
                    .await?
                    .ok_or_else(|| StoreError {
                        operation: OP,
                        message: format!("the item of claim key {claim_key} came and went: retry"),
                        retryable: true,
                    })
            }
            Err(e) => Err(store_error(OP, &e)),
        }
    }

    pub(super) async fn set_key_offer(
        &self,
        claim_key: &str,
        owner: &Owner,
        offered_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "UpdateItem (offer a claim key)";
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item_key(claim_key)))
            .condition_expression("#uid = :uid")
            .expression_attribute_names("#uid", "uid")
            .expression_attribute_names("#at", OFFERED_AT)
            .expression_attribute_values(":uid", s(&owner.uid));
        let update = match offered_at {
            Some(at) => update
                .update_expression("SET #at = :at")
                .expression_attribute_values(":at", AttributeValue::N(at.to_string())),
            None => update.update_expression("REMOVE #at"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_error(OP, &e)),
        }
    }

    /// One transaction: the key item to the taker (held as read, offered), then per claim the
    /// old owner record deleted, the new one put, the port item's owner changed.
    pub(super) async fn move_keyed_claims(
        &self,
        hold: &KeyHold,
        from: &[Claim],
        to: &[Claim],
    ) -> Result<bool, StoreError> {
        const OP: &str = "TransactWriteItems (hand a claim key over)";
        let Some(taker) = to.first().map(|c| &c.owner) else {
            return Ok(false);
        };
        if from.len() != to.len() {
            return Ok(false);
        }
        let owner_names = |u: UpdateBuilder| -> UpdateBuilder {
            u.expression_attribute_names("#c", "cluster")
                .expression_attribute_names("#ns", "namespace")
                .expression_attribute_names("#n", "name")
                .expression_attribute_names("#uid", "uid")
                .expression_attribute_values(":c", s(&taker.key.cluster))
                .expression_attribute_values(":ns", s(&taker.key.namespace))
                .expression_attribute_values(":n", s(&taker.key.name))
                .expression_attribute_values(":to", s(&taker.uid))
                .expression_attribute_values(":from", s(&hold.owner.uid))
        };
        let key_update = owner_names(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_item_key(&hold.key)))
                .update_expression("SET #c = :c, #ns = :ns, #n = :n, #uid = :to REMOVE #at")
                .condition_expression("#uid = :from AND attribute_exists(#at)")
                .expression_attribute_names("#at", OFFERED_AT),
        )
        .build()
        .map_err(|e| corrupt(OP, e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(key_update).build()];
        for (old, new) in from.iter().zip(to) {
            // Held as read: no run of the old owner took it up meanwhile.
            let base = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(owner_pk(&old.owner.uid), old.record_sk())))
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#t", TOKEN);
            let delete = match old.token.is_empty() {
                // A record from before run tokens: never held since.
                true => {
                    base.condition_expression("attribute_exists(#pk) AND attribute_not_exists(#t)")
                }
                false => base
                    .condition_expression("attribute_exists(#pk) AND #t = :t AND #h = :h")
                    .expression_attribute_names("#h", HELD_AT)
                    .expression_attribute_values(":t", s(&old.token))
                    .expression_attribute_values(":h", AttributeValue::N(old.held_at.to_string())),
            }
            .build()
            .map_err(|e| corrupt(OP, e.to_string()))?;
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(owner_item(new)))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(|e| corrupt(OP, e.to_string()))?;
            let port = owner_names(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(nlb_pk(&old.nlb_arn), port_sk(old.port))))
                    .update_expression("SET #c = :c, #ns = :ns, #n = :n, #uid = :to")
                    .condition_expression("#uid = :from"),
            )
            .build()
            .map_err(|e| corrupt(OP, e.to_string()))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
            items.push(TransactWriteItem::builder().put(put).build());
            items.push(TransactWriteItem::builder().update(port).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // A condition failed: the key, a claim or a port changed since they were read.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_error(OP, &e)),
        }
    }

    pub(super) async fn delete_key_hold(
        &self,
        claim_key: &str,
        owner: &Owner,
    ) -> Result<(), StoreError> {
        const OP: &str = "DeleteItem (claim key)";
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item_key(claim_key)))
            .condition_expression("#uid = :uid")
            .expression_attribute_names("#uid", "uid")
            .expression_attribute_values(":uid", s(&owner.uid))
            .send()
            .await;
        // Held by another (handed over) or gone already: not this owner's to delete.
        unless_condition_failed(OP, result)
    }
}
