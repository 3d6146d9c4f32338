//! Compliance reports, served by the configuration API:
//! `GET /tenant/reports/compliance?from=...&to=...&format=json|csv`. A tenant's messages by
//! channel and status, failures with reasons, opt-outs and suppressions, configuration changes
//! with their actors, and costs, over a period of at most 366 days. Tenant admins and event
//! managers read their own tenant's; platform admins name the tenant with `tenant=`.

use lambda_http::{Body, Request};

use super::routes::RouteId;
use crate::app::App;
use crate::domain::ErrorCode;
use crate::domain::TenantId;
use crate::domain::identity::{Action, Caller, Role};
use crate::domain::report::Period;
use crate::domain::validation::FieldError;
use crate::http::{self, ApiError, ApiResult};
use crate::reports::{self, Limits, ReportError, Sources};

/// Largest answer sent (Lambda returns at most 6 MB, headers and encoding included).
const MAX_ANSWER_BYTES: usize = 5_500_000;

/// Whether the configuration API hands `route` to this module.
pub fn serves(route: RouteId) -> bool {
    matches!(route, RouteId::GetComplianceReport)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

pub async fn handle(app: &App, request: &Request, caller: &Caller) -> ApiResult {
    let route = http::route(request);
    if RouteId::from_key(&route.0) != Some(RouteId::GetComplianceReport) {
        return Err(ApiError::NoRoute(route.0));
    }
    let query = |name: &str| http::query_param(request, name);
    let tenant = report_tenant(caller, query("tenant"))?;
    let period = Period::parse(query("from").as_deref(), query("to").as_deref())
        .map_err(|e| FieldError::new(e.code, format!("query.{}", e.field), e.message))?;
    let format = match query("format").as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(FieldError::invalid("query.format", "format is json or csv").into());
        }
    };
    let report = reports::compliance(Sources::of(app), &tenant, period, Limits::API)
        .await
        .map_err(|e| match e {
            ReportError::TooLarge { .. } => too_large(&e.to_string()),
            ReportError::Store(e) => e.into(),
        })?;
    tracing::info!(
        role = ?caller.role,
        messages = report.totals.messages,
        configuration_changes = report.totals.configuration_changes,
        "compliance report"
    );
    let (body, content_type) = match format {
        Format::Json => (
            serde_json::to_string(&report).map_err(|e| ApiError::Internal(e.into()))?,
            "application/json",
        ),
        Format::Csv => (
            String::from_utf8(reports::to_csv(&report).map_err(|e| ApiError::Internal(e.into()))?)
                .map_err(|e| ApiError::Internal(e.into()))?,
            "text/csv; charset=utf-8",
        ),
    };
    if body.len() > MAX_ANSWER_BYTES {
        return Err(too_large("the report is too large to answer"));
    }
    let mut response = lambda_http::Response::builder()
        .status(200)
        .header("content-type", content_type);
    if format == Format::Csv {
        let day = |t: time::OffsetDateTime| t.date().to_string();
        response = response.header(
            "content-disposition",
            format!(
                "attachment; filename=\"compliance-{}-{}-{}.csv\"",
                report.tenant,
                day(report.from),
                day(report.to)
            ),
        );
    }
    response
        .body(Body::Text(body))
        .map_err(|e| ApiError::Internal(e.into()))
}

fn too_large(why: &str) -> ApiError {
    ApiError::Unprocessable {
        code: ErrorCode::ReportTooLarge,
        message: format!("{why}, or use the operator CLI (herald report compliance)"),
        problems: Vec::new(),
    }
}

/// The tenant the report is about: the caller's own, or for platform admins the one named.
/// Naming another tenant than one's own is answered like any other tenant's data: 404.
fn report_tenant(caller: &Caller, requested: Option<String>) -> Result<TenantId, ApiError> {
    if caller.role == Role::PlatformAdmin {
        let requested = requested.ok_or_else(|| FieldError::required("query.tenant"))?;
        return TenantId::parse(&requested)
            .map_err(|_| FieldError::invalid("query.tenant", "not a tenant id").into());
    }
    let own = caller.tenant_for(Action::ReadTenant)?;
    match requested {
        Some(other) if other != own.as_str() => Err(ApiError::NotFound("tenant")),
        _ => Ok(own.clone()),
    }
}
