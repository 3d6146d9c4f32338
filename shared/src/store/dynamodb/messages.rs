//! Messages, one item each (`pk` = message id). `status` and the dispatch claim are top-level
//! attributes for conditions; `provider_message_key` (`<kind>#<provider message id>`) feeds the
//! GSI receipts look messages up by; `tenant` and `created_key` (`<sortable created_at>#<id>`)
//! feed `by_tenant_created`, which compliance reports Query by period, reading only the
//! top-level `channel`, `status`, `status_reason` and `cost` it projects; `recipient_ref`
//! (`<tenant>#<recipient key>`) and `created_key` feed `by_recipient` (keys only), which
//! data-subject export and erasure Query before reading the records with BatchGetItem;
//! `expires_at` is the retention TTL.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use std::collections::HashMap;

use super::{ChainedError, DynamoDb, TRANSACTION_ITEMS, from_item, n, s, to_item, unexpected};
use crate::domain::audit::{AuditEntry, chain_of};
use crate::domain::cost::Money;
use crate::domain::message::{Message, MessageId, MessageStatus, StatusMark, StatusReport};
use crate::domain::provider::ProviderKind;
use crate::domain::report::{MessageSummary, Period, sortable_time};
use crate::domain::{Channel, TenantId};
use crate::store::{
    AUDIT_CHAINS, ClaimResult, DispatchClaim, MessageStore, StoreError, StoreResult, StoredMessage,
};

const BY_TENANT_CREATED: &str = "by_tenant_created";
const BY_RECIPIENT: &str = "by_recipient";
/// BatchGetItem takes at most 100 keys.
const BATCH_KEYS: usize = 100;

#[derive(Serialize, Deserialize)]
struct MessageItem<M> {
    pk: String,
    status: MessageStatus,
    /// The status's rank: receipts advance it only upwards (a condition on it).
    #[serde(default)]
    status_rank: u8,
    /// The [`StatusMark`] of the status as it stands: a report is taken only if its mark is
    /// higher (items written before marks existed are compared by `status_rank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_mark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim_token: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    claim_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_message_key: Option<String>,
    /// The keys of `by_tenant_created` and what it projects for reports (copies of the record's
    /// fields; `advance` updates both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_key: Option<String>,
    /// The key of `by_recipient`: `<tenant>#<recipient key>` (a digest, never the address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipient_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cost: Option<Money>,
    expires_at: i64,
    record: M,
}

/// What `by_tenant_created` holds of a message.
#[derive(Deserialize)]
struct SummaryItem {
    pk: MessageId,
    created_key: String,
    channel: Channel,
    status: MessageStatus,
    #[serde(default)]
    status_reason: Option<String>,
    #[serde(default)]
    cost: Option<Money>,
}

/// `<sortable created_at>#<message id>`: unique, and in creation order within a tenant.
fn created_key(message: &Message) -> String {
    format!("{}#{}", sortable_time(message.created_at), message.id)
}

fn recipient_ref(tenant: &TenantId, recipient_key: &str) -> String {
    format!("{tenant}#{recipient_key}")
}

fn summary(item: super::Item) -> StoreResult<MessageSummary> {
    let item: SummaryItem = from_item(item)?;
    let stamp = item.created_key.split('#').next().unwrap_or_default();
    let created_at = OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        .map_err(unexpected)?;
    Ok(MessageSummary {
        id: item.pk,
        channel: item.channel,
        status: item.status,
        status_reason: item.status_reason,
        cost: item.cost,
        created_at,
    })
}

