//! Provider configurations: a tenant's own account with an email, SMS or WhatsApp provider.
//! Tenant defaults apply to every event; an event may add its own providers or override the
//! priority, weight or active flag of an inherited one. No provider is shared between tenants.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::catalogue::Channel;
use super::ids::ProviderId;
use super::validation::{EmailAddress, FieldError, text};
use crate::domain::ErrorCode;

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
pub enum ProviderKind {
    Ses,
    Smtp,
    Brevo,
    AfricasTalking,
    Twilio,
    Sns,
    MetaWhatsapp,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Ses => "ses",
            ProviderKind::Smtp => "smtp",
            ProviderKind::Brevo => "brevo",
            ProviderKind::AfricasTalking => "africas_talking",
            ProviderKind::Twilio => "twilio",
            ProviderKind::Sns => "sns",
            ProviderKind::MetaWhatsapp => "meta_whatsapp",
        }
    }

    /// The path segment of this kind's receipt URLs (`/webhooks/<segment>/<token>`); `None` for
    /// providers that post nothing Herald reads.
    pub fn receipt_path(self) -> Option<&'static str> {
        match self {
            ProviderKind::Ses => Some("ses"),
            ProviderKind::Brevo => Some("brevo"),
            ProviderKind::AfricasTalking => Some("africastalking"),
            ProviderKind::Twilio => Some("twilio"),
            ProviderKind::MetaWhatsapp => Some("meta"),
            ProviderKind::Smtp | ProviderKind::Sns => None,
        }
    }

    pub fn channels(self) -> &'static [Channel] {
        match self {
            ProviderKind::Ses | ProviderKind::Smtp | ProviderKind::Brevo => &[Channel::Email],
            ProviderKind::AfricasTalking | ProviderKind::Sns => &[Channel::Sms],
            ProviderKind::Twilio => &[Channel::Sms, Channel::Whatsapp],
            ProviderKind::MetaWhatsapp => &[Channel::Whatsapp],
        }
    }

    /// The secret fields a configuration of this kind must carry. SES and SNS authenticate with
    /// the function's own IAM role, so they have none.
    pub fn credential_fields(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Ses | ProviderKind::Sns => &[],
            ProviderKind::Smtp => &["password"],
            ProviderKind::Brevo | ProviderKind::AfricasTalking => &["api_key"],
            ProviderKind::Twilio => &["auth_token"],
            ProviderKind::MetaWhatsapp => &["access_token", "app_secret"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection (only sensible on a private network).
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsType {
    Transactional,
    Promotional,
}

/// The non-secret part of a provider configuration, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderSettings {
    Ses {
        from_address: EmailAddress,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        configuration_set: Option<String>,
        /// The SNS topic the configuration set publishes delivery, bounce and complaint events
        /// to; receipts from any other topic are refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events_topic_arn: Option<String>,
    },
    Smtp {
        host: String,
        port: u16,
        security: SmtpSecurity,
        username: String,
        from_address: EmailAddress,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_name: Option<String>,
    },
    Brevo {
        from_address: EmailAddress,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_name: Option<String>,
    },
    AfricasTalking {
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_id: Option<String>,
    },
    Twilio {
        account_sid: String,
        /// An E.164 number (or `whatsapp:`-prefixed for WhatsApp) or a Messaging Service SID.
        from: String,
    },
    Sns {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_id: Option<String>,
        sms_type: SmsType,
    },
    MetaWhatsapp {
        phone_number_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        business_account_id: Option<String>,
    },
}

impl ProviderSettings {
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderSettings::Ses { .. } => ProviderKind::Ses,
            ProviderSettings::Smtp { .. } => ProviderKind::Smtp,
            ProviderSettings::Brevo { .. } => ProviderKind::Brevo,
            ProviderSettings::AfricasTalking { .. } => ProviderKind::AfricasTalking,
            ProviderSettings::Twilio { .. } => ProviderKind::Twilio,
            ProviderSettings::Sns { .. } => ProviderKind::Sns,
            ProviderSettings::MetaWhatsapp { .. } => ProviderKind::MetaWhatsapp,
        }
    }

    /// Checks the values serde cannot: formats of provider account identifiers.
    pub fn check(&self) -> Result<(), FieldError> {
        fn ident(
            field: &str,
            value: &str,
            ok: impl Fn(char) -> bool,
            max: usize,
        ) -> Result<(), FieldError> {
            if value.is_empty() || value.len() > max || !value.chars().all(ok) {
                return Err(FieldError::invalid(
                    field,
                    format!("{field} is not a valid identifier"),
                ));
            }
            Ok(())
        }
        let alnum = |c: char| c.is_ascii_alphanumeric();
        match self {
            ProviderSettings::Smtp {
                host,
                port,
                username,
                ..
            } => {
                ident(
                    "settings.host",
                    host,
                    |c| c.is_ascii_alphanumeric() || c == '.' || c == '-',
                    253,
                )?;
                if *port == 0 {
                    return Err(FieldError::invalid(
                        "settings.port",
                        "settings.port must be 1-65535",
                    ));
                }
                text("settings.username", username, 256).map(drop)
            }
            ProviderSettings::AfricasTalking {
                username,
                sender_id,
            } => {
                ident(
                    "settings.username",
                    username,
                    |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
                    64,
                )?;
                sender_id
                    .as_deref()
                    .map_or(Ok(()), |s| ident("settings.sender_id", s, alnum, 11))
            }
            ProviderSettings::Twilio { account_sid, from } => {
                if !(account_sid.len() == 34
                    && account_sid.starts_with("AC")
                    && account_sid[2..].chars().all(|c| c.is_ascii_hexdigit()))
                {
                    return Err(FieldError::invalid(
                        "settings.account_sid",
                        "settings.account_sid must be AC followed by 32 hex digits",
                    ));
                }
                let number = from.strip_prefix("whatsapp:").unwrap_or(from);
                let is_number = number.len() >= 8
                    && number.len() <= 16
                    && number.starts_with('+')
                    && number[1..].chars().all(|c| c.is_ascii_digit());
                let is_service = from.len() == 34
                    && from.starts_with("MG")
                    && from[2..].chars().all(|c| c.is_ascii_hexdigit());
                if is_number || is_service {
                    Ok(())
                } else {
                    Err(FieldError::invalid(
                        "settings.from",
                        "settings.from must be an E.164 number or a Messaging Service SID",
                    ))
                }
            }
            ProviderSettings::Sns { sender_id, .. } => sender_id
                .as_deref()
                .map_or(Ok(()), |s| ident("settings.sender_id", s, alnum, 11)),
            ProviderSettings::MetaWhatsapp {
                phone_number_id,
                business_account_id,
            } => {
                ident(
                    "settings.phone_number_id",
                    phone_number_id,
                    |c| c.is_ascii_digit(),
                    32,
                )?;
                business_account_id.as_deref().map_or(Ok(()), |s| {
                    ident(
                        "settings.business_account_id",
                        s,
                        |c| c.is_ascii_digit(),
                        32,
                    )
                })
            }
            ProviderSettings::Ses {
                events_topic_arn: Some(arn),
                ..
            } if !is_sns_topic_arn(arn) => Err(FieldError::invalid(
                "settings.events_topic_arn",
                "events_topic_arn must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)",
            )),
            ProviderSettings::Ses { .. } | ProviderSettings::Brevo { .. } => Ok(()),
        }
    }
}

