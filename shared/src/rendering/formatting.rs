//! Formatting filters, in the recipient's locale and time zone (CLDR data through ICU4X, the
//! Gregorian calendar):
//!
//! - `{{ starts_at | datetime }}`: an RFC 3339 instant as a date and time in the recipient's
//!   time zone (`Dec 12, 2026, 8:30 PM` in `en` for `2026-12-12T18:30:00Z` in Africa/Lusaka),
//!   `datetime("short" | "medium" | "long")`;
//! - `{{ day | date }}`: a date (`YYYY-MM-DD`, or an instant's date in the recipient's zone),
//!   `date("short" | "medium" | "long")`;
//! - `{{ starts_at | time }}`: an instant's time of day in the recipient's zone;
//! - `{{ seats | number }}`: a number with the locale's separators, `number(2)` with two decimals;
//! - `{{ price | money }}`: `{"amount": "1250.5", "currency": "ZMW"}` as `1,250.50 ZMW`, the
//!   amount with the currency's minor digits (ISO 4217) and the locale's separators, followed by
//!   the currency's code (unambiguous where symbols are not: `K`, `Sh`, `$`).
//!
//! The locale and zone come from the message's [`Audience`](super::Audience): given at send, or
//! from the recipient's preferences, else the event's; English and UTC when nothing says.

use std::sync::{Arc, LazyLock, OnceLock};

use fixed_decimal::Decimal;
use icu_datetime::fieldsets::{T, YMD, YMDT};
use icu_datetime::input::{Date, DateTime, Time};
use icu_datetime::options::TimePrecision;
use icu_datetime::{FixedCalendarDateTimeFormatter, NoCalendarFormatter};
use icu_decimal::DecimalFormatter;
use icu_locale_core::Locale;
use minijinja::value::{Object, Value};
use minijinja::{Error, ErrorKind, State};

use crate::domain::variable_type::{parse_date, parse_datetime, parse_money};

/// The context name the audience is kept under (not a variable templates declare).
pub const AUDIENCE: &str = "__audience";

/// Locale and time zone of one rendering, as the filters read them: parsed on first use (most
/// templates format nothing).
#[derive(Debug, Default)]
pub struct Lazy {
    given: super::Audience,
    parsed: OnceLock<Audience>,
    /// The formatters this rendering used, by [`Which::slot`]: an agenda formats the same way
    /// twenty times.
    formatters: [OnceLock<Arc<Formatter>>; 8],
}

impl Object for Lazy {}

impl From<&super::Audience> for Lazy {
    fn from(given: &super::Audience) -> Self {
        Self {
            given: given.clone(),
            ..Self::default()
        }
    }
}

impl Lazy {
    fn audience(&self) -> &Audience {
        self.parsed.get_or_init(|| Audience::from(&self.given))
    }

    fn formatter(&self, which: Which) -> Result<Arc<Formatter>, Error> {
        let slot = &self.formatters[which.slot()];
        if let Some(f) = slot.get() {
            return Ok(f.clone());
        }
        let f = formatter(&self.audience().locale, which)?;
        Ok(slot.get_or_init(|| f).clone())
    }
}

/// A parsed locale and time zone.
#[derive(Debug, Clone)]
pub struct Audience {
    locale: Locale,
    zone: jiff::tz::TimeZone,
}

