//! Webhook endpoints: one item per endpoint, `pk` = `T#<tenant>`, `sk` = the endpoint id.
//! `active`, `revision`, `config` (what the tenant set, with the sealed secret) and `health`
//! (the worker's bookkeeping) are top-level attributes, so the API rewrites `config` under a
//! revision condition while the worker updates `health` in place, and neither loses the other's
//! writes.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{DynamoDb, delete_item, from_item, n, put_item, s, to_item, unexpected};
use crate::domain::TenantId;
use crate::domain::audit::AuditEntry;
use crate::domain::webhook_endpoint::{
    DeliveryHealth, EndpointConfig, WebhookEndpoint, WebhookEndpointId,
};
use crate::store::{StoreError, StoreResult, WebhookEndpointStore};

#[derive(Serialize, Deserialize)]
struct EndpointItem {
    pk: String,
    sk: String,
    id: WebhookEndpointId,
    active: bool,
    revision: u32,
    config: EndpointConfig,
    #[serde(default)]
    health: DeliveryHealth,
}

fn partition(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

fn item_of(tenant: &TenantId, endpoint: &WebhookEndpoint) -> EndpointItem {
    EndpointItem {
        pk: partition(tenant),
        sk: endpoint.id.to_string(),
        id: endpoint.id.clone(),
        active: endpoint.active,
        revision: endpoint.revision,
        config: endpoint.config.clone(),
        health: endpoint.health.clone(),
    }
}

fn endpoint_of(item: super::Item) -> StoreResult<WebhookEndpoint> {
    let item: EndpointItem = from_item(item)?;
    Ok(WebhookEndpoint {
        id: item.id,
        active: item.active,
        revision: item.revision,
        config: item.config,
        health: item.health,
    })
}

fn stamp(at: OffsetDateTime) -> StoreResult<aws_sdk_dynamodb::types::AttributeValue> {
    Ok(s(at.format(&Rfc3339).map_err(unexpected)?))
}

fn attribute<T: Serialize>(value: &T) -> StoreResult<aws_sdk_dynamodb::types::AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(unexpected)
}

impl DynamoDb {
    /// An UpdateItem on an existing endpoint, health attribute names bound.
    fn endpoint_update(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.tables.webhook_endpoints)
            .key("pk", s(partition(tenant)))
            .key("sk", s(id.as_str()))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#health", "health")
    }
}

#[async_trait]
impl WebhookEndpointStore for DynamoDb {
    async fn endpoints(&self, tenant: &TenantId) -> StoreResult<Vec<WebhookEndpoint>> {
        self.query_all(
            &self.tables.webhook_endpoints,
            &partition(tenant),
            "ep_",
            false,
            None,
        )
        .await?
        .into_iter()
        .map(endpoint_of)
        .collect()
    }

    async fn endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        self.get(
            &self.tables.webhook_endpoints,
            &partition(tenant),
            id.as_str(),
        )
        .await?
        .map(endpoint_of)
        .transpose()
    }

    async fn create_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = to_item(&item_of(tenant, endpoint))?;
        self.transact_audited(
            vec![put_item(&self.tables.webhook_endpoints, item, None)?],
            audit,
        )
        .await
    }

    async fn update_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        expected: u32,
        reset_health: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        // It rewrites everything of the endpoint outside the health's room: measured whole.
        self.check_put(
            &self.tables.webhook_endpoints,
            &to_item(&item_of(tenant, endpoint))?,
        )?;
        let mut expression =
            String::from("SET #active = :active, #revision = :revision, #config = :config");
        let mut update = Update::builder()
            .table_name(&self.tables.webhook_endpoints)
            .key("pk", s(partition(tenant)))
            .key("sk", s(endpoint.id.as_str()))
            .condition_expression("#revision = :expected")
            .expression_attribute_names("#active", "active")
            .expression_attribute_names("#revision", "revision")
            .expression_attribute_names("#config", "config")
            .expression_attribute_values(
                ":active",
                aws_sdk_dynamodb::types::AttributeValue::Bool(endpoint.active),
            )
            .expression_attribute_values(":revision", n(endpoint.revision))
            .expression_attribute_values(":config", attribute(&endpoint.config)?)
            .expression_attribute_values(":expected", n(expected));
        if reset_health {
            expression.push_str(", #health = :health");
            update = update
                .expression_attribute_names("#health", "health")
                .expression_attribute_values(":health", attribute(&endpoint.health)?);
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(unexpected)?;
        self.transact_audited(
            vec![TransactWriteItem::builder().update(update).build()],
            audit,
        )
        .await
    }

    async fn delete_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let delete = delete_item(
            &self.tables.webhook_endpoints,
            &partition(tenant),
            id.as_str(),
            revision,
            "revision",
        )?;
        self.transact_audited(vec![delete], audit).await
    }

    async fn record_success(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let request = self
            .endpoint_update(tenant, id)
            .update_expression(
                "SET #health.consecutive_failures = :zero, #health.last_success_at = :at \
                 REMOVE #health.failing_since",
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", stamp(at)?);
        self.check_update_item(&request)?;
        let result = request.send().await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(StoreError::Unavailable(
                anyhow::Error::new(e).context("UpdateItem failed"),
            )),
        }
    }

    async fn record_failure(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<DeliveryHealth>> {
        let request = self
            .endpoint_update(tenant, id)
            .update_expression(
                "SET #health.consecutive_failures = if_not_exists(#health.consecutive_failures, :zero) + :one, \
                 #health.failing_since = if_not_exists(#health.failing_since, :at), \
                 #health.last_failure_at = :at",
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", stamp(at)?)
            .return_values(ReturnValue::AllNew);
        self.check_update_item(&request)?;
        let result = request.send().await;
        match result {
            Ok(out) => Ok(Some(
                endpoint_of(out.attributes.unwrap_or_default())?.health,
            )),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(None)
            }
            Err(e) => Err(StoreError::Unavailable(
                anyhow::Error::new(e).context("UpdateItem failed"),
            )),
        }
    }

    async fn disable_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        reason: &str,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let update = Update::builder()
            .table_name(&self.tables.webhook_endpoints)
            .key("pk", s(partition(tenant)))
            .key("sk", s(id.as_str()))
            .condition_expression("#active = :true")
            .update_expression(
                "SET #active = :false, #revision = #revision + :one, \
                 #health.disabled_at = :at, #health.disabled_reason = :reason",
            )
            .expression_attribute_names("#active", "active")
            .expression_attribute_names("#revision", "revision")
            .expression_attribute_names("#health", "health")
            .expression_attribute_values(
                ":true",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            )
            .expression_attribute_values(
                ":false",
                aws_sdk_dynamodb::types::AttributeValue::Bool(false),
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", stamp(at)?)
            .expression_attribute_values(":reason", s(reason))
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
}
