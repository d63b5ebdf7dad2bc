//! The identity item on DynamoDB: whose world a claims table describes ([`TableIdentity`]).
//!
//! The sweep deletes what the table does not account for, so it must first know the table is
//! this cluster's and this stack's. A cluster made again under the same name keeps its name
//! but not the uid of its `kube-system` namespace; a second stack pointed at the table has
//! another stack id. The item is written once, by the first writer that proves the world is
//! its own (see `reconcile::identity`), with a conditional put, and never changed by the
//! functions: changing it is an operator's decision (docs/deploy.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::table::{PK, SK};
use crate::adapters::aws::error::describe;
use crate::model::claims::table_identity::TableIdentity;
use crate::model::claims::{StoreError, now_epoch};

/// Partition key of the identity item.
pub const IDENTITY_PK: &str = "identity";
/// Sort key of the identity item.
pub const IDENTITY_SK: &str = "meta";

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key() -> Item {
    HashMap::from([
        (PK.to_owned(), s(IDENTITY_PK)),
        (SK.to_owned(), s(IDENTITY_SK)),
    ])
}

/// The identity item for `identity`, stamped `recorded_at` (seconds since the epoch).
pub fn identity_item(identity: &TableIdentity, recorded_at: i64) -> Item {
    let mut item = key();
    item.insert("clusterName".into(), s(&identity.cluster_name));
    item.insert("clusterUid".into(), s(&identity.cluster_uid));
    item.insert("stackId".into(), s(&identity.stack_id));
    item.insert(
        "recordedAt".into(),
        AttributeValue::N(recorded_at.to_string()),
    );
    item
}

fn identity_from_item(item: &Item) -> Result<TableIdentity, String> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(format!("the identity item has no text attribute {name}")),
    };
    Ok(TableIdentity {
        cluster_name: text("clusterName")?,
        cluster_uid: text("clusterUid")?,
        stack_id: text("stackId")?,
    })
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

/// Reads the identity item of `table`, consistently.
pub(super) async fn load(
    client: &Client,
    table: &str,
) -> Result<Option<TableIdentity>, StoreError> {
    const OP: &str = "GetItem (table identity)";
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| store_error(OP, &e))?;
    out.item()
        .map(|i| {
            identity_from_item(i).map_err(|message| StoreError {
                operation: OP,
                message,
                retryable: false,
            })
        })
        .transpose()
}

/// Writes the identity item of `table` unless one exists; returns the one that is recorded.
pub(super) async fn record(
    client: &Client,
    table: &str,
    identity: &TableIdentity,
) -> Result<TableIdentity, StoreError> {
    const OP: &str = "PutItem (table identity)";
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(identity_item(identity, now_epoch())))
        // The first writer wins; a later one must not overwrite what the sweep relies on.
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .send()
        .await;
    match result {
        Ok(_) => Ok(identity.clone()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            load(client, table).await?.ok_or_else(|| StoreError {
                operation: OP,
                message: "the identity item was there and is gone: retry".to_owned(),
                retryable: true,
            })
        }
        Err(e) => Err(store_error(OP, &e)),
    }
}
