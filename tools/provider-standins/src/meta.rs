//! Meta Graph API for WhatsApp Cloud: read a business phone number and send messages from it,
//! with bearer tokens and Graph's `{"error": {...}}` bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::accounts::MetaAccess;
use crate::gate::RequestSeq;
use crate::journal::{Channel, SentMessage};
use crate::{Provider, Shared, ids, json_response};

const CONTENT_TYPE: &str = "application/json; charset=UTF-8";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{version}/{phone_number_id}", get(phone_number))
        .route("/{version}/{phone_number_id}/messages", post(send_message))
        .fallback(unknown_path)
}

/// A Graph error body; `details` goes to `error_data` as WhatsApp Cloud errors carry it.
fn error(
    status: StatusCode,
    code: u32,
    kind: &str,
    message: impl Into<String>,
    extra: Option<Value>,
) -> Response {
    let mut body = Map::new();
    body.insert("message".into(), Value::String(message.into()));
    body.insert("type".into(), Value::String(kind.to_owned()));
    body.insert("code".into(), json!(code));
    if let Some(Value::Object(extra)) = extra {
        body.extend(extra);
    }
    body.insert("fbtrace_id".into(), Value::String(ids::fbtrace_id()));
    json_response(status, CONTENT_TYPE, &json!({ "error": body }))
}

fn bad_token() -> Response {
    let message = "Invalid OAuth access token - Cannot parse access token";
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        190,
        "OAuthException",
        message,
        None,
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "OAuth \"Facebook Platform\" \"invalid_token\" \"{message}\""
    )) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn no_token() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        104,
        "OAuthException",
        "An access token is required to request this resource.",
        None,
    )
}

fn no_such_object(verb: &str, id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        100,
        "GraphMethodException",
        format!(
            "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ),
        Some(json!({ "error_subcode": 33 })),
    )
}

fn invalid_parameter(message: impl Into<String>, details: Option<&str>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        100,
        "OAuthException",
        message,
        details.map(|d| json!({ "error_data": { "messaging_product": "whatsapp", "details": d } })),
    )
}

async fn unknown_path(uri: Uri) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        2500,
        "OAuthException",
        format!("Unknown path components: {}", uri.path()),
        None,
    )
}

pub(crate) fn fault_response(status: StatusCode) -> Response {
    let whatsapp = |details: &str| {
        Some(json!({ "error_data": { "messaging_product": "whatsapp", "details": details } }))
    };
    match status.as_u16() {
        401 => bad_token(),
        429 => error(
            status,
            130_429,
            "OAuthException",
            "(#130429) Rate limit hit",
            whatsapp("Cloud API message throughput has been reached."),
        ),
        503 => error(
            status,
            131_016,
            "OAuthException",
            "(#131016) Service unavailable",
            whatsapp("A service is temporarily unavailable."),
        ),
        500..=599 => error(
            status,
            131_000,
            "OAuthException",
            "(#131000) Something went wrong",
            whatsapp("Something went wrong."),
        ),
        _ => error(
            status,
            1,
            "OAuthException",
            "An unknown error occurred",
            None,
        ),
    }
}

/// Graph versions look like `v21.0`.
fn is_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The bearer token, from the header or Graph's `access_token` query parameter.
fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
                .then(|| token.trim().to_owned())
        })
        .or_else(|| query_param(query, "access_token"))
}

async fn phone_number(
    State(shared): State<Arc<Shared>>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !is_version(&version) {
        return unknown_path(uri).await;
    }
    let Some(token) = token(&headers, query.as_deref()) else {
        return no_token();
    };
    let registry = shared.registry();
    let number = match registry.meta_access(&id, &token) {
        MetaAccess::Granted(number) => number,
        MetaAccess::BadToken => return bad_token(),
        MetaAccess::NoSuchObject => return no_such_object("get", &id),
    };
    let mut fields = json!({
        "verified_name": number.verified_name,
        "code_verification_status": "VERIFIED",
        "display_phone_number": number.display_phone_number,
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": { "level": "STANDARD" },
        "id": id,
    });
    // `?fields=a,b` narrows the answer to those fields (and the id), as Graph does.
    if let (Some(wanted), Value::Object(all)) =
        (query_param(query.as_deref(), "fields"), &mut fields)
    {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
        all.retain(|key, _| key == "id" || wanted.contains(&key.as_str()));
    }
    json_response(StatusCode::OK, CONTENT_TYPE, &fields)
}

