//! Reading requests: the route API Gateway matched, path parameters, JSON bodies (with the path
//! of the offending field on error), the idempotency key; and writing JSON responses.

use std::str::FromStr;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, Response};
use crate::domain::validation::FieldError;

/// Largest request body accepted (templates included).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The route key API Gateway matched, e.g. `GET /events/{eventId}/configuration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route(pub String);

pub fn route(request: &Request) -> Route {
    let key = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
        _ => None,
    };
    Route(key.unwrap_or_else(|| format!("{} {}", request.method(), request.uri().path())))
}

pub fn request_id(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

/// The public base URL clients reach Herald's API at: `configured` (the deployment's
/// `PUBLIC_API_URL`, e.g. a custom domain) or the domain API Gateway received the request on.
pub fn public_base_url(request: &Request, configured: Option<&str>) -> String {
    if let Some(base) = configured {
        return base.trim_end_matches('/').to_owned();
    }
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.domain_name.is_some() => {
            format!("https://{}", ctx.domain_name.as_deref().unwrap_or_default())
        }
        _ => format!(
            "https://{}",
            request
                .uri()
                .authority()
                .map_or("localhost", |a| a.as_str())
        ),
    }
}

/// The full public URL the client called (scheme, host, path, raw query), as a provider that
/// signs its callbacks' URL (Twilio) computed it.
pub fn public_url(request: &Request, configured: Option<&str>) -> String {
    let path = match (configured, request.request_context_ref()) {
        // API Gateway's raw path includes a named stage; the configured base stands in for it.
        (None, Some(RequestContext::ApiGatewayV2(ctx))) if ctx.http.path.is_some() => {
            ctx.http.path.clone().unwrap_or_default()
        }
        _ => request.uri().path().to_owned(),
    };
    let mut url = public_base_url(request, configured) + &path;
    if let Some(query) = request.uri().query().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// A query string parameter (the first, if repeated), as sent.
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

pub fn path_param<T: FromStr>(request: &Request, name: &str) -> Result<T, ApiError> {
    let raw = request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .ok_or_else(|| FieldError::required(format!("path.{name}")))?;
    raw.parse().map_err(|_| {
        FieldError::invalid(
            format!("path.{name}"),
            format!("{raw:?} is not a valid {name}"),
        )
        .into()
    })
}

pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.is_empty() {
        return Err(FieldError::required("body").into());
    }
    if bytes.len() > MAX_BODY_BYTES {
        return Err(FieldError::new(
            "too_large",
            "body",
            format!("request bodies are at most {MAX_BODY_BYTES} bytes"),
        )
        .into());
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            "the body is not valid JSON".to_owned()
        } else {
            // serde's messages name the problem without echoing values.
            inner
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        ApiError::BadRequest(FieldError::invalid(field, message))
    })
}

/// The `Idempotency-Key` header: 1-255 printable ASCII characters.
pub fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FieldError::invalid(
            "header.Idempotency-Key",
            "must be 1-255 printable ASCII characters",
        )
        .into());
    }
    Ok(Some(key.to_owned()))
}

pub fn respond<T: Serialize>(status: u16, body: &T) -> Result<Response, ApiError> {
    let json = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.into()))?;
    lambda_http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(json))
        .map_err(|e| ApiError::Internal(e.into()))
}

pub fn no_content() -> Result<Response, ApiError> {
    lambda_http::Response::builder()
        .status(204)
        .body(Body::Empty)
        .map_err(|e| ApiError::Internal(e.into()))
}
