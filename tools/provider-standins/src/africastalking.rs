//! Africa's Talking SMS API `version1`: user data (balance), form-encoded `messaging` and JSON
//! `messaging/bulk`, with the `apiKey` header, per-recipient status codes and a running balance.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::accounts::AtApplication;
use crate::address::{is_e164, sms_segments};
use crate::gate::RequestSeq;
use crate::journal::{Channel, SentMessage};
use crate::{Provider, Shared, ids, json_response};

/// The official SDKs compare the content type to exactly this string before parsing JSON.
const JSON: &str = "application/json";
/// Price of one SMS part, in ten-thousandths of a shilling (KES 0.8000).
const PART_PRICE: i64 = 8_000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/version1/user", get(user))
        .route("/version1/messaging", post(send_form))
        .route("/version1/messaging/bulk", post(send_bulk))
        .fallback(not_found)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body.into(),
    )
        .into_response()
}

/// Africa's Talking answers bad credentials with this plain-text body.
fn unauthenticated() -> Response {
    text(
        StatusCode::UNAUTHORIZED,
        "The supplied authentication is invalid",
    )
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Not Found")
}

pub(crate) fn fault_response(status: StatusCode) -> Response {
    if status == StatusCode::UNAUTHORIZED {
        return unauthenticated();
    }
    text(status, status.canonical_reason().unwrap_or("Error"))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("json"))
}

fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers.get("apikey").and_then(|v| v.to_str().ok())
}

fn kes(ten_thousandths: i64) -> String {
    format!(
        "KES {}.{:04}",
        ten_thousandths / 10_000,
        (ten_thousandths % 10_000).abs()
    )
}

fn xml_escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The JSON answer, or the XML one Africa's Talking sends when JSON was not asked for.
fn respond(status: StatusCode, headers: &HeaderMap, body: &Value) -> Response {
    if wants_json(headers) {
        return json_response(status, JSON, body);
    }
    let xml = format!(
        "<?xml version='1.0' encoding='UTF-8'?><AfricasTalkingResponse>{}</AfricasTalkingResponse>",
        to_xml(body, None)
    );
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        )],
        xml,
    )
        .into_response()
}

fn to_xml(value: &Value, element: Option<&str>) -> String {
    let wrap = |inner: String| match element {
        Some(name) => format!("<{name}>{inner}</{name}>"),
        None => inner,
    };
    match value {
        Value::Object(fields) => wrap(
            fields
                .iter()
                .map(|(name, value)| to_xml(value, Some(name)))
                .collect(),
        ),
        // Lists are wrapped in their plural name, one element per item in the singular.
        Value::Array(items) => {
            let item_name = element.map(|name| name.strip_suffix('s').unwrap_or(name));
            wrap(items.iter().map(|item| to_xml(item, item_name)).collect())
        }
        Value::String(s) => wrap(xml_escape(s)),
        Value::Null => wrap(String::new()),
        other => wrap(other.to_string()),
    }
}

async fn user(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let username = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(key, _)| key == "username")
            .map(|(_, value)| value.into_owned())
    });
    let (Some(username), Some(key)) = (username, api_key(&headers)) else {
        return unauthenticated();
    };
    let mut registry = shared.registry_mut();
    let Some(app) = registry.africastalking_app(&username, key) else {
        return unauthenticated();
    };
    respond(
        StatusCode::OK,
        &headers,
        &json!({ "UserData": { "balance": kes(app.balance) } }),
    )
}

/// What both send endpoints boil down to.
struct Send {
    username: Option<String>,
    recipients: Vec<String>,
    message: Option<String>,
    from: Option<String>,
}

