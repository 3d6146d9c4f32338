//! Twilio REST API 2010-04-01: fetch the Account resource, create Message resources (SMS and
//! `whatsapp:` addresses) and fetch them back, with Twilio's Basic auth, error bodies and
//! test-number behaviour. A message's `StatusCallback` URL later receives its status changes
//! (see [`crate::callbacks`]); a fetched message shows the status reached so far and, once it
//! has ended, its `price` (negative, per Twilio's convention), which Twilio reports only after
//! sending.
//!
//! A message may name a Content API template (`ContentSid` + `ContentVariables`, see
//! [`crate::twilio_content`]) instead of a `Body`. WhatsApp messages follow WhatsApp's rules the
//! way Twilio reports them, after the 201, through the status callback: a content that is not
//! approved fails with 63027, variables that do not fit the content with 63028, and a free-form
//! message (no `ContentSid`) outside the customer's 24-hour window with 63016.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::address::{is_e164, sms_segments};
use crate::callbacks::{self, Delivery, DeliveryOutcome};
use crate::gate::RequestSeq;
use crate::journal::{Channel, SentMessage};
use crate::meta_templates::{fill, placeholders};
use crate::windows::WindowKey;
use crate::{Provider, Shared, ids, json_response};

const API_VERSION: &str = "2010-04-01";
pub(crate) const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Most `ContentVariables` Twilio takes.
const MAX_CONTENT_VARIABLES: usize = 100;
/// WhatsApp failures reported through the status callback.
const WHATSAPP_OUTSIDE_WINDOW: u32 = 63016;
const WHATSAPP_TEMPLATE_NOT_APPROVED: u32 = 63027;
const WHATSAPP_TEMPLATE_PARAMETERS: u32 = 63028;
const MAX_BODY_CHARS: usize = 1600;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/2010-04-01/Accounts/{account}", get(fetch_account))
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(create_message),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Messages/{message}",
            get(fetch_message),
        )
        .fallback(not_found)
}

/// Most Message resources kept for fetching (the oldest go first).
const MAX_KEPT_MESSAGES: usize = 100_000;
/// What the stand-in bills per SMS segment (Twilio's US rate), and per WhatsApp message.
const SMS_SEGMENT_PRICE_MICROS: u64 = 7_900;
const WHATSAPP_PRICE_MICROS: u64 = 5_000;

/// Created Message resources by SID, with their owning account, bounded.
#[derive(Default)]
pub(crate) struct MessageResources {
    inner: std::sync::Mutex<KeptMessages>,
}

/// Resources by SID (with the account that owns each), and SIDs oldest first.
type KeptMessages = (
    std::collections::HashMap<String, (String, serde_json::Value)>,
    std::collections::VecDeque<String>,
);

impl MessageResources {
    fn insert(&self, account: &str, resource: serde_json::Value) {
        let Some(sid) = resource["sid"].as_str().map(str::to_owned) else {
            return;
        };
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_sid, order) = &mut *inner;
        if order.len() >= MAX_KEPT_MESSAGES
            && let Some(oldest) = order.pop_front()
        {
            by_sid.remove(&oldest);
        }
        order.push_back(sid.clone());
        by_sid.insert(sid, (account.to_owned(), resource));
    }

    fn get(&self, account: &str, sid: &str) -> Option<serde_json::Value> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .0
            .get(sid)
            .filter(|(owner, _)| owner == account)
            .map(|(_, resource)| resource.clone())
    }

    /// Moves a message to `status` (with its error code); an ended message gets its price.
    pub(crate) fn advance(&self, sid: &str, status: &str, error_code: Option<u32>) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((_, resource)) = inner.0.get_mut(sid) else {
            return;
        };
        let now = rfc2822(OffsetDateTime::now_utc());
        resource["status"] = json!(status);
        resource["date_updated"] = json!(now);
        if status == "sent" {
            resource["date_sent"] = json!(now);
        }
        if let Some(code) = error_code {
            resource["error_code"] = json!(code);
        }
        // Twilio bills what it handed to a carrier: sent, delivered or undelivered.
        if matches!(status, "delivered" | "undelivered") {
            let whatsapp = resource["to"]
                .as_str()
                .is_some_and(|to| to.starts_with("whatsapp:"));
            let segments = resource["num_segments"]
                .as_str()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(1)
                .max(1);
            let micros = if whatsapp {
                WHATSAPP_PRICE_MICROS
            } else {
                SMS_SEGMENT_PRICE_MICROS * segments
            };
            resource["price"] = json!(format!(
                "-{}.{:05}",
                micros / 1_000_000,
                (micros % 1_000_000) / 10
            ));
        }
    }
}

