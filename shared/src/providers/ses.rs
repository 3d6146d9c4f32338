//! Amazon SES v2 (email). Herald's own IAM role sends, so there are no tenant secrets; what must
//! hold is that the tenant's sender address (or its domain) is a verified SES identity. A send
//! is one `SendEmail` with simple content (subject, text and HTML bodies). Delivery, bounce and
//! complaint events arrive through SNS and are read only once SNS's signature checks out (see
//! "Receipts" below and `sns_signature`).

use crate::domain::message::ListUnsubscribe;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag,
};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use time::OffsetDateTime;

use super::sns_signature::{CertificateSource, SnsMessage, SnsMessageType, SnsVerifier};
use super::{Accepted, Outbound, SendError};
use crate::domain::message::MessageStatus;
use crate::domain::provider::ProviderKind;
use crate::domain::receipt::{Notification, Receipt, ReceiptError, redact_reason};
use crate::domain::snapshot::CheckOutcome;
use crate::domain::validation::EmailAddress;

const PROVIDER: &str = "SES";

pub async fn check_sender(ses: &aws_sdk_sesv2::Client, from: &EmailAddress) -> CheckOutcome {
    for identity in [from.as_str(), from.domain()] {
        match ses
            .get_email_identity()
            .email_identity(identity)
            .send()
            .await
        {
            // VerificationStatus SUCCESS is the verification itself; VerifiedForSendingStatus
            // follows it in AWS (the emulator only reports the former).
            Ok(out)
                if out.verified_for_sending_status()
                    || out.verification_status()
                        == Some(&aws_sdk_sesv2::types::VerificationStatus::Success) =>
            {
                return CheckOutcome::Passed {
                    detail: format!("SES identity {identity} is verified for sending"),
                };
            }
            Ok(_) => {
                return CheckOutcome::Rejected {
                    detail: format!("SES identity {identity} is not verified for sending"),
                };
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                continue;
            }
            Err(_) => {
                return CheckOutcome::Unreachable {
                    detail: "SES could not be reached".to_owned(),
                };
            }
        }
    }
    CheckOutcome::Rejected {
        detail: format!("no SES identity exists for {} or its domain", from.domain()),
    }
}

/// The tenant's sender as SES needs it.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub from_address: &'a EmailAddress,
    pub from_name: Option<&'a str>,
    pub configuration_set: Option<&'a str>,
}

/// The tag and header carrying Herald's message id; SES event publishing returns tags with
/// every delivery, bounce and complaint event.
pub const MESSAGE_ID_TAG: &str = "herald_message_id";
pub const MESSAGE_ID_HEADER: &str = "X-Herald-Message-Id";

pub async fn send(
    ses: &aws_sdk_sesv2::Client,
    sender: &Sender<'_>,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    let to = super::email_recipient(message.to)?;
    let subject = super::require_subject(message)?;
    super::require_text(message)?;
    let from = from_header(sender.from_address, sender.from_name)?;
    let not_built =
        |_| SendError::provider("request_not_built", "the SES request could not be built");
    let utf8 = |data: &str| {
        Content::builder()
            .data(data)
            .charset("UTF-8")
            .build()
            .map_err(not_built)
    };
    let mut body = Body::builder().text(utf8(message.text)?);
    if let Some(html) = message.html {
        body = body.html(utf8(html)?);
    }
    // Tag values allow letters, digits, '_' and '-' only; Herald ids are made of those.
    let tag_value: String = message
        .message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut simple = Message::builder()
        .subject(utf8(subject)?)
        .body(body.build())
        .headers(
            MessageHeader::builder()
                .name(MESSAGE_ID_HEADER)
                .value(tag_value.clone())
                .build()
                .map_err(not_built)?,
        );
    if let Some(unsubscribe) = message.list_unsubscribe {
        for (name, value) in [
            ("List-Unsubscribe", unsubscribe.header()),
            ("List-Unsubscribe-Post", ListUnsubscribe::POST.to_owned()),
        ] {
            simple = simple.headers(
                MessageHeader::builder()
                    .name(name)
                    .value(value)
                    .build()
                    .map_err(not_built)?,
            );
        }
    }
    let simple = simple.build();
    let output = ses
        .send_email()
        .from_email_address(from)
        .destination(Destination::builder().to_addresses(to.to_string()).build())
        .content(EmailContent::builder().simple(simple).build())
        .set_configuration_set_name(sender.configuration_set.map(str::to_owned))
        .email_tags(
            MessageTag::builder()
                .name(MESSAGE_ID_TAG)
                .value(tag_value)
                .build()
                .map_err(not_built)?,
        )
        .send()
        .await
        .map_err(|e| super::aws_error(PROVIDER, &e, classify))?;
    let provider_message_id = output
        .message_id()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| super::unexpected_answer(PROVIDER))?
        .to_owned();
    Ok(Accepted {
        provider_message_id,
        cost: None,
        segments: None,
    })
}

