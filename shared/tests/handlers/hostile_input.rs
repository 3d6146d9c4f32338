//! Hostile input against every route the HTTP functions serve (the routes of
//! `infra/template.yaml`, each sent as its sample in `events/`): arbitrary bytes, near-valid
//! JSON (trailing garbage, arrays for objects, huge numbers and strings, deep nesting, NUL
//! bytes), arbitrary path parameters and query strings, from a caller with the right tenant and
//! role. Nothing may panic, no client mistake may answer 5xx, and every 4xx carries
//! `{"error": {"code", "message"}}`. Deterministic (fixed seed, no failure files), in memory.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture};
use base64::Engine as _;
use futures::FutureExt as _;
use herald_shared::App;
use herald_shared::api;
use herald_shared::store::memory::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};

/// Cases per route: with 65 routes, a few seconds in a debug build.
const CASES: u32 = 96;

/// Every `METHOD /path` the template gives API Gateway.
fn template_routes() -> Vec<String> {
    let path = format!("{}/../infra/template.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut routes: Vec<String> = text
        .lines()
        .filter(|l| l.contains("Type: HttpApi") && l.contains("Method:"))
        .filter_map(|l| {
            let method = l.split("Method: ").nth(1)?.split(',').next()?.trim();
            let path = l.split("Path: ").nth(1)?;
            let path = match path.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next()?,
                None => path.split([',', '}', ' ']).next()?,
            };
            Some(format!("{method} {path}"))
        })
        .collect();
    routes.sort();
    routes.dedup();
    routes
}

