//! Templates, brand and event settings of one layer. Current items (`CUR#...`) are what a layer
//! query reads; every template version is also kept under `VER#TPL#...` (its content immutable,
//! its state moving once from submitted to published or rejected). A version waiting for review
//! also has a `CUR#PENDING#...` item, so the same layer query lists what awaits approval.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};

use super::{DynamoDb, Item, delete_item, from_item, n, put_item, to_item, unexpected};
use crate::domain::audit::AuditEntry;
use crate::domain::brand::Brand;
use crate::domain::resolution::EventSettings;
use crate::domain::template::{TemplateState, TemplateVersion};
use crate::domain::{Category, Channel, EventId, TenantId};
use crate::store::{LayerContent, Owner, Revisioned, StoreResult, TemplateStore};

const CURRENT: &str = "CUR#";
const CURRENT_TEMPLATE: &str = "CUR#TPL#";
const PENDING_TEMPLATE: &str = "CUR#PENDING#TPL#";
const BRAND: &str = "CUR#BRAND";
const SETTINGS: &str = "CUR#SETTINGS";

fn head_key(category: Category, channel: Channel) -> String {
    format!("{CURRENT_TEMPLATE}{category}#{channel}")
}

fn versions_prefix(category: Category, channel: Channel) -> String {
    format!("VER#TPL#{category}#{channel}#")
}

fn version_key(category: Category, channel: Channel, version: u32) -> String {
    format!("{}{version:06}", versions_prefix(category, channel))
}

fn pending_key(category: Category, channel: Channel, version: u32) -> String {
    format!("{PENDING_TEMPLATE}{category}#{channel}#{version:06}")
}

#[derive(Serialize, Deserialize)]
struct TemplateItem<T> {
    pk: String,
    sk: String,
    version: u32,
    /// The record's state, outside it so conditions can read it (items written before
    /// approvals existed have none: published).
    #[serde(default)]
    state: TemplateState,
    record: T,
}

impl<'a> TemplateItem<&'a TemplateVersion> {
    fn of(owner: &Owner, sk: String, template: &'a TemplateVersion) -> Self {
        TemplateItem {
            pk: owner.partition(),
            sk,
            version: template.version,
            state: template.state,
            record: template,
        }
    }
}

/// The stored item of `template` under sort key `sk` in `owner`'s partition.
fn template_item(owner: &Owner, sk: String, template: &TemplateVersion) -> StoreResult<Item> {
    to_item(&TemplateItem::of(owner, sk, template))
}

/// A put of the layer's head for `template`, only over an older version (or none): a version
/// published meanwhile by someone else is never replaced by an older one.
fn head_put(
    table: &str,
    owner: &Owner,
    template: &TemplateVersion,
) -> StoreResult<TransactWriteItem> {
    let item = template_item(
        owner,
        head_key(template.category, template.channel),
        template,
    )?;
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk) OR version < :version")
        .expression_attribute_values(":version", n(template.version))
        .build()
        .map_err(unexpected)?;
    Ok(TransactWriteItem::builder().put(put).build())
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
            } else if sk.starts_with(PENDING_TEMPLATE) {
                layer.pending.push(template_from(item)?);
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

    async fn template_version(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        version: u32,
    ) -> StoreResult<Option<TemplateVersion>> {
        let item = self
            .get(
                &self.tables.templates,
                &owner.partition(),
                &version_key(category, channel, version),
            )
            .await?;
        item.map(template_from).transpose()
    }

    async fn put_template(
        &self,
        owner: &Owner,
        template: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (category, channel) = (template.category, template.channel);
        let version_item = template_item(
            owner,
            version_key(category, channel, template.version),
            template,
        )?;
        // The version is new, and the head (absent: never set, or removed) older than it, so
        // two concurrent editors cannot both win.
        let version_put = put_item(&self.tables.templates, version_item, None)?;
        let head_put = head_put(&self.tables.templates, owner, template)?;
        self.transact_audited(vec![version_put, head_put], audit)
            .await
    }

    async fn submit_template(
        &self,
        owner: &Owner,
        template: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (category, channel) = (template.category, template.channel);
        let version_item = template_item(
            owner,
            version_key(category, channel, template.version),
            template,
        )?;
        let pending_item = template_item(
            owner,
            pending_key(category, channel, template.version),
            template,
        )?;
        let writes = vec![
            put_item(&self.tables.templates, version_item, None)?,
            put_item(&self.tables.templates, pending_item, None)?,
        ];
        self.transact_audited(writes, audit).await
    }

    async fn review_template(
        &self,
        owner: &Owner,
        reviewed: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (category, channel) = (reviewed.category, reviewed.channel);
        let version_item = template_item(
            owner,
            version_key(category, channel, reviewed.version),
            reviewed,
        )?;
        // Still submitted: of two reviews at once, one is recorded and the other conflicts.
        let version_put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.tables.templates)
            .set_item(Some(version_item))
            .condition_expression("#state = :submitted")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":submitted", super::s(TemplateState::Submitted.as_str()))
            .build()
            .map_err(unexpected)?;
        let pending_delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.tables.templates)
            .key("pk", super::s(owner.partition()))
            .key(
                "sk",
                super::s(pending_key(category, channel, reviewed.version)),
            )
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unexpected)?;
        let mut writes = vec![
            TransactWriteItem::builder().put(version_put).build(),
            TransactWriteItem::builder().delete(pending_delete).build(),
        ];
        if reviewed.state == TemplateState::Published {
            writes.push(head_put(&self.tables.templates, owner, reviewed)?);
        }
        self.transact_audited(writes, audit).await
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