/// `arn:<partition>:sns:<region>:<12-digit account>:<topic name>`.
fn is_sns_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(), ["arn", partition, "sns", region, account, name]
        if partition.starts_with("aws")
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && name.len() <= 256
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
}

/// Credentials as they arrive in a request. Values are secrets from the moment they are parsed.
#[derive(Debug, Default)]
pub struct CredentialInput(pub BTreeMap<String, SecretString>);

impl CredentialInput {
    /// Checks that exactly the fields `kind` needs are present and non-empty.
    pub fn check(&self, kind: ProviderKind) -> Result<(), FieldError> {
        let wanted = kind.credential_fields();
        for field in wanted {
            match self.0.get(*field) {
                Some(v)
                    if !v.expose_secret().trim().is_empty() && v.expose_secret().len() <= 4096 => {}
                Some(_) => {
                    return Err(FieldError::invalid(
                        format!("credentials.{field}"),
                        "credential values must be 1-4096 characters",
                    ));
                }
                None => return Err(FieldError::required(format!("credentials.{field}"))),
            }
        }
        if let Some(extra) = self.0.keys().find(|k| !wanted.contains(&k.as_str())) {
            return Err(FieldError::new(
                ErrorCode::UnknownField,
                format!("credentials.{extra}"),
                format!(
                    "a {} provider takes no credential named {extra}",
                    kind.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// A masked hint per field (the last four characters of long values), the most the API ever shows.
    pub fn hints(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| {
                let s = v.expose_secret();
                let n = s.chars().count();
                let hint = if n >= 12 {
                    format!("…{}", s.chars().skip(n - 4).collect::<String>())
                } else {
                    "…".to_owned()
                };
                (k.clone(), hint)
            })
            .collect()
    }
}

/// Credentials sealed by envelope encryption: a data key encrypted under the platform's KMS
/// key, and the credential JSON encrypted under that data key (AES-256-GCM). Only the dispatch
/// and test paths ever open them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SealedCredentials {
    pub encrypted_data_key: String,
    pub nonce: String,
    pub ciphertext: String,
    pub hints: BTreeMap<String, String>,
}

/// A provider configuration owned by a tenant (default) or by one of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderConfig {
    pub id: ProviderId,
    pub channel: Channel,
    pub name: String,
    pub settings: ProviderSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SealedCredentials>,
    /// Lower is tried first.
    pub priority: u32,
    /// Share of traffic among active providers of the same priority; 0 = failover only.
    pub weight: u32,
    pub active: bool,
    /// The most messages a second the account takes (SES's sending rate, a long code's
    /// throughput); dispatch honours it across its containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// Where the provider's delivery receipts and inbound messages reach Herald (none for
    /// providers that send none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<super::receipt::ReceiptRoute>,
    pub revision: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

impl ProviderConfig {
    pub fn kind(&self) -> ProviderKind {
        self.settings.kind()
    }
}

/// An event's change to an inherited tenant provider. `None` fields keep the tenant's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderOverride {
    pub provider: ProviderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    pub revision: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// What an event holds about providers: its own, or overrides of the tenant's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum EventProviderEntry {
    Own(Box<ProviderConfig>),
    Override(ProviderOverride),
}

impl EventProviderEntry {
    pub fn id(&self) -> &ProviderId {
        match self {
            EventProviderEntry::Own(p) => &p.id,
            EventProviderEntry::Override(o) => &o.provider,
        }
    }

    pub fn revision(&self) -> u32 {
        match self {
            EventProviderEntry::Own(p) => p.revision,
            EventProviderEntry::Override(o) => o.revision,
        }
    }
}

pub const MAX_PRIORITY: u32 = 1000;
pub const MAX_WEIGHT: u32 = 1000;

pub fn check_priority(field: &str, value: u32) -> Result<u32, FieldError> {
    if (1..=MAX_PRIORITY).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            ErrorCode::OutOfRange,
            field,
            format!("{field} must be 1-{MAX_PRIORITY}"),
        ))
    }
}

