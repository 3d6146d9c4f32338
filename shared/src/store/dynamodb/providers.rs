//! Provider configurations: tenant defaults in `T#<tenant>`, an event's own providers and its
//! overrides of tenant providers in `E#<tenant>#<event>`, each under `PROVIDER#<id>`. A
//! configuration's receipt route token is a top-level attribute feeding the sparse GSI
//! `by_receipt_token`, which the delivery-webhooks function finds configurations by.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{DynamoDb, delete_item, from_item, put_item, s, to_item};
use crate::domain::audit::AuditEntry;
use crate::domain::provider::{EventProviderEntry, ProviderConfig};
use crate::domain::receipt::ReceiptRoute;
use crate::domain::{EventId, ProviderId, TenantId};
use crate::store::{ExpectedRevision, Owner, ProviderStore, StoreError, StoreResult};

const PREFIX: &str = "PROVIDER#";

#[derive(Serialize, Deserialize)]
struct ProviderItem<T> {
    pk: String,
    sk: String,
    revision: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receipt_token: Option<String>,
    record: T,
}

impl<T> ProviderItem<T> {
    fn new(
        owner: &Owner,
        id: &ProviderId,
        revision: u32,
        receipts: Option<&ReceiptRoute>,
        record: T,
    ) -> Self {
        Self {
            pk: owner.partition(),
            sk: format!("{PREFIX}{id}"),
            revision,
            receipt_token: receipts.map(|r| r.token.clone()),
            record,
        }
    }
}

impl DynamoDb {
    async fn providers_in<T: DeserializeOwned>(&self, owner: &Owner) -> StoreResult<Vec<T>> {
        let items = self
            .query_all(
                &self.tables.providers,
                &owner.partition(),
                PREFIX,
                false,
                None,
            )
            .await?;
        items
            .into_iter()
            .map(|i| from_item::<ProviderItem<T>>(i).map(|p| p.record))
            .collect()
    }

    async fn provider_in<T: DeserializeOwned>(
        &self,
        owner: &Owner,
        id: &ProviderId,
    ) -> StoreResult<Option<T>> {
        let item = self
            .get(
                &self.tables.providers,
                &owner.partition(),
                &format!("{PREFIX}{id}"),
            )
            .await?;
        item.map(|i| from_item::<ProviderItem<T>>(i).map(|p| p.record))
            .transpose()
    }

    async fn put_provider<T: Serialize + Sync>(
        &self,
        item: ProviderItem<&T>,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = to_item(&item)?;
        self.transact_audited(
            vec![put_item(&self.tables.providers, item, expected)?],
            audit,
        )
        .await
    }
}

#[async_trait]
impl ProviderStore for DynamoDb {
    async fn tenant_providers(&self, tenant: &TenantId) -> StoreResult<Vec<ProviderConfig>> {
        self.providers_in(&Owner::Tenant(tenant.clone())).await
    }

    async fn event_providers(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> StoreResult<Vec<EventProviderEntry>> {
        self.providers_in(&Owner::Event(tenant.clone(), event.clone()))
            .await
    }

    async fn tenant_provider(
        &self,
        tenant: &TenantId,
        id: &ProviderId,
    ) -> StoreResult<Option<ProviderConfig>> {
        self.provider_in(&Owner::Tenant(tenant.clone()), id).await
    }

    async fn event_provider(
        &self,
        tenant: &TenantId,
        event: &EventId,
        id: &ProviderId,
    ) -> StoreResult<Option<EventProviderEntry>> {
        self.provider_in(&Owner::Event(tenant.clone(), event.clone()), id)
            .await
    }

    async fn put_tenant_provider(
        &self,
        tenant: &TenantId,
        provider: &ProviderConfig,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = ProviderItem::new(
            &Owner::Tenant(tenant.clone()),
            &provider.id,
            provider.revision,
            provider.receipts.as_ref(),
            provider,
        );
        self.put_provider(item, expected, audit).await
    }

    async fn put_event_provider(
        &self,
        tenant: &TenantId,
        event: &EventId,
        entry: &EventProviderEntry,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let owner = Owner::Event(tenant.clone(), event.clone());
        let receipts = match entry {
            EventProviderEntry::Own(p) => p.receipts.as_ref(),
            EventProviderEntry::Override(_) => None,
        };
        let item = ProviderItem::new(&owner, entry.id(), entry.revision(), receipts, entry);
        self.put_provider(item, expected, audit).await
    }

    async fn by_receipt_token(
        &self,
        token: &str,
    ) -> StoreResult<Option<(TenantId, ProviderConfig)>> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.providers)
            .index_name("by_receipt_token")
            .key_condition_expression("receipt_token = :token")
            .expression_attribute_values(":token", s(token))
            .limit(2)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(anyhow::Error::new(e).context("Query failed")))?;
        let Some(item) = out.items.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let pk = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let config = if pk.starts_with("E#") {
            match from_item::<ProviderItem<EventProviderEntry>>(item)?.record {
                EventProviderEntry::Own(p) => *p,
                EventProviderEntry::Override(_) => return Ok(None),
            }
        } else {
            from_item::<ProviderItem<ProviderConfig>>(item)?.record
        };
        // `T#<tenant>` or `E#<tenant>#<event>`.
        let tenant = pk
            .split('#')
            .nth(1)
            .and_then(|t| t.parse::<TenantId>().ok())
            .ok_or_else(|| {
                StoreError::Unavailable(anyhow::anyhow!("a provider item in partition {pk:?}"))
            })?;
        // The index is eventually consistent and tokens are random: a mismatch is corruption.
        if config.receipts.as_ref().map(|r| r.token.as_str()) != Some(token) {
            return Ok(None);
        }
        Ok(Some((tenant, config)))
    }

    async fn delete_provider(
        &self,
        owner: &Owner,
        id: &ProviderId,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let delete = delete_item(
            &self.tables.providers,
            &owner.partition(),
            &format!("{PREFIX}{id}"),
            revision,
            "revision",
        )?;
        self.transact_audited(vec![delete], audit).await
    }
}
