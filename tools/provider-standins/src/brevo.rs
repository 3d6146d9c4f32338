//! Brevo API v3: account details and transactional email (`/v3/smtp/email`), with the `api-key`
//! header and Brevo's `{"code", "message"}` error bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::accounts::BrevoAccount;
use crate::address::is_email;
use crate::gate::RequestSeq;
use crate::journal::{Channel, SentMessage};
use crate::{Provider, Shared, ids, json_response};

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v3/account", get(account))
        .route("/v3/smtp/email", post(send_email))
        .fallback(not_found)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        CONTENT_TYPE,
        &json!({ "code": code, "message": message.into() }),
    )
}

fn unauthenticated() -> Response {
    error(StatusCode::UNAUTHORIZED, "unauthorized", "Key not found")
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "document_not_found", "Not found")
}

pub(crate) fn fault_response(status: StatusCode) -> Response {
    let (code, message) = match status.as_u16() {
        401 => return unauthenticated(),
        402 => ("not_enough_credits", "Not enough credits"),
        403 => ("permission_denied", "Permission denied"),
        429 => ("too_many_requests", "Too many requests"),
        400..=499 => ("bad_request", "Bad request"),
        _ => ("internal_error", "Internal server error"),
    };
    let mut response = error(status, code, message);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let headers = response.headers_mut();
        headers.insert("x-sib-ratelimit-limit", HeaderValue::from_static("10"));
        headers.insert("x-sib-ratelimit-remaining", HeaderValue::from_static("0"));
        headers.insert("x-sib-ratelimit-reset", HeaderValue::from_static("1"));
    }
    response
}

/// The account behind the `api-key` header, if it is a registered key.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<BrevoAccount> {
    let key = headers.get("api-key").and_then(|v| v.to_str().ok())?;
    shared.registry().brevo_account(key).cloned()
}

async fn account(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(account) = authenticate(&shared, &headers) else {
        return unauthenticated();
    };
    let email = account
        .email
        .unwrap_or_else(|| "herald@example.com".to_owned());
    json_response(
        StatusCode::OK,
        CONTENT_TYPE,
        &json!({
            "email": email,
            "firstName": "Herald",
            "lastName": "Stand-in",
            "companyName": account.company_name.unwrap_or_else(|| "Herald".to_owned()),
            "address": { "street": "", "city": "", "zipCode": "", "country": "" },
            "plan": [{ "type": "free", "credits": 300, "creditsType": "sendLimit" }],
            "relay": {
                "enabled": true,
                "data": { "userName": email, "relay": "smtp-relay.brevo.com", "port": 587 }
            },
            "marketingAutomation": { "enabled": false }
        }),
    )
}

#[derive(Deserialize)]
struct Contact {
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendEmail {
    sender: Option<Contact>,
    to: Option<Vec<Contact>>,
    cc: Option<Vec<Contact>>,
    bcc: Option<Vec<Contact>>,
    subject: Option<String>,
    html_content: Option<String>,
    text_content: Option<String>,
    template_id: Option<Value>,
}

async fn send_email(
    State(shared): State<Arc<Shared>>,
    Extension(RequestSeq(seq)): Extension<RequestSeq>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if authenticate(&shared, &headers).is_none() {
        return unauthenticated();
    }
    let Ok(email) = serde_json::from_slice::<SendEmail>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Input must be a valid JSON object",
        );
    };
    let templated = email.template_id.is_some();
    let sender = match (&email.sender, templated) {
        (
            Some(Contact {
                email: Some(address),
                ..
            }),
            _,
        ) if is_email(address) => Some(address.clone()),
        (Some(_), _) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "valid sender email required",
            );
        }
        (None, true) => None,
        (None, false) => {
            return error(
                StatusCode::BAD_REQUEST,
                "missing_parameter",
                "sender is missing",
            );
        }
    };
    let Some(to) = email.to.filter(|to| !to.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_parameter",
            "to is missing",
        );
    };
    for (list, name) in [
        (Some(&to), "to"),
        (email.cc.as_ref(), "cc"),
        (email.bcc.as_ref(), "bcc"),
    ] {
        let valid = list
            .into_iter()
            .flatten()
            .all(|contact| contact.email.as_deref().is_some_and(is_email));
        if !valid {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("email is not valid in {name}"),
            );
        }
    }
    if !templated && email.subject.as_deref().is_none_or(str::is_empty) {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_parameter",
            "subject is missing",
        );
    }
    if !templated && email.html_content.is_none() && email.text_content.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_parameter",
            "htmlContent or textContent is missing",
        );
    }

    let now = OffsetDateTime::now_utc();
    let message_id = ids::brevo_message_id(now);
    let template = email.template_id.map(|id| match id {
        Value::String(s) => s,
        other => other.to_string(),
    });
    let text = email.text_content.or(email.html_content);
    shared.journal.record_sent(
        to.iter()
            .chain(email.cc.iter().flatten())
            .chain(email.bcc.iter().flatten())
            .filter_map(|contact| contact.email.clone())
            .map(|address| SentMessage {
                provider: Provider::Brevo,
                channel: Channel::Email,
                id: message_id.clone(),
                to: address,
                from: sender.clone(),
                subject: email.subject.clone(),
                body: text.clone(),
                template: template.clone(),
                language: None,
                request_seq: seq,
                sent_at: now,
            })
            .collect(),
    );
    json_response(
        StatusCode::CREATED,
        CONTENT_TYPE,
        &json!({ "messageId": message_id }),
    )
}
