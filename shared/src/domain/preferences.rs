//! A recipient's preferences: channels and marketing categories they opted out of, the channels
//! they prefer in order, and quiet hours in their own time zone. And the rule the send path
//! applies with them, the consent ledger and the receipts' opt-outs and suppressions: an
//! opt-out keyword or a suppression refuses everything on its channel; a withdrawn consent
//! refuses what it covers; preference opt-outs refuse marketing only (transactional messages
//! still go out); a message whose send time falls in the quiet hours is deferred to the end of
//! the window, never dropped. The send path applies the rule before anything is written and
//! dispatch applies it again before each provider call.
//!
//! Quiet hours are wall-clock times in an IANA time zone (`jiff`, with the time zone database
//! compiled in), so they follow daylight saving time: a window ending at 08:00 ends at 08:00
//! local time whichever offset is in force that morning.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::tz::AmbiguousOffset;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::catalogue::{Category, CategoryClass, Channel};
use super::consent::{ConsentRecord, ConsentSource, ConsentStatus, in_force};
use super::locale::TimeZoneName;
use super::suppression::BlockKind;
use super::validation::FieldError;
use crate::domain::ErrorCode;

/// A wall-clock time of day, `HH:MM` on a 24-hour clock.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct LocalTime {
    hour: i8,
    minute: i8,
}

impl LocalTime {
    pub fn new(hour: i8, minute: i8) -> Result<Self, String> {
        if (0..24).contains(&hour) && (0..60).contains(&minute) {
            Ok(Self { hour, minute })
        } else {
            Err("a time is HH:MM, from 00:00 to 23:59".to_owned())
        }
    }

    fn civil(self) -> Time {
        Time::new(self.hour, self.minute, 0, 0).unwrap_or_default()
    }
}

impl FromStr for LocalTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || "a time is HH:MM, from 00:00 to 23:59".to_owned();
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        Self::new(h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl TryFrom<String> for LocalTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LocalTime> for String {
    fn from(t: LocalTime) -> String {
        t.to_string()
    }
}

/// A daily window, `start` to `end` in `time_zone`, in which nothing is delivered. `start` after
/// `end` crosses midnight (21:00 to 08:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "QuietHoursFields", into = "QuietHoursFields")]
pub struct QuietHours {
    start: LocalTime,
    end: LocalTime,
    time_zone: TimeZoneName,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct QuietHoursFields {
    start: LocalTime,
    end: LocalTime,
    time_zone: TimeZoneName,
}

impl TryFrom<QuietHoursFields> for QuietHours {
    type Error = String;
    fn try_from(f: QuietHoursFields) -> Result<Self, Self::Error> {
        Self::new(f.start, f.end, f.time_zone)
    }
}

impl From<QuietHours> for QuietHoursFields {
    fn from(q: QuietHours) -> Self {
        Self {
            start: q.start,
            end: q.end,
            time_zone: q.time_zone,
        }
    }
}

impl QuietHours {
    pub fn new(start: LocalTime, end: LocalTime, time_zone: TimeZoneName) -> Result<Self, String> {
        if start == end {
            return Err("quiet hours need an end different from their start".to_owned());
        }
        Ok(Self {
            start,
            end,
            time_zone,
        })
    }

    pub fn time_zone(&self) -> &str {
        self.time_zone.as_str()
    }

    /// Whether a wall-clock time is inside the window (the start is, the end is not).
    fn covers(&self, t: Time) -> bool {
        let (start, end) = (self.start.civil(), self.end.civil());
        if start < end {
            start <= t && t < end
        } else {
            t >= start || t < end
        }
    }

    /// When a message sent at `at` may be delivered: `None` when `at` is outside the window,
    /// otherwise the end of the window in the recipient's time zone. If the clocks jump over
    /// the end time that day (spring forward), the window ends when they jump; if the end time
    /// happens twice (fall back), at its first occurrence still ahead.
    pub fn release_at(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let now = Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()?;
        let local = now.to_zoned(self.time_zone.tz().clone());
        if !self.covers(local.time()) {
            return None;
        }
        // Today's end is ahead unless the window started this evening and crosses midnight;
        // then tomorrow's is (or, on a fall-back night, today's end happening a second time).
        let end = self.end.civil();
        let release = self
            .first_after(local.date().to_datetime(end), now)
            .or_else(|| {
                let tomorrow = local.date().tomorrow().ok()?;
                self.first_after(tomorrow.to_datetime(end), now)
            })?;
        OffsetDateTime::from_unix_timestamp_nanos(release.as_nanosecond()).ok()
    }

    /// The instant the wall clock shows `dt`, later than `after`.
    fn first_after(&self, dt: DateTime, after: Timestamp) -> Option<Timestamp> {
        let tz = self.time_zone.tz();
        let instant = match tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
            AmbiguousOffset::Gap { after: later, .. } => {
                // `dt` read with the later offset is just before the jump; the jump follows.
                let before_jump = later.to_timestamp(dt).ok()?;
                tz.following(before_jump).next()?.timestamp()
            }
            AmbiguousOffset::Fold {
                before,
                after: later,
            } => {
                let first = before.to_timestamp(dt).ok()?;
                if first > after {
                    first
                } else {
                    later.to_timestamp(dt).ok()?
                }
            }
        };
        (instant > after).then_some(instant)
    }
}

/// What a recipient asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Preferences {
    /// Channels on which they want no marketing.
    #[serde(default)]
    pub channel_opt_outs: BTreeSet<Channel>,
    /// Marketing categories they want none of.
    #[serde(default)]
    pub category_opt_outs: BTreeSet<Category>,
    /// Channels in the order they prefer them, for tenant systems choosing where to send.
    #[serde(default)]
    pub channel_order: Vec<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
}

