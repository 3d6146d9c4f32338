//! What a template variable holds. A template declares each variable's type (text by default;
//! numbers, booleans, dates, times, money, lists and objects with declared fields); the values a
//! send carries are checked against it at the edge, naming the path of the first wrong value
//! (`recipients[2].variables.agenda[3].starts_at`), and previews render with samples made from it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cost::Currency;
use super::validation::FieldError;
use crate::domain::ErrorCode;

/// Most items a list value may hold (an agenda, order lines, a seating plan).
pub const MAX_LIST_ITEMS: usize = 1_000;
/// Most fields an object type may declare.
pub const MAX_FIELDS: usize = 50;
/// Deepest nesting of lists and objects in a type (`agenda[].speakers[].name` is 3).
pub const MAX_DEPTH: usize = 4;

/// The type of a variable, a list's items or an object's field.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Text.
    #[default]
    String,
    /// A JSON number.
    Number,
    Boolean,
    /// A calendar date, `2026-12-12`; shown with the `date` filter in the recipient's locale.
    Date,
    /// An instant with its offset (RFC 3339, `2026-12-12T18:30:00+02:00`); shown with the
    /// `datetime`, `date` and `time` filters in the recipient's locale and time zone.
    Datetime,
    /// `{"amount": "1250.50", "currency": "ZMW"}` (the amount a decimal string or a number);
    /// shown with the `money` filter in the recipient's locale.
    Money,
    /// A JSON array of `items`.
    List,
    /// A JSON object with the declared `fields`.
    Object,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
            Kind::Datetime => "datetime",
            Kind::Money => "money",
            Kind::List => "list",
            Kind::Object => "object",
        }
    }
}

/// The type of a list's items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemType {
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The items' items, for a list of lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ItemType>>,
    /// The items' fields, for a list of objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDecl>,
}

/// A field of an object type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDecl {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Kind,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ItemType>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDecl>,
}

fn yes() -> bool {
    true
}

/// A type, whichever declaration it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    pub kind: Kind,
    pub items: Option<&'a ItemType>,
    pub fields: &'a [FieldDecl],
}

impl<'a> Shape<'a> {
    pub fn of(kind: Kind, items: Option<&'a ItemType>, fields: &'a [FieldDecl]) -> Self {
        Self {
            kind,
            items,
            fields,
        }
    }
}

impl<'a> From<&'a ItemType> for Shape<'a> {
    fn from(t: &'a ItemType) -> Self {
        Shape::of(t.kind, t.items.as_deref(), &t.fields)
    }
}

impl<'a> From<&'a FieldDecl> for Shape<'a> {
    fn from(f: &'a FieldDecl) -> Self {
        Shape::of(f.kind, f.items.as_deref(), &f.fields)
    }
}

