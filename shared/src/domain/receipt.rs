//! Delivery receipts and inbound messages, normalised: whatever a provider's webhook says, Herald
//! reads it as a [`Notification`] — a status for one of its messages, a message from a
//! recipient, or something to acknowledge and ignore. The provider modules authenticate and parse
//! the raw requests; this module holds the shapes, the opt-out keywords and the constant-time
//! comparisons of shared secrets that providers without signatures rely on.

use super::error_code::ErrorCode;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use super::catalogue::Channel;
use super::cost::Money;
use super::message::MessageStatus;
use super::provider::ProviderKind;

/// What a provider reported about one message it took from Herald.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    pub provider: ProviderKind,
    /// The message as the provider names it (Twilio `SM...`, SES `MessageId`, Africa's Talking
    /// `ATXid_...`, Brevo `<...@smtp-relay...>`, Meta `wamid...`): what dispatch stored as the
    /// provider message id.
    pub provider_message_id: String,
    pub status: MessageStatus,
    /// The provider's code or short reason (error code, bounce type); never personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The address or number is unusable for good (hard bounce, number does not exist): the
    /// recipient is to be suppressed. Only ever set on `failed` and `bounced`.
    #[serde(default)]
    pub hard: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub occurred_at: Option<OffsetDateTime>,
    /// What the provider says the message cost, when the receipt carries a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
}

impl Receipt {
    /// A receipt with only the essentials; the provider modules fill in the rest.
    pub fn new(
        provider: ProviderKind,
        provider_message_id: impl Into<String>,
        status: MessageStatus,
    ) -> Self {
        Self {
            provider,
            provider_message_id: provider_message_id.into(),
            status,
            reason: None,
            hard: false,
            occurred_at: None,
            cost: None,
        }
    }
}

/// A message a recipient sent to one of the tenant's numbers or addresses (a reply, or `STOP`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InboundMessage {
    pub provider: ProviderKind,
    /// E.164 number (SMS, WhatsApp) or email address of the sender.
    pub from: String,
    /// The tenant's number, short code or address it was sent to, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub text: String,
    pub channel: Channel,
}

impl InboundMessage {
    /// `STOP` and its kin: the sender withdraws consent on this channel.
    pub fn is_opt_out(&self) -> bool {
        is_opt_out_keyword(&self.text)
    }

    /// `START` or `UNSTOP`: the sender lifts an earlier opt-out on this channel.
    pub fn is_opt_in(&self) -> bool {
        is_opt_in_keyword(&self.text)
    }
}

/// Senders and texts never reach a log line, not even through `{:?}`.
impl fmt::Debug for InboundMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundMessage")
            .field("provider", &self.provider)
            .field("from", &"[redacted]")
            .field("to", &self.to.as_ref().map(|_| "[redacted]"))
            .field("text_len", &self.text.len())
            .field("opt_out", &self.is_opt_out())
            .field("channel", &self.channel)
            .finish()
    }
}

/// One thing a webhook request told Herald. A request may carry several (Meta batches statuses,
/// Brevo batches events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    Receipt(Receipt),
    Inbound(InboundMessage),
    /// The recipient unsubscribed through the provider (Brevo's unsubscribe link): an opt-out
    /// of the channel, like a `STOP` (the message's `text` is empty).
    Unsubscribed(InboundMessage),
    /// SNS asks Herald to confirm an HTTPS subscription by fetching `subscribe_url` (checked to
    /// be an SNS endpoint before it is returned).
    SubscriptionConfirmation {
        subscribe_url: String,
        topic_arn: String,
    },
    /// Authentic, but nothing Herald acts on (an `opened` event of an unknown kind, an SNS
    /// unsubscribe confirmation, a deferral): acknowledged so the provider stops retrying.
    Ignored(String),
}

/// Why a webhook request was refused. Nothing in a refused request is acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The signature or shared secret is missing or wrong (401/403).
    #[error("the request is not authenticated: {0}")]
    Unauthenticated(String),
    /// Authentic (or not yet checked) but not what the provider documents (400).
    #[error("the request is malformed: {0}")]
    Malformed(String),
    /// Signed too long ago (or in the future): a replay, refused (401/403).
    #[error("the request's timestamp is outside the accepted window")]
    Stale,
    /// Herald could not check the request now (the SNS signing certificate could not be
    /// fetched): answer 5xx so the provider retries.
    #[error("the request cannot be verified now: {0}")]
    Unavailable(String),
}

