//! Template preview for the wizard: a saved template, or a draft not saved yet, rendered at the
//! platform, a tenant or an event with sample or given variables and the brand that scope
//! resolves to. It answers what the message would look like (subject, branded HTML, text
//! alternative, SMS encoding and segments), what it would cost through the provider routing
//! would pick first, and which layer each part came from. Pure CPU over reads: nothing is
//! written.

use std::collections::BTreeMap;

use lambda_http::{Body, Request};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::domain::cost::Money;
use crate::domain::locale::{LocaleTag, TimeZoneName};
use crate::domain::provider::ProviderKind;
use crate::domain::resolution::{
    Layer, ResolvedTemplate, Sourced, resolve_brand, resolve_templates,
};
use crate::domain::sms::SmsSegments;
use crate::domain::template::TemplateContent;
use crate::domain::variables::Variables;
use crate::domain::{Category, Channel};
use crate::http::{self, ApiError, ApiResult};
use crate::rendering::{Audience, RenderError, Template};
use crate::store::Owner;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewInput {
    /// A draft to render instead of the saved template (not saved by previewing).
    #[serde(default)]
    content: Option<TemplateContent>,
    /// Values that replace the template's samples.
    #[serde(default)]
    variables: Variables,
    /// A recipient address to price the message for (an SMS's country); the provider's default
    /// price otherwise.
    #[serde(default)]
    to: Option<String>,
    /// The language dates, numbers and money are formatted in (`en` when absent).
    #[serde(default)]
    locale: Option<LocaleTag>,
    /// The time zone dates and times are shown in (UTC when absent).
    #[serde(default)]
    time_zone: Option<TimeZoneName>,
}

