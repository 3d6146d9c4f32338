//! Meta WhatsApp Cloud API. Credentials: a system-user access token (and the app secret that
//! signs webhooks). The check reads the business phone number the configuration sends from; a
//! send posts a text message to `/{phone-number-id}/messages`. Webhooks are authenticated with
//! `X-Hub-Signature-256` (and the set-up challenge with the verify token) before they are read
//! (see "Receipts" below).

use hmac::Mac as _;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use time::OffsetDateTime;

use super::{Accepted, Outbound, SendError};
use crate::domain::Channel;
use crate::domain::message::MessageStatus;
use crate::domain::provider::ProviderKind;
use crate::domain::receipt::{InboundMessage, Notification, Receipt, ReceiptError, SharedSecret};
use crate::domain::snapshot::CheckOutcome;
use crate::domain::whatsapp::RegistrationState;

const PROVIDER: &str = "Meta WhatsApp";

pub async fn check_credentials(
    http: &reqwest::Client,
    base: &str,
    phone_number_id: &str,
    access_token: &str,
) -> CheckOutcome {
    let request = http
        .get(format!("{base}/{phone_number_id}"))
        .query(&[("fields", "id,display_phone_number,verified_name")])
        .bearer_auth(access_token);
    super::classify(request.send().await, "Meta WhatsApp").await
}

#[derive(Deserialize)]
struct TemplatePage {
    #[serde(default)]
    data: Vec<TemplateEntry>,
}

#[derive(Deserialize)]
struct TemplateEntry {
    name: String,
    language: String,
    status: String,
    #[serde(default)]
    quality_score: Option<QualityScore>,
    #[serde(default)]
    rejected_reason: Option<String>,
}

#[derive(Deserialize)]
struct QualityScore {
    score: Option<String>,
}

/// What the WhatsApp Business Account `waba` holds of the template `name` in `language`
/// (`GET /{waba}/message_templates?name=...`; one page of at most 100, filtered here by name
/// and language since one name has an entry per language). `Err`: why it could not be read.
pub async fn template_registration(
    http: &reqwest::Client,
    base: &str,
    waba: &str,
    access_token: &str,
    name: &str,
    language: &str,
) -> Result<RegistrationState, String> {
    let request = http
        .get(format!("{base}/{waba}/message_templates"))
        .query(&[
            ("name", name),
            (
                "fields",
                "name,language,status,quality_score,rejected_reason",
            ),
            ("limit", "100"),
        ])
        .bearer_auth(access_token);
    let answer = super::exchange(PROVIDER, request)
        .await
        .map_err(|e| e.to_string())?;
    if !answer.status.is_success() {
        return Err(format!(
            "{PROVIDER} answered {} to the template lookup",
            answer.status.as_u16()
        ));
    }
    let page: TemplatePage = serde_json::from_slice(&answer.body)
        .map_err(|_| format!("{PROVIDER} answered the template lookup in an unexpected form"))?;
    Ok(page
        .data
        .into_iter()
        .find(|t| t.name == name && t.language == language)
        .map_or_else(RegistrationState::not_found, |t| {
            RegistrationState::from_status(
                &t.status,
                t.quality_score.and_then(|q| q.score),
                t.rejected_reason,
            )
        }))
}

#[derive(Deserialize)]
struct Sent {
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

/// Graph's error body: `{"error": {"message", "type", "code", "error_subcode", "error_data",
/// "fbtrace_id"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    code: Option<u32>,
    error_subcode: Option<u32>,
}

