//! The HTTP APIs, one module per Lambda function: request in, response out, over the ports in
//! [`App`]. Each function's `main` only builds the [`App`] and hands requests to `handle`.

pub mod configuration;
pub mod idempotency;
pub mod preference_centre;
pub mod receipts;
pub mod recipients;
pub mod reports;
pub mod resolution;
pub mod send;
pub mod template_preview;
pub mod tenant_settings;
pub mod test_send;
pub mod webhook_endpoints;
pub mod wizard;

use std::future::Future;

use lambda_http::Request;
use tracing::Instrument as _;

use crate::app::App;
use crate::http::{self, ApiResult, Response};

/// Runs one request in its own span (request id and route, never bodies), turning errors into
/// responses. The function never fails the invocation: a 5xx is an answer too.
pub async fn serve<'a, F, Fut>(
    app: &'a App,
    request: Request,
    handler: F,
) -> Result<Response, lambda_http::Error>
where
    F: FnOnce(&'a App, Request) -> Fut,
    Fut: Future<Output = ApiResult> + 'a,
{
    let route = http::route(&request);
    let span = tracing::info_span!("request", request_id = %http::request_id(&request), route = %route.0, status = tracing::field::Empty);
    async move {
        let response = handler(app, request)
            .await
            .unwrap_or_else(http::ApiError::into_response);
        tracing::Span::current().record("status", response.status().as_u16());
        tracing::info!("handled");
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Serves a request with the handler of whichever function owns its route, as API Gateway
/// would route it: for tests and local tools that drive every API in one process.
pub async fn serve_any(app: &App, request: Request) -> Result<Response, lambda_http::Error> {
    let route = http::route(&request).0;
    let path = route.split_once(' ').map_or(route.as_str(), |(_, p)| p);
    if path.ends_with("/configuration") {
        serve(app, request, resolution::handle).await
    } else if path.contains("/wizard/") || path.contains("/snapshots") {
        serve(app, request, wizard::handle).await
    } else if path.starts_with("/webhooks/") {
        let receiver = receipts::Receiver::new(app.clone())?;
        Ok(receipts::handle(&receiver, request)
            .await
            .unwrap_or_else(http::ApiError::into_response))
    } else if path.starts_with("/preferences/") {
        preference_centre::serve(app, request).await
    } else if path.contains("/messages") || path.contains("/triggers/") || route == test_send::ROUTE
    {
        serve(app, request, send::handle).await
    } else {
        serve(app, request, configuration::handle).await
    }
}
