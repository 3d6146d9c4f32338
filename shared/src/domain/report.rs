//! Compliance reports: what happened in one tenant over a period — messages by channel and
//! status, failures with their reasons, opt-outs and suppressions, configuration changes with
//! who made them, and cost totals. Pure aggregation over what the stores read; the reading is
//! `crate::reports`.

use std::collections::BTreeMap;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::audit::AuditEntry;
use super::catalogue::Channel;
use super::cost::{Currency, MICROS_PER_UNIT, Money};
use super::identity::Role;
use super::ids::TenantId;
use super::message::{Message, MessageId, MessageStatus};
use super::validation::{FieldError, MAX_TIME, MIN_TIME};
use crate::domain::ErrorCode;

/// The longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// The reason shown when a failed message or a block carries none.
pub const UNSPECIFIED: &str = "unspecified";
/// The reason shown for an opt-out or suppression that is no longer in force (lifted since).
pub const LIFTED: &str = "lifted";

/// A report's period: `from` inclusive, `to` exclusive, in UTC, to the microsecond (the
/// precision of the sort keys the stores read by, so every store draws the same line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: OffsetDateTime,
    to: OffsetDateTime,
}

impl Period {
    /// From the request's `from` and `to` (RFC 3339). Errors name the field: `from` or `to`.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, FieldError> {
        Self::new(instant("from", from)?, instant("to", to)?)
    }

    /// Both ends within [`MIN_TIME`]..=[`MAX_TIME`] (errors name the field), so that every
    /// margin the reading adds around them and every format of them stays in range.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime) -> Result<Self, FieldError> {
        let (from, to) = (
            in_range("from", to_micros(from))?,
            in_range("to", to_micros(to))?,
        );
        if from >= to {
            return Err(FieldError::new(
                ErrorCode::InvalidPeriod,
                "to",
                "to must be later than from",
            ));
        }
        if to - from > Duration::days(MAX_PERIOD_DAYS) {
            return Err(FieldError::new(
                ErrorCode::PeriodTooLong,
                "to",
                format!("a report covers at most {MAX_PERIOD_DAYS} days"),
            ));
        }
        Ok(Self { from, to })
    }

    pub fn from(&self) -> OffsetDateTime {
        self.from
    }

    pub fn to(&self) -> OffsetDateTime {
        self.to
    }

    pub fn contains(&self, at: OffsetDateTime) -> bool {
        at >= self.from && at < self.to
    }
}

/// `at` in UTC to the microsecond; `None` when it has no UTC form (year 10000 or -10000).
fn to_micros(at: OffsetDateTime) -> Option<OffsetDateTime> {
    let at = at.checked_to_offset(UtcOffset::UTC)?;
    Some(at.replace_nanosecond(at.microsecond() * 1000).unwrap_or(at))
}

fn in_range(field: &'static str, at: Option<OffsetDateTime>) -> Result<OffsetDateTime, FieldError> {
    at.filter(|at| (MIN_TIME..=MAX_TIME).contains(at))
        .ok_or_else(|| out_of_range(field))
}

fn out_of_range(field: &'static str) -> FieldError {
    FieldError::new(
        ErrorCode::OutOfRange,
        field,
        format!("{field} must be between {MIN_TIME} and {MAX_TIME} (UTC)"),
    )
}

fn instant(field: &'static str, value: Option<&str>) -> Result<OffsetDateTime, FieldError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| FieldError::required(field))?;
    // An unencoded `+` in a query string arrives as a space; RFC 3339 has no spaces.
    let value = value.replace(' ', "+");
    OffsetDateTime::parse(&value, &Rfc3339).map_err(|_| {
        FieldError::invalid(
            field,
            format!("{field} must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"),
        )
    })
}

/// A time as fixed-width UTC RFC 3339 with microseconds (`2026-11-22T10:00:00.000000Z`):
/// strings that sort as the times do, for sort keys (plain RFC 3339 does not: `...:00Z` sorts
/// after `...:00.5Z`).
pub fn sortable_time(at: OffsetDateTime) -> String {
    // Times with no UTC form (a provider's `9999-12-31T23:00:00-23:00`) sort at the end.
    let at = at
        .checked_to_offset(UtcOffset::UTC)
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// What a report needs of a message: no content, no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub id: MessageId,
    pub channel: Channel,
    pub status: MessageStatus,
    pub status_reason: Option<String>,
    /// What the message cost, when known (the provider's price, or the rate at dispatch).
    pub cost: Option<Money>,
    pub created_at: OffsetDateTime,
}

