//! Brevo (email). Credentials: an API v3 key in the `api-key` header. The check reads the
//! account, which any valid key may do; a send posts a transactional email (`/v3/smtp/email`).
//! Webhooks are unsigned; Herald authenticates them with per-configuration secrets (see
//! "Receipts" below).

use crate::domain::message::ListUnsubscribe;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{Accepted, Outbound, SendError};
use crate::domain::message::MessageStatus;
use crate::domain::provider::ProviderKind;
use crate::domain::receipt::{
    InboundMessage, Notification, Receipt, ReceiptError, SharedSecret, basic_auth_matches,
    bearer_matches, redact_reason,
};
use crate::domain::snapshot::CheckOutcome;
use crate::domain::validation::EmailAddress;

const PROVIDER: &str = "Brevo";

pub async fn check_credentials(http: &reqwest::Client, base: &str, api_key: &str) -> CheckOutcome {
    let request = http
        .get(format!("{base}/v3/account"))
        .header("api-key", api_key)
        .header("accept", "application/json");
    super::classify(request.send().await, "Brevo").await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    message_id: String,
}

/// Brevo's error body: `{"code": "invalid_parameter", "message": "..."}`.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    #[serde(default)]
    message: String,
}

/// Sends `message` from `from_address`. Herald's message id travels as the
/// `X-Herald-Message-Id` header and as `X-Mailin-custom`, which Brevo echoes in its webhooks.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    from_address: &EmailAddress,
    from_name: Option<&str>,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    let to = super::email_recipient(message.to)?;
    let subject = super::require_subject(message)?;
    super::require_text(message)?;
    let mut sender = json!({ "email": from_address.as_str() });
    if let Some(name) = from_name {
        sender["name"] = json!(name);
    }
    let mut email = json!({
        "sender": sender,
        "to": [{ "email": to.to_string() }],
        "subject": subject,
        "textContent": message.text,
        "headers": {
            "X-Herald-Message-Id": message.message_id,
            "X-Mailin-custom": message.message_id,
        },
    });
    if let Some(html) = message.html {
        email["htmlContent"] = json!(html);
    }
    if let Some(unsubscribe) = message.list_unsubscribe {
        email["headers"]["List-Unsubscribe"] = json!(unsubscribe.header());
        email["headers"]["List-Unsubscribe-Post"] = json!(ListUnsubscribe::POST);
    }
    let super::Answer {
        status,
        headers,
        body,
    } = super::exchange(
        PROVIDER,
        http.post(format!("{base}/v3/smtp/email"))
            .header("api-key", api_key)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&email),
    )
    .await?;
    if status.is_success() {
        let sent: Sent =
            serde_json::from_slice(&body).map_err(|_| super::unexpected_answer(PROVIDER))?;
        return Ok(Accepted {
            provider_message_id: sent.message_id,
            cost: None,
            segments: None,
        });
    }
    let error = serde_json::from_slice::<ErrorBody>(&body).ok();
    let hint = super::retry_after(&headers)
        .or_else(|| super::seconds_header(&headers, "x-sib-ratelimit-reset"));
    let classified = error
        .as_ref()
        .and_then(|e| classify(status.as_u16(), e.code.as_deref()?, &e.message));
    Err(classified
        .unwrap_or_else(|| super::by_status(PROVIDER, status, &headers))
        .hinted(hint))
}

