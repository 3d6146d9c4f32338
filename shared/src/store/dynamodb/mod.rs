//! DynamoDB adapters for the configuration ports. Key design (see docs/architecture.md):
//! every layer owner has one partition (`GLOBAL`, `T#<tenant>`, `E#<tenant>#<event>`), so a
//! resolution reads each layer with one Query; current items sort under `CUR#`, history under
//! `VER#`. Conditional writes give optimistic concurrency and idempotency.

mod idempotency;
pub mod item_size;
#[cfg(test)]
mod limit_tests;
mod messages;
mod providers;
mod quotas;
mod recipients;
mod snapshots;
mod templates;
mod tenant_settings;
mod webhook_endpoints;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AUDIT_CHAINS, AuditStore};
use super::{StoreError, StoreResult};
use crate::domain::audit::{
    AuditEntry, ChainHead, ChainedEntry, SignedAnchor, StoredLink, chain_of,
};

pub type Item = HashMap<String, AttributeValue>;

/// Physical table names, as the SAM template passes them to every function.
#[derive(Debug, Clone)]
pub struct TableNames {
    pub providers: String,
    pub templates: String,
    pub snapshots: String,
    pub audit: String,
    pub idempotency: String,
    pub messages: String,
    pub recipients: String,
    pub webhook_endpoints: String,
}

impl TableNames {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    /// From any source of the template's environment variables (a local stack's, in tests).
    pub fn from_vars(vars: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| {
            vars(name).with_context(|| format!("environment variable {name} is not set"))
        };
        Ok(Self {
            providers: var("PROVIDERS_TABLE")?,
            templates: var("TEMPLATES_TABLE")?,
            snapshots: var("SNAPSHOTS_TABLE")?,
            audit: var("AUDIT_TABLE")?,
            idempotency: var("IDEMPOTENCY_TABLE")?,
            messages: var("MESSAGES_TABLE")?,
            recipients: var("RECIPIENTS_TABLE")?,
            webhook_endpoints: var("WEBHOOK_ENDPOINTS_TABLE")?,
        })
    }
}