/// Sends `message` as a free-form text message, or, outside the customer-service window, as
/// its registered template (`type: template` with the recipient's components). Herald's
/// message id rides along as `biz_opaque_callback_data`, which Meta returns in the status
/// webhooks.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    phone_number_id: &str,
    access_token: &str,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    super::require_text(message)?;
    let number = super::e164(message.to.strip_prefix("whatsapp:").unwrap_or(message.to))?;
    // Cloud API takes the number as digits, without the '+'.
    let to = number.trim_start_matches('+');
    let body = match message.whatsapp_template.and_then(|t| t.meta.as_ref()) {
        Some(template) => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": template.name,
                "language": { "code": template.language, "policy": "deterministic" },
                "components": template.components,
            },
            "biz_opaque_callback_data": message.message_id,
        }),
        None => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": { "body": message.text, "preview_url": false },
            "biz_opaque_callback_data": message.message_id,
        }),
    };
    let super::Answer {
        status,
        headers,
        body: bytes,
    } = super::exchange(
        PROVIDER,
        http.post(format!("{base}/{phone_number_id}/messages"))
            .bearer_auth(access_token)
            .json(&body),
    )
    .await?;
    if status.is_success() {
        let sent: Sent =
            serde_json::from_slice(&bytes).map_err(|_| super::unexpected_answer(PROVIDER))?;
        let id = sent
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| super::unexpected_answer(PROVIDER))?;
        return Ok(Accepted {
            provider_message_id: id,
            cost: None,
            segments: None,
        });
    }
    let graph = serde_json::from_slice::<ErrorBody>(&bytes)
        .ok()
        .map(|b| b.error);
    let classified = graph
        .as_ref()
        .and_then(|e| classify(e.code?, e.error_subcode));
    let error = match classified {
        Some(error) => error,
        None if status.as_u16() == 429 || status.is_server_error() => {
            super::by_status(PROVIDER, status, &headers)
        }
        None => {
            let code = graph.and_then(|e| e.code).map(|c| c.to_string());
            match super::by_status(PROVIDER, status, &headers) {
                SendError::Provider {
                    code: http_code,
                    reason,
                } => SendError::Provider {
                    code: code.unwrap_or(http_code),
                    reason,
                },
                other => other,
            }
        }
    };
    Err(error.hinted(super::retry_after(&headers)))
}