async fn send_form(
    State(shared): State<Arc<Shared>>,
    Extension(RequestSeq(seq)): Extension<RequestSeq>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    let send = Send {
        username: field("username"),
        recipients: field("to")
            .map(|to| {
                to.split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        message: field("message"),
        from: field("from"),
    };
    deliver(
        &shared,
        &headers,
        send,
        seq,
        ["form field 'to'", "form field 'message'"],
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkRequest {
    username: Option<String>,
    message: Option<String>,
    sender_id: Option<String>,
    #[serde(default)]
    phone_numbers: Vec<String>,
}

async fn send_bulk(
    State(shared): State<Arc<Shared>>,
    Extension(RequestSeq(seq)): Extension<RequestSeq>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(bulk) = serde_json::from_slice::<BulkRequest>(&body) else {
        return text(StatusCode::BAD_REQUEST, "Invalid JSON request body");
    };
    let send = Send {
        username: bulk.username,
        recipients: bulk.phone_numbers,
        message: bulk.message.filter(|m| !m.is_empty()),
        from: bulk.sender_id.filter(|s| !s.is_empty()),
    };
    deliver(
        &shared,
        &headers,
        send,
        seq,
        ["field 'phoneNumbers'", "field 'message'"],
    )
}

/// Checks credentials first (as the real API does), then the request's shape, then charges
/// each recipient. `missing` names the recipients and message fields for error texts.
fn deliver(
    shared: &Shared,
    headers: &HeaderMap,
    send: Send,
    seq: u64,
    missing: [&str; 2],
) -> Response {
    let now = OffsetDateTime::now_utc();
    let mut sent = Vec::new();
    let (recipients, total_cost) = {
        let mut registry = shared.registry_mut();
        let app = match (send.username.as_deref(), api_key(headers)) {
            (Some(username), Some(key)) => registry.africastalking_app(username, key),
            _ => None,
        };
        let Some(app) = app else {
            return unauthenticated();
        };
        if send.recipients.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Request is missing required {}", missing[0]),
            );
        }
        let Some(message) = send.message else {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Request is missing required {}", missing[1]),
            );
        };
        let parts = i64::try_from(sms_segments(&message)).unwrap_or(i64::MAX);
        charge(
            app,
            &send.recipients,
            parts.saturating_mul(PART_PRICE),
            |number, id| {
                sent.push(SentMessage {
                    provider: Provider::AfricasTalking,
                    channel: Channel::Sms,
                    id: id.to_owned(),
                    to: number.to_owned(),
                    from: send.from.clone(),
                    subject: None,
                    body: Some(message.clone()),
                    template: None,
                    language: None,
                    request_seq: seq,
                    sent_at: now,
                });
            },
        )
    };
    let accepted = sent.len();
    shared.journal.record_sent(sent);
    let summary = if accepted == 0 {
        format!("Sent to 0/{} Total Cost: 0", recipients.len())
    } else {
        format!(
            "Sent to {accepted}/{} Total Cost: {}",
            recipients.len(),
            kes(total_cost)
        )
    };
    respond(
        StatusCode::CREATED,
        headers,
        &json!({ "SMSMessageData": { "Message": summary, "Recipients": recipients } }),
    )
}

/// One recipient entry per number: 101 Success (charged), 403 InvalidPhoneNumber or
/// 405 InsufficientBalance. Calls `accepted` for each charged one.
fn charge(
    app: &mut AtApplication,
    numbers: &[String],
    cost: i64,
    mut accepted: impl FnMut(&str, &str),
) -> (Vec<Value>, i64) {
    let mut total = 0;
    let rejected = |number: &str, code: u16, status: &str| {
        json!({
            "statusCode": code,
            "number": number,
            "status": status,
            "cost": "0",
            "messageId": "None",
        })
    };
    let entries = numbers
        .iter()
        .map(|number| {
            if !is_e164(number) {
                return rejected(number, 403, "InvalidPhoneNumber");
            }
            if app.balance < cost {
                return rejected(number, 405, "InsufficientBalance");
            }
            app.balance -= cost;
            total += cost;
            let id = ids::africastalking_message_id();
            accepted(number, &id);
            json!({
                "statusCode": 101,
                "number": number,
                "status": "Success",
                "cost": kes(cost),
                "messageId": id,
            })
        })
        .collect();
    (entries, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_like_the_api() {
        assert_eq!(kes(8_000), "KES 0.8000");
        assert_eq!(kes(10_000_000), "KES 1000.0000");
        assert_eq!(kes(9_999_992_000), "KES 999999.2000");
    }

    #[test]
    fn xml_mirrors_the_json() {
        let body = json!({"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [
            {"statusCode": 101, "number": "+254711000000", "status": "Success"}
        ]}});
        let xml = to_xml(&body, None);
        assert!(xml.starts_with("<SMSMessageData>") && xml.ends_with("</SMSMessageData>"));
        assert!(xml.contains("<Message>Sent to 1/1</Message>"));
        assert!(
            xml.contains("<Recipients><Recipient>") && xml.contains("</Recipient></Recipients>")
        );
        for part in [
            "<statusCode>101</statusCode>",
            "<number>+254711000000</number>",
            "<status>Success</status>",
        ] {
            assert!(xml.contains(part), "{xml}");
        }
    }
}
