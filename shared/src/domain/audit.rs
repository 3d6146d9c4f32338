//! Audit entries: who changed what, when, with digests of the state before and after. Entries
//! carry digests rather than the data itself, so they never hold secrets or personal data.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::identity::Caller;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// A ULID: time-ordered, unique.
    pub id: String,
    pub actor: String,
    pub actor_role: super::identity::Role,
    /// `tenant` or `platform`.
    pub scope: String,
    pub action: String,
    /// What changed, e.g. `event/gala-2026/provider/prv_...`.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub request_id: String,
}

impl AuditEntry {
    pub fn new(
        caller: &Caller,
        request_id: &str,
        action: &str,
        target: String,
        before: Option<String>,
        after: Option<String>,
    ) -> Self {
        Self {
            id: ulid::Ulid::new().to_string(),
            actor: caller.subject.clone(),
            actor_role: caller.role,
            scope: caller
                .tenant
                .as_ref()
                .map_or("platform".to_owned(), |t| t.to_string()),
            action: action.to_owned(),
            target,
            before,
            after,
            at: OffsetDateTime::now_utc(),
            request_id: request_id.to_owned(),
        }
    }
}

impl AuditEntry {
    /// An entry for a change Herald made itself (dispatch, receipts), not a person.
    pub fn by_system(
        actor: &str,
        tenant: &super::ids::TenantId,
        request_id: &str,
        action: &str,
        target: String,
        before: Option<String>,
        after: Option<String>,
    ) -> Self {
        Self {
            id: ulid::Ulid::new().to_string(),
            actor: actor.to_owned(),
            actor_role: super::identity::Role::System,
            scope: tenant.to_string(),
            action: action.to_owned(),
            target,
            before,
            after,
            at: OffsetDateTime::now_utc(),
            request_id: request_id.to_owned(),
        }
    }
}

/// SHA-256 (hex) of a value's JSON. serde_json writes struct fields in declaration order and
/// maps as BTreeMaps in key order here, so equal values give equal digests.
pub fn digest<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}