/// `GET .../Messages/{sid}.json`: the message as it stands.
async fn fetch_message(
    State(shared): State<Arc<Shared>>,
    Path((account, message)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(sid) = message.strip_suffix(".json") else {
        return resource_not_found(uri.path());
    };
    let account_sid = match authenticate(&shared, &headers, &account) {
        Ok(account) => account.sid,
        Err(denied) => return denied.into_response(uri.path()),
    };
    match shared.twilio_messages.get(&account_sid, sid) {
        Some(resource) => json_response(StatusCode::OK, CONTENT_TYPE, &resource),
        None => resource_not_found(uri.path()),
    }
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
pub(crate) fn error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    let mut response = json_response(
        status,
        CONTENT_TYPE,
        &json!({
            "code": code,
            "message": message.into(),
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
    }
    response
}

pub(crate) fn unauthenticated() -> Response {
    error(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
}

pub(crate) fn resource_not_found(path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        20404,
        format!("The requested resource {path} was not found"),
    )
}

async fn not_found(uri: Uri) -> Response {
    resource_not_found(uri.path())
}

pub(crate) fn fault_response(status: StatusCode) -> Response {
    if status == StatusCode::UNAUTHORIZED {
        return unauthenticated();
    }
    // Twilio's generic HTTP errors are 20000 + status: 20429, 20500, 20503...
    let code = 20_000 + u32::from(status.as_u16());
    error(status, code, status.canonical_reason().unwrap_or("Error"))
}

pub(crate) fn rfc2822(at: OffsetDateTime) -> String {
    at.format(&Rfc2822).unwrap_or_default()
}

/// The account a request authenticated as.
struct Authenticated {
    sid: String,
    friendly_name: Option<String>,
    auth_token: String,
}

/// Why a request was refused before reaching the resource.
enum Denied {
    /// Missing or wrong credentials: 401 / 20003.
    BadCredentials,
    /// Valid credentials for another account than the path names: 404 / 20404.
    OtherAccount,
}

impl Denied {
    fn into_response(self, path: &str) -> Response {
        match self {
            Denied::BadCredentials => unauthenticated(),
            Denied::OtherAccount => resource_not_found(path),
        }
    }
}

/// Checks Basic auth (`AccountSid:AuthToken` or `SK...:secret`) and that it is for `path_sid`.
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    path_sid: &str,
) -> Result<Authenticated, Denied> {
    let (username, password) = basic_credentials(headers).ok_or(Denied::BadCredentials)?;
    let registry = shared.registry();
    let account = registry
        .twilio_authenticate(&username, &password)
        .ok_or(Denied::BadCredentials)?;
    if account.account_sid != path_sid {
        return Err(Denied::OtherAccount);
    }
    Ok(Authenticated {
        sid: account.account_sid.clone(),
        friendly_name: account.friendly_name.clone(),
        auth_token: account.auth_token.clone(),
    })
}

/// The account sid Basic auth (`AccountSid:AuthToken` or `SK...:secret`) authenticates as, for
/// APIs whose path names no account (the Content API).
pub(crate) fn authenticated_account(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let (username, password) = basic_credentials(headers)?;
    shared
        .registry()
        .twilio_authenticate(&username, &password)
        .map(|account| account.account_sid.clone())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

async fn fetch_account(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(sid) = account.strip_suffix(".json") else {
        return resource_not_found(uri.path());
    };
    let Authenticated {
        sid,
        friendly_name,
        auth_token,
    } = match authenticate(&shared, &headers, sid) {
        Ok(account) => account,
        Err(denied) => return denied.into_response(uri.path()),
    };
    let created = rfc2822(shared.started_at);
    let base = format!("/{API_VERSION}/Accounts/{sid}");
    let subresource = |name: &str| format!("{base}/{name}.json");
    json_response(
        StatusCode::OK,
        CONTENT_TYPE,
        &json!({
            "auth_token": auth_token,
            "date_created": created,
            "date_updated": created,
            "friendly_name": friendly_name.unwrap_or_else(|| "My first Twilio account".to_owned()),
            "owner_account_sid": sid,
            "sid": sid,
            "status": "active",
            "subresource_uris": {
                "addresses": subresource("Addresses"),
                "balance": subresource("Balance"),
                "calls": subresource("Calls"),
                "incoming_phone_numbers": subresource("IncomingPhoneNumbers"),
                "keys": subresource("Keys"),
                "messages": subresource("Messages"),
                "notifications": subresource("Notifications"),
                "usage": subresource("Usage"),
            },
            "type": "Full",
            "uri": format!("{base}.json"),
        }),
    )
}

/// A Twilio address: plain E.164 or a channel address like `whatsapp:+E164`.
fn channel_of(address: &str) -> (Option<&str>, &str) {
    match address.split_once(':') {
        Some((channel, number)) => (Some(channel), number),
        None => (None, address),
    }
}

fn is_alphanumeric_sender(from: &str) -> bool {
    (1..=11).contains(&from.len())
        && from.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && from.chars().any(|c| c.is_ascii_alphabetic())
}

fn is_short_code(from: &str) -> bool {
    (5..=6).contains(&from.len()) && from.bytes().all(|b| b.is_ascii_digit())
}

fn invalid_to(to: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        21211,
        format!("The 'To' number {to} is not a valid phone number."),
    )
}

/// Twilio's documented magic test numbers, so failure paths can be exercised.
fn magic_to_error(to: &str, from: Option<&str>) -> Option<Response> {
    let bad = |code, message: String| Some(error(StatusCode::BAD_REQUEST, code, message));
    match to {
        "+15005550001" => Some(invalid_to(to)),
        "+15005550002" => bad(
            21612,
            format!(
                "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {} via SMS.",
                from.unwrap_or("")
            ),
        ),
        "+15005550003" => bad(
            21408,
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
            ),
        ),
        "+15005550004" => bad(
            21610,
            "Attempt to send to unsubscribed recipient".to_owned(),
        ),
        "+15005550009" => bad(
            21614,
            format!("'To' number {to} is not a valid mobile number"),
        ),
        _ => None,
    }
}

fn magic_from_error(from: &str) -> Option<Response> {
    let bad = |code, message: String| Some(error(StatusCode::BAD_REQUEST, code, message));
    match from {
        "+15005550001" => bad(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        ),
        "+15005550007" => bad(
            21606,
            format!(
                "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."
            ),
        ),
        "+15005550008" => bad(
            21611,
            "This 'From' number has exceeded the maximum number of queued messages".to_owned(),
        ),
        _ => None,
    }
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    Extension(RequestSeq(seq)): Extension<RequestSeq>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Authenticated {
        sid: account_sid,
        auth_token,
        ..
    } = match authenticate(&shared, &headers, &account) {
        Ok(account) => account,
        Err(denied) => return denied.into_response(uri.path()),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    let media_count = form.iter().filter(|(key, _)| key == "MediaUrl").count();

    let Some(to) = field("To") else {
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let from = field("From");
    let messaging_service_sid = field("MessagingServiceSid");
    if from.is_none() && messaging_service_sid.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    let message_body = field("Body");
    if message_body.is_none() && media_count == 0 && field("ContentSid").is_none() {
        return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    }
    let text = message_body.clone().unwrap_or_default();
    if text.chars().count() > MAX_BODY_CHARS {
        return error(
            StatusCode::BAD_REQUEST,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }

    let (to_channel, to_number) = channel_of(&to);
    if to_channel.is_some_and(|c| c != "whatsapp") || !is_e164(to_number) {
        return invalid_to(&to);
    }
    if let Some(sid) = &messaging_service_sid
        && !(sid.starts_with("MG") && sid.len() == 34)
    {
        return error(
            StatusCode::BAD_REQUEST,
            21701,
            format!("The Messaging Service Sid {sid} is invalid."),
        );
    }
    if let Some(from) = &from {
        let (from_channel, from_number) = channel_of(from);
        let valid = match from_channel {
            Some("whatsapp") => is_e164(from_number),
            Some(_) => false,
            None => is_e164(from) || is_short_code(from) || is_alphanumeric_sender(from),
        };
        if !valid {
            return error(
                StatusCode::BAD_REQUEST,
                21212,
                format!(
                    "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
                ),
            );
        }
        if from_channel != to_channel {
            return error(
                StatusCode::BAD_REQUEST,
                21910,
                "Invalid From and To pair. From and To should be of the same channel",
            );
        }
        if let Some(response) = magic_from_error(from_number) {
            return response;
        }
    }
    if let Some(response) = magic_to_error(to_number, from.as_deref()) {
        return response;
    }
    let status_callback = field("StatusCallback");
    if let Some(url) = &status_callback
        && !callbacks::is_valid_url(url)
    {
        return error(
            StatusCode::BAD_REQUEST,
            21609,
            format!("The StatusCallback URL {url} is not a valid URL."),
        );
    }

    let content = match field("ContentSid") {
        None => None,
        Some(content_sid) => match content_send(
            &shared,
            &account_sid,
            &content_sid,
            field("ContentVariables"),
        ) {
            Ok(content) => Some(content),
            Err((code, message)) => return error(StatusCode::BAD_REQUEST, code, message),
        },
    };
    let text = content
        .as_ref()
        .and_then(|c| c.body.clone())
        .unwrap_or(text);

    let now = OffsetDateTime::now_utc();
    let sid = ids::twilio_message_sid();
    let uri_base = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}");
    // A Messaging Service picks the sender later: Twilio answers "accepted", no From, 0 segments.
    let (status, num_segments) = if from.is_none() {
        ("accepted", 0)
    } else if to_channel.is_some() {
        // Channel messages are not split into SMS parts.
        ("queued", 1)
    } else {
        ("queued", sms_segments(&text))
    };
    let resource = json!({
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": text,
        "date_created": rfc2822(now),
        "date_sent": null,
        "date_updated": rfc2822(now),
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": messaging_service_sid,
        "num_media": media_count.to_string(),
        "num_segments": num_segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": { "media": format!("{uri_base}/Media.json") },
        "to": to,
        "uri": format!("{uri_base}.json"),
    });

    shared
        .twilio_messages
        .insert(&account_sid, resource.clone());
    // Every accepted message takes an outcome, so "the next N messages" means what it says;
    // what WhatsApp refuses fails whatever was queued.
    let queued = shared.callbacks.next();
    let whatsapp_failure = if to_channel.is_none() {
        None
    } else if let Some(content) = &content {
        content.whatsapp_failure
    } else {
        let customer = to_number.to_owned();
        let open = match from.as_deref().map(channel_of) {
            Some((_, business)) => shared.windows.is_open(
                &WindowKey::Twilio {
                    account_sid: account_sid.clone(),
                    business: business.to_owned(),
                    customer,
                },
                now,
            ),
            None => shared
                .windows
                .twilio_open_with_any_sender(&account_sid, &customer, now),
        };
        (!open).then_some(WHATSAPP_OUTSIDE_WINDOW)
    };
    let outcome =
        whatsapp_failure.map_or(queued, |error_code| DeliveryOutcome::Failed { error_code });
    if let Some(url) = status_callback {
        callbacks::spawn(
            &shared,
            Delivery {
                url,
                auth_token,
                account_sid: account_sid.clone(),
                message_sid: sid.clone(),
                from: from.clone(),
                to: to.clone(),
                messaging_service_sid: messaging_service_sid.clone(),
                channel_prefix: if to_channel.is_some() {
                    "whatsapp"
                } else {
                    "sms"
                },
                outcome,
            },
        );
    }

    shared.journal.record_sent(vec![SentMessage {
        provider: Provider::Twilio,
        channel: if to_channel.is_some() {
            Channel::Whatsapp
        } else {
            Channel::Sms
        },
        id: sid,
        to: to.clone(),
        from,
        subject: None,
        body: match &content {
            Some(content) => content.body.clone(),
            None => message_body,
        },
        template: field("ContentSid"),
        language: content.map(|c| c.language),
        request_seq: seq,
        sent_at: now,
    }]);
    json_response(StatusCode::CREATED, CONTENT_TYPE, &resource)
}

/// A send through a Content API template, checked.
struct ContentSend {
    /// The content's body with the variables filled in.
    body: Option<String>,
    language: String,
    /// What WhatsApp will fail the message with, if anything (63027, 63028).
    whatsapp_failure: Option<u32>,
}

/// Checks `ContentSid` and `ContentVariables`: an unknown content (or another account's) is 400 /
/// 21655, variables that are not a JSON object of strings 400 / 21656. Variables left out take
/// the content's defaults, as Twilio's do.
fn content_send(
    shared: &Shared,
    account_sid: &str,
    content_sid: &str,
    variables: Option<String>,
) -> Result<ContentSend, (u32, &'static str)> {
    let registry = shared.registry();
    let Some(stored) = registry
        .twilio_content(content_sid)
        .filter(|c| c.content.account_sid == account_sid)
    else {
        return Err((21655, "The ContentSid is Invalid"));
    };
    let invalid_variables = || (21656, "The ContentVariables Parameter is invalid");
    let supplied: BTreeMap<String, String> = match variables {
        None => BTreeMap::new(),
        Some(raw) => match serde_json::from_str::<serde_json::Map<String, Value>>(&raw) {
            Ok(map) if map.len() <= MAX_CONTENT_VARIABLES => {
                let mut supplied = BTreeMap::new();
                for (key, value) in map {
                    let Value::String(value) = value else {
                        return Err(invalid_variables());
                    };
                    supplied.insert(key, value);
                }
                supplied
            }
            _ => return Err(invalid_variables()),
        },
    };
    let content = &stored.content;
    let template_body = content.body();
    let mut values = content.variables.clone();
    values.extend(supplied.clone());

    let whatsapp_failure = if !content.approval_status.eq_ignore_ascii_case("approved") {
        Some(WHATSAPP_TEMPLATE_NOT_APPROVED)
    } else {
        // Keys the content does not have, or placeholders with neither a value nor a default.
        let unknown_key = supplied.keys().any(|k| !content.variables.contains_key(k));
        let unfilled = template_body
            .map(placeholders)
            .unwrap_or_default()
            .iter()
            .any(|name| !values.contains_key(name));
        (unknown_key || unfilled).then_some(WHATSAPP_TEMPLATE_PARAMETERS)
    };
    Ok(ContentSend {
        body: template_body.map(|body| fill(body, &values)),
        language: content.language.clone(),
        whatsapp_failure,
    })
}