impl Preferences {
    /// Checks what only the whole can tell; `base` prefixes field names (`""` or `preferences`).
    pub fn check(&self, base: &str) -> Result<(), FieldError> {
        let field = |name: &str| {
            if base.is_empty() {
                name.to_owned()
            } else {
                format!("{base}.{name}")
            }
        };
        if let Some(c) = self
            .category_opt_outs
            .iter()
            .find(|c| c.class() != CategoryClass::Marketing)
        {
            return Err(FieldError::new(
                ErrorCode::NotOptional,
                field("category_opt_outs"),
                format!("{c} is transactional: recipients cannot opt out of it"),
            ));
        }
        let distinct: BTreeSet<_> = self.channel_order.iter().collect();
        if distinct.len() != self.channel_order.len() {
            return Err(FieldError::invalid(
                field("channel_order"),
                "channel_order names each channel at most once",
            ));
        }
        Ok(())
    }
}

/// Preferences as stored: with their revision (optimistic concurrency) and who set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecipientPreferences {
    pub preferences: Preferences,
    pub revision: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
    pub source: ConsentSource,
}

/// Why Herald does not send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An opt-out keyword or a suppression (hard bounce, complaint) on the channel.
    Blocked(BlockKind),
    WithdrewConsent,
    OptedOutOfCategory,
    OptedOutOfChannel,
}

