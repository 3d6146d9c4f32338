//! Tenants' status webhook endpoints, served by the configuration API: register, list, read,
//! change (re-enable with `active: true`), delete, and rotate the signing secret. The secret
//! (`whsec_...`) is shown only in the answer that makes it; it is stored sealed (envelope
//! encryption bound to tenant and endpoint), never in the idempotency record, never logged.

use std::sync::Mutex;

use lambda_http::{Body, Request};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::routes::RouteId;
use crate::app::App;
use crate::domain::ErrorCode;
use crate::domain::TenantId;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::identity::{Action, Caller};
use crate::domain::status_event::StatusEventType;
use crate::domain::validation::{BoundedList, FieldError, text};
use crate::domain::webhook_endpoint::{
    DeliveryHealth, EndpointConfig, MAX_EVENT_TYPES, WebhookEndpoint, WebhookEndpointId,
    parse_event_types,
};
use crate::http::{self, ApiError, ApiResult, Paging};
use crate::status_webhooks::new_secret;

/// Endpoints a tenant may have: each one multiplies the deliveries of every status event.
pub const MAX_ENDPOINTS: usize = 20;

/// Whether the configuration API hands `route` to this module.
pub fn serves(route: RouteId) -> bool {
    matches!(
        route,
        RouteId::ListWebhookEndpoints
            | RouteId::CreateWebhookEndpoint
            | RouteId::GetWebhookEndpoint
            | RouteId::PutWebhookEndpoint
            | RouteId::DeleteWebhookEndpoint
            | RouteId::RotateWebhookEndpointSecret
    )
}

struct Ctx<'a> {
    app: &'a App,
    request: &'a Request,
    caller: &'a Caller,
    request_id: String,
}

impl Ctx<'_> {
    fn tenant(&self, write: bool) -> Result<TenantId, ApiError> {
        let action = if write {
            Action::WriteTenant
        } else {
            Action::ReadTenant
        };
        Ok(self.caller.tenant_for(action)?.clone())
    }

    fn endpoint_id(&self) -> Result<WebhookEndpointId, ApiError> {
        // An id that cannot be ours is simply not found.
        http::path_param(self.request, "endpointId")
            .map_err(|_| ApiError::NotFound("webhook endpoint"))
    }

    async fn existing(&self, tenant: &TenantId) -> Result<WebhookEndpoint, ApiError> {
        self.app
            .webhook_endpoints
            .endpoint(tenant, &self.endpoint_id()?)
            .await?
            .ok_or(ApiError::NotFound("webhook endpoint"))
    }

    fn audit(
        &self,
        action: &str,
        id: &WebhookEndpointId,
        before: Option<&WebhookEndpoint>,
        after: Option<&WebhookEndpoint>,
    ) -> AuditEntry {
        AuditEntry::new(
            self.caller,
            &self.request_id,
            action,
            format!("tenant/webhook-endpoint/{id}"),
            before.map(digest),
            after.map(digest),
        )
    }
}

pub async fn handle(app: &App, request: &Request, caller: &Caller) -> ApiResult {
    let route = http::route(request);
    let ctx = Ctx {
        app,
        request,
        caller,
        request_id: http::request_id(request),
    };
    let Some(id) = RouteId::from_key(&route.0) else {
        return Err(ApiError::NoRoute(route.0));
    };
    match id {
        RouteId::ListWebhookEndpoints => list(&ctx).await,
        RouteId::CreateWebhookEndpoint => create(&ctx).await,
        RouteId::GetWebhookEndpoint => get(&ctx).await,
        RouteId::PutWebhookEndpoint => update(&ctx).await,
        RouteId::DeleteWebhookEndpoint => delete(&ctx).await,
        RouteId::RotateWebhookEndpointSecret => rotate_secret(&ctx).await,
        _ => Err(ApiError::NoRoute(route.0)),
    }
}

/// An endpoint as the API shows it: no secret, sealed or not.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct EndpointView<'a> {
    id: &'a WebhookEndpointId,
    url: &'a str,
    events: &'a std::collections::BTreeSet<StatusEventType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    active: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    updated_at: OffsetDateTime,
    health: &'a DeliveryHealth,
}

