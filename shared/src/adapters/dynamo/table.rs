//! The claims table's keys, and its creation for local runs and tests (the SAM template
//! makes the real one with the same schema).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Sort key of an NLB item.
pub const NLB_META: &str = "meta";

/// Partition key of an NLB's items (its NLB item and its port items).
pub fn nlb_pk(nlb_arn: &str) -> String {
    format!("nlb#{nlb_arn}")
}

/// Sort key of a port item; zero-padded so a Query returns ports in order.
pub fn port_sk(port: u16) -> String {
    format!("port#{port:05}")
}

/// Partition key of a managed pool's items (its counter, members and waiting Services).
pub fn pool_pk(pool: &str) -> String {
    format!("pool#{pool}")
}

/// Sort key of a pool's item (its counter).
pub const POOL_META: &str = "meta";

/// Prefix of the sort keys of a pool's member items.
pub const MEMBER_PREFIX: &str = "nlb#";

/// Sort key of a pool's member `seq`; zero-padded so a Query returns members in order.
pub fn member_sk(seq: u64) -> String {
    format!("{MEMBER_PREFIX}{seq:06}")
}

/// Prefix of the sort keys of a pool's waiting items.
pub const WAITING_PREFIX: &str = "wait#";

/// Sort key of a Service waiting in a pool.
pub fn waiting_sk(uid: &str) -> String {
    format!("{WAITING_PREFIX}{uid}")
}

/// Partition key of a Service's owner records.
pub fn owner_pk(uid: &str) -> String {
    format!("owner#{uid}")
}

/// Creates the claims table (on-demand) and waits until it can be used.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), aws_sdk_dynamodb::Error> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .send()
        .await?;
    Ok(())
}
