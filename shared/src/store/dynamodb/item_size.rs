//! DynamoDB's size limits, checked in our code before a write leaves: an item holds at most
//! 400 KB and a transaction 100 actions and 4 MB. AWS refuses more (the local emulator does not),
//! so every Put, Update and TransactWriteItems of the adapters goes through [`DynamoDb::check_put`],
//! [`DynamoDb::check_update`] or [`DynamoDb::check_transaction`]; an item that would not fit is
//! [`StoreError::TooLarge`] naming the field that made it large.
//!
//! Sizes follow DynamoDB's documented rules ("Item sizes and formats" in the developer guide):
//! attribute names and strings by their UTF-8 bytes, binary by its raw bytes, booleans and null
//! 1 byte, lists and maps 3 bytes plus 1 byte per element plus their elements (a map element's
//! name included), sets as the sum of their members. Numbers are stored as base-100 digits
//! aligned on the decimal point plus one byte (so 38 significant digits take at most 21 bytes);
//! a negative number is counted one byte more, which keeps the figure an upper bound.
//!
//! An UpdateItem cannot be measured against the item it changes without reading it, so each
//! table declares its [`Room`]: the attributes updates may set after the Put, each with the most
//! bytes it may take. Puts leave that room free (`ITEM_LIMIT - room`) and updates are held to
//! it, so no sequence of writes makes an item larger than DynamoDB takes. An update of any other
//! attribute must rewrite everything of the item outside its room, and is checked by its caller
//! as a whole item ([`DynamoDb::check_put`]) besides.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::{DynamoDb, Item};
use crate::store::{StoreError, StoreResult};

/// DynamoDB's item limit: 400 KB, names and values included.
pub const ITEM_LIMIT: usize = 400 * 1024;
/// What one TransactWriteItems may carry, in items (aggregate size) and in actions.
pub const TRANSACTION_LIMIT: usize = 4 * 1024 * 1024;
pub const TRANSACTION_ACTIONS: usize = 100;
/// The largest number DynamoDB stores: 38 significant digits, misaligned, negative.
const MAX_NUMBER: usize = 22;

/// The size of an item as DynamoDB counts it against its limit.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// The size of one attribute value (without its name).
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(members) => members.iter().map(String::len).sum(),
        AttributeValue::Ns(members) => members.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(members) => members.iter().map(|b| b.as_ref().len()).sum(),
        // A kind this SDK version does not know: never let it through as small.
        _ => ITEM_LIMIT + 1,
    }
}

/// A number's size: one byte per base-100 digit (pairs of decimal digits aligned on the decimal
/// point, leading and trailing zeroes trimmed) plus one, and one more when negative.
pub fn number_size(text: &str) -> usize {
    let text = text.trim();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()),
        None => (unsigned, Some(0)),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    let (Some(exponent), true) = (exponent, digits.iter().all(u8::is_ascii_digit)) else {
        // Not a number DynamoDB would take; whatever it is, not smaller than its text.
        return text.len().max(MAX_NUMBER);
    };
    let leading = digits.iter().take_while(|d| **d == b'0').count();
    let significant = &digits[leading..];
    let trailing = significant.iter().rev().take_while(|d| **d == b'0').count();
    let significant = significant.len() - trailing;
    if significant == 0 {
        return 1;
    }
    // Where the decimal point sits, counted from the first significant digit.
    let point = whole.len() as i64 - leading as i64 + exponent;
    // The first digit is the low half of its pair when an even power of ten precedes it.
    let pad = usize::from((point - 1).rem_euclid(2) == 0);
    (pad + significant).div_ceil(2) + 1 + usize::from(negative)
}

/// The attributes UpdateItems may set on a table's items after their Put (paths with attribute
/// names resolved, e.g. `record.status_reason`), each with the most bytes (name, value and
/// element overhead) it may take.
#[derive(Debug)]
pub(super) struct Room(pub &'static [(&'static str, usize)]);

impl Room {
    pub const NONE: Room = Room(&[]);

    /// What Puts leave free for updates.
    pub fn total(&self) -> usize {
        self.0.iter().map(|(_, bytes)| bytes).sum()
    }

    fn cap(&self, path: &str) -> Option<usize> {
        self.0.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
    }
}

