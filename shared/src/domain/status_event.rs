//! What Herald tells tenant systems: one [`StatusEvent`] per change of a message's status, per
//! opt-out or suppression of a recipient, and per step of a tenant template's review. It is the body of an outgoing status webhook, in
//! the Standard Webhooks payload shape (`type`, `timestamp`, `data`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::catalogue::{Category, Channel};
use super::cost::Money;
use super::ids::{EventId, TenantId};
use super::message::{Message, MessageId, MessageStatus};
use super::provider::ProviderKind;

/// The kinds of event an endpoint can subscribe to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum StatusEventType {
    #[serde(rename = "message.sent")]
    MessageSent,
    #[serde(rename = "message.delivered")]
    MessageDelivered,
    #[serde(rename = "message.read")]
    MessageRead,
    #[serde(rename = "message.failed")]
    MessageFailed,
    #[serde(rename = "message.bounced")]
    MessageBounced,
    #[serde(rename = "message.complained")]
    MessageComplained,
    #[serde(rename = "recipient.opted_out")]
    RecipientOptedOut,
    #[serde(rename = "recipient.suppressed")]
    RecipientSuppressed,
    #[serde(rename = "template.submitted")]
    TemplateSubmitted,
    #[serde(rename = "template.approved")]
    TemplateApproved,
    #[serde(rename = "template.rejected")]
    TemplateRejected,
}

impl StatusEventType {
    pub const ALL: [StatusEventType; 11] = [
        StatusEventType::MessageSent,
        StatusEventType::MessageDelivered,
        StatusEventType::MessageRead,
        StatusEventType::MessageFailed,
        StatusEventType::MessageBounced,
        StatusEventType::MessageComplained,
        StatusEventType::RecipientOptedOut,
        StatusEventType::RecipientSuppressed,
        StatusEventType::TemplateSubmitted,
        StatusEventType::TemplateApproved,
        StatusEventType::TemplateRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusEventType::MessageSent => "message.sent",
            StatusEventType::MessageDelivered => "message.delivered",
            StatusEventType::MessageRead => "message.read",
            StatusEventType::MessageFailed => "message.failed",
            StatusEventType::MessageBounced => "message.bounced",
            StatusEventType::MessageComplained => "message.complained",
            StatusEventType::RecipientOptedOut => "recipient.opted_out",
            StatusEventType::RecipientSuppressed => "recipient.suppressed",
            StatusEventType::TemplateSubmitted => "template.submitted",
            StatusEventType::TemplateApproved => "template.approved",
            StatusEventType::TemplateRejected => "template.rejected",
        }
    }

    /// The event a message reaching `status` raises (`accepted` raises none: the send API's
    /// answer already says it).
    pub fn for_status(status: MessageStatus) -> Option<Self> {
        Some(match status {
            MessageStatus::Accepted => return None,
            MessageStatus::Sent => StatusEventType::MessageSent,
            MessageStatus::Delivered => StatusEventType::MessageDelivered,
            MessageStatus::Read => StatusEventType::MessageRead,
            MessageStatus::Failed => StatusEventType::MessageFailed,
            MessageStatus::Bounced => StatusEventType::MessageBounced,
            MessageStatus::Complained => StatusEventType::MessageComplained,
        })
    }
}

/// The version of the status webhook payload: raised when a field changes meaning or goes away
/// (new optional fields do not raise it). Receivers check it before reading `data`.
pub const STATUS_EVENT_VERSION: u32 = 1;

/// One change, as posted to every endpoint of the tenant that wants its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatusEvent {
    /// The `webhook-id`: derived from what changed, so the same change reported twice (a
    /// provider retrying a receipt) carries the same id and receivers can drop the repeat.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: StatusEventType,
    /// The payload's version ([`STATUS_EVENT_VERSION`] when it was made; deliveries queued
    /// before versions existed are version 1).
    #[serde(default = "first_version")]
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub timestamp: OffsetDateTime,
    pub tenant: TenantId,
    pub data: StatusEventData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum StatusEventData {
    Message(MessageData),
    Recipient(RecipientData),
    Template(TemplateData),
}

/// A step of a tenant's template review: a version submitted, approved (so published) or
/// rejected, with who did it. The content is not posted; read it with the version's URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateData {
    /// `tenant`, or `event` with `event` naming it.
    pub layer: super::resolution::Layer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventId>,
    pub category: Category,
    pub channel: Channel,
    pub version: u32,
    /// Who submitted, approved or rejected it (the token's `sub`).
    pub by: String,
    /// A rejection's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A message's new status. No recipient address: tenants correlate by `message_id`, which the
