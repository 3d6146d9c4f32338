//! A tenant's own settings, one item in its Templates partition (`pk` = `T#<tenant>`,
//! `sk` = `TENANT_SETTINGS`): outside `CUR#`, so layer queries (resolution) never read it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{DynamoDb, from_item, put_item, to_item};
use crate::domain::TenantId;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant_settings::TenantSettings;
use crate::store::{Owner, Revisioned, StoreResult, TenantSettingsStore};

const TENANT_SETTINGS: &str = "TENANT_SETTINGS";

#[derive(Serialize, Deserialize)]
struct SettingsItem<T> {
    pk: String,
    sk: String,
    revision: u32,
    record: T,
}

#[async_trait]
impl TenantSettingsStore for DynamoDb {
    async fn tenant_settings(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Option<Revisioned<TenantSettings>>> {
        let partition = Owner::Tenant(tenant.clone()).partition();
        let item = self
            .get(&self.tables.templates, &partition, TENANT_SETTINGS)
            .await?;
        item.map(|item| {
            let item: SettingsItem<TenantSettings> = from_item(item)?;
            Ok(Revisioned {
                value: item.record,
                revision: item.revision,
            })
        })
        .transpose()
    }

    async fn put_tenant_settings(
        &self,
        tenant: &TenantId,
        settings: &Revisioned<TenantSettings>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = to_item(&SettingsItem {
            pk: Owner::Tenant(tenant.clone()).partition(),
            sk: TENANT_SETTINGS.to_owned(),
            revision: settings.revision,
            record: &settings.value,
        })?;
        let expected = settings.revision.checked_sub(1).filter(|r| *r > 0);
        self.transact_audited(
            vec![put_item(&self.tables.templates, item, expected)?],
            audit,
        )
        .await
    }
}
