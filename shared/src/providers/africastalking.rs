//! Africa's Talking (SMS). Credentials: the app username (a setting) and its API key, sent in
//! the `apiKey` header. The check reads the account's user data (balance); a send posts the
//! form-encoded `version1/messaging` request, whose answer carries a status per recipient.
//! Delivery reports and inbound messages are unsigned; Herald authenticates them with
//! per-configuration secrets (see "Receipts" below).

use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::{Accepted, Outbound, ProviderCost, SendError};
use crate::domain::Channel;
use crate::domain::message::MessageStatus;
use crate::domain::provider::ProviderKind;
use crate::domain::receipt::{
    InboundMessage, Notification, Receipt, ReceiptError, SharedSecret, basic_auth_matches,
};
use crate::domain::snapshot::CheckOutcome;

const PROVIDER: &str = "Africa's Talking";

pub async fn check_credentials(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    api_key: &str,
) -> CheckOutcome {
    let request = http
        .get(format!("{base}/version1/user"))
        .query(&[("username", username)])
        .header("apiKey", api_key)
        .header("Accept", "application/json");
    super::classify(request.send().await, "Africa's Talking").await
}

/// The application a send goes through.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub username: &'a str,
    /// Alphanumeric sender id or short code; the account default when `None`.
    pub sender_id: Option<&'a str>,
    pub api_key: &'a str,
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(rename = "SMSMessageData")]
    data: MessageData,
}

#[derive(Deserialize)]
struct MessageData {
    /// A summary ("Sent to 1/1 Total Cost: KES 0.8000"), or the reason when nobody was sent to
    /// ("InvalidSenderId").
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "Recipients", default)]
    recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    status_code: u16,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cost: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    message_parts: Option<u32>,
}

/// Sends `message` to one number. Africa's Talking answers 201 even when the recipient was
/// refused, so the per-recipient `statusCode` decides.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    account: &Account<'_>,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    super::require_text(message)?;
    let to = super::e164(message.to)?;
    let mut form = vec![
        ("username", account.username),
        ("to", to),
        ("message", message.text),
    ];
    if let Some(sender_id) = account.sender_id {
        form.push(("from", sender_id));
    }
    let super::Answer {
        status,
        headers,
        body,
    } = super::exchange(
        PROVIDER,
        http.post(format!("{base}/version1/messaging"))
            .header("apiKey", account.api_key)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form),
    )
    .await?;
    if !status.is_success() {
        // Errors are plain text ("The supplied authentication is invalid"): the status decides.
        return Err(super::by_status(PROVIDER, status, &headers));
    }
    let data = serde_json::from_slice::<SendResponse>(&body)
        .map_err(|_| super::unexpected_answer(PROVIDER))?
        .data;
    let Some(recipient) = data.recipients.into_iter().next() else {
        return Err(nobody_sent(&data.message));
    };
    classify_recipient(recipient.status_code, &recipient.status)?;
    let provider_message_id = recipient
        .message_id
        .filter(|id| !id.is_empty() && id != "None")
        .ok_or_else(|| super::unexpected_answer(PROVIDER))?;
    Ok(Accepted {
        provider_message_id,
        cost: recipient.cost.as_deref().and_then(ProviderCost::parse),
        segments: recipient.message_parts.filter(|n| *n > 0),
    })
}

/// No recipient entry at all: the whole request was refused, and `Message` says why.
fn nobody_sent(message: &str) -> SendError {
    match message.trim() {
        "InvalidSenderId" => SendError::provider(
            "InvalidSenderId",
            "the sender id is not valid for this account",
        ),
        "InsufficientBalance" => {
            SendError::provider("InsufficientBalance", "the account balance is too low")
        }
        _ => SendError::provider(
            "no_recipients",
            "Africa's Talking accepted the request but sent to nobody",
        ),
    }
}

/// A recipient's `statusCode` (Africa's Talking SMS docs, "Sending messages": 100 Processed,
/// 101 Sent, 102 Queued; 401 RiskHold ... 502 RejectedByGateway) by who is at fault.
fn classify_recipient(status_code: u16, status: &str) -> Result<(), SendError> {
    let name = if status.is_empty() {
        status_code.to_string()
    } else {
        status.to_owned()
    };
    let permanent = |reason: &str| Err(SendError::permanent(name.clone(), reason));
    let provider = |reason: &str| Err(SendError::provider(name.clone(), reason));
    match status_code {
        100..=102 => Ok(()),
        403 => permanent("the phone number is not valid"),
        404 => permanent("the number cannot receive SMS (unsupported number type)"),
        406 => permanent("the recipient has blacklisted (opted out of) this sender"),
        409 => permanent("the recipient is on a do-not-disturb list"),
        401 => provider("the account is on risk hold"),
        402 => provider("the sender id is not valid for this account"),
        405 => provider("the account balance is too low"),
        // No route to this recipient's network right now: another provider may have one.
        407 => Err(SendError::retryable(
            "Africa's Talking could not route to the recipient's network",
            None,
        )),
        500..=502 => Err(SendError::retryable(
            format!("Africa's Talking failed to hand the message on ({name}); try again later"),
            None,
        )),
        _ => provider("Africa's Talking refused the message for a reason Herald does not know"),
    }
}