/// How long message records are kept (the template's MESSAGE_RETENTION_DAYS).
fn retention_days() -> i64 {
    std::env::var("MESSAGE_RETENTION_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(90)
}

fn item_of(message: &Message) -> MessageItem<&Message> {
    MessageItem {
        pk: message.id.to_string(),
        status: message.status,
        status_rank: message.status.rank(),
        status_mark: Some(StatusMark::of_message(message).as_str().to_owned()),
        claim_token: None,
        claim_at: None,
        provider_message_key: match (&message.provider_kind, &message.provider_message_id) {
            (Some(kind), Some(id)) => Some(format!("{}#{id}", kind.as_str())),
            _ => None,
        },
        tenant: Some(message.tenant.to_string()),
        created_key: Some(created_key(message)),
        recipient_ref: Some(recipient_ref(&message.tenant, &message.recipient_key)),
        channel: Some(message.channel),
        status_reason: message.status_reason.clone(),
        cost: message.cost,
        expires_at: message
            .expires_at
            .unwrap_or_else(|| message.created_at + time::Duration::days(retention_days()))
            .unix_timestamp(),
        record: message,
    }
}

fn stored(item: super::Item) -> StoreResult<StoredMessage> {
    let item: MessageItem<Message> = from_item(item)?;
    let claim = match (item.claim_token, item.claim_at) {
        (Some(token), Some(at)) => Some(DispatchClaim { token, at }),
        _ => None,
    };
    Ok(StoredMessage {
        message: item.record,
        claim,
    })
}

/// Most messages one creating transaction carries: each is its item and its audit entry, and
/// the chain's head takes one more item.
const CREATE_PER_TRANSACTION: usize = (TRANSACTION_ITEMS - 1) / 2;
/// Roughly how many bytes of messages one creating transaction carries (DynamoDB takes 4 MB).
const CREATE_BYTES_PER_TRANSACTION: usize = 3 * 1024 * 1024;

impl DynamoDb {
    /// Creates `messages[indices]` (all of one audit chain), in transactions of as many as fit;
    /// the indices of those written (those that existed already are left out).
    async fn create_in_chain(
        &self,
        messages: &[(Message, AuditEntry)],
        indices: Vec<usize>,
    ) -> StoreResult<Vec<usize>> {
        let mut written = Vec::with_capacity(indices.len());
        let mut rest = indices.into_iter().peekable();
        while rest.peek().is_some() {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            while let Some(&i) = rest.peek() {
                let size = serde_json::to_vec(&messages[i].0).map_or(0, |b| b.len());
                if chunk.len() == CREATE_PER_TRANSACTION
                    || (!chunk.is_empty() && bytes + size > CREATE_BYTES_PER_TRANSACTION)
                {
                    break;
                }
                bytes += size;
                chunk.push(i);
                rest.next();
            }
            // Each round drops the messages that exist already (a retried request), so it ends.
            while !chunk.is_empty() {
                let changes = chunk
                    .iter()
                    .map(|&i| {
                        let (message, audit) = &messages[i];
                        let put = Put::builder()
                            .table_name(&self.tables.messages)
                            .set_item(Some(to_item(&item_of(message))?))
                            .condition_expression("attribute_not_exists(pk)")
                            .build()
                            .map_err(unexpected)?;
                        Ok((
                            vec![TransactWriteItem::builder().put(put).build()],
                            audit.clone(),
                        ))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                match self.transact_chained(changes).await {
                    Ok(()) => {
                        written.append(&mut chunk);
                    }
                    Err(ChainedError::Conflicts(existing)) => {
                        let existing: Vec<usize> = existing.iter().map(|&k| chunk[k]).collect();
                        chunk.retain(|i| !existing.contains(i));
                    }
                    Err(ChainedError::Store(e)) => return Err(e),
                }
            }
        }
        Ok(written)
    }

    /// The records of `ids`, in that order (those gone meanwhile are left out).
    async fn messages_by_id(&self, ids: &[String]) -> StoreResult<Vec<StoredMessage>> {
        let mut found = std::collections::HashMap::new();
        for chunk in ids.chunks(BATCH_KEYS) {
            let keys = chunk
                .iter()
                .map(|id| std::collections::HashMap::from([("pk".to_owned(), s(id))]))
                .collect();
            let table = self.tables.messages.clone();
            for item in self.batch_get_from(&table, keys).await? {
                let message = stored(item)?;
                found.insert(message.message.id.to_string(), message);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    fn claimed_put(&self, message: &Message, token: &str) -> StoreResult<Put> {
        Put::builder()
            .table_name(&self.tables.messages)
            .set_item(Some(to_item(&item_of(message))?))
            .condition_expression("claim_token = :token")
            .expression_attribute_values(":token", s(token))
            .build()
            .map_err(unexpected)
    }
}

#[async_trait]
impl MessageStore for DynamoDb {
    async fn create_many(&self, messages: &[(Message, AuditEntry)]) -> StoreResult<Vec<bool>> {
        // Messages whose entries go to the same chain share transactions (a chain's appends are
        // serial anyway); chains are written concurrently.
        let mut by_chain: HashMap<(String, u32), Vec<usize>> = HashMap::new();
        for (i, (_, audit)) in messages.iter().enumerate() {
            by_chain
                .entry((audit.scope.clone(), chain_of(&audit.target, AUDIT_CHAINS)))
                .or_default()
                .push(i);
        }
        let mut created = vec![false; messages.len()];
        let chains = by_chain
            .into_values()
            .map(|indices| self.create_in_chain(messages, indices));
        for written in futures::future::try_join_all(chains).await? {
            for i in written {
                created[i] = true;
            }
        }
        Ok(created)
    }

    async fn message(&self, id: &MessageId) -> StoreResult<Option<StoredMessage>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.messages)
            .key("pk", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                StoreError::Unavailable(anyhow::Error::new(e).context("GetItem failed"))
            })?;
        out.item.map(stored).transpose()
    }

    async fn claim(
        &self,
        id: &MessageId,
        token: &str,
        at: OffsetDateTime,
    ) -> StoreResult<ClaimResult> {
        let stamp = at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(unexpected)?;
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.messages)
            .key("pk", s(id.as_str()))
            .update_expression("SET claim_token = :token, claim_at = :at")
            .condition_expression("attribute_exists(pk) AND #status = :accepted AND attribute_not_exists(claim_token)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":at", s(stamp))
            .expression_attribute_values(":accepted", s(MessageStatus::Accepted.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        self.check_update_item(&request)?;
        let result = request.send().await;
        match result {
            Ok(out) => Ok(ClaimResult::Claimed(Box::new(
                stored(out.attributes.unwrap_or_default())?.message,
            ))),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(match self.message(id).await? {
                    None => ClaimResult::Missing,
                    Some(StoredMessage { message, .. })
                        if message.status != MessageStatus::Accepted =>
                    {
                        ClaimResult::Settled(message.status)
                    }
                    Some(StoredMessage {
                        claim: Some(claim), ..
                    }) => ClaimResult::Held(claim),
                    // Released between our write and our read: let the next delivery take it.
                    Some(StoredMessage { claim: None, .. }) => ClaimResult::Held(DispatchClaim {
                        token: String::new(),
                        at: OffsetDateTime::now_utc(),
                    }),
                })
            }
            Err(e) => Err(StoreError::Unavailable(
                anyhow::Error::new(e).context("UpdateItem failed"),
            )),
        }
    }

    async fn settle(&self, message: &Message, token: &str, audit: &AuditEntry) -> StoreResult<()> {
        let put = self.claimed_put(message, token)?;
        self.transact_audited(vec![TransactWriteItem::builder().put(put).build()], audit)
            .await
    }

    async fn by_provider_message(
        &self,
        kind: ProviderKind,
        provider_message_id: &str,
    ) -> StoreResult<Option<Message>> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.messages)
            .index_name("by_provider_message")
            .key_condition_expression("provider_message_key = :key")
            .expression_attribute_values(
                ":key",
                s(format!("{}#{provider_message_id}", kind.as_str())),
            )
            .limit(1)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("Query failed")))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|i| stored(i).map(|m| m.message))
            .transpose()
    }

    async fn advance(
        &self,
        id: &MessageId,
        report: &StatusReport,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut set = vec![
            "#status = :status",
            "status_rank = :rank",
            "status_mark = :mark",
            "#record.#status = :status",
        ];
        let mut remove = Vec::new();
        let mut builder = Update::builder()
            .table_name(&self.tables.messages)
            .key("pk", s(id.as_str()))
            .condition_expression(
                "attribute_exists(pk) AND (status_mark < :mark OR (attribute_not_exists(status_mark) \
                 AND (attribute_not_exists(status_rank) OR status_rank < :rank)))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#record", "record")
            .expression_attribute_values(":status", s(report.status.as_str()))
            .expression_attribute_values(":rank", n(report.status.rank()))
            .expression_attribute_values(":mark", s(report.mark().as_str()));
        // The report replaces the reason and time of the status before it, absent ones included.
        match &report.reason {
            Some(reason) => {
                set.push("#record.status_reason = :reason");
                set.push("status_reason = :reason");
                builder = builder.expression_attribute_values(":reason", s(reason));
            }
            None => remove.extend(["#record.status_reason", "status_reason"]),
        }
        match report.at {
            Some(at) => {
                let at = at
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(unexpected)?;
                set.push("#record.status_at = :at");
                builder = builder.expression_attribute_values(":at", s(at));
            }
            None => remove.push("#record.status_at"),
        }
        if let Some(cost) = report.cost {
            set.extend(["#record.#cost = :cost", "#cost = :cost"]);
            builder = builder.expression_attribute_names("#cost", "cost");
            let value = serde_dynamo::to_attribute_value(cost).map_err(unexpected)?;
            builder = builder.expression_attribute_values(":cost", value);
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = builder
            .update_expression(expression)
            .build()
            .map_err(unexpected)?;
        match self
            .transact_audited(
                vec![TransactWriteItem::builder().update(update).build()],
                audit,
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn correct_cost(
        &self,
        id: &MessageId,
        cost: Money,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let value = serde_dynamo::to_attribute_value(cost).map_err(unexpected)?;
        let update = Update::builder()
            .table_name(&self.tables.messages)
            .key("pk", s(id.as_str()))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET #record.#cost = :cost, #cost = :cost")
            .expression_attribute_names("#record", "record")
            .expression_attribute_names("#cost", "cost")
            .expression_attribute_values(":cost", value)
            .build()
            .map_err(unexpected)?;
        match self
            .transact_audited(
                vec![TransactWriteItem::builder().update(update).build()],
                audit,
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release(
        &self,
        message: &Message,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()> {
        let put = vec![
            TransactWriteItem::builder()
                .put(self.claimed_put(message, token)?)
                .build(),
        ];
        match audit {
            Some(audit) => self.transact_audited(put, audit).await,
            None => self.transact(put).await,
        }
    }

    async fn messages_to(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<StoredMessage>, Option<String>)> {
        let reference = recipient_ref(tenant, recipient_key);
        let start = after.map(|key| {
            let id = key.rsplit('#').next().unwrap_or_default();
            std::collections::HashMap::from([
                ("pk".to_owned(), s(id)),
                ("recipient_ref".to_owned(), s(&reference)),
                ("created_key".to_owned(), s(key)),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.tables.messages)
            .index_name(BY_RECIPIENT)
            .key_condition_expression("recipient_ref = :ref")
            .expression_attribute_values(":ref", s(&reference))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("Query failed")))?;
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get("created_key").and_then(|v| v.as_s().ok()).cloned());
        let ids: Vec<String> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        Ok((self.messages_by_id(&ids).await?, next))
    }

    async fn erase(&self, read: &Message, erased: &Message, audit: &AuditEntry) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(&self.tables.messages)
            .set_item(Some(to_item(&item_of(erased))?))
            // Over the record as read: a receipt that moved it meanwhile (even within its
            // status) means reading it again.
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(claim_token) AND #status = :status \
                 AND (status_mark = :mark OR attribute_not_exists(status_mark))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(read.status.as_str()))
            .expression_attribute_values(":mark", s(StatusMark::of_message(read).as_str()))
            .build()
            .map_err(unexpected)?;
        self.transact_audited(vec![TransactWriteItem::builder().put(put).build()], audit)
            .await
    }

    async fn messages_between(
        &self,
        tenant: &TenantId,
        period: &Period,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<MessageSummary>, Option<String>)> {
        // Keys are `<stamp>#<id>`: every key of a message created in [from, to) lies between
        // the bare stamps of `from` and `to` (a key at `to` itself sorts after `to`'s stamp).
        let start = after.map(|key| {
            let id = key.rsplit('#').next().unwrap_or_default();
            std::collections::HashMap::from([
                ("pk".to_owned(), s(id)),
                ("tenant".to_owned(), s(tenant.as_str())),
                ("created_key".to_owned(), s(key)),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.tables.messages)
            .index_name(BY_TENANT_CREATED)
            .key_condition_expression("#tenant = :tenant AND created_key BETWEEN :from AND :to")
            .expression_attribute_names("#tenant", "tenant")
            .expression_attribute_values(":tenant", s(tenant.as_str()))
            .expression_attribute_values(":from", s(sortable_time(period.from())))
            .expression_attribute_values(":to", s(sortable_time(period.to())))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("Query failed")))?;
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get("created_key").and_then(|v| v.as_s().ok()).cloned());
        let summaries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(summary)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((summaries, next))
    }
}
