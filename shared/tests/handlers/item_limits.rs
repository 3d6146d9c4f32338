//! A template or brand too large for one DynamoDB item never reaches a store: through the API
//! the request limit (256 KiB) refuses it first, naming the body, and nothing is written. (The
//! store's own check, for writers the request limit does not cover, is tested with the DynamoDB
//! adapters: `store::dynamodb::limit_tests`.)

use std::sync::Arc;

use async_trait::async_trait;
use herald_shared::App;
use herald_shared::api;
use herald_shared::credentials::OpenCredentials;
use herald_shared::domain::provider::ProviderSettings;
use herald_shared::domain::snapshot::CheckOutcome;
use herald_shared::providers::{Accepted, ChannelSender, CredentialChecker, Outbound, SendError};
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

/// DynamoDB's item limit, as the store checks it.
const ITEM_LIMIT: usize = herald_shared::store::dynamodb::item_size::ITEM_LIMIT;

struct Unused;

#[async_trait]
impl CredentialChecker for Unused {
    async fn check(&self, _: &ProviderSettings, _: &OpenCredentials) -> CheckOutcome {
        unreachable!("no provider is checked here")
    }
}

#[async_trait]
impl ChannelSender for Unused {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        _: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        unreachable!("nothing is sent here")
    }
}

fn fixture(name: &str, body: Option<Value>) -> Value {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut event: Value = serde_json::from_str(&text).expect("fixture is JSON");
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    event
}

async fn call(app: &App, event: Value) -> (u16, Value) {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event");
    let response = api::serve_any(app, request)
        .await
        .expect("handlers answer every request");
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (response.status().as_u16(), body)
}

fn app() -> App {
    App::over_memory(
        Arc::new(MemoryStore::default()),
        Arc::new(Unused),
        Arc::new(Unused),
    )
}

#[tokio::test]
async fn a_template_too_large_for_an_item_is_a_4xx_naming_its_field_and_writes_nothing() {
    let app = app();
    // Within every per-field limit, yet past the item limit: 100,000 four-byte characters of
    // body, a full subject, 50 assets of 2,048 characters.
    let assets: serde_json::Map<String, Value> = (0..50)
        .map(|i| {
            (
                format!("asset{i}"),
                json!(format!("https://cdn.example/{}", "a".repeat(2000))),
            )
        })
        .collect();
    let body = json!({
        "subject": "\u{1D11E}".repeat(998),
        "body": "\u{1D11E}".repeat(100_000),
        "variables": [],
        "brand_assets": assets,
    });
    assert!(body.to_string().len() > ITEM_LIMIT);
    let (status, error) = call(&app, fixture("config-api/put-tenant-template", Some(body))).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");
    assert_eq!(error["error"]["field"], "body");
    let (status, listed) = call(&app, fixture("config-api/list-tenant-templates", None)).await;
    assert_eq!(status, 200);
    assert!(
        listed["items"].as_array().is_some_and(Vec::is_empty),
        "{listed}"
    );
}

#[tokio::test]
async fn a_brand_too_large_for_an_item_is_a_4xx_naming_its_field_and_writes_nothing() {
    let app = app();
    let body = json!({
        "display_name": "Acme",
        "footer_text": "f".repeat(ITEM_LIMIT),
    });
    let (status, error) = call(&app, fixture("config-api/put-tenant-brand", Some(body))).await;
    assert!((400..500).contains(&status), "{status}: {error}");
    assert!(error["error"]["field"].is_string(), "{error}");
    let (status, brand) = call(&app, fixture("config-api/get-tenant-brand", None)).await;
    assert!(
        status == 404 || brand.get("footer_text").is_none_or(Value::is_null),
        "{status}: {brand}"
    );
}