// ---------------------------------------------------------------------------------------------
// Receipts: delivery reports and inbound messages
// ---------------------------------------------------------------------------------------------
//
// Africa's Talking signs nothing: its callbacks are plain form POSTs to the URLs set in the
// dashboard. Herald gives each provider configuration its own secrets instead:
//
// | Secret | Where it travels | What Herald checks |
// | --- | --- | --- |
// | an opaque route token | the callback URL's path (`/webhooks/africastalking/{token}`) | the webhook function looks the configuration up by it; unknown tokens get 404 |
// | a per-configuration password | HTTP Basic credentials in the callback URL (`https://herald:<password>@.../`), which clients send as `Authorization: Basic` | [`verify_basic_auth`]: user and password, in constant time |
//
// Neither carries a time, so replays are absorbed by idempotent processing. Delivery reports
// carry `id`, `status`, `phoneNumber`, `networkCode`, `failureReason` (for `Rejected` and
// `Failed`) and `retryCount`, and no cost: the send answer has the cost of each message, which
// dispatch records in place of the estimate.

/// Checks the `Authorization: Basic` header against the configuration's callback credentials.
pub fn verify_basic_auth<S: SharedSecret + ?Sized>(
    headers: &HeaderMap,
    expected_user: &str,
    expected_password: &S,
) -> Result<(), ReceiptError> {
    let authorization = headers
        .get(reqwest::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    basic_auth_matches(authorization, expected_user, expected_password)
}

/// Reads an authenticated callback: a delivery report (`id` and `status`) becomes a receipt, an
/// incoming message (`from` and `text`) an inbound message.
pub fn parse_callback(body: &[u8]) -> Result<Vec<Notification>, ReceiptError> {
    let fields = super::FormFields::parse(body);
    let field = |name: &str| fields.get(name);
    if let Some(status) = field("status") {
        let id =
            field("id").ok_or_else(|| ReceiptError::malformed("a delivery report without id"))?;
        return Ok(vec![delivery_report(id, status, field("failureReason"))]);
    }
    if let (Some(from), Some(text)) = (field("from"), fields.raw("text")) {
        return Ok(vec![Notification::Inbound(InboundMessage {
            provider: ProviderKind::AfricasTalking,
            from: from.to_owned(),
            to: field("to").map(str::to_owned),
            text: text.to_owned(),
            channel: Channel::Sms,
        })]);
    }
    Ok(vec![Notification::Ignored(
        "an Africa's Talking callback that is neither a delivery report nor a message".into(),
    )])
}

fn delivery_report(id: &str, status: &str, failure_reason: Option<&str>) -> Notification {
    let kind = match status {
        "Sent" | "Submitted" | "Buffered" => MessageStatus::Sent,
        "Success" => MessageStatus::Delivered,
        "Rejected" | "Failed" | "AbsentSubscriber" | "Expired" => MessageStatus::Failed,
        other => return Notification::Ignored(format!("Africa's Talking status {other:?}")),
    };
    let mut receipt = Receipt::new(ProviderKind::AfricasTalking, id, kind);
    if kind == MessageStatus::Failed {
        let reason = failure_reason.unwrap_or(status);
        receipt.reason = Some(reason.to_owned());
        // Only a number that does not exist is dead for good; a blacklist (UserInBlackList) is
        // the recipient's opt-out from this sender, and inactive or suspended lines may return.
        receipt.hard = reason == "UserDoesNotExist";
    }
    Notification::Receipt(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_statuses_blame_the_right_party() {
        let kind = |code, status| classify_recipient(code, status).map_err(|e| e.kind());
        assert_eq!(kind(101, "Success"), Ok(()));
        assert_eq!(kind(102, "Queued"), Ok(()));
        assert_eq!(kind(403, "InvalidPhoneNumber"), Err("permanent"));
        assert_eq!(kind(404, "UnsupportedNumberType"), Err("permanent"));
        assert_eq!(kind(406, "UserInBlacklist"), Err("permanent"));
        assert_eq!(kind(405, "InsufficientBalance"), Err("provider"));
        assert_eq!(kind(401, "RiskHold"), Err("provider"));
        assert_eq!(kind(402, "InvalidSenderId"), Err("provider"));
        for code in [500, 501, 502] {
            assert_eq!(kind(code, ""), Err("retryable"));
        }
        assert_eq!(
            classify_recipient(406, "UserInBlacklist")
                .err()
                .and_then(|e| e.code().map(str::to_owned)),
            Some("UserInBlacklist".to_owned())
        );
    }

    #[test]
    fn a_refused_request_names_its_reason() {
        assert_eq!(
            nobody_sent("InvalidSenderId").code(),
            Some("InvalidSenderId")
        );
        assert_eq!(nobody_sent("").kind(), "provider");
    }

    #[test]
    fn delivery_reports_map_onto_herald_statuses() {
        let status = |body: &str| match parse_callback(body.as_bytes()) {
            Ok(mut n) if n.len() == 1 => match n.remove(0) {
                Notification::Receipt(r) => Some((r.status, r.reason, r.hard)),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(
            status("id=ATXid_1&status=Buffered"),
            Some((MessageStatus::Sent, None, false))
        );
        assert_eq!(
            status("id=ATXid_1&status=Rejected&failureReason=UserInBlackList"),
            Some((MessageStatus::Failed, Some("UserInBlackList".into()), false)),
            "a blacklist is an opt-out, not a dead number"
        );
        assert_eq!(
            status("id=ATXid_1&status=Failed"),
            Some((MessageStatus::Failed, Some("Failed".into()), false))
        );
        assert_eq!(status("id=ATXid_1&status=Mystery"), None);
        assert!(matches!(
            parse_callback(b"status=Success"),
            Err(ReceiptError::Malformed(_))
        ));
        assert!(matches!(
            parse_callback(b"senderId=ACME&phoneNumber=%2B260971234567").as_deref(),
            Ok([Notification::Ignored(_)])
        ));
    }
}
