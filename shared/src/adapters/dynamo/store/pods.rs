//! Per-pod claims on DynamoDB: one pod's records by sort-key prefix, and the note of since when
//! a pod has been gone.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::try_join_all;

use super::client::{DynamoClaimStore, corrupt, key, unless_condition_failed};
use crate::adapters::dynamo::record::{GONE_SINCE, claim_from_item};
use crate::adapters::dynamo::table::{PK, owner_pk};
use crate::model::claims::{Claim, POD_RECORD_PREFIX, StoreError};

impl DynamoClaimStore {
    /// The records of pod `pod` of the Service with `uid`: a Query on the Service's partition
    /// limited to the pod's sort-key prefix, so a pod's run reads its own claims only.
    pub(super) async fn query_pod_claims(
        &self,
        uid: &str,
        pod: &str,
    ) -> Result<Vec<Claim>, StoreError> {
        const OP: &str = "Query (claims of a pod)";
        let prefix = format!("{POD_RECORD_PREFIX}{pod}#");
        let items = self.partition(OP, owner_pk(uid), Some(&prefix)).await?;
        items
            .iter()
            .map(|i| claim_from_item(i).map_err(|m| corrupt(OP, m)))
            .collect()
    }

    /// Sets (or, with `None`, removes) `goneSince` on each record that still exists.
    pub(super) async fn set_gone_since(
        &self,
        claims: &[Claim],
        since: Option<i64>,
    ) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (pod gone since)";
        try_join_all(claims.iter().map(|c| async move {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(owner_pk(&c.owner.uid), c.record_sk())))
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#gone", GONE_SINCE);
            let update = match since {
                Some(t) => update
                    .update_expression("SET #gone = :t")
                    .expression_attribute_values(":t", AttributeValue::N(t.to_string())),
                None => update.update_expression("REMOVE #gone"),
            };
            // Released meanwhile: nothing to note.
            unless_condition_failed(OP, update.send().await)
        }))
        .await?;
        Ok(())
    }
}