/// The sample request of every route, by route key: the one sent by the caller allowed to
/// (files named `-as-...` or `-other-tenant` show refusals).
fn route_samples() -> BTreeMap<String, Value> {
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = Vec::new();
    for function in std::fs::read_dir(&dir).expect("events/").flatten() {
        for file in std::fs::read_dir(function.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "json") {
                let rel = path.strip_prefix(&dir).expect("under events/");
                names.push(rel.with_extension("").to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    let mut samples = BTreeMap::new();
    for name in names {
        if name.contains("-as-") || name.contains("other-tenant") {
            continue;
        }
        let sample = fixture(&name);
        if let Some(route) = sample["routeKey"].as_str() {
            samples.entry(route.to_owned()).or_insert(sample);
        }
    }
    samples
}

#[test]
fn every_route_of_the_template_has_a_sample() {
    let samples = route_samples();
    let routes = template_routes();
    assert!(routes.len() > 60, "{routes:?}");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !samples.contains_key(*r))
        .collect();
    assert!(missing.is_empty(), "routes without a sample: {missing:?}");
    let unknown: Vec<&String> = samples.keys().filter(|r| !routes.contains(r)).collect();
    assert!(unknown.is_empty(), "samples of no route: {unknown:?}");
}

/// An app with a completed event, providers whose receipt tokens are known, and a signed
/// preference link, so that requests get past "not found" to the parsing of their input.
struct Setup {
    app: App,
    /// Receipt tokens by provider path segment (`twilio`, `brevo`).
    receipt_tokens: BTreeMap<String, String>,
    preference_token: String,
    /// A tenant provider's id, for `{providerId}`.
    provider_id: String,
}

async fn call(app: &App, event: &Value) -> (u16, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("API Gateway event");
    let response = api::serve_any(app, request).await.expect("an answer");
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (response.status().as_u16(), body)
}

async fn ok(app: &App, event: Value) -> Value {
    let (status, body) = call(app, &event).await;
    assert!(
        (200..300).contains(&status),
        "{}: {status} {body}",
        event["routeKey"]
    );
    body
}

fn token_of(url: &Value) -> String {
    url.as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("a URL")
        .to_owned()
}

async fn setup() -> Setup {
    let app = App::over_memory(
        Arc::new(MemoryStore::default()),
        Arc::new(PassingChecker),
        Arc::new(AcceptingSender),
    );
    ok(&app, fixture("config-api/put-event-settings")).await;
    ok(&app, fixture("config-api/put-tenant-brand")).await;
    let twilio = ok(&app, fixture("config-api/create-tenant-provider")).await;
    let brevo = ok(
        &app,
        fixture("config-api/create-tenant-provider").body(
            json!({"channel": "email", "name": "Brevo",
            "settings": {"kind": "brevo", "from_address": "events@acme.example"},
            "credentials": {"api_key": "xkeysib-demo-000000000000"}}),
        ),
    )
    .await;
    for t in ["put-tenant-template", "put-tenant-email-template"] {
        ok(&app, fixture(&format!("config-api/{t}"))).await;
    }
    for (channel, t) in [
        ("sms", "put-tenant-template"),
        ("email", "put-tenant-email-template"),
    ] {
        let put = fixture(&format!("config-api/{t}"))
            .path("category", "rsvp_confirmation")
            .path("channel", channel);
        ok(&app, put).await;
    }
    ok(&app, fixture("wizard-completion/complete-wizard")).await;
    let link = ok(&app, fixture("config-api/create-preference-link")).await;
    let receipt_tokens = [("twilio", &twilio), ("brevo", &brevo)]
        .into_iter()
        .map(|(kind, p)| (kind.to_owned(), token_of(&p["receipts"]["url"])))
        .collect();
    Setup {
        app,
        receipt_tokens,
        preference_token: token_of(&link["url"]),
        provider_id: twilio["id"].as_str().expect("id").to_owned(),
    }
}

/// The sample for `route`, pointed at what [`setup`] made.
fn sample(setup: &Setup, samples: &BTreeMap<String, Value>, route: &str) -> Value {
    let mut event = samples[route].clone();
    if route.contains("/preferences/") {
        event = event.path("token", &setup.preference_token);
    }
    if let Some(kind) = route
        .strip_prefix("POST /webhooks/")
        .and_then(|r| r.split('/').next())
        && let Some(token) = setup.receipt_tokens.get(kind)
    {
        event = event.path("token", token);
    }
    if event["pathParameters"]["providerId"].is_string() {
        event = event.path("providerId", &setup.provider_id);
    }
    event
}

/// Raw JSON texts that no `serde_json::Value` holds (`1e400`) or that are costly to hold.
fn hostile_json() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just("1e-400".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775809".to_owned()),
        Just("0.5".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just(r#""\u0000""#.to_owned()),
        Just(r#""+26097123456a""#.to_owned()),
        Just(r#""+260971234567\u0000""#.to_owned()),
        Just(format!("\"{}\"", " ".repeat(40))),
        Just(format!("\"+1{}\"", "(".repeat(200))),
        Just(r#""9999-12-31T00:00:00-23:59""#.to_owned()),
        Just(r#""0000-01-01T00:00:00+23:59""#.to_owned()),
        (1usize..300).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
        (1usize..300).prop_map(|n| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n))),
        (0usize..40_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        (0usize..12_000).prop_map(|n| format!("[{}]", vec!["\"message.sent\""; n].join(","))),
        "\\PC{0,40}".prop_map(|s| Value::String(s).to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:e}")),
    ]
}

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The places in `value` one can put something else: object fields and array items.
fn slots(value: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(json!(k));
                out.push(path.clone());
                slots(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(json!(i));
                out.push(path.clone());
                slots(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn slot_mut<'a>(value: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        Value::String(k) => v.get_mut(k.as_str()),
        Value::Number(i) => v.get_mut(usize::try_from(i.as_u64()?).ok()?),
        _ => None,
    })
}

/// A body: the sample's, changed in one way.
#[derive(Debug, Clone)]
enum BodyCase {
    Sample,
    Bytes(Vec<u8>),
    Text(String),
    /// The sample's JSON with one slot (by index, modulo their number) set to a raw text.
    Slot(usize, String),
    /// The sample's JSON with one slot removed.
    Without(usize),
    Trailing(String),
    InArray,
    Value(Value),
}

fn body_case() -> impl Strategy<Value = BodyCase> {
    prop_oneof![
        1 => Just(BodyCase::Sample),
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(BodyCase::Bytes),
        2 => "\\PC{0,200}".prop_map(BodyCase::Text),
        6 => (any::<usize>(), hostile_json()).prop_map(|(i, raw)| BodyCase::Slot(i, raw)),
        2 => any::<usize>().prop_map(BodyCase::Without),
        2 => prop_oneof![
            Just(" xyz".to_owned()),
            Just("}".to_owned()),
            Just("\u{0}".to_owned()),
            Just(" {}".to_owned()),
            "\\PC{1,10}",
        ]
        .prop_map(BodyCase::Trailing),
        1 => Just(BodyCase::InArray),
        2 => json_value().prop_map(BodyCase::Value),
        1 => hostile_json().prop_map(BodyCase::Text),
    ]
}

const MARKER: &str = "\u{1}hostile\u{1}";

fn apply_body(mut event: Value, case: &BodyCase) -> Value {
    let sample: Value = event["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_else(|| json!({}));
    let text = match case {
        BodyCase::Sample => return event,
        BodyCase::Bytes(bytes) => {
            event["isBase64Encoded"] = json!(true);
            event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            return event;
        }
        BodyCase::Text(text) => text.clone(),
        BodyCase::Slot(i, raw) => {
            let mut all = Vec::new();
            slots(&sample, &mut Vec::new(), &mut all);
            let mut changed = sample.clone();
            match all.get(i % all.len().max(1)) {
                Some(path) => {
                    if let Some(slot) = slot_mut(&mut changed, path) {
                        *slot = json!(MARKER);
                    }
                    changed
                        .to_string()
                        .replace(&Value::String(MARKER.into()).to_string(), raw)
                }
                None => raw.clone(),
            }
        }
        BodyCase::Without(i) => {
            let mut all = Vec::new();
            slots(&sample, &mut Vec::new(), &mut all);
            let mut changed = sample.clone();
            if let Some((last, parent)) = all.get(i % all.len().max(1)).and_then(|p| p.split_last())
                && let Some(parent) = slot_mut(&mut changed, parent)
            {
                match (parent, last) {
                    (Value::Object(map), Value::String(k)) => {
                        map.remove(k);
                    }
                    (Value::Array(items), Value::Number(n)) => {
                        let n = usize::try_from(n.as_u64().unwrap_or(0)).unwrap_or(0);
                        if n < items.len() {
                            items.remove(n);
                        }
                    }
                    _ => {}
                }
            }
            changed.to_string()
        }
        BodyCase::Trailing(garbage) => format!("{sample}{garbage}"),
        BodyCase::InArray => format!("[{sample}]"),
        BodyCase::Value(value) => value.to_string(),
    };
    event["isBase64Encoded"] = json!(false);
    event["body"] = json!(text);
    event
}

/// Text a client might put where an id, a token or a query value goes.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "[a-z0-9_-]{0,70}",
        Just(String::new()),
        Just("x".repeat(10_000)),
        Just("../../tenant".to_owned()),
        Just("a\u{0}b".to_owned()),
        Just("9999-12-31T00:00:00-23:59".to_owned()),
        Just("0000-01-01T00:00:00+23:59".to_owned()),
        Just("2026-11-01T00:00:00Z".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("1e400".to_owned()),
    ]
}

/// RFC 3339 times anywhere in the calendar, with any offset: the edges of what parses.
fn hostile_time() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(0u16), Just(9999u16), Just(1970u16), 0u16..=9999],
        1u8..=12,
        1u8..=31,
        0u8..24,
        prop_oneof![
            Just("Z".to_owned()),
            (any::<bool>(), 0u8..24, 0u8..60).prop_map(|(minus, h, m)| format!(
                "{}{h:02}:{m:02}",
                if minus { '-' } else { '+' }
            )),
        ],
    )
        .prop_map(|(year, month, day, hour, offset)| {
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:59:59.999999{offset}")
        })
}

#[derive(Debug, Clone)]
struct Case {
    body: BodyCase,
    /// Path parameters replaced, by position among the sample's (modulo their number).
    paths: Vec<(usize, String)>,
    query: Vec<(String, String)>,
    idempotency_key: Option<String>,
}

fn case() -> impl Strategy<Value = Case> {
    let query_value = prop_oneof![hostile_text(), hostile_time()];
    let query_name = prop_oneof![
        Just("from".to_owned()),
        Just("to".to_owned()),
        Just("format".to_owned()),
        Just("tenant".to_owned()),
        Just("after".to_owned()),
        "[a-z]{1,8}",
    ];
    (
        body_case(),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec((any::<usize>(), hostile_text()), 1..3),
        ],
        prop::collection::vec((query_name, query_value), 0..3),
        prop::option::of(prop_oneof!["[a-zA-Z0-9-]{1,40}", hostile_text(),]),
    )
        .prop_map(|(body, paths, query, idempotency_key)| Case {
            body,
            paths,
            query,
            idempotency_key,
        })
}

fn build(sample: &Value, case: &Case) -> Value {
    let mut event = apply_body(sample.clone(), &case.body);
    let names: Vec<String> = event["pathParameters"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for (i, value) in &case.paths {
        if let Some(name) = names.get(i % names.len().max(1)) {
            event["pathParameters"][name] = json!(value);
        }
    }
    // Receipts read their token from the path itself.
    if let Some(kind) = event["routeKey"]
        .as_str()
        .and_then(|r| {
            r.strip_prefix("POST /webhooks/")
                .or(r.strip_prefix("GET /webhooks/"))
        })
        .and_then(|r| r.split('/').next())
        .map(str::to_owned)
    {
        let token = event["pathParameters"]["token"]
            .as_str()
            .unwrap_or_default();
        let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        event["rawPath"] = json!(format!("/v1/webhooks/{kind}/{token}"));
    }
    if !case.query.is_empty() {
        let mut params = event["queryStringParameters"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in &case.query {
            params.insert(k.clone(), json!(v));
        }
        let raw = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default())),
            )
            .finish();
        event["queryStringParameters"] = Value::Object(params);
        event["rawQueryString"] = json!(raw);
    }
    if let Some(key) = &case.idempotency_key {
        event["headers"]["idempotency-key"] = json!(key);
    }
    event
}

/// What every answer to a client's input must be: no panic, no 5xx, a 4xx in the house shape.
async fn check(app: &App, event: &Value) -> Result<(), TestCaseError> {
    let Ok(request) = lambda_http::request::from_str(&event.to_string()) else {
        // API Gateway would not have sent it (lambda_http refuses the event itself).
        return Ok(());
    };
    let answer = AssertUnwindSafe(api::serve_any(app, request))
        .catch_unwind()
        .await
        .map_err(|_| TestCaseError::fail("the handler panicked"))?
        .map_err(|e| TestCaseError::fail(format!("the invocation failed: {e}")))?;
    let status = answer.status().as_u16();
    prop_assert!(status < 500, "answered {}: {:?}", status, answer.body());
    if status >= 400 {
        let body: Value = match answer.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        prop_assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{} answered {} without the error shape: {}",
            event["routeKey"],
            status,
            body
        );
    }
    Ok(())
}

