//! DynamoDB adapters for the configuration ports. Key design (see docs/architecture.md):
//! every layer owner has one partition (`GLOBAL`, `T#<tenant>`, `E#<tenant>#<event>`), so a
//! resolution reads each layer with one Query; current items sort under `CUR#`, history under
//! `VER#`. Conditional writes give optimistic concurrency and idempotency.

mod idempotency;
mod messages;
mod providers;
mod recipients;
mod snapshots;
mod templates;
mod webhook_endpoints;

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StoreError, StoreResult};
use crate::domain::audit::AuditEntry;

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
}

impl DynamoDb {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// The audit entry as a transaction item, so a change and its record land together.
    fn audit_put(&self, entry: &AuditEntry) -> StoreResult<TransactWriteItem> {
        #[derive(Serialize)]
        struct AuditItem<'a> {
            pk: String,
            sk: &'a str,
            #[serde(flatten)]
            entry: &'a AuditEntry,
        }
        let item = to_item(&AuditItem {
            pk: format!("A#{}", entry.scope),
            sk: &entry.id,
            entry,
        })?;
        let put = Put::builder()
            .table_name(&self.tables.audit)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<()> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(c)
                    if c.cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Err(StoreError::Conflict)
                }
                other => Err(StoreError::Unavailable(anyhow::anyhow!(
                    "TransactWriteItems failed: {other}"
                ))),
            },
            Err(e) => Err(StoreError::Unavailable(
                anyhow::Error::new(e).context("TransactWriteItems failed"),
            )),
        }
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