/// Whether `name` is a lower_snake_case identifier of at most 64 characters.
pub fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Shape<'_> {
    /// Checks the declaration itself (at `field`, e.g. `variables[2]`): lists say what their
    /// items are, objects declare their fields (identifiers, once each), other types neither,
    /// and nothing nests deeper than [`MAX_DEPTH`].
    pub fn check(&self, field: &str) -> Result<(), FieldError> {
        self.check_at(field, 0)
    }

    fn check_at(&self, field: &str, depth: usize) -> Result<(), FieldError> {
        let nested = matches!(self.kind, Kind::List | Kind::Object);
        if nested && depth >= MAX_DEPTH {
            return Err(FieldError::new(
                ErrorCode::TooMany,
                field,
                format!("lists and objects nest at most {MAX_DEPTH} deep"),
            ));
        }
        match (self.kind, self.items, self.fields.is_empty()) {
            (Kind::List, Some(items), true) => {
                Shape::from(items).check_at(&format!("{field}.items"), depth + 1)
            }
            (Kind::List, None, _) => Err(FieldError::required(format!("{field}.items"))),
            (Kind::Object, None, false) => {
                if self.fields.len() > MAX_FIELDS {
                    return Err(FieldError::new(
                        ErrorCode::TooMany,
                        format!("{field}.fields"),
                        format!("at most {MAX_FIELDS} fields"),
                    ));
                }
                for (i, f) in self.fields.iter().enumerate() {
                    let at = format!("{field}.fields[{i}]");
                    if !is_identifier(&f.name) {
                        return Err(FieldError::invalid(
                            format!("{at}.name"),
                            "field names are lower_snake_case identifiers",
                        ));
                    }
                    if self.fields[..i].iter().any(|g| g.name == f.name) {
                        return Err(FieldError::new(
                            ErrorCode::Duplicate,
                            format!("{at}.name"),
                            format!("{} is declared twice", f.name),
                        ));
                    }
                    Shape::from(f).check_at(&at, depth + 1)?;
                }
                Ok(())
            }
            (Kind::Object, None, true) => Err(FieldError::required(format!("{field}.fields"))),
            (_, None, true) => Ok(()),
            (kind, _, _) => Err(FieldError::new(
                ErrorCode::NotAllowed,
                field,
                format!(
                    "{} takes {}",
                    kind.as_str(),
                    match kind {
                        Kind::List => "items, not fields",
                        Kind::Object => "fields, not items",
                        _ => "neither items nor fields",
                    }
                ),
            )),
        }
    }

    /// Checks `value` against this type; the error names `path` down to the wrong value
    /// (`variables.agenda[2].starts_at`). Messages never repeat the value.
    pub fn check_value(&self, value: &Value, path: &str) -> Result<(), FieldError> {
        let wrong = |what: &str| FieldError::invalid(path, format!("must be {what}"));
        match self.kind {
            Kind::String => value.as_str().map(drop).ok_or_else(|| wrong("text")),
            Kind::Number => value
                .as_number()
                .filter(|n| n.as_f64().is_some_and(f64::is_finite))
                .map(drop)
                .ok_or_else(|| wrong("a number")),
            Kind::Boolean => value
                .as_bool()
                .map(drop)
                .ok_or_else(|| wrong("true or false")),
            Kind::Date => value
                .as_str()
                .and_then(parse_date)
                .map(drop)
                .ok_or_else(|| wrong("a date, YYYY-MM-DD")),
            Kind::Datetime => value
                .as_str()
                .and_then(parse_datetime)
                .map(drop)
                .ok_or_else(|| {
                    wrong("a date and time with its offset (RFC 3339), between 1970 and 9999")
                }),
            Kind::Money => parse_money(value, path).map(drop),
            Kind::List => {
                let items = value.as_array().ok_or_else(|| wrong("a list"))?;
                if items.len() > MAX_LIST_ITEMS {
                    return Err(FieldError::new(
                        ErrorCode::TooMany,
                        path,
                        format!("at most {MAX_LIST_ITEMS} items"),
                    ));
                }
                let Some(item) = self.items else {
                    return Ok(());
                };
                let item = Shape::from(item);
                items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, v)| item.check_value(v, &format!("{path}[{i}]")))
            }
            Kind::Object => {
                let object = value.as_object().ok_or_else(|| wrong("an object"))?;
                if let Some(extra) = object
                    .keys()
                    .find(|k| !self.fields.iter().any(|f| &f.name == *k))
                {
                    return Err(undeclared(path, extra, "field"));
                }
                for f in self.fields {
                    let at = format!("{path}.{}", f.name);
                    match object.get(&f.name) {
                        Some(v) => Shape::from(f).check_value(v, &at)?,
                        None if f.required => return Err(FieldError::required(at)),
                        None => {}
                    }
                }
                Ok(())
            }
        }
    }

    /// A plausible value of this type for previews and validation, made from `name`.
    pub fn sample(&self, name: &str) -> Value {
        match self.kind {
            Kind::String => Value::from(humanise(name)),
            Kind::Number => Value::from(42),
            Kind::Boolean => Value::from(true),
            Kind::Date => Value::from("2026-12-12"),
            Kind::Datetime => Value::from("2026-12-12T18:30:00Z"),
            Kind::Money => serde_json::json!({"amount": "1250.00", "currency": "USD"}),
            Kind::List => {
                let item = self.items.map(Shape::from);
                Value::Array(
                    (1..=3)
                        .map(|i| item.map_or(Value::Null, |s| s.sample(&format!("{name} {i}"))))
                        .collect(),
                )
            }
            Kind::Object => Value::Object(
                self.fields
                    .iter()
                    .map(|f| (f.name.clone(), Shape::from(f).sample(&f.name)))
                    .collect(),
            ),
        }
    }
}

/// A name the template does not declare, at `{path}.{name}` (at `path` alone when the name is
/// not an identifier: the error never repeats arbitrary text).
pub fn undeclared(path: &str, name: &str, what: &str) -> FieldError {
    let field = if is_identifier(name) {
        format!("{path}.{name}")
    } else {
        path.to_owned()
    };
    FieldError::new(
        ErrorCode::UnknownVariable,
        field,
        format!("the template declares no {what} of this name"),
    )
}

/// `guest_name` as `Guest name`.
fn humanise(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let trimmed = spaced.trim();
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Sample".to_owned(),
    }
}

/// A calendar date, `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<jiff::civil::Date> {
    (s.len() == 10).then(|| s.parse().ok()).flatten()
}

/// An RFC 3339 instant with its offset, in 1970..=9999.
pub fn parse_datetime(s: &str) -> Option<jiff::Timestamp> {
    if s.len() > 64 {
        return None;
    }
    let ts: jiff::Timestamp = s.parse().ok()?;
    (ts >= jiff::Timestamp::UNIX_EPOCH).then_some(ts)
}

