//! Templates at the platform, tenant and event layers: list, read, save (a new immutable
//! version), remove, preview ([`super::template_preview`]) and review. Where a second person's
//! approval is needed (a tenant's `templates_need_approval`; always for platform templates) a
//! save is `submitted` (202) and the published version stays in use until someone other than
//! the author approves it (`.../versions/{version}/approve`, which publishes it) or anyone
//! rejects it with a reason (`.../reject`; the author withdrawing it). Every transition is
//! audited with its actor and announced to the tenant's status webhooks (`template.submitted`,
//! `template.approved`, `template.rejected`); of two reviews at once one wins and the other is 409.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use super::configuration::{Ctx, Layer, require_event};
use super::routes::RouteId;
use crate::app::App;
use crate::domain::ErrorCode;
use crate::domain::identity::Denied;
use crate::domain::resolution::Layer as ResolutionLayer;
use crate::domain::snapshot::Problem;
use crate::domain::status_event::{StatusEvent, StatusEventType, TemplateData};
use crate::domain::template::{
    MAX_REASON_CHARS, ReviewRefusal, TemplateContent, TemplateState, TemplateVersion,
};
use crate::domain::validation::{BoundedText, FieldError};
use crate::domain::{Category, Channel};
use crate::http::{self, ApiError, ApiResult, Paging};
use crate::rendering::{RenderError, Renderer};
use crate::store::{Owner, StoreError};

/// Whether the configuration API hands `route` to this module.
pub fn serves(route: RouteId) -> bool {
    route_layer(route).is_some()
}

fn route_layer(route: RouteId) -> Option<Layer> {
    use RouteId::*;
    Some(match route {
        ListPlatformTemplates
        | GetPlatformTemplate
        | PutPlatformTemplate
        | DeletePlatformTemplate
        | PreviewPlatformTemplate
        | ListPlatformTemplateVersions
        | ApprovePlatformTemplate
        | RejectPlatformTemplate => Layer::Platform,
        ListTenantTemplates
        | GetTenantTemplate
        | PutTenantTemplate
        | DeleteTenantTemplate
        | PreviewTenantTemplate
        | ListTenantTemplateVersions
        | ApproveTenantTemplate
        | RejectTenantTemplate => Layer::Tenant,
        ListEventTemplates
        | GetEventTemplate
        | PutEventTemplate
        | DeleteEventTemplate
        | PreviewEventTemplate
        | ListEventTemplateVersions
        | ApproveEventTemplate
        | RejectEventTemplate => Layer::Event,
        _ => return None,
    })
}

pub(super) async fn handle(ctx: &Ctx<'_>, route: RouteId) -> ApiResult {
    use RouteId::*;
    let Some(layer) = route_layer(route) else {
        return Err(ApiError::NoRoute(route.key().to_owned()));
    };
    match route {
        ListPlatformTemplates | ListTenantTemplates | ListEventTemplates => {
            list_templates(ctx, layer).await
        }
        GetPlatformTemplate | GetTenantTemplate | GetEventTemplate => {
            get_template(ctx, layer).await
        }
        PutPlatformTemplate | PutTenantTemplate | PutEventTemplate => {
            put_template(ctx, layer).await
        }
        DeletePlatformTemplate | DeleteTenantTemplate | DeleteEventTemplate => {
            delete_template(ctx, layer).await
        }
        PreviewPlatformTemplate | PreviewTenantTemplate | PreviewEventTemplate => {
            preview(ctx, layer).await
        }
        ListPlatformTemplateVersions | ListTenantTemplateVersions | ListEventTemplateVersions => {
            template_versions(ctx, layer).await
        }
        ApprovePlatformTemplate | ApproveTenantTemplate | ApproveEventTemplate => {
            review(ctx, layer, Verdict::Approve).await
        }
        RejectPlatformTemplate | RejectTenantTemplate | RejectEventTemplate => {
            review(ctx, layer, Verdict::Reject).await
        }
        _ => Err(ApiError::NoRoute(route.key().to_owned())),
    }
}

