//! The writes a run makes on claims it holds, each conditional on its run token, and the
//! decoding of their refusals into named outcomes.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use futures::future::join_all;

use super::client::{DynamoClaimStore, corrupt, key, port_set, s, store_error};
use crate::adapters::dynamo::record::{APPLIED, HELD_AT, Item, POD, TOKEN, holder_of};
use crate::adapters::dynamo::table::{NLB_META, PK, nlb_pk, owner_pk, port_sk};
use crate::model::claims::{
    Claim, HoldError, ReleaseError, RunToken, StoreError, TRANSACTION_ITEMS, TakeOverError,
    release_batches,
};

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn owner_key(c: &Claim) -> std::collections::HashMap<String, AttributeValue> {
    key(owner_pk(&c.owner.uid), c.record_sk())
}

type TransactError = aws_sdk_dynamodb::error::SdkError<
    TransactWriteItemsError,
    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
>;

/// The reasons of a cancelled transaction, or the error when it was not a cancellation.
fn cancellation_reasons(
    operation: &'static str,
    err: &TransactError,
) -> Result<Vec<CancellationReason>, StoreError> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Ok(e.cancellation_reasons().to_vec())
        }
        _ => Err(store_error(operation, err)),
    }
}

fn failed(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

/// A cancellation for another reason than a condition (a conflicting transaction): retry.
fn cancelled_otherwise(operation: &'static str, reasons: &[CancellationReason]) -> StoreError {
    let codes: Vec<&str> = reasons
        .iter()
        .filter_map(CancellationReason::code)
        .filter(|c| *c != "None")
        .collect();
    StoreError {
        operation,
        message: format!("transaction cancelled: {codes:?}"),
        retryable: true,
    }
}

/// What a refused take-over of `claim` means, from the record its condition saw.
pub(super) fn decode_take_over(
    claim: &Claim,
    seen: Option<&Item>,
    now: i64,
    stale_before: i64,
) -> TakeOverError {
    match holder_of(seen) {
        None => TakeOverError::Gone {
            key: claim.key.clone(),
        },
        Some((token, held_at)) if held_at > 0 && held_at >= stale_before => TakeOverError::Busy {
            key: claim.key.clone(),
            token,
            held_for: now - held_at,
        },
        Some(_) => TakeOverError::Changed {
            key: claim.key.clone(),
        },
    }
}

/// What a cancelled take-over transaction means. The SDK retries a transaction whose answer
/// was lost, and the retry meets the first attempt's writes: when every refused claim already
/// carries `token`, the claims were taken (`Ok`).
pub(super) fn decode_take_over_cancellation(
    chunk: &[Claim],
    reasons: &[CancellationReason],
    token: &RunToken,
    now: i64,
    stale_before: i64,
) -> Result<(), TakeOverError> {
    let refused: Vec<(&Claim, &CancellationReason)> = chunk
        .iter()
        .zip(reasons)
        .filter(|(_, r)| failed(r))
        .collect();
    if refused.is_empty() {
        return Err(cancelled_otherwise("TransactWriteItems (take claims over)", reasons).into());
    }
    match refused
        .iter()
        .find(|(_, r)| holder_of(r.item()).is_none_or(|(holder, _)| holder != token.as_str()))
    {
        Some((c, r)) => Err(decode_take_over(c, r.item(), now, stale_before)),
        None => Ok(()),
    }
}

/// What a refused write on a held claim means, from the record its condition saw.
pub(super) fn decode_lost(claim: &Claim, seen: Option<&Item>) -> HoldError {
    match holder_of(seen) {
        None => HoldError::Gone {
            key: claim.key.clone(),
        },
        Some((token, _)) => HoldError::TakenOver {
            key: claim.key.clone(),
            token,
        },
    }
}

impl DynamoClaimStore {
    pub(super) async fn take_over_claims(
        &self,
        claims: &[Claim],
        token: &RunToken,
        now: i64,
        stale_before: i64,
    ) -> Result<(), TakeOverError> {
        const OP: &str = "TransactWriteItems (take claims over)";
        for chunk in claims.chunks(TRANSACTION_ITEMS) {
            let mut items = Vec::with_capacity(chunk.len());
            for c in chunk {
                // Still held as read (same token), and let go or not confirmed since the grace.
                let same_holder = if c.token.is_empty() {
                    "attribute_not_exists(#tok)"
                } else {
                    "#tok = :old"
                };
                let mut update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(owner_key(c)))
                    // A run about to change the listener: what it was made from is no longer
                    // known until the run lets go having finished (a killed run never does).
                    .update_expression("SET #tok = :mine, #held = :now REMOVE #applied")
                    .expression_attribute_names("#applied", APPLIED)
                    .condition_expression(format!(
                        "attribute_exists(#pk) AND {same_holder} AND \
                         (attribute_not_exists(#held) OR #held < :stale)"
                    ))
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#tok", TOKEN)
                    .expression_attribute_names("#held", HELD_AT)
                    .expression_attribute_values(":mine", s(token.as_str()))
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":stale", n(stale_before))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                if !c.token.is_empty() {
                    update = update.expression_attribute_values(":old", s(&c.token));
                }
                let update = update.build().map_err(|e| corrupt(OP, e.to_string()))?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
            let Err(err) = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            else {
                continue;
            };
            let reasons = cancellation_reasons(OP, &err)?;
            decode_take_over_cancellation(chunk, &reasons, token, now, stale_before)?;
        }
        Ok(())
    }

    pub(super) async fn record_held(
        &self,
        claim: &Claim,
        token: &RunToken,
        listener_arn: &str,
        target_group_arn: &str,
        now: i64,
    ) -> Result<(), HoldError> {
        const OP: &str = "UpdateItem (record listener and target group)";
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(owner_key(claim)))
            .update_expression("SET #l = :l, #t = :t, #state = :active, #held = :now")
            .condition_expression("attribute_exists(#pk) AND #tok = :mine")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#l", "listenerArn")
            .expression_attribute_names("#t", "targetGroupArn")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#tok", TOKEN)
            .expression_attribute_names("#held", HELD_AT)
            .expression_attribute_values(":l", s(listener_arn))
            .expression_attribute_values(":t", s(target_group_arn))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":mine", s(token.as_str()))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let store = store_error(OP, &e);
                match e.into_service_error() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                        c,
                    ) => Err(decode_lost(claim, c.item())),
                    _ => Err(store.into()),
                }
            }
        }
    }

    pub(super) async fn let_go_held(
        &self,
        claims: &[Claim],
        token: &RunToken,
    ) -> Result<(), HoldError> {
        const OP: &str = "UpdateItem (let a claim go)";
        let results = join_all(claims.iter().map(|c| async move {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(owner_key(c)))
                .condition_expression("attribute_exists(#pk) AND #tok = :mine")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#tok", TOKEN)
                .expression_attribute_names("#held", HELD_AT)
                .expression_attribute_names("#applied", APPLIED)
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":mine", s(token.as_str()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            // What the run made its listener from, or nothing when it did not finish.
            let update = match &c.applied {
                Some(fingerprint) => update
                    .update_expression("SET #held = :zero, #applied = :fp")
                    .expression_attribute_values(":fp", s(fingerprint)),
                None => update.update_expression("SET #held = :zero REMOVE #applied"),
            };
            let result = update.send().await;
            match result {
                Ok(_) => Ok(()),
                Err(e) => {
                    let store = store_error(OP, &e);
                    match e.into_service_error() {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                            f,
                        ) => Err(decode_lost(c, f.item())),
                        _ => Err(HoldError::from(store)),
                    }
                }
            }
        }))
        .await;
        results.into_iter().collect()
    }

    pub(super) async fn release_held(
        &self,
        claims: &[Claim],
        token: &RunToken,
    ) -> Result<(), ReleaseError> {
        const OP: &str = "TransactWriteItems (release)";
        // Per NLB, in batches within DynamoDB's 100 items (see `claims::batches`).
        for (nlb, group) in release_batches(claims) {
            let mut items = Vec::with_capacity(group.len() * 2 + 1);
            for c in &group {
                // Only our own port: a stale claim must never free another Service's port, nor
                // a pod's another pod's of the same Service.
                let port = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(nlb_pk(nlb), port_sk(c.port))))
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#uid", "uid")
                    .expression_attribute_names("#pod", POD)
                    .expression_attribute_values(":uid", s(&c.owner.uid));
                let port = match &c.owner.pod {
                    Some(pod) => port
                        .condition_expression(
                            "attribute_not_exists(#pk) OR (#uid = :uid AND #pod = :pod)",
                        )
                        .expression_attribute_values(":pod", s(pod)),
                    None => port.condition_expression(
                        "attribute_not_exists(#pk) OR (#uid = :uid AND attribute_not_exists(#pod))",
                    ),
                }
                .build()
                .map_err(|e| corrupt(OP, e.to_string()))?;
                // Only a claim this run holds: gone already is fine (idempotent).
                let owner = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(owner_key(c)))
                    .condition_expression("attribute_not_exists(#pk) OR #tok = :mine")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#tok", TOKEN)
                    .expression_attribute_values(":mine", s(token.as_str()))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(|e| corrupt(OP, e.to_string()))?;
                items.push(TransactWriteItem::builder().delete(port).build());
                items.push(TransactWriteItem::builder().delete(owner).build());
            }
            let nlb_update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(nlb_pk(nlb), NLB_META.to_owned())))
                .update_expression("DELETE #ports :old")
                .expression_attribute_names("#ports", "ports")
                .expression_attribute_values(":old", port_set(&group))
                .build()
                .map_err(|e| corrupt(OP, e.to_string()))?;
            items.push(TransactWriteItem::builder().update(nlb_update).build());
            let Err(err) = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            else {
                continue;
            };
            let reasons = cancellation_reasons(OP, &err)?;
            return Err(decode_release(&group, &reasons));
        }
        Ok(())
    }
}

/// Maps a cancelled release's reasons (per claim: its port item, then its owner record; last
/// the NLB item) to the outcome a caller acts on.
pub(super) fn decode_release(group: &[&Claim], reasons: &[CancellationReason]) -> ReleaseError {
    for (i, c) in group.iter().enumerate() {
        if let Some(r) = reasons.get(2 * i + 1).filter(|r| failed(r)) {
            let token = holder_of(r.item()).map(|(t, _)| t).unwrap_or_default();
            return ReleaseError::NotHeld {
                key: c.key.clone(),
                token,
            };
        }
        if reasons.get(2 * i).is_some_and(failed) {
            return ReleaseError::PortHeldByOther {
                nlb_arn: c.nlb_arn.clone(),
                port: c.port,
            };
        }
    }
    cancelled_otherwise("TransactWriteItems (release)", reasons).into()
}

#[cfg(test)]
mod tests;
