//! The consent ledger: what a recipient agreed to or withdrew, per channel and per category (or a
//! whole class of categories), on which legal basis, from which source, when, and on what
//! evidence. Records are never changed; the decision in force for a channel and scope is the
//! latest record. Records hold the recipient key, never the address.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::catalogue::{Category, CategoryClass, Channel};
use super::recipient::Recipient;
use super::validation::{FieldError, text};
use crate::domain::ErrorCode;

/// Longest evidence text (a form version, a ticket reference, a URL of a signed document).
pub const MAX_EVIDENCE: usize = 500;

/// What a consent decision is about: one category, or every category of a class
/// (`marketing`, `transactional`).
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
#[serde(try_from = "String", into = "String")]
pub enum ConsentScope {
    Category(Category),
    Class(CategoryClass),
}

impl ConsentScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentScope::Category(c) => c.as_str(),
            ConsentScope::Class(CategoryClass::Marketing) => "marketing",
            ConsentScope::Class(CategoryClass::Transactional) => "transactional",
        }
    }

    /// Whether a decision about this scope applies to a message of `category`.
    pub fn covers(self, category: Category) -> bool {
        match self {
            ConsentScope::Category(c) => c == category,
            ConsentScope::Class(class) => category.class() == class,
        }
    }
}

impl fmt::Display for ConsentScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConsentScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "marketing" => Ok(ConsentScope::Class(CategoryClass::Marketing)),
            "transactional" => Ok(ConsentScope::Class(CategoryClass::Transactional)),
            other => other.parse().map(ConsentScope::Category).map_err(|_| {
                "a category (invitation, rsvp_confirmation, ...) or a class (marketing, transactional)"
                    .to_owned()
            }),
        }
    }
}

