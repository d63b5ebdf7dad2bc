//! [`PoolRecords`] on DynamoDB: the pool partition and the state of made NLBs' items, every
//! write conditional (see [`crate::model::claims::pool_records`] for the items).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::client::{DynamoClaimStore, corrupt, key, s, store_error};
use crate::adapters::dynamo::record::Item;
use crate::adapters::dynamo::table::{
    MEMBER_PREFIX, NLB_META, PK, POOL_META, SK, WAITING_PREFIX, member_sk, nlb_pk, pool_pk,
    waiting_sk,
};
use crate::model::claims::{
    NlbState, PoolMember, PoolRecord, PoolRecords, StoreError, WaitingService,
};

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Whether a transaction was cancelled by a condition (not by a conflict, which is retryable).
fn condition_failed(
    err: &SdkError<
        TransactWriteItemsError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

impl DynamoClaimStore {
    /// Writes `items` in one transaction: `Ok(false)` when a condition refused it.
    async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error(operation, &e)),
        }
    }
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} {v} is out of range")),
        Some(_) => Err(format!("{name} is not a number")),
    }
}

/// Reads one item of a pool partition into `record`.
/// The pool item's note of why the pool cannot grow.
const HELD: &str = "heldBy";

fn read_item(record: &mut PoolRecord, item: &Item) -> Result<(), String> {
    let sk = get_s(item, SK).ok_or("an item of a pool has no sk")?;
    if sk == POOL_META {
        record.seq = get_n(item, "seq")?.unwrap_or(0);
        record.id = get_s(item, "poolId").map(str::to_owned);
        record.held = get_s(item, HELD).map(str::to_owned);
    } else if let Some(seq) = sk.strip_prefix(MEMBER_PREFIX) {
        let seq: u64 = seq
            .parse()
            .map_err(|_| format!("member {sk}: not a sequence number"))?;
        record.members.push(PoolMember {
            seq,
            name: get_s(item, "name")
                .ok_or_else(|| format!("member {sk} has no name"))?
                .to_owned(),
            arn: get_s(item, "arn").map(str::to_owned),
            created_at: get_n(item, "createdAt")?.unwrap_or(0),
        });
    } else if let Some(uid) = sk.strip_prefix(WAITING_PREFIX) {
        record.waiting.push(WaitingService {
            uid: uid.to_owned(),
            namespace: get_s(item, "namespace").unwrap_or_default().to_owned(),
            name: get_s(item, "name").unwrap_or_default().to_owned(),
            listeners: get_n(item, "listeners")?.unwrap_or(1),
            since: get_n(item, "since")?.unwrap_or(0),
        });
    }
    Ok(())
}

#[async_trait]
impl PoolRecords for DynamoClaimStore {
    async fn pool_record(&self, pool: &str) -> Result<PoolRecord, StoreError> {
        const OP: &str = "Query (pool)";
        let items = self.partition(OP, pool_pk(pool), None).await?;
        let mut record = PoolRecord::default();
        for item in &items {
            read_item(&mut record, item).map_err(|m| corrupt(OP, format!("pool {pool}: {m}")))?;
        }
        Ok(record)
    }

