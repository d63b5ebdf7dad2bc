//! The reachability work list on DynamoDB (see [`crate::model::claims::checks`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::client::{DynamoClaimStore, corrupt, key, s, store_error, unless_condition_failed};
use crate::adapters::dynamo::record::Item;
use crate::adapters::dynamo::table::{PK, SK};
use crate::model::claims::StoreError;
use crate::model::claims::checks::{CHECKS_PK, CheckItem, CheckRecords};

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn item_of(item: &Item) -> Result<CheckItem, String> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(format!(
            "check item: attribute {name} is missing or not a string"
        )),
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .map_err(|_| format!("check item: attribute {name} = {v} is not a number")),
        _ => Err(format!(
            "check item: attribute {name} is missing or not a number"
        )),
    };
    Ok(CheckItem {
        uid: text(SK)?,
        namespace: text("namespace")?,
        name: text("name")?,
        due: number("due")?,
        deadline: number("deadline")?,
    })
}

#[async_trait]
impl CheckRecords for DynamoClaimStore {
    async fn note_check(&self, item: &CheckItem) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (note a reachability check)";
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(CHECKS_PK.to_owned(), item.uid.clone())))
            .update_expression(
                "SET #ns = :ns, #name = :name, #due = if_not_exists(#due, :due), \
                 #deadline = :deadline",
            )
            .expression_attribute_names("#ns", "namespace")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#due", "due")
            .expression_attribute_names("#deadline", "deadline")
            .expression_attribute_values(":ns", s(&item.namespace))
            .expression_attribute_values(":name", s(&item.name))
            .expression_attribute_values(":due", n(item.due))
            .expression_attribute_values(":deadline", n(item.deadline))
            .send()
            .await
            .map_err(|e| store_error(OP, &e))?;
        Ok(())
    }

    async fn checks(&self) -> Result<Vec<CheckItem>, StoreError> {
        const OP: &str = "Query (reachability checks)";
        let items = self.partition(OP, CHECKS_PK.to_owned(), None).await?;
        items
            .iter()
            .map(|i| item_of(i).map_err(|m| corrupt(OP, m)))
            .collect()
    }

    async fn reschedule_check(&self, uid: &str, due: i64) -> Result<(), StoreError> {
        const OP: &str = "UpdateItem (reschedule a reachability check)";
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(CHECKS_PK.to_owned(), uid.to_owned())))
            .update_expression("SET #due = :due")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#due", "due")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":due", n(due))
            .send()
            .await;
        unless_condition_failed(OP, result)
    }

    async fn clear_check(&self, uid: &str, seen_deadline: i64) -> Result<(), StoreError> {
        const OP: &str = "DeleteItem (clear a reachability check)";
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(CHECKS_PK.to_owned(), uid.to_owned())))
            .condition_expression("#deadline <= :seen")
            .expression_attribute_names("#deadline", "deadline")
            .expression_attribute_values(":seen", n(seen_deadline))
            .send()
            .await;
        // Noted again since (or gone already): kept for the next check.
        unless_condition_failed(OP, result)
    }
}
