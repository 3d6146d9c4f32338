//! Recipients Herald no longer sends to on a channel: those who opted out (an inbound `STOP`)
//! and those suppressed because the address is unusable or the person complained (a hard
//! bounce, a spam complaint). The send path refuses them with the reason; nothing here holds
//! the address itself, only the recipient key.

use super::error_code::ErrorCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::message::MessageId;
use super::provider::ProviderKind;

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
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// The recipient withdrew consent on the channel (an opt-out keyword).
    OptedOut,
    /// The address is unusable or the recipient complained.
    Suppressed,
}

impl BlockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::OptedOut => "opted_out",
            BlockKind::Suppressed => "suppressed",
        }
    }

    /// The error code the send API answers with.
    pub fn refusal_code(self) -> ErrorCode {
        match self {
            BlockKind::OptedOut => ErrorCode::RecipientOptedOut,
            BlockKind::Suppressed => ErrorCode::RecipientSuppressed,
        }
    }

    /// What the send API tells the caller, without the address.
    pub fn refusal_message(self) -> &'static str {
        match self {
            BlockKind::OptedOut => {
                "the recipient opted out of this channel (replied with an opt-out keyword)"
            }
            BlockKind::Suppressed => {
                "the recipient is suppressed on this channel (hard bounce or complaint)"
            }
        }
    }
}

/// One opt-out or suppression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Block {
    pub kind: BlockKind,
    /// Short and free of personal data: the keyword class (`stop_keyword`), the bounce reason
    /// the provider gave (redacted), `complaint`.
    pub reason: String,
    /// The provider that reported it.
    pub provider: ProviderKind,
    /// The message whose receipt caused it, for suppressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub at: OffsetDateTime,
}