#[test]
fn no_route_panics_or_answers_5xx_for_hostile_input() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let setup = runtime.block_on(setup());
    let samples = route_samples();
    let mut routes = template_routes();
    // Deletions last, so that the other routes find what setup made.
    routes.sort_by_key(|r| r.starts_with("DELETE "));
    for route in routes {
        let sample = sample(&setup, &samples, &route);
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: CASES,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let result = runner.run(&case(), |case| {
            runtime.block_on(check(&setup.app, &build(&sample, &case)))
        });
        if let Err(e) = result {
            panic!("{route}: {e}");
        }
    }
}

// ---- the cases the issue quotes ----

fn answer(setup: &Setup, event: Value) -> (u16, Value) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(call(&setup.app, &event))
}

fn setup_now() -> Setup {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(setup())
}

fn error_of(reply: &(u16, Value)) -> (u16, &str, &str) {
    (
        reply.0,
        reply.1["error"]["code"].as_str().unwrap_or_default(),
        reply.1["error"]["field"].as_str().unwrap_or_default(),
    )
}

fn with_body(mut event: Value, body: String) -> Value {
    event["body"] = json!(body);
    event
}

#[test]
fn trailing_garbage_and_arrays_for_objects_are_refused_and_change_nothing() {
    let s = setup_now();
    let before = answer(&s, fixture("config-api/get-tenant-brand")).1;
    let put = fixture("config-api/put-tenant-brand");
    let valid = put["body"].as_str().expect("body").to_owned();
    for body in [
        format!("{valid} xyz"),
        "[]".to_owned(),
        format!("[{valid}]"),
    ] {
        let reply = answer(&s, with_body(put.clone(), body.clone()));
        assert_eq!(error_of(&reply), (400, "invalid", "body"), "{body}");
    }
    assert_eq!(answer(&s, fixture("config-api/get-tenant-brand")).1, before);
    let settings = with_body(
        fixture("config-api/put-tenant-settings"),
        r#"{"message_retention_days": 30} xyz"#.into(),
    );
    assert_eq!(error_of(&answer(&s, settings)), (400, "invalid", "body"));
}

