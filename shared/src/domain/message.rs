//! Messages: one rendered communication to one recipient on one channel, and what happened to
//! it. A message's id is derived from the request's idempotency key and the recipient's position,
//! so a retried request finds the messages it already created instead of making new ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::catalogue::{Category, Channel};
use super::cost::Money;
use super::ids::{EventId, InvalidId, ProviderId, TenantId};
use super::provider::ProviderKind;
use super::recipient::Recipient;

/// `msg_` followed by 26 lowercase base32 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

impl MessageId {
    /// The id of the `index`th message of the request with `idempotency_key` in `tenant`.
    pub fn derive(tenant: &TenantId, scope: &str, idempotency_key: &str, index: usize) -> Self {
        let digest = Sha256::digest(format!("{tenant}\n{scope}\n{idempotency_key}\n{index}"));
        // 130 bits of the digest in Crockford base32.
        let mut bits: u128 = 0;
        for byte in &digest[..16] {
            bits = (bits << 8) | u128::from(*byte);
        }
        let mut out = String::with_capacity(30);
        out.push_str("msg_");
        for i in (0..26).rev() {
            let shift = (i * 5) % 128;
            out.push(char::from(ALPHABET[((bits >> shift) & 31) as usize]));
        }
        Self(out)
    }

    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let ok = s
            .strip_prefix("msg_")
            .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| ALPHABET.contains(&b)));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId { what: "message id" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MessageId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MessageId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.0
    }
}

/// Where a message is. Dispatch moves `accepted` to `sent` or `failed`; delivery receipts move it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
    Bounced,
    Complained,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 7] = [
        MessageStatus::Accepted,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
        MessageStatus::Bounced,
        MessageStatus::Complained,
    ];

    /// Where a status stands in a message's life. A message only ever moves to a higher rank,
    /// so receipts that arrive late, twice or out of order cannot move it back, and the final
    /// status is the same whatever order they came in (the highest rank seen). Recipient
    /// feedback outranks delivery facts: a complaint after a read is what matters for consent,
    /// a bounce after a "delivered" is what matters for suppression.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Accepted => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Failed => 2,
            MessageStatus::Delivered => 3,
            MessageStatus::Bounced => 4,
            MessageStatus::Read => 5,
            MessageStatus::Complained => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Accepted => "accepted",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Complained => "complained",
        }
    }
}

/// Where a report of a message's status stands against every other report of it: the status's
/// rank first; between reports of the same rank (a Twilio `undelivered` and a later `failed`,
/// two Meta failures), the one the provider made later; then the reason. A message takes a
/// report only if its mark is higher than the message's, so the final state is the report with
/// the highest mark, whatever order reports arrive in, and repeats change nothing.
///
/// As a string (what DynamoDB conditions compare): `<rank>#<provider time>#<reason>`, the time
/// fixed-width UTC with microseconds (empty when the provider gives none, which sorts first),
/// so string order is this order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusMark(String);

impl StatusMark {
    pub fn of(status: MessageStatus, at: Option<OffsetDateTime>, reason: Option<&str>) -> Self {
        let at = at.map(super::report::sortable_time).unwrap_or_default();
        Self(format!(
            "{}#{at}#{}",
            status.rank(),
            reason.unwrap_or_default()
        ))
    }

