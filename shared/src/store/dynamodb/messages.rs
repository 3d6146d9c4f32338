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

use futures::StreamExt as _;

use super::{
    Cancelled, ChainedError, DynamoDb, HEAD_KEY, HeadItem, Item, TRANSACTION_ITEMS, from_item, n,
    s, to_item, unexpected,
};
use crate::domain::audit::{AuditEntry, ChainHead, ChainedEntry, chain_of};
use crate::domain::cost::Money;
use crate::domain::message::{
    Message, MessageFilter, MessageId, MessageListing, MessagePosition, MessageStatus, StatusMark,
    StatusReport,
};
use crate::domain::provider::ProviderKind;
use crate::domain::report::{MessageSummary, Period, sortable_time};
use crate::domain::{Category, Channel, EventId, ProviderId, TenantId};
use crate::store::{
    AUDIT_CHAINS, ClaimResult, DispatchClaim, MessageStore, StoreError, StoreResult, StoredMessage,
};

const BY_TENANT_CREATED: &str = "by_tenant_created";
const BY_RECIPIENT: &str = "by_recipient";
const BY_EVENT_CREATED: &str = "by_event_created";
/// Most index items one page of an event's messages reads while filling itself through a
/// filter: a page may come back short (with a cursor) rather than read on without bound.
const MAX_LISTING_READ: usize = 1000;
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
    /// The key of `by_event_created`: `<tenant>#<event>`, with `created_key`; and what it
    /// projects for an event's message list besides `channel`, `status`, `status_reason` and
    /// `cost` (copies of the record's fields; `advance` and `correct_cost` update them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    category: Option<Category>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    status_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<ProviderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    estimated_cost: Option<Money>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    test: bool,
    /// [`Recipient::masked`](crate::domain::recipient::Recipient::masked): never the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipient_masked: Option<String>,
    expires_at: i64,
    record: M,
}

/// What `by_event_created` holds of a message.
#[derive(Deserialize)]
struct ListingItem {
    pk: MessageId,
    created_key: String,
    channel: Channel,
    category: Category,
    status: MessageStatus,
    #[serde(default)]
    status_reason: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    status_at: Option<OffsetDateTime>,
    #[serde(default)]
    provider: Option<ProviderId>,
    #[serde(default)]
    cost: Option<Money>,
    #[serde(default)]
    estimated_cost: Option<Money>,
    #[serde(default)]
    test: bool,
    #[serde(default)]
    recipient_masked: Option<String>,
}

fn listing(item: super::Item) -> StoreResult<(MessagePosition, MessageListing)> {
    let item: ListingItem = from_item(item)?;
    let position = MessagePosition::parse(&item.created_key).ok_or_else(not_a_position)?;
    let stamp = item.created_key.split('#').next().unwrap_or_default();
    let created_at = OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        .map_err(unexpected)?;
    Ok((
        position,
        MessageListing {
            id: item.pk,
            channel: item.channel,
            category: item.category,
            status: item.status,
            status_reason: item.status_reason,
            status_at: item.status_at,
            provider: item.provider,
            cost: item.cost,
            estimated_cost: item.estimated_cost,
            created_at,
            test: item.test,
            recipient: item.recipient_masked.unwrap_or_default(),
        },
    ))
}

fn not_a_position() -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!("a message's created_key is not a position"))
}