impl From<&Message> for MessageSummary {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            channel: m.channel,
            status: m.status,
            status_reason: m.status_reason.clone(),
            cost: m.cost,
            created_at: m.created_at,
        }
    }
}

/// Whether a message's status counts as a failure: it did not reach the recipient. A
/// complaint did reach them; it shows under its status and as a suppression.
pub fn is_failure(status: MessageStatus) -> bool {
    matches!(status, MessageStatus::Failed | MessageStatus::Bounced)
}

/// The recipient key and channel of an audit target `recipient/<key>/<channel>`.
pub fn recipient_target(target: &str) -> Option<(&str, Channel)> {
    let rest = target.strip_prefix("recipient/")?;
    let (key, channel) = rest.rsplit_once('/')?;
    Some((key, channel.parse().ok()?))
}

/// The part of an audit action after `recipient.` (`opted_out`, `suppressed`, `opted_in`...).
pub fn recipient_action(action: &str) -> Option<&str> {
    action.strip_prefix("recipient.")
}

/// The block actions receipts record (`recipient.<action>` on `recipient/<key>/<channel>`).
const BLOCK_ACTIONS: [&str; 3] = ["opted_out", "suppressed", "opted_in"];

/// Which section of a report an audit entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryClass<'a> {
    /// An opt-out keyword, a suppression, or an opt-in lifting an opt-out, on a channel.
    Block { action: &'a str, channel: Channel },
    /// A consent decision, a preference change or an erasure (`recipient.<action>`).
    Consent { action: &'a str },
    /// A message's own history (accepted, sent, delivered, erased...): counted through the
    /// messages, not listed.
    Message,
    /// Everything else: providers, templates, brand, settings, snapshots, webhook endpoints;
    /// by people or by Herald itself (an endpoint disabled after failures).
    Configuration,
}

impl<'a> EntryClass<'a> {
    pub fn of(entry: &'a AuditEntry) -> Self {
        if entry.action.starts_with("message.") {
            return EntryClass::Message;
        }
        match recipient_action(&entry.action) {
            Some(action) => match recipient_target(&entry.target) {
                Some((_, channel)) if BLOCK_ACTIONS.contains(&action) => {
                    EntryClass::Block { action, channel }
                }
                _ => EntryClass::Consent { action },
            },
            None => EntryClass::Configuration,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ComplianceReport {
    pub tenant: TenantId,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub to: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub generated_at: OffsetDateTime,
    /// Messages created in the period, by channel and the status they are in now.
    pub messages: Vec<StatusCount>,
    /// Of those, the ones that failed or bounced, by channel, status and reason.
    pub failures: Vec<FailureCount>,
    /// Opt-outs, suppressions (and opt-ins) recorded in the period, by channel and reason.
    pub recipients: Vec<RecipientCount>,
    /// Consent decisions, preference changes and erasures recorded in the period, by action
    /// (`consent_granted`, `consent_withdrawn`, `preferences_changed`, ...).
    pub consent: Vec<ConsentCount>,
    /// Configuration changes in the period (providers, templates, brand, settings, snapshots,
    /// webhook endpoints), by whoever made them, oldest first.
    pub configuration_changes: Vec<ConfigurationChange>,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct StatusCount {
    pub channel: Channel,
    pub status: MessageStatus,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FailureCount {
    pub channel: Channel,
    pub status: MessageStatus,
    /// The provider's code and reason as stored (already free of addresses and numbers).
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConsentCount {
    pub action: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RecipientCount {
    pub channel: Option<Channel>,
    /// `opted_out`, `suppressed`, `opted_in`, ...
    pub action: String,
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConfigurationChange {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub actor_role: Role,
    pub action: String,
    pub target: String,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Totals {
    pub messages: u64,
    pub failures: u64,
    pub opted_out: u64,
    pub suppressed: u64,
    pub opted_in: u64,
    pub consent_granted: u64,
    pub consent_withdrawn: u64,
    pub configuration_changes: u64,
    /// Known costs of the period's messages, per currency.
    pub cost: Vec<CostTotal>,
    /// Messages whose cost is not known (never sent, or no price for their provider).
    pub messages_without_cost: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CostTotal {
    pub currency: Currency,
    /// Decimal, at least two places: `"0.0079"`.
    pub amount: String,
    pub amount_micros: i64,
    pub messages: u64,
}

/// `amount_micros` as a decimal with at least two places (more only when it has them).
pub fn decimal(amount_micros: i64) -> String {
    let sign = if amount_micros < 0 { "-" } else { "" };
    let abs = amount_micros.unsigned_abs();
    let unit = MICROS_PER_UNIT.unsigned_abs();
    let micros = format!("{:06}", abs % unit);
    let places = micros.trim_end_matches('0');
    let places = if places.len() < 2 {
        &micros[..2]
    } else {
        places
    };
    format!("{sign}{}.{places}", abs / unit)
}

/// Builds a report from messages and audit entries fed in any order; anything outside the
/// period is ignored, so readers may over-read at the edges.
#[derive(Debug)]
pub struct ReportBuilder {
    tenant: TenantId,
    period: Period,
    messages: BTreeMap<(Channel, u8), (MessageStatus, u64)>,
    failures: BTreeMap<(Channel, u8, String), (MessageStatus, u64)>,
    recipients: BTreeMap<(Option<Channel>, String, String), u64>,
    consent: BTreeMap<String, u64>,
    changes: Vec<ConfigurationChange>,
    cost: BTreeMap<Currency, (i64, u64)>,
    without_cost: u64,
}

impl ReportBuilder {
    pub fn new(tenant: TenantId, period: Period) -> Self {
        Self {
            tenant,
            period,
            messages: BTreeMap::new(),
            failures: BTreeMap::new(),
            recipients: BTreeMap::new(),
            consent: BTreeMap::new(),
            changes: Vec::new(),
            cost: BTreeMap::new(),
            without_cost: 0,
        }
    }

    pub fn message(&mut self, m: &MessageSummary) {
        if !self.period.contains(m.created_at) {
            return;
        }
        let rank = m.status.rank();
        self.messages
            .entry((m.channel, rank))
            .or_insert((m.status, 0))
            .1 += 1;
        if is_failure(m.status) {
            let reason = m
                .status_reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or(UNSPECIFIED)
                .to_owned();
            self.failures
                .entry((m.channel, rank, reason))
                .or_insert((m.status, 0))
                .1 += 1;
        }
        match m.cost {
            Some(cost) => {
                let total = self.cost.entry(cost.currency).or_insert((0, 0));
                total.0 = total.0.saturating_add(cost.amount_micros);
                total.1 += 1;
            }
            None => self.without_cost += 1,
        }
    }

    /// One audit entry of the tenant. `reason` is the reason of the opt-out or suppression it
    /// records, when the caller could find it (`None`: no longer in force).
    pub fn audit_entry(&mut self, entry: &AuditEntry, reason: Option<&str>) {
        if !self.period.contains(entry.at) {
            return;
        }
        match EntryClass::of(entry) {
            EntryClass::Block { action, channel } => {
                let reason = match (action, reason) {
                    (_, Some(r)) if !r.trim().is_empty() => r.trim().to_owned(),
                    // Opting in lifts a block; it has no reason of its own.
                    ("opted_in", _) => UNSPECIFIED.to_owned(),
                    _ => LIFTED.to_owned(),
                };
                *self
                    .recipients
                    .entry((Some(channel), action.to_owned(), reason))
                    .or_insert(0) += 1;
            }
            EntryClass::Consent { action } => {
                *self.consent.entry(action.to_owned()).or_insert(0) += 1;
            }
            EntryClass::Message => {}
            EntryClass::Configuration => self.changes.push(ConfigurationChange {
                at: entry.at,
                actor: entry.actor.clone(),
                actor_role: entry.actor_role,
                action: entry.action.clone(),
                target: entry.target.clone(),
                request_id: entry.request_id.clone(),
            }),
        }
    }

    pub fn finish(mut self, generated_at: OffsetDateTime) -> ComplianceReport {
        self.changes.sort_by(|a, b| {
            (a.at, &a.actor, &a.action, &a.target).cmp(&(b.at, &b.actor, &b.action, &b.target))
        });
        let messages: Vec<StatusCount> = self
            .messages
            .into_iter()
            .map(|((channel, _), (status, count))| StatusCount {
                channel,
                status,
                count,
            })
            .collect();
        let failures: Vec<FailureCount> = self
            .failures
            .into_iter()
            .map(|((channel, _, reason), (status, count))| FailureCount {
                channel,
                status,
                reason,
                count,
            })
            .collect();
        let recipients: Vec<RecipientCount> = self
            .recipients
            .into_iter()
            .map(|((channel, action, reason), count)| RecipientCount {
                channel,
                action,
                reason,
                count,
            })
            .collect();
        let consent: Vec<ConsentCount> = self
            .consent
            .into_iter()
            .map(|(action, count)| ConsentCount { action, count })
            .collect();
        let consent_total = |action: &str| {
            consent
                .iter()
                .filter(|c| c.action == action)
                .map(|c| c.count)
                .sum()
        };
        let recipient_total = |action: &str| {
            recipients
                .iter()
                .filter(|r| r.action == action)
                .map(|r| r.count)
                .sum()
        };
        let totals = Totals {
            messages: messages.iter().map(|m| m.count).sum(),
            failures: failures.iter().map(|f| f.count).sum(),
            opted_out: recipient_total("opted_out"),
            suppressed: recipient_total("suppressed"),
            opted_in: recipient_total("opted_in"),
            consent_granted: consent_total("consent_granted"),
            consent_withdrawn: consent_total("consent_withdrawn"),
            configuration_changes: self.changes.len() as u64,
            cost: self
                .cost
                .into_iter()
                .map(|(currency, (amount_micros, messages))| CostTotal {
                    currency,
                    amount: decimal(amount_micros),
                    amount_micros,
                    messages,
                })
                .collect(),
            messages_without_cost: self.without_cost,
        };
        ComplianceReport {
            tenant: self.tenant,
            from: self.period.from,
            to: self.period.to,
            generated_at,
            messages,
            failures,
            recipients,
            consent,
            configuration_changes: self.changes,
            totals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn period() -> Period {
        Period::new(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-12-01 00:00 UTC),
        )
        .expect("period")
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme-events").expect("tenant")
    }

    fn message(
        n: usize,
        channel: Channel,
        status: MessageStatus,
        reason: Option<&str>,
        cost: Option<Money>,
        at: OffsetDateTime,
    ) -> MessageSummary {
        MessageSummary {
            id: MessageId::derive(&tenant(), "gala-2026", "key", n),
            channel,
            status,
            status_reason: reason.map(str::to_owned),
            cost,
            created_at: at,
        }
    }

    fn entry(
        actor: &str,
        role: Role,
        action: &str,
        target: &str,
        at: OffsetDateTime,
    ) -> AuditEntry {
        AuditEntry {
            id: ulid::Ulid::new().to_string(),
            actor: actor.to_owned(),
            actor_role: role,
            scope: "acme-events".to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            before: None,
            after: None,
            at,
            request_id: format!("req-{action}"),
        }
    }

    #[test]
    fn periods_are_validated_naming_the_field() {
        let err = |from: Option<&str>, to: Option<&str>| {
            let e = Period::parse(from, to).expect_err("refused");
            (e.code, e.field)
        };
        assert_eq!(
            err(None, Some("2026-12-01T00:00:00Z")),
            (ErrorCode::Required, "from".into())
        );
        assert_eq!(
            err(Some("2026-11-01"), Some("2026-12-01T00:00:00Z")),
            (ErrorCode::Invalid, "from".into())
        );
        assert_eq!(
            err(Some("2026-11-01T00:00:00Z"), Some("yesterday")),
            (ErrorCode::Invalid, "to".into())
        );
        assert_eq!(
            err(Some("2026-12-01T00:00:00Z"), Some("2026-11-01T00:00:00Z")),
            (ErrorCode::InvalidPeriod, "to".into())
        );
        assert_eq!(
            err(Some("2026-11-01T00:00:00Z"), Some("2026-11-01T00:00:00Z")),
            (ErrorCode::InvalidPeriod, "to".into())
        );
        assert_eq!(
            err(Some("2025-11-01T00:00:00Z"), Some("2026-11-03T00:00:00Z")),
            (ErrorCode::PeriodTooLong, "to".into())
        );
        // 366 days is the most; offsets are normalised to UTC; an unencoded `+` (a space) is
        // read as the offset sign it was.
        let p = Period::parse(
            Some("2025-11-01T02:00:00 02:00"),
            Some("2026-11-02T00:00:00Z"),
        )
        .expect("366 days");
        assert_eq!(p.from(), datetime!(2025-11-01 00:00 UTC));
        assert_eq!(p.to() - p.from(), Duration::days(366));
    }

    #[test]
    fn times_beyond_the_calendar_are_a_400_naming_the_field() {
        let err = |from: &str, to: &str| {
            Period::parse(Some(from), Some(to)).map_err(|e| (e.code, e.field))
        };
        // Once a panic (9999-12-31 at -23:59 is in year 10000 in UTC) and a 500 (year -1 in
        // UTC has no RFC 3339 form).
        assert_eq!(
            err("9999-12-31T00:00:00-23:59", "9999-12-31T12:00:00Z"),
            Err((ErrorCode::OutOfRange, "from".into()))
        );
        assert_eq!(
            err("9998-12-31T00:00:00Z", "9999-12-31T00:00:00-23:59"),
            Err((ErrorCode::OutOfRange, "to".into()))
        );
        assert_eq!(
            err("0000-01-01T00:00:00+23:59", "0000-01-02T00:00:00Z"),
            Err((ErrorCode::OutOfRange, "from".into()))
        );
        assert_eq!(
            err("9998-12-31T00:00:00Z", "9999-01-01T00:00:00Z").map(|p| p.to()),
            Ok(MAX_TIME)
        );
        assert_eq!(
            sortable_time(time::macros::datetime!(9999-12-31 23:00 -23:00)),
            "9999-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn sortable_times_sort_as_the_times_do() {
        let times = [
            datetime!(2026-11-22 10:00:00 UTC),
            datetime!(2026-11-22 10:00:00.5 UTC),
            datetime!(2026-11-22 10:00:01 UTC),
            datetime!(2026-11-22 12:00:00.000001 +02:00),
            datetime!(2027-01-01 00:00 UTC),
        ];
        let stamps: Vec<String> = times.iter().map(|t| sortable_time(*t)).collect();
        assert_eq!(stamps[0], "2026-11-22T10:00:00.000000Z");
        assert_eq!(stamps[3], "2026-11-22T10:00:00.000001Z");
        let mut sorted = stamps.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec![
                stamps[0].clone(),
                stamps[3].clone(),
                stamps[1].clone(),
                stamps[2].clone(),
                stamps[4].clone()
            ]
        );
        for s in &stamps {
            assert!(
                OffsetDateTime::parse(s, &Rfc3339).is_ok(),
                "{s} is RFC 3339"
            );
        }
    }

    #[test]
    fn messages_are_counted_by_channel_and_status_with_failure_reasons_and_costs() {
        use MessageStatus::*;
        let at = datetime!(2026-11-10 09:00 UTC);
        let usd = |m| Some(Money::new(m, Currency::USD));
        let mut b = ReportBuilder::new(tenant(), period());
        let feed = [
            message(0, Channel::Sms, Sent, None, usd(7_900), at),
            message(1, Channel::Sms, Delivered, None, usd(7_900), at),
            message(
                2,
                Channel::Sms,
                Delivered,
                None,
                Some(Money::new(120_000, Currency::ZMW)),
                at,
            ),
            message(
                3,
                Channel::Sms,
                Failed,
                Some("21211: invalid 'To' number"),
                None,
                at,
            ),
            message(
                4,
                Channel::Sms,
                Failed,
                Some("21211: invalid 'To' number"),
                None,
                at,
            ),
            message(5, Channel::Sms, Failed, None, None, at),
            message(
                6,
                Channel::Email,
                Bounced,
                Some("hard bounce: mailbox unknown"),
                usd(100),
                at,
            ),
            message(7, Channel::Email, Complained, None, usd(100), at),
            // Outside the period: ignored at both edges.
            message(
                8,
                Channel::Sms,
                Sent,
                None,
                usd(7_900),
                datetime!(2026-10-31 23:59:59 UTC),
            ),
            message(
                9,
                Channel::Sms,
                Sent,
                None,
                usd(7_900),
                datetime!(2026-12-01 00:00 UTC),
            ),
            // Exactly at `from`: inside.
            message(
                10,
                Channel::Email,
                Accepted,
                None,
                None,
                datetime!(2026-11-01 00:00 UTC),
            ),
        ];
        for m in &feed {
            b.message(m);
        }
        let r = b.finish(datetime!(2026-12-02 00:00 UTC));
        let counts: Vec<(Channel, MessageStatus, u64)> = r
            .messages
            .iter()
            .map(|c| (c.channel, c.status, c.count))
            .collect();
        assert_eq!(
            counts,
            vec![
                (Channel::Email, Accepted, 1),
                (Channel::Email, Bounced, 1),
                (Channel::Email, Complained, 1),
                (Channel::Sms, Sent, 1),
                (Channel::Sms, Failed, 3),
                (Channel::Sms, Delivered, 2),
            ]
        );
        let failures: Vec<(Channel, MessageStatus, &str, u64)> = r
            .failures
            .iter()
            .map(|f| (f.channel, f.status, f.reason.as_str(), f.count))
            .collect();
        assert_eq!(
            failures,
            vec![
                (Channel::Email, Bounced, "hard bounce: mailbox unknown", 1),
                (Channel::Sms, Failed, "21211: invalid 'To' number", 2),
                (Channel::Sms, Failed, UNSPECIFIED, 1),
            ]
        );
        assert_eq!((r.totals.messages, r.totals.failures), (9, 4));
        assert_eq!(
            r.totals.cost,
            vec![
                CostTotal {
                    currency: Currency::USD,
                    amount: "0.016".to_owned(),
                    amount_micros: 16_000,
                    messages: 4
                },
                CostTotal {
                    currency: Currency::ZMW,
                    amount: "0.12".to_owned(),
                    amount_micros: 120_000,
                    messages: 1
                },
            ]
        );
        assert_eq!(r.totals.messages_without_cost, 4);
    }

    #[test]
    fn audit_entries_give_opt_outs_suppressions_consent_and_configuration_changes() {
        let at = datetime!(2026-11-15 12:00 UTC);
        let mut b = ReportBuilder::new(tenant(), period());
        let system = "herald:delivery-webhooks";
        b.audit_entry(
            &entry(
                system,
                Role::System,
                "recipient.opted_out",
                "recipient/rk1/sms",
                at,
            ),
            Some("opt_out_keyword"),
        );
        b.audit_entry(
            &entry(
                system,
                Role::System,
                "recipient.opted_out",
                "recipient/rk2/sms",
                at,
            ),
            Some("opt_out_keyword"),
        );
        b.audit_entry(
            &entry(
                system,
                Role::System,
                "recipient.suppressed",
                "recipient/rk3/email",
                at,
            ),
            Some("complaint"),
        );
        // Lifted since: no reason to be found.
        b.audit_entry(
            &entry(
                system,
                Role::System,
                "recipient.opted_out",
                "recipient/rk4/whatsapp",
                at,
            ),
            None,
        );
        b.audit_entry(
            &entry(
                system,
                Role::System,
                "recipient.opted_in",
                "recipient/rk4/whatsapp",
                at,
            ),
            None,
        );
        // Message entries are counted through the messages: no section lists them.
        for (actor, role, action) in [
            ("svc-ticketing", Role::TenantAdmin, "message.accepted"),
            ("herald:dispatch", Role::System, "message.sent"),
        ] {
            b.audit_entry(&entry(actor, role, action, "message/msg_x", at), None);
        }
        // Consent decisions, preference changes and erasures, by whoever recorded them.
        for (actor, role, action) in [
            ("user-bo", Role::EventManager, "recipient.consent_withdrawn"),
            ("user-bo", Role::EventManager, "recipient.consent_withdrawn"),
            ("user-ada", Role::TenantAdmin, "recipient.consent_granted"),
            (
                "preference-centre",
                Role::System,
                "recipient.preferences_changed_by_recipient",
            ),
            ("herald-cli:ops", Role::System, "recipient.erased"),
        ] {
            b.audit_entry(&entry(actor, role, action, "recipient/rk5", at), None);
        }
        // Herald's own configuration change (an endpoint disabled after failures) is one.
        b.audit_entry(
            &entry(
                "status-webhooks",
                Role::System,
                "webhook_endpoint.disabled",
                "tenant/webhook-endpoint/whe_1",
                at,
            ),
            None,
        );
        let later = datetime!(2026-11-20 08:30 UTC);
        b.audit_entry(
            &entry(
                "user-ada",
                Role::TenantAdmin,
                "brand.updated",
                "tenant/brand",
                later,
            ),
            None,
        );
        b.audit_entry(
            &entry(
                "user-bo",
                Role::EventManager,
                "provider.created",
                "event/gala/provider/p1",
                at,
            ),
            None,
        );
        // Outside the period.
        b.audit_entry(
            &entry(
                "user-ada",
                Role::TenantAdmin,
                "brand.updated",
                "tenant/brand",
                datetime!(2026-12-01 00:00 UTC),
            ),
            None,
        );
        let r = b.finish(datetime!(2026-12-02 00:00 UTC));
        let recipients: Vec<(Option<Channel>, &str, &str, u64)> = r
            .recipients
            .iter()
            .map(|c| (c.channel, c.action.as_str(), c.reason.as_str(), c.count))
            .collect();
        assert_eq!(
            recipients,
            vec![
                (Some(Channel::Email), "suppressed", "complaint", 1),
                (Some(Channel::Sms), "opted_out", "opt_out_keyword", 2),
                (Some(Channel::Whatsapp), "opted_in", UNSPECIFIED, 1),
                (Some(Channel::Whatsapp), "opted_out", LIFTED, 1),
            ]
        );
        let changes: Vec<(&str, &str, OffsetDateTime)> = r
            .configuration_changes
            .iter()
            .map(|c| (c.actor.as_str(), c.action.as_str(), c.at))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("status-webhooks", "webhook_endpoint.disabled", at),
                ("user-bo", "provider.created", at),
                ("user-ada", "brand.updated", later)
            ]
        );
        assert_eq!(r.configuration_changes[0].actor_role, Role::System);
        assert_eq!(r.configuration_changes[1].actor_role, Role::EventManager);
        let consent: Vec<(&str, u64)> = r
            .consent
            .iter()
            .map(|c| (c.action.as_str(), c.count))
            .collect();
        assert_eq!(
            consent,
            vec![
                ("consent_granted", 1),
                ("consent_withdrawn", 2),
                ("erased", 1),
                ("preferences_changed_by_recipient", 1),
            ]
        );
        assert_eq!(
            (
                r.totals.opted_out,
                r.totals.suppressed,
                r.totals.opted_in,
                r.totals.consent_granted,
                r.totals.consent_withdrawn,
                r.totals.configuration_changes
            ),
            (3, 1, 1, 1, 2, 3)
        );
    }

    #[test]
    fn amounts_are_decimals_with_at_least_two_places() {
        assert_eq!(decimal(0), "0.00");
        assert_eq!(decimal(7_900), "0.0079");
        assert_eq!(decimal(1_500_000), "1.50");
        assert_eq!(decimal(12_345_678), "12.345678");
        assert_eq!(decimal(-250_000), "-0.25");
    }

    #[test]
    fn recipient_targets_name_key_and_channel() {
        assert_eq!(
            recipient_target("recipient/abc123/sms"),
            Some(("abc123", Channel::Sms))
        );
        assert_eq!(recipient_target("recipient/abc123/pigeon"), None);
        assert_eq!(recipient_target("tenant/brand"), None);
    }
}
