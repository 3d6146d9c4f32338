//! Identifiers. Tenant and event ids come from callers, so they are parsed into newtypes once at
//! the edge; provider ids are minted by Herald (`prv_` + ULID) and parsed back from paths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")]
pub struct InvalidId {
    pub what: &'static str,
}

fn is_slug(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, reserved: [$($reserved:literal),*]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                let reserved: &[&str] = &[$($reserved),*];
                if is_slug(s) && !reserved.contains(&s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidId { what: $what })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let reserved: &[&str] = &[$($reserved),*];
                let mut schema = schemars::json_schema!({
                    "type": "string",
                    "description": concat!("A ", $what, ": 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit."),
                    "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$",
                });
                if !reserved.is_empty() {
                    schema.insert("not".into(), serde_json::json!({"enum": reserved}));
                }
                schema
            }
        }
    };
}

slug_id!(
    /// A tenant: an organisation with its own providers, templates and brand. `platform` is
    /// not one: it names the platform's own audit scope (global templates).
    TenantId,
    "tenant id",
    reserved: ["platform"]
);
slug_id!(
    /// An event of a tenant (a gala, a conference, a loan product...): the unit the wizard configures.
    EventId,
    "event id",
    reserved: []
);

/// An id made here: a fixed prefix and a lowercase ULID (time-ordered, unguessable enough to
/// not enumerate, checked when parsed).
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!(
                    "{}{}",
                    Self::PREFIX,
                    ulid::Ulid::new().to_string().to_lowercase()
                ))
            }

            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                let ok = s.strip_prefix(Self::PREFIX).is_some_and(|rest| {
                    rest.len() == 26 && ulid::Ulid::from_string(rest).is_ok()
                });
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidId { what: $what })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": concat!("A ", $what, ": `", $prefix, "` and a lowercase ULID."),
                    "pattern": concat!("^", $prefix, "[0-7][0-9a-hjkmnp-tv-z]{25}$"),
                })
            }
        }
    };
}

prefixed_id!(
    /// A provider configuration's id: `prv_` followed by a ULID.
    ProviderId,
    "prv_",
    "provider id"
);
prefixed_id!(
    /// A webhook endpoint's id: `ep_` followed by a ULID.
    WebhookEndpointId,
    "ep_",
    "webhook endpoint id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_checked() {
        assert!(TenantId::parse("acme-events").is_ok());
        assert!(TenantId::parse("9lives_co").is_ok());
        for bad in ["", "-acme", "Acme", "acme events", "a/b", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            TenantId::parse("platform").is_err(),
            "the platform's audit scope is no tenant's"
        );
        assert!(EventId::parse("platform").is_ok());
    }

    #[test]
    fn provider_ids_round_trip() {
        let id = ProviderId::generate();
        assert_eq!(ProviderId::parse(id.as_str()), Ok(id.clone()));
        assert!(ProviderId::parse("prv_notaulid").is_err());
        assert!(ProviderId::parse("01J0000000000000000000000").is_err());
    }
}
