//! Quota counters, in the idempotency table beside the keys (both short-lived items under a
//! scoped `pk`, gone by TTL): one item per quota, tenant and window, counted up with a
//! conditional `ADD`, so two requests at once never both take the last use.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use time::OffsetDateTime;

use super::{DynamoDb, n, s};
use crate::store::{QuotaStore, StoreError, StoreResult};

#[async_trait]
impl QuotaStore for DynamoDb {
    async fn take(&self, key: &str, limit: u32, expires_at: OffsetDateTime) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.idempotency)
            .key("pk", s(key))
            .update_expression(
                "ADD #used :one SET expires_at = if_not_exists(expires_at, :expires)",
            )
            .condition_expression("attribute_not_exists(#used) OR #used < :limit")
            .expression_attribute_names("#used", "used")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":expires", n(expires_at.unix_timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(StoreError::Unavailable(
                anyhow::Error::new(e).context("UpdateItem failed"),
            )),
        }
    }
}