/// Whether a save at `owner` waits for a second person: always for platform (compliance)
/// templates; for a tenant's and its events', as the tenant's settings say (read fresh, not
/// through the send path's cache: a tenant that just turned approvals on is held to them).
pub(super) async fn needs_approval(app: &App, owner: &Owner) -> Result<bool, ApiError> {
    Ok(match owner {
        Owner::Platform => true,
        Owner::Tenant(tenant) | Owner::Event(tenant, _) => app
            .tenant_settings
            .tenant_settings(tenant)
            .await?
            .is_some_and(|s| s.value.templates_need_approval),
    })
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Approve,
    Reject,
}

/// A rejection's reason, for the author.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RejectInput {
    reason: BoundedText<MAX_REASON_CHARS>,
}

/// Approves (and so publishes) or rejects a submitted version.
async fn review(ctx: &Ctx<'_>, layer: Layer, verdict: Verdict) -> ApiResult {
    let owner = ctx.owner(layer, true)?;
    let (category, channel) = ctx.slot()?;
    let version: u32 = http::path_param(ctx.request, "version")
        .map_err(|_| ApiError::NotFound("template version"))?;
    let reason = match verdict {
        Verdict::Approve => None,
        Verdict::Reject => {
            let input: RejectInput = http::json_body(ctx.request)?;
            let reason = input.reason.into_inner();
            if reason.trim().is_empty() {
                return Err(FieldError::required("reason").into());
            }
            Some(reason)
        }
    };
    let submitted = ctx
        .app
        .templates
        .template_version(&owner, category, channel, version)
        .await?
        .ok_or(ApiError::NotFound("template version"))?;
    let now = OffsetDateTime::now_utc();
    let reviewer = ctx.caller.subject.as_str();
    let reviewed = match reason {
        None => submitted.approved(reviewer, now),
        Some(reason) => submitted.rejected(reviewer, now, reason),
    }
    .map_err(|refusal| match refusal {
        ReviewRefusal::OwnVersion => ApiError::Forbidden(Denied::OwnVersion),
        ReviewRefusal::NotSubmitted(state) => ApiError::Conflict {
            code: ErrorCode::NotSubmitted,
            message: format!(
                "version {version} is {}, not waiting for review",
                state.as_str()
            ),
        },
    })?;
    let action = match verdict {
        Verdict::Approve => "template.approved",
        Verdict::Reject => "template.rejected",
    };
    let audit = ctx.audit(
        action,
        template_target(&owner, category, channel),
        Some(&submitted),
        Some(&reviewed),
    );
    ctx.app
        .templates
        .review_template(&owner, &reviewed, &audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict {
                code: ErrorCode::ConcurrentChange,
                message: format!(
                    "version {version} was reviewed meanwhile, or a later version was published: read the versions again"
                ),
            },
            other => other.into(),
        })?;
    tracing::info!(%category, %channel, version, action, "template reviewed");
    let (kind, reason) = match verdict {
        Verdict::Approve => (StatusEventType::TemplateApproved, None),
        Verdict::Reject => (
            StatusEventType::TemplateRejected,
            reviewed.review.as_ref().and_then(|r| r.reason.clone()),
        ),
    };
    announce(ctx, &owner, kind, &reviewed, reason).await;
    http::respond(200, &reviewed)
}

/// Tells the tenant's status webhook endpoints about a step of a review, by the caller
/// (platform templates are no tenant's: none). Best effort: the change is made and audited
/// whatever the queue answers; a failure to queue is logged and counted.
async fn announce(
    ctx: &Ctx<'_>,
    owner: &Owner,
    kind: StatusEventType,
    template: &TemplateVersion,
    reason: Option<String>,
) {
    let (tenant, layer, event) = match owner {
        Owner::Platform => return,
        Owner::Tenant(tenant) => (tenant, ResolutionLayer::Tenant, None),
        Owner::Event(tenant, event) => (tenant, ResolutionLayer::Event, Some(event.clone())),
    };
    let data = TemplateData {
        layer,
        event,
        category: template.category,
        channel: template.channel,
        version: template.version,
        by: ctx.caller.subject.clone(),
        reason,
    };
    let status_event = StatusEvent::for_template(tenant, kind, data, OffsetDateTime::now_utc());
    if let Err(e) = ctx.app.status_events.publish(&[status_event]).await {
        tracing::error!(
            template_events_unqueued = 1,
            kind = kind.as_str(),
            error = %format!("{e:#}"),
            "template status event not queued"
        );
    }
}

