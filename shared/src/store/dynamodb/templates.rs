//! Templates, brand and event settings of one layer. Current items (`CUR#...`) are what a layer
//! query reads; every template version is also kept immutably under `VER#TPL#...`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{DynamoDb, Item, delete_item, from_item, n, put_item, to_item, unexpected};
use crate::domain::audit::AuditEntry;
use crate::domain::brand::Brand;
use crate::domain::resolution::EventSettings;
use crate::domain::template::TemplateVersion;
use crate::domain::{Category, Channel, EventId, TenantId};
use crate::store::{LayerContent, Owner, Revisioned, StoreResult, TemplateStore};

const CURRENT: &str = "CUR#";
const CURRENT_TEMPLATE: &str = "CUR#TPL#";
const BRAND: &str = "CUR#BRAND";
const SETTINGS: &str = "CUR#SETTINGS";

fn head_key(category: Category, channel: Channel) -> String {
    format!("{CURRENT_TEMPLATE}{category}#{channel}")
}

fn versions_prefix(category: Category, channel: Channel) -> String {
    format!("VER#TPL#{category}#{channel}#")
}

#[derive(Serialize, Deserialize)]
struct TemplateItem<T> {
    pk: String,
    sk: String,
    version: u32,
    record: T,
}

#[derive(Serialize, Deserialize)]
struct RevisionedItem<T> {
    pk: String,
    sk: String,
    revision: u32,
    record: T,
}

fn template_from(item: Item) -> StoreResult<TemplateVersion> {
    from_item::<TemplateItem<TemplateVersion>>(item).map(|t| t.record)
}

#[async_trait]
impl TemplateStore for DynamoDb {
    async fn layer(&self, owner: &Owner) -> StoreResult<LayerContent> {
        let items = self
            .query_all(
                &self.tables.templates,
                &owner.partition(),
                CURRENT,
                false,
                None,
            )
            .await?;
        let mut layer = LayerContent::default();
        for item in items {
            let sk = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            if sk.starts_with(CURRENT_TEMPLATE) {
                layer.templates.push(template_from(item)?);
            } else if sk == BRAND {
                let b: RevisionedItem<Brand> = from_item(item)?;
                layer.brand = Some(Revisioned {
                    value: b.record,
                    revision: b.revision,
                });
            } else if sk == SETTINGS {
                let s: RevisionedItem<EventSettings> = from_item(item)?;
                layer.settings = Some(Revisioned {
                    value: s.record,
                    revision: s.revision,
                });
            }
        }
        Ok(layer)
    }

    async fn current_template(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
    ) -> StoreResult<Option<TemplateVersion>> {
        let item = self
            .get(
                &self.tables.templates,
                &owner.partition(),
                &head_key(category, channel),
            )
            .await?;
        item.map(template_from).transpose()
    }

    async fn template_versions(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        before: Option<u32>,
        limit: usize,
    ) -> StoreResult<(Vec<TemplateVersion>, Option<u32>)> {
        let pk = owner.partition();
        let prefix = versions_prefix(category, channel);
        let start = before.map(|v| {
            std::collections::HashMap::from([
                ("pk".to_owned(), super::s(&pk)),
                ("sk".to_owned(), super::s(format!("{prefix}{v:06}"))),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.tables.templates)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", super::s(&pk))
            .expression_attribute_values(":prefix", super::s(&prefix))
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| {
                crate::store::StoreError::Unavailable(anyhow::Error::new(e).context("Query failed"))
            })?;
        let page: Vec<TemplateVersion> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(template_from)
            .collect::<StoreResult<_>>()?;
        let next = out
            .last_evaluated_key
            .is_some()
            .then(|| page.last().map(|t| t.version))
            .flatten();
        Ok((page, next))
    }

    async fn latest_version(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
    ) -> StoreResult<u32> {
        let newest = self
            .query_all(
                &self.tables.templates,
                &owner.partition(),
                &versions_prefix(category, channel),
                true,
                Some(1),
            )
            .await?;
        Ok(newest
            .first()
            .and_then(|i| i.get("version"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn put_template(
        &self,
        owner: &Owner,
        template: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (category, channel) = (template.category, template.channel);
        let record = template;
        let version_item = to_item(&TemplateItem {
            pk: owner.partition(),
            sk: format!(
                "{}{:06}",
                versions_prefix(category, channel),
                template.version
            ),
            version: template.version,
            record,
        })?;
        let head_item = to_item(&TemplateItem {
            pk: owner.partition(),
            sk: head_key(category, channel),
            version: template.version,
            record,
        })?;
        let version_put = put_item(&self.tables.templates, version_item, None)?;
        // The head may be absent (never set, or removed); if present it must be the version
        // this one follows, so two concurrent editors cannot both win.
        let head_put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.tables.templates)
            .set_item(Some(head_item))
            .condition_expression("attribute_not_exists(pk) OR version = :previous")
            .expression_attribute_values(":previous", n(template.version.saturating_sub(1)))
            .build()
            .map_err(unexpected)?;
        let head_put = aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(head_put)
            .build();
        self.transact_audited(vec![version_put, head_put], audit)
            .await
    }

    async fn remove_template(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        version: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let delete = delete_item(
            &self.tables.templates,
            &owner.partition(),
            &head_key(category, channel),
            version,
            "version",
        )?;
        self.transact_audited(vec![delete], audit).await
    }

    async fn put_brand(
        &self,
        owner: &Owner,
        brand: &Revisioned<Brand>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = to_item(&RevisionedItem {
            pk: owner.partition(),
            sk: BRAND.to_owned(),
            revision: brand.revision,
            record: &brand.value,
        })?;
        let expected = brand.revision.checked_sub(1).filter(|r| *r > 0);
        self.transact_audited(
            vec![put_item(&self.tables.templates, item, expected)?],
            audit,
        )
        .await
    }

    async fn remove_brand(
        &self,
        owner: &Owner,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let delete = delete_item(
            &self.tables.templates,
            &owner.partition(),
            BRAND,
            revision,
            "revision",
        )?;
        self.transact_audited(vec![delete], audit).await
    }

    async fn put_settings(
        &self,
        tenant: &TenantId,
        event: &EventId,
        settings: &Revisioned<EventSettings>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let owner = Owner::Event(tenant.clone(), event.clone());
        let item = to_item(&RevisionedItem {
            pk: owner.partition(),
            sk: SETTINGS.to_owned(),
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
