//! Opt-outs and suppressions: one item per recipient, channel and kind, in the recipient's
//! partition `R#<tenant>#<recipient key>` under `BLOCK#<channel>#<kind>`. The partition is the
//! recipient's, so later per-recipient records (consents, preferences) sit beside these and one
//! Query finds everything held on a person. The send path reads blocks with BatchGetItem.
//! The consent ledger and preferences in the same partition: [`consents`]. When the recipient
//! last wrote to each of the tenant's WhatsApp providers (the customer-service window), under
//! `INBOUND#<provider id>`, expiring two days later (`expires_at`, the table's TTL).

mod consents;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{DynamoDb, Item, from_item, s, to_item, unexpected};
use crate::domain::audit::AuditEntry;
use crate::domain::suppression::{Block, BlockKind};
use crate::domain::{Channel, ProviderId, TenantId};
use crate::store::{RecipientStore, StoreError, StoreResult};
use time::OffsetDateTime;

/// BatchGetItem takes at most 100 keys.
const BATCH_KEYS: usize = 100;
/// Rounds of retrying keys DynamoDB left unprocessed (throttling) before giving up.
const UNPROCESSED_ROUNDS: usize = 5;

#[derive(Serialize, Deserialize)]
struct BlockItem {
    pk: String,
    sk: String,
    channel: Channel,
    recipient_key: String,
    block: Block,
}

fn partition(tenant: &TenantId, recipient_key: &str) -> String {
    format!("R#{tenant}#{recipient_key}")
}

fn sort(channel: Channel, kind: BlockKind) -> String {
    format!("BLOCK#{}#{}", channel.as_str(), kind.as_str())
}

#[async_trait]
impl RecipientStore for DynamoDb {
    async fn block(
        &self,
        tenant: &TenantId,
        channel: Channel,
        recipient_key: &str,
        block: &Block,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let item = to_item(&BlockItem {
            pk: partition(tenant, recipient_key),
            sk: sort(channel, block.kind),
            channel,
            recipient_key: recipient_key.to_owned(),
            block: block.clone(),
        })?;
        let put = Put::builder()
            .table_name(&self.tables.recipients)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unexpected)?;
        match self
            .transact_audited(vec![TransactWriteItem::builder().put(put).build()], audit)
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn unblock(
        &self,
        tenant: &TenantId,
        channel: Channel,
        recipient_key: &str,
        kind: BlockKind,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let delete = Delete::builder()
            .table_name(&self.tables.recipients)
            .key("pk", s(partition(tenant, recipient_key)))
            .key("sk", s(sort(channel, kind)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unexpected)?;
        match self
            .transact_audited(
                vec![TransactWriteItem::builder().delete(delete).build()],
                audit,
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn blocks(
        &self,
        tenant: &TenantId,
        recipients: &[(Channel, String)],
    ) -> StoreResult<Vec<(Channel, String, Block)>> {
        let mut keys: Vec<Item> = Vec::with_capacity(recipients.len() * 2);
        let mut seen = std::collections::HashSet::new();
        for (channel, key) in recipients {
            for kind in [BlockKind::OptedOut, BlockKind::Suppressed] {
                let (pk, sk) = (partition(tenant, key), sort(*channel, kind));
                if seen.insert((pk.clone(), sk.clone())) {
                    keys.push(HashMap::from([
                        ("pk".to_owned(), s(pk)),
                        ("sk".to_owned(), s(sk)),
                    ]));
                }
            }
        }
        let lookups = keys
            .chunks(BATCH_KEYS)
            .map(|chunk| self.batch_get(chunk.to_vec()));
        let mut found = Vec::new();
        for items in futures::future::try_join_all(lookups).await? {
            for item in items {
                let item: BlockItem = from_item(item)?;
                found.push((item.channel, item.recipient_key, item.block));
            }
        }
        Ok(found)
    }

    async fn record_inbound(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        recipient_key: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        // Only ever later: a webhook redelivered out of order cannot close the window early.
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.recipients)
            .key("pk", s(partition(tenant, recipient_key)))
            .key("sk", s(inbound_sort(provider)))
            .update_expression("SET #at = :at, expires_at = :expires")
            .condition_expression("attribute_not_exists(#at) OR #at < :at")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":at", AttributeValue::N(at.unix_timestamp().to_string()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((at + INBOUND_KEPT).unix_timestamp().to_string()),
            );
        self.check_update_item(&request)?;
        let result = request.send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::Unavailable(
                anyhow::Error::new(e).context("UpdateItem (inbound) failed"),
            )),
        }
    }

    async fn last_inbound(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        recipient_key: &str,
    ) -> StoreResult<Option<OffsetDateTime>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.recipients)
            .key("pk", s(partition(tenant, recipient_key)))
            .key("sk", s(inbound_sort(provider)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                StoreError::Unavailable(anyhow::Error::new(e).context("GetItem (inbound) failed"))
            })?;
        Ok(out
            .item
            .and_then(|item| match item.get("at") {
                Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
                _ => None,
            })
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok()))
    }
}

/// How long the time of a recipient's last inbound message is kept: the window and a day.
const INBOUND_KEPT: time::Duration = time::Duration::hours(48);

fn inbound_sort(provider: &ProviderId) -> String {
    format!("INBOUND#{provider}")
}

impl DynamoDb {
    /// Reads up to 100 keys of the recipients table, retrying what DynamoDB leaves unprocessed.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let table = self.tables.recipients.clone();
        self.batch_get_from(&table, keys).await
    }

    /// Reads up to 100 keys of `table` (consistently), retrying what DynamoDB leaves
    /// unprocessed.
    pub(super) async fn batch_get_from(
        &self,
        table: &str,
        keys: Vec<Item>,
    ) -> StoreResult<Vec<Item>> {
        let mut pending = Some(keys);
        let mut items = Vec::new();
        for _ in 0..UNPROCESSED_ROUNDS {
            let Some(keys) = pending.take().filter(|k| !k.is_empty()) else {
                return Ok(items);
            };
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(unexpected)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| {
                    StoreError::Unavailable(anyhow::Error::new(e).context("BatchGetItem failed"))
                })?;
            items.extend(
                out.responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .map(|k| k.keys);
            if pending.as_ref().is_some_and(|k| !k.is_empty()) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        if pending.is_some_and(|k| !k.is_empty()) {
            return Err(StoreError::Unavailable(anyhow::anyhow!(
                "BatchGetItem left keys unprocessed after {UNPROCESSED_ROUNDS} rounds"
            )));
        }
        Ok(items)
    }
}