fn event_ref(tenant: &TenantId, event: &EventId) -> String {
    format!("{tenant}#{event}")
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
        event_ref: Some(event_ref(&message.tenant, &message.event)),
        category: Some(message.category),
        status_at: message.status_at,
        provider: message.provider.clone(),
        estimated_cost: message.estimated_cost,
        test: message.test,
        recipient_masked: Some(message.recipient.masked()),
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

/// Most messages of one chain one creating transaction carries: each is its record and its
/// audit entry, the chain's head takes one more action, and one is kept for the scope's line in
/// the list of scopes (a chain's first entry).
const CHAIN_PER_TRANSACTION: usize = (TRANSACTION_ITEMS - 2) / 2;
/// Actions a creating transaction may fill with records, entries and heads.
const ACTIONS_PER_TRANSACTION: usize = TRANSACTION_ITEMS - 1;
/// Roughly how many bytes of messages one creating transaction carries (DynamoDB takes 4 MB).
const CREATE_BYTES_PER_TRANSACTION: usize = 3 * 1024 * 1024;
/// Creating transactions of one batch in flight at once.
const CONCURRENT_TRANSACTIONS: usize = 8;
/// Rounds of re-reading contended chain heads before a creating transaction gives up.
const CREATE_ATTEMPTS: u32 = 12;

/// Messages (by index) whose entries go to one chain of one scope, written by one transaction.
#[derive(Debug, Clone)]
struct Piece {
    scope: String,
    chain: u32,
    indices: Vec<usize>,
    bytes: usize,
}

impl Piece {
    fn actions(&self) -> usize {
        1 + 2 * self.indices.len()
    }
}

/// Packs messages into creating transactions. Each chain's messages are one piece, cut only
/// where one transaction cannot hold them (pieces of one chain take turns, since appends to a
/// chain are serial); pieces are packed first-fit, largest first, into transactions of at most
/// [`ACTIONS_PER_TRANSACTION`] actions and [`CREATE_BYTES_PER_TRANSACTION`] bytes, one scope
/// each. Transactions share no chain unless a chain had to be cut, so they run side by side.
fn pack(messages: &[(Message, AuditEntry)]) -> Vec<Vec<Piece>> {
    let mut by_chain: std::collections::BTreeMap<(String, u32), Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, (_, audit)) in messages.iter().enumerate() {
        by_chain
            .entry((audit.scope.clone(), chain_of(&audit.target, AUDIT_CHAINS)))
            .or_default()
            .push(i);
    }
    let mut pieces = Vec::new();
    for ((scope, chain), indices) in by_chain {
        let mut piece = Piece {
            scope: scope.clone(),
            chain,
            indices: Vec::new(),
            bytes: 0,
        };
        for i in indices {
            let size = serde_json::to_vec(&messages[i].0).map_or(0, |b| b.len());
            if piece.indices.len() == CHAIN_PER_TRANSACTION
                || (!piece.indices.is_empty() && piece.bytes + size > CREATE_BYTES_PER_TRANSACTION)
            {
                pieces.push(std::mem::replace(
                    &mut piece,
                    Piece {
                        scope: scope.clone(),
                        chain,
                        indices: Vec::new(),
                        bytes: 0,
                    },
                ));
            }
            piece.bytes += size;
            piece.indices.push(i);
        }
        pieces.push(piece);
    }
    // Largest first; ties in chain order, so a batch packs the same way every time.
    pieces.sort_by_key(|p| std::cmp::Reverse(p.actions()));
    let mut transactions: Vec<Vec<Piece>> = Vec::new();
    for piece in pieces {
        let fits = |t: &Vec<Piece>| {
            t.iter()
                .all(|p| p.scope == piece.scope && p.chain != piece.chain)
                && t.iter().map(Piece::actions).sum::<usize>() + piece.actions()
                    <= ACTIONS_PER_TRANSACTION
                && t.iter().map(|p| p.bytes).sum::<usize>() + piece.bytes
                    <= CREATE_BYTES_PER_TRANSACTION
        };
        match transactions.iter_mut().find(|t| fits(t)) {
            Some(t) => t.push(piece),
            None => transactions.push(vec![piece]),
        }
    }
    transactions
}

impl DynamoDb {
    /// Creates the messages of `pieces` in one transaction; the indices of those written (those
    /// that existed already are left out, and written again by nobody).
    async fn create_together(
        &self,
        messages: &[(Message, AuditEntry)],
        mut pieces: Vec<Piece>,
    ) -> StoreResult<Vec<usize>> {
        // Each round drops the messages that exist already (a retried request), so it ends.
        loop {
            pieces.retain(|p| !p.indices.is_empty());
            if pieces.is_empty() {
                return Ok(Vec::new());
            }
            match self.transact_pieces(messages, &pieces).await {
                Ok(()) => return Ok(pieces.into_iter().flat_map(|p| p.indices).collect()),
                Err(ChainedError::Conflicts(existing)) => {
                    for piece in &mut pieces {
                        piece.indices.retain(|i| !existing.contains(i));
                    }
                }
                Err(ChainedError::Store(e)) => return Err(e),
            }
        }
    }

