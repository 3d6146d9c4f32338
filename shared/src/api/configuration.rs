//! The configuration API the wizard calls: providers and brand at the tenant layer (defaults)
//! and the event layer (overrides), and event settings. Deleting an event-layer item means "use
//! the tenant default" again. Templates at the platform, tenant and event layers (saves,
//! versions, reviews, previews) are routed to [`super::templates`] with this module's [`Ctx`]. Tenants' status
//! webhook endpoints (`/tenant/webhook-endpoints`) are routed to [`super::webhook_endpoints`],
//! recipients' consents and preferences (`/tenant/recipients/...`) to [`super::recipients`],
//! the tenant's own settings (`/tenant/settings`) to [`super::tenant_settings`] and compliance
//! reports (`/tenant/reports/compliance`) to [`super::reports`].

use std::collections::BTreeMap;

use lambda_http::Request;
use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;

use super::routes::RouteId;
use crate::app::App;
use crate::domain::ErrorCode;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::brand::Brand;
use crate::domain::identity::{Action, Caller};
use crate::domain::provider::{
    CredentialInput, EventProviderEntry, ProviderConfig, ProviderKind, ProviderOverride,
    ProviderSettings, check_priority, check_weight,
};
use crate::domain::receipt::{ReceiptRoute, WEBHOOK_USER};
use crate::domain::resolution::EventSettings;
use crate::domain::validation::{FieldError, text};
use crate::domain::{Category, Channel, EventId, ProviderId, TenantId};
use crate::http::{self, ApiError, ApiResult, Paging};
use crate::resolution::redact_credentials;
use crate::store::{LayerContent, Owner, Revisioned};
use crate::wizard::check_settings;

/// Request context every operation needs.
pub(super) struct Ctx<'a> {
    pub(super) app: &'a App,
    pub(super) request: &'a Request,
    pub(super) caller: Caller,
    pub(super) request_id: String,
}

impl Ctx<'_> {
    pub(super) fn tenant(&self, action: Action) -> Result<TenantId, ApiError> {
        Ok(self.caller.tenant_for(action)?.clone())
    }

    pub(super) fn event(&self) -> Result<EventId, ApiError> {
        http::path_param(self.request, "eventId")
    }

    fn provider_id(&self) -> Result<ProviderId, ApiError> {
        // An id that cannot be ours is simply not found.
        http::path_param(self.request, "providerId").map_err(|_| ApiError::NotFound("provider"))
    }

    pub(super) fn slot(&self) -> Result<(Category, Channel), ApiError> {
        Ok((
            http::path_param(self.request, "category")?,
            http::path_param(self.request, "channel")?,
        ))
    }

    pub(super) fn audit<T: serde::Serialize>(
        &self,
        action: &str,
        target: String,
        before: Option<&T>,
        after: Option<&T>,
    ) -> AuditEntry {
        AuditEntry::new(
            &self.caller,
            &self.request_id,
            action,
            target,
            before.map(digest),
            after.map(digest),
        )
    }

    /// The owner of the layer a route addresses, after the role check for `write` or read.
    pub(super) fn owner(&self, layer: Layer, write: bool) -> Result<Owner, ApiError> {
        Ok(match layer {
            Layer::Platform => {
                self.caller.authorize(if write {
                    Action::WritePlatform
                } else {
                    Action::ReadPlatform
                })?;
                Owner::Platform
            }
            Layer::Tenant => Owner::Tenant(self.tenant(if write {
                Action::WriteTenant
            } else {
                Action::ReadTenant
            })?),
            Layer::Event => Owner::Event(
                self.tenant(if write {
                    Action::WriteEvent
                } else {
                    Action::ReadEvent
                })?,
                self.event()?,
            ),
        })
    }

    /// Event-layer routes need the event to exist (its settings saved) in the caller's tenant.
    pub(super) async fn existing_event(&self, owner: &Owner) -> Result<(), ApiError> {
        if let Owner::Event(..) = owner {
            require_event(owner, &self.app.templates.layer(owner).await?)?;
        }
        Ok(())
    }
}