/// `Display Name <address>`. SES takes no raw UTF-8 in the sender: a non-ASCII name is
/// RFC 2047-encoded, an ASCII one quoted when it holds specials.
fn from_header(address: &EmailAddress, name: Option<&str>) -> Result<String, SendError> {
    let address: lettre::Address = address.as_str().parse().map_err(|_| {
        SendError::provider(
            "invalid_sender",
            "the configured sender address is not usable",
        )
    })?;
    let name: String = name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let name = name.trim();
    if name.is_empty() {
        return Ok(address.to_string());
    }
    Ok(format!("{} <{address}>", display_name(name)))
}

fn display_name(name: &str) -> String {
    if !name.is_ascii() {
        // Encoded words of at most 75 characters: 45 bytes of UTF-8 each, split between
        // characters.
        let mut words = Vec::new();
        let mut chunk = String::new();
        for c in name.chars() {
            if chunk.len() + c.len_utf8() > 45 {
                words.push(std::mem::take(&mut chunk));
            }
            chunk.push(c);
        }
        words.push(chunk);
        return words
            .iter()
            .map(|w| format!("=?UTF-8?B?{}?=", B64.encode(w)))
            .collect::<Vec<_>>()
            .join(" ");
    }
    if name.chars().any(|c| "()<>[]:;@\\,.\"".contains(c)) {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("\"{escaped}\"");
    }
    name.to_owned()
}

