//! Wizard completion and snapshots: `POST /events/{eventId}/wizard/complete` validates the whole
//! configuration and activates a new snapshot; snapshots can be listed, read and re-activated
//! (rollback). Operations only ever read the active snapshot.

use lambda_http::Request;
use time::OffsetDateTime;

use super::routes::RouteId;
use crate::app::App;
use crate::domain::ErrorCode;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::identity::Action;
use crate::domain::snapshot::Snapshot;
use crate::domain::{EventId, TenantId};
use crate::http::{self, ApiError, ApiResult, Paging};
use crate::resolution::{redact_credentials, resolve_event};
use crate::store::StoreError;
use crate::wizard::{check_configuration, check_providers, check_whatsapp_templates};

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let route = http::route(&request);
    let Some(id) = RouteId::from_key(&route.0) else {
        return Err(ApiError::NoRoute(route.0));
    };
    match id {
        RouteId::CompleteWizard => complete(app, &request).await,
        RouteId::ListSnapshots => list(app, &request).await,
        RouteId::GetSnapshot => get(app, &request).await,
        RouteId::ActivateSnapshot => activate(app, &request).await,
        RouteId::CheckWhatsappTemplates => whatsapp_templates(app, &request).await,
        _ => Err(ApiError::NoRoute(route.0)),
    }
}

fn target(tenant: &TenantId, event: &EventId) -> String {
    format!("{tenant}/event/{event}/snapshot")
}

/// Completion is idempotent per `Idempotency-Key` (required): a repeat returns the first success.
async fn complete(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::WriteEvent)?.clone();
    let event: EventId = http::path_param(request, "eventId")?;
    let scope = format!("wizard-complete#{tenant}#{event}");
    super::idempotency::once(app, request, &scope, true, || {
        validate_and_activate(app, request, &caller, &tenant, &event)
    })
    .await
}

async fn validate_and_activate(
    app: &App,
    request: &Request,
    caller: &crate::domain::identity::Caller,
    tenant: &TenantId,
    event: &EventId,
) -> Result<(u16, serde_json::Value), ApiError> {
    let configuration = resolve_event(
        app.providers.as_ref(),
        app.templates.as_ref(),
        tenant,
        event,
    )
    .await?
    .ok_or(ApiError::NotFound("event"))?;
    let mut problems = check_configuration(&configuration);
    let (provider_checks, provider_problems, warnings) =
        check_providers(&configuration, app.vault.as_ref(), app.checker.as_ref()).await;
    problems.extend(provider_problems);
    let (whatsapp_templates, template_problems, template_warnings) =
        check_whatsapp_templates(&configuration, app.vault.as_ref(), app.checker.as_ref()).await;
    problems.extend(template_problems);
    let mut warnings = warnings;
    warnings.extend(template_warnings);
    if !problems.is_empty() {
        problems.sort();
        tracing::info!(
            problems = problems.len(),
            "configuration invalid; nothing activated"
        );
        return Err(ApiError::Unprocessable {
            code: ErrorCode::ConfigurationInvalid,
            message: format!(
                "the event configuration has {} problem(s); nothing was activated",
                problems.len()
            ),
            problems,
        });
    }
    let previous = app
        .snapshots
        .activation(tenant, event)
        .await?
        .map(|a| a.version);
    let version = app.snapshots.latest_version(tenant, event).await? + 1;
    let snapshot = Snapshot {
        version,
        created_at: OffsetDateTime::now_utc(),
        created_by: caller.subject.clone(),
        digest: digest(&configuration),
        configuration,
        provider_checks,
    };
    let audit = AuditEntry::new(
        caller,
        &http::request_id(request),
        "snapshot.activated",
        target(tenant, event),
        previous.map(|v| format!("version {v}")),
        Some(format!("version {version} sha256:{}", snapshot.digest)),
    );
    let activation = app
        .snapshots
        .create_and_activate(tenant, event, &snapshot, previous, &audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict {
                code: ErrorCode::ConcurrentCompletion,
                message:
                    "another completion of this event finished first; read the snapshots and retry"
                        .to_owned(),
            },
            other => other.into(),
        })?;
    tracing::info!(version, "snapshot activated");
    let completed = Completed {
        version,
        digest: &snapshot.digest,
        activated_at: activation.activated_at,
        previous_version: previous,
        provider_checks: &snapshot.provider_checks,
        whatsapp_templates: &whatsapp_templates,
        warnings: &warnings,
    };
    let mut body = serde_json::to_value(&completed).map_err(|e| ApiError::Internal(e.into()))?;
    redact_credentials(&mut body);
    Ok((201, body))
}

