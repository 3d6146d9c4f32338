//! Provider configurations: tenant defaults in `T#<tenant>`, an event's own providers and its
//! overrides of tenant providers in `E#<tenant>#<event>`, each under `PROVIDER#<id>`.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{DynamoDb, delete_item, from_item, put_item, to_item};
use crate::domain::audit::AuditEntry;
use crate::domain::provider::{EventProviderEntry, ProviderConfig};
use crate::domain::{EventId, ProviderId, TenantId};
use crate::store::{ExpectedRevision, Owner, ProviderStore, StoreResult};

const PREFIX: &str = "PROVIDER#";

#[derive(Serialize, Deserialize)]
struct ProviderItem<T> {
    pk: String,
    sk: String,
    revision: u32,
    record: T,
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
        owner: &Owner,
        id: &ProviderId,
        revision: u32,
        record: &T,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = to_item(&ProviderItem {
            pk: owner.partition(),
            sk: format!("{PREFIX}{id}"),
            revision,
            record,
        })?;
        self.transact(vec![
            put_item(&self.tables.providers, item, expected)?,
            self.audit_put(audit)?,
        ])
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
        self.put_provider(
            &Owner::Tenant(tenant.clone()),
            &provider.id,
            provider.revision,
            provider,
            expected,
            audit,
        )
        .await
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
        self.put_provider(&owner, entry.id(), entry.revision(), entry, expected, audit)
            .await
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
        self.transact(vec![delete, self.audit_put(audit)?]).await
    }
}
