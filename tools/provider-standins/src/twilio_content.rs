//! Twilio Content API v1 (real host `https://content.twilio.com`, here under
//! [`crate::TWILIO_CONTENT_PREFIX`]): fetch a content template and its WhatsApp approval
//! request, with the Messages API's Basic auth and error bodies. Contents are registered like
//! credentials ([`crate::TwilioContent`]); another account's content is 404 / 20404, as an
//! unknown one is.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::accounts::StoredContent;
use crate::twilio::{self, CONTENT_TYPE};
use crate::{Shared, json_response};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/Content/{sid}", get(fetch_content))
        .route("/v1/Content/{sid}/ApprovalRequests", get(fetch_approval))
        .fallback(not_found)
}

async fn not_found(uri: Uri) -> Response {
    twilio::resource_not_found(uri.path())
}

/// ISO 8601 to the second, as the Content API writes dates (`2026-01-02T03:04:05Z`).
fn iso8601(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The content `sid`, if the request's credentials belong to its account; else the answer.
fn authorised(
    shared: &Shared,
    headers: &HeaderMap,
    sid: &str,
    uri: &Uri,
    answer: impl FnOnce(&StoredContent, &str) -> Value,
) -> Response {
    let Some(account_sid) = twilio::authenticated_account(shared, headers) else {
        return twilio::unauthenticated();
    };
    let registry = shared.registry();
    let Some(content) = registry
        .twilio_content(sid)
        .filter(|c| c.content.account_sid == account_sid)
    else {
        return twilio::resource_not_found(uri.path());
    };
    let base = shared
        .urls
        .get()
        .map(|urls| urls.twilio_content.clone())
        .unwrap_or_default();
    let url = format!("{base}/v1/Content/{}", content.sid);
    json_response(StatusCode::OK, CONTENT_TYPE, &answer(content, &url))
}

/// `GET /v1/Content/{sid}`.
async fn fetch_content(
    State(shared): State<Arc<Shared>>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    authorised(&shared, &headers, &sid, &uri, |stored, url| {
        let content = &stored.content;
        json!({
            "sid": stored.sid,
            "account_sid": content.account_sid,
            "friendly_name": content.friendly_name,
            "language": content.language,
            "variables": content.variables,
            "types": content.types,
            "url": url,
            "links": {
                "approval_fetch": format!("{url}/ApprovalRequests"),
                "approval_create": format!("{url}/ApprovalRequests/whatsapp"),
            },
            "date_created": iso8601(stored.created),
            "date_updated": iso8601(stored.updated),
        })
    })
}

/// `GET /v1/Content/{sid}/ApprovalRequests`: the WhatsApp approval state.
async fn fetch_approval(
    State(shared): State<Arc<Shared>>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    authorised(&shared, &headers, &sid, &uri, |stored, url| {
        let content = &stored.content;
        let content_type = content
            .types
            .as_object()
            .and_then(|types| types.keys().next().cloned());
        json!({
            "account_sid": content.account_sid,
            "sid": stored.sid,
            "url": format!("{url}/ApprovalRequests"),
            "whatsapp": {
                "name": stored.approval_name(),
                "category": content.category,
                "content_type": content_type,
                "status": content.approval_status,
                "rejection_reason": content.rejection_reason,
                "allow_category_change": true,
                "type": "whatsapp",
                "flows": null,
            },
        })
    })
}