/// What UpdateItems set on a message: the dispatch claim, the status a receipt moves it to
/// (its reason at most 200 characters, in three places) and the cost billed.
pub(super) const MESSAGE_ROOM: Room = Room(&[
    ("claim_token", 128),
    ("claim_at", 64),
    ("status", 64),
    ("status_rank", 48),
    ("status_mark", 1024),
    ("status_reason", 1024),
    ("cost", 256),
    ("record.status", 64),
    ("record.status_reason", 1024),
    ("record.status_at", 64),
    ("record.cost", 256),
]);

/// What UpdateItems set on a webhook endpoint besides its configuration: the delivery health
/// the worker keeps, switching off, the revision.
pub(super) const ENDPOINT_ROOM: Room = Room(&[
    ("active", 16),
    ("revision", 48),
    ("health", 1024),
    ("health.consecutive_failures", 64),
    ("health.last_success_at", 64),
    ("health.failing_since", 64),
    ("health.last_failure_at", 64),
    ("health.disabled_at", 64),
    ("health.disabled_reason", 512),
]);

/// What finishing an idempotency claim sets: the response kept for repeats. Its whole item is
/// measured before the update (see `finish`); the claim's Put leaves room for it.
pub(super) const IDEMPOTENCY_ROOM: Room = Room(&[]);

/// One write's item, as far as the limits go.
enum Measured {
    /// The item as written whole.
    Item(usize),
    /// An update: bounded by the room of its table.
    Update,
    /// A delete or a condition check.
    Other,
}