/// For routes that read the layer anyway: the event exists when its settings are saved.
pub(super) fn require_event(owner: &Owner, layer: &LayerContent) -> Result<(), ApiError> {
    if matches!(owner, Owner::Event(..)) && layer.settings.is_none() {
        return Err(ApiError::NotFound("event"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Layer {
    Platform,
    Tenant,
    Event,
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let route = http::route(&request);
    let caller = http::caller(&request)?;
    let ctx = Ctx {
        app,
        request: &request,
        caller,
        request_id: http::request_id(&request),
    };
    use Layer::*;
    let Some(id) = RouteId::from_key(&route.0) else {
        return Err(ApiError::NoRoute(route.0));
    };
    match id {
        RouteId::ListTenantProviders => list_providers(&ctx, Tenant).await,
        RouteId::CreateTenantProvider => create_provider(&ctx, Tenant).await,
        RouteId::GetTenantProvider => get_provider(&ctx, Tenant).await,
        RouteId::PutTenantProvider => update_provider(&ctx, Tenant).await,
        RouteId::DeleteTenantProvider => delete_provider(&ctx, Tenant).await,
        RouteId::TestTenantProvider => test_provider(&ctx, Tenant).await,
        RouteId::ListEventProviders => list_providers(&ctx, Event).await,
        RouteId::CreateEventProvider => create_provider(&ctx, Event).await,
        RouteId::GetEventProvider => get_provider(&ctx, Event).await,
        RouteId::PutEventProvider => update_provider(&ctx, Event).await,
        RouteId::DeleteEventProvider => delete_provider(&ctx, Event).await,
        RouteId::TestEventProvider => test_provider(&ctx, Event).await,
        RouteId::GetTenantBrand => get_brand(&ctx, Tenant).await,
        RouteId::PutTenantBrand => put_brand(&ctx, Tenant).await,
        RouteId::GetEventBrand => get_brand(&ctx, Event).await,
        RouteId::PutEventBrand => put_brand(&ctx, Event).await,
        RouteId::DeleteEventBrand => delete_brand(&ctx).await,
        RouteId::GetEventSettings => get_settings(&ctx).await,
        RouteId::PutEventSettings => put_settings(&ctx).await,
        r if super::templates::serves(r) => super::templates::handle(&ctx, r).await,
        r if super::webhook_endpoints::serves(r) => {
            super::webhook_endpoints::handle(app, &request, &ctx.caller).await
        }
        r if super::tenant_settings::serves(r) => {
            super::tenant_settings::handle(app, &request, &ctx.caller).await
        }
        r if super::reports::serves(r) => super::reports::handle(app, &request, &ctx.caller).await,
        r if super::recipients::serves(r) => {
            super::recipients::handle(app, &request, &ctx.caller).await
        }
        _ => Err(ApiError::NoRoute(route.0)),
    }
}

/// A provider (or a list of them, or an event entry) as the API shows it: credentials reduced to
/// hints, the receipt route as the URL to give the provider.
fn provider_json<T: serde::Serialize>(
    ctx: &Ctx<'_>,
    value: &T,
) -> Result<serde_json::Value, ApiError> {
    let mut json = serde_json::to_value(value).map_err(|e| ApiError::Internal(e.into()))?;
    redact_credentials(&mut json);
    let base = http::public_base_url(ctx.request, ctx.app.public_url.as_deref());
    present_receipts(&mut json, &base);
    Ok(json)
}

/// Replaces every stored receipt route (`{token, secret_sha256}`) with what the tenant pastes
/// into the provider's console: `{url, authentication}`. The secret itself is never stored.
fn present_receipts(value: &mut serde_json::Value, base: &str) {
    match value {
        serde_json::Value::Object(map) => {
            let kind = map
                .get("settings")
                .and_then(|s| s.get("kind"))
                .and_then(|k| serde_json::from_value::<ProviderKind>(k.clone()).ok());
            if let (Some(kind), Some(route)) = (kind, map.get_mut("receipts")) {
                let token = route.get("token").and_then(|t| t.as_str()).unwrap_or("");
                let path = kind.receipt_path().unwrap_or("none");
                let authentication = match kind {
                    ProviderKind::Twilio => "X-Twilio-Signature, keyed with the auth token",
                    ProviderKind::Ses => "SNS message signature, from settings.events_topic_arn",
                    ProviderKind::MetaWhatsapp => {
                        "X-Hub-Signature-256, keyed with the app secret; the secret shown at \
                         creation is the verify token"
                    }
                    _ => "HTTP Basic (user herald, the secret shown at creation) or Bearer",
                };
                *route = serde_json::json!({
                    "url": format!("{base}/webhooks/{path}/{token}"),
                    "authentication": authentication,
                });
            }
            map.values_mut().for_each(|v| present_receipts(v, base));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| present_receipts(v, base)),
        _ => {}
    }
}

/// The contract's schema of a receipt route as [`present_receipts`] and [`with_receipt_secret`]
/// show it: replaces the stored `ReceiptRoute` among a document's response schemas.
pub(super) fn present_receipts_schema(schemas: &mut serde_json::Map<String, serde_json::Value>) {
    schemas.insert(
        "ReceiptRoute".into(),
        serde_json::json!({
            "type": "object",
            "description": "Where the provider posts its delivery receipts and inbound messages: paste the URL into the provider's console.",
            "required": ["url", "authentication"],
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "authentication": {"type": "string", "description": "How Herald authenticates the provider's posts."},
                "secret": {"type": "string", "description": "In the creation's answer only, once: the secret to configure at the provider."},
                "user": {"type": "string", "description": "With `secret`, for HTTP Basic."},
            },
        }),
    );
}

/// Adds the newly made receipt secret to a creation's answer, the one time it is shown.
fn with_receipt_secret(mut json: serde_json::Value, secret: Option<String>) -> serde_json::Value {
    if let (Some(secret), Some(route)) = (secret, json.get_mut("receipts")) {
        route["secret"] = serde_json::Value::String(secret);
        route["user"] = serde_json::Value::String(WEBHOOK_USER.to_owned());
    }
    json
}

// ---- providers ----

/// A provider as the wizard sends it. Credentials are optional on update (kept when absent).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProviderInput {
    channel: Channel,
    name: String,
    settings: ProviderSettings,
    /// The provider's secrets by name (`auth_token`, `api_key`, ...): stored encrypted, never returned.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    credentials: Option<BTreeMap<String, SecretString>>,
    #[serde(default = "default_priority")]
    priority: u32,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    rate_limit_per_second: Option<u32>,
}

fn default_priority() -> u32 {
    1
}
fn default_weight() -> u32 {
    100
}
fn yes() -> bool {
    true
}

/// An event's change to an inherited tenant provider.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OverrideInput {
    #[serde(default)]
    priority: Option<u32>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    active: Option<bool>,
}

impl ProviderInput {
    fn check(&self) -> Result<String, FieldError> {
        let name = text("name", &self.name, 100)?;
        let kind = self.settings.kind();
        if !kind.channels().contains(&self.channel) {
            return Err(FieldError::invalid(
                "channel",
                format!("a {} provider cannot send {}", kind.as_str(), self.channel),
            ));
        }
        self.settings.check()?;
        check_priority("priority", self.priority)?;
        check_weight("weight", self.weight)?;
        if self
            .rate_limit_per_second
            .is_some_and(|r| r == 0 || r > 100_000)
        {
            return Err(FieldError::new(
                ErrorCode::OutOfRange,
                "rate_limit_per_second",
                "rate_limit_per_second must be 1-100000",
            ));
        }
        Ok(name)
    }

    fn credentials(&self) -> Option<CredentialInput> {
        self.credentials
            .as_ref()
            .map(|c| CredentialInput(c.clone()))
    }

    async fn into_config(
        self,
        ctx: &Ctx<'_>,
        tenant: &TenantId,
        id: ProviderId,
        previous: Option<&ProviderConfig>,
    ) -> Result<(ProviderConfig, Option<String>), ApiError> {
        let name = self.check()?;
        let kind = self.settings.kind();
        // The receipt route stays with the configuration while its kind does; the secret is
        // shown only when it is made.
        let (receipts, receipt_secret) = match previous {
            Some(p) if p.kind() == kind && p.receipts.is_some() => (p.receipts.clone(), None),
            _ => ReceiptRoute::generate(kind).map_or((None, None), |(r, s)| (Some(r), s)),
        };
        let credentials = match (self.credentials(), previous) {
            (Some(input), _) => {
                input.check(kind)?;
                ctx.app.vault.seal(tenant, &id, &input).await?
            }
            (None, Some(p)) if p.kind() == kind => p.credentials.clone(),
            (None, _) => {
                let empty = CredentialInput::default();
                empty.check(kind)?;
                None
            }
        };
        let config = ProviderConfig {
            id,
            channel: self.channel,
            name,
            settings: self.settings,
            credentials,
            priority: self.priority,
            weight: self.weight,
            active: self.active,
            rate_limit_per_second: self.rate_limit_per_second,
            receipts,
            revision: previous.map_or(1, |p| p.revision + 1),
            updated_at: OffsetDateTime::now_utc(),
            updated_by: ctx.caller.subject.clone(),
        };
        Ok((config, receipt_secret))
    }
}

fn provider_target(owner: &Owner, id: &ProviderId) -> String {
    match owner {
        Owner::Event(_, e) => format!("event/{e}/provider/{id}"),
        _ => format!("tenant/provider/{id}"),
    }
}

async fn list_providers(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, false)?;
    let paging = Paging::from_request(ctx.request, &format!("providers#{}", owner.partition()))?;
    let (page, next) = match &owner {
        Owner::Tenant(t) => {
            let (page, next) = paging.slice(ctx.app.providers.tenant_providers(t).await?, |p| {
                p.id.to_string()
            });
            (provider_json(ctx, &page)?, next)
        }
        Owner::Event(t, e) => {
            ctx.existing_event(&owner).await?;
            let (page, next) = paging.slice(ctx.app.providers.event_providers(t, e).await?, |p| {
                p.id().to_string()
            });
            (provider_json(ctx, &page)?, next)
        }
        Owner::Platform => return Err(ApiError::NoRoute("platform providers".into())),
    };
    paging.respond(
        page.as_array().map(Vec::as_slice).unwrap_or_default(),
        next.as_deref(),
    )
}