#[test]
fn huge_numbers_are_a_400_naming_the_field() {
    let s = setup_now();
    let settings = with_body(
        fixture("config-api/put-tenant-settings"),
        r#"{"message_retention_days": 1e400}"#.into(),
    );
    assert_eq!(
        error_of(&answer(&s, settings)),
        (400, "invalid", "message_retention_days")
    );
}

#[test]
fn long_variables_are_refused_before_rendering_on_email_and_sms() {
    let s = setup_now();
    let long = "x".repeat(150_000);
    for (channel, to) in [("sms", "+260971234567"), ("email", "ada@acme.example")] {
        let send = fixture("send-api/send-message").body(json!({
            "category": "invitation", "channel": channel, "to": to,
            "variables": {"guest_name": long, "event_date": "12 Dec"}}));
        let started = std::time::Instant::now();
        let reply = answer(&s, send);
        assert_eq!(
            error_of(&reply),
            (400, "too_long", "variables.guest_name"),
            "{channel}: {}",
            reply.1
        );
        assert!(!reply.1.to_string().contains("xxxx"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn bodies_over_the_limit_are_413() {
    let s = setup_now();
    let big = format!(
        r#"{{"category": "invitation", "channel": "sms", "to": "+260971234567", "variables": {{"note": "{}"}}}}"#,
        "x".repeat(herald_shared::http::MAX_BODY_BYTES)
    );
    let reply = answer(&s, with_body(fixture("send-api/send-message"), big));
    assert_eq!(error_of(&reply), (413, "payload_too_large", "body"));
}

#[test]
fn webhook_events_beyond_the_event_types_are_refused() {
    let s = setup_now();
    let create = fixture("config-api/create-webhook-endpoint").body(json!({
        "url": "https://hooks.acme.example/herald",
        "events": vec!["message.sent"; 10_000]}));
    assert_eq!(error_of(&answer(&s, create)), (400, "too_many", "events"));
}

#[test]
fn ids_longer_than_their_format_are_refused_without_repeating_them() {
    let s = setup_now();
    let long = "a".repeat(10_000);
    let reply = answer(&s, fixture("send-api/get-message").path("eventId", &long));
    assert_eq!(error_of(&reply), (400, "invalid", "path.eventId"));
    assert!(!reply.1.to_string().contains(&long[..100]));
}

#[test]
fn malformed_phone_numbers_are_400_naming_the_recipient() {
    let s = setup_now();
    let forty_spaces = " ".repeat(40);
    let parens = format!("+1{}4155552671", "(".repeat(50));
    for to in [
        "+26097123456a",
        "+260971234567\u{0}",
        forty_spaces.as_str(),
        parens.as_str(),
    ] {
        let send = fixture("send-api/send-message").body(json!({
            "category": "invitation", "channel": "sms", "to": to,
            "variables": {"guest_name": "Ada", "event_date": "12 Dec"}}));
        let reply = answer(&s, send);
        assert_eq!(
            (reply.0, reply.1["error"]["field"].as_str()),
            (400, Some("to")),
            "{to:?}"
        );
        let batch = fixture("send-api/send-batch").body(json!({
            "category": "invitation", "channel": "sms",
            "recipients": [{"to": "+260971234567", "variables": {"guest_name": "Ada", "event_date": "12 Dec"}},
                           {"to": to, "variables": {"guest_name": "Bo", "event_date": "12 Dec"}}]}));
        let reply = answer(&s, batch);
        assert_eq!(
            (reply.0, reply.1["error"]["field"].as_str()),
            (400, Some("recipients[1].to")),
            "{to:?}: {}",
            reply.1
        );
    }
}

#[test]
fn report_periods_beyond_the_calendar_are_400() {
    let s = setup_now();
    for (from, to, field) in [
        (
            "9999-12-31T00:00:00-23:59",
            "9999-12-31T12:00:00Z",
            "query.from",
        ),
        (
            "0000-01-01T00:00:00+23:59",
            "0000-01-02T00:00:00Z",
            "query.from",
        ),
        (
            "9998-12-31T00:00:00Z",
            "9999-12-31T00:00:00-23:59",
            "query.to",
        ),
    ] {
        let mut report = fixture("config-api/get-compliance-report");
        report["queryStringParameters"] = json!({"from": from, "to": to});
        report["rawQueryString"] = json!(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("from", from), ("to", to)])
                .finish()
        );
        assert_eq!(
            error_of(&answer(&s, report)),
            (400, "out_of_range", field),
            "{from} {to}"
        );
    }
}
