//! The sweep's cursor on DynamoDB (see [`crate::model::claims::SweepCursor`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::client::{DynamoClaimStore, key, s, store_error};
use crate::model::claims::{CursorStore, StoreError, SweepCursor};

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