impl ReceiptError {
    /// The code the provider is answered with (and logs and metrics count by).
    pub fn code(&self) -> ErrorCode {
        match self {
            ReceiptError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ReceiptError::Malformed(_) => ErrorCode::Malformed,
            ReceiptError::Stale => ErrorCode::Stale,
            ReceiptError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }

    pub fn unauthenticated(reason: impl Into<String>) -> Self {
        Self::Unauthenticated(reason.into())
    }

    pub fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed(reason.into())
    }
}

/// The keywords with which a recipient withdraws consent, as carriers and regulators define them:
/// the CTIA/US carrier set Twilio honours (`STOP`, `STOPALL`, `UNSUBSCRIBE`, `CANCEL`, `END`,
/// `QUIT`) and the words the FCC's 2024 consent-revocation rule adds (`REVOKE`, `OPT OUT`).
const OPT_OUT_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];

/// Whether an inbound text is an opt-out: the whole message is one keyword, in any case,
/// ignoring surrounding whitespace and punctuation ("Stop.", " stop all "). A sentence that
/// merely contains one ("please don't stop") is not.
pub fn is_opt_out_keyword(text: &str) -> bool {
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation());
    if trimmed.is_empty() || trimmed.len() > 32 {
        return false;
    }
    // "STOP ALL", "OPT-OUT" and "opt out" are the same words as STOPALL and OPTOUT.
    let word: String = trimmed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
        .flat_map(char::to_uppercase)
        .collect();
    OPT_OUT_KEYWORDS.contains(&word.as_str())
}

/// Whether an inbound text asks to be contacted again after an opt-out (`START`, `UNSTOP`, as
/// carriers define them). `YES` is not one: on an events platform it is an answer.
pub fn is_opt_in_keyword(text: &str) -> bool {
    let word: String = text
        .trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        .chars()
        .flat_map(char::to_uppercase)
        .collect();
    matches!(word.as_str(), "START" | "UNSTOP")
}

/// A provider's free-text reason made fit to store: words that look like an address or a phone
/// number (an `@`, or seven digits or more) are replaced, and the whole is cut to 200 characters.
/// Bounce texts quote the recipient ("550 5.1.1 <guest@example.com>: user unknown").
pub fn redact_reason(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        let digits = word.bytes().filter(u8::is_ascii_digit).count();
        if word.contains('@') || digits >= 7 {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
    }
    if out.chars().count() > 200 {
        out = out.chars().take(199).collect();
        out.push('…');
    }
    out
}

/// Constant-time equality of a presented secret and the configured one. The length of the
/// configured secret may leak; its content does not.
pub fn secret_matches(presented: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty() && bool::from(presented.ct_eq(expected))
}

/// A secret a webhook request must present: the configured value itself (`&str`), or the
/// SHA-256 of a secret Herald generated, showed once and kept only as a digest
/// ([`SecretDigest`]). Both compare in constant time.
pub trait SharedSecret {
    fn matches(&self, presented: &[u8]) -> bool;
}

impl SharedSecret for str {
    fn matches(&self, presented: &[u8]) -> bool {
        secret_matches(presented, self.as_bytes())
    }
}

/// The SHA-256 of a Herald-generated webhook secret, as stored (hex in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub fn of(secret: &str) -> Self {
        Self(sha2::Sha256::digest(secret.as_bytes()).into())
    }

    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        hex::decode(hex_digest).ok()?.try_into().ok().map(Self)
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl SharedSecret for SecretDigest {
    fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = sha2::Sha256::digest(presented).into();
        !presented.is_empty() && bool::from(digest.ct_eq(&self.0))
    }
}

