//! The variables a send request carries for its templates (`{"guest_name": "Ada", "agenda":
//! [...]}`), bounded where they are read: a request over a limit is refused before anything is
//! rendered. Values are JSON; whether each fits the type its template declares is checked when
//! the template is known (see [`variable_type`](super::variable_type)).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::error_code::ErrorCode;
use super::validation::limit_error;
use super::variable_type::{MAX_DEPTH, MAX_FIELDS, MAX_LIST_ITEMS};

/// Most variables one recipient (or a single send) may carry. Templates declare at most
/// `template::MAX_VARIABLES`; a business event's payload feeds several templates.
pub const MAX_VARIABLES: usize = 100;
/// Longest variable (or object field) name, in characters (template variable names are at most
/// 64 too).
pub const MAX_NAME_CHARS: usize = 64;
/// Longest text value, in characters.
pub const MAX_VALUE_CHARS: usize = 10_000;

/// Template variables by name: at most [`MAX_VARIABLES`], names of 1-[`MAX_NAME_CHARS`]
/// printable characters, each name once. Values are JSON: texts of at most [`MAX_VALUE_CHARS`]
/// characters without control characters other than line breaks and tabs, numbers, booleans,
/// lists of at most [`MAX_LIST_ITEMS`] items and objects of at most [`MAX_FIELDS`] fields, nested
/// at most [`MAX_DEPTH`] deep; `null` is refused (leave an optional variable out instead).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Variables(BTreeMap<String, Value>);

impl Variables {
    pub fn into_inner(self) -> BTreeMap<String, Value> {
        self.0
    }
}

impl std::ops::Deref for Variables {
    type Target = BTreeMap<String, Value>;
    fn deref(&self) -> &BTreeMap<String, Value> {
        &self.0
    }
}

impl From<Variables> for BTreeMap<String, Value> {
    fn from(variables: Variables) -> Self {
        variables.0
    }
}

impl From<BTreeMap<String, Value>> for Variables {
    fn from(variables: BTreeMap<String, Value>) -> Self {
        Self(variables)
    }
}

impl schemars::JsonSchema for Variables {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Variables".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = generator.subschema_for::<VariableValue>();
        schemars::json_schema!({
            "type": "object",
            "description": "Template variables by name (`{\"guest_name\": \"Ada\", \"agenda\": [{\"title\": \"Doors\", \"starts_at\": \"2026-12-12T18:30:00+02:00\"}]}`), each of the type its template declares: text (without control characters other than line breaks and tabs), number, boolean, date (`YYYY-MM-DD`), date and time (RFC 3339 with offset), money (`{\"amount\": \"1250.50\", \"currency\": \"ZMW\"}`), list or object.",
            "maxProperties": MAX_VARIABLES,
            "propertyNames": {"minLength": 1, "maxLength": MAX_NAME_CHARS},
            "additionalProperties": value,
        })
    }
}

/// One variable's value, as the contract describes it (the values themselves are
/// `serde_json::Value`s, bounded while they are read).
#[derive(Debug)]
pub struct VariableValue;

impl schemars::JsonSchema for VariableValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "VariableValue".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let nested = generator.subschema_for::<VariableValue>();
        schemars::json_schema!({
            "description": "A variable's value: text, number, boolean, list or object (lists and objects nested at most 4 deep).",
            "anyOf": [
                {"type": "string", "maxLength": MAX_VALUE_CHARS},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "maxItems": MAX_LIST_ITEMS, "items": nested},
                {"type": "object", "maxProperties": MAX_FIELDS, "additionalProperties": nested},
            ],
        })
    }
}

fn is_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// A name (of a variable or an object field): refused without repeating it.
fn check_name<E: serde::de::Error>(name: &str) -> Result<(), E> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(limit_error(
            ErrorCode::TooLong,
            format_args!("names are 1-{MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(E::custom("names may not contain control characters"));
    }
    Ok(())
}

/// One value, `depth` lists or objects deep: refused inside the value, so the error's field is
/// the path down to it (`variables.agenda[2].title`).
#[derive(Clone, Copy)]
struct Bounded {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, a number, a boolean, a list or an object")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("numbers must be finite"))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(limit_error(
                ErrorCode::TooLong,
                format_args!("at most {MAX_VALUE_CHARS} characters"),
            ));
        }
        if v.chars().any(is_control) {
            return Err(E::custom(
                "variable values may not contain control characters",
            ));
        }
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Err(E::custom(
            "null is not a value (leave an optional variable out instead)",
        ))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested::<A::Error>()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            if items.len() == MAX_LIST_ITEMS {
                return Err(limit_error(
                    ErrorCode::TooMany,
                    format_args!("at most {MAX_LIST_ITEMS} items"),
                ));
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested::<A::Error>()?;
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if object.len() == MAX_FIELDS {
                return Err(limit_error(
                    ErrorCode::TooMany,
                    format_args!("at most {MAX_FIELDS} fields"),
                ));
            }
            check_name::<A::Error>(&name)?;
            if object.contains_key(&name) {
                return Err(serde::de::Error::custom("a field is named twice"));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

impl Bounded {
    fn nested<E: serde::de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(limit_error(
                ErrorCode::TooMany,
                format_args!("lists and objects nest at most {MAX_DEPTH} deep"),
            ));
        }
        Ok(Self {
            depth: self.depth + 1,
        })
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
                    check_name::<A::Error>(&name)?;
                    if variables.contains_key(&name) {
                        return Err(serde::de::Error::custom("a variable is named twice"));
                    }
                    let value = map.next_value_seed(Bounded { depth: 0 })?;
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
        assert_eq!(v.get("guest_name").and_then(Value::as_str), Some("Ada"));
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
            r#"{"a": null}"#,
            r#"{"a": [{"b": null}]}"#,
            r#"{"a": [[[[["too deep"]]]]]}"#,
            r#"[]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn structured_values_are_kept_and_refused_at_their_path() {
        let v = parse(r#"{"agenda": [{"title": "Doors", "n": 2, "ok": true}], "price": 1.5}"#)
            .expect("valid");
        assert_eq!(v["agenda"][0]["n"], serde_json::json!(2));
        let err =
            parse(r#"{"agenda": [{"title": "ok"}, {"title": "nul\u0000"}]}"#).expect_err("control");
        assert!(err.starts_with("agenda[1].title "), "{err}");
        let many = vec!["1"; MAX_LIST_ITEMS + 1].join(",");
        let err = parse(&format!(r#"{{"rows": [{many}]}}"#)).expect_err("too many");
        assert!(err.contains("too_many"), "{err}");
    }
}
