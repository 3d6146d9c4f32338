//! Simulated inbound WhatsApp messages: a customer writes to a business number. Each one opens
//! (or extends) that customer's 24-hour window and, given a webhook URL, is delivered there the
//! way the provider delivers it:
//!
//! - Meta: a JSON `messages` webhook (`object: whatsapp_business_account`) signed with
//!   `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with the app secret>`;
//! - Twilio: the incoming-message form (`MessageSid`, `From`, `To`, `Body`, `WaId`, ...) signed
//!   with `X-Twilio-Signature` exactly as status callbacks are.
//!
//! The webhook goes out once (no retries) and its answer is reported back; like status
//! callbacks, only loopback receivers are called unless remote callbacks are allowed.

use std::fmt;

use axum::http::StatusCode;
use hmac::{Hmac, Mac as _};
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::address::is_e164;
use crate::callbacks;
use crate::ids;
use crate::windows::WindowKey;
use crate::{Provider, Shared};

/// A customer's message to a WhatsApp Cloud business number (`POST /_standin/meta/inbound`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaInbound {
    /// The business number written to; must be registered.
    pub phone_number_id: String,
    /// The customer, E.164 with or without `+` (the `wa_id` is its digits).
    pub from: String,
    pub text: String,
    /// When the customer wrote (default now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// Where to POST the `messages` webhook, if anywhere.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The Meta app secret that signs the webhook (`X-Hub-Signature-256`); without one the
    /// header is left out.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// `contacts[0].profile.name` (default `Stand-in Customer`).
    #[serde(default)]
    pub profile_name: Option<String>,
}

impl MetaInbound {
    /// `from` writes `text` to `phone_number_id`, now, with no webhook.
    pub fn new(
        phone_number_id: impl Into<String>,
        from: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            phone_number_id: phone_number_id.into(),
            from: from.into(),
            text: text.into(),
            at: None,
            webhook_url: None,
            app_secret: None,
            profile_name: None,
        }
    }

    /// The customer wrote at `at` rather than now.
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }

    /// Also POST the `messages` webhook to `url`, signed with `app_secret`.
    pub fn webhook(mut self, url: impl Into<String>, app_secret: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self.app_secret = Some(app_secret.into());
        self
    }

    pub fn profile_name(mut self, name: impl Into<String>) -> Self {
        self.profile_name = Some(name.into());
        self
    }
}

impl fmt::Debug for MetaInbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaInbound")
            .field("phone_number_id", &self.phone_number_id)
            .field("at", &self.at)
            .field("webhook", &self.webhook_url.is_some())
            .finish_non_exhaustive()
    }
}

/// A customer's WhatsApp message to a Twilio business number (`POST /_standin/twilio/inbound`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioInbound {
    /// The account owning the business number; must be registered (its auth token signs).
    pub account_sid: String,
    /// The customer, `whatsapp:+E164`.
    pub from: String,
    /// The business number, `whatsapp:+E164`.
    pub to: String,
    pub body: String,
    /// When the customer wrote (default now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// Where to POST the incoming-message webhook, if anywhere.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// `ProfileName` (default `Stand-in Customer`).
    #[serde(default)]
    pub profile_name: Option<String>,
}

impl TwilioInbound {
    /// `from` (`whatsapp:+E164`) writes `body` to `to` (`whatsapp:+E164`), now, no webhook.
    pub fn new(
        account_sid: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            account_sid: account_sid.into(),
            from: from.into(),
            to: to.into(),
            body: body.into(),
            at: None,
            webhook_url: None,
            profile_name: None,
        }
    }

    /// The customer wrote at `at` rather than now.
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }

    /// Also POST the incoming-message webhook to `url`.
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    pub fn profile_name(mut self, name: impl Into<String>) -> Self {
        self.profile_name = Some(name.into());
        self
    }
}

impl fmt::Debug for TwilioInbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioInbound")
            .field("account_sid", &self.account_sid)
            .field("at", &self.at)
            .field("webhook", &self.webhook_url.is_some())
            .finish_non_exhaustive()
    }
}

/// What an inbound message did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundOutcome {
    /// When the customer's window closes, counting from their latest message.
    #[serde(with = "time::serde::rfc3339")]
    pub window_open_until: OffsetDateTime,
    /// The inbound message's id (`wamid....` or Twilio `SM...`).
    pub message_id: String,
    /// Status the webhook receiver answered; `None` without a webhook or without an answer.
    pub webhook_status: Option<u16>,
    /// Why the webhook got no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_error: Option<String>,
}

/// Why an inbound message was refused (the control API answers `status` with `code`).
#[derive(Debug)]
pub(crate) struct InboundError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl fmt::Display for InboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for InboundError {}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> InboundError {
    InboundError {
        status,
        code,
        message: message.into(),
    }
}

const DEFAULT_PROFILE_NAME: &str = "Stand-in Customer";

/// Checks a webhook URL: absolute http(s), and on this machine unless remote callbacks are on.
fn check_webhook(shared: &Shared, url: Option<&str>) -> Result<(), InboundError> {
    let Some(url) = url else {
        return Ok(());
    };
    if !callbacks::is_valid_url(url) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_webhook_url",
            "webhook_url must be an absolute http(s) URL",
        ));
    }
    if !shared.callbacks.may_call(url) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "remote_webhook_url",
            "webhook_url is not on this machine; start the stand-ins with remote callbacks \
             allowed (allow_remote_status_callbacks / --allow-remote-callbacks) to call it",
        ));
    }
    Ok(())
}

