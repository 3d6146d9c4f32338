//! Reading requests: the route API Gateway matched, path parameters, JSON bodies (with the path
//! of the offending field on error), the idempotency key; and writing JSON responses.

use std::str::FromStr;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::strict::Strict;
use super::{ApiError, Response};
use crate::domain::validation::{FieldError, split_limit_error};

/// Largest request body accepted (templates included), well under API Gateway's and
/// Lambda's payload limits: anything larger is 413 `payload_too_large` before it is parsed.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Longest field path or message a parsing error repeats: paths hold map keys (variable names)
/// and serde's messages the odd unknown name, which are the client's text.
const MAX_ERROR_TEXT: usize = 200;

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

/// The public base URL clients reach Herald's API at, stage included: `configured` (the
/// deployment's `PUBLIC_API_URL`, e.g. a custom domain with its base path) or the domain API
/// Gateway received the request on, followed by the stage when it is a named one
/// (`https://{api}.execute-api.{region}.amazonaws.com/v1`), as clients call it there.
pub fn public_base_url(request: &Request, configured: Option<&str>) -> String {
    if let Some(base) = configured {
        return base.trim_end_matches('/').to_owned();
    }
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.domain_name.is_some() => {
            let domain = ctx.domain_name.as_deref().unwrap_or_default();
            match named_stage(ctx.stage.as_deref()) {
                Some(stage) => format!("https://{domain}/{stage}"),
                None => format!("https://{domain}"),
            }
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
/// signs its callbacks' URL (Twilio) computed it: the public base URL and the request's path
/// within the stage.
pub fn public_url(request: &Request, configured: Option<&str>) -> String {
    let mut url = public_base_url(request, configured) + &api_path(request);
    if let Some(query) = request.uri().query().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The request's path within the API, as its route keys are written (`/webhooks/twilio/...`).
/// API Gateway's HTTP API puts a named stage in front of it in `rawPath` (on a custom domain
/// too, whatever the API mapping's key), and lambda_http keeps it in the request's URI, so the
/// stage is taken off here.
pub fn api_path(request: &Request) -> String {
    let path = request.uri().path();
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => named_stage(ctx.stage.as_deref()),
        _ => None,
    };
    let Some(stage) = stage else {
        return path.to_owned();
    };
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/".to_owned(),
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => path.to_owned(),
    }
}

/// A stage that appears in URLs: any but API Gateway's `$default`.
fn named_stage(stage: Option<&str>) -> Option<&str> {
    stage.filter(|s| !s.is_empty() && *s != "$default")
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
    // The value is not repeated: it is the client's text, of any length.
    raw.parse().map_err(|_| {
        FieldError::invalid(format!("path.{name}"), format!("not a valid {name}")).into()
    })
}

/// The request's JSON body as `T`, strictly: exactly one JSON value and nothing after it,
/// structs only from objects at every level, every bound of `T`'s types enforced while it is
/// read. Every handler reads its body here. Errors name the field (`recipients[3].to`).
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
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    parse_json(bytes).map_err(ApiError::BadRequest)
}

/// [`json_body`]'s parsing, for any bytes.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(Strict(&mut *de)).map_err(|e| {
        // `?` stands for a part of the path not known yet (the body ended inside an object).
        let path = e.path().to_string();
        let field = if path == "." || path.contains('?') {
            "body".to_owned()
        } else {
            clip(&path)
        };
        let inner = e.into_inner();
        // serde's messages name the problem; the position is of no use to the client.
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        if inner.is_syntax() || inner.is_eof() {
            // `1e400` is a syntax error to serde_json (a number out of range) and has a field.
            return FieldError::invalid(field, format!("not valid JSON: {message}"));
        }
        let (code, message) = split_limit_error(message);
        FieldError::new(code, field, clip(&without_values(message)))
    })?;
    // One value: `{...} xyz` is not a body.
    de.end().map_err(|_| {
        FieldError::invalid(
            "body",
            "the body is not valid JSON: one value, nothing after it",
        )
    })?;
    Ok(value)
}