impl Refusal {
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::Blocked(kind) => kind.refusal_code(),
            Refusal::WithdrewConsent => ErrorCode::RecipientWithdrewConsent,
            Refusal::OptedOutOfCategory => ErrorCode::RecipientOptedOutOfCategory,
            Refusal::OptedOutOfChannel => ErrorCode::RecipientOptedOutOfChannel,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Blocked(kind) => kind.refusal_message(),
            Refusal::WithdrewConsent => {
                "the recipient withdrew consent to messages of this category on this channel"
            }
            Refusal::OptedOutOfCategory => {
                "the recipient opted out of this (marketing) category in their preferences"
            }
            Refusal::OptedOutOfChannel => {
                "the recipient opted out of marketing on this channel in their preferences"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send, but not before this time (the end of the recipient's quiet hours).
    Defer(OffsetDateTime),
    Refuse(Refusal),
}

/// What decides whether a recipient gets a message: the opt-outs and suppressions on the
/// channels asked about, the preferences, and the consent decisions in force that cover the
/// channels and categories asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    pub blocks: Vec<(Channel, BlockKind)>,
    pub preferences: Option<Preferences>,
    pub consents: Vec<ConsentRecord>,
}

impl Standing {
    /// What to do with a message of `category` on `channel` going out at `at`.
    pub fn verdict(&self, channel: Channel, category: Category, at: OffsetDateTime) -> Verdict {
        // An opt-out is the recipient's own word: it names the refusal when both apply.
        let blocked = self
            .blocks
            .iter()
            .filter(|(c, _)| *c == channel)
            .map(|(_, kind)| *kind)
            .min();
        if let Some(kind) = blocked {
            return Verdict::Refuse(Refusal::Blocked(kind));
        }
        verdict(
            self.preferences.as_ref(),
            &self.consents,
            channel,
            category,
            at,
        )
    }
}

/// What to do with a message of `category` on `channel` going out at `at`, given the
/// recipient's preferences and current consent decisions.
pub fn verdict(
    preferences: Option<&Preferences>,
    consents: &[ConsentRecord],
    channel: Channel,
    category: Category,
    at: OffsetDateTime,
) -> Verdict {
    if in_force(consents, channel, category).is_some_and(|r| r.status == ConsentStatus::Withdrawn) {
        return Verdict::Refuse(Refusal::WithdrewConsent);
    }
    let Some(p) = preferences else {
        return Verdict::Send;
    };
    if category.class() == CategoryClass::Marketing {
        if p.category_opt_outs.contains(&category) {
            return Verdict::Refuse(Refusal::OptedOutOfCategory);
        }
        if p.channel_opt_outs.contains(&channel) {
            return Verdict::Refuse(Refusal::OptedOutOfChannel);
        }
    }
    match p.quiet_hours.as_ref().and_then(|q| q.release_at(at)) {
        Some(release) => Verdict::Defer(release),
        None => Verdict::Send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::{ConsentScope, LegalBasis};
    use proptest::prelude::*;
    use time::macros::datetime;

    fn quiet(start: &str, end: &str, zone: &str) -> QuietHours {
        QuietHours::new(
            start.parse().expect("start"),
            end.parse().expect("end"),
            TimeZoneName::parse(zone).expect("zone"),
        )
        .expect("window")
    }

    #[test]
    fn london_spring_forward_night_is_an_hour_shorter() {
        // 2026-03-29 01:00 GMT the clocks go to 02:00 BST.
        let q = quiet("21:00", "08:00", "Europe/London");
        let at = datetime!(2026-03-28 23:00 UTC); // 23:00 GMT
        let release = q.release_at(at);
        assert_eq!(release, Some(datetime!(2026-03-29 07:00 UTC)), "08:00 BST");
        assert_eq!(release.map(|r| r - at), Some(time::Duration::hours(8)));
        // Evening before the window: nothing to wait for.
        assert_eq!(q.release_at(datetime!(2026-03-28 20:59 UTC)), None);
        // The start is inside, the end is not.
        assert_eq!(
            q.release_at(datetime!(2026-03-28 21:00 UTC)),
            Some(datetime!(2026-03-29 07:00 UTC))
        );
        assert_eq!(q.release_at(datetime!(2026-03-29 07:00 UTC)), None);
        // After midnight, the same morning.
        assert_eq!(
            q.release_at(datetime!(2026-03-29 03:30 UTC)),
            Some(datetime!(2026-03-29 07:00 UTC))
        );
    }

    #[test]
    fn london_fall_back_night_is_an_hour_longer() {
        // 2026-10-25 02:00 BST the clocks go back to 01:00 GMT.
        let q = quiet("21:00", "08:00", "Europe/London");
        let at = datetime!(2026-10-24 21:30 UTC); // 22:30 BST
        let release = q.release_at(at);
        assert_eq!(release, Some(datetime!(2026-10-25 08:00 UTC)), "08:00 GMT");
        assert_eq!(
            release.map(|r| r - at),
            Some(time::Duration::minutes(10 * 60 + 30))
        );
    }

    #[test]
    fn new_york_window_ending_inside_the_skipped_hour_ends_when_the_clocks_jump() {
        // 2026-03-08 02:00 EST the clocks go to 03:00 EDT: 02:30 never happens.
        let q = quiet("22:00", "02:30", "America/New_York");
        assert_eq!(
            q.release_at(datetime!(2026-03-08 06:00 UTC)), // 01:00 EST
            Some(datetime!(2026-03-08 07:00 UTC)),         // 03:00 EDT
        );
        // The next night is an ordinary EDT night.
        assert_eq!(
            q.release_at(datetime!(2026-03-09 03:00 UTC)), // 23:00 EDT
            Some(datetime!(2026-03-09 06:30 UTC)),         // 02:30 EDT
        );
    }

    #[test]
    fn new_york_window_ending_inside_the_repeated_hour_ends_at_its_next_occurrence() {
        // 2026-11-01 02:00 EDT the clocks go back to 01:00 EST: 01:30 happens twice.
        let q = quiet("23:00", "01:30", "America/New_York");
        assert_eq!(
            q.release_at(datetime!(2026-11-01 04:30 UTC)), // 00:30 EDT
            Some(datetime!(2026-11-01 05:30 UTC)),         // the first 01:30 (EDT)
        );
        assert_eq!(
            q.release_at(datetime!(2026-11-01 06:15 UTC)), // 01:15 EST, the second time round
            Some(datetime!(2026-11-01 06:30 UTC)),         // the second 01:30 (EST)
        );
        assert_eq!(q.release_at(datetime!(2026-11-01 05:45 UTC)), None); // 01:45 EDT
        // Across the night of the change, a crossing window lasts an hour longer.
        let night = quiet("21:00", "08:00", "America/New_York");
        assert_eq!(
            night.release_at(datetime!(2026-11-01 01:00 UTC)), // 21:00 EDT
            Some(datetime!(2026-11-01 13:00 UTC)),             // 08:00 EST
        );
    }

    #[test]
    fn a_daytime_window_does_not_cross_midnight() {
        let q = quiet("12:00", "14:00", "Africa/Lusaka"); // UTC+2, no DST
        assert_eq!(
            q.release_at(datetime!(2026-06-01 10:30 UTC)),
            Some(datetime!(2026-06-01 12:00 UTC))
        );
        assert_eq!(q.release_at(datetime!(2026-06-01 12:00 UTC)), None);
        assert_eq!(q.release_at(datetime!(2026-06-01 09:59 UTC)), None);
    }

    #[test]
    fn quiet_hours_parse_from_json() {
        let q: QuietHours = serde_json::from_value(
            serde_json::json!({"start": "21:00", "end": "08:00", "time_zone": "europe/london"}),
        )
        .expect("quiet hours");
        assert_eq!(q.time_zone(), "Europe/London");
        assert_eq!(
            serde_json::to_value(&q).ok(),
            Some(
                serde_json::json!({"start": "21:00", "end": "08:00", "time_zone": "Europe/London"})
            )
        );
        for bad in [
            serde_json::json!({"start": "21:00", "end": "21:00", "time_zone": "UTC"}),
            serde_json::json!({"start": "24:00", "end": "08:00", "time_zone": "UTC"}),
            serde_json::json!({"start": "9:00", "end": "08:00", "time_zone": "UTC"}),
            serde_json::json!({"start": "21:00", "end": "08:00", "time_zone": "Mars/Olympus"}),
            serde_json::json!({"start": "21:00", "end": "08:00", "time_zone": "UTC", "x": 1}),
        ] {
            assert!(
                serde_json::from_value::<QuietHours>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    fn record(scope: &str, status: ConsentStatus) -> ConsentRecord {
        ConsentRecord {
            id: ConsentRecord::new_id(),
            channel: Channel::Email,
            scope: scope.parse::<ConsentScope>().expect("scope"),
            status,
            legal_basis: LegalBasis::Consent,
            source: ConsentSource::parse("api").expect("source"),
            evidence: None,
            at: datetime!(2026-01-01 00:00 UTC),
            recorded_by: "u".into(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn marketing_refusals_leave_transactional_messages_alone() {
        let at = datetime!(2026-06-01 12:00 UTC);
        let withdrawn = [record("marketing", ConsentStatus::Withdrawn)];
        let v = |p: Option<&Preferences>, c: &[ConsentRecord], ch, cat| verdict(p, c, ch, cat, at);
        assert_eq!(
            v(None, &withdrawn, Channel::Email, Category::Invitation),
            Verdict::Refuse(Refusal::WithdrewConsent)
        );
        assert_eq!(
            v(None, &withdrawn, Channel::Email, Category::RsvpConfirmation),
            Verdict::Send
        );
        assert_eq!(
            v(None, &withdrawn, Channel::Sms, Category::Invitation),
            Verdict::Send
        );
        let p = Preferences {
            channel_opt_outs: [Channel::Sms].into(),
            category_opt_outs: [Category::FeedbackRequest].into(),
            ..Preferences::default()
        };
        assert_eq!(
            v(Some(&p), &[], Channel::Email, Category::FeedbackRequest),
            Verdict::Refuse(Refusal::OptedOutOfCategory)
        );
        assert_eq!(
            v(Some(&p), &[], Channel::Sms, Category::Invitation),
            Verdict::Refuse(Refusal::OptedOutOfChannel)
        );
        assert_eq!(
            v(Some(&p), &[], Channel::Sms, Category::RsvpConfirmation),
            Verdict::Send
        );
        let quiet = Preferences {
            quiet_hours: Some(quiet("11:00", "13:00", "UTC")),
            ..p
        };
        assert_eq!(
            v(Some(&quiet), &[], Channel::Sms, Category::RsvpConfirmation),
            Verdict::Defer(datetime!(2026-06-01 13:00 UTC))
        );
    }

    #[test]
    fn transactional_categories_cannot_be_opted_out_of() {
        let p = Preferences {
            category_opt_outs: [Category::RsvpConfirmation].into(),
            ..Preferences::default()
        };
        assert_eq!(
            p.check("").map_err(|e| (e.code, e.field)),
            Err((ErrorCode::NotOptional, "category_opt_outs".to_owned()))
        );
        let twice = Preferences {
            channel_order: vec![Channel::Sms, Channel::Email, Channel::Sms],
            ..Preferences::default()
        };
        assert!(twice.check("").is_err());
    }

    const ZONES: [&str; 8] = [
        "Europe/London",
        "America/New_York",
        "Australia/Sydney",
        "Australia/Lord_Howe", // a 30-minute DST shift
        "America/Santiago",
        "Pacific/Chatham",
        "Africa/Lusaka",
        "Asia/Kolkata",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the zone, window and instant: a message is held exactly while the wall
        /// clock is inside the window, and released at the first instant it is not.
        #[test]
        fn messages_are_held_exactly_until_the_window_ends(
            zone in 0..ZONES.len(),
            start in 0i64..1440,
            length in 1i64..1440,
            // 2020-01-01 .. 2031-01-01, in minutes
            minute in 26_297_280i64..32_081_760,
            second in 0i64..60,
        ) {
            let end = (start + length) % 1440;
            let q = QuietHours::new(
                LocalTime::new((start / 60) as i8, (start % 60) as i8).expect("start"),
                LocalTime::new((end / 60) as i8, (end % 60) as i8).expect("end"),
                TimeZoneName::parse(ZONES[zone]).expect("zone"),
            ).expect("window");
            let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(minute * 60 + second);
            let inside = |t: OffsetDateTime| {
                let ts = Timestamp::from_second(t.unix_timestamp()).expect("instant");
                q.covers(ts.to_zoned(q.time_zone.tz().clone()).time())
            };
            match q.release_at(at) {
                None => prop_assert!(!inside(at)),
                Some(release) => {
                    prop_assert!(inside(at));
                    prop_assert!(release > at);
                    prop_assert!(release - at <= time::Duration::hours(25));
                    prop_assert!(!inside(release), "released inside the window");
                    let span = (release - at).whole_seconds();
                    for k in 0..48 {
                        let t = at + time::Duration::seconds(span * k / 48);
                        prop_assert!(inside(t), "released early: {t} is still quiet");
                    }
                    let local = Timestamp::from_second(release.unix_timestamp())
                        .expect("instant")
                        .to_zoned(q.time_zone.tz().clone());
                    let skipped = matches!(
                        q.time_zone.tz().to_ambiguous_timestamp(local.date().to_datetime(q.end.civil())).offset(),
                        AmbiguousOffset::Gap { .. }
                    );
                    prop_assert!(local.time() == q.end.civil() || skipped,
                        "released at {} local, not at the window's end {}", local.time(), q.end);
                }
            }
        }
    }
}
