//! The fingerprint of what a claim's listener was last made from, on DynamoDB.

use futures::future::try_join_all;

use super::client::{DynamoClaimStore, key, s, unless_condition_failed};
use crate::adapters::dynamo::record::APPLIED;
use crate::adapters::dynamo::table::{PK, owner_pk};
use crate::model::claims::{Claim, StoreError};

impl DynamoClaimStore {
    /// Sets `applied` on each record that still names the claim's listener.
    pub(super) async fn set_applied(&self, applied: &[(Claim, String)]) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (note what a listener was made from)";
        try_join_all(applied.iter().map(|(c, fingerprint)| async move {
            let Some(listener) = &c.listener_arn else {
                return Ok(());
            };
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(owner_pk(&c.owner.uid), c.record_sk())))
                .update_expression("SET #applied = :fp")
                .condition_expression("attribute_exists(#pk) AND #l = :l")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#applied", APPLIED)
                .expression_attribute_names("#l", "listenerArn")
                .expression_attribute_values(":fp", s(fingerprint))
                .expression_attribute_values(":l", s(listener))
                .send()
                .await;
            // Released or moved meanwhile: its next run notes its own.
            unless_condition_failed(OP, result)
        }))
        .await?;
        Ok(())
    }
}
