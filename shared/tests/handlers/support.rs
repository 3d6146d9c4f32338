//! What the handler tests share: sample requests from `events/`, ways to adjust them, and
//! provider ports for tests that do not exercise providers.

use async_trait::async_trait;
use herald_shared::credentials::OpenCredentials;
use herald_shared::domain::provider::ProviderSettings;
use herald_shared::domain::snapshot::CheckOutcome;
use herald_shared::providers::{Accepted, ChannelSender, CredentialChecker, Outbound, SendError};
use serde_json::{Value, json};

/// Serves `event` (an API Gateway request) with the handler of the function that owns its route,
/// as API Gateway would: the status, the JSON body (`Null` when there is none) and the headers.
pub async fn serve(
    app: &herald_shared::App,
    event: Value,
) -> (u16, Value, std::collections::HashMap<String, String>) {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event");
    let response = herald_shared::api::serve_any(app, request)
        .await
        .expect("handlers answer every request");
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (response.status().as_u16(), body, headers)
}

/// [`serve`], insisting on a 2xx: the JSON body.
pub async fn ok(app: &herald_shared::App, event: Value) -> Value {
    let route = event["routeKey"].clone();
    let (status, body, _) = serve(app, event).await;
    assert!(
        (200..300).contains(&status),
        "{route} answered {status}: {body}"
    );
    body
}

/// The `(code, field)` of each problem in an error answer's `problems`.
pub fn problems(body: &Value) -> Vec<(String, String)> {
    body["error"]["problems"]
        .as_array()
        .map(|problems| {
            problems
                .iter()
                .map(|p| {
                    (
                        p["code"].as_str().unwrap_or_default().to_owned(),
                        p["field"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A sample API Gateway request from `events/` (`name` without `.json`).
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A sample request with its body, path parameters, headers or JWT claims changed.
pub trait Adjust {
    fn body(self, body: Value) -> Self;
    fn path(self, name: &str, value: &str) -> Self;
    fn header(self, name: &str, value: &str) -> Self;
    fn claim(self, name: &str, value: &str) -> Self;
    /// Adds a query parameter (to `queryStringParameters` and `rawQueryString`).
    fn query(self, name: &str, value: &str) -> Self;
}

impl Adjust for Value {
    fn body(mut self, body: Value) -> Self {
        self["body"] = json!(body.to_string());
        self
    }
    fn path(mut self, name: &str, value: &str) -> Self {
        self["pathParameters"][name] = json!(value);
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self["headers"][name] = json!(value);
        self
    }
    fn claim(mut self, name: &str, value: &str) -> Self {
        self["requestContext"]["authorizer"]["jwt"]["claims"][name] = json!(value);
        self
    }
    fn query(mut self, name: &str, value: &str) -> Self {
        self["queryStringParameters"][name] = json!(value);
        let raw = self["rawQueryString"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pair = format!("{name}={value}");
        self["rawQueryString"] = json!(if raw.is_empty() {
            pair
        } else {
            format!("{raw}&{pair}")
        });
        self
    }
}

/// Every live credential check passes.
pub struct PassingChecker;

#[async_trait]
impl CredentialChecker for PassingChecker {
    async fn check(&self, _: &ProviderSettings, _: &OpenCredentials) -> CheckOutcome {
        CheckOutcome::Passed {
            detail: "ok".into(),
        }
    }
}

/// Every provider takes every message, naming it `pm-<message id>`.
pub struct AcceptingSender;

#[async_trait]
impl ChannelSender for AcceptingSender {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        Ok(Accepted {
            provider_message_id: format!("pm-{}", message.message_id),
            cost: None,
            segments: None,
        })
    }
}
