//! The variables a send request carries for its templates (`{"guest_name": "Ada"}`), bounded
//! where they are read: a request over a limit is refused before anything is rendered.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::error_code::ErrorCode;
use super::validation::{BoundedText, limit_error};

/// Most variables one recipient (or a single send) may carry. Templates declare at most
/// `template::MAX_VARIABLES`; a business event's payload feeds several templates.
pub const MAX_VARIABLES: usize = 100;
/// Longest variable name, in characters (template variable names are at most 64 too).
pub const MAX_NAME_CHARS: usize = 64;
/// Longest variable value, in characters.
pub const MAX_VALUE_CHARS: usize = 10_000;

/// Template variables by name: at most [`MAX_VARIABLES`], names of 1-[`MAX_NAME_CHARS`]
/// printable characters, values of at most [`MAX_VALUE_CHARS`] characters without control
/// characters other than line breaks and tabs, each name once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Variables(BTreeMap<String, String>);

impl Variables {
    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl std::ops::Deref for Variables {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl From<Variables> for BTreeMap<String, String> {
    fn from(variables: Variables) -> Self {
        variables.0
    }
}

impl schemars::JsonSchema for Variables {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Variables".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "Template variables by name (`{\"guest_name\": \"Ada\"}`): text values without control characters other than line breaks and tabs.",
            "maxProperties": MAX_VARIABLES,
            "propertyNames": {"minLength": 1, "maxLength": MAX_NAME_CHARS},
            "additionalProperties": {"type": "string", "maxLength": MAX_VALUE_CHARS},
        })
    }
}

fn is_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// A variable's value: refused inside the value, so the error's field is `variables.<name>`.
struct Value(String);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = BoundedText::<MAX_VALUE_CHARS>::deserialize(deserializer)?.into_inner();
        if text.chars().any(is_control) {
            return Err(serde::de::Error::custom(
                "variable values may not contain control characters",
            ));
        }
        Ok(Self(text))
    }
}

impl<'de> Deserialize<'de> for Variables {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;

        impl<'de> Visitor<'de> for Names {
            type Value = Variables;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of at most {MAX_VARIABLES} variables")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Variables, A::Error> {
                let mut variables = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    if variables.len() == MAX_VARIABLES {
                        return Err(limit_error(
                            ErrorCode::TooMany,
                            format_args!("at most {MAX_VARIABLES} variables"),
                        ));
                    }
                    // The name is not repeated in the message: it may be anything.
                    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                        return Err(limit_error(
                            ErrorCode::TooLong,
                            format_args!("variable names are 1-{MAX_NAME_CHARS} characters"),
                        ));
                    }
                    if name.chars().any(char::is_control) {
                        return Err(serde::de::Error::custom(
                            "variable names may not contain control characters",
                        ));
                    }
                    if variables.contains_key(&name) {
                        return Err(serde::de::Error::custom("a variable is named twice"));
                    }
                    let Value(value) = map.next_value()?;
                    variables.insert(name, value);
                }
                Ok(Variables(variables))
            }
        }

        deserializer.deserialize_map(Names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Variables, String> {
        let de = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize::<_, Variables>(de)
            .map_err(|e| format!("{} {}", e.path(), e.inner()))
    }

    #[test]
    fn variables_within_their_limits_are_kept() {
        let v = parse(r#"{"guest_name": "Ada", "note": "line\nbreak"}"#).expect("valid");
        assert_eq!(v.get("guest_name").map(String::as_str), Some("Ada"));
        let name = "n".repeat(MAX_NAME_CHARS);
        let value = "é".repeat(MAX_VALUE_CHARS);
        assert!(parse(&format!(r#"{{"{name}": "{value}"}}"#)).is_ok());
        let many = (0..MAX_VARIABLES)
            .map(|i| format!(r#""v{i}": "x""#))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse(&format!("{{{many}}}")).map(|v| v.len()), Ok(100));
    }

    #[test]
    fn variables_over_their_limits_are_refused_naming_the_variable_not_the_value() {
        let long = "x".repeat(150_000);
        let err = parse(&format!(r#"{{"guest_name": "{long}"}}"#)).expect_err("too long");
        assert!(err.starts_with("guest_name too_long: "), "{err}");
        assert!(!err.contains("xxx"));
        let err = parse(&format!(r#"{{"{}": "x"}}"#, "n".repeat(65))).expect_err("long name");
        assert!(err.contains("too_long"), "{err}");
        assert!(!err.contains("nnn"));
        let many = (0..=MAX_VARIABLES)
            .map(|i| format!(r#""v{i}": "x""#))
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            parse(&format!("{{{many}}}"))
                .expect_err("101")
                .contains("too_many")
        );
        for bad in [
            r#"{"a": "x", "a": "y"}"#,
            r#"{"a": "nul\u0000"}"#,
            r#"{"": "x"}"#,
            r#"{"a": 1}"#,
            r#"{"a": null}"#,
            r#"[]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