pub fn check_weight(field: &str, value: u32) -> Result<u32, FieldError> {
    if value <= MAX_WEIGHT {
        Ok(value)
    } else {
        Err(FieldError::new(
            ErrorCode::OutOfRange,
            field,
            format!("{field} must be 0-{MAX_WEIGHT}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> CredentialInput {
        CredentialInput(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
                .collect(),
        )
    }

    #[test]
    fn credentials_must_match_the_kind() {
        assert!(
            creds(&[("auth_token", "abcdefabcdef1234")])
                .check(ProviderKind::Twilio)
                .is_ok()
        );
        assert_eq!(
            creds(&[]).check(ProviderKind::Twilio).map_err(|e| e.field),
            Err("credentials.auth_token".into())
        );
        assert_eq!(
            creds(&[("auth_token", "x"), ("pin", "1")])
                .check(ProviderKind::Twilio)
                .map_err(|e| e.code),
            Err(ErrorCode::UnknownField)
        );
        assert!(creds(&[]).check(ProviderKind::Ses).is_ok());
    }

    #[test]
    fn hints_never_show_short_secrets() {
        let hints = creds(&[("api_key", "short"), ("other", "0123456789abcdef")]).hints();
        assert_eq!(hints["api_key"], "…");
        assert_eq!(hints["other"], "…cdef");
    }

    #[test]
    fn settings_are_checked() {
        let twilio = |sid: &str, from: &str| ProviderSettings::Twilio {
            account_sid: sid.into(),
            from: from.into(),
        };
        let sid = format!("AC{}", "a".repeat(32));
        assert!(twilio(&sid, "+260971234567").check().is_ok());
        assert!(twilio(&sid, "whatsapp:+260971234567").check().is_ok());
        assert!(
            twilio(&sid, &format!("MG{}", "b".repeat(32)))
                .check()
                .is_ok()
        );
        assert_eq!(
            twilio("AC1", "+2609").check().map_err(|e| e.field),
            Err("settings.account_sid".into())
        );
        assert_eq!(
            twilio(&sid, "0971").check().map_err(|e| e.field),
            Err("settings.from".into())
        );
    }

    #[test]
    fn settings_serialize_with_their_kind() {
        let s: ProviderSettings = serde_json::from_value(
            serde_json::json!({"kind": "brevo", "from_address": "hi@acme.example"}),
        )
        .expect("valid settings");
        assert_eq!(s.kind(), ProviderKind::Brevo);
        assert!(
            serde_json::from_value::<ProviderSettings>(
                serde_json::json!({"kind": "brevo", "from_address": "nope"})
            )
            .is_err()
        );
    }
}
