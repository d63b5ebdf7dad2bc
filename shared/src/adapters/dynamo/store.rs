//! The claim store on DynamoDB: [`DynamoClaimStore`] and its operations, one concern a file
//! (see the module docs of [`crate::model::claims`] for the table's items).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::record::{claim_from_item, holder_from_item, owner_item, port_item};
use super::table::{NLB_META, PK, nlb_pk, owner_pk};
use crate::model::claims::{
    Claim, ClaimError, ClaimStore, HoldError, NLB_ACTIVE, NlbListing, NlbTerms, NlbUsage,
    PortHolder, ReleaseError, RunToken, StoreError, TableIdentity, TakeOverError,
};
use cancellation::decode_cancellation;
use client::{corrupt, key, port_set, s, store_error};
use usage::usage_from_item;

mod applied;
mod cancellation;
mod checks;
mod client;
mod cursor;
mod hold;
mod keys;
mod listing;
mod pods;
mod pool;
mod usage;

pub use client::DynamoClaimStore;

#[async_trait]
impl ClaimStore for DynamoClaimStore {
    async fn claims_of(&self, uid: &str) -> Result<Vec<Claim>, StoreError> {
        const OP: &str = "Query (claims of a Service)";
        let items = self.partition(OP, owner_pk(uid), None).await?;
        items
            .iter()
            .map(|i| claim_from_item(i).map_err(|m| corrupt(OP, m)))
            .collect()
    }

    async fn claim(&self, claims: &[Claim], terms: NlbTerms) -> Result<(), ClaimError> {
        let listener_quota = terms.listener_quota;
        const OP: &str = "TransactWriteItems (claim)";
        let Some(first) = claims.first() else {
            return Ok(());
        };
        let all: Vec<&Claim> = claims.iter().collect();
        let count = u32::try_from(claims.len()).unwrap_or(u32::MAX);
        if count > listener_quota {
            return Err(ClaimError::NlbFull {
                nlb_arn: first.nlb_arn.clone(),
            });
        }
        let nlb_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(nlb_pk(&first.nlb_arn), NLB_META.to_owned())))
            .update_expression("ADD #ports :new")
            // Only an active NLB takes claims: checked here, in the transaction, so an NLB
            // going out of service can never get one. A made NLB's item must exist.
            .condition_expression(if terms.made {
                "(attribute_not_exists(#ports) OR size(#ports) <= :max) AND #state = :active"
            } else {
                "(attribute_not_exists(#ports) OR size(#ports) <= :max) \
                 AND (attribute_not_exists(#state) OR #state = :active)"
            })
            .expression_attribute_names("#ports", "ports")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":active", s(NLB_ACTIVE))
            .expression_attribute_values(":new", port_set(&all))
            .expression_attribute_values(
                ":max",
                AttributeValue::N((listener_quota - count).to_string()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .map_err(|e| corrupt(OP, e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(nlb_update).build()];
        for item in claims
            .iter()
            .map(port_item)
            .chain(claims.iter().map(owner_item))
        {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(|e| corrupt(OP, e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let reasons: Vec<Option<String>> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().map(str::to_owned))
                .collect(),
            _ => return Err(store_error(OP, &err).into()),
        };
        Err(decode_cancellation(claims, &reasons))
    }

    async fn claims_of_pod(&self, uid: &str, pod: &str) -> Result<Vec<Claim>, StoreError> {
        self.query_pod_claims(uid, pod).await
    }

    async fn note_gone(&self, claims: &[Claim], since: Option<i64>) -> Result<(), StoreError> {
        self.set_gone_since(claims, since).await
    }

    async fn note_applied(&self, applied: &[(Claim, String)]) -> Result<(), StoreError> {
        self.set_applied(applied).await
    }

    async fn take_over(
        &self,
        claims: &[Claim],
        token: &RunToken,
        now: i64,
        stale_before: i64,
    ) -> Result<(), TakeOverError> {
        self.take_over_claims(claims, token, now, stale_before)
            .await
    }

    async fn record_resources(
        &self,
        claim: &Claim,
        token: &RunToken,
        listener_arn: &str,
        target_group_arn: &str,
        now: i64,
    ) -> Result<(), HoldError> {
        self.record_held(claim, token, listener_arn, target_group_arn, now)
            .await
    }

    async fn let_go(&self, claims: &[Claim], token: &RunToken) -> Result<(), HoldError> {
        self.let_go_held(claims, token).await
    }

    async fn release(&self, claims: &[Claim], token: &RunToken) -> Result<(), ReleaseError> {
        self.release_held(claims, token).await
    }

    async fn record_listing(
        &self,
        nlb_arn: &str,
        listing: &NlbListing,
        made: bool,
    ) -> Result<(), StoreError> {
        self.put_listing(nlb_arn, listing, made).await
    }

    async fn nlb_usage(&self, nlb_arns: &[String]) -> Result<Vec<NlbUsage>, StoreError> {
        const OP: &str = "BatchGetItem (NLB usage)";
        let mut found: HashMap<String, NlbUsage> = HashMap::new();
        for chunk in nlb_arns.chunks(100) {
            let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|arn| key(nlb_pk(arn), NLB_META.to_owned()))
                .collect();
            // BatchGetItem may leave keys unprocessed under load; ask again for those.
            for _ in 0..5 {
                if keys.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| corrupt(OP, e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| store_error(OP, &e))?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let usage = usage_from_item(item).map_err(|m| corrupt(OP, m))?;
                    found.insert(usage.nlb_arn.clone(), usage);
                }
                keys = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
            }
            if !keys.is_empty() {
                return Err(StoreError {
                    operation: OP,
                    message: format!("{} keys stayed unprocessed", keys.len()),
                    retryable: true,
                });
            }
        }
        Ok(nlb_arns
            .iter()
            .map(|arn| {
                // No item yet: an NLB nothing has claimed on, which takes claims.
                found
                    .remove(arn)
                    .unwrap_or_else(|| NlbUsage::unclaimed(arn))
            })
            .collect())
    }

    async fn port_holders(&self, nlb_arn: &str) -> Result<Vec<PortHolder>, StoreError> {
        const OP: &str = "Query (ports of an NLB)";
        let items = self.partition(OP, nlb_pk(nlb_arn), Some("port#")).await?;
        items
            .iter()
            .map(|i| holder_from_item(nlb_arn, i).map_err(|m| corrupt(OP, m)))
            .collect()
    }

    async fn key_hold(
        &self,
        key: &str,
    ) -> Result<Option<crate::model::claims::KeyHold>, StoreError> {
        self.read_key_hold(key).await
    }

    async fn take_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<crate::model::claims::KeyHold, StoreError> {
        self.put_key_hold(key, owner).await
    }

    async fn offer_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
        offered_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.set_key_offer(key, owner, offered_at).await
    }

    async fn hand_over(
        &self,
        hold: &crate::model::claims::KeyHold,
        from: &[Claim],
        to: &[Claim],
    ) -> Result<bool, StoreError> {
        self.move_keyed_claims(hold, from, to).await
    }

    async fn drop_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<(), StoreError> {
        self.delete_key_hold(key, owner).await
    }

    async fn identities(&self) -> Result<Vec<TableIdentity>, StoreError> {
        super::identity::load_all(&self.client, &self.table).await
    }

    async fn record_identity(&self, identity: &TableIdentity) -> Result<TableIdentity, StoreError> {
        super::identity::record(&self.client, &self.table, identity).await
    }
}