/// The answer to a completion: the snapshot made active, its providers' live checks and what
/// is worth a look without blocking it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Completed<'a> {
    version: u32,
    /// SHA-256 of the configuration's canonical JSON, as audited.
    digest: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    activated_at: OffsetDateTime,
    previous_version: Option<u32>,
    provider_checks: &'a [crate::domain::snapshot::ProviderCheck],
    /// Each WhatsApp slot's registered template as each WhatsApp provider reports it (status,
    /// quality rating).
    whatsapp_templates: &'a [crate::domain::whatsapp::Registration],
    warnings: &'a [crate::domain::snapshot::Problem],
}

/// A snapshot in the list (without its configuration) and whether it is the active one.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Listed<'a> {
    #[serde(flatten)]
    snapshot: &'a crate::store::SnapshotSummary,
    active: bool,
}

/// What the event's WhatsApp providers say now of its registered templates: the check
/// completion makes, on the draft configuration, without activating anything.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Registrations {
    registrations: Vec<crate::domain::whatsapp::Registration>,
    /// What would refuse completion (`whatsapp_template_not_approved`).
    problems: Vec<crate::domain::snapshot::Problem>,
    /// `whatsapp_template_unregistered`: slots that reach a provider only inside the window.
    warnings: Vec<crate::domain::snapshot::Problem>,
}

async fn whatsapp_templates(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::ReadEvent)?;
    let event: EventId = http::path_param(request, "eventId")?;
    let configuration = resolve_event(
        app.providers.as_ref(),
        app.templates.as_ref(),
        tenant,
        &event,
    )
    .await?
    .ok_or(ApiError::NotFound("event"))?;
    let (registrations, problems, warnings) =
        check_whatsapp_templates(&configuration, app.vault.as_ref(), app.checker.as_ref()).await;
    http::respond(
        200,
        &Registrations {
            registrations,
            problems,
            warnings,
        },
    )
}

async fn list(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::ReadEvent)?;
    let event: EventId = http::path_param(request, "eventId")?;
    let paging = Paging::from_request(request, &format!("snapshots#{tenant}#{event}"))?;
    let before = paging
        .after
        .as_deref()
        .map(|p| p.parse::<u32>().map_err(|_| http::paging::invalid_cursor()))
        .transpose()?;
    let ((page, next), active) = tokio::try_join!(
        app.snapshots
            .snapshots(tenant, &event, before, paging.limit),
        app.snapshots.activation(tenant, &event)
    )?;
    if page.is_empty() && before.is_none() {
        return Err(ApiError::NotFound("event snapshots"));
    }
    let next = next.map(|v| v.to_string());
    let active = active.map(|a| a.version);
    let listed: Vec<Listed<'_>> = page
        .iter()
        .map(|snapshot| Listed {
            snapshot,
            active: Some(snapshot.version) == active,
        })
        .collect();

    paging.respond(&listed, next.as_deref())
}

async fn get(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::ReadEvent)?;
    let event: EventId = http::path_param(request, "eventId")?;
    let version: u32 =
        http::path_param(request, "version").map_err(|_| ApiError::NotFound("snapshot"))?;
    let snapshot = app
        .snapshots
        .snapshot(tenant, &event, version)
        .await?
        .ok_or(ApiError::NotFound("snapshot"))?;
    let mut body = serde_json::to_value(&snapshot).map_err(|e| ApiError::Internal(e.into()))?;
    redact_credentials(&mut body);
    http::respond(200, &body)
}

/// Rollback (or roll forward): makes an existing version the active one.
async fn activate(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::WriteEvent)?.clone();
    let event: EventId = http::path_param(request, "eventId")?;
    let version: u32 =
        http::path_param(request, "version").map_err(|_| ApiError::NotFound("snapshot"))?;
    let current = app.snapshots.activation(&tenant, &event).await?;
    if current.as_ref().is_some_and(|a| a.version == version) {
        return http::respond(200, &current);
    }
    let previous = current.map(|a| a.version);
    let audit = AuditEntry::new(
        &caller,
        &http::request_id(request),
        "snapshot.activated",
        target(&tenant, &event),
        previous.map(|v| format!("version {v}")),
        Some(format!("version {version}")),
    );
    let activation = match app
        .snapshots
        .activate(&tenant, &event, version, previous, &audit)
        .await
    {
        Ok(a) => a,
        // Either the version does not exist, or the active version changed meanwhile.
        Err(StoreError::Conflict)
            if app
                .snapshots
                .snapshot(&tenant, &event, version)
                .await?
                .is_none() =>
        {
            return Err(ApiError::NotFound("snapshot"));
        }
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict {
                code: ErrorCode::ConcurrentActivation,
                message: "the active version changed meanwhile; read the snapshots and retry"
                    .to_owned(),
            });
        }
        Err(other) => return Err(other.into()),
    };
    tracing::info!(version, "snapshot re-activated");
    http::respond(200, &activation)
}
