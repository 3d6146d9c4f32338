//! A tenant's own settings, served by the configuration API: `GET /tenant/settings` (tenant
//! admins and event managers) and `PUT /tenant/settings` (tenant admins), today
//! `{message_retention_days, templates_need_approval}`. Stored with a revision and an audit entry like every other
//! configuration change; the send path picks a change up within a minute
//! ([`crate::retention`]).

use lambda_http::Request;
use serde::Serialize;

use super::routes::RouteId;
use crate::app::App;
use crate::domain::TenantId;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::identity::{Action, Caller};
use crate::domain::tenant_settings::TenantSettings;
use crate::http::{self, ApiError, ApiResult};
use crate::store::Revisioned;

/// Whether the configuration API hands `route` to this module.
pub fn serves(route: RouteId) -> bool {
    matches!(
        route,
        RouteId::GetTenantSettings | RouteId::PutTenantSettings
    )
}

/// The settings in force and where they come from: `tenant` (set by the tenant) or
/// `platform` (the deployment's default).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "TenantSettingsView")]
pub(super) struct View {
    message_retention_days: u32,
    templates_need_approval: bool,
    source: &'static str,
}

pub async fn handle(app: &App, request: &Request, caller: &Caller) -> ApiResult {
    let route = http::route(request);
    let Some(id) = RouteId::from_key(&route.0) else {
        return Err(ApiError::NoRoute(route.0));
    };
    match id {
        RouteId::GetTenantSettings => {
            let tenant = caller.tenant_for(Action::ReadTenant)?;
            http::respond(
                200,
                &view(app, app.tenant_settings.tenant_settings(tenant).await?),
            )
        }
        RouteId::PutTenantSettings => put(app, request, caller).await,
        _ => Err(ApiError::NoRoute(route.0)),
    }
}

fn view(app: &App, settings: Option<Revisioned<TenantSettings>>) -> View {
    match settings {
        Some(s) => View {
            message_retention_days: s.value.message_retention_days,
            templates_need_approval: s.value.templates_need_approval,
            source: "tenant",
        },
        None => View {
            message_retention_days: app.retention.default_days(),
            templates_need_approval: false,
            source: "platform",
        },
    }
}

async fn put(app: &App, request: &Request, caller: &Caller) -> ApiResult {
    let tenant: TenantId = caller.tenant_for(Action::WriteTenant)?.clone();
    let settings: TenantSettings = http::json_body(request)?;
    settings.check()?;
    let previous = app.tenant_settings.tenant_settings(&tenant).await?;
    let next = Revisioned {
        value: settings,
        revision: previous.as_ref().map_or(1, |p| p.revision + 1),
    };
    let audit = AuditEntry::new(
        caller,
        &http::request_id(request),
        "tenant.settings_updated",
        "tenant/settings".to_owned(),
        previous.as_ref().map(|p| digest(&p.value)),
        Some(digest(&next.value)),
    );
    app.tenant_settings
        .put_tenant_settings(&tenant, &next, &audit)
        .await?;
    http::respond(200, &view(app, Some(next)))
}