fn template_target(owner: &Owner, category: Category, channel: Channel) -> String {
    match owner {
        Owner::Platform => format!("platform/template/{category}/{channel}"),
        Owner::Tenant(_) => format!("tenant/template/{category}/{channel}"),
        Owner::Event(_, e) => format!("event/{e}/template/{category}/{channel}"),
    }
}

/// The layer's published templates, or with `state=submitted` the versions waiting for review
/// (`reviewable=true`: only those the caller may approve, not their own).
async fn list_templates(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, false)?;
    let filter = ListFilter::from_request(ctx.request)?;
    // One read answers all: does the event exist, what is published, what waits for review.
    let content = ctx.app.templates.layer(&owner).await?;
    require_event(&owner, &content)?;
    let paging = Paging::from_request(
        ctx.request,
        &format!("templates#{}#{}", owner.partition(), filter.describe()),
    )?;
    let listed: Vec<TemplateVersion> = match filter.state {
        TemplateState::Published => content.templates,
        _ => content
            .pending
            .into_iter()
            .filter(|t| !filter.reviewable || t.created_by != ctx.caller.subject)
            .collect(),
    };
    let (page, next) = paging.slice(listed, |t| {
        format!("{}/{}/{:06}", t.category, t.channel, t.version)
    });
    paging.respond(&page, next.as_deref())
}

/// What a template list shows: published (the default) or submitted versions.
struct ListFilter {
    state: TemplateState,
    reviewable: bool,
}

impl ListFilter {
    fn from_request(request: &lambda_http::Request) -> Result<Self, ApiError> {
        let state = match http::query_param(request, "state").as_deref() {
            None | Some("published") => TemplateState::Published,
            Some("submitted") => TemplateState::Submitted,
            Some(_) => {
                return Err(FieldError::invalid(
                    "query.state",
                    "state is published or submitted (rejected versions are in the slot's versions)",
                )
                .into());
            }
        };
        let reviewable = match http::query_param(request, "reviewable").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(
                    FieldError::invalid("query.reviewable", "reviewable is true or false").into(),
                );
            }
        };
        if reviewable && state != TemplateState::Submitted {
            return Err(FieldError::invalid(
                "query.reviewable",
                "reviewable lists submitted versions: add state=submitted",
            )
            .into());
        }
        Ok(Self { state, reviewable })
    }

    fn describe(&self) -> String {
        format!("{}#{}", self.state.as_str(), self.reviewable)
    }
}

async fn get_template(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, false)?;
    let (category, channel) = ctx.slot()?;
    let t = ctx
        .app
        .templates
        .current_template(&owner, category, channel)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    http::respond(200, &t)
}

/// Renders a saved or draft template as the scope would (see [`super::template_preview`]).
async fn preview(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, false)?;
    let (category, channel) = ctx.slot()?;
    super::template_preview::preview(ctx.app, ctx.request, &owner, category, channel).await
}

async fn template_versions(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, false)?;
    let (category, channel) = ctx.slot()?;
    let paging = Paging::from_request(
        ctx.request,
        &format!(
            "template-versions#{}#{category}#{channel}",
            owner.partition()
        ),
    )?;
    let before = paging
        .after
        .as_deref()
        .map(|p| p.parse::<u32>().map_err(|_| http::paging::invalid_cursor()))
        .transpose()?;
    let (page, next) = ctx
        .app
        .templates
        .template_versions(&owner, category, channel, before, paging.limit)
        .await?;
    if page.is_empty() && before.is_none() {
        return Err(ApiError::NotFound("template"));
    }
    paging.respond(&page, next.map(|v| v.to_string()).as_deref())
}

