//! `DynamoCache`: one DynamoDB table as a [`cache_core::Cache`].
//!
//! stub docs, written below once the code settles.

mod batch;
mod builder;
mod cache;
mod error;
mod keys;

pub use crate::builder::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BATCH_DEADLINE, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_OPERATION_TIMEOUT, DynamoCacheBuilder, ServerTtl,
};
pub use crate::cache::DynamoCache;
/// The SDK this crate is built on, for callers who pass their own client.
pub use aws_sdk_dynamodb;