/// Creates a provider; with an `Idempotency-Key`, a retried create returns the first one
/// instead of adding a duplicate.
async fn create_provider(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, true)?;
    let tenant = match &owner {
        Owner::Tenant(t) | Owner::Event(t, _) => t.clone(),
        Owner::Platform => return Err(ApiError::NoRoute("platform providers".into())),
    };
    let scope = format!("provider-create#{}", owner.partition());
    super::idempotency::once(ctx.app, ctx.request, &scope, false, || async {
        ctx.existing_event(&owner).await?;
        let input: ProviderInput = http::json_body(ctx.request)?;
        let id = ProviderId::generate();
        let (config, secret) = input.into_config(ctx, &tenant, id.clone(), None).await?;
        let audit = ctx.audit(
            "provider.created",
            provider_target(&owner, &id),
            None,
            Some(&config),
        );
        let body = match &owner {
            Owner::Event(t, e) => {
                let entry = EventProviderEntry::Own(Box::new(config));
                ctx.app
                    .providers
                    .put_event_provider(t, e, &entry, None, &audit)
                    .await?;
                with_receipt_secret(provider_json(ctx, &entry)?, secret)
            }
            _ => {
                ctx.app
                    .providers
                    .put_tenant_provider(&tenant, &config, None, &audit)
                    .await?;
                with_receipt_secret(provider_json(ctx, &config)?, secret)
            }
        };
        Ok((201, body))
    })
    .await
}

