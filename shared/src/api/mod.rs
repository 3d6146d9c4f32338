//! The HTTP APIs, one module per Lambda function: request in, response out, over the ports in
//! [`App`]. Each function's `main` only builds the [`App`] and hands requests to `handle`.

pub mod configuration;
pub mod contract;
pub mod idempotency;
pub mod preference_centre;
pub mod preference_page;
pub mod receipts;
pub mod recipients;
pub mod reports;
pub mod resolution;
pub mod routes;
pub mod send;
pub mod template_preview;
pub mod templates;
pub mod tenant_settings;
pub mod test_send;
pub mod webhook_endpoints;
pub mod wizard;

use std::future::Future;

use lambda_http::Request;
use tracing::Instrument as _;

use crate::app::App;
use crate::http::{self, ApiResult, Response};
use routes::{Function, RouteId};

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

/// Serves a request with the handler of the function that owns its route in [`routes`], as API
/// Gateway would route it: for tests and local tools that drive every API in one process.
/// Provider webhooks and preference links are found by their path, as their handlers find them.
pub async fn serve_any(app: &App, request: Request) -> Result<Response, lambda_http::Error> {
    let route = http::route(&request).0;
    let path = route.split_once(' ').map_or(route.as_str(), |(_, p)| p);
    let function = match RouteId::from_key(&route) {
        Some(id) => id.function(),
        None if path.starts_with("/webhooks/") => Function::DeliveryWebhooks,
        None if path.starts_with("/preferences/") => Function::PreferenceCentre,
        // Answered 404 by the configuration API, as API Gateway would for an unknown route.
        None => Function::ConfigApi,
    };
    match function {
        Function::ConfigApi => serve(app, request, configuration::handle).await,
        Function::ConfigResolution => serve(app, request, resolution::handle).await,
        Function::WizardCompletion => serve(app, request, wizard::handle).await,
        Function::SendApi => serve(app, request, send::handle).await,
        Function::DeliveryWebhooks => {
            let receiver = receipts::Receiver::new(app.clone())?;
            Ok(receipts::handle(&receiver, request)
                .await
                .unwrap_or_else(http::ApiError::into_response))
        }
        Function::PreferenceCentre => preference_centre::serve(app, request).await,
    }
}