/// Brevo's error codes (developers.brevo.com, "Error codes"; rate limits in "Rate limit
/// headers") by who is at fault. `None` leaves it to the HTTP status.
fn classify(status: u16, code: &str, message: &str) -> Option<SendError> {
    match code {
        "unauthorized"
        | "permission_denied"
        | "not_enough_credits"
        | "account_under_validation"
        | "reseller_permission_denied" => Some(SendError::provider(
            code,
            "Brevo refused the account (key, permissions, credits or validation)",
        )),
        // The sender is Herald's configuration, whatever else is wrong with the request.
        "invalid_parameter" | "missing_parameter" if message.contains("sender") => Some(
            SendError::provider(code, "Brevo refused the configured sender"),
        ),
        // The recipient or the message itself.
        "invalid_parameter" | "missing_parameter" | "out_of_range" if status == 400 => Some(
            SendError::permanent(code, "Brevo refused the recipient or the message content"),
        ),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Receipts: transactional webhooks
// ---------------------------------------------------------------------------------------------
//
// Brevo signs nothing. Its documented ways to secure a webhook ("Secure webhook calls") are
// credentials Herald sets when it registers the webhook, one set per provider configuration:
//
// | Secret | Where it travels | What Herald checks |
// | --- | --- | --- |
// | an opaque route token | the notify URL's path (`/webhooks/brevo/{token}`) | the webhook function looks the configuration up by it; unknown tokens get 404 |
// | user and password | in the notify URL (`https://user:password@...`), sent as `Authorization: Basic` | [`verify_basic_auth`], constant time |
// | or a bearer token | the webhook's `auth: {type: bearer, token}` | [`verify_bearer_token`], constant time |
//
// Events carry times but no signature over them, so replays are absorbed by idempotent
// processing. `date` is in Brevo's CET/CEST; Herald reads `ts_event` (UTC seconds).

/// Checks the `Authorization: Basic` header against the configuration's webhook credentials.
pub fn verify_basic_auth<S: SharedSecret + ?Sized>(
    headers: &HeaderMap,
    expected_user: &str,
    expected_password: &S,
) -> Result<(), ReceiptError> {
    basic_auth_matches(authorization(headers), expected_user, expected_password)
}

/// Checks the `Authorization: Bearer` header against the configuration's webhook token.
pub fn verify_bearer_token<S: SharedSecret + ?Sized>(
    headers: &HeaderMap,
    expected: &S,
) -> Result<(), ReceiptError> {
    bearer_matches(authorization(headers), expected)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(reqwest::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Events {
    Batch(Vec<Event>),
    One(Box<Event>),
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    event: String,
    /// The recipient's address (only read for `unsubscribed`).
    #[serde(default)]
    email: Option<String>,
    #[serde(rename = "message-id", default)]
    message_id: Option<String>,
    #[serde(default)]
    ts_event: Option<i64>,
    #[serde(default)]
    ts_epoch: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
}

/// Reads an authenticated webhook body: one event, or an array of them (batched webhooks).
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Notification>, ReceiptError> {
    let events = match serde_json::from_slice::<Events>(body)
        .map_err(|_| ReceiptError::malformed("not a Brevo webhook event"))?
    {
        Events::Batch(events) => events,
        Events::One(event) => vec![*event],
    };
    Ok(events.iter().map(event_notification).collect())
}

fn event_notification(event: &Event) -> Notification {
    let (status, hard) = match event.event.as_str() {
        "request" | "sent" => (MessageStatus::Sent, false),
        "delivered" => (MessageStatus::Delivered, false),
        // A click is a read too; proxy opens (Apple Mail Privacy Protection) are not.
        "opened" | "unique_opened" | "click" => (MessageStatus::Read, false),
        "hard_bounce" => (MessageStatus::Bounced, true),
        // Brevo keeps trying after a soft bounce or a deferral: not an outcome yet (a bounce
        // would outrank the "delivered" that may follow).
        "soft_bounce" | "deferred" => {
            return Notification::Ignored(format!(
                "a Brevo {:?} event (Brevo retries)",
                event.event
            ));
        }
        // The recipient used the unsubscribe link: an opt-out of email.
        "unsubscribed" => {
            return match event.email.as_deref().map(str::trim) {
                Some(address) if !address.is_empty() => {
                    Notification::Unsubscribed(InboundMessage {
                        provider: ProviderKind::Brevo,
                        from: address.to_owned(),
                        to: None,
                        text: String::new(),
                        channel: crate::domain::Channel::Email,
                    })
                }
                _ => Notification::Ignored("a Brevo unsubscribe without email".into()),
            };
        }
        "invalid_email" => (MessageStatus::Failed, true),
        "blocked" | "error" => (MessageStatus::Failed, false),
        "spam" => (MessageStatus::Complained, false),
        other => return Notification::Ignored(format!("Brevo event {other:?}")),
    };
    let Some(id) = event
        .message_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    else {
        return Notification::Ignored(format!(
            "a Brevo {:?} event without message-id",
            event.event
        ));
    };
    let mut receipt = Receipt::new(ProviderKind::Brevo, message_id(id), status);
    receipt.hard = hard;
    receipt.occurred_at = event
        .ts_event
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .or_else(|| {
            event.ts_epoch.and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
        });
    if matches!(status, MessageStatus::Bounced | MessageStatus::Failed) {
        let reason = event
            .reason
            .as_deref()
            .map(redact_reason)
            .filter(|r| !r.is_empty());
        receipt.reason = Some(match reason {
            Some(reason) => format!("{}: {reason}", event.event),
            None => event.event.clone(),
        });
    }
    Notification::Receipt(receipt)
}

/// Brevo's send answer names the message `<...@smtp-relay.mailin.fr>`; webhooks may drop the
/// angle brackets. Receipts use the send answer's form, which dispatch stored.
fn message_id(id: &str) -> String {
    if id.starts_with('<') && id.ends_with('>') {
        id.to_owned()
    } else {
        format!("<{id}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        let kind = |status, code, message| classify(status, code, message).map(|e| e.kind());
        assert_eq!(
            kind(400, "invalid_parameter", "email is not valid in to"),
            Some("permanent")
        );
        assert_eq!(
            kind(400, "invalid_parameter", "valid sender email required"),
            Some("provider")
        );
        assert_eq!(kind(401, "unauthorized", "Key not found"), Some("provider"));
        assert_eq!(kind(402, "not_enough_credits", ""), Some("provider"));
        assert_eq!(kind(429, "too_many_requests", ""), None);
    }

    #[test]
    fn events_map_onto_herald_statuses() {
        let notifications = parse_webhook(
            br#"[{"event":"soft_bounce","message-id":"<202611221000.1@smtp-relay.mailin.fr>","reason":"mailbox full"},
                 {"event":"invalid_email","message-id":"202611221000.2@smtp-relay.mailin.fr"},
                 {"event":"proxy_open","message-id":"<202611221000.3@smtp-relay.mailin.fr>"},
                 {"event":"unsubscribed","message-id":"<202611221000.4@smtp-relay.mailin.fr>"},
                 {"event":"delivered"}]"#,
        );
        let Ok([soft, invalid, proxy, unsubscribed, no_id]) = notifications.as_deref() else {
            panic!("{notifications:?}");
        };
        let Notification::Receipt(invalid) = invalid else {
            panic!("{invalid:?}");
        };
        assert_eq!(
            (
                invalid.provider_message_id.as_str(),
                invalid.status,
                invalid.hard
            ),
            (
                "<202611221000.2@smtp-relay.mailin.fr>",
                MessageStatus::Failed,
                true
            ),
            "angle brackets added to match the send answer"
        );
        // Brevo retries a soft bounce; an unsubscribe without the address names nobody.
        for ignored in [soft, proxy, unsubscribed, no_id] {
            assert!(matches!(ignored, Notification::Ignored(_)), "{ignored:?}");
        }
        assert!(matches!(
            parse_webhook(b"event=delivered"),
            Err(ReceiptError::Malformed(_))
        ));
    }
}
