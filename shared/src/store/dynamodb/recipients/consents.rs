//! The consent ledger and preferences, in the recipient's partition `R#<tenant>#<recipient key>`
//! beside the blocks, so one Query reads everything held on a person:
//!
//! - `CONSENT#LOG#<record id>`: every decision, written once and never changed (record ids are
//!   ULIDs, so the history reads back in time order);
//! - `CONSENT#CUR#<channel>#<scope>`: the decision in force, replaced only by a newer record
//!   (a condition on the record id);
//! - `PREFERENCES`: the preferences, with a revision for optimistic concurrency.
//!
//! Each change is one transaction with its audit entry. Sending (the send path, then dispatch
//! again) reads the blocks, the preferences and the current decisions it needs with one
//! BatchGetItem per 100 keys.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::super::{DynamoDb, Item, from_item, put_item, s, to_item, unexpected};
use super::{BATCH_KEYS, BlockItem, partition, sort};
use crate::domain::audit::AuditEntry;
use crate::domain::consent::{ConsentRecord, ConsentScope};
use crate::domain::preferences::RecipientPreferences;
use crate::domain::suppression::BlockKind;
use crate::domain::{Category, Channel, TenantId};
use crate::store::{
    ConsentStore, LedgerChange, LedgerErasure, MAX_ERASURE_ITEMS, RecipientLedger, Standing,
    StoreError, StoreResult,
};

const HISTORY: &str = "CONSENT#LOG#";
const CURRENT: &str = "CONSENT#CUR#";
const PREFERENCES: &str = "PREFERENCES";
/// Pages of one recipient's partition read before giving up (1 MB each: far beyond any person).
const MAX_PAGES: usize = 20;

#[derive(Serialize, Deserialize)]
struct ConsentItem<R> {
    pk: String,
    sk: String,
    recipient_key: String,
    /// The record's [`ConsentRecord::order_key`], top-level for the "only a newer decision
    /// replaces it" condition.
    recorded: String,
    record: R,
}

#[derive(Serialize, Deserialize)]
struct PreferencesItem<P> {
    pk: String,
    sk: String,
    recipient_key: String,
    /// Top-level for the optimistic-concurrency condition.
    revision: u32,
    value: P,
}

fn current_key(channel: Channel, scope: ConsentScope) -> String {
    format!("{CURRENT}{}#{}", channel.as_str(), scope.as_str())
}

/// The items a send of `category` on `channel` needs: the decisions about the category and
/// about its class.
fn covering_keys(channel: Channel, category: Category) -> [String; 2] {
    [
        current_key(channel, ConsentScope::Category(category)),
        current_key(channel, ConsentScope::Class(category.class())),
    ]
}

impl DynamoDb {
    fn consent_puts(
        &self,
        pk: &str,
        recipient_key: &str,
        consents: &[ConsentRecord],
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let mut items = Vec::with_capacity(consents.len() * 2);
        // One transaction may touch an item once: the newest decision per channel and scope.
        let mut newest: HashMap<(Channel, ConsentScope), &ConsentRecord> = HashMap::new();
        for record in consents {
            let slot = newest
                .entry((record.channel, record.scope))
                .or_insert(record);
            if record.supersedes(slot) {
                *slot = record;
            }
            let history = to_item(&ConsentItem {
                pk: pk.to_owned(),
                sk: format!("{HISTORY}{}", record.id),
                recipient_key: recipient_key.to_owned(),
                recorded: record.order_key(),
                record,
            })?;
            items.push(put_item(&self.tables.recipients, history, None)?);
        }
        for ((channel, scope), record) in newest {
            let current = to_item(&ConsentItem {
                pk: pk.to_owned(),
                sk: current_key(channel, scope),
                recipient_key: recipient_key.to_owned(),
                recorded: record.order_key(),
                record,
            })?;
            let put = Put::builder()
                .table_name(&self.tables.recipients)
                .set_item(Some(current))
                .condition_expression("attribute_not_exists(pk) OR #recorded < :recorded")
                .expression_attribute_names("#recorded", "recorded")
                .expression_attribute_values(":recorded", s(record.order_key()))
                .build()
                .map_err(unexpected)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(items)
    }
}

#[async_trait]
impl ConsentStore for DynamoDb {
    async fn record(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        change: &LedgerChange,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let pk = partition(tenant, recipient_key);
        let mut items = self.consent_puts(&pk, recipient_key, &change.consents)?;
        if let Some(preferences) = &change.preferences {
            let item = to_item(&PreferencesItem {
                pk: pk.clone(),
                sk: PREFERENCES.to_owned(),
                recipient_key: recipient_key.to_owned(),
                revision: preferences.revision,
                value: preferences,
            })?;
            let expected = preferences.revision.checked_sub(1).filter(|r| *r > 0);
            items.push(put_item(&self.tables.recipients, item, expected)?);
        }
        if items.is_empty() {
            return Ok(());
        }
        self.transact_audited(items, audit).await
    }