/// An amount of money: a decimal of at most 15 integer and 6 fractional digits, and its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    /// The amount in millionths of the currency's unit.
    pub micros: i128,
    pub currency: Currency,
}

/// `{"amount": "1250.50" | 1250.5, "currency": "ZMW"}` as an [`Amount`].
pub fn parse_money(value: &Value, path: &str) -> Result<Amount, FieldError> {
    let wrong = || {
        FieldError::invalid(
            path,
            "must be {\"amount\": a decimal, \"currency\": an ISO 4217 code}",
        )
    };
    let object = value.as_object().ok_or_else(wrong)?;
    if object.len() != 2 {
        return Err(wrong());
    }
    let currency = object
        .get("currency")
        .and_then(Value::as_str)
        .and_then(|c| Currency::parse(c).ok())
        .ok_or_else(|| {
            FieldError::invalid(
                format!("{path}.currency"),
                "must be a currency code (three upper-case letters, ISO 4217)",
            )
        })?;
    let amount = match object.get("amount") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let micros = amount.as_deref().and_then(decimal_micros).ok_or_else(|| {
        FieldError::invalid(
            format!("{path}.amount"),
            "must be a decimal of at most 15 digits before the point and 6 after",
        )
    })?;
    Ok(Amount { micros, currency })
}