/// send API returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessageData {
    pub message_id: MessageId,
    pub event: EventId,
    pub category: Category,
    pub channel: Channel,
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
    /// A test send from the wizard (`POST .../templates/{category}/{channel}/test`), not the
    /// event's own traffic; absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// A recipient Herald will no longer send to on a channel (the key is the stable,
/// non-reversible recipient key of the message records, never the address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecipientData {
    pub recipient_key: String,
    pub channel: Channel,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
}

fn first_version() -> u32 {
    1
}

impl StatusEvent {
    /// The event for `message` having reached `status` (with its reason and cost as stored);
    /// `None` for `accepted`.
    pub fn for_message(
        message: &Message,
        status: MessageStatus,
        reason: Option<&str>,
        cost: Option<Money>,
        at: OffsetDateTime,
    ) -> Option<Self> {
        let kind = StatusEventType::for_status(status)?;
        Some(Self {
            id: format!("evt_{}_{}", message.id, status.as_str()),
            kind,
            version: STATUS_EVENT_VERSION,
            timestamp: at,
            tenant: message.tenant.clone(),
            data: StatusEventData::Message(MessageData {
                message_id: message.id.clone(),
                event: message.event.clone(),
                category: message.category,
                channel: message.channel,
                status,
                reason: reason.map(str::to_owned),
                provider: message.provider_kind,
                cost,
                test: message.test,
            }),
        })
    }

    /// The event for a step of a tenant template's review (`kind` is one of the `template.*`).
    pub fn for_template(
        tenant: &TenantId,
        kind: StatusEventType,
        data: TemplateData,
        at: OffsetDateTime,
    ) -> Self {
        let scope = match &data.event {
            Some(event) => format!("event_{event}"),
            None => "tenant".to_owned(),
        };
        Self {
            id: format!(
                "evt_{scope}_{}_{}_{}_{}",
                data.category,
                data.channel,
                data.version,
                kind.as_str().replace('.', "_")
            ),
            kind,
            version: STATUS_EVENT_VERSION,
            timestamp: at,
            tenant: tenant.clone(),
            data: StatusEventData::Template(data),
        }
    }

    /// The event for a recipient opted out or suppressed on `channel`.
    pub fn for_recipient(
        tenant: &TenantId,
        kind: StatusEventType,
        data: RecipientData,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id: format!(
                "evt_{}_{}_{}_{}",
                kind.as_str().replace('.', "_"),
                data.channel,
                data.recipient_key,
                at.unix_timestamp()
            ),
            kind,
            version: STATUS_EVENT_VERSION,
            timestamp: at,
            tenant: tenant.clone(),
            data: StatusEventData::Recipient(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_version_and_old_deliveries_read_as_the_first() {
        let queued = r#"{"id": "evt_1", "type": "message.sent", "timestamp": "2026-11-22T10:00:03Z",
            "tenant": "acme-events", "data": {"message_id": "msg_0d3k8z6q9x2m4n7p5r1t3v8w9y",
            "event": "gala-2026", "category": "invitation", "channel": "sms", "status": "sent"}}"#;
        let event: StatusEvent =
            serde_json::from_str(queued).expect("an event queued before versions");
        assert_eq!(event.version, 1);
        let posted = serde_json::to_value(&event).expect("json");
        assert_eq!(posted["version"], STATUS_EVENT_VERSION);
    }

    #[test]
    fn test_sends_are_marked_and_the_event_own_messages_are_not() {
        let mut message = Message::accepted(super::super::message::NewMessage {
            id: MessageId::parse("msg_0d3k8z6q9x2m4n7p5r1t3v8w9y").expect("id"),
            tenant: TenantId::parse("acme-events").expect("tenant"),
            event: EventId::parse("gala-2026").expect("event"),
            snapshot_version: 1,
            category: Category::Invitation,
            channel: Channel::Sms,
            recipient: super::super::recipient::Recipient::parse(Channel::Sms, "+254712345678")
                .expect("number"),
            recipient_key: "rk".into(),
            content: super::super::message::MessageContent {
                subject: None,
                html: None,
                text: "Hello".into(),
                segments: Some(1),
                whatsapp_template: None,
            },
            estimated_cost: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            request_id: "req".into(),
        });
        let posted = |message: &Message| {
            let event = StatusEvent::for_message(
                message,
                MessageStatus::Sent,
                None,
                None,
                OffsetDateTime::UNIX_EPOCH,
            )
            .expect("sent is reported");
            serde_json::to_value(&event).expect("json")
        };
        assert!(posted(&message)["data"].get("test").is_none());
        message.test = true;
        assert_eq!(posted(&message)["data"]["test"], true);
    }
}