    async fn erase_ledger(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        erasure: &LedgerErasure,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let pk = partition(tenant, recipient_key);
        let mut items = Vec::new();
        for record in &erasure.history {
            let item = to_item(&ConsentItem {
                pk: pk.clone(),
                sk: format!("{HISTORY}{}", record.id),
                recipient_key: recipient_key.to_owned(),
                recorded: record.order_key(),
                record,
            })?;
            let put = Put::builder()
                .table_name(&self.tables.recipients)
                .set_item(Some(item))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(unexpected)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for record in &erasure.consents {
            // Only over the decision read: a newer one recorded meanwhile is a conflict.
            let item = to_item(&ConsentItem {
                pk: pk.clone(),
                sk: current_key(record.channel, record.scope),
                recipient_key: recipient_key.to_owned(),
                recorded: record.order_key(),
                record,
            })?;
            let put = Put::builder()
                .table_name(&self.tables.recipients)
                .set_item(Some(item))
                .condition_expression("#recorded = :recorded")
                .expression_attribute_names("#recorded", "recorded")
                .expression_attribute_values(":recorded", s(record.order_key()))
                .build()
                .map_err(unexpected)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(revision) = erasure.preferences_revision {
            let delete = Delete::builder()
                .table_name(&self.tables.recipients)
                .key("pk", s(&pk))
                .key("sk", s(PREFERENCES))
                .condition_expression("revision = :revision")
                .expression_attribute_values(":revision", super::super::n(revision))
                .build()
                .map_err(unexpected)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        // Each part with an audit entry: the earlier ones `<action>_part` ("part i of n"), the
        // last with `audit` itself, so an erasure cut off midway leaves its trace in the log.
        // Each part is a rewrite of what it was (or a delete), so writing one again is harmless.
        let mut parts: Vec<Vec<TransactWriteItem>> = items
            .chunks(MAX_ERASURE_ITEMS)
            .map(<[TransactWriteItem]>::to_vec)
            .collect();
        let last = parts.pop().unwrap_or_default();
        let count = parts.len() + 1;
        for (i, part) in parts.into_iter().enumerate() {
            let mut entry = audit.clone();
            entry.id = ulid::Ulid::new().to_string();
            entry.action = format!("{}_part", audit.action);
            entry.after = Some(format!("part {} of {count}", i + 1));
            self.transact_audited(part, &entry).await?;
        }
        self.transact_audited(last, audit).await
    }

    async fn ledger(&self, tenant: &TenantId, recipient_key: &str) -> StoreResult<RecipientLedger> {
        let pk = partition(tenant, recipient_key);
        let mut ledger = RecipientLedger::default();
        let mut start = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .query()
                .table_name(&self.tables.recipients)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    StoreError::Unavailable(anyhow::Error::new(e).context("Query failed"))
                })?;
            for item in out.items.unwrap_or_default() {
                read_into(&mut ledger, item)?;
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(ledger);
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "a recipient's partition is larger than {MAX_PAGES} pages"
        )))
    }

    async fn standings(
        &self,
        tenant: &TenantId,
        asked: &[(Channel, Category, String)],
    ) -> StoreResult<HashMap<String, Standing>> {
        let mut keys: Vec<Item> = Vec::with_capacity(asked.len() * 5);
        let mut seen = HashSet::new();
        for (channel, category, key) in asked {
            let pk = partition(tenant, key);
            let [by_category, by_class] = covering_keys(*channel, *category);
            let [opted_out, suppressed] =
                [BlockKind::OptedOut, BlockKind::Suppressed].map(|kind| sort(*channel, kind));
            for sk in [
                PREFERENCES.to_owned(),
                by_category,
                by_class,
                opted_out,
                suppressed,
            ] {
                if seen.insert((pk.clone(), sk.clone())) {
                    keys.push(HashMap::from([
                        ("pk".to_owned(), s(pk.clone())),
                        ("sk".to_owned(), s(sk)),
                    ]));
                }
            }
        }
        let lookups = keys
            .chunks(BATCH_KEYS)
            .map(|chunk| self.batch_get(chunk.to_vec()));
        let mut standings: HashMap<String, Standing> = HashMap::new();
        for items in futures::future::try_join_all(lookups).await? {
            for item in items {
                let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned();
                match sk.as_deref() {
                    Some(PREFERENCES) => {
                        let item: PreferencesItem<RecipientPreferences> = from_item(item)?;
                        standings.entry(item.recipient_key).or_default().preferences =
                            Some(item.value.preferences);
                    }
                    Some(sk) if sk.starts_with(CURRENT) => {
                        let item: ConsentItem<ConsentRecord> = from_item(item)?;
                        standings
                            .entry(item.recipient_key)
                            .or_default()
                            .consents
                            .push(item.record);
                    }
                    Some(sk) if sk.starts_with("BLOCK#") => {
                        let item: BlockItem = from_item(item)?;
                        standings
                            .entry(item.recipient_key)
                            .or_default()
                            .blocks
                            .push((item.channel, item.block.kind));
                    }
                    _ => {}
                }
            }
        }
        Ok(standings)
    }
}

/// Sorts one item of a recipient's partition into the ledger; items of kinds this version does
/// not know are left alone.
fn read_into(ledger: &mut RecipientLedger, item: Item) -> StoreResult<()> {
    let sk = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    if sk.starts_with(HISTORY) {
        let item: ConsentItem<ConsentRecord> = from_item(item)?;
        ledger.history.push(item.record);
    } else if sk.starts_with(CURRENT) {
        let item: ConsentItem<ConsentRecord> = from_item(item)?;
        ledger.consents.push(item.record);
    } else if sk == PREFERENCES {
        let item: PreferencesItem<RecipientPreferences> = from_item(item)?;
        ledger.preferences = Some(item.value);
    } else if sk.starts_with("BLOCK#") {
        let item: BlockItem = from_item(item)?;
        ledger.blocks.push((item.channel, item.block));
    }
    Ok(())
}
