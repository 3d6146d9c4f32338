//! Settings a tenant makes for all of its events: how long Herald keeps its message records,
//! and whether its templates need a second person's approval before they are used. Audit
//! entries are not the tenant's to shorten: they follow the platform's regulatory period.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::validation::FieldError;
use crate::domain::ErrorCode;

/// Bounds of a tenant's message retention, in days (a day to ten years).
pub const MIN_RETENTION_DAYS: u32 = 1;
pub const MAX_RETENTION_DAYS: u32 = 3650;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Days a message record is kept after it was created (its TTL).
    pub message_retention_days: u32,
    /// Four eyes: a saved template version waits (`submitted`) until someone other than its
    /// author approves it; until then the previous published version stays in use. Off by
    /// default: a save publishes at once.
    #[serde(default)]
    pub templates_need_approval: bool,
}

impl TenantSettings {
    pub fn check(&self) -> Result<(), FieldError> {
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&self.message_retention_days) {
            return Err(FieldError::new(
                ErrorCode::OutOfRange,
                "message_retention_days",
                format!(
                    "message_retention_days must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS}"
                ),
            ));
        }
        Ok(())
    }
}

/// When a message record created at `created_at` and kept `days` expires.
pub fn message_expiry(created_at: OffsetDateTime, days: u32) -> OffsetDateTime {
    created_at + Duration::days(i64::from(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_bounded() {
        for ok in [1, 30, 3650] {
            assert!(
                TenantSettings {
                    message_retention_days: ok,
                    templates_need_approval: false,
                }
                .check()
                .is_ok()
            );
        }
        for bad in [0, 3651] {
            let e = TenantSettings {
                message_retention_days: bad,
                templates_need_approval: false,
            }
            .check()
            .expect_err("out of range");
            assert_eq!(
                (e.code, e.field.as_str()),
                (ErrorCode::OutOfRange, "message_retention_days")
            );
        }
        assert!(
            serde_json::from_str::<TenantSettings>(r#"{"message_retention_days": 30, "x": 1}"#)
                .is_err()
        );
    }

    #[test]
    fn expiry_is_creation_plus_the_period() {
        let at = time::macros::datetime!(2026-11-22 10:00 UTC);
        assert_eq!(
            message_expiry(at, 30),
            time::macros::datetime!(2026-12-22 10:00 UTC)
        );
    }
}