async fn put_template(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, true)?;
    ctx.existing_event(&owner).await?;
    let (category, channel) = ctx.slot()?;
    let content: TemplateContent = http::json_body(ctx.request)?;
    content.check(channel)?;
    // A template that cannot render with its own samples can never become valid unedited.
    let samples = content.samples();
    match Renderer.render(channel, &content, &samples, &placeholder_brand()) {
        // A failure that other values could avoid (a filter given a sample it cannot take) is
        // left to completion, which renders with the event's own values.
        Ok(_) | Err(RenderError::Render { .. }) => {}
        Err(e @ RenderError::TooLarge { .. }) => {
            return Err(template_too_large(category, channel, &e));
        }
        Err(e) => return Err(template_invalid(e.part().to_owned(), &e)),
    }
    let latest = ctx
        .app
        .templates
        .latest_version(&owner, category, channel)
        .await?;
    let previous = ctx
        .app
        .templates
        .current_template(&owner, category, channel)
        .await?;
    let review = needs_approval(ctx.app, &owner).await?;
    let template = TemplateVersion {
        category,
        channel,
        version: latest + 1,
        content,
        created_by: ctx.caller.subject.clone(),
        created_at: OffsetDateTime::now_utc(),
        state: if review {
            TemplateState::Submitted
        } else {
            TemplateState::Published
        },
        review: None,
    };
    if review {
        // Waits for a second person; the published version (if any) stays in use.
        let audit = ctx.audit(
            "template.submitted",
            template_target(&owner, category, channel),
            previous.as_ref(),
            Some(&template),
        );
        ctx.app
            .templates
            .submit_template(&owner, &template, &audit)
            .await?;
        tracing::info!(%category, %channel, version = template.version, "template submitted for review");
        announce(
            ctx,
            &owner,
            StatusEventType::TemplateSubmitted,
            &template,
            None,
        )
        .await;
        return http::respond(202, &template);
    }
    let audit = ctx.audit(
        "template.published",
        template_target(&owner, category, channel),
        previous.as_ref(),
        Some(&template),
    );
    ctx.app
        .templates
        .put_template(&owner, &template, &audit)
        .await?;
    http::respond(if latest == 0 { 201 } else { 200 }, &template)
}

/// Brand values for a save-time render: every field present, so templates may use any of them.
fn placeholder_brand() -> BTreeMap<&'static str, &'static str> {
    crate::domain::brand::BRAND_FIELDS
        .iter()
        .map(|(name, _, _)| (*name, ""))
        .collect()
}

async fn delete_template(ctx: &Ctx<'_>, layer: Layer) -> ApiResult {
    let owner = ctx.owner(layer, true)?;
    let (category, channel) = ctx.slot()?;
    let current = ctx
        .app
        .templates
        .current_template(&owner, category, channel)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    let audit = ctx.audit(
        "template.removed",
        template_target(&owner, category, channel),
        Some(&current),
        None,
    );
    ctx.app
        .templates
        .remove_template(&owner, category, channel, current.version, &audit)
        .await?;
    http::no_content()
}

/// A template whose rendering goes past its part's limit: a 422 naming the template and the limit.
pub fn template_too_large(category: Category, channel: Channel, e: &RenderError) -> ApiError {
    let field = format!("templates.{category}.{channel}.{}", e.part());
    ApiError::Unprocessable {
        code: ErrorCode::TemplateTooLarge,
        message: format!("the {category} {channel} template is too large: {e}"),
        problems: vec![Problem::new(
            ErrorCode::TemplateTooLarge,
            field,
            e.to_string(),
        )],
    }
}

/// A template that did not render for a send: a variable the caller must give is missing (400
/// naming `variables_field`), it went past a limit, or it does not compile.
pub(super) fn render_refused(
    category: Category,
    channel: Channel,
    variables_field: String,
    e: RenderError,
) -> ApiError {
    match e {
        RenderError::Render { message, .. } => {
            FieldError::new(ErrorCode::MissingVariable, variables_field, message).into()
        }
        e @ RenderError::TooLarge { .. } => template_too_large(category, channel, &e),
        other => template_invalid(
            format!("templates.{category}.{channel}.{}", other.part()),
            &other,
        ),
    }
}

/// A template that does not compile or render: 422 `template_invalid`, its problem naming the
/// part (`field`) and, where the renderer knows it, the line and column.
pub(super) fn template_invalid(field: String, e: &RenderError) -> ApiError {
    let message = match e.position() {
        Some(at) => format!("{e} (line {}, column {})", at.line, at.column),
        None => e.to_string(),
    };
    ApiError::Unprocessable {
        code: ErrorCode::TemplateInvalid,
        message,
        problems: vec![
            Problem::new(ErrorCode::TemplateInvalid, field, e.to_string()).at(e.position()),
        ],
    }
}