impl From<&super::Audience> for Audience {
    fn from(a: &super::Audience) -> Self {
        Self {
            locale: a
                .locale
                .as_deref()
                .and_then(|l| Locale::try_from_str(l).ok())
                .unwrap_or(icu_locale_core::locale!("en")),
            zone: a
                .time_zone
                .as_deref()
                .and_then(|z| jiff::tz::TimeZone::get(z).ok())
                .unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }
}

/// Runs `f` with the rendering's audience (English and UTC outside a rendering of Herald's).
fn with_audience<T>(state: &State, f: impl FnOnce(&Lazy) -> Result<T, Error>) -> Result<T, Error> {
    let value = state.lookup(AUDIENCE);
    match value.as_ref().and_then(|v| v.downcast_object_ref::<Lazy>()) {
        Some(lazy) => f(lazy),
        None => f(&Lazy::default()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Length {
    Short,
    Medium,
    Long,
}

fn length(style: Option<&str>) -> Result<Length, Error> {
    match style {
        None | Some("medium") => Ok(Length::Medium),
        Some("short") => Ok(Length::Short),
        Some("long") => Ok(Length::Long),
        Some(_) => Err(Error::new(
            ErrorKind::InvalidOperation,
            "the style is \"short\", \"medium\" or \"long\"",
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    DateTime(Length),
    Date(Length),
    Time,
    Number,
}

impl Which {
    fn slot(self) -> usize {
        let length = |l| match l {
            Length::Short => 0,
            Length::Medium => 1,
            Length::Long => 2,
        };
        match self {
            Which::DateTime(l) => length(l),
            Which::Date(l) => 3 + length(l),
            Which::Time => 6,
            Which::Number => 7,
        }
    }
}

#[derive(Debug)]
enum Formatter {
    DateTime(FixedCalendarDateTimeFormatter<icu_calendar::Gregorian, YMDT>),
    Date(FixedCalendarDateTimeFormatter<icu_calendar::Gregorian, YMD>),
    Time(NoCalendarFormatter<T>),
    Number(DecimalFormatter),
}

/// Formatters by locale and kind, made once per container: making one looks up CLDR data, which
/// costs more than formatting. Bounded, since locales come from requests.
static FORMATTERS: LazyLock<quick_cache::sync::Cache<(Locale, Which), Arc<Formatter>>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(256));

fn formatter(locale: &Locale, which: Which) -> Result<Arc<Formatter>, Error> {
    FORMATTERS.get_or_insert_with(&(locale.clone(), which), || {
        let failed = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("no formatting data: {e}"),
            )
        };
        let prefs = locale.into();
        let minutes = TimePrecision::Minute;
        Ok(Arc::new(match which {
            Which::DateTime(l) => {
                let fields = match l {
                    Length::Short => YMDT::short(),
                    Length::Medium => YMDT::medium(),
                    Length::Long => YMDT::long(),
                }
                .with_time_precision(minutes);
                Formatter::DateTime(
                    FixedCalendarDateTimeFormatter::try_new(prefs, fields)
                        .map_err(|e| failed(&e))?,
                )
            }
            Which::Date(l) => {
                let fields = match l {
                    Length::Short => YMD::short(),
                    Length::Medium => YMD::medium(),
                    Length::Long => YMD::long(),
                };
                Formatter::Date(
                    FixedCalendarDateTimeFormatter::try_new(prefs, fields)
                        .map_err(|e| failed(&e))?,
                )
            }
            Which::Time => Formatter::Time(
                NoCalendarFormatter::try_new(prefs, T::medium().with_time_precision(minutes))
                    .map_err(|e| failed(&e))?,
            ),
            Which::Number => Formatter::Number(
                DecimalFormatter::try_new(locale.into(), Default::default())
                    .map_err(|e| failed(&e))?,
            ),
        }))
    })
}

fn wrong(what: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("expects {what}"))
}

fn gregorian(date: jiff::civil::Date) -> Result<Date<icu_calendar::Gregorian>, Error> {
    Date::try_new_gregorian(
        i32::from(date.year()),
        date.month().unsigned_abs(),
        date.day().unsigned_abs(),
    )
    .map_err(|_| wrong("a date between 1970 and 9999"))
}

fn clock(time: jiff::civil::Time) -> Result<Time, Error> {
    Time::try_new(
        time.hour().unsigned_abs(),
        time.minute().unsigned_abs(),
        time.second().unsigned_abs(),
        0,
    )
    .map_err(|_| wrong("a time of day"))
}

/// An instant (`value` an RFC 3339 string) in the audience's time zone.
fn local(value: &Value, audience: &Audience) -> Result<jiff::civil::DateTime, Error> {
    let instant = value
        .as_str()
        .and_then(parse_datetime)
        .ok_or_else(|| wrong("a date and time (RFC 3339, with its offset)"))?;
    Ok(instant.to_zoned(audience.zone.clone()).datetime())
}

fn datetime(state: &State, value: Value, style: Option<String>) -> Result<String, Error> {
    let which = Which::DateTime(length(style.as_deref())?);
    with_audience(state, |lazy| {
        let local = local(&value, lazy.audience())?;
        match &*lazy.formatter(which)? {
            Formatter::DateTime(f) => Ok(f
                .format(&DateTime {
                    date: gregorian(local.date())?,
                    time: clock(local.time())?,
                })
                .to_string()),
            _ => Err(wrong("a formatter")),
        }
    })
}

fn date(state: &State, value: Value, style: Option<String>) -> Result<String, Error> {
    let which = Which::Date(length(style.as_deref())?);
    with_audience(state, |lazy| {
        let day = match value.as_str().and_then(parse_date) {
            Some(day) => day,
            None => local(&value, lazy.audience())
                .map_err(|_| wrong("a date (YYYY-MM-DD) or a date and time (RFC 3339)"))?
                .date(),
        };
        match &*lazy.formatter(which)? {
            Formatter::Date(f) => Ok(f.format(&gregorian(day)?).to_string()),
            _ => Err(wrong("a formatter")),
        }
    })
}

fn time(state: &State, value: Value) -> Result<String, Error> {
    with_audience(state, |lazy| {
        let local = local(&value, lazy.audience())?;
        match &*lazy.formatter(Which::Time)? {
            Formatter::Time(f) => Ok(f.format(&clock(local.time())?).to_string()),
            _ => Err(wrong("a formatter")),
        }
    })
}

fn write_decimal(lazy: &Lazy, d: &Decimal) -> Result<String, Error> {
    match &*lazy.formatter(Which::Number)? {
        Formatter::Number(f) => Ok(f.format(d).to_string()),
        _ => Err(wrong("a formatter")),
    }
}

fn number(state: &State, value: Value, decimals: Option<u8>) -> Result<String, Error> {
    let mut d = if let Some(i) = value.as_i64() {
        Decimal::from(i)
    } else {
        let f = f64::try_from(value.clone())
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| wrong("a number"))?;
        Decimal::try_from_str(
            &serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string()),
        )
        .map_err(|_| wrong("a number"))?
    };
    if let Some(places) = decimals {
        let places = i16::from(places.min(6));
        d.round(-places);
        d.absolute.pad_end(-places);
    }
    with_audience(state, |lazy| write_decimal(lazy, &d))
}

/// ISO 4217 minor units: 2 unless listed.
fn minor_digits(code: &str) -> i16 {
    const NONE: [&str; 17] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    if NONE.contains(&code) {
        0
    } else if THREE.contains(&code) {
        3
    } else {
        2
    }
}

fn money(state: &State, value: Value) -> Result<String, Error> {
    let json = serde_json::to_value(&value).map_err(|_| wrong("money"))?;
    let amount = parse_money(&json, "money")
        .map_err(|_| wrong("money: {\"amount\": a decimal, \"currency\": an ISO 4217 code}"))?;
    let digits = minor_digits(amount.currency.as_str());
    let mut d = Decimal::from(amount.micros);
    d.absolute.multiply_pow10(-6);
    d.round(-digits);
    d.absolute.pad_end(-digits);
    let shown = with_audience(state, |lazy| write_decimal(lazy, &d))?;
    Ok(format!("{shown}\u{a0}{}", amount.currency))
}

/// The filters' names.
pub const FILTERS: [&str; 5] = ["datetime", "date", "time", "number", "money"];

/// Adds the filters to `env`.
pub fn install(env: &mut minijinja::Environment<'_>) {
    env.add_filter("datetime", datetime);
    env.add_filter("date", date);
    env.add_filter("time", time);
    env.add_filter("number", number);
    env.add_filter("money", money);
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, context};

