//! The HTTP control surface under `/_standin`, mirroring the Rust API for the process mode:
//! health, captured requests, sent messages, status callbacks, fault injection, Twilio delivery
//! outcomes, account (and template) registration and inbound WhatsApp messages.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::json;

use crate::inbound::{self, InboundError, InboundOutcome};
use crate::{
    Accounts, DeliveryOutcome, Fault, MetaInbound, Provider, Shared, TwilioInbound, json_response,
};

const JSON: &str = "application/json";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(health))
        .route("/urls", get(urls))
        .route("/requests", get(requests).delete(clear_journal))
        .route("/messages", get(messages).delete(clear_journal))
        .route("/callbacks", get(callbacks).delete(clear_journal))
        .route("/faults", get(faults).post(add_faults).delete(clear_faults))
        .route(
            "/twilio/outcomes",
            get(outcomes).post(add_outcomes).delete(clear_outcomes),
        )
        .route("/twilio/outcomes/default", put(set_default_outcome))
        .route("/accounts", axum::routing::post(register))
        .route("/meta/inbound", axum::routing::post(meta_inbound))
        .route("/twilio/inbound", axum::routing::post(twilio_inbound))
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such control endpoint",
            )
        })
}

/// The control API's own error shape (Herald's house style).
fn problem(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        JSON,
        &json!({ "error": { "code": code, "message": message.into() } }),
    )
}

#[derive(Deserialize)]
struct ProviderFilter {
    provider: Option<String>,
}

impl ProviderFilter {
    fn parse(&self) -> anyhow::Result<Option<Provider>> {
        self.provider.as_deref().map(str::parse).transpose()
    }
}

async fn health() -> Response {
    json_response(StatusCode::OK, JSON, &json!({ "status": "ok" }))
}

async fn urls(State(shared): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, JSON, &json!(shared.urls.get()))
}

async fn requests(
    State(shared): State<Arc<Shared>>,
    Query(filter): Query<ProviderFilter>,
) -> Response {
    match filter.parse() {
        Ok(provider) => json_response(
            StatusCode::OK,
            JSON,
            &json!(shared.journal.requests(provider)),
        ),
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid_provider", e.to_string()),
    }
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Query(filter): Query<ProviderFilter>,
) -> Response {
    match filter.parse() {
        Ok(provider) => json_response(StatusCode::OK, JSON, &json!(shared.journal.sent(provider))),
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid_provider", e.to_string()),
    }
}

async fn callbacks(
    State(shared): State<Arc<Shared>>,
    Query(filter): Query<ProviderFilter>,
) -> Response {
    match filter.parse() {
        Ok(provider) => json_response(
            StatusCode::OK,
            JSON,
            &json!(shared.journal.callbacks(provider)),
        ),
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid_provider", e.to_string()),
    }
}

async fn clear_journal(State(shared): State<Arc<Shared>>) -> Response {
    shared.journal.clear();
    StatusCode::NO_CONTENT.into_response()
}

fn pending(shared: &Shared) -> serde_json::Value {
    Provider::ALL
        .iter()
        .map(|&p| (p.as_str().to_owned(), json!(shared.faults.len(p))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn faults(State(shared): State<Arc<Shared>>) -> Response {
    json_response(
        StatusCode::OK,
        JSON,
        &json!({ "pending": pending(&shared) }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    provider: String,
    #[serde(default = "one")]
    count: usize,
    status: Option<u16>,
    delay_ms: Option<u64>,
}

fn one() -> usize {
    1
}

async fn add_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: FaultRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    };
    let provider: Provider = match request.provider.parse() {
        Ok(provider) => provider,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_provider", e.to_string()),
    };
    let fault = match Fault::from_parts(request.status, request.delay_ms) {
        Ok(fault) => fault,
        Err(message) => return problem(StatusCode::BAD_REQUEST, "invalid_fault", message),
    };
    shared.faults.push(provider, request.count, fault);
    json_response(
        StatusCode::OK,
        JSON,
        &json!({ "pending": pending(&shared) }),
    )
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

fn outcome_state(shared: &Shared) -> Response {
    json_response(
        StatusCode::OK,
        JSON,
        &json!({
            "pending": shared.callbacks.queued(),
            "default": shared.callbacks.default_outcome(),
        }),
    )
}

async fn outcomes(State(shared): State<Arc<Shared>>) -> Response {
    outcome_state(&shared)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeRequest {
    #[serde(default = "one")]
    count: usize,
    status: String,
    error_code: Option<u32>,
}

async fn add_outcomes(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: OutcomeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    };
    let outcome = match DeliveryOutcome::from_parts(&request.status, request.error_code) {
        Ok(outcome) => outcome,
        Err(message) => return problem(StatusCode::BAD_REQUEST, "invalid_outcome", message),
    };
    shared.callbacks.push(request.count, outcome);
    outcome_state(&shared)
}

async fn set_default_outcome(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<DeliveryOutcome>(&body) {
        Ok(outcome) => {
            shared.callbacks.set_default(outcome);
            outcome_state(&shared)
        }
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid_outcome", e.to_string()),
    }
}

async fn clear_outcomes(State(shared): State<Arc<Shared>>) -> Response {
    shared.callbacks.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn register(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let accounts: Accounts = match serde_json::from_slice(&body) {
        Ok(accounts) => accounts,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    };
    let registered = accounts.counts();
    let ids = shared.registry_mut().register(accounts);
    json_response(
        StatusCode::OK,
        JSON,
        &json!({
            "registered": registered,
            "meta_templates": ids["meta_templates"],
            "twilio_contents": ids["twilio_contents"],
        }),
    )
}

fn inbound_answer(result: Result<InboundOutcome, InboundError>) -> Response {
    match result {
        Ok(outcome) => json_response(StatusCode::OK, JSON, &json!(outcome)),
        Err(e) => problem(e.status, e.code, e.message),
    }
}

async fn meta_inbound(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<MetaInbound>(&body) {
        Ok(request) => inbound_answer(inbound::meta(&shared, request).await),
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    }
}

async fn twilio_inbound(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<TwilioInbound>(&body) {
        Ok(request) => inbound_answer(inbound::twilio(&shared, request).await),
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    }
}