impl DynamoDb {
    /// The room of `table`'s items (see [`Room`]).
    pub(super) fn room_of(&self, table: &str) -> &'static Room {
        if table == self.tables.messages {
            &MESSAGE_ROOM
        } else if table == self.tables.webhook_endpoints {
            &ENDPOINT_ROOM
        } else if table == self.tables.idempotency {
            &IDEMPOTENCY_ROOM
        } else {
            &Room::NONE
        }
    }

    /// What an item of `table` with this key is, in the API's words: what a refusal names.
    fn kind_of(&self, table: &str, item: &Item) -> &'static str {
        let sort = item
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str);
        let t = &self.tables;
        match sort.unwrap_or_default() {
            _ if table == t.messages => "message",
            _ if table == t.idempotency => "stored_response",
            _ if table == t.webhook_endpoints => "webhook_endpoint",
            _ if table == t.providers => "provider",
            sk if table == t.snapshots && sk.starts_with("V#") => "snapshot",
            _ if table == t.snapshots => "activation",
            sk if table == t.templates && sk.contains("TPL#") => "template",
            "CUR#BRAND" if table == t.templates => "brand",
            "CUR#SETTINGS" if table == t.templates => "event_settings",
            _ if table == t.templates => "tenant_settings",
            sk if table == t.recipients && sk.starts_with("CONSENT#") => "consent",
            "PREFERENCES" if table == t.recipients => "preferences",
            _ if table == t.recipients => "block",
            sk if table == t.audit && sk.starts_with("N#") => "audit_anchor",
            _ if table == t.audit => "audit_entry",
            _ => "item",
        }
    }

    /// Checks an item about to be written whole (a Put, or what a whole-item update leaves) to
    /// `table`: it must fit DynamoDB's limit with its table's room left free. Its size.
    pub(super) fn check_put(&self, table: &str, item: &Item) -> StoreResult<usize> {
        let size = item_size(item);
        let limit = ITEM_LIMIT - self.room_of(table).total();
        if size > limit {
            return Err(StoreError::TooLarge {
                what: field_of(self.kind_of(table, item), item),
                size,
                limit,
            });
        }
        Ok(size)
    }

    /// Checks an UpdateItem: SET only within its table's room (each path at most its bytes);
    /// an attribute outside the room may be set only whole, within what the item may hold.
    /// ADD and DELETE clauses are refused (nothing here bounds them).
    pub(super) fn check_update(
        &self,
        table: &str,
        key: &Item,
        expression: &str,
        names: Option<&HashMap<String, String>>,
        values: Option<&HashMap<String, AttributeValue>>,
    ) -> StoreResult<()> {
        let room = self.room_of(table);
        let (no_names, no_values) = (HashMap::new(), HashMap::new());
        let (names, values) = (names.unwrap_or(&no_names), values.unwrap_or(&no_values));
        let clauses = clauses(expression).ok_or_else(|| {
            StoreError::Unavailable(anyhow::anyhow!(
                "an update expression with ADD or DELETE cannot be bounded: {expression}"
            ))
        })?;
        let outside = ITEM_LIMIT - room.total() - item_size(key);
        for action in clauses {
            let Some((target, operand)) = action.split_once('=') else {
                continue;
            };
            let path = resolve(target.trim(), names);
            let leaf = path.rsplit('.').next().unwrap_or(&path);
            // A map member costs its element byte besides its name and value.
            let nested = usize::from(path.contains('.'));
            let bytes = leaf.len() + nested + operand_size(operand, values);
            let limit = room.cap(&path).unwrap_or(outside);
            if bytes > limit {
                return Err(StoreError::TooLarge {
                    what: format!("{}.{path}", self.kind_of(table, key)),
                    size: bytes,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// [`DynamoDb::check_put`] of a PutItem request.
    pub(super) fn check_put_item(&self, request: &PutItemFluentBuilder) -> StoreResult<()> {
        let table = request.get_table_name().as_deref().unwrap_or_default();
        let empty = HashMap::new();
        self.check_put(table, request.get_item().as_ref().unwrap_or(&empty))
            .map(|_| ())
    }

    /// [`DynamoDb::check_update`] of an UpdateItem request.
    pub(super) fn check_update_item(&self, request: &UpdateItemFluentBuilder) -> StoreResult<()> {
        let empty = HashMap::new();
        self.check_update(
            request.get_table_name().as_deref().unwrap_or_default(),
            request.get_key().as_ref().unwrap_or(&empty),
            request
                .get_update_expression()
                .as_deref()
                .unwrap_or_default(),
            request.get_expression_attribute_names().as_ref(),
            request.get_expression_attribute_values().as_ref(),
        )
    }

    /// Checks a transaction before it is sent: every item and update as above, at most 100
    /// actions, and at most 4 MB of items in all (an update, delete or condition check counted
    /// as the largest item it may touch).
    pub(super) fn check_transaction<'a>(
        &self,
        items: impl IntoIterator<Item = &'a TransactWriteItem>,
    ) -> StoreResult<()> {
        let mut total = 0;
        for (i, item) in items.into_iter().enumerate() {
            if i == TRANSACTION_ACTIONS {
                // Callers split their work; more is our mistake, not the input's.
                return Err(StoreError::Unavailable(anyhow::anyhow!(
                    "a transaction of more than {TRANSACTION_ACTIONS} actions"
                )));
            }
            total += match self.measure(item)? {
                Measured::Item(size) => size,
                Measured::Update | Measured::Other => ITEM_LIMIT,
            };
        }
        if total > TRANSACTION_LIMIT {
            return Err(StoreError::TooLarge {
                what: "transaction".to_owned(),
                size: total,
                limit: TRANSACTION_LIMIT,
            });
        }
        Ok(())
    }

    fn measure(&self, write: &TransactWriteItem) -> StoreResult<Measured> {
        if let Some(put) = write.put() {
            return self
                .check_put(put.table_name(), put.item())
                .map(Measured::Item);
        }
        if let Some(update) = write.update() {
            self.check_update(
                update.table_name(),
                update.key(),
                update.update_expression(),
                update.expression_attribute_names(),
                update.expression_attribute_values(),
            )?;
            return Ok(Measured::Update);
        }
        Ok(Measured::Other)
    }
}

/// `kind.path` of the part that makes `item` large: the largest attribute, and within a map
/// its largest member, down to a value that is not a map. The wrappers every item has (`record`,
/// `value`, `config`) are left out of the name; a snapshot is named whole (its body is one
/// JSON text).
fn field_of(kind: &str, item: &Item) -> String {
    let mut path = kind.to_owned();
    if kind == "snapshot" {
        return path;
    }
    let mut level = Some(item);
    while let Some(map) = level.take() {
        let Some((name, value)) = map.iter().max_by_key(|(n, v)| n.len() + value_size(v)) else {
            break;
        };
        // Only the schema's own names: a map keyed by the input (trigger names, asset names)
        // is named by itself, never by what its keys hold.
        let schema_name = name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !schema_name {
            break;
        }
        if !matches!(name.as_str(), "record" | "value" | "config") {
            path.push('.');
            path.push_str(name);
        }
        level = value.as_m().ok();
    }
    path
}

/// The actions of an update expression's SET clauses (REMOVE only makes an item smaller);
/// `None` when it has ADD or DELETE clauses.
fn clauses(expression: &str) -> Option<Vec<String>> {
    let mut actions = Vec::new();
    let mut clause = "";
    let mut current = String::new();
    let mut depth = 0usize;
    let flush = |clause: &str, current: &mut String, actions: &mut Vec<String>| {
        if clause.eq_ignore_ascii_case("SET") && !current.trim().is_empty() {
            actions.push(current.trim().to_owned());
        }
        current.clear();
    };
    for word in expression.split_inclusive(char::is_whitespace) {
        let bare = word.trim();
        if depth == 0
            && ["SET", "REMOVE", "ADD", "DELETE"]
                .iter()
                .any(|k| bare.eq_ignore_ascii_case(k))
        {
            flush(clause, &mut current, &mut actions);
            if bare.eq_ignore_ascii_case("ADD") || bare.eq_ignore_ascii_case("DELETE") {
                return None;
            }
            clause = if bare.eq_ignore_ascii_case("SET") {
                "SET"
            } else {
                "REMOVE"
            };
            continue;
        }
        for c in word.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    flush(clause, &mut current, &mut actions);
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
    }
    flush(clause, &mut current, &mut actions);
    Some(actions)
}

/// A document path with its `#name` placeholders replaced and list indexes dropped.
fn resolve(path: &str, names: &HashMap<String, String>) -> String {
    path.split('.')
        .map(|part| {
            let part = part.split('[').next().unwrap_or(part).trim();
            names.get(part).map_or(part, String::as_str)
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The most an operand can make its target: its `:value` placeholders, and a number's worth
/// for arithmetic.
fn operand_size(operand: &str, values: &HashMap<String, AttributeValue>) -> usize {
    let mut size = 0;
    let mut rest = operand;
    while let Some(at) = rest.find(':') {
        let name: String = rest[at..]
            .chars()
            .enumerate()
            .take_while(|(i, c)| *i == 0 || c.is_ascii_alphanumeric() || *c == '_')
            .map(|(_, c)| c)
            .collect();
        // An unknown placeholder is DynamoDB's refusal to make; count nothing for it.
        size += values.get(&name).map_or(0, value_size);
        rest = &rest[at + name.len().max(1)..];
    }
    if operand.contains('+') || operand.contains('-') {
        size = size.max(MAX_NUMBER);
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use proptest::prelude::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect()
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    // The developer guide's rules, one by one ("Item sizes and formats").
    #[test]
    fn strings_are_their_name_and_utf8_bytes() {
        assert_eq!(item_size(&item(&[("name", s("abc"))])), 4 + 3);
        // "é" is 2 bytes, "€" 3, "𝄞" 4: bytes, not characters.
        assert_eq!(item_size(&item(&[("né", s("€𝄞"))])), 3 + 7);
    }

    #[test]
    fn binary_is_its_raw_bytes_not_its_base64() {
        let blob = AttributeValue::B(Blob::new(vec![0u8; 10]));
        assert_eq!(item_size(&item(&[("b", blob)])), 1 + 10);
    }

    #[test]
    fn booleans_and_null_are_one_byte() {
        let i = item(&[
            ("yes", AttributeValue::Bool(true)),
            ("nil", AttributeValue::Null(true)),
        ]);
        assert_eq!(item_size(&i), 3 + 1 + 3 + 1);
    }

    #[test]
    fn empty_list_or_map_is_three_bytes() {
        assert_eq!(item_size(&item(&[("l", AttributeValue::L(vec![]))])), 1 + 3);
        assert_eq!(
            item_size(&item(&[("m", AttributeValue::M(HashMap::new()))])),
            1 + 3
        );
    }

    #[test]
    fn list_and_map_elements_cost_one_byte_each_plus_their_size() {
        let list = AttributeValue::L(vec![s("ab"), AttributeValue::Bool(false)]);
        assert_eq!(item_size(&item(&[("l", list)])), 1 + 3 + (1 + 2) + (1 + 1));
        let map = AttributeValue::M(item(&[("key", s("value")), ("n", s(""))]));
        assert_eq!(
            item_size(&item(&[("m", map)])),
            1 + 3 + (1 + 3 + 5) + (1 + 1)
        );
    }

    #[test]
    fn sets_are_the_sum_of_their_members() {
        let ss = AttributeValue::Ss(vec!["a".into(), "bcd".into()]);
        assert_eq!(item_size(&item(&[("ss", ss)])), 2 + 4);
        let ns = AttributeValue::Ns(vec!["12".into(), "1234".into()]);
        assert_eq!(item_size(&item(&[("ns", ns)])), 2 + 2 + 3);
    }

    #[test]
    fn numbers_are_a_byte_per_two_significant_digits_plus_one() {
        for (n, size) in [
            ("0", 1),
            ("7", 2),
            ("15", 2),
            ("123", 3),
            ("1234", 3),
            ("100", 2),
            ("0.001", 2),
            ("000123000", 3),
            ("12345678901234567890", 11),
            ("1.5", 3),
            ("1.5e1", 2),
            ("-15", 3),
        ] {
            assert_eq!(number_size(n), size, "{n}");
        }
        // 38 significant digits: 19 or 20 base-100 digits, at most 21 bytes.
        assert_eq!(number_size(&"9".repeat(38)), 20);
        assert_eq!(number_size(&format!("9.{}", "9".repeat(37))), 21);
    }

    #[test]
    fn update_expressions_split_into_set_actions() {
        let actions =
            clauses("SET #a = :a, b.c = if_not_exists(b.c, :zero) + :one REMOVE d, e SET f = :f")
                .unwrap_or_default();
        assert_eq!(
            actions,
            [
                "#a = :a",
                "b.c = if_not_exists(b.c, :zero) + :one",
                "f = :f"
            ]
        );
        assert!(clauses("ADD n :one").is_none());
    }

    fn value() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            ".{0,20}".prop_map(AttributeValue::S),
            "-?[0-9]{1,20}(\\.[0-9]{1,10})?".prop_map(AttributeValue::N),
            any::<bool>().prop_map(AttributeValue::Bool),
            proptest::collection::vec(any::<u8>(), 0..20)
                .prop_map(|b| AttributeValue::B(Blob::new(b))),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(AttributeValue::L),
                proptest::collection::hash_map("[a-z]{1,8}", inner, 0..6)
                    .prop_map(AttributeValue::M),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_map_is_at_least_the_sum_of_its_parts(
            parts in proptest::collection::hash_map("[a-z]{1,8}", value(), 0..8)
        ) {
            let whole = value_size(&AttributeValue::M(parts.clone()));
            let sum: usize = parts.iter().map(|(n, v)| n.len() + value_size(v)).sum();
            prop_assert!(whole >= sum);
            prop_assert_eq!(item_size(&parts), sum);
        }

        #[test]
        fn adding_content_never_makes_an_item_smaller(
            base in proptest::collection::hash_map("[a-z]{1,8}", value(), 0..8),
            name in "[A-Z]{1,8}",
            extra in value(),
            text in ".{0,40}",
        ) {
            let before = item_size(&base);
            let mut more = base.clone();
            more.insert(name, extra.clone());
            prop_assert!(item_size(&more) > before);
            // A longer string, a longer list, a map with one more member: larger.
            let longer_text = format!("{text}x");
            prop_assert!(value_size(&s(&longer_text)) > value_size(&s(&text)));
            let list = AttributeValue::L(base.values().cloned().collect());
            let mut longer = base.values().cloned().collect::<Vec<_>>();
            longer.push(extra);
            prop_assert!(value_size(&AttributeValue::L(longer)) > value_size(&list));
        }

        #[test]
        fn numbers_take_at_most_twenty_two_bytes(n in "-?[0-9]{1,28}(\\.[0-9]{0,10})?") {
            let digits = n.bytes().filter(u8::is_ascii_digit).count();
            prop_assert!(number_size(&n) <= MAX_NUMBER);
            prop_assert!(number_size(&n) <= digits.div_ceil(2) + 3);
        }
    }
}
