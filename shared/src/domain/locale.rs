//! Whom a message speaks to: a language (a BCP 47 tag: `en`, `fr`, `sw`, `pt-BR`) and an IANA
//! time zone (`Africa/Lusaka`: quiet hours, formatting, the event's venue), parsed at the edge.

use std::fmt;

use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize};

/// A well-formed BCP 47 language tag, in its canonical form (`pt-br` reads as `pt-BR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LocaleTag(String);

impl LocaleTag {
    pub fn parse(tag: &str) -> Result<Self, String> {
        if tag.len() > 35 {
            return Err("language tags are at most 35 characters".into());
        }
        icu_locale_core::Locale::try_from_str(tag)
            .map(|l| Self(l.to_string()))
            .map_err(|_| "must be a BCP 47 language tag such as en, fr or pt-BR".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LocaleTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LocaleTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tag = crate::domain::validation::BoundedText::<64>::deserialize(deserializer)?;
        Self::parse(&tag).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for LocaleTag {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LocaleTag".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A BCP 47 language tag (`en`, `fr`, `sw`, `pt-BR`).",
            "minLength": 2,
            "maxLength": 35,
            "pattern": "^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
            "examples": ["fr"],
        })
    }
}

/// An IANA time zone (`Europe/London`, `Africa/Lusaka`), found in the compiled-in database.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName {
    name: String,
    tz: TimeZone,
}

impl TimeZoneName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let tz = jiff::tz::db()
            .get(s)
            .map_err(|_| format!("{s:?} is not an IANA time zone (e.g. Europe/London)"))?;
        let name = tz.iana_name().unwrap_or(s).to_owned();
        Ok(Self { name, tz })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The zone's rules.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

impl PartialEq for TimeZoneName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeZoneName {}

impl TryFrom<String> for TimeZoneName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TimeZoneName> for String {
    fn from(t: TimeZoneName) -> String {
        t.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_zones_are_parsed() {
        assert_eq!(LocaleTag::parse("pt-br").map(|t| t.0), Ok("pt-BR".into()));
        assert!(LocaleTag::parse("sw").is_ok());
        for bad in ["", "e", "en_GB!", "x".repeat(40).as_str()] {
            assert!(LocaleTag::parse(bad).is_err(), "{bad}");
        }
        assert!(TimeZoneName::parse("Africa/Lusaka").is_ok());
        assert!(TimeZoneName::parse("Lusaka").is_err());
    }
}