async fn get_provider(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let id = ctx.provider_id()?;
    match ctx.owner(layer, false)? {
        Owner::Tenant(t) => {
            let p = ctx
                .app
                .providers
                .tenant_provider(&t, &id)
                .await?
                .ok_or(ApiError::NotFound("provider"))?;
            http::respond(200, &provider_json(ctx, &p)?)
        }
        Owner::Event(t, e) => {
            let p = ctx
                .app
                .providers
                .event_provider(&t, &e, &id)
                .await?
                .ok_or(ApiError::NotFound("provider"))?;
            http::respond(200, &provider_json(ctx, &p)?)
        }
        Owner::Platform => Err(ApiError::NotFound("provider")),
    }
}

async fn update_provider(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let id = ctx.provider_id()?;
    let owner = ctx.owner(layer, true)?;
    match &owner {
        Owner::Tenant(t) => {
            let previous = ctx
                .app
                .providers
                .tenant_provider(t, &id)
                .await?
                .ok_or(ApiError::NotFound("provider"))?;
            let input: ProviderInput = http::json_body(ctx.request)?;
            let (config, secret) = input
                .into_config(ctx, t, id.clone(), Some(&previous))
                .await?;
            let audit = ctx.audit(
                "provider.updated",
                provider_target(&owner, &id),
                Some(&previous),
                Some(&config),
            );
            ctx.app
                .providers
                .put_tenant_provider(t, &config, Some(previous.revision), &audit)
                .await?;
            http::respond(
                200,
                &with_receipt_secret(provider_json(ctx, &config)?, secret),
            )
        }
        Owner::Event(t, e) => {
            ctx.existing_event(&owner).await?;
            let existing = ctx.app.providers.event_provider(t, e, &id).await?;
            let mut secret = None;
            let entry = match &existing {
                Some(EventProviderEntry::Own(previous)) => {
                    let input: ProviderInput = http::json_body(ctx.request)?;
                    let (config, made) = input
                        .into_config(ctx, t, id.clone(), Some(previous))
                        .await?;
                    secret = made;
                    EventProviderEntry::Own(Box::new(config))
                }
                // Not the event's own provider: an override of the tenant's provider with this id.
                Some(EventProviderEntry::Override(_)) | None => {
                    if ctx.app.providers.tenant_provider(t, &id).await?.is_none() {
                        return Err(ApiError::NotFound("provider"));
                    }
                    let input: OverrideInput = http::json_body(ctx.request)?;
                    if let Some(p) = input.priority {
                        check_priority("priority", p)?;
                    }
                    if let Some(w) = input.weight {
                        check_weight("weight", w)?;
                    }
                    EventProviderEntry::Override(ProviderOverride {
                        provider: id.clone(),
                        priority: input.priority,
                        weight: input.weight,
                        active: input.active,
                        revision: existing.as_ref().map_or(1, |e| e.revision() + 1),
                        updated_at: OffsetDateTime::now_utc(),
                        updated_by: ctx.caller.subject.clone(),
                    })
                }
            };
            let action = if existing.is_some() {
                "provider.updated"
            } else {
                "provider.overridden"
            };
            let audit = ctx.audit(
                action,
                provider_target(&owner, &id),
                existing.as_ref(),
                Some(&entry),
            );
            ctx.app
                .providers
                .put_event_provider(
                    t,
                    e,
                    &entry,
                    existing.as_ref().map(|e| e.revision()),
                    &audit,
                )
                .await?;
            http::respond(
                200,
                &with_receipt_secret(provider_json(ctx, &entry)?, secret),
            )
        }
        Owner::Platform => Err(ApiError::NotFound("provider")),
    }
}

