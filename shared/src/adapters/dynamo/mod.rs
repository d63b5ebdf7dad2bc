//! DynamoDB: every file that reads or writes the claims table: the claim store (`store`), the
//! table and its keys (`table`), the items (`record`, `identity`).

pub mod identity;
mod record;
mod store;
pub mod table;

pub use store::DynamoClaimStore;