/// Graph / WhatsApp Cloud API error codes (developers.facebook.com, WhatsApp Cloud API
/// "Error codes") by who is at fault. `None` leaves it to the HTTP status.
fn classify(code: u32, subcode: Option<u32>) -> Option<SendError> {
    let permanent = |reason: &str| Some(SendError::permanent(code.to_string(), reason));
    let provider = |reason: &str| Some(SendError::provider(code.to_string(), reason));
    match code {
        // Throttling and outages: later, or elsewhere.
        1 | 2 | 4 | 80007 | 130429 | 131000 | 131016 | 131048 | 131056 | 133004 => {
            Some(SendError::retryable(
                format!(
                    "WhatsApp Cloud API is throttling or unavailable ({code}); try again later"
                ),
                None,
            ))
        }
        // Subcode 33: the phone number id does not exist for this token.
        100 if subcode == Some(33) => {
            provider("the business phone number does not exist or the token may not use it")
        }
        // Our token, app or business account.
        0 | 3 | 10 | 190 => provider("Meta refused the access token or its permissions"),
        200..=299 => provider("the token lacks a permission WhatsApp needs"),
        368 | 131031 => provider("the WhatsApp Business Account is restricted or locked"),
        131042 => provider("the WhatsApp Business Account has a payment problem"),
        131030 => provider("the recipient is not on the test number's allowed list"),
        131045 | 133010 => provider("the business phone number is not registered"),
        // This recipient or this message.
        100 => permanent("WhatsApp refused a parameter of the message (recipient or content)"),
        131008 | 131009 => permanent("WhatsApp refused a parameter of the message"),
        131021 => permanent("the recipient is the sender"),
        131026 => permanent("the message cannot be delivered to this WhatsApp user"),
        131047 => permanent("outside the 24-hour window a template message is required"),
        131049 => permanent("Meta chose not to deliver this message to the recipient"),
        131051 => permanent("the message type is not supported"),
        // The registered template as the message used it: fixed in the template, not by
        // another try (and another provider would send the same registered template).
        132000 => {
            permanent("the number of template parameters does not match the registered template")
        }
        132001 => permanent("the template does not exist in this language or is not approved"),
        132005 => permanent("the template's text is too long once its parameters are filled in"),
        132007 => permanent("the template's content breaks a WhatsApp policy"),
        132008 | 132012 => {
            permanent("a template parameter's format does not match the registered template")
        }
        132015 => permanent("the template is paused for low quality"),
        132016 => permanent("the template is disabled"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Receipts: webhook verification, status updates and inbound messages
// ---------------------------------------------------------------------------------------------
//
// | What Meta sends | How it is authenticated | What Herald checks |
// | --- | --- | --- |
// | `GET ?hub.mode=subscribe&hub.challenge=...&hub.verify_token=...` when the webhook is set up | the verify token the tenant typed into the app dashboard | `hub.mode` is `subscribe`, the token matches the configured one (constant time); the answer is the challenge, which must be short and plain |
// | `POST` of `entry[].changes[].value.{statuses,messages}` | `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with the app secret>` | the HMAC over the raw bytes, compared in constant time (`verify_slice`) |
//
// Nothing is timestamped in the signature and Meta retries for days, so replays are absorbed
// by idempotent processing, not refused by age.

/// The header carrying Meta's body signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

type HmacSha256 = hmac::Hmac<Sha256>;

/// Authenticates then parses a webhook POST.
pub fn receive(
    app_secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<Notification>, ReceiptError> {
    verify_signature(app_secret, headers, body)?;
    parse_webhook(body)
}

/// Checks `X-Hub-Signature-256` over the raw body.
pub fn verify_signature(
    app_secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ReceiptError> {
    if app_secret.is_empty() {
        return Err(ReceiptError::unauthenticated("no app secret is configured"));
    }
    let value = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ReceiptError::unauthenticated("no X-Hub-Signature-256 header"))?;
    let presented = value
        .trim()
        .strip_prefix("sha256=")
        .and_then(|digest| hex::decode(digest).ok())
        .ok_or_else(|| ReceiptError::unauthenticated("X-Hub-Signature-256 is not sha256=<hex>"))?;
    let mut mac = HmacSha256::new_from_slice(app_secret.as_bytes())
        .map_err(|_| ReceiptError::unauthenticated("unusable app secret"))?;
    mac.update(body);
    mac.verify_slice(&presented)
        .map_err(|_| ReceiptError::unauthenticated("X-Hub-Signature-256 does not match"))
}

/// The signature header value Meta sends for `body`: for tests, fixtures and stand-ins.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    HmacSha256::new_from_slice(app_secret.as_bytes())
        .map(|mut mac| {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        })
        .unwrap_or_default()
}

/// Answers Meta's verification request (the GET it sends when the webhook URL is saved):
/// `raw_query` is the request's query string, `verify_token` the one configured for this
/// endpoint. Returns the `hub.challenge` to echo back as the response body.
pub fn verification_challenge<S: SharedSecret + ?Sized>(
    raw_query: &str,
    verify_token: &S,
) -> Result<String, ReceiptError> {
    let mut mode = None;
    let mut token = None;
    let mut challenge = None;
    for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match name.as_ref() {
            "hub.mode" => mode = Some(value.into_owned()),
            "hub.verify_token" => token = Some(value.into_owned()),
            "hub.challenge" => challenge = Some(value.into_owned()),
            _ => {}
        }
    }
    if mode.as_deref() != Some("subscribe") {
        return Err(ReceiptError::malformed("hub.mode is not subscribe"));
    }
    let token = token.ok_or_else(|| ReceiptError::unauthenticated("no hub.verify_token"))?;
    if !verify_token.matches(token.as_bytes()) {
        return Err(ReceiptError::unauthenticated(
            "hub.verify_token does not match",
        ));
    }
    // Echoed verbatim in the response: Meta sends digits; refuse anything that could be markup.
    challenge
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 256
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .ok_or_else(|| ReceiptError::malformed("hub.challenge is missing or not plain"))
}

#[derive(Deserialize)]
struct Webhook {
    #[serde(default)]
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Default)]
struct Value {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    statuses: Vec<Status>,
    #[serde(default)]
    messages: Vec<Incoming>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    display_phone_number: String,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    code: Option<u32>,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    from: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<IncomingText>,
    #[serde(default)]
    button: Option<IncomingButton>,
}

#[derive(Deserialize)]
struct IncomingText {
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct IncomingButton {
    #[serde(default)]
    text: String,
}

/// Reads an authenticated webhook body: every status update becomes a receipt (keyed by the
/// `wamid`), every text (or quick-reply button) message an inbound message.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Notification>, ReceiptError> {
    let webhook: Webhook = serde_json::from_slice(body)
        .map_err(|_| ReceiptError::malformed("not a WhatsApp webhook body"))?;
    if webhook.object != "whatsapp_business_account" {
        return Ok(vec![Notification::Ignored(format!(
            "a webhook for {:?}, not whatsapp_business_account",
            webhook.object
        ))]);
    }
    let mut out = Vec::new();
    for change in webhook.entry.iter().flat_map(|e| &e.changes) {
        if change.field != "messages" {
            out.push(Notification::Ignored(format!(
                "a {:?} change",
                change.field
            )));
            continue;
        }
        let value = &change.value;
        out.extend(value.statuses.iter().map(status_receipt));
        let to = value
            .metadata
            .as_ref()
            .map(|m| e164_digits(&m.display_phone_number))
            .filter(|n| n.len() > 1);
        out.extend(value.messages.iter().map(|m| inbound(m, to.clone())));
    }
    if out.is_empty() {
        out.push(Notification::Ignored(
            "a webhook with no statuses or messages".into(),
        ));
    }
    Ok(out)
}

fn status_receipt(status: &Status) -> Notification {
    let kind = match status.status.as_str() {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        "failed" => MessageStatus::Failed,
        other => return Notification::Ignored(format!("WhatsApp status {other:?}")),
    };
    if status.id.is_empty() {
        return Notification::Ignored("a WhatsApp status without a message id".into());
    }
    let mut receipt = Receipt::new(ProviderKind::MetaWhatsapp, &status.id, kind);
    receipt.occurred_at = status
        .timestamp
        .as_deref()
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    if kind == MessageStatus::Failed {
        // WhatsApp failure codes do not prove a number dead (131026 also covers outdated apps
        // and unaccepted terms), so none is a hard failure.
        receipt.reason = Some(
            status
                .errors
                .iter()
                .find_map(|e| e.code)
                .map_or_else(|| "failed".to_owned(), |c| c.to_string()),
        );
    }
    Notification::Receipt(receipt)
}

fn inbound(message: &Incoming, to: Option<String>) -> Notification {
    let text = match message.kind.as_str() {
        "text" => message.text.as_ref().map(|t| t.body.clone()),
        "button" => message.button.as_ref().map(|b| b.text.clone()),
        _ => None,
    };
    match text {
        Some(text) if !message.from.is_empty() => Notification::Inbound(InboundMessage {
            provider: ProviderKind::MetaWhatsapp,
            from: e164_digits(&message.from),
            to,
            text,
            channel: Channel::Whatsapp,
        }),
        _ => Notification::Ignored(format!("an inbound WhatsApp {:?} message", message.kind)),
    }
}

/// WhatsApp numbers come as digits without `+` ("16505551234", or "1 650-555-1234" for display).
fn e164_digits(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    format!("+{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        let kind = |code, subcode| classify(code, subcode).map(|e| e.kind());
        assert_eq!(kind(190, None), Some("provider"));
        assert_eq!(kind(131026, None), Some("permanent"));
        assert_eq!(kind(100, None), Some("permanent"));
        assert_eq!(kind(100, Some(33)), Some("provider"));
        for code in [130429, 131048, 131056, 4, 80007] {
            assert_eq!(kind(code, None), Some("retryable"), "{code}");
        }
        assert_eq!(kind(999_999, None), None);
    }

    #[test]
    fn webhooks_map_onto_herald_notifications() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"messages","value":{"metadata":{"display_phone_number":"1 555-078-3881"},
              "statuses":[{"id":"wamid.1","status":"read","timestamp":"1795341600"},
                          {"id":"wamid.2","status":"deleted"}],
              "messages":[{"from":"16505551234","type":"button","button":{"text":"Stop promotions"}},
                          {"from":"16505551234","type":"image","image":{"id":"1"}}]}},
            {"field":"account_update","value":{}}]}]}"#;
        let notifications = parse_webhook(body);
        let Ok([read, deleted, button, image, account]) = notifications.as_deref() else {
            panic!("{notifications:?}");
        };
        assert!(matches!(read, Notification::Receipt(r) if r.status == MessageStatus::Read));
        assert!(matches!(
            button,
            Notification::Inbound(m) if m.from == "+16505551234"
                && m.to.as_deref() == Some("+15550783881")
                && m.text == "Stop promotions"
                && !m.is_opt_out()
        ));
        for ignored in [deleted, image, account] {
            assert!(matches!(ignored, Notification::Ignored(_)), "{ignored:?}");
        }
        assert!(matches!(
            parse_webhook(br#"{"object":"page","entry":[]}"#).as_deref(),
            Ok([Notification::Ignored(_)])
        ));
        assert!(matches!(
            parse_webhook(b"not json"),
            Err(ReceiptError::Malformed(_))
        ));
    }
}
