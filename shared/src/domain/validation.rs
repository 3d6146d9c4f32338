//! Field-level problems found while parsing input: a machine-readable code, the offending field
//! (a dotted path into the request), and a sentence for people.

use std::fmt;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

pub use super::error_code::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub code: ErrorCode,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self {
            code: ErrorCode::Required,
            field,
            message,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, field, message)
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The codes a deserializer may give its refusal (`too_long: ...`), so that the request's
/// error names the limit rather than a generic `invalid`; see [`limit_error`].
const LIMIT_CODES: [ErrorCode; 3] = [
    ErrorCode::TooLong,
    ErrorCode::TooMany,
    ErrorCode::OutOfRange,
];

/// A deserializer's refusal of input over a limit, carrying its code through serde's error
/// (which keeps only a message); `crate::http::json_body` turns it back into a [`FieldError`].
pub fn limit_error<E: serde::de::Error>(code: ErrorCode, message: impl fmt::Display) -> E {
    debug_assert!(LIMIT_CODES.contains(&code));
    E::custom(format_args!("{code}: {message}"))
}

/// The code and message of a deserializer's refusal: one made by [`limit_error`], or `invalid`.
pub fn split_limit_error(message: &str) -> (ErrorCode, &str) {
    LIMIT_CODES
        .into_iter()
        .find_map(|code| {
            message
                .strip_prefix(code.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                .map(|rest| (code, rest))
        })
        .unwrap_or((ErrorCode::Invalid, message))
}

/// A JSON array of at most `MAX` items, refused while it is read (the item past the limit is
/// never built): lists in requests are bounded where they are parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BoundedList<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> BoundedList<T, MAX> {
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Default for BoundedList<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T, const MAX: usize> std::ops::Deref for BoundedList<T, MAX> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T, const MAX: usize> IntoIterator for BoundedList<T, MAX> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T, const MAX: usize> IntoIterator for &'a BoundedList<T, MAX> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T, const MAX: usize> TryFrom<Vec<T>> for BoundedList<T, MAX> {
    type Error = String;
    fn try_from(items: Vec<T>) -> Result<Self, String> {
        if items.len() > MAX {
            Err(format!("at most {MAX} items"))
        } else {
            Ok(Self(items))
        }
    }
}

impl<'de, T: serde::Deserialize<'de>, const MAX: usize> serde::Deserialize<'de>
    for BoundedList<T, MAX>
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T, const MAX: usize>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>, const MAX: usize> serde::de::Visitor<'de> for Items<T, MAX> {
            type Value = BoundedList<T, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {MAX} items")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX));
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(limit_error(
                            ErrorCode::TooMany,
                            format_args!("at most {MAX} items"),
                        ));
                    }
                    items.push(item);
                }
                Ok(BoundedList(items))
            }
        }

        deserializer.deserialize_seq(Items(std::marker::PhantomData))
    }
}

impl<T: schemars::JsonSchema, const MAX: usize> schemars::JsonSchema for BoundedList<T, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("BoundedList_{}_{MAX}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "items": generator.subschema_for::<T>(),
            "maxItems": MAX,
        })
    }
}

/// A string of at most `MAX` characters, refused while it is read; its error never repeats it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct BoundedText<const MAX: usize>(String);

impl<const MAX: usize> BoundedText<MAX> {
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<const MAX: usize> std::ops::Deref for BoundedText<MAX> {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl<const MAX: usize> From<BoundedText<MAX>> for String {
    fn from(text: BoundedText<MAX>) -> String {
        text.0
    }
}

impl<'de, const MAX: usize> serde::Deserialize<'de> for BoundedText<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        // Bytes bound characters from above: only a long text is counted.
        if text.len() > MAX && text.chars().count() > MAX {
            return Err(limit_error(
                ErrorCode::TooLong,
                format_args!("at most {MAX} characters"),
            ));
        }
        Ok(Self(text))
    }
}

/// Checks a free-text field: trimmed, non-empty, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::required(field));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            ErrorCode::TooLong,
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(FieldError::invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The JSON Schema of a time as Herald reads and writes it (an RFC 3339 string), for fields
/// serde reads with `time::serde::rfc3339` or `utc_time`: `#[schemars(with = "Rfc3339Time")]`.
#[derive(Debug)]
pub struct Rfc3339Time;

impl schemars::JsonSchema for Rfc3339Time {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rfc3339".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}

/// Earliest time a request may name (UTC): nothing Herald holds is older.
pub const MIN_TIME: OffsetDateTime = time::macros::datetime!(1970-01-01 00:00 UTC);
/// Latest time a request may name (UTC), a year short of what RFC 3339 and the time crate can
/// hold, so that a window or margin computed around it stays in range.
pub const MAX_TIME: OffsetDateTime = time::macros::datetime!(9999-01-01 00:00 UTC);

/// An RFC 3339 time from a request (a query, a receipt), in UTC and within
/// [`MIN_TIME`]..=[`MAX_TIME`]: `9999-12-31T00:00:00-23:59` and `0000-01-01T00:00:00+01:00`
/// parse as RFC 3339 but lie beyond what can be converted, stored or formatted.
pub fn utc_time(value: &str) -> Option<OffsetDateTime> {
    let at = OffsetDateTime::parse(value, &Rfc3339).ok()?;
    let at = at.checked_to_offset(UtcOffset::UTC)?;
    (MIN_TIME..=MAX_TIME).contains(&at).then_some(at)
}

impl<const MAX: usize> schemars::JsonSchema for BoundedText<MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("BoundedText_{MAX}").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "maxLength": MAX})
    }
}

/// An email address, checked for the shape providers accept (not for deliverability).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@').ok_or("an email address needs an @")?;
        let valid_local = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let valid_domain = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if valid_local && valid_domain {
            Ok(Self(s.to_owned()))
        } else {
            Err("not a valid email address".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl schemars::JsonSchema for EmailAddress {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EmailAddress".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "email",
            "maxLength": 320,
            "description": "An email address in the shape providers accept (`local@domain.tld`, ASCII).",
        })
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        assert!(EmailAddress::parse("events@acme.example").is_ok());
        assert_eq!(
            EmailAddress::parse("a.b+c@mail.acme.io").map(|e| e.domain().to_owned()),
            Ok("mail.acme.io".into())
        );
        for bad in [
            "",
            "acme.example",
            "@acme.example",
            "a@b",
            "a b@c.io",
            "a@-c.io",
            ".a@c.io",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_times_are_in_utc_and_in_range() {
        use time::macros::datetime;
        assert_eq!(
            utc_time("2026-11-01T02:00:00+02:00"),
            Some(datetime!(2026-11-01 00:00 UTC))
        );
        assert_eq!(utc_time("1970-01-01T00:00:00Z"), Some(MIN_TIME));
        for bad in [
            "9999-12-31T00:00:00-23:59",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00+01:00",
            "0000-01-01T00:00:00-23:59",
            "1969-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
            "2026-11-01",
            "",
        ] {
            assert_eq!(utc_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn text_fields() {
        assert_eq!(text("name", "  Gala  ", 10), Ok("Gala".into()));
        assert_eq!(
            text("name", "  ", 10).map_err(|e| e.code),
            Err(ErrorCode::Required)
        );
        assert_eq!(
            text("name", "x".repeat(11).as_str(), 10).map_err(|e| e.code),
            Err(ErrorCode::TooLong)
        );
    }
}
