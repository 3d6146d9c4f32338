//! Twilio (SMS and WhatsApp). Credentials: the account SID (a setting) and its auth token.
//! The check fetches the Account resource, which needs exactly those credentials; a send creates
//! a Message resource (`POST /2010-04-01/Accounts/{sid}/Messages.json`). Status callbacks and
//! inbound messages are authenticated with `X-Twilio-Signature` before they are read (see
//! "Receipts" below).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::Mac as _;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{Accepted, Outbound, ProviderCost, SendError};
use crate::domain::Channel;
use crate::domain::message::MessageStatus;
use crate::domain::provider::ProviderKind;
use crate::domain::receipt::{InboundMessage, Notification, Receipt, ReceiptError, secret_matches};
use crate::domain::snapshot::CheckOutcome;
use crate::domain::whatsapp::RegistrationState;

const PROVIDER: &str = "Twilio";

pub async fn check_credentials(
    http: &reqwest::Client,
    base: &str,
    account_sid: &str,
    auth_token: &str,
) -> CheckOutcome {
    let url = format!("{base}/2010-04-01/Accounts/{account_sid}.json");
    super::classify(
        http.get(url)
            .basic_auth(account_sid, Some(auth_token))
            .send()
            .await,
        "Twilio",
    )
    .await
}

#[derive(Deserialize)]
struct ApprovalRequests {
    whatsapp: Option<WhatsappApproval>,
}

#[derive(Deserialize)]
struct WhatsappApproval {
    status: String,
    #[serde(default)]
    rejection_reason: Option<String>,
}

/// What Twilio says of the Content template `content_sid`'s WhatsApp approval
/// (`GET {content}/v1/Content/{sid}/ApprovalRequests`): not found when the account has no such
/// template. `Err`: why it could not be read.
pub async fn content_registration(
    http: &reqwest::Client,
    content_base: &str,
    account_sid: &str,
    auth_token: &str,
    content_sid: &str,
) -> Result<RegistrationState, String> {
    let request = http
        .get(format!(
            "{content_base}/v1/Content/{content_sid}/ApprovalRequests"
        ))
        .basic_auth(account_sid, Some(auth_token));
    let answer = super::exchange(PROVIDER, request)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status.as_u16() == 404 {
        return Ok(RegistrationState::not_found());
    }
    if !answer.status.is_success() {
        return Err(format!(
            "{PROVIDER} answered {} to the template lookup",
            answer.status.as_u16()
        ));
    }
    let approvals: ApprovalRequests = serde_json::from_slice(&answer.body)
        .map_err(|_| format!("{PROVIDER} answered the template lookup in an unexpected form"))?;
    Ok(match approvals.whatsapp {
        Some(w) => RegistrationState::from_status(&w.status, None, w.rejection_reason),
        // Created in the Content API but never submitted to WhatsApp.
        None => RegistrationState::from_status("unsubmitted", None, None),
    })
}

/// The parts of a Message resource Herald reads.
#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    num_segments: Option<String>,
    price: Option<String>,
    price_unit: Option<String>,
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
}