    /// The mark of a message as it stands.
    pub fn of_message(message: &Message) -> Self {
        Self::of(
            message.status,
            message.status_at,
            message.status_reason.as_deref(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a message is made of when the send API accepts it; everything else starts empty.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub tenant: TenantId,
    pub event: EventId,
    pub snapshot_version: u32,
    pub category: Category,
    pub channel: Channel,
    pub recipient: Recipient,
    pub recipient_key: String,
    pub content: MessageContent,
    pub estimated_cost: Option<Money>,
    pub created_at: OffsetDateTime,
    pub request_id: String,
}

impl Message {
    /// A message as accepted for delivery: not yet sent, no provider, no attempts.
    pub fn accepted(new: NewMessage) -> Self {
        Self {
            id: new.id,
            tenant: new.tenant,
            event: new.event,
            snapshot_version: new.snapshot_version,
            category: new.category,
            channel: new.channel,
            recipient: new.recipient,
            recipient_key: new.recipient_key,
            content: new.content,
            status: MessageStatus::Accepted,
            status_reason: None,
            status_at: None,
            trigger: None,
            estimated_cost: new.estimated_cost,
            cost: None,
            provider: None,
            provider_kind: None,
            provider_message_id: None,
            attempts: Vec::new(),
            created_at: new.created_at,
            sent_at: None,
            request_id: new.request_id,
            expires_at: None,
            not_before: None,
            erased_at: None,
            test: false,
            list_unsubscribe: None,
        }
    }

    /// What the message's audit entries name: `message/<id>`, the same from its creation to
    /// its erasure, so its history is one chain.
    pub fn audit_target(&self) -> String {
        format!("message/{}", self.id)
    }
}

/// A status reported for a message (by a provider's receipt), as a message records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub status: MessageStatus,
    /// The provider's code or short reason; never personal data.
    pub reason: Option<String>,
    /// When the provider says it happened.
    pub at: Option<OffsetDateTime>,
    /// What the provider billed, when known.
    pub cost: Option<Money>,
}

impl StatusReport {
    pub fn mark(&self) -> StatusMark {
        StatusMark::of(self.status, self.at, self.reason.as_deref())
    }

    /// Whether `message` takes this report: its mark is higher than the message's.
    pub fn moves(&self, message: &Message) -> bool {
        self.mark() > StatusMark::of_message(message)
    }

    /// `message` with this report taken (whether or not it [`moves`](Self::moves) it).
    pub fn apply_to(&self, message: &mut Message) {
        message.status = self.status;
        message.status_reason = self.reason.clone();
        message.status_at = self.at;
        if let Some(cost) = self.cost {
            message.cost = Some(cost);
        }
    }
}

/// What one try with one provider came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Accepted {
        provider_message_id: String,
    },
    /// Outage, timeout or throttling: the next provider, or a retry later.
    Retryable {
        reason: String,
    },
    /// The provider refused us (credentials, sender, balance): the next provider.
    ProviderRefused {
        code: String,
        reason: String,
    },
    /// The provider refused the recipient or the content for good.
    Rejected {
        code: String,
        reason: String,
    },
    /// Not tried: its circuit is open.
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    pub provider: ProviderId,
    pub kind: ProviderKind,
    /// Which delivery of the queue message this attempt belonged to.
    pub delivery: u32,
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub at: OffsetDateTime,
    pub duration_ms: u64,
}

/// The rendered content, as the recipient will see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessageContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
    /// WhatsApp only: the registered templates it is sent as outside the customer-service
    /// window, with this recipient's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_template: Option<crate::domain::whatsapp::TemplateCall>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Message {
    pub id: MessageId,
    pub tenant: TenantId,
    pub event: EventId,
    /// The snapshot the message was rendered from; dispatch routes with the same one.
    pub snapshot_version: u32,
    pub category: Category,
    pub channel: Channel,
    pub recipient: Recipient,
    /// Stable, non-reversible recipient key: routing, logs and metrics use it, never the address.
    pub recipient_key: String,
    pub content: MessageContent,
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// When the status was reached, as its reporter says: the provider's time on a receipt
    /// (none when the provider gives none), dispatch's for `sent` and `failed`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub status_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_kind: Option<ProviderKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub created_at: OffsetDateTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub sent_at: Option<OffsetDateTime>,
    pub request_id: String,
    /// When the record expires (its TTL): creation plus the tenant's retention at send time.
    /// Kept with the message so every later write of it keeps the same expiry. `None`: the
    /// platform default (`MESSAGE_RETENTION_DAYS`) applies.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub expires_at: Option<OffsetDateTime>,
    /// Not to be delivered before this time: the end of the recipient's quiet hours when the
    /// message was sent inside them. Dispatch holds the message until then.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub not_before: Option<OffsetDateTime>,
    /// When the recipient's personal data was erased from this record (data-subject erasure):
    /// the address, the rendered content and any provider text quoting the address are gone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub erased_at: Option<OffsetDateTime>,
    /// A test message the wizard sent to an address its user gave (test send): a real message,
    /// marked so lists and reports can tell it from the event's own traffic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// A marketing email's unsubscribe links (RFC 2369 / RFC 8058), given to the provider as
    /// `List-Unsubscribe` and `List-Unsubscribe-Post` headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_unsubscribe: Option<ListUnsubscribe>,
}

/// Where the recipient of a marketing email unsubscribes: the one-click URL a mail client POSTs
/// `List-Unsubscribe=One-Click` to (RFC 8058), and their preference page. Both carry the signed
/// preference-link token (tenant, recipient key, channel, expiry), never the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListUnsubscribe {
    pub one_click: String,
    pub page: String,
}

impl ListUnsubscribe {
    /// The `List-Unsubscribe` header's value: the one-click URL first (the HTTPS URI a client
    /// POSTs to), then the preference page.
    pub fn header(&self) -> String {
        format!("<{}>, <{}>", self.one_click, self.page)
    }

    /// The `List-Unsubscribe-Post` header's value (RFC 8058).
    pub const POST: &'static str = "List-Unsubscribe=One-Click";
}