/// serde's message without the value it refused (`invalid type: integer `260971234567``, `unknown
/// variant `ada@example.com``): a client's value may be personal data and is never repeated.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (unexpected, expected) = rest.rsplit_once(", expected").unwrap_or((rest, ""));
            // serde writes the refused value after its kind: "integer `5`", "string \"x\"".
            let kind = match unexpected
                .find(" `")
                .into_iter()
                .chain(unexpected.find(" \""))
                .min()
            {
                Some(at) => &unexpected[..at],
                None => unexpected,
            };
            return match expected {
                "" => format!("{prefix}{kind}"),
                e => format!("{prefix}{kind}, expected{e}"),
            };
        }
    }
    for prefix in ["unknown variant `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let name = prefix.trim_end_matches([' ', '`']);
            return match rest.rsplit_once("`, expected") {
                Some((_, expected)) => format!("{name}, expected{expected}"),
                None => name.to_owned(),
            };
        }
    }
    message.to_owned()
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::domain::validation::BoundedList;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        name: String,
        #[serde(default)]
        retention_days: Option<u32>,
        #[serde(default)]
        tags: BoundedList<String, 3>,
        #[serde(default)]
        nested: Option<Box<Settings>>,
    }

    fn refusal(body: &str) -> (&'static str, String) {
        match parse_json::<Settings>(body.as_bytes()) {
            Ok(_) => panic!("{body:.80} was accepted"),
            Err(e) => (e.code.as_str(), e.field),
        }
    }

    #[test]
    fn one_json_value_of_the_expected_kind() {
        assert!(parse_json::<Settings>(br#" {"name": "Gala"} "#).is_ok());
        assert!(parse_json::<Settings>(br#"{"name": "Gala", "nested": {"name": "x"}}"#).is_ok());
        for body in [
            r#"{"name": "Gala"} xyz"#,
            r#"{"name": "Gala"}{"name": "Gala"}"#,
            r#"{"name": "Gala"}]"#,
            r#"{"name": "Gala"}"#.to_owned().as_str().trim_end_matches('}'),
            "{\"name\": \"Gala\"}\0",
        ] {
            assert_eq!(refusal(body), ("invalid", "body".into()), "{body}");
        }
        assert_eq!(refusal("[]"), ("invalid", "body".into()));
        assert_eq!(refusal(r#"["Gala"]"#), ("invalid", "body".into()));
        assert_eq!(
            refusal(r#"{"name": "Gala", "nested": ["x"]}"#),
            ("invalid", "nested".into())
        );
        assert_eq!(refusal("null"), ("invalid", "body".into()));
    }

    #[test]
    fn numbers_out_of_range_name_their_field() {
        for n in [
            "1e400",
            "-1",
            "4294967296",
            "1.5",
            "1e999999999999",
            "-0.0e-400",
        ] {
            let body = format!(r#"{{"name": "Gala", "retention_days": {n}}}"#);
            let (code, field) = refusal(&body);
            assert_eq!(field, "retention_days", "{n}");
            assert_eq!(code, "invalid");
        }
        let digits = "9".repeat(100_000);
        let body = format!(r#"{{"name": "Gala", "retention_days": {digits}}}"#);
        assert_eq!(refusal(&body).1, "retention_days");
    }

    #[test]
    fn lists_and_nesting_are_bounded() {
        assert_eq!(
            refusal(r#"{"name": "Gala", "tags": ["a", "b", "c", "d"]}"#),
            ("too_many", "tags".into())
        );
        let deep = format!(
            "{}{}",
            r#"{"name": "x", "nested": "#.repeat(200),
            "}".repeat(200)
        );
        assert_eq!(refusal(&deep).0, "invalid");
    }

    #[test]
    fn errors_repeat_no_client_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Input {
            to: String,
            channel: crate::domain::Channel,
            count: Option<u32>,
        }
        for (body, field) in [
            (r#"{"to": 260971234567, "channel": "sms"}"#, "to"),
            (r#"{"to": "x", "channel": "ada@example.com"}"#, "channel"),
            (
                r#"{"to": "x", "channel": "sms", "count": "260971234567"}"#,
                "count",
            ),
            (
                r#"{"to": "x", "channel": "sms", "count": -260971234567}"#,
                "count",
            ),
        ] {
            let err = parse_json::<Input>(body.as_bytes()).expect_err(body);
            assert_eq!(err.field, field, "{body}");
            assert!(
                !err.message.contains("260971234567") && !err.message.contains("ada@"),
                "{body}: {}",
                err.message
            );
            assert!(err.message.contains("expected"), "{}", err.message);
        }
    }

    #[test]
    fn errors_repeat_no_long_client_text() {
        let key = "k".repeat(10_000);
        let body = format!(r#"{{"name": "Gala", "{key}": 1}}"#);
        let err = parse_json::<Settings>(body.as_bytes()).expect_err("unknown field");
        assert!(err.message.len() < 400, "{}", err.message.len());
    }

    fn request(body: Body) -> Request {
        let mut request = Request::new(body);
        *request.method_mut() = lambda_http::http::Method::POST;
        request
    }

    #[test]
    fn bodies_over_the_limit_are_413_naming_the_body() {
        let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        let err = json_body::<Settings>(&request(Body::Text(big))).expect_err("too large");
        assert_eq!(err.status(), 413);
        let response = err.into_response();
        let Body::Text(text) = response.body() else {
            panic!("a JSON answer")
        };
        let json: serde_json::Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(json["error"]["code"], "payload_too_large");
        assert_eq!(json["error"]["field"], "body");
        let err = json_body::<Settings>(&request(Body::Empty)).expect_err("empty");
        assert_eq!(err.status(), 400);
    }
}
