//! The layer in front of every provider: records the request, applies an injected fault if one is
//! queued, then hands over to the provider's handlers and notes the status answered.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::journal::CapturedRequest;
use crate::{Fault, Provider, Shared, africastalking, brevo, meta, twilio};

/// Largest request body accepted; providers cap far lower, this only bounds memory.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// `seq` of the captured request, for handlers that record sent messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestSeq(pub(crate) u64);

#[derive(Clone)]
pub(crate) struct Gate {
    shared: Arc<Shared>,
    provider: Provider,
}

impl Gate {
    pub(crate) fn new(shared: Arc<Shared>, provider: Provider) -> Self {
        Self { shared, provider }
    }
}

pub(crate) async fn gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let provider = gate.provider;
    let (mut parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();

    let fault = gate.shared.faults.take(provider);
    let seq = gate.shared.journal.record(CapturedRequest {
        seq: 0,
        provider,
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
        received_at: OffsetDateTime::now_utc(),
        status: None,
        fault,
    });
    parts.extensions.insert(RequestSeq(seq));
    let request = Request::from_parts(parts, Body::from(body));

    let response = match fault {
        Some(Fault::Status(status)) => fault_response(provider, status),
        Some(Fault::Delay(delay)) => {
            hold(&gate.shared, delay).await;
            next.run(request).await
        }
        None => next.run(request).await,
    };

    let status = response.status().as_u16();
    gate.shared.journal.set_status(seq, status);
    // Path and status only: bodies, query strings and headers carry numbers and credentials.
    tracing::info!(%provider, %method, %path, status, seq, fault = ?fault, "provider request");
    response
}

/// Waits out a delay fault, cut short if the server is shutting down.
async fn hold(shared: &Shared, delay: Duration) {
    let mut stopping = shared.stopping.subscribe();
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = stopping.wait_for(|&stopping| stopping) => {}
    }
}

/// The provider's own error response for an injected status.
fn fault_response(provider: Provider, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match provider {
        Provider::Twilio => twilio::fault_response(status),
        Provider::AfricasTalking => africastalking::fault_response(status),
        Provider::Brevo => brevo::fault_response(status),
        Provider::Meta => meta::fault_response(status),
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