/// A message as an event's message list shows it to operators: what happened to it, never its
/// content or its whole address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessageListing {
    pub id: MessageId,
    pub channel: Channel,
    pub category: Category,
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub status_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub provider: Option<ProviderId>,
    #[serde(default)]
    pub cost: Option<Money>,
    #[serde(default)]
    pub estimated_cost: Option<Money>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub created_at: OffsetDateTime,
    pub test: bool,
    /// [`Recipient::masked`].
    pub recipient: String,
}

impl From<&Message> for MessageListing {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            channel: m.channel,
            category: m.category,
            status: m.status,
            status_reason: m.status_reason.clone(),
            status_at: m.status_at,
            provider: m.provider.clone(),
            cost: m.cost,
            estimated_cost: m.estimated_cost,
            created_at: m.created_at,
            test: m.test,
            recipient: m.recipient.masked(),
        }
    }
}

/// Which of an event's messages a list shows: each given condition must hold. `from` is
/// inclusive and `to` exclusive, on the creation time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub status: Option<MessageStatus>,
    pub channel: Option<Channel>,
    pub category: Option<Category>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl MessageFilter {
    pub fn matches(&self, m: &MessageListing) -> bool {
        self.status.is_none_or(|s| s == m.status)
            && self.channel.is_none_or(|c| c == m.channel)
            && self.category.is_none_or(|c| c == m.category)
            && self.from.is_none_or(|f| m.created_at >= f)
            && self.to.is_none_or(|t| m.created_at < t)
    }

    /// What the filter is, as a cursor binds to it: a cursor continues only the same list.
    pub fn describe(&self) -> String {
        let time = |t: Option<OffsetDateTime>| t.map(super::report::sortable_time);
        format!(
            "status={:?};channel={:?};category={:?};from={:?};to={:?}",
            self.status.map(MessageStatus::as_str),
            self.channel.map(Channel::as_str),
            self.category.map(Category::as_str),
            time(self.from),
            time(self.to),
        )
    }
}

/// Where a list of messages in creation order resumes: the creation time and id of the last
/// message read. As a string, `<sortable created_at>#<id>`, which sorts as messages are created
/// (what the stores' indexes are keyed by).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessagePosition(String);

impl MessagePosition {
    pub fn of(created_at: OffsetDateTime, id: &MessageId) -> Self {
        Self(format!("{}#{id}", super::report::sortable_time(created_at)))
    }

    /// A position as [`MessagePosition::as_str`] wrote it; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (stamp, id) = s.split_once('#')?;
        let at = super::validation::utc_time(stamp)?;
        let id = MessageId::parse(id).ok()?;
        let position = Self::of(at, &id);
        (position.0 == s).then_some(position)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn id(&self) -> &str {
        self.0.rsplit('#').next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_move_a_message_by_rank_then_time_then_reason() {
        use MessageStatus::*;
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(1_795_341_600 + s).ok();
        let mark = |status, when, reason: Option<&str>| StatusMark::of(status, when, reason);
        assert!(mark(Sent, None, None) > mark(Accepted, at(9), None));
        assert!(
            mark(Delivered, None, None) > mark(Sent, at(9), None),
            "a late 'sent' never moves a delivered message back"
        );
        assert!(
            mark(Delivered, None, None) > mark(Failed, at(9), Some("30003")),
            "a delivery report beats an earlier failure guess"
        );
        assert!(mark(Read, None, None) > mark(Delivered, at(9), None));
        assert!(mark(Complained, None, None) > mark(Read, at(9), None));
        // Same status: the provider's later report, then the reason, decide.
        assert!(mark(Failed, at(2), Some("30003")) > mark(Failed, at(1), Some("30008")));
        assert!(mark(Failed, at(1), Some("30008")) > mark(Failed, at(1), Some("30003")));
        assert!(mark(Failed, at(0), None) > mark(Failed, None, Some("30008")));
        assert_eq!(mark(Sent, at(1), None), mark(Sent, at(1), None), "a repeat");
    }

    #[test]
    fn ids_are_derived_stably_and_parse_back() {
        let t = TenantId::parse("acme").expect("id");
        let a = MessageId::derive(&t, "send", "key-1", 0);
        assert_eq!(a, MessageId::derive(&t, "send", "key-1", 0));
        assert_ne!(a, MessageId::derive(&t, "send", "key-1", 1));
        assert_ne!(
            a,
            MessageId::derive(&TenantId::parse("globex").expect("id"), "send", "key-1", 0)
        );
        assert_eq!(MessageId::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(a.as_str().len(), 30);
        assert!(MessageId::parse("msg_short").is_err());
    }
}