    use super::*;

    fn render(source: &str, locale: &str, zone: &str, vars: serde_json::Value) -> String {
        let mut env = Environment::new();
        install(&mut env);
        let audience = super::super::Audience {
            locale: Some(locale.into()),
            time_zone: Some(zone.into()),
            unsubscribe: None,
        };
        env.render_str(
            source,
            context! {
                __audience => Value::from_object(Lazy::from(&audience)),
                ..Value::from_serialize(vars)
            },
        )
        .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn instants_are_shown_in_the_recipients_zone_and_locale() {
        let at = serde_json::json!({"at": "2026-12-12T18:30:00Z"});
        assert_eq!(
            render("{{ at | datetime }}", "en", "Africa/Lusaka", at.clone()),
            "Dec 12, 2026, 8:30\u{202f}PM"
        );
        assert_eq!(
            render("{{ at | datetime }}", "fr", "Europe/Paris", at.clone()),
            "12 déc. 2026, 19:30"
        );
        assert_eq!(
            render("{{ at | datetime }}", "en-GB", "Africa/Lusaka", at.clone()),
            "12 Dec 2026, 20:30"
        );
        assert_eq!(
            render(
                "{{ at | date('long') }} {{ at | time }}",
                "en-GB",
                "Asia/Tokyo",
                at.clone()
            ),
            "13 December 2026 03:30"
        );
    }

    #[test]
    fn daylight_saving_time_moves_the_wall_clock() {
        // The same UTC time of day either side of the European change back to winter time.
        let summer = serde_json::json!({"at": "2026-10-24T08:00:00Z"});
        let winter = serde_json::json!({"at": "2026-10-25T08:00:00Z"});
        assert_eq!(
            render("{{ at | time }}", "en-GB", "Europe/London", summer),
            "09:00"
        );
        assert_eq!(
            render("{{ at | time }}", "en-GB", "Europe/London", winter),
            "08:00"
        );
        // New York changes a week later.
        let ny = serde_json::json!({"at": "2026-10-25T12:00:00Z"});
        assert_eq!(
            render("{{ at | time }}", "en-US", "America/New_York", ny),
            "8:00\u{202f}AM"
        );
    }

    #[test]
    fn numbers_and_money_use_the_locales_separators() {
        let v = serde_json::json!({"n": 1234567.5, "price": {"amount": "1250.5", "currency": "ZMW"},
            "ugx": {"amount": 25000, "currency": "UGX"}});
        assert_eq!(
            render("{{ n | number }}", "en", "UTC", v.clone()),
            "1,234,567.5"
        );
        assert_eq!(
            render("{{ n | number(2) }}", "de", "UTC", v.clone()),
            "1.234.567,50"
        );
        assert_eq!(
            render("{{ price | money }}", "en", "UTC", v.clone()),
            "1,250.50\u{a0}ZMW"
        );
        assert_eq!(
            render("{{ price | money }}", "fr", "UTC", v.clone()),
            "1\u{202f}250,50\u{a0}ZMW"
        );
        assert_eq!(
            render("{{ ugx | money }}", "en", "UTC", v),
            "25,000\u{a0}UGX"
        );
    }

    #[test]
    fn wrong_values_are_errors_not_guesses() {
        let v = serde_json::json!({"s": "tomorrow", "n": "12"});
        assert!(render("{{ s | datetime }}", "en", "UTC", v.clone()).starts_with("error"));
        assert!(render("{{ n | number }}", "en", "UTC", v.clone()).starts_with("error"));
        assert!(render("{{ s | money }}", "en", "UTC", v.clone()).starts_with("error"));
        assert!(render("{{ '2026-01-01' | date('huge') }}", "en", "UTC", v).starts_with("error"));
    }

    #[test]
    fn unknown_locales_and_zones_fall_back() {
        let at = serde_json::json!({"at": "2026-12-12T18:30:00Z"});
        let a = Audience::from(&super::super::Audience {
            locale: Some("not a locale!".into()),
            time_zone: Some("Mars/Olympus".into()),
            unsubscribe: None,
        });
        assert_eq!(a.zone, jiff::tz::TimeZone::UTC);
        assert_eq!(
            render("{{ at | time }}", "sw", "Africa/Nairobi", at),
            "21:30"
        );
    }
}