async fn send_message(
    State(shared): State<Arc<Shared>>,
    Path((version, id)): Path<(String, String)>,
    Extension(RequestSeq(seq)): Extension<RequestSeq>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_version(&version) {
        return unknown_path(uri).await;
    }
    let Some(token) = token(&headers, query.as_deref()) else {
        return no_token();
    };
    match shared.registry().meta_access(&id, &token) {
        MetaAccess::Granted(_) => {}
        MetaAccess::BadToken => return bad_token(),
        MetaAccess::NoSuchObject => return no_such_object("post", &id),
    }
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(&body) else {
        return invalid_parameter(
            "(#100) Invalid parameter",
            Some("Request body must be a JSON object"),
        );
    };
    let text_field = |name: &str| message.get(name).and_then(Value::as_str);
    if text_field("messaging_product") != Some("whatsapp") {
        return invalid_parameter("(#100) The parameter messaging_product is required.", None);
    }
    let Some(to) = text_field("to").filter(|to| !to.is_empty()) else {
        return invalid_parameter("(#100) The parameter to is required.", None);
    };
    let wa_id: String = to.strip_prefix('+').unwrap_or(to).to_owned();
    if !(7..=15).contains(&wa_id.len()) || !wa_id.bytes().all(|b| b.is_ascii_digit()) {
        return invalid_parameter(
            "(#100) Invalid parameter",
            Some("Invalid WhatsApp phone number in parameter 'to'"),
        );
    }
    let kind = text_field("type").unwrap_or("text");
    let nested = |object: &str, path: &[&str]| {
        path.iter()
            .try_fold(message.get(object)?, |value, key| value.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (body_text, template) = match kind {
        "text" => match nested("text", &["body"]) {
            Some(text) if !text.is_empty() => (Some(text), None),
            _ => return invalid_parameter("(#100) The parameter text['body'] is required.", None),
        },
        "template" => {
            let Some(name) = nested("template", &["name"]) else {
                return invalid_parameter(
                    "(#100) The parameter template['name'] is required.",
                    None,
                );
            };
            if nested("template", &["language", "code"]).is_none() {
                return invalid_parameter(
                    "(#100) The parameter template['language'] is required.",
                    None,
                );
            }
            (None, Some(name))
        }
        // Media, interactive and the rest: accepted as they come.
        other if message.contains_key(other) => (None, None),
        other => {
            return invalid_parameter(format!("(#100) The parameter {other} is required."), None);
        }
    };

    let message_id = ids::whatsapp_message_id(&wa_id);
    let mut sent = json!({ "id": message_id });
    if kind == "template"
        && let Value::Object(sent) = &mut sent
    {
        // Template sends report their pacing status; free-form ones do not.
        sent.insert("message_status".into(), Value::String("accepted".into()));
    }
    shared.journal.record_sent(vec![SentMessage {
        provider: Provider::Meta,
        channel: Channel::Whatsapp,
        id: message_id,
        to: to.to_owned(),
        from: Some(id),
        subject: None,
        body: body_text,
        template,
        request_seq: seq,
        sent_at: OffsetDateTime::now_utc(),
    }]);
    json_response(
        StatusCode::OK,
        CONTENT_TYPE,
        &json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": wa_id }],
            "messages": [sent],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(is_version("v21.0"));
        assert!(is_version("v9.10"));
        assert!(!is_version("21.0"));
        assert!(!is_version("v21"));
        assert!(!is_version("vX.0"));
    }
}