/// The DynamoDB side of every configuration port.
#[derive(Debug, Clone)]
pub struct DynamoDb {
    client: Client,
    tables: TableNames,
    /// The audit chains' heads this container appended last: the first try of the next append
    /// needs no read (a stale head only costs a retry).
    heads: Arc<Mutex<HashMap<String, ChainHead>>>,
    /// One lock per chain this container appends to: its concurrent appends to a chain take
    /// turns (each on the head the one before left) instead of racing for the head and
    /// retrying; only appends from other containers can still collide.
    chain_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Why a transaction did not go through.
enum Cancelled {
    /// Conditions failed: for each item, whether its own did.
    Conditions(Vec<bool>),
    /// Another transaction was writing one of the items at the same moment
    /// (`TransactionConflict`): nothing was checked, trying again may go through.
    Contention,
    Other(StoreError),
}

/// Why a group of audited changes ([`DynamoDb::transact_chained`]) was not written.
pub(super) enum ChainedError {
    /// The conditions of these changes (by index) failed: they exist already, or changed.
    Conflicts(Vec<usize>),
    Store(StoreError),
}

/// Most items a TransactWriteItems takes.
pub(super) const TRANSACTION_ITEMS: usize = 100;

/// Rounds of re-reading a contended chain head before an append gives up.
const AUDIT_APPEND_ATTEMPTS: u32 = 12;
const HEAD_KEY: &str = "HEAD";

#[derive(Serialize, serde::Deserialize)]
struct HeadItem {
    pk: String,
    sk: String,
    seq: u64,
    hash: String,
}

/// `A#<scope>#<chain>`: one partition per chain.
fn audit_partition(scope: &str, chain: u32) -> String {
    format!("A#{scope}#{chain:02}")
}

/// `N#<scope>`: the scope's signed anchors, under `N#<number>`.
fn anchor_partition(scope: &str) -> String {
    format!("N#{scope}")
}

/// The partition listing every scope with audit entries (one item per scope, written with the
/// first entry of each of its chains): what the anchoring job walks.
const SCOPES_KEY: &str = "SCOPES";

fn anchor_of(item: Item) -> StoreResult<SignedAnchor> {
    #[derive(serde::Deserialize)]
    struct AnchorItem {
        anchor: SignedAnchor,
    }
    Ok(from_item::<AnchorItem>(item)?.anchor)
}

/// Entries sort by number under `E#`, beside the chain's `HEAD`.
fn entry_key(seq: u64) -> String {
    format!("E#{seq:012}")
}

/// How long audit entries are kept (the template's AUDIT_RETENTION_DAYS; default 7 years).
fn audit_retention_days() -> i64 {
    std::env::var("AUDIT_RETENTION_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(2557)
}

impl DynamoDb {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            client,
            tables,
            heads: Arc::new(Mutex::new(HashMap::new())),
            chain_locks: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<()> {
        match self.transact_detailed(items).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Conditions(_)) => Err(StoreError::Conflict),
            Err(Cancelled::Contention) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "another transaction was writing the same items"
            ))),
            Err(Cancelled::Other(e)) => Err(e),
        }
    }

    /// A transaction whose refusal says which of its items' conditions failed.
    async fn transact_detailed(&self, items: Vec<TransactWriteItem>) -> Result<(), Cancelled> {
        // Every transaction passes here: nothing over DynamoDB's limits leaves.
        self.check_transaction(&items).map_err(Cancelled::Other)?;
        // The token makes the SDK's own retries of this request idempotent: a transaction that
        // went through but whose answer was lost is not applied (or appended) twice.
        let result = self
            .client
            .transact_write_items()
            .client_request_token(ulid::Ulid::new().to_string())
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let codes: Vec<Option<&str>> =
                        c.cancellation_reasons().iter().map(|r| r.code()).collect();
                    if codes.contains(&Some("ConditionalCheckFailed")) {
                        Err(Cancelled::Conditions(
                            codes
                                .iter()
                                .map(|c| *c == Some("ConditionalCheckFailed"))
                                .collect(),
                        ))
                    } else if codes.contains(&Some("TransactionConflict")) {
                        Err(Cancelled::Contention)
                    } else {
                        Err(Cancelled::Other(StoreError::Unavailable(anyhow::anyhow!(
                            "TransactWriteItems cancelled: {codes:?}"
                        ))))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Err(Cancelled::Contention)
                }
                other => Err(Cancelled::Other(StoreError::Unavailable(anyhow::anyhow!(
                    "TransactWriteItems failed: {other}"
                )))),
            },
            Err(e) => Err(Cancelled::Other(StoreError::Unavailable(
                anyhow::Error::new(e).context("TransactWriteItems failed"),
            ))),
        }
    }

    /// Writes `items` and appends `audit` to its chain, in one transaction (see
    /// [`DynamoDb::transact_chained`]); a failed condition among `items` is the caller's
    /// `Conflict`.
    async fn transact_audited(
        &self,
        items: Vec<TransactWriteItem>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        match self.transact_chained(vec![(items, audit.clone())]).await {
            Ok(()) => Ok(()),
            Err(ChainedError::Conflicts(_)) => Err(StoreError::Conflict),
            Err(ChainedError::Store(e)) => Err(e),
        }
    }

    /// Writes several changes, each with its own audit entry, in one transaction: the changes'
    /// items, their entries linked one after the other to the chain's head, and the head's
    /// move, conditioned on the head not having moved since it was read. Every entry must
    /// belong to the same chain of the same scope (the caller groups them), and everything
    /// must fit in one transaction (100 items, 4 MB). When another writer moved the head first
    /// (or was writing it at the same moment), the entries are linked again to the new head
    /// and the transaction retried with backoff; failed conditions among the changes' own
    /// items are returned as [`ChainedError::Conflicts`] and nothing is written.
    pub(super) async fn transact_chained(
        &self,
        changes: Vec<(Vec<TransactWriteItem>, AuditEntry)>,
    ) -> Result<(), ChainedError> {
        let Some((_, first)) = changes.first() else {
            return Ok(());
        };
        // The changes' own items, before anything is read: a refusal sends nothing.
        self.check_transaction(changes.iter().flat_map(|(items, _)| items))
            .map_err(ChainedError::Store)?;
        let chain = chain_of(&first.target, AUDIT_CHAINS);
        let partition = audit_partition(&first.scope, chain);
        debug_assert!(
            changes
                .iter()
                .all(|(_, e)| e.scope == first.scope && chain_of(&e.target, AUDIT_CHAINS) == chain)
        );
        // Which change each of the transaction's leading items belongs to.
        let owners: Vec<usize> = changes
            .iter()
            .enumerate()
            .flat_map(|(i, (items, _))| std::iter::repeat_n(i, items.len()))
            .collect();
        let store = |e: StoreError| ChainedError::Store(e);
        let lock = self.chain_lock(&partition);
        let _turn = lock.lock().await;
        for attempt in 0..AUDIT_APPEND_ATTEMPTS {
            let cached = (attempt == 0)
                .then(|| self.cached_head(&partition))
                .flatten();
            let head = match cached {
                Some(head) => head,
                None => self.read_head(&partition, chain).await.map_err(store)?,
            };
            let mut transaction: Vec<TransactWriteItem> = changes
                .iter()
                .flat_map(|(items, _)| items.clone())
                .collect();
            let mut last = head.clone();
            for (_, entry) in &changes {
                let chained = ChainedEntry::after(&last, entry.clone());
                transaction.push(self.audit_entry_put(&partition, &chained).map_err(store)?);
                last = chained.head();
            }
            transaction.push(
                self.audit_head_put(&partition, &last, head.seq)
                    .map_err(store)?,
            );
            if head.seq == 0 {
                // A chain's first entry: the scope goes on the list anchoring walks.
                transaction.push(self.scope_put(&first.scope).map_err(store)?);
            }
            match self.transact_detailed(transaction).await {
                Ok(()) => {
                    self.cache_head(&partition, last);
                    return Ok(());
                }
                Err(Cancelled::Conditions(failed))
                    if failed.iter().take(owners.len()).any(|f| *f) =>
                {
                    let mut conflicts: Vec<usize> = failed
                        .iter()
                        .zip(&owners)
                        .filter(|(f, _)| **f)
                        .map(|(_, owner)| *owner)
                        .collect();
                    conflicts.dedup();
                    return Err(ChainedError::Conflicts(conflicts));
                }
                Err(Cancelled::Conditions(_)) | Err(Cancelled::Contention) => {
                    // Someone else appended to this chain first (or was writing its head at
                    // the same moment): read its head again.
                    self.forget_head(&partition);
                    // Exponential backoff with full jitter: 10 ms, 20 ms, ... up to 1 s.
                    let cap = (10u64 << attempt.min(7)).min(1000);
                    let jitter = rand::random::<u64>() % cap.max(1);
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                }
                Err(Cancelled::Other(e)) => {
                    self.forget_head(&partition);
                    return Err(ChainedError::Store(e));
                }
            }
        }
        Err(ChainedError::Store(StoreError::Unavailable(
            anyhow::anyhow!(
                "the audit chain stayed contended for {AUDIT_APPEND_ATTEMPTS} attempts"
            ),
        )))
    }

    /// Writes already-chained entries (an export, in chain order) and their chains' heads back
    /// into an empty audit table, 25 items per request: restoring a log, or seeding a large one
    /// for measurements. Entries keep their numbers and links, so the result verifies exactly
    /// as the log it came from did.
    pub async fn restore_audit(&self, scope: &str, entries: &[ChainedEntry]) -> StoreResult<()> {
        let mut heads: HashMap<u32, ChainHead> = HashMap::new();
        let mut items = Vec::with_capacity(entries.len());
        for entry in entries {
            let partition = audit_partition(scope, entry.chain);
            items.push(self.audit_entry_item(&partition, entry)?);
            let head = heads
                .entry(entry.chain)
                .or_insert_with(|| ChainHead::empty(entry.chain));
            if entry.seq > head.seq {
                *head = entry.head();
            }
        }
        for head in heads.values() {
            items.push(to_item(&HeadItem {
                pk: audit_partition(scope, head.chain),
                sk: HEAD_KEY.to_owned(),
                seq: head.seq,
                hash: head.hash.clone(),
            })?);
        }
        for item in &items {
            self.check_put(&self.tables.audit, item)?;
        }
        for chunk in items.chunks(25) {
            let mut pending: Vec<aws_sdk_dynamodb::types::WriteRequest> = chunk
                .iter()
                .map(|item| {
                    aws_sdk_dynamodb::types::PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| {
                            aws_sdk_dynamodb::types::WriteRequest::builder()
                                .put_request(put)
                                .build()
                        })
                        .map_err(unexpected)
                })
                .collect::<StoreResult<_>>()?;
            // Bounded retries of what DynamoDB leaves unprocessed (throttling).
            for _ in 0..10 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.tables.audit, pending)
                    .send()
                    .await
                    .map_err(|e| {
                        StoreError::Unavailable(
                            anyhow::Error::new(e).context("BatchWriteItem failed"),
                        )
                    })?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.tables.audit))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(anyhow::anyhow!(
                    "BatchWriteItem left items unprocessed"
                )));
            }
        }
        Ok(())
    }

    fn chain_lock(&self, partition: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.chain_locks.lock() else {
            return Arc::new(tokio::sync::Mutex::new(()));
        };
        if locks.len() > 4096 {
            // Forget idle chains' locks (a lock in use is kept alive by its holders).
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks
            .entry(partition.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    fn cached_head(&self, partition: &str) -> Option<ChainHead> {
        self.heads.lock().ok()?.get(partition).cloned()
    }

    fn cache_head(&self, partition: &str, head: ChainHead) {
        if let Ok(mut heads) = self.heads.lock() {
            if heads.len() > 4096 {
                heads.clear();
            }
            heads.insert(partition.to_owned(), head);
        }
    }

    fn forget_head(&self, partition: &str) {
        if let Ok(mut heads) = self.heads.lock() {
            heads.remove(partition);
        }
    }

    async fn read_head(&self, partition: &str, chain: u32) -> StoreResult<ChainHead> {
        let item = self.get(&self.tables.audit, partition, HEAD_KEY).await?;
        Ok(match item {
            Some(item) => {
                let head: HeadItem = from_item(item)?;
                ChainHead {
                    chain,
                    seq: head.seq,
                    hash: head.hash,
                }
            }
            None => ChainHead::empty(chain),
        })
    }

    fn audit_entry_item(&self, partition: &str, entry: &ChainedEntry) -> StoreResult<Item> {
        #[derive(Serialize)]
        struct EntryItem<'a> {
            pk: &'a str,
            sk: String,
            #[serde(flatten)]
            entry: &'a ChainedEntry,
            expires_at: i64,
        }
        to_item(&EntryItem {
            pk: partition,
            sk: entry_key(entry.seq),
            entry,
            expires_at: (entry.entry.at + time::Duration::days(audit_retention_days()))
                .unix_timestamp(),
        })
    }

    fn audit_entry_put(
        &self,
        partition: &str,
        entry: &ChainedEntry,
    ) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.tables.audit)
            .set_item(Some(self.audit_entry_item(partition, entry)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The scope's line in the list of scopes (rewritten as is by each chain's first entry).
    fn scope_put(&self, scope: &str) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.tables.audit)
            .item("pk", s(SCOPES_KEY))
            .item("sk", s(scope))
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The head's move to `head`, conditioned on it still being at `previous`.
    fn audit_head_put(
        &self,
        partition: &str,
        head: &ChainHead,
        previous: u64,
    ) -> StoreResult<TransactWriteItem> {
        let item = to_item(&HeadItem {
            pk: partition.to_owned(),
            sk: HEAD_KEY.to_owned(),
            seq: head.seq,
            hash: head.hash.clone(),
        })?;
        let (condition, value) = if previous == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("seq = :previous", Some(n(previous)))
        };
        let put = Put::builder()
            .table_name(&self.tables.audit)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(
                value.map(|v| HashMap::from([(":previous".to_owned(), v)])),
            )
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs a Query to the end, following pages.
    async fn query_all(
        &self,
        table: &str,
        partition: &str,
        sk_prefix: &str,
        newest_first: bool,
        limit: Option<i32>,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(partition))
                .expression_attribute_values(":prefix", s(sk_prefix))
                .scan_index_forward(!newest_first)
                .set_limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    StoreError::Unavailable(anyhow::Error::new(e).context("Query failed"))
                })?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| items.len() >= l as usize) {
                return Ok(items);
            }
        }
    }

    async fn get(&self, table: &str, partition: &str, sort: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("pk", s(partition))
            .key("sk", s(sort))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                StoreError::Unavailable(anyhow::Error::new(e).context("GetItem failed"))
            })?;
        Ok(out.item)
    }
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn to_item<T: Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(value)
        .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("serialising an item")))
}

fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(|e| {
        StoreError::Unavailable(anyhow::Error::new(e).context("reading a stored item"))
    })
}

fn unexpected(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(anyhow::Error::new(e))
}

/// Condition for optimistic concurrency on a `revision` attribute.
fn revision_condition(expected: Option<u32>) -> (&'static str, Option<AttributeValue>) {
    match expected {
        None => ("attribute_not_exists(pk)", None),
        Some(r) => ("revision = :expected", Some(n(r))),
    }
}

fn put_item(table: &str, item: Item, expected: Option<u32>) -> StoreResult<TransactWriteItem> {
    let (condition, value) = revision_condition(expected);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(
            value.map(|v| HashMap::from([(":expected".to_owned(), v)])),
        )
        .build()
        .map_err(unexpected)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete_item(
    table: &str,
    partition: &str,
    sort: &str,
    revision: u32,
    attribute: &str,
) -> StoreResult<TransactWriteItem> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .key("pk", s(partition))
        .key("sk", s(sort))
        .condition_expression(format!("{attribute} = :expected"))
        .expression_attribute_values(":expected", n(revision))
        .build()
        .map_err(unexpected)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

#[async_trait::async_trait]
impl AuditStore for DynamoDb {
    async fn anchors(&self, scope: &str) -> StoreResult<Vec<SignedAnchor>> {
        let items = self
            .query_all(
                &self.tables.audit,
                &anchor_partition(scope),
                "N#",
                false,
                None,
            )
            .await?;
        items.into_iter().map(anchor_of).collect()
    }

    async fn latest_anchor(&self, scope: &str) -> StoreResult<Option<SignedAnchor>> {
        let items = self
            .query_all(
                &self.tables.audit,
                &anchor_partition(scope),
                "N#",
                true,
                Some(1),
            )
            .await?;
        items.into_iter().next().map(anchor_of).transpose()
    }

    async fn put_anchor(&self, anchor: &SignedAnchor) -> StoreResult<()> {
        #[derive(Serialize)]
        struct AnchorItem<'a> {
            pk: String,
            sk: String,
            anchor: &'a SignedAnchor,
        }
        let item = to_item(&AnchorItem {
            pk: anchor_partition(&anchor.anchor.scope),
            sk: format!("N#{:012}", anchor.anchor.seq),
            anchor,
        })?;
        let request = self
            .client
            .put_item()
            .table_name(&self.tables.audit)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)");
        self.check_put_item(&request)?;
        let result = request.send().await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(StoreError::Unavailable(
                anyhow::Error::new(e).context("PutItem failed"),
            )),
        }
    }

    async fn audit_scopes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<String>, Option<String>)> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.audit)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(SCOPES_KEY))
            .set_exclusive_start_key(after.map(|a| {
                HashMap::from([("pk".to_owned(), s(SCOPES_KEY)), ("sk".to_owned(), s(a))])
            }))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("Query failed")))?;
        let scopes = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get("sk").and_then(|v| v.as_s().ok()).cloned());
        Ok((scopes, next))
    }

    async fn audit_heads(&self, scope: &str) -> StoreResult<Vec<ChainHead>> {
        let reads = (0..AUDIT_CHAINS).map(|chain| async move {
            self.read_head(&audit_partition(scope, chain), chain).await
        });
        futures::future::try_join_all(reads).await
    }

    async fn audit_page(
        &self,
        scope: &str,
        chain: u32,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<StoredLink>, Option<String>)> {
        let partition = audit_partition(scope, chain);
        let out = self
            .client
            .query()
            .table_name(&self.tables.audit)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&partition))
            .set_exclusive_start_key(after.map(|key| {
                HashMap::from([("pk".to_owned(), s(&partition)), ("sk".to_owned(), s(key))])
            }))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("Query failed")))?;
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get("sk").and_then(|v| v.as_s().ok()).cloned());
        let links = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                let key = item.get("sk").and_then(|v| v.as_s().ok()).cloned()?;
                if key == HEAD_KEY {
                    return None;
                }
                let position = key.strip_prefix("E#").and_then(|n| {
                    (n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| n.parse().ok())
                        .flatten()
                });
                let entry =
                    serde_dynamo::from_item::<_, ChainedEntry>(item).map_err(|e| e.to_string());
                Some(StoredLink {
                    key,
                    position,
                    entry,
                })
            })
            .collect();
        Ok((links, next))
    }
}
