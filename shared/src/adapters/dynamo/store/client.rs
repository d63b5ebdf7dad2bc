//! The DynamoDB client of the claim store and what every one of its operations uses: the
//! table's key, attribute values, and the SDK's errors turned into [`StoreError`]s.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::adapters::aws::error::describe;
use crate::adapters::dynamo::record::Item;
use crate::adapters::dynamo::table::{PK, SK};
use crate::model::claims::{Claim, StoreError};

/// Claims in one DynamoDB table (see the module docs of [`crate::model::claims`] for its items).
#[derive(Debug, Clone)]
pub struct DynamoClaimStore {
    pub(super) client: Client,
    pub(super) table: String,
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
    pub(super) async fn partition(
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

pub(super) fn store_error<E>(
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
pub(super) fn unless_condition_failed<T, E>(
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

pub(super) fn corrupt(operation: &'static str, message: String) -> StoreError {
    StoreError {
        operation,
        message,
        retryable: false,
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

pub(super) fn port_set(claims: &[&Claim]) -> AttributeValue {
    AttributeValue::Ns(claims.iter().map(|c| c.port.to_string()).collect())
}
