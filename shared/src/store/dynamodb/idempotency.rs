//! Idempotency keys: a conditional put claims a key; the finished response is kept (24 hours,
//! by TTL) to answer repeats. A claim left behind by a crashed invocation expires after a lease.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use time::OffsetDateTime;

use super::{DynamoDb, n, s};
use crate::store::{Claim, IdempotencyStore, StoreError, StoreResult, StoredResponse};

const KEEP_SECONDS: i64 = 24 * 3600;
const LEASE_SECONDS: i64 = 60;

fn unavailable(e: impl std::error::Error + Send + Sync + 'static, what: &str) -> StoreError {
    StoreError::Unavailable(anyhow::Error::new(e).context(format!("{what} failed")))
}

#[async_trait]
impl IdempotencyStore for DynamoDb {
    async fn claim(&self, key: &str, fingerprint: &str) -> StoreResult<Claim> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let request = self
            .client
            .put_item()
            .table_name(&self.tables.idempotency)
            .item("pk", s(key))
            .item("fingerprint", s(fingerprint))
            .item("state", s("in_flight"))
            .item("claimed_at", n(now))
            .item("expires_at", n(now + KEEP_SECONDS))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR (#state = :in_flight AND claimed_at < :stale)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":in_flight", s("in_flight"))
            .expression_attribute_values(":stale", n(now - LEASE_SECONDS));
        self.check_put_item(&request)?;
        match request.send().await {
            Ok(_) => return Ok(Claim::Fresh),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {}
            Err(e) => return Err(unavailable(e, "PutItem")),
        }
        let existing = self
            .client
            .get_item()
            .table_name(&self.tables.idempotency)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(e, "GetItem"))?
            .item
            .unwrap_or_default();
        let text = |name: &str| existing.get(name).and_then(|v| v.as_s().ok()).cloned();
        if text("fingerprint").as_deref() != Some(fingerprint) {
            return Ok(Claim::Mismatch);
        }
        match (text("state").as_deref(), text("body")) {
            (Some("done"), Some(body)) => {
                let status = existing
                    .get("status")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(200);
                Ok(Claim::Replay(StoredResponse { status, body }))
            }
            _ => Ok(Claim::InFlight),
        }
    }

    async fn finish(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        // The item as finishing leaves it, measured whole: the response is what can be large.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let finished = std::collections::HashMap::from([
            ("pk".to_owned(), s(key)),
            ("fingerprint".to_owned(), s(fingerprint)),
            ("state".to_owned(), s("in_flight")),
            ("claimed_at".to_owned(), n(now)),
            ("expires_at".to_owned(), n(now + KEEP_SECONDS)),
            ("status".to_owned(), n(response.status)),
            ("body".to_owned(), s(&response.body)),
        ]);
        self.check_put(&self.tables.idempotency, &finished)?;
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.idempotency)
            .key("pk", s(key))
            .update_expression("SET #state = :done, #status = :status, body = :body")
            .condition_expression("fingerprint = :fingerprint")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":status", n(response.status))
            .expression_attribute_values(":body", s(&response.body))
            .expression_attribute_values(":fingerprint", s(fingerprint));
        self.check_update_item(&request)?;
        request
            .send()
            .await
            .map_err(|e| unavailable(e, "UpdateItem"))?;
        Ok(())
    }

    async fn release(&self, key: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.idempotency)
            .key("pk", s(key))
            .condition_expression("#state = :in_flight")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_flight", s("in_flight"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(unavailable(e, "DeleteItem")),
        }
    }
}