/// Where the rendered template came from.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct TemplateSource {
    /// `draft` for unsaved content, otherwise the layer (`global`, `tenant`, `event`).
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overrides: Option<Layer>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct VariableUsed {
    value: serde_json::Value,
    /// `given` in the request, or the template's `sample`.
    source: &'static str,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct CostEstimate {
    provider: ProviderKind,
    price: Money,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Preview {
    category: Category,
    channel: Channel,
    template: TemplateSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sms: Option<SmsSegments>,
    /// WhatsApp with registered templates: what each provider is sent outside the 24-hour
    /// window (Meta's `template` object, Twilio's `ContentSid` and `ContentVariables`).
    #[serde(skip_serializing_if = "Option::is_none")]
    whatsapp_template: Option<crate::domain::whatsapp::TemplateCall>,
    cost_estimate: Option<CostEstimate>,
    brand: BTreeMap<String, Sourced<String>>,
    variables: BTreeMap<String, VariableUsed>,
}

/// What a scope sees: its templates stacked, its brand, and the first provider of the channel.
struct Scope {
    templates: Vec<ResolvedTemplate>,
    brand: BTreeMap<String, Sourced<String>>,
    first_provider: Option<ProviderKind>,
}

/// `POST .../templates/{category}/{channel}/preview` at `owner` (the caller is authorised to
/// read it; an event owner exists).
pub async fn preview(
    app: &App,
    request: &Request,
    owner: &Owner,
    category: Category,
    channel: Channel,
) -> ApiResult {
    let input: PreviewInput = match request.body() {
        Body::Empty => PreviewInput::default(),
        Body::Text(t) if t.trim().is_empty() => PreviewInput::default(),
        _ => http::json_body(request)?,
    };
    if let Some(draft) = &input.content {
        draft.check(channel)?;
    }
    let scope = scope(app, owner, channel).await?;
    let (content, template) = match input.content {
        Some(draft) => (
            draft,
            TemplateSource {
                source: "draft".into(),
                version: None,
                overrides: None,
            },
        ),
        None => {
            let saved = scope
                .templates
                .into_iter()
                .find(|t| t.category == category && t.channel == channel)
                .ok_or(ApiError::NotFound("template"))?;
            let source = TemplateSource {
                source: layer_name(saved.source).into(),
                version: Some(saved.version),
                overrides: saved.overrides,
            };
            (saved.content, source)
        }
    };

    let given = input.variables.into_inner();
    let variables: BTreeMap<String, VariableUsed> = content
        .variables
        .iter()
        .map(|v| {
            let used = match given.get(&v.name) {
                Some(value) => VariableUsed {
                    value: value.clone(),
                    source: "given",
                },
                None => VariableUsed {
                    value: v.sample_value(),
                    source: "sample",
                },
            };
            (v.name.clone(), used)
        })
        .collect();
    content.check_variables(&given, "variables", true)?;
    let values: BTreeMap<String, serde_json::Value> = variables
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    let brand_values: BTreeMap<&str, &str> = scope
        .brand
        .iter()
        .map(|(k, v)| (k.as_str(), v.value.as_str()))
        .collect();
    let audience = Audience {
        locale: input.locale.map(|l| l.to_string()),
        time_zone: input.time_zone.map(|z| z.as_str().to_owned()),
        // Marketing email shows where each recipient's own unsubscribe link goes.
        unsubscribe: None,
    };
    let rendered = Template::compile(channel, category.class().into(), &content, &brand_values)
        .and_then(|t| t.render_message(&values, &audience))
        .map_err(|e| invalid(category, channel, &e))?;

    let segments = rendered.segments.map_or(1, |s| s.segments);
    let cost_estimate = scope.first_provider.and_then(|provider| {
        let to = input.to.as_deref().unwrap_or_default();
        app.rates
            .estimate(provider, channel, to, segments)
            .map(|price| CostEstimate { provider, price })
    });
    http::respond(
        200,
        &Preview {
            category,
            channel,
            template,
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            sms: rendered.segments,
            whatsapp_template: rendered.whatsapp_template,
            cost_estimate,
            brand: scope.brand,
            variables,
        },
    )
}

/// A template that does not render: 422 naming the template, with the line and column.
fn invalid(category: Category, channel: Channel, e: &RenderError) -> ApiError {
    if let RenderError::TooLarge { .. } = e {
        return super::templates::template_too_large(category, channel, e);
    }
    super::templates::template_invalid(format!("templates.{category}.{channel}.{}", e.part()), e)
}

fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Global => "global",
        Layer::Tenant => "tenant",
        Layer::Event => "event",
    }
}

async fn scope(app: &App, owner: &Owner, channel: Channel) -> Result<Scope, ApiError> {
    match owner {
        Owner::Platform => {
            let global = app.templates.layer(owner).await?;
            Ok(Scope {
                templates: resolve_templates(&global.templates, &[], &[]),
                brand: BTreeMap::new(),
                first_provider: None,
            })
        }
        Owner::Tenant(tenant) => {
            let (global, own, providers) = tokio::try_join!(
                app.templates.layer(&Owner::Platform),
                app.templates.layer(owner),
                app.providers.tenant_providers(tenant),
            )?;
            let first_provider = providers
                .iter()
                .filter(|p| p.channel == channel && p.active)
                .min_by_key(|p| p.priority)
                .map(|p| p.kind());
            Ok(Scope {
                templates: resolve_templates(&global.templates, &own.templates, &[]),
                brand: resolve_brand(
                    &own.brand.map(|b| b.value).unwrap_or_default(),
                    &Default::default(),
                ),
                first_provider,
            })
        }
        Owner::Event(tenant, event) => {
            let layers = crate::resolution::load_layers(
                app.providers.as_ref(),
                app.templates.as_ref(),
                tenant,
                event,
            )
            .await?
            .ok_or(ApiError::NotFound("event"))?;
            let resolved = crate::domain::resolution::resolve(&layers);
            let first_provider = resolved
                .channels
                .get(&channel)
                .and_then(|c| c.active().min_by_key(|p| p.priority.value).map(|p| p.kind));
            Ok(Scope {
                templates: resolved.templates,
                brand: resolved.brand,
                first_provider,
            })
        }
    }
}
