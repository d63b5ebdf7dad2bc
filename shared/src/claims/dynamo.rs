//! The claim store on DynamoDB.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::record::{Item, claim_from_item, holder_from_item, owner_item, port_item};
use super::table::{NLB_META, PK, SK, nlb_pk, owner_pk};
use super::{
    Claim, ClaimError, ClaimStore, CursorStore, HoldError, NlbTerms, NlbUsage, PortHolder,
    ReleaseError, RunToken, StoreError, SweepCursor, TableIdentity, TakeOverError,
};
use crate::aws_error::describe;

mod applied;
mod checks;
mod hold;
mod listing;
mod pods;
mod pool;

/// Claims in one DynamoDB table (see the module docs of [`crate::claims`] for its items).
#[derive(Debug, Clone)]
pub struct DynamoClaimStore {
    client: Client,
    table: String,
}

impl DynamoClaimStore {
    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Every item of partition `pk` (only those whose sort key begins with `prefix`, if one is
    /// given), read consistently and page by page; `op` names the read in errors.
    async fn partition(
        &self,
        op: &'static str,
        pk: String,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(pk));
        let query = match prefix {
            Some(prefix) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("#pk = :pk"),
        };
        query
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| store_error(op, &e))
    }
}

fn store_error<E>(
    operation: &'static str,
    err: &aws_sdk_dynamodb::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let (message, retryable) = describe(err);
    StoreError {
        operation,
        message,
        retryable,
    }
}

/// A conditional write's result, a failed condition taken as done: the record was released or
/// changed meanwhile, which these writes skip.
fn unless_condition_failed<T, E>(
    operation: &'static str,
    result: Result<
        T,
        aws_sdk_dynamodb::error::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
) -> Result<(), StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.code() == Some("ConditionalCheckFailedException")) =>
        {
            Ok(())
        }
        Err(e) => Err(store_error(operation, &e)),
    }
}

fn corrupt(operation: &'static str, message: String) -> StoreError {
    StoreError {
        operation,
        message,
        retryable: false,
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn port_set(claims: &[&Claim]) -> AttributeValue {
    AttributeValue::Ns(claims.iter().map(|c| c.port.to_string()).collect())
}

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
            .expression_attribute_values(":active", s(super::NLB_ACTIVE))
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
        listing: &super::NlbListing,
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

    async fn identity(&self) -> Result<Option<TableIdentity>, StoreError> {
        super::identity::load(&self.client, &self.table).await
    }

    async fn record_identity(&self, identity: &TableIdentity) -> Result<TableIdentity, StoreError> {
        super::identity::record(&self.client, &self.table, identity).await
    }
}

/// The sweep's cursor item: outside every NLB and owner partition.
const CURSOR_PK: &str = "sweep";

#[async_trait]
impl CursorStore for DynamoClaimStore {
    async fn load_cursor(&self) -> Result<SweepCursor, StoreError> {
        const OP: &str = "GetItem (sweep cursor)";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(CURSOR_PK.to_owned(), "cursor".to_owned())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(OP, &e))?;
        let text = |name: &str| match out.item().and_then(|i| i.get(name)) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let nlbs = match out.item().and_then(|i| i.get("nlbs")) {
            Some(AttributeValue::Ss(v)) => v.clone(),
            _ => vec![],
        };
        Ok(SweepCursor {
            services_after: text("servicesAfter"),
            retries_after: text("retriesAfter"),
            target_group_marker: text("targetGroupMarker"),
            nlbs,
        })
    }

    async fn save_cursor(&self, cursor: &SweepCursor) -> Result<(), StoreError> {
        const OP: &str = "PutItem (sweep cursor)";
        let mut item = key(CURSOR_PK.to_owned(), "cursor".to_owned());
        if let Some(v) = &cursor.services_after {
            item.insert("servicesAfter".to_owned(), s(v));
        }
        if let Some(v) = &cursor.retries_after {
            item.insert("retriesAfter".to_owned(), s(v));
        }
        if let Some(v) = &cursor.target_group_marker {
            item.insert("targetGroupMarker".to_owned(), s(v));
        }
        // A string set cannot be empty: no attribute is no NLB.
        if !cursor.nlbs.is_empty() {
            item.insert("nlbs".to_owned(), AttributeValue::Ss(cursor.nlbs.clone()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error(OP, &e))?;
        Ok(())
    }
}

fn usage_from_item(item: &Item) -> Result<NlbUsage, String> {
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
                .parse::<super::NlbState>()
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
    let listing = listing::listing_from_item(item, &nlb_arn)?;
    Ok(NlbUsage {
        nlb_arn,
        ports,
        active: state.is_none_or(|s| s == super::NlbState::Active),
        state,
        empty_since,
        listing,
    })
}

/// Maps a cancelled claim transaction's reasons (item 0: the NLB item; then the port items;
/// then the owner records) to the outcome a caller acts on.
fn decode_cancellation(claims: &[Claim], reasons: &[Option<String>]) -> ClaimError {
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
mod tests {
    use super::*;
    use crate::claims::{ClaimState, Owner};
    use crate::event::ServiceKey;
    use crate::protocol::ListenerProtocol;
    use crate::service_model::ListenerKey;

    fn claims(ports: &[u16]) -> Vec<Claim> {
        ports
            .iter()
            .map(|&p| Claim {
                owner: Owner {
                    key: ServiceKey {
                        cluster: "c".into(),
                        namespace: "n".into(),
                        name: "s".into(),
                    },
                    uid: "u".into(),
                    pod: None,
                },
                key: ListenerKey::new(p, ListenerProtocol::Tcp),
                port_name: "p".into(),
                protocol: ListenerProtocol::Tcp,
                service_port: p,
                pool: "default".into(),
                nlb_arn: "arn:nlb".into(),
                port: p,
                state: ClaimState::Claimed,
                listener_arn: None,
                target_group_arn: None,
                claimed_at: 0,
                token: "run".into(),
                held_at: 0,
                gone_since: None,
                applied: None,
            })
            .collect()
    }

    fn reasons(codes: &[&str]) -> Vec<Option<String>> {
        codes.iter().map(|c| Some((*c).to_owned())).collect()
    }

    #[test]
    fn decodes_each_cancellation_reason() {
        let cs = claims(&[1, 2]);
        let ccf = "ConditionalCheckFailed";
        assert_eq!(
            decode_cancellation(&cs, &reasons(&["None", "None", ccf, "None", "None"])),
            ClaimError::PortTaken {
                nlb_arn: "arn:nlb".into(),
                ports: vec![2]
            }
        );
        assert_eq!(
            decode_cancellation(&cs, &reasons(&[ccf, "None", "None", "None", "None"])),
            ClaimError::NlbFull {
                nlb_arn: "arn:nlb".into()
            }
        );
        assert_eq!(
            decode_cancellation(&cs, &reasons(&["None", ccf, "None", "None", ccf])),
            ClaimError::AlreadyClaimed
        );
        let conflict = decode_cancellation(
            &cs,
            &reasons(&["TransactionConflict", "None", "None", "None", "None"]),
        );
        assert!(
            matches!(
                conflict,
                ClaimError::Store(StoreError {
                    retryable: true,
                    ..
                })
            ),
            "{conflict:?}"
        );
    }
}
