//! Meta Graph API for WhatsApp Cloud: read a business phone number, send messages from it and
//! list its business account's message templates, with bearer tokens and Graph's
//! `{"error": {...}}` bodies.
//!
//! Sends follow WhatsApp's rules: a template send must name a registered, approved template in
//! that language with parameters matching its placeholders (see [`crate::meta_templates`]), and a
//! free-form send (text, media, interactive, ...) needs the customer's 24-hour window open (see
//! [`crate::windows`]), else 131047.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::accounts::{MetaAccess, MetaTemplate};
use crate::gate::RequestSeq;
use crate::journal::{Channel, SentMessage};
use crate::meta_templates::{self, Refusal};
use crate::windows::WindowKey;
use crate::{Provider, Shared, ids, json_response};

const CONTENT_TYPE: &str = "application/json; charset=UTF-8";
/// Templates per page when `limit` is not given, and the most a page holds.
const DEFAULT_TEMPLATE_PAGE: usize = 25;
const MAX_TEMPLATE_PAGE: usize = 100;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    // `{id}` is a phone number id, or a business account id for the template list.
    Router::new()
        .route("/{version}/{id}", get(phone_number))
        .route("/{version}/{id}/messages", post(send_message))
        .route("/{version}/{id}/message_templates", get(list_templates))
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

/// A WhatsApp error (`error_data.details`) with Cloud API's `(#code) title` message.
fn whatsapp_error(status: StatusCode, code: u32, title: &str, details: &str) -> Response {
    error(
        status,
        code,
        "OAuthException",
        format!("(#{code}) {title}"),
        Some(json!({ "error_data": { "messaging_product": "whatsapp", "details": details } })),
    )
}

fn template_refusal(refusal: Refusal) -> Response {
    match refusal {
        Refusal::NotFound { name, language } => whatsapp_error(
            StatusCode::NOT_FOUND,
            132_001,
            "Template name does not exist in the translation",
            &format!("template name ({name}) does not exist in {language}"),
        ),
        Refusal::Paused => whatsapp_error(
            StatusCode::BAD_REQUEST,
            132_015,
            "Template is Paused",
            "Template is paused due to low quality so it cannot be sent in a template message.",
        ),
        Refusal::Disabled => whatsapp_error(
            StatusCode::BAD_REQUEST,
            132_016,
            "Template is Disabled",
            "Template has been paused too many times due to low quality and is now permanently disabled.",
        ),
        Refusal::Count(details) => whatsapp_error(
            StatusCode::BAD_REQUEST,
            132_000,
            "Number of parameters does not match the expected number of params",
            &details,
        ),
        Refusal::Format(details) => whatsapp_error(
            StatusCode::BAD_REQUEST,
            132_012,
            "Parameter format does not match format in the created template",
            &details,
        ),
        Refusal::Invalid(details) => invalid_parameter("(#100) Invalid parameter", Some(&details)),
    }
}

