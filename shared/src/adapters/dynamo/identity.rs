//! The identity items on DynamoDB: whose world a claims table describes ([`TableIdentity`]).
//!
//! The sweep deletes what the table does not account for, so it must first know the table is
//! this cluster's and this stack's. A cluster made again under the same name keeps its name
//! but not the uid of its `kube-system` namespace; a second stack pointed at the table has
//! another stack id. Each cluster sharing the table (`SHARED_CLUSTERS`) has one item,
//! `identity` / `cluster#<name>`, written once, by the first of its writers that proves the
//! world is its own (see `reconcile::identity`), with a conditional put, and never changed by
//! the functions: changing it is an operator's decision (docs/deploy.md). Tables from before
//! clusters could share them hold one item, `identity` / `meta`: it reads as the record of the
//! cluster it names.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::table::{PK, SK};
use crate::adapters::aws::error::describe;
use crate::model::claims::table_identity::TableIdentity;
use crate::model::claims::{StoreError, now_epoch};

/// Partition key of the identity items.
pub const IDENTITY_PK: &str = "identity";
/// Sort key of the identity item of a table from before clusters could share it.
pub const IDENTITY_SK: &str = "meta";
/// Prefix of the sort key of a cluster's identity item: `cluster#<name>`.
pub const CLUSTER_SK_PREFIX: &str = "cluster#";

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(cluster: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(IDENTITY_PK)),
        (SK.to_owned(), s(format!("{CLUSTER_SK_PREFIX}{cluster}"))),
    ])
}

/// The identity item of `identity`'s cluster, stamped `recorded_at` (seconds since the epoch).
pub fn identity_item(identity: &TableIdentity, recorded_at: i64) -> Item {
    let mut item = key(&identity.cluster_name);
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

/// Reads every identity item of `table` (one per cluster sharing it), consistently.
pub(super) async fn load_all(
    client: &Client,
    table: &str,
) -> Result<Vec<TableIdentity>, StoreError> {
    const OP: &str = "Query (table identities)";
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":pk", s(IDENTITY_PK))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| store_error(OP, &e))?;
    // A handful of clusters: one page. Sort keys come in order, `cluster#...` before the old
    // `meta`: an old item naming a cluster that has a `cluster#` item (recorded again by an
    // operator) is left out.
    let mut all: Vec<TableIdentity> = Vec::new();
    for item in out.items() {
        let identity = identity_from_item(item).map_err(|message| StoreError {
            operation: OP,
            message,
            retryable: false,
        })?;
        if !all.iter().any(|r| r.cluster_name == identity.cluster_name) {
            all.push(identity);
        }
    }
    Ok(all)
}

/// Writes the identity item of `identity`'s cluster unless one is recorded for that cluster;
/// returns the one that is recorded for it.
pub(super) async fn record(
    client: &Client,
    table: &str,
    identity: &TableIdentity,
) -> Result<TableIdentity, StoreError> {
    const OP: &str = "PutItem (table identity)";
    let of_cluster = |all: Vec<TableIdentity>| {
        all.into_iter()
            .find(|r| r.cluster_name == identity.cluster_name)
    };
    // A table from before sharing records its cluster in the old item.
    if let Some(recorded) = of_cluster(load_all(client, table).await?) {
        return Ok(recorded);
    }
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
            of_cluster(load_all(client, table).await?).ok_or_else(|| StoreError {
                operation: OP,
                message: "the identity item was there and is gone: retry".to_owned(),
                retryable: true,
            })
        }
        Err(e) => Err(store_error(OP, &e)),
    }
}