/// SES v2 `SendEmail` errors (API Reference v2, SendEmail "Errors"; "Amazon SES email sending
/// errors" in the developer guide) by who is at fault. `None` leaves it to the generic AWS rules.
fn classify(code: &str, message: &str) -> Option<SendError> {
    match code {
        // Account-level: the sender, the account or its quota.
        "AccountSuspendedException" | "SendingPausedException" => Some(SendError::provider(
            code,
            "SES sending is suspended or paused for the account",
        )),
        "MailFromDomainNotVerifiedException" => Some(SendError::provider(
            code,
            "the sender's MAIL FROM domain is not verified",
        )),
        "NotFoundException" => Some(SendError::provider(
            code,
            "the configuration set or identity does not exist",
        )),
        // A rejected message is about the recipient only when SES says it is suppressed;
        // otherwise it is the sender (unverified identity, sandbox).
        "MessageRejected" => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("blacklist") || lower.contains("suppress") {
                Some(SendError::permanent(code, "SES refused the recipient"))
            } else {
                Some(SendError::provider(code, "SES refused the sender"))
            }
        }
        // Invalid input that passed Herald's checks: the address or the content.
        "BadRequestException" | "InvalidParameterValue" => Some(SendError::permanent(
            code,
            "SES refused the recipient address or the message content",
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Receipts: SES events delivered by SNS over HTTPS
// ---------------------------------------------------------------------------------------------
//
// SES publishes delivery, bounce and complaint events (event publishing through a
// configuration set, or the identity's feedback notifications) to an SNS topic, which posts
// them to Herald. Authenticity is SNS's message signature, checked by
// [`SnsVerifier`](super::sns_signature::SnsVerifier) — certificate URL, topic, age and RSA
// signature — before the event inside is read. Events are keyed by `mail.messageId`, the id
// `SendEmail` returned.

/// Authenticates an SNS delivery (signature, certificate host, expected topic, age) and reads
/// what it carries: SES events as receipts, a subscription confirmation as such.
pub async fn receive<S: CertificateSource>(
    verifier: &SnsVerifier<S>,
    body: &[u8],
    expected_topics: &[&str],
    now: OffsetDateTime,
) -> Result<Vec<Notification>, ReceiptError> {
    let message = verifier.verify(body, expected_topics, now).await?;
    notifications(&message)
}

/// What a verified SNS message means for Herald.
pub fn notifications(message: &SnsMessage) -> Result<Vec<Notification>, ReceiptError> {
    match message.kind {
        SnsMessageType::SubscriptionConfirmation => match &message.subscribe_url {
            Some(url) => Ok(vec![Notification::SubscriptionConfirmation {
                subscribe_url: url.clone(),
                topic_arn: message.topic_arn.clone(),
            }]),
            None => Err(ReceiptError::malformed(
                "a confirmation without SubscribeURL",
            )),
        },
        SnsMessageType::UnsubscribeConfirmation => Ok(vec![Notification::Ignored(
            "SNS unsubscribe confirmation".into(),
        )]),
        SnsMessageType::Notification => parse_event(&message.message),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    /// Event publishing (configuration sets).
    event_type: Option<String>,
    /// Identity feedback notifications.
    notification_type: Option<String>,
    mail: Option<Mail>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    delivery: Option<Timed>,
    reject: Option<Reject>,
    open: Option<Timed>,
    click: Option<Timed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: String,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: Option<String>,
    bounce_sub_type: Option<String>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    complaint_feedback_type: Option<String>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Timed {
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Reject {
    reason: Option<String>,
}

/// Reads one SES event (the SNS `Message`): `Send` → sent, `Delivery` → delivered, `Open` and
/// `Click` → read, `Bounce` → bounced (hard when `bounceType` is `Permanent`), `Complaint` →
/// complained, `Reject` and `Rendering Failure` → failed; anything else is acknowledged and
/// ignored.
pub fn parse_event(message: &str) -> Result<Vec<Notification>, ReceiptError> {
    let Ok(event) = serde_json::from_str::<Event>(message) else {
        return Ok(vec![Notification::Ignored(
            "an SNS notification that is not an SES event".into(),
        )]);
    };
    let Some(kind) = event
        .event_type
        .as_deref()
        .or(event.notification_type.as_deref())
    else {
        return Ok(vec![Notification::Ignored(
            "an SNS notification that is not an SES event".into(),
        )]);
    };
    let status = match kind {
        "Send" => MessageStatus::Sent,
        "Delivery" => MessageStatus::Delivered,
        "Open" | "Click" => MessageStatus::Read,
        "Bounce" => MessageStatus::Bounced,
        "Complaint" => MessageStatus::Complained,
        "Reject" | "Rendering Failure" => MessageStatus::Failed,
        // DeliveryDelay, Subscription, AmazonSnsSubscriptionSucceeded, ...
        other => return Ok(vec![Notification::Ignored(format!("SES event {other:?}"))]),
    };
    let mail = event
        .mail
        .as_ref()
        .filter(|m| !m.message_id.is_empty())
        .ok_or_else(|| ReceiptError::malformed("an SES event without mail.messageId"))?;
    let mut receipt = Receipt::new(ProviderKind::Ses, &mail.message_id, status);
    let at = |t: &Option<String>| t.as_deref().and_then(crate::domain::validation::utc_time);
    let event_time = match kind {
        "Delivery" => event.delivery.as_ref().and_then(|d| at(&d.timestamp)),
        "Open" => event.open.as_ref().and_then(|o| at(&o.timestamp)),
        "Click" => event.click.as_ref().and_then(|c| at(&c.timestamp)),
        "Bounce" => event.bounce.as_ref().and_then(|b| at(&b.timestamp)),
        "Complaint" => event.complaint.as_ref().and_then(|c| at(&c.timestamp)),
        _ => None,
    };
    receipt.occurred_at = event_time.or_else(|| at(&mail.timestamp));
    match kind {
        "Bounce" => {
            let bounce = event.bounce.as_ref();
            let bounce_type = bounce
                .and_then(|b| b.bounce_type.as_deref())
                .unwrap_or("Undetermined");
            let sub_type = bounce.and_then(|b| b.bounce_sub_type.as_deref());
            receipt.hard = bounce_type == "Permanent";
            receipt.reason = Some(match sub_type {
                Some(sub_type) => format!("{bounce_type}/{sub_type}"),
                None => bounce_type.to_owned(),
            });
        }
        "Complaint" => {
            receipt.reason = event
                .complaint
                .as_ref()
                .and_then(|c| c.complaint_feedback_type.clone())
                .or_else(|| Some("complaint".into()));
        }
        "Reject" => {
            receipt.reason = Some(
                event
                    .reject
                    .and_then(|r| r.reason)
                    .map_or_else(|| "rejected".to_owned(), |r| redact_reason(&r)),
            );
        }
        "Rendering Failure" => receipt.reason = Some("rendering_failure".into()),
        _ => {}
    }
    Ok(vec![Notification::Receipt(receipt)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        let kind = |code, message| classify(code, message).map(|e| e.kind());
        assert_eq!(
            kind("MessageRejected", "Email address not verified a@b.example"),
            Some("provider")
        );
        assert_eq!(
            kind("MessageRejected", "Address blacklisted."),
            Some("permanent")
        );
        assert_eq!(kind("AccountSuspendedException", ""), Some("provider"));
        assert_eq!(
            kind("MailFromDomainNotVerifiedException", ""),
            Some("provider")
        );
        assert_eq!(
            kind("BadRequestException", "Illegal address"),
            Some("permanent")
        );
        assert_eq!(kind("TooManyRequestsException", ""), None);
    }

    #[test]
    fn display_names_are_encoded() -> Result<(), SendError> {
        let address = EmailAddress::parse("events@acme.example")
            .map_err(|_| SendError::provider("test", "fixture"))?;
        assert_eq!(from_header(&address, None)?, "events@acme.example");
        assert_eq!(
            from_header(&address, Some("Acme Events"))?,
            "Acme Events <events@acme.example>"
        );
        assert_eq!(
            from_header(&address, Some("Acme, Inc. \"Events\""))?,
            "\"Acme, Inc. \\\"Events\\\"\" <events@acme.example>"
        );
        assert_eq!(
            from_header(&address, Some("Café Gala"))?,
            "=?UTF-8?B?Q2Fmw6kgR2FsYQ==?= <events@acme.example>"
        );
        let long = from_header(&address, Some(&"é".repeat(40)))?;
        assert_eq!(long.matches("=?UTF-8?B?").count(), 2, "{long}");
        assert!(long.split(' ').all(|w| w.len() <= 75), "{long}");
        Ok(())
    }

    #[test]
    fn ses_events_map_onto_herald_statuses() {
        let status = |message: serde_json::Value| match parse_event(&message.to_string()) {
            Ok(mut n) if n.len() == 1 => match n.remove(0) {
                Notification::Receipt(r) => Some((r.status, r.reason, r.hard)),
                _ => None,
            },
            _ => None,
        };
        let mail = serde_json::json!({"messageId": "0102-1", "timestamp": "2026-11-22T10:00:00Z"});
        // Identity notifications name the type `notificationType`.
        assert_eq!(
            status(
                serde_json::json!({"notificationType": "Bounce", "mail": mail,
                "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull"}})
            ),
            Some((
                MessageStatus::Bounced,
                Some("Transient/MailboxFull".into()),
                false
            ))
        );
        assert_eq!(
            status(serde_json::json!({"eventType": "Send", "mail": mail, "send": {}})),
            Some((MessageStatus::Sent, None, false))
        );
        assert_eq!(
            status(serde_json::json!({"eventType": "Open", "mail": mail,
                "open": {"timestamp": "2026-11-22T10:05:00Z"}})),
            Some((MessageStatus::Read, None, false))
        );
        assert_eq!(
            status(serde_json::json!({"eventType": "Reject", "mail": mail,
                "reject": {"reason": "Bad content"}})),
            Some((MessageStatus::Failed, Some("Bad content".into()), false))
        );
        for ignored in [
            serde_json::json!({"eventType": "DeliveryDelay", "mail": mail}),
            serde_json::json!({"notificationType": "AmazonSnsSubscriptionSucceeded",
                "message": "Successfully validated SNS topic for Amazon SES event publishing."}),
            serde_json::json!("plain text"),
        ] {
            assert!(
                matches!(
                    parse_event(&ignored.to_string()).as_deref(),
                    Ok([Notification::Ignored(_)])
                ),
                "{ignored}"
            );
        }
        assert!(matches!(
            parse_event(&serde_json::json!({"eventType": "Delivery"}).to_string()),
            Err(ReceiptError::Malformed(_))
        ));
    }
}