/// Answer of one webhook attempt: the status, or why there was none.
async fn post(shared: &Shared, request: reqwest::RequestBuilder) -> (Option<u16>, Option<String>) {
    let Ok(_permit) = shared.callbacks.in_flight().acquire().await else {
        return (None, Some("shutting down".to_owned()));
    };
    match request.send().await {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(e) => (None, Some(callbacks::describe(e))),
    }
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` keyed with `secret`.
pub(crate) fn hub_signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Only digits: `+1 555-010-0000` -> `15550100000`.
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

pub(crate) async fn meta(
    shared: &Shared,
    inbound: MetaInbound,
) -> Result<InboundOutcome, InboundError> {
    let (display, waba) = {
        let registry = shared.registry();
        let Some(number) = registry.meta_number(&inbound.phone_number_id) else {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "unknown_phone_number",
                "phone_number_id is not a registered WhatsApp Cloud number",
            ));
        };
        (
            digits(&number.display_phone_number),
            number.business_account_id.clone(),
        )
    };
    let wa_id = inbound.from.strip_prefix('+').unwrap_or(&inbound.from);
    if !is_e164(&format!("+{wa_id}")) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_address",
            "from must be an E.164 number, with or without '+'",
        ));
    }
    check_webhook(shared, inbound.webhook_url.as_deref())?;
    let at = inbound.at.unwrap_or_else(OffsetDateTime::now_utc);
    let window_open_until = shared.windows.record_inbound(
        WindowKey::Meta {
            phone_number_id: inbound.phone_number_id.clone(),
            wa_id: wa_id.to_owned(),
        },
        at,
    );
    let message_id = ids::whatsapp_message_id(wa_id);
    let mut outcome = InboundOutcome {
        window_open_until,
        message_id: message_id.clone(),
        webhook_status: None,
        webhook_error: None,
    };
    let Some(url) = inbound.webhook_url else {
        return Ok(outcome);
    };
    let payload = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            // The WABA; a number registered without one reports its own id.
            "id": waba.unwrap_or_else(|| inbound.phone_number_id.clone()),
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": display,
                        "phone_number_id": inbound.phone_number_id,
                    },
                    "contacts": [{
                        "profile": {
                            "name": inbound.profile_name.as_deref().unwrap_or(DEFAULT_PROFILE_NAME),
                        },
                        "wa_id": wa_id,
                    }],
                    "messages": [{
                        "from": wa_id,
                        "id": message_id,
                        "timestamp": at.unix_timestamp().to_string(),
                        "type": "text",
                        "text": { "body": inbound.text },
                    }],
                },
            }],
        }],
    });
    let body = payload.to_string().into_bytes();
    let mut request = shared
        .callbacks
        .client()
        .post(&url)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, "facebookexternalua");
    if let Some(secret) = &inbound.app_secret {
        request = request.header("X-Hub-Signature-256", hub_signature(secret, &body));
    }
    let (status, error) = post(shared, request.body(body)).await;
    tracing::info!(provider = %Provider::Meta, http_status = status, error = error.as_deref(), "inbound message webhook");
    outcome.webhook_status = status;
    outcome.webhook_error = error;
    Ok(outcome)
}

pub(crate) async fn twilio(
    shared: &Shared,
    inbound: TwilioInbound,
) -> Result<InboundOutcome, InboundError> {
    let Some(auth_token) = shared
        .registry()
        .twilio_account(&inbound.account_sid)
        .map(|a| a.auth_token.clone())
    else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "unknown_account",
            "account_sid is not a registered Twilio account",
        ));
    };
    let whatsapp_number = |address: &str| {
        address
            .strip_prefix("whatsapp:")
            .filter(|n| is_e164(n))
            .map(str::to_owned)
    };
    let (Some(customer), Some(business)) =
        (whatsapp_number(&inbound.from), whatsapp_number(&inbound.to))
    else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_address",
            "from and to must be whatsapp:+E164 addresses",
        ));
    };
    check_webhook(shared, inbound.webhook_url.as_deref())?;
    let at = inbound.at.unwrap_or_else(OffsetDateTime::now_utc);
    let window_open_until = shared.windows.record_inbound(
        WindowKey::Twilio {
            account_sid: inbound.account_sid.clone(),
            business,
            customer: customer.clone(),
        },
        at,
    );
    let sid = ids::twilio_message_sid();
    let mut outcome = InboundOutcome {
        window_open_until,
        message_id: sid.clone(),
        webhook_status: None,
        webhook_error: None,
    };
    let Some(url) = inbound.webhook_url else {
        return Ok(outcome);
    };
    // Alphabetical, as Twilio sends them.
    let params: Vec<(String, String)> = [
        ("AccountSid", inbound.account_sid.clone()),
        ("ApiVersion", "2010-04-01".to_owned()),
        ("Body", inbound.body.clone()),
        ("ChannelPrefix", "whatsapp".to_owned()),
        ("From", inbound.from.clone()),
        ("MessageSid", sid.clone()),
        ("MessageType", "text".to_owned()),
        ("NumMedia", "0".to_owned()),
        ("NumSegments", "1".to_owned()),
        (
            "ProfileName",
            inbound
                .profile_name
                .clone()
                .unwrap_or_else(|| DEFAULT_PROFILE_NAME.to_owned()),
        ),
        ("SmsMessageSid", sid.clone()),
        ("SmsSid", sid.clone()),
        ("SmsStatus", "received".to_owned()),
        ("To", inbound.to.clone()),
        ("WaId", digits(&customer)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let request = shared
        .callbacks
        .client()
        .post(&url)
        .header(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(
            "X-Twilio-Signature",
            callbacks::signature(&auth_token, &url, &params),
        )
        .header("I-Twilio-Idempotency-Token", callbacks::idempotency_token())
        .body(body);
    let (status, error) = post(shared, request).await;
    tracing::info!(provider = %Provider::Twilio, http_status = status, error = error.as_deref(), "inbound message webhook");
    outcome.webhook_status = status;
    outcome.webhook_error = error;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            hub_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
