//! Resolved snapshots: what wizard completion freezes and operations read. A snapshot is
//! immutable and numbered; exactly one version per event is active at a time.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error_code::ErrorCode;
use super::ids::ProviderId;
use super::resolution::ResolvedConfiguration;
use super::template::Position;

/// One thing wrong with an event's configuration, found by wizard validation.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Problem {
    pub code: ErrorCode,
    /// Where the problem is, as a path into the resolved configuration, e.g. `templates.invitation.sms`.
    pub field: String,
    pub message: String,
    /// For a template that does not parse or render: where in its source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Position>,
}

impl Problem {
    pub fn new(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
            at: None,
        }
    }

    pub fn at(mut self, position: Option<Position>) -> Self {
        self.at = position;
        self
    }
}

/// The outcome of a live credential test of one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// The provider accepted the credentials.
    Passed { detail: String },
    /// The provider answered and refused them (wrong key, unknown account, unverified sender).
    Rejected { detail: String },
    /// The provider could not be asked (network error, timeout, 5xx): not proof either way.
    Unreachable { detail: String },
}

impl CheckOutcome {
    pub fn passed(&self) -> bool {
        matches!(self, CheckOutcome::Passed { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderCheck {
    pub provider: ProviderId,
    #[serde(flatten)]
    pub outcome: CheckOutcome,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub checked_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Snapshot {
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    /// SHA-256 of the configuration's canonical JSON: what the audit entry records.
    pub digest: String,
    pub configuration: ResolvedConfiguration,
    pub provider_checks: Vec<ProviderCheck>,
}

/// Which snapshot version operations use for an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Activation {
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub activated_at: OffsetDateTime,
    pub activated_by: String,
}