async fn delete_provider(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let id = ctx.provider_id()?;
    let owner = ctx.owner(layer, true)?;
    let (revision, before) = match &owner {
        Owner::Tenant(t) => {
            let p = ctx
                .app
                .providers
                .tenant_provider(t, &id)
                .await?
                .ok_or(ApiError::NotFound("provider"))?;
            (p.revision, digest(&p))
        }
        Owner::Event(t, e) => {
            let p = ctx
                .app
                .providers
                .event_provider(t, e, &id)
                .await?
                .ok_or(ApiError::NotFound("provider"))?;
            (p.revision(), digest(&p))
        }
        Owner::Platform => return Err(ApiError::NotFound("provider")),
    };
    let mut audit = ctx.audit::<()>("provider.deleted", provider_target(&owner, &id), None, None);
    audit.before = Some(before);
    ctx.app
        .providers
        .delete_provider(&owner, &id, revision, &audit)
        .await?;
    http::no_content()
}

async fn test_provider(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let id = ctx.provider_id()?;
    // Testing sends nothing and changes nothing, so reading the layer is enough.
    let owner = ctx.owner(layer, false)?;
    let (tenant, config) = match &owner {
        Owner::Tenant(t) => (t, ctx.app.providers.tenant_provider(t, &id).await?),
        Owner::Event(t, e) => match ctx.app.providers.event_provider(t, e, &id).await? {
            Some(EventProviderEntry::Own(p)) => (t, Some(*p)),
            Some(EventProviderEntry::Override(_)) => {
                (t, ctx.app.providers.tenant_provider(t, &id).await?)
            }
            None => (t, None),
        },
        Owner::Platform => return Err(ApiError::NotFound("provider")),
    };
    let config = config.ok_or(ApiError::NotFound("provider"))?;
    let check = check_settings(
        tenant,
        &id,
        &config.settings,
        config.credentials.as_ref(),
        ctx.app.vault.as_ref(),
        ctx.app.checker.as_ref(),
    )
    .await;
    tracing::info!(provider = %id, passed = check.outcome.passed(), "provider tested");
    http::respond(200, &check)
}