    async fn add_members(
        &self,
        pool: &str,
        seq_read: u64,
        pool_id: &str,
        members: &[PoolMember],
    ) -> Result<bool, StoreError> {
        const OP: &str = "TransactWriteItems (add pool members)";
        let last = seq_read + members.len() as u64;
        let counter = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pool_pk(pool), POOL_META.to_owned())))
            .update_expression("SET #seq = :last, #id = if_not_exists(#id, :id)")
            .condition_expression(if seq_read == 0 {
                "(attribute_not_exists(#seq) OR #seq = :read) \
                 AND (attribute_not_exists(#id) OR #id = :id)"
            } else {
                "#seq = :read AND #id = :id"
            })
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_names("#id", "poolId")
            .expression_attribute_values(":id", s(pool_id))
            .expression_attribute_values(":last", n(last))
            .expression_attribute_values(":read", n(seq_read))
            .build()
            .map_err(|e| corrupt(OP, e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(counter).build()];
        for m in members {
            let mut item = key(pool_pk(pool), member_sk(m.seq));
            item.insert("name".into(), s(&m.name));
            item.insert("createdAt".into(), n(m.created_at));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(|e| corrupt(OP, e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        self.transact(OP, items).await
    }

    async fn record_member_arn(
        &self,
        pool: &str,
        seq: u64,
        arn: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "TransactWriteItems (record a made NLB)";
        let member = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pool_pk(pool), member_sk(seq))))
            .update_expression("SET #arn = :arn")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#arn) OR #arn = :arn)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#arn", "arn")
            .expression_attribute_values(":arn", s(arn))
            .build()
            .map_err(|e| corrupt(OP, e.to_string()))?;
        // The state is set only if the item has none: recording again never moves an NLB back.
        let nlb = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(nlb_pk(arn), NLB_META.to_owned())))
            .update_expression(
                "SET #state = if_not_exists(#state, :provisioning), #pool = :pool, \
                 #since = if_not_exists(#since, :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#pool", "pool")
            .expression_attribute_names("#since", "stateSince")
            .expression_attribute_values(":provisioning", s(NlbState::Provisioning.as_str()))
            .expression_attribute_values(":pool", s(pool))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|e| corrupt(OP, e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().update(member).build(),
            TransactWriteItem::builder().update(nlb).build(),
        ];
        self.transact(OP, items).await
    }

    async fn set_nlb_state(
        &self,
        nlb_arn: &str,
        from: NlbState,
        to: NlbState,
        when_empty: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "UpdateItem (NLB state)";
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(nlb_pk(nlb_arn), NLB_META.to_owned())))
            .update_expression("SET #state = :to, #since = :now REMOVE #empty")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#since", "stateSince")
            .expression_attribute_names("#empty", "emptySince")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", n(now));
        // DynamoDB refuses a name no expression uses: #ports only with its condition.
        request = if when_empty {
            request
                .condition_expression("#state = :from AND attribute_not_exists(#ports)")
                .expression_attribute_names("#ports", "ports")
        } else {
            request.condition_expression("#state = :from")
        };
        updated(OP, request.send().await)
    }

    async fn set_empty_since(&self, nlb_arn: &str, since: Option<i64>) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (NLB empty since)";
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(nlb_pk(nlb_arn), NLB_META.to_owned())))
            .expression_attribute_names("#empty", "emptySince");
        let request = match since {
            Some(t) => request
                .update_expression("SET #empty = :t")
                .condition_expression(
                    "#state = :active AND attribute_not_exists(#ports) AND attribute_not_exists(#empty)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#ports", "ports")
                .expression_attribute_values(":active", s(NlbState::Active.as_str()))
                .expression_attribute_values(":t", n(t)),
            None => request
                .update_expression("REMOVE #empty")
                .condition_expression("attribute_exists(#empty)"),
        };
        // A refused condition means the note is already as wanted (or moot): nothing to do.
        updated(OP, request.send().await).map(|_| ())
    }

    async fn remove_member(
        &self,
        pool: &str,
        seq: u64,
        arn: Option<&str>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "TransactWriteItems (remove a made NLB)";
        let mut member = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pool_pk(pool), member_sk(seq))))
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#arn", "arn");
        member = match arn {
            Some(a) => member
                .condition_expression("attribute_exists(#pk) AND #arn = :arn")
                .expression_attribute_values(":arn", s(a)),
            None => {
                member.condition_expression("attribute_exists(#pk) AND attribute_not_exists(#arn)")
            }
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .delete(member.build().map_err(|e| corrupt(OP, e.to_string()))?)
                .build(),
        ];
        if let Some(a) = arn {
            let nlb = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(nlb_pk(a), NLB_META.to_owned())))
                .condition_expression(
                    "attribute_not_exists(#pk) OR (#state = :draining AND attribute_not_exists(#ports))",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#ports", "ports")
                .expression_attribute_values(":draining", s(NlbState::Draining.as_str()))
                .build()
                .map_err(|e| corrupt(OP, e.to_string()))?;
            items.push(TransactWriteItem::builder().delete(nlb).build());
        }
        self.transact(OP, items).await
    }

    async fn set_held(&self, pool: &str, reason: Option<&str>) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (why a pool cannot grow)";
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pool_pk(pool), POOL_META.to_owned())))
            .expression_attribute_names("#held", HELD);
        let update = match reason {
            Some(reason) => update
                .update_expression("SET #held = :held")
                .expression_attribute_values(":held", s(reason)),
            None => update.update_expression("REMOVE #held"),
        };
        update.send().await.map_err(|e| store_error(OP, &e))?;
        Ok(())
    }

    async fn note_waiting(&self, pool: &str, waiting: &WaitingService) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (waiting Service)";
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pool_pk(pool), waiting_sk(&waiting.uid))))
            .update_expression(
                "SET #ns = :ns, #name = :name, #listeners = :listeners, \
                 #since = if_not_exists(#since, :since)",
            )
            .expression_attribute_names("#ns", "namespace")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#listeners", "listeners")
            .expression_attribute_names("#since", "since")
            .expression_attribute_values(":ns", s(&waiting.namespace))
            .expression_attribute_values(":name", s(&waiting.name))
            .expression_attribute_values(":listeners", n(waiting.listeners))
            .expression_attribute_values(":since", n(waiting.since))
            .send()
            .await
            .map_err(|e| store_error(OP, &e))?;
        Ok(())
    }

    async fn clear_waiting(&self, pool: &str, uid: &str) -> Result<(), StoreError> {
        const OP: &str = "DeleteItem (waiting Service)";
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pool_pk(pool), waiting_sk(uid))))
            .send()
            .await
            .map_err(|e| store_error(OP, &e))?;
        Ok(())
    }
}

type UpdateResult = Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    SdkError<UpdateItemError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
>;

/// `Ok(true)` when the update was made, `Ok(false)` when its condition refused it.
fn updated(operation: &'static str, result: UpdateResult) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(UpdateItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(store_error(operation, &e)),
    }
}