/// Checks an `Authorization: Basic ...` header value against the configured user and password,
/// in constant time (both are compared whatever the first one says).
pub fn basic_auth_matches<S: SharedSecret + ?Sized>(
    authorization: Option<&str>,
    expected_user: &str,
    expected_password: &S,
) -> Result<(), ReceiptError> {
    let Some(value) = authorization else {
        return Err(ReceiptError::unauthenticated("no Authorization header"));
    };
    let encoded = value
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim())
        .ok_or_else(|| ReceiptError::unauthenticated("the Authorization header is not Basic"))?;
    let decoded = B64
        .decode(encoded)
        .map_err(|_| ReceiptError::unauthenticated("the Basic credentials are not base64"))?;
    // RFC 7617: user-id ":" password; the user may not contain a colon, the password may.
    let colon = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or_else(|| ReceiptError::unauthenticated("the Basic credentials have no ':'"))?;
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    let user_ok = secret_matches(user, expected_user.as_bytes());
    let password_ok = expected_password.matches(password);
    if user_ok & password_ok {
        Ok(())
    } else {
        Err(ReceiptError::unauthenticated(
            "the Basic credentials do not match",
        ))
    }
}

/// Checks an `Authorization: Bearer <token>` header value against the configured token.
pub fn bearer_matches<S: SharedSecret + ?Sized>(
    authorization: Option<&str>,
    expected: &S,
) -> Result<(), ReceiptError> {
    let token = authorization
        .map(str::trim)
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| ReceiptError::unauthenticated("no Bearer token"))?;
    if expected.matches(token.as_bytes()) {
        Ok(())
    } else {
        Err(ReceiptError::unauthenticated(
            "the Bearer token does not match",
        ))
    }
}

/// How one provider configuration's receipts reach Herald: `POST /webhooks/{kind}/{token}`.
/// The token is random and opaque (it names the configuration without being guessable); for
/// providers that do not sign their requests, Herald also generates a secret the provider
/// presents (Basic password, bearer token, Meta's verify token), shows it once and keeps only
/// its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReceiptRoute {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
}

/// The user name in the Basic credentials Herald gives Africa's Talking and Brevo.
pub const WEBHOOK_USER: &str = "herald";

impl ReceiptRoute {
    /// A route for a configuration of `kind`, and the secret to show once (for the kinds that
    /// need one). `None` for providers that send no webhooks Herald reads (SMTP, SNS SMS).
    pub fn generate(kind: ProviderKind) -> Option<(Self, Option<String>)> {
        let needs_secret = match kind {
            ProviderKind::Smtp | ProviderKind::Sns => return None,
            // Twilio signs with the auth token; SNS (for SES) with its certificate.
            ProviderKind::Twilio | ProviderKind::Ses => false,
            ProviderKind::AfricasTalking | ProviderKind::Brevo | ProviderKind::MetaWhatsapp => true,
        };
        let secret = needs_secret.then(random_token);
        Some((
            Self {
                token: random_token(),
                secret_sha256: secret.as_deref().map(|s| SecretDigest::of(s).to_hex()),
            },
            secret,
        ))
    }

    /// The stored secret digest, if this route has one.
    pub fn secret(&self) -> Option<SecretDigest> {
        self.secret_sha256
            .as_deref()
            .and_then(SecretDigest::from_hex)
    }
}