    /// One transaction: every message's record (conditioned on its absence), its entry linked
    /// after its chain's head, and each chain's head moved, conditioned on it not having moved
    /// since it was read. The chains' locks are held throughout (taken in partition order, so
    /// transactions sharing chains never wait on each other in a circle). A head another writer
    /// moved first is read again (only that one) and the transaction retried with backoff; the
    /// messages that exist already come back as [`ChainedError::Conflicts`] (their indices) and
    /// nothing is written.
    async fn transact_pieces(
        &self,
        messages: &[(Message, AuditEntry)],
        pieces: &[Piece],
    ) -> Result<(), ChainedError> {
        let store = |e: StoreError| ChainedError::Store(e);
        let mut records = Vec::new();
        let mut owners = Vec::new();
        for piece in pieces {
            for &i in &piece.indices {
                let put = Put::builder()
                    .table_name(&self.tables.messages)
                    .set_item(Some(to_item(&item_of(&messages[i].0)).map_err(store)?))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|e| store(unexpected(e)))?;
                records.push(TransactWriteItem::builder().put(put).build());
                owners.push(i);
            }
        }
        // The records, before anything is read: a refusal sends nothing.
        self.check_transaction(&records).map_err(store)?;
        let partitions: Vec<String> = pieces
            .iter()
            .map(|p| super::audit_partition(&p.scope, p.chain))
            .collect();
        let mut order: Vec<&String> = partitions.iter().collect();
        order.sort();
        let locks: Vec<_> = order.iter().map(|p| self.chain_lock(p)).collect();
        let mut turns = Vec::with_capacity(locks.len());
        for lock in &locks {
            turns.push(lock.lock().await);
        }
        for attempt in 0..CREATE_ATTEMPTS {
            let heads = self.heads_of(pieces, &partitions).await.map_err(store)?;
            let mut transaction = records.clone();
            // The transaction's positions of each piece's entries and head.
            let mut spans = Vec::with_capacity(pieces.len());
            let mut moved = Vec::with_capacity(pieces.len());
            for ((piece, partition), head) in pieces.iter().zip(&partitions).zip(&heads) {
                let from = transaction.len();
                let mut last = head.clone();
                for &i in &piece.indices {
                    let chained = ChainedEntry::after(&last, messages[i].1.clone());
                    transaction.push(self.audit_entry_put(partition, &chained).map_err(store)?);
                    last = chained.head();
                }
                transaction.push(
                    self.audit_head_put(partition, &last, head.seq)
                        .map_err(store)?,
                );
                spans.push(from..transaction.len());
                moved.push(last);
            }
            if heads.iter().any(|h| h.seq == 0) {
                // A chain's first entry: the scope goes on the list anchoring walks.
                transaction.push(self.scope_put(&pieces[0].scope).map_err(store)?);
            }
            let forget_all = || partitions.iter().for_each(|p| self.forget_head(p));
            match self.transact_detailed(transaction).await {
                Ok(()) => {
                    for (partition, head) in partitions.iter().zip(moved) {
                        self.cache_head(partition, head);
                    }
                    return Ok(());
                }
                Err(Cancelled::Conditions(failed))
                    if failed.iter().take(owners.len()).any(|f| *f) =>
                {
                    return Err(ChainedError::Conflicts(
                        failed
                            .iter()
                            .zip(&owners)
                            .filter(|(f, _)| **f)
                            .map(|(_, owner)| *owner)
                            .collect(),
                    ));
                }
                Err(Cancelled::Conditions(failed)) => {
                    // Another writer appended to some of the chains first: read those again.
                    let mut stale = false;
                    for (span, partition) in spans.iter().zip(&partitions) {
                        if failed.get(span.clone()).is_some_and(|f| f.contains(&true)) {
                            self.forget_head(partition);
                            stale = true;
                        }
                    }
                    if !stale {
                        forget_all();
                    }
                }
                Err(Cancelled::Contention) => forget_all(),
                Err(Cancelled::Other(e)) => {
                    forget_all();
                    return Err(ChainedError::Store(e));
                }
            }
            // Exponential backoff with full jitter: 10 ms, 20 ms, ... up to 1 s.
            let cap = (10u64 << attempt.min(7)).min(1000);
            let jitter = rand::random::<u64>() % cap.max(1);
            tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
        }
        Err(ChainedError::Store(StoreError::Unavailable(
            anyhow::anyhow!("audit chains stayed contended for {CREATE_ATTEMPTS} attempts"),
        )))
    }

    /// The heads of the pieces' chains: remembered ones as they are, the others read together
    /// (one BatchGetItem).
    async fn heads_of(
        &self,
        pieces: &[Piece],
        partitions: &[String],
    ) -> StoreResult<Vec<ChainHead>> {
        let cached: Vec<Option<ChainHead>> =
            partitions.iter().map(|p| self.cached_head(p)).collect();
        let missing: Vec<Item> = partitions
            .iter()
            .zip(&cached)
            .filter(|(_, c)| c.is_none())
            .map(|(p, _)| HashMap::from([("pk".to_owned(), s(p)), ("sk".to_owned(), s(HEAD_KEY))]))
            .collect();
        let mut read: HashMap<String, HeadItem> = HashMap::new();
        if !missing.is_empty() {
            let table = self.tables.audit.clone();
            for item in self.batch_get_from(&table, missing).await? {
                let head: HeadItem = from_item(item)?;
                read.insert(head.pk.clone(), head);
            }
        }
        Ok(pieces
            .iter()
            .zip(partitions)
            .zip(cached)
            .map(|((piece, partition), cached)| {
                cached.unwrap_or_else(|| match read.remove(partition) {
                    Some(head) => ChainHead {
                        chain: piece.chain,
                        seq: head.seq,
                        hash: head.hash,
                    },
                    None => ChainHead::empty(piece.chain),
                })
            })
            .collect())
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
        // Transactions run side by side (a few at a time); all are waited for, so a failure
        // leaves as little as possible for the retry to write.
        let results: Vec<StoreResult<Vec<usize>>> = futures::stream::iter(
            pack(messages)
                .into_iter()
                .map(|pieces| self.create_together(messages, pieces)),
        )
        .buffer_unordered(CONCURRENT_TRANSACTIONS)
        .collect()
        .await;
        let mut created = vec![false; messages.len()];
        let mut failure = None;
        for result in results {
            match result {
                Ok(written) => written.into_iter().for_each(|i| created[i] = true),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(created),
        }
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
                set.push("status_at = :at");
                builder = builder.expression_attribute_values(":at", s(at));
            }
            None => remove.extend(["#record.status_at", "status_at"]),
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

    async fn event_messages(
        &self,
        tenant: &TenantId,
        event: &EventId,
        filter: &MessageFilter,
        after: Option<&MessagePosition>,
        limit: usize,
    ) -> StoreResult<(Vec<MessageListing>, Option<MessagePosition>)> {
        let reference = event_ref(tenant, event);
        // Keys are `<stamp>#<id>`: a message created at `from` sorts after `from`'s bare stamp,
        // one created at `to` after `to`'s, so `>= from` and `< to` keep [from, to).
        let range = match (filter.from, filter.to) {
            (Some(_), Some(_)) => " AND created_key BETWEEN :from AND :to",
            (Some(_), None) => " AND created_key >= :from",
            (None, Some(_)) => " AND created_key < :to",
            (None, None) => "",
        };
        let mut conditions = Vec::new();
        if filter.status.is_some() {
            conditions.push("#status = :status");
        }
        if filter.channel.is_some() {
            conditions.push("#channel = :channel");
        }
        if filter.category.is_some() {
            conditions.push("#category = :category");
        }
        let filtered = !conditions.is_empty();
        let mut found: Vec<(MessagePosition, MessageListing)> = Vec::new();
        let mut start = after.cloned();
        let mut read = 0usize;
        loop {
            let wanted = limit.saturating_sub(found.len());
            // Through a filter, read ahead: most of what the index holds may not match.
            let batch = if filtered {
                (wanted * 4).min(MAX_LISTING_READ - read)
            } else {
                wanted
            };
            let mut query = self
                .client
                .query()
                .table_name(&self.tables.messages)
                .index_name(BY_EVENT_CREATED)
                .key_condition_expression(format!("event_ref = :ref{range}"))
                .expression_attribute_values(":ref", s(&reference))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.as_ref().map(|p| {
                    HashMap::from([
                        ("pk".to_owned(), s(p.id())),
                        ("event_ref".to_owned(), s(&reference)),
                        ("created_key".to_owned(), s(p.as_str())),
                    ])
                }))
                .limit(i32::try_from(batch.max(1)).unwrap_or(i32::MAX));
            if let Some(from) = filter.from {
                query = query.expression_attribute_values(":from", s(sortable_time(from)));
            }
            if let Some(to) = filter.to {
                query = query.expression_attribute_values(":to", s(sortable_time(to)));
            }
            if filtered {
                query = query.filter_expression(conditions.join(" AND "));
            }
            if let Some(status) = filter.status {
                query = query
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(status.as_str()));
            }
            if let Some(channel) = filter.channel {
                query = query
                    .expression_attribute_names("#channel", "channel")
                    .expression_attribute_values(":channel", s(channel.as_str()));
            }
            if let Some(category) = filter.category {
                query = query
                    .expression_attribute_names("#category", "category")
                    .expression_attribute_values(":category", s(category.as_str()));
            }
            let out = query.send().await.map_err(|e| {
                StoreError::Unavailable(anyhow::Error::new(e).context("Query failed"))
            })?;
            read += usize::try_from(out.scanned_count).unwrap_or_default();
            let last = out
                .last_evaluated_key
                .as_ref()
                .and_then(|k| k.get("created_key").and_then(|v| v.as_s().ok()))
                .map(|k| MessagePosition::parse(k).ok_or_else(not_a_position))
                .transpose()?;
            for item in out.items.unwrap_or_default() {
                found.push(listing(item)?);
            }
            if found.len() >= limit {
                // Read ahead past the page: resume after its last message.
                let more = found.len() > limit || last.is_some();
                found.truncate(limit);
                let next = more.then(|| found.last().map(|(p, _)| p.clone())).flatten();
                return Ok((found.into_iter().map(|(_, m)| m).collect(), next));
            }
            match last {
                None => return Ok((found.into_iter().map(|(_, m)| m).collect(), None)),
                // Enough read for one request: a short page, and where to go on.
                Some(last) if read >= MAX_LISTING_READ => {
                    return Ok((found.into_iter().map(|(_, m)| m).collect(), Some(last)));
                }
                Some(last) => start = Some(last),
            }
        }
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