/// Sends `message` from `from`: an E.164 number, a `whatsapp:` address, or a Messaging Service
/// SID (`MG...`, which picks the sender itself). A WhatsApp send through a Messaging Service
/// passes `to` as `whatsapp:+E164`. A WhatsApp message outside the customer-service window
/// goes as its Content API template (`ContentSid`, `ContentVariables`).
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    account_sid: &str,
    from: &str,
    auth_token: &str,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    super::require_text(message)?;
    let is_service = from.len() == 34 && from.starts_with("MG");
    let whatsapp = from.starts_with("whatsapp:") || message.to.starts_with("whatsapp:");
    let number = super::e164(message.to.strip_prefix("whatsapp:").unwrap_or(message.to))?;
    let address = |n: &str| {
        if whatsapp && !n.starts_with("whatsapp:") {
            format!("whatsapp:{n}")
        } else {
            n.to_owned()
        }
    };
    let to = address(number);
    let mut form: Vec<(&str, String)> = vec![("To", to)];
    if is_service {
        form.push(("MessagingServiceSid", from.to_owned()));
    } else {
        form.push(("From", address(from)));
    }
    match message.whatsapp_template.and_then(|t| t.twilio.as_ref()) {
        // A Content API template: every key given (Twilio would fill a missing one with the
        // template's sample value), and no Body (a template sent as Body fails with 63016).
        Some(content) if whatsapp => {
            form.push(("ContentSid", content.content_sid.clone()));
            let variables = serde_json::to_string(&content.variables)
                .map_err(|_| SendError::permanent("template", "unreadable template variables"))?;
            form.push(("ContentVariables", variables));
        }
        _ => form.push(("Body", message.text.to_owned())),
    }
    if let Some(callback) = message.status_callback {
        form.push(("StatusCallback", callback.to_owned()));
    }

    let url = format!("{base}/2010-04-01/Accounts/{account_sid}/Messages.json");
    let super::Answer {
        status,
        headers,
        body,
    } = super::exchange(
        PROVIDER,
        http.post(url)
            .basic_auth(account_sid, Some(auth_token))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form),
    )
    .await?;
    if status.is_success() {
        let resource: MessageResource =
            serde_json::from_slice(&body).map_err(|_| super::unexpected_answer(PROVIDER))?;
        return Ok(accepted(resource));
    }
    let code = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.code);
    let error = code.and_then(classify_code).unwrap_or_else(|| {
        match super::by_status(PROVIDER, status, &headers) {
            // Keep Twilio's own code when it is one Herald does not list.
            SendError::Provider {
                code: http_code,
                reason,
            } => SendError::Provider {
                code: code.map_or(http_code, |c| c.to_string()),
                reason,
            },
            other => other,
        }
    });
    Err(error.hinted(super::retry_after(&headers)))
}

fn accepted(resource: MessageResource) -> Accepted {
    // A Messaging Service reports 0 segments until it has picked a sender: unknown, not zero.
    let segments = resource
        .num_segments
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n > 0);
    let cost = match (&resource.price, &resource.price_unit) {
        (Some(price), Some(unit)) => ProviderCost::from_parts(price, unit),
        _ => None,
    };
    Accepted {
        provider_message_id: resource.sid,
        cost,
        segments,
    }
}

/// The price Twilio billed for message `sid`, from its Message resource (`price` is populated
/// after sending, "may not be immediately available"): `None` while it is not, or when the
/// fetch fails.
pub async fn billed(
    http: &reqwest::Client,
    base: &str,
    account_sid: &str,
    auth_token: &str,
    sid: &str,
) -> Option<ProviderCost> {
    let url = format!("{base}/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json");
    let answer = super::exchange(
        PROVIDER,
        http.get(url)
            .basic_auth(account_sid, Some(auth_token))
            .header(reqwest::header::ACCEPT, "application/json"),
    )
    .await
    .ok()?;
    if !answer.status.is_success() {
        return None;
    }
    let resource: MessageResource = serde_json::from_slice(&answer.body).ok()?;
    ProviderCost::from_parts(resource.price.as_deref()?, resource.price_unit.as_deref()?)
}