impl TryFrom<String> for ConsentScope {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ConsentScope> for String {
    fn from(s: ConsentScope) -> String {
        s.as_str().to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    Granted,
    Withdrawn,
}

/// The lawful bases for processing (GDPR art. 6(1); the Zambian Data Protection Act has the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    Consent,
    Contract,
    LegalObligation,
    LegitimateInterest,
    VitalInterest,
    PublicTask,
}

/// Where a decision came from: a short snake_case name such as `signup_form`, `api`,
/// `preference_centre` or `inbound_keyword`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ConsentSource(String);

impl ConsentSource {
    /// Decisions the recipient made through a signed preference-centre link.
    pub const PREFERENCE_CENTRE: &'static str = "preference_centre";
    /// RFC 8058: the recipient's mail client, from a marketing email's `List-Unsubscribe`.
    pub const ONE_CLICK_UNSUBSCRIBE: &'static str = "one_click_unsubscribe";

    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("a source is 1-40 characters of a-z, 0-9 and '_' (e.g. signup_form)".to_owned())
        }
    }

    pub fn preference_centre() -> Self {
        Self(Self::PREFERENCE_CENTRE.to_owned())
    }

    pub fn one_click_unsubscribe() -> Self {
        Self(Self::ONE_CLICK_UNSUBSCRIBE.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConsentSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ConsentSource> for String {
    fn from(s: ConsentSource) -> String {
        s.0
    }
}

/// One decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentRecord {
    /// `cns_` and a ULID: records sort by the time they were made.
    pub id: String,
    pub channel: Channel,
    /// A category or a class, named `category` on the wire like in requests.
    #[serde(rename = "category")]
    pub scope: ConsentScope,
    pub status: ConsentStatus,
    pub legal_basis: LegalBasis,
    pub source: ConsentSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub at: OffsetDateTime,
    /// Who recorded it: the caller's subject, or `preference-centre` for the recipient's own.
    pub recorded_by: String,
    pub request_id: String,
}

impl ConsentRecord {
    pub fn new_id() -> String {
        format!("cns_{}", ulid::Ulid::new())
    }

    /// Orders decisions by when they were made (then by id): text that sorts like the records,
    /// for stores that compare it in a condition.
    pub fn order_key(&self) -> String {
        format!("{:024}#{}", self.at.unix_timestamp_nanos().max(0), self.id)
    }

    /// Whether this record is the newer of two decisions on the same channel and scope.
    pub fn supersedes(&self, other: &ConsentRecord) -> bool {
        self.order_key() > other.order_key()
    }
}

/// The decision in force for a message of `category` on `channel`: the latest among the
/// current records whose scope covers it (a later category grant beats an earlier class
/// withdrawal and the other way round). `None` when the recipient never said anything.
pub fn in_force(
    current: &[ConsentRecord],
    channel: Channel,
    category: Category,
) -> Option<&ConsentRecord> {
    current
        .iter()
        .filter(|r| r.channel == channel && r.scope.covers(category))
        .reduce(|a, b| if b.supersedes(a) { b } else { a })
}

/// Evidence text: trimmed, at most [`MAX_EVIDENCE`] characters, and never the recipient's own
/// address (the ledger must not hold it, not even in free text).
pub fn parse_evidence(
    field: &str,
    raw: Option<&str>,
    recipient: &Recipient,
) -> Result<Option<String>, FieldError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let evidence = text(field, raw, MAX_EVIDENCE)?;
    let lower = evidence.to_lowercase();
    let address = recipient.as_str().to_lowercase();
    let digits = address.trim_start_matches('+');
    let names_address = lower.contains(&address)
        || (matches!(recipient, Recipient::Phone(_))
            && lower
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .contains(digits));
    if names_address {
        return Err(FieldError::new(
            ErrorCode::ContainsAddress,
            field,
            "evidence must not contain the recipient's address; give a reference instead",
        ));
    }
    Ok(Some(evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(channel: Channel, scope: &str, status: ConsentStatus, minute: i64) -> ConsentRecord {
        ConsentRecord {
            id: format!("cns_{minute:026}"),
            channel,
            scope: scope.parse().expect("scope"),
            status,
            legal_basis: LegalBasis::Consent,
            source: ConsentSource::parse("api").expect("source"),
            evidence: None,
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute),
            recorded_by: "u".into(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn scopes_name_categories_and_classes() {
        for s in ["invitation", "marketing", "transactional", "check_in"] {
            assert_eq!(s.parse::<ConsentScope>().map(|x| x.as_str()), Ok(s));
        }
        assert!("newsletters".parse::<ConsentScope>().is_err());
        let marketing: ConsentScope = "marketing".parse().expect("scope");
        assert!(marketing.covers(Category::Invitation));
        assert!(!marketing.covers(Category::RsvpConfirmation));
        assert_eq!(
            serde_json::to_value(marketing).ok(),
            Some(serde_json::json!("marketing"))
        );
    }

    #[test]
    fn the_latest_covering_decision_is_in_force() {
        use ConsentStatus::*;
        let withdrew_marketing = record(Channel::Email, "marketing", Withdrawn, 10);
        let granted_invitations = record(Channel::Email, "invitation", Granted, 20);
        let sms = record(Channel::Sms, "marketing", Withdrawn, 30);
        let current = [withdrew_marketing.clone(), sms];
        assert_eq!(
            in_force(&current, Channel::Email, Category::Invitation).map(|r| r.status),
            Some(Withdrawn)
        );
        assert_eq!(
            in_force(&current, Channel::Email, Category::RsvpConfirmation),
            None,
            "a marketing withdrawal says nothing about transactional messages"
        );
        assert_eq!(
            in_force(&current, Channel::Whatsapp, Category::Invitation),
            None,
            "decisions are per channel"
        );
        let later_grant = [withdrew_marketing.clone(), granted_invitations.clone()];
        assert_eq!(
            in_force(&later_grant, Channel::Email, Category::Invitation).map(|r| r.status),
            Some(Granted)
        );
        assert_eq!(
            in_force(&later_grant, Channel::Email, Category::SaveTheDate).map(|r| r.status),
            Some(Withdrawn)
        );
        let later_withdrawal = [
            record(Channel::Email, "invitation", Granted, 5),
            withdrew_marketing,
        ];
        assert_eq!(
            in_force(&later_withdrawal, Channel::Email, Category::Invitation).map(|r| r.status),
            Some(Withdrawn)
        );
    }

    #[test]
    fn evidence_is_bounded_and_never_the_address() {
        let email = Recipient::parse(Channel::Email, "Ada@Acme.example").expect("email");
        let phone = Recipient::parse(Channel::Sms, "+260971234567").expect("phone");
        assert_eq!(
            parse_evidence("evidence", Some("  form v3, ticket 88  "), &email),
            Ok(Some("form v3, ticket 88".into()))
        );
        assert_eq!(parse_evidence("evidence", Some("   "), &email), Ok(None));
        assert_eq!(
            parse_evidence("evidence", Some("signed up as ada@acme.EXAMPLE"), &email)
                .map_err(|e| e.code),
            Err(ErrorCode::ContainsAddress)
        );
        assert_eq!(
            parse_evidence("evidence", Some("called from 260 97 123 4567"), &phone)
                .map_err(|e| e.code),
            Err(ErrorCode::ContainsAddress)
        );
        assert_eq!(
            parse_evidence("evidence", Some(&"x".repeat(MAX_EVIDENCE + 1)), &phone)
                .map_err(|e| e.code),
            Err(ErrorCode::TooLong)
        );
    }

    #[test]
    fn sources_are_short_names() {
        assert!(ConsentSource::parse("signup_form").is_ok());
        for bad in ["", "Signup", "sign-up", "_x", &"a".repeat(41)] {
            assert!(ConsentSource::parse(bad).is_err(), "{bad:?}");
        }
    }
}