/// 24 random bytes, URL-safe base64 (32 characters).
fn random_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_keywords_are_whole_messages_in_any_case() {
        for text in [
            "STOP",
            "stop",
            "Stop",
            "  stop\n",
            "Stop.",
            "STOP!",
            "stopall",
            "STOP ALL",
            "Unsubscribe",
            "cancel",
            "END",
            "quit",
            "Revoke",
            "opt out",
            "OPT-OUT",
            "optout",
        ] {
            assert!(is_opt_out_keyword(text), "{text:?}");
        }
        for text in [
            "",
            "   ",
            "please don't stop",
            "stop it",
            "STOP sending me these",
            "stopped",
            "yes",
            "START",
            "UNSTOP",
            "HELP",
            "ЅТОР",     // Cyrillic look-alikes
            "ＳＴＯＰ", // full-width letters
        ] {
            assert!(!is_opt_out_keyword(text), "{text:?}");
        }
    }

    #[test]
    fn opt_in_keywords_are_start_and_unstop_only() {
        for text in ["START", "start", " Unstop! "] {
            assert!(is_opt_in_keyword(text), "{text:?}");
        }
        for text in ["YES", "start now", "STOP", ""] {
            assert!(!is_opt_in_keyword(text), "{text:?}");
        }
    }

    #[test]
    fn reasons_lose_addresses_and_numbers() {
        assert_eq!(
            redact_reason("550 5.1.1 <guest@example.com>: Recipient address rejected"),
            "550 5.1.1 [redacted] Recipient address rejected"
        );
        assert_eq!(
            redact_reason("unreachable +260971234567 (network 64502)"),
            "unreachable [redacted] (network 64502)"
        );
        assert_eq!(redact_reason(&"x ".repeat(300)).chars().count(), 200);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches(b"s3cret", b"s3cret"));
        assert!(!secret_matches(b"s3cret ", b"s3cret"));
        assert!(!secret_matches(b"s3creT", b"s3cret"));
        assert!(!secret_matches(b"", b""), "an unset secret matches nothing");
    }

    #[test]
    fn basic_auth_checks_user_and_password() {
        // "herald:pa:ss" — the password may hold a colon.
        let header = format!("Basic {}", B64.encode("herald:pa:ss"));
        assert_eq!(basic_auth_matches(Some(&header), "herald", "pa:ss"), Ok(()));
        let scheme_in_capitals = header.replacen("Basic", "BASIC", 1);
        assert_eq!(
            basic_auth_matches(Some(&scheme_in_capitals), "herald", "pa:ss"),
            Ok(()),
            "the scheme is case-insensitive"
        );
        for (header, why) in [
            (None, "missing"),
            (Some("Bearer abc".to_owned()), "wrong scheme"),
            (Some("Basic !!!".to_owned()), "not base64"),
            (
                Some(format!("Basic {}", B64.encode("heraldpass"))),
                "no colon",
            ),
            (
                Some(format!("Basic {}", B64.encode("herald:wrong"))),
                "wrong password",
            ),
            (
                Some(format!("Basic {}", B64.encode("other:pa:ss"))),
                "wrong user",
            ),
        ] {
            assert!(
                basic_auth_matches(header.as_deref(), "herald", "pa:ss").is_err(),
                "{why}"
            );
        }
    }

    #[test]
    fn bearer_tokens_match_exactly() {
        assert_eq!(bearer_matches(Some("Bearer tok-1"), "tok-1"), Ok(()));
        assert_eq!(bearer_matches(Some("bearer  tok-1 "), "tok-1"), Ok(()));
        assert!(bearer_matches(Some("Bearer tok-2"), "tok-1").is_err());
        assert!(bearer_matches(Some("Basic tok-1"), "tok-1").is_err());
        assert!(bearer_matches(None, "tok-1").is_err());
    }

    #[test]
    fn digests_match_only_their_secret() {
        let digest = SecretDigest::of("s3cret");
        assert!(digest.matches(b"s3cret"));
        assert!(!digest.matches(b"s3cret "));
        assert!(!digest.matches(b""));
        assert_eq!(SecretDigest::from_hex(&digest.to_hex()), Some(digest));
        let header = format!("Basic {}", B64.encode("herald:s3cret"));
        assert_eq!(basic_auth_matches(Some(&header), "herald", &digest), Ok(()));
        assert!(bearer_matches(Some("Bearer s3cret"), &digest).is_ok());
        assert!(bearer_matches(Some("Bearer s3creT"), &digest).is_err());
    }

    #[test]
    fn routes_are_random_and_keep_only_digests() {
        let (a, secret) = ReceiptRoute::generate(ProviderKind::Brevo).expect("brevo posts events");
        let (b, _) = ReceiptRoute::generate(ProviderKind::Brevo).expect("brevo posts events");
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 32);
        let secret = secret.expect("brevo presents a secret");
        assert!(a.secret().is_some_and(|d| d.matches(secret.as_bytes())));
        assert!(
            !serde_json::to_string(&a)
                .unwrap_or_default()
                .contains(&secret)
        );
        let (twilio, none) =
            ReceiptRoute::generate(ProviderKind::Twilio).expect("twilio calls back");
        assert!(none.is_none() && twilio.secret_sha256.is_none());
        assert!(ReceiptRoute::generate(ProviderKind::Smtp).is_none());
    }

    #[test]
    fn inbound_debug_hides_sender_and_text() {
        let inbound = InboundMessage {
            provider: ProviderKind::Twilio,
            from: "+260971234567".into(),
            to: Some("+260211555010".into()),
            text: "STOP".into(),
            channel: Channel::Sms,
        };
        let shown = format!("{inbound:?}");
        assert!(shown.contains("opt_out: true"), "{shown}");
        for hidden in ["+260971234567", "+260211555010", "STOP"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
    }
}