/// `-1250.5` as millionths (`-1_250_500_000`).
fn decimal_micros(s: &str) -> Option<i128> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 15
        || fraction.len() > 6
        || (digits.contains('.') && fraction.is_empty())
        || !all_digits(whole)
        || !all_digits(fraction)
    {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let fraction: i128 = format!("{fraction:0<6}").parse().ok()?;
    let micros = whole * 1_000_000 + fraction;
    Some(if negative { -micros } else { micros })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn agenda() -> FieldDecl {
        serde_json::from_value(json!({
            "name": "agenda", "type": "list",
            "items": {"type": "object", "fields": [
                {"name": "title"},
                {"name": "starts_at", "type": "datetime"},
                {"name": "room", "required": false},
                {"name": "speakers", "type": "list", "items": {"type": "string"}, "required": false}
            ]}
        }))
        .expect("a declaration")
    }

    #[test]
    fn declarations_are_checked() {
        assert!(Shape::from(&agenda()).check("variables[0]").is_ok());
        let bad = |decl: Value| {
            let f: FieldDecl = serde_json::from_value(decl).expect("parses");
            Shape::from(&f).check("variables[0]").map_err(|e| e.field)
        };
        assert_eq!(
            bad(json!({"name": "a", "type": "list"})),
            Err("variables[0].items".into())
        );
        assert_eq!(
            bad(json!({"name": "a", "type": "object"})),
            Err("variables[0].fields".into())
        );
        assert_eq!(
            bad(json!({"name": "a", "type": "string", "items": {"type": "string"}})),
            Err("variables[0]".into())
        );
        assert_eq!(
            bad(json!({"name": "a", "type": "object", "fields": [{"name": "X"}]})),
            Err("variables[0].fields[0].name".into())
        );
        assert_eq!(
            bad(json!({"name": "a", "type": "object", "fields": [{"name": "x"}, {"name": "x"}]})),
            Err("variables[0].fields[1].name".into())
        );
        let deep = json!({"name": "a", "type": "list", "items": {"type": "list", "items":
            {"type": "list", "items": {"type": "list", "items": {"type": "list", "items": {"type": "string"}}}}}});
        assert!(bad(deep).is_err());
    }

    #[test]
    fn values_are_checked_down_to_the_wrong_one() {
        let decl = agenda();
        let shape = Shape::from(&decl);
        let good = json!([
            {"title": "Doors", "starts_at": "2026-12-12T18:30:00+02:00"},
            {"title": "Dinner", "starts_at": "2026-12-12T17:30:00Z", "room": "Hall", "speakers": ["Ada"]}
        ]);
        assert!(shape.check_value(&good, "variables.agenda").is_ok());
        let at = |v: Value| {
            shape
                .check_value(&v, "variables.agenda")
                .map_err(|e| e.field)
        };
        assert_eq!(
            at(
                json!([{"title": "a", "starts_at": "2026-12-12T18:30:00Z"}, {"title": "b", "starts_at": "tomorrow"}])
            ),
            Err("variables.agenda[1].starts_at".into())
        );
        assert_eq!(
            at(json!([{"title": "a"}])),
            Err("variables.agenda[0].starts_at".into())
        );
        assert_eq!(
            at(json!([{"title": "a", "starts_at": "2026-12-12T18:30:00Z", "colour": "red"}])),
            Err("variables.agenda[0].colour".into())
        );
        assert_eq!(
            at(json!([{"title": "a", "starts_at": "2026-12-12T18:30:00Z", "speakers": [1]}])),
            Err("variables.agenda[0].speakers[0]".into())
        );
        assert_eq!(at(json!("x")), Err("variables.agenda".into()));
        // Local times without an offset are ambiguous: refused.
        assert!(at(json!([{"title": "a", "starts_at": "2026-12-12T18:30:00"}])).is_err());
    }

    #[test]
    fn money_is_an_exact_decimal_with_its_currency() {
        let ok = |v: Value| parse_money(&v, "price").map(|a| (a.micros, a.currency));
        assert_eq!(
            ok(json!({"amount": "1250.5", "currency": "ZMW"})),
            Ok((1_250_500_000, Currency::ZMW))
        );
        assert_eq!(
            ok(json!({"amount": -3, "currency": "USD"})),
            Ok((-3_000_000, Currency::USD))
        );
        for (bad, field) in [
            (json!({"amount": "1.", "currency": "USD"}), "price.amount"),
            (json!({"amount": "1e3", "currency": "USD"}), "price.amount"),
            (
                json!({"amount": "1.1234567", "currency": "USD"}),
                "price.amount",
            ),
            (json!({"amount": "1", "currency": "usd"}), "price.currency"),
            (json!({"amount": "1"}), "price"),
            (json!("1 USD"), "price"),
        ] {
            assert_eq!(
                parse_money(&bad, "price").map_err(|e| e.field),
                Err(field.into())
            );
        }
    }

    #[test]
    fn samples_fit_their_types() {
        let decl = agenda();
        let shape = Shape::from(&decl);
        let sample = shape.sample("agenda");
        assert!(shape.check_value(&sample, "agenda").is_ok(), "{sample}");
        assert_eq!(sample[0]["title"], json!("Title"));
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::String),
            Just(Kind::Number),
            Just(Kind::Boolean),
            Just(Kind::Date),
            Just(Kind::Datetime),
            Just(Kind::Money),
        ]
    }

    /// A valid value of a scalar kind.
    fn valid(kind: Kind) -> BoxedStrategy<Value> {
        match kind {
            Kind::String => any::<String>().prop_map(Value::from).boxed(),
            Kind::Number => prop_oneof![
                any::<i64>().prop_map(Value::from),
                (-1e12f64..1e12).prop_map(Value::from)
            ]
            .boxed(),
            Kind::Boolean => any::<bool>().prop_map(Value::from).boxed(),
            Kind::Date => (1970i16..9999, 1i8..=12, 1i8..=28)
                .prop_map(|(y, m, d)| Value::from(format!("{y:04}-{m:02}-{d:02}")))
                .boxed(),
            Kind::Datetime => (0i64..253_402_000_000, -14i8..=14)
                .prop_map(|(s, h)| {
                    let ts = jiff::Timestamp::from_second(s).unwrap_or_default();
                    let offset = jiff::tz::Offset::constant(h);
                    Value::from(ts.display_with_offset(offset).to_string())
                })
                .boxed(),
            _ => (any::<i64>(), 0u32..1_000_000)
                .prop_map(|(units, frac)| {
                    json!({"amount": format!("{}.{frac:06}", units % 1_000_000_000_000_000), "currency": "EUR"})
                })
                .boxed(),
        }
    }

    proptest! {
        #[test]
        fn every_valid_value_passes_and_every_mismatch_names_its_path(
            item in kind(), value_kind in kind(), n in 0usize..5
        ) {
            let decl = FieldDecl {
                name: "rows".into(),
                kind: Kind::List,
                required: true,
                items: Some(Box::new(ItemType {
                    kind: Kind::Object,
                    items: None,
                    fields: vec![FieldDecl {
                        name: "value".into(),
                        kind: item,
                        required: true,
                        items: None,
                        fields: vec![],
                    }],
                })),
                fields: vec![],
            };
            let shape = Shape::from(&decl);
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let values: Vec<Value> = (0..n)
                .map(|_| valid(value_kind).new_tree(&mut runner).map(|t| t.current()).unwrap_or(Value::Null))
                .collect();
            let rows = Value::Array(values.iter().map(|v| json!({"value": v})).collect());
            let result = shape.check_value(&rows, "rows");
            // Dates are also text; anything else must be of the declared kind.
            let compatible = item == value_kind
                || (item == Kind::String && matches!(value_kind, Kind::Date | Kind::Datetime));
            if n == 0 || compatible {
                prop_assert!(result.is_ok(), "{result:?} {rows}");
            } else {
                prop_assert_eq!(result.map_err(|e| e.field), Err("rows[0].value".to_owned()));
            }
        }
    }
}
