//! Whom a message speaks to: a language (a BCP 47 tag: `en`, `fr`, `sw`, `pt-BR`) and an IANA
//! time zone (`Africa/Lusaka`), parsed at the edge.

use std::fmt;

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

/// An IANA time zone Herald's time zone database knows (`Africa/Lusaka`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.len() > 64 || jiff::tz::TimeZone::get(name).is_err() {
            return Err("must be an IANA time zone such as Africa/Lusaka".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = crate::domain::validation::BoundedText::<64>::deserialize(deserializer)?;
        Self::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for TimeZoneName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeZoneName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An IANA time zone (`Africa/Lusaka`).",
            "minLength": 1,
            "maxLength": 64,
            "examples": ["Africa/Lusaka"],
        })
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