/// Twilio error codes (https://www.twilio.com/docs/api/errors) by who is at fault. `None` for
/// codes not listed here: the HTTP status decides.
fn classify_code(code: u32) -> Option<SendError> {
    let permanent = |reason: &str| Some(SendError::permanent(code.to_string(), reason));
    let provider = |reason: &str| Some(SendError::provider(code.to_string(), reason));
    match code {
        // The recipient, for good.
        21211 => permanent("the 'To' number is not a valid phone number"),
        21408 => permanent("sending to the recipient's region is not enabled"),
        21610 => permanent("the recipient has unsubscribed (STOP) from this sender"),
        21612 => permanent("the 'To' number cannot be reached from this sender"),
        21614 => permanent("the 'To' number is not a mobile number"),
        21602 => permanent("the message has no body"),
        21617 => permanent("the message body exceeds 1600 characters"),
        63003 => permanent("the WhatsApp recipient could not be found"),
        63016 => permanent("outside the WhatsApp 24-hour window a template is required"),
        // The Content API template as the message used it: fixed in the template.
        21655 => permanent("the ContentSid is not a template of this account"),
        21656 => permanent("the ContentVariables are not valid"),
        63027 => permanent(
            "the template does not exist in this language or was sent with the wrong parameters",
        ),
        63028 => {
            permanent("the number of template parameters does not match the registered template")
        }
        // Herald's account or sender.
        20003 => provider("Twilio refused the credentials"),
        20404 => provider("the account does not exist for these credentials"),
        20005 | 20008 => {
            provider("the account is not active or cannot send with these credentials")
        }
        21212 => provider("the 'From' number is not a valid sender"),
        21606 => provider("the 'From' number cannot send SMS for this account"),
        21603 => provider("no 'From' number is configured"),
        21608 => provider("a trial account can only send to verified numbers"),
        21701 => provider("the Messaging Service does not exist"),
        21910 => provider("the 'From' address and the 'To' address are on different channels"),
        63007 => provider("no WhatsApp sender matches the 'From' address"),
        // Throttling and queues: later, or elsewhere.
        20429 | 14107 | 21611 | 63018 => Some(SendError::retryable(
            format!("Twilio is throttling ({code}); try again later"),
            None,
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Receipts: status callbacks and inbound messages
// ---------------------------------------------------------------------------------------------
//
// | What Twilio sends | How it is authenticated | What Herald checks |
// | --- | --- | --- |
// | Form POST (status callbacks, inbound SMS and WhatsApp) | `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the account's auth token, over the public URL followed by every POST parameter's name and value, sorted by name (then value; the helper libraries drop repeated identical pairs) | the signature over the exact public URL, then the same URL with the default port added or removed (Twilio signs whichever form it called), compared in constant time (`verify_slice`) |
// | JSON POST | the URL carries `bodySHA256`, the hex SHA-256 of the raw body; the signature covers the URL alone | the body's SHA-256 against `bodySHA256` (constant time), then the signature over the URL |
//
// No timestamp is signed, so a replay cannot be told from a retry: receipts are idempotent
// (the status machine never moves backwards) instead. Status callbacks carry no event time;
// `RawDlrDoneDate` is the carrier's, in a zone it does not state, and is not used.

/// The header carrying Twilio's request signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// Authenticates then parses a Twilio webhook: `public_url` is the URL exactly as Twilio called
/// it (scheme, host, path and query), `body` the raw request body.
pub fn receive(
    auth_token: &str,
    public_url: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<Notification>, ReceiptError> {
    verify_signature(auth_token, public_url, headers, body)?;
    parse_callback(body)
}

/// Checks `X-Twilio-Signature` over the raw request.
pub fn verify_signature(
    auth_token: &str,
    public_url: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ReceiptError> {
    if auth_token.is_empty() {
        return Err(ReceiptError::unauthenticated("no auth token is configured"));
    }
    let presented = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ReceiptError::unauthenticated("no X-Twilio-Signature header"))?;
    let presented = B64
        .decode(presented.trim())
        .map_err(|_| ReceiptError::unauthenticated("X-Twilio-Signature is not base64"))?;
    let url = url::Url::parse(public_url)
        .map_err(|_| ReceiptError::malformed("the public URL is not a URL"))?;
    let body_sha256 = url
        .query_pairs()
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value.into_owned());
    let params = match body_sha256 {
        Some(expected) => {
            let actual = hex::encode(Sha256::digest(body));
            if !secret_matches(actual.as_bytes(), expected.to_ascii_lowercase().as_bytes()) {
                return Err(ReceiptError::unauthenticated(
                    "the body does not match bodySHA256",
                ));
            }
            Vec::new()
        }
        None => form_pairs(body),
    };
    for candidate in url_variants(public_url) {
        let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes())
            .map_err(|_| ReceiptError::unauthenticated("unusable auth token"))?;
        mac.update(signed_data(&candidate, &params).as_bytes());
        if mac.verify_slice(&presented).is_ok() {
            return Ok(());
        }
    }
    Err(ReceiptError::unauthenticated(
        "X-Twilio-Signature does not match",
    ))
}

/// The signature Twilio sends for a form POST of `params` to `url`: for tests, fixtures and
/// stand-ins that play Twilio.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut pairs = params.to_vec();
    pairs.sort();
    pairs.dedup();
    let mac = HmacSha1::new_from_slice(auth_token.as_bytes()).map(|mut mac| {
        mac.update(signed_data(url, &pairs).as_bytes());
        mac.finalize().into_bytes()
    });
    mac.map(|bytes| B64.encode(bytes)).unwrap_or_default()
}

/// The form body's parameters, decoded, sorted by name then value, repeated pairs once.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

fn signed_data(url: &str, sorted_params: &[(String, String)]) -> String {
    let mut data = String::with_capacity(
        url.len()
            + sorted_params
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>(),
    );
    data.push_str(url);
    for (name, value) in sorted_params {
        data.push_str(name);
        data.push_str(value);
    }
    data
}

/// The URL as given, then with the scheme's default port removed or added: Twilio may sign
/// either form. Edited as text so the query stays exactly as Twilio encoded it.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let (scheme, default_port) = if url.starts_with("https://") {
        ("https://", ":443")
    } else if url.starts_with("http://") {
        ("http://", ":80")
    } else {
        return variants;
    };
    let rest = &url[scheme.len()..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if let Some(host) = authority.strip_suffix(default_port) {
        variants.push(format!("{scheme}{host}{tail}"));
    } else if !authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
    {
        variants.push(format!("{scheme}{authority}{default_port}{tail}"));
    }
    variants
}

/// Reads an authenticated callback: a status callback (`MessageStatus`) becomes a receipt, an
/// inbound message (`Body` with `SmsStatus=received`) an inbound message.
pub fn parse_callback(body: &[u8]) -> Result<Vec<Notification>, ReceiptError> {
    let fields = super::FormFields::parse(body);
    let field = |name: &str| fields.get(name);
    let inbound = matches!(field("SmsStatus"), Some("received"))
        || (field("MessageStatus").is_none() && fields.contains("Body"));
    if !inbound {
        if let Some(status) = field("MessageStatus") {
            let sid = field("MessageSid")
                .or_else(|| field("SmsSid"))
                .ok_or_else(|| ReceiptError::malformed("a status callback without MessageSid"))?;
            return Ok(vec![status_receipt(sid, status, field("ErrorCode"))]);
        }
        return Ok(vec![Notification::Ignored(
            "a Twilio callback with neither MessageStatus nor Body".into(),
        )]);
    }
    let from =
        field("From").ok_or_else(|| ReceiptError::malformed("an inbound message without From"))?;
    let (channel, from) = match from.split_once(':') {
        None => (Channel::Sms, from),
        Some(("whatsapp", number)) => (Channel::Whatsapp, number),
        Some((other, _)) => {
            return Ok(vec![Notification::Ignored(format!(
                "an inbound message on Twilio's {other} channel"
            ))]);
        }
    };
    let to = field("To").map(|to| to.strip_prefix("whatsapp:").unwrap_or(to).to_owned());
    Ok(vec![Notification::Inbound(InboundMessage {
        provider: ProviderKind::Twilio,
        from: from.to_owned(),
        to,
        text: fields.raw("Body").unwrap_or_default().to_owned(),
        channel,
    })])
}

/// A status callback carries no price (Twilio prices a message after sending): receipts ask the
/// Message resource for it once the message has ended ([`billed`]).
fn status_receipt(sid: &str, status: &str, error_code: Option<&str>) -> Notification {
    let status = match status {
        "queued" | "accepted" | "scheduled" | "sending" | "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        "undelivered" | "failed" | "canceled" => MessageStatus::Failed,
        other => {
            return Notification::Ignored(format!("Twilio message status {other:?}"));
        }
    };
    let mut receipt = Receipt::new(ProviderKind::Twilio, sid, status);
    let error_code = error_code.filter(|c| *c != "0");
    if status == MessageStatus::Failed {
        receipt.reason = Some(error_code.unwrap_or("failed").to_owned());
        receipt.hard = error_code.is_some_and(is_dead_number);
    }
    Notification::Receipt(receipt)
}

/// Error codes that say the number itself is unusable (https://www.twilio.com/docs/api/errors):
/// 21211 invalid 'To' number, 21614 not a mobile number, 30005 unknown destination handset,
/// 30006 landline or unreachable carrier. Opt-outs (21610) arrive as inbound STOP messages;
/// carrier filtering (30007) and unreachable handsets (30003) may pass.
fn is_dead_number(code: &str) -> bool {
    matches!(code, "21211" | "21614" | "30005" | "30006")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        for code in [21211, 21408, 21610, 21612, 21614] {
            assert_eq!(
                classify_code(code).map(|e| e.kind()),
                Some("permanent"),
                "{code}"
            );
        }
        for code in [20003, 21212, 21606, 21608] {
            assert_eq!(
                classify_code(code).map(|e| e.kind()),
                Some("provider"),
                "{code}"
            );
        }
        assert_eq!(classify_code(20429).map(|e| e.kind()), Some("retryable"));
        assert!(classify_code(20500).is_none());
    }

    #[test]
    fn price_and_segments_are_read_exactly() {
        let resource: MessageResource = serde_json::from_value(serde_json::json!({
            "sid": "SM1", "num_segments": "2", "price": "-0.00750", "price_unit": "USD"
        }))
        .expect("resource");
        let accepted = accepted(resource);
        assert_eq!(accepted.segments, Some(2));
        assert_eq!(
            accepted.cost,
            Some(ProviderCost {
                amount_micros: 7_500,
                currency: "USD".into()
            })
        );
        let service: MessageResource = serde_json::from_value(serde_json::json!({
            "sid": "SM2", "num_segments": "0", "price": null, "price_unit": "USD"
        }))
        .expect("resource");
        let accepted = super::accepted(service);
        assert_eq!((accepted.segments, accepted.cost), (None, None));
    }

    #[test]
    fn signed_urls_vary_only_by_the_default_port() {
        assert_eq!(
            url_variants("https://hooks.herald.example/webhooks/twilio/t?a=1%202"),
            [
                "https://hooks.herald.example/webhooks/twilio/t?a=1%202",
                "https://hooks.herald.example:443/webhooks/twilio/t?a=1%202",
            ]
        );
        assert_eq!(
            url_variants("https://hooks.herald.example:443/x"),
            [
                "https://hooks.herald.example:443/x",
                "https://hooks.herald.example/x"
            ]
        );
        assert_eq!(
            url_variants("http://localhost:9000/x"),
            ["http://localhost:9000/x"]
        );
    }

    #[test]
    fn statuses_map_onto_herald_statuses() {
        let status = |body: &str| match parse_callback(body.as_bytes()) {
            Ok(mut n) if n.len() == 1 => match n.remove(0) {
                Notification::Receipt(r) => Some((r.status, r.reason, r.hard)),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(
            status("MessageSid=SM1&MessageStatus=queued"),
            Some((MessageStatus::Sent, None, false))
        );
        assert_eq!(
            status("MessageSid=SM1&MessageStatus=read"),
            Some((MessageStatus::Read, None, false))
        );
        assert_eq!(
            status("MessageSid=SM1&MessageStatus=failed&ErrorCode=30007"),
            Some((MessageStatus::Failed, Some("30007".into()), false)),
            "carrier filtering is not a dead number"
        );
        assert_eq!(
            status("MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30006"),
            Some((MessageStatus::Failed, Some("30006".into()), true))
        );
        assert_eq!(
            status("MessageSid=SM1&MessageStatus=partially_delivered"),
            None
        );
        assert!(matches!(
            parse_callback(b"MessageStatus=delivered"),
            Err(ReceiptError::Malformed(_))
        ));
        assert!(matches!(
            parse_callback(b"From=messenger%3A123&Body=hi&SmsStatus=received").as_deref(),
            Ok([Notification::Ignored(_)])
        ));
    }
}