fn window_closed() -> Response {
    whatsapp_error(
        StatusCode::BAD_REQUEST,
        131_047,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
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
    let waba = match shared.registry().meta_access(&id, &token) {
        MetaAccess::Granted(number) => number.business_account_id.clone(),
        MetaAccess::BadToken => return bad_token(),
        MetaAccess::NoSuchObject => return no_such_object("post", &id),
    };
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
    let (body_text, template, language) = match kind {
        "text" => match nested("text", &["body"]) {
            Some(text) if !text.is_empty() => (Some(text), None, None),
            _ => return invalid_parameter("(#100) The parameter text['body'] is required.", None),
        },
        "template" => {
            let Some(name) = nested("template", &["name"]) else {
                return invalid_parameter(
                    "(#100) The parameter template['name'] is required.",
                    None,
                );
            };
            let Some(language) = nested("template", &["language", "code"]) else {
                return invalid_parameter(
                    "(#100) The parameter template['language'] is required.",
                    None,
                );
            };
            let Some(Value::Object(send)) = message.get("template") else {
                return invalid_parameter(
                    "(#100) The parameter template['name'] is required.",
                    None,
                );
            };
            let filled = {
                let registry = shared.registry();
                let definition: Option<&MetaTemplate> = waba
                    .as_deref()
                    .and_then(|waba| registry.meta_template(waba, &name, &language));
                match definition {
                    Some(definition) => meta_templates::check(definition, send),
                    None => Err(Refusal::NotFound {
                        name: name.clone(),
                        language: language.clone(),
                    }),
                }
            };
            match filled {
                Ok(body) => (body, Some(name), Some(language)),
                Err(refusal) => return template_refusal(refusal),
            }
        }
        // Media, interactive and the rest: accepted as they come.
        other if message.contains_key(other) => (None, None, None),
        other => {
            return invalid_parameter(format!("(#100) The parameter {other} is required."), None);
        }
    };
    // Only templates may start a conversation: anything else needs the customer's window.
    let window = WindowKey::Meta {
        phone_number_id: id.clone(),
        wa_id: wa_id.clone(),
    };
    if kind != "template" && !shared.windows.is_open(&window, OffsetDateTime::now_utc()) {
        return window_closed();
    }

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
        language,
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

/// A paging cursor: the (name, language) of a template, opaque to the client.
fn cursor(template: &MetaTemplate) -> String {
    URL_SAFE_NO_PAD.encode(json!([template.name, template.language]).to_string())
}

fn decode_cursor(cursor: &str) -> Option<(String, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The template as `message_templates` lists it.
fn template_entry(template: &MetaTemplate) -> Value {
    let mut entry = json!({
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "category": template.category,
        "quality_score": { "score": template.quality_score },
        "rejected_reason": template.rejected_reason,
        "components": template.components,
    });
    if let (Some(format), Value::Object(fields)) = (&template.parameter_format, &mut entry) {
        fields.insert("parameter_format".into(), json!(format));
    }
    entry
}

/// `GET /{version}/{waba_id}/message_templates`: the business account's templates, in name then
/// language order, `limit` (default 25, at most 100) per page with Graph's cursor paging.
///
/// `name` keeps the templates with exactly that name: whether real Graph matches exactly or
/// partially is not confirmed, so clients should filter on name and language themselves too.
async fn list_templates(
    State(shared): State<Arc<Shared>>,
    Path((version, waba)): Path<(String, String)>,
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
    let query = query.as_deref();
    let limit = match query_param(query, "limit") {
        None => DEFAULT_TEMPLATE_PAGE,
        Some(limit) => match limit.parse::<usize>() {
            Ok(n) if n > 0 => n.min(MAX_TEMPLATE_PAGE),
            _ => {
                return invalid_parameter("(#100) Param limit must be a positive integer", None);
            }
        },
    };
    let after = match query_param(query, "after") {
        None => None,
        Some(after) => match decode_cursor(&after) {
            Some(key) => Some(key),
            None => {
                return invalid_parameter(
                    "(#100) Invalid parameter",
                    Some("Invalid cursor: after"),
                );
            }
        },
    };
    let name = query_param(query, "name");
    let wanted: Option<Vec<String>> =
        query_param(query, "fields").map(|f| f.split(',').map(|s| s.trim().to_owned()).collect());

    let registry = shared.registry();
    match registry.meta_waba_access(&waba, &token) {
        MetaAccess::Granted(_) => {}
        MetaAccess::BadToken => return bad_token(),
        MetaAccess::NoSuchObject => return no_such_object("get", &waba),
    }
    let mut page: Vec<&MetaTemplate> = registry
        .meta_templates_of(&waba)
        .filter(|t| name.as_deref().is_none_or(|n| t.name == n))
        .filter(|t| {
            after.as_ref().is_none_or(|(name, language)| {
                (t.name.as_str(), t.language.as_str()) > (name.as_str(), language.as_str())
            })
        })
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);

    let data: Vec<Value> = page
        .iter()
        .map(|template| {
            let mut entry = template_entry(template);
            if let (Some(wanted), Value::Object(fields)) = (&wanted, &mut entry) {
                fields.retain(|key, _| key == "id" || wanted.iter().any(|w| w == key));
            }
            entry
        })
        .collect();
    let mut answer = json!({ "data": data });
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        let mut paging = json!({
            "cursors": { "before": cursor(first), "after": cursor(last) },
        });
        if more && let Some(urls) = shared.urls.get() {
            // The same query with the next cursor, as Graph's `next` links are.
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
                if key != "after" && key != "before" {
                    next.append_pair(&key, &value);
                }
            }
            next.append_pair("after", &cursor(last));
            paging["next"] = json!(format!(
                "{}{}/{version}/{waba}/message_templates?{}",
                urls.base_url,
                Provider::Meta.prefix(),
                next.finish()
            ));
        }
        answer["paging"] = paging;
    }
    json_response(StatusCode::OK, CONTENT_TYPE, &answer)
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