/// A signing secret, shown once: at creation (with the endpoint) and at rotation.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct SecretShown<'a> {
    id: &'a WebhookEndpointId,
    /// `whsec_` and the base64 key: keep it, Herald never shows it again.
    secret: &'a str,
}

/// The contract's schema of a creation's answer: the endpoint and its secret ([`with_secret`]).
pub(super) fn created_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let endpoint = generator.subschema_for::<EndpointView<'static>>();
    let secret = generator.subschema_for::<SecretShown<'static>>();
    schemars::json_schema!({"allOf": [endpoint, secret]})
}

fn view(endpoint: &WebhookEndpoint) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(EndpointView {
        id: &endpoint.id,
        url: &endpoint.config.url,
        events: &endpoint.config.events,
        description: endpoint.config.description.as_deref(),
        active: endpoint.active,
        created_at: endpoint.config.created_at,
        updated_at: endpoint.config.updated_at,
        health: &endpoint.health,
    })
    .map_err(|e| ApiError::Internal(e.into()))
}

fn description(value: Option<String>) -> Result<Option<String>, FieldError> {
    match value {
        Some(d) if !d.trim().is_empty() => Ok(Some(text("description", &d, 200)?)),
        _ => Ok(None),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateInput {
    url: String,
    events: BoundedList<String, MAX_EVENT_TYPES>,
    #[serde(default)]
    description: Option<String>,
}

/// A change: only the fields given change. `active: true` re-enables a disabled endpoint.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateInput {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    events: Option<BoundedList<String, MAX_EVENT_TYPES>>,
    /// An empty text removes it.
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

async fn list(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(false)?;
    let paging = Paging::from_request(ctx.request, &format!("webhook-endpoints#{tenant}"))?;
    let endpoints = ctx.app.webhook_endpoints.endpoints(&tenant).await?;
    let (page, next) = paging.slice(endpoints, |e| e.id.to_string());
    let views = page.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    paging.respond(&views, next.as_deref())
}

async fn get(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(false)?;
    http::respond(200, &view(&ctx.existing(&tenant).await?)?)
}

/// Registers an endpoint; with an `Idempotency-Key`, a retried create returns the first one
/// (with its secret, opened from the sealed copy) instead of adding another.
async fn create(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(true)?;
    let scope = format!("webhook-endpoint-create#T#{tenant}");
    let made: Mutex<Option<SecretString>> = Mutex::new(None);
    let response = super::idempotency::once(ctx.app, ctx.request, &scope, false, || async {
        let input: CreateInput = http::json_body(ctx.request)?;
        let url = ctx.app.webhook_urls.check("url", &input.url)?;
        let events = parse_event_types("events", &input.events)?;
        let description = description(input.description)?;
        if ctx.app.webhook_endpoints.endpoints(&tenant).await?.len() >= MAX_ENDPOINTS {
            return Err(ApiError::Unprocessable {
                code: ErrorCode::TooManyEndpoints,
                message: format!("a tenant can have at most {MAX_ENDPOINTS} webhook endpoints"),
                problems: Vec::new(),
            });
        }
        let id = WebhookEndpointId::generate();
        let secret = SecretString::from(new_secret());
        let sealed = ctx
            .app
            .vault
            .seal_endpoint_secret(&tenant, &id, &secret)
            .await?;
        let now = OffsetDateTime::now_utc();
        let endpoint = WebhookEndpoint {
            id: id.clone(),
            active: true,
            revision: 1,
            config: EndpointConfig {
                url: url.to_string(),
                events,
                description,
                secret: sealed,
                created_at: now,
                updated_at: now,
                updated_by: ctx.caller.subject.clone(),
            },
            health: DeliveryHealth::default(),
        };
        let audit = ctx.audit("webhook_endpoint.created", &id, None, Some(&endpoint));
        ctx.app
            .webhook_endpoints
            .create_endpoint(&tenant, &endpoint, &audit)
            .await?;
        if let Ok(mut made) = made.lock() {
            *made = Some(secret);
        }
        Ok((201, view(&endpoint)?))
    })
    .await?;
    let made = made.into_inner().unwrap_or_default();
    with_secret(ctx, &tenant, response, made).await
}

/// Adds the secret to a creation's answer: the one just made, or for a replayed creation the
/// endpoint's current one (the idempotency record never holds it).
async fn with_secret(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    response: http::Response,
    made: Option<SecretString>,
) -> ApiResult {
    if response.status().as_u16() != 201 {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let mut json: serde_json::Value = match &body {
        Body::Text(t) => serde_json::from_str(t).map_err(|e| ApiError::Internal(e.into()))?,
        _ => return Ok(http::Response::from_parts(parts, body)),
    };
    let secret = match made {
        Some(secret) => Some(secret),
        None => {
            let id = json["id"]
                .as_str()
                .and_then(|id| WebhookEndpointId::parse(id).ok());
            match id {
                Some(id) => match ctx.app.webhook_endpoints.endpoint(tenant, &id).await? {
                    Some(endpoint) => Some(
                        ctx.app
                            .vault
                            .open_endpoint_secret(tenant, &id, &endpoint.config.secret)
                            .await?,
                    ),
                    None => None,
                },
                None => None,
            }
        }
    };
    if let Some(secret) = secret {
        json["secret"] = serde_json::Value::String(secret.expose_secret().to_owned());
    }
    Ok(http::Response::from_parts(
        parts,
        Body::Text(json.to_string()),
    ))
}

async fn update(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(true)?;
    let previous = ctx.existing(&tenant).await?;
    let input: UpdateInput = http::json_body(ctx.request)?;
    if input.url.is_none()
        && input.events.is_none()
        && input.description.is_none()
        && input.active.is_none()
    {
        return Err(FieldError::new(
            ErrorCode::Required,
            "body",
            "give at least one of url, events, description, active",
        )
        .into());
    }
    let mut next = previous.clone();
    if let Some(url) = &input.url {
        next.config.url = ctx.app.webhook_urls.check("url", url)?.to_string();
    }
    if let Some(events) = &input.events {
        next.config.events = parse_event_types("events", events)?;
    }
    if input.description.is_some() {
        next.config.description = description(input.description)?;
    }
    // Re-enabling starts with a clean record: the old streak led to the disabling.
    let reenabled = input.active == Some(true) && !previous.active;
    if let Some(active) = input.active {
        next.active = active;
    }
    if reenabled {
        next.health = DeliveryHealth::default();
    }
    next.revision = previous.revision + 1;
    next.config.updated_at = OffsetDateTime::now_utc();
    next.config.updated_by = ctx.caller.subject.clone();
    let audit = ctx.audit(
        "webhook_endpoint.updated",
        &next.id,
        Some(&previous),
        Some(&next),
    );
    ctx.app
        .webhook_endpoints
        .update_endpoint(&tenant, &next, previous.revision, reenabled, &audit)
        .await?;
    http::respond(200, &view(&next)?)
}

async fn delete(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(true)?;
    let endpoint = ctx.existing(&tenant).await?;
    let audit = ctx.audit(
        "webhook_endpoint.deleted",
        &endpoint.id,
        Some(&endpoint),
        None,
    );
    ctx.app
        .webhook_endpoints
        .delete_endpoint(&tenant, &endpoint.id, endpoint.revision, &audit)
        .await?;
    http::no_content()
}

/// A new secret, effective at once (deliveries after this are signed with it only).
async fn rotate_secret(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(true)?;
    let previous = ctx.existing(&tenant).await?;
    let secret = SecretString::from(new_secret());
    let mut next = previous.clone();
    next.config.secret = ctx
        .app
        .vault
        .seal_endpoint_secret(&tenant, &next.id, &secret)
        .await?;
    next.revision = previous.revision + 1;
    next.config.updated_at = OffsetDateTime::now_utc();
    next.config.updated_by = ctx.caller.subject.clone();
    let audit = ctx.audit(
        "webhook_endpoint.secret_rotated",
        &next.id,
        Some(&previous),
        Some(&next),
    );
    ctx.app
        .webhook_endpoints
        .update_endpoint(&tenant, &next, previous.revision, false, &audit)
        .await?;
    http::respond(
        200,
        &SecretShown {
            id: &next.id,
            secret: secret.expose_secret(),
        },
    )
}