// ---- brand and settings ----

async fn get_brand(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, false)?;
    let layer_content = ctx.app.templates.layer(&owner).await?;
    require_event(&owner, &layer_content)?;
    http::respond(
        200,
        &layer_content.brand.map(|b| b.value).unwrap_or_default(),
    )
}

async fn put_brand(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, true)?;
    let current = ctx.app.templates.layer(&owner).await?;
    require_event(&owner, &current)?;
    let brand: Brand = http::json_body(ctx.request)?;
    brand.check()?;
    let previous = current.brand;
    let next = Revisioned {
        value: brand,
        revision: previous.as_ref().map_or(1, |b| b.revision + 1),
    };
    let target = match &owner {
        Owner::Event(_, e) => format!("event/{e}/brand"),
        _ => "tenant/brand".to_owned(),
    };
    let audit = ctx.audit(
        "brand.updated",
        target,
        previous.as_ref().map(|p| &p.value),
        Some(&next.value),
    );
    ctx.app.templates.put_brand(&owner, &next, &audit).await?;
    http::respond(200, &next.value)
}

async fn delete_brand(ctx: &Ctx<'_>) -> ApiResult {
    let owner = ctx.owner(Layer::Event, true)?;
    let current = ctx
        .app
        .templates
        .layer(&owner)
        .await?
        .brand
        .ok_or(ApiError::NotFound("brand"))?;
    let Owner::Event(_, e) = &owner else {
        return Err(ApiError::NotFound("brand"));
    };
    let audit = ctx.audit(
        "brand.removed",
        format!("event/{e}/brand"),
        Some(&current.value),
        None,
    );
    ctx.app
        .templates
        .remove_brand(&owner, current.revision, &audit)
        .await?;
    http::no_content()
}

async fn get_settings(ctx: &Ctx<'_>) -> ApiResult {
    let owner = ctx.owner(Layer::Event, false)?;
    let settings = ctx
        .app
        .templates
        .layer(&owner)
        .await?
        .settings
        .ok_or(ApiError::NotFound("event"))?;
    http::respond(200, &settings.value)
}

async fn put_settings(ctx: &Ctx<'_>) -> ApiResult {
    let owner = ctx.owner(Layer::Event, true)?;
    let Owner::Event(tenant, event) = &owner else {
        return Err(ApiError::NotFound("event"));
    };
    let settings: EventSettings = http::json_body(ctx.request)?;
    settings.check()?;
    let previous = ctx.app.templates.layer(&owner).await?.settings;
    let next = Revisioned {
        value: settings,
        revision: previous.as_ref().map_or(1, |s| s.revision + 1),
    };
    let action = if previous.is_some() {
        "event.settings_updated"
    } else {
        "event.created"
    };
    let audit = ctx.audit(
        action,
        format!("event/{event}/settings"),
        previous.as_ref().map(|p| &p.value),
        Some(&next.value),
    );
    ctx.app
        .templates
        .put_settings(tenant, event, &next, &audit)
        .await?;
    http::respond(if previous.is_some() { 200 } else { 201 }, &next.value)
}
