//! Resolved snapshots under `E#<tenant>#<event>`: immutable versions at `V#<00000001>` and the
//! `ACTIVE` pointer. Creating and activating happen in one transaction with the audit entry.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{DynamoDb, from_item, n, put_item, to_item, unexpected};
use crate::domain::audit::AuditEntry;
use crate::domain::snapshot::{Activation, Snapshot};
use crate::domain::{EventId, TenantId};
use crate::store::{Owner, SnapshotStore, SnapshotSummary, StoreError, StoreResult};

const VERSION_PREFIX: &str = "V#";
const ACTIVE: &str = "ACTIVE";

#[derive(Serialize, Deserialize)]
struct SnapshotItem {
    pk: String,
    sk: String,
    version: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    created_by: String,
    digest: String,
    /// The whole snapshot as JSON: read as a unit, never queried into.
    body: String,
}

/// The pointer item; `Activation`'s own `version` attribute is what activations condition on.
#[derive(Serialize, Deserialize)]
struct ActiveItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    activation: Activation,
}

fn partition(tenant: &TenantId, event: &EventId) -> String {
    Owner::Event(tenant.clone(), event.clone()).partition()
}

fn version_key(version: u32) -> String {
    format!("{VERSION_PREFIX}{version:08}")
}

impl DynamoDb {
    fn activation_put(
        &self,
        pk: &str,
        activation: &Activation,
        previous: Option<u32>,
    ) -> StoreResult<TransactWriteItem> {
        let item = to_item(&ActiveItem {
            pk: pk.to_owned(),
            sk: ACTIVE.to_owned(),
            activation: activation.clone(),
        })?;
        let put = match previous {
            None => Put::builder().condition_expression("attribute_not_exists(pk)"),
            Some(v) => Put::builder()
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(v)),
        };
        let put = put
            .table_name(&self.tables.snapshots)
            .set_item(Some(item))
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[async_trait]
impl SnapshotStore for DynamoDb {
    async fn latest_version(&self, tenant: &TenantId, event: &EventId) -> StoreResult<u32> {
        let items = self
            .query_all(
                &self.tables.snapshots,
                &partition(tenant, event),
                VERSION_PREFIX,
                true,
                Some(1),
            )
            .await?;
        Ok(items
            .first()
            .and_then(|i| i.get("version"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn create_and_activate(
        &self,
        tenant: &TenantId,
        event: &EventId,
        snapshot: &Snapshot,
        previous: Option<u32>,
        audit: &AuditEntry,
    ) -> StoreResult<Activation> {
        let pk = partition(tenant, event);
        // A snapshot too large for one item is refused with the transaction, before it is
        // sent (`StoreError::TooLarge` naming `snapshot`).
        let body = serde_json::to_string(snapshot).map_err(unexpected)?;
        let item = to_item(&SnapshotItem {
            pk: pk.clone(),
            sk: version_key(snapshot.version),
            version: snapshot.version,
            created_at: snapshot.created_at,
            created_by: snapshot.created_by.clone(),
            digest: snapshot.digest.clone(),
            body,
        })?;
        let activation = Activation {
            version: snapshot.version,
            activated_at: snapshot.created_at,
            activated_by: snapshot.created_by.clone(),
        };
        self.transact_audited(
            vec![
                put_item(&self.tables.snapshots, item, None)?,
                self.activation_put(&pk, &activation, previous)?,
            ],
            audit,
        )
        .await?;
        Ok(activation)
    }

    async fn snapshot(
        &self,
        tenant: &TenantId,
        event: &EventId,
        version: u32,
    ) -> StoreResult<Option<Snapshot>> {
        let Some(item) = self
            .get(
                &self.tables.snapshots,
                &partition(tenant, event),
                &version_key(version),
            )
            .await?
        else {
            return Ok(None);
        };
        let item: SnapshotItem = from_item(item)?;
        serde_json::from_str(&item.body)
            .map(Some)
            .map_err(unexpected)
    }

    async fn snapshots(
        &self,
        tenant: &TenantId,
        event: &EventId,
        before: Option<u32>,
        limit: usize,
    ) -> StoreResult<(Vec<SnapshotSummary>, Option<u32>)> {
        let pk = partition(tenant, event);
        let start = before.map(|v| {
            std::collections::HashMap::from([
                ("pk".to_owned(), super::s(&pk)),
                ("sk".to_owned(), super::s(version_key(v))),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.tables.snapshots)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", super::s(&pk))
            .expression_attribute_values(":prefix", super::s(VERSION_PREFIX))
            .projection_expression("version, created_at, created_by, digest")
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("Query failed")))?;
        let page: Vec<SnapshotSummary> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<_>>()?;
        let next = out
            .last_evaluated_key
            .is_some()
            .then(|| page.last().map(|s| s.version))
            .flatten();
        Ok((page, next))
    }

    async fn activation(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> StoreResult<Option<Activation>> {
        let item = self
            .get(&self.tables.snapshots, &partition(tenant, event), ACTIVE)
            .await?;
        item.map(|i| from_item::<ActiveItem>(i).map(|a| a.activation))
            .transpose()
    }

    async fn activate(
        &self,
        tenant: &TenantId,
        event: &EventId,
        version: u32,
        previous: Option<u32>,
        audit: &AuditEntry,
    ) -> StoreResult<Activation> {
        let pk = partition(tenant, event);
        let activation = Activation {
            version,
            activated_at: time::OffsetDateTime::now_utc(),
            activated_by: audit.actor.clone(),
        };
        // The version must exist: a condition check on it in the same transaction.
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.tables.snapshots)
            .key("pk", super::s(&pk))
            .key("sk", super::s(version_key(version)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unexpected)?;
        self.transact_audited(
            vec![
                TransactWriteItem::builder().condition_check(check).build(),
                self.activation_put(&pk, &activation, previous)?,
            ],
            audit,
        )
        .await?;
        Ok(activation)
    }
}
