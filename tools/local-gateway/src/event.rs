//! The API Gateway HTTP API payload (format 2.0) a function receives, and the function's answer
//! mapped back to HTTP as API Gateway maps it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::authorizer::Verified;

/// Who the API is, as `requestContext` tells a function (its stage comes from the template).
#[derive(Debug, Clone)]
pub struct ApiIdentity {
    pub account_id: String,
    pub api_id: String,
}

/// One request as the gateway received it.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The path as the client sent it, a named stage included (`/v1/tenant/brand`): API Gateway
    /// passes it so in `rawPath` and `requestContext.http.path`, and the route key without it.
    pub raw_path: &'a str,
    pub stage: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: IpAddr,
    pub local_port: u16,
    pub request_id: &'a str,
    pub received: OffsetDateTime,
}

/// The v2 event for `incoming` on `route_key`, with the authorizer's verified claims if any.
pub fn build(
    api: &ApiIdentity,
    incoming: &Incoming<'_>,
    route_key: &str,
    path_parameters: &BTreeMap<String, String>,
    verified: Option<&Verified>,
) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in incoming.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        // Header names arrive lower-cased (HTTP/1 parsing); repeats are joined with commas.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let source_ip = incoming.source_ip.to_string();
    headers.insert("x-forwarded-for".into(), json!(source_ip));
    headers.insert(
        "x-forwarded-port".into(),
        json!(incoming.local_port.to_string()),
    );
    headers.insert("x-forwarded-proto".into(), json!("http"));
    headers.insert(
        "x-amzn-trace-id".into(),
        json!(format!(
            "Root=1-{:08x}-{}",
            incoming.received.unix_timestamp(),
            &ulid::Ulid::new().to_string().to_ascii_lowercase()[..24]
        )),
    );

    let domain_name = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_owned();
    let domain_prefix = domain_name
        .split(['.', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let user_agent = headers
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();

    let time = incoming
        .received
        .format(format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();
    let time_epoch =
        i64::try_from(incoming.received.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();

    let mut context = json!({
        "accountId": api.account_id,
        "apiId": api.api_id,
        "domainName": domain_name,
        "domainPrefix": domain_prefix,
        "http": {
            "method": incoming.method,
            "path": incoming.raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": user_agent,
        },
        "requestId": incoming.request_id,
        "routeKey": route_key,
        "stage": incoming.stage,
        "time": time,
        "timeEpoch": time_epoch,
    });
    if let Some(verified) = verified {
        context["authorizer"] = json!({
            "jwt": {"claims": verified.claims, "scopes": verified.scopes}
        });
    }

    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": incoming.raw_path,
        "rawQueryString": incoming.raw_query,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    event["headers"] = Value::Object(headers);
    let query = query_parameters(incoming.raw_query);
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    event["requestContext"] = context;
    if !path_parameters.is_empty() {
        event["pathParameters"] = json!(path_parameters);
    }
    let text = is_text(incoming.headers);
    if !incoming.body.is_empty() {
        event["body"] = if text {
            json!(String::from_utf8_lossy(incoming.body))
        } else {
            json!(BASE64.encode(incoming.body))
        };
    }
    event["isBase64Encoded"] = json!(!incoming.body.is_empty() && !text);
    event
}

/// Query parameters decoded, a repeated name's values joined with commas.
fn query_parameters(raw: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        out.entry(name.into_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

/// Bodies API Gateway passes as text; everything else (form posts included) goes base64.
fn is_text(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || media == "application/json"
        || media.ends_with("+json")
        || media == "application/xml"
        || media.ends_with("+xml")
        || media == "application/javascript"
}

/// The HTTP answer API Gateway makes of a function's result.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: StatusCode, body: &Value) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status,
            headers,
            body: body.to_string().into_bytes(),
        }
    }

    pub fn message(status: StatusCode, message: &str) -> Self {
        Self::json(status, &json!({"message": message}))
    }
}

/// Maps a function's result: a v2 response object (`statusCode`, `headers`, `cookies`, `body`,
/// `isBase64Encoded`), or any other JSON value, which becomes a 200 `application/json` body.
pub fn answer(result: &Value) -> Answer {
    let Some(status) = result.get("statusCode") else {
        let body = match result {
            Value::String(s) => s.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        let mut answer = Answer::json(StatusCode::OK, &Value::Null);
        answer.body = body;
        return answer;
    };
    let Some(status) = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return Answer::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let mut headers = HeaderMap::new();
    if let Some(map) = result.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(name, value);
            }
        }
    }
    for cookie in result
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    let text = result
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = if result.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match BASE64.decode(text) {
            Ok(bytes) => bytes,
            Err(_) => {
                return Answer::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        }
    } else {
        text.as_bytes().to_vec()
    };
    Answer {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_parameters_are_comma_joined() {
        let q = query_parameters("a=1&b=x%20y&a=2");
        assert_eq!(q["a"], "1,2");
        assert_eq!(q["b"], "x y");
    }

    #[test]
    fn response_objects_and_bare_values_are_mapped() {
        let a = answer(&json!({
            "statusCode": 201,
            "headers": {"content-type": "text/plain", "x-n": 1},
            "cookies": ["a=1", "b=2; HttpOnly"],
            "body": "aGk=",
            "isBase64Encoded": true
        }));
        assert_eq!(a.status, StatusCode::CREATED);
        assert_eq!(a.body, b"hi");
        assert_eq!(a.headers.get_all(header::SET_COOKIE).iter().count(), 2);
        assert_eq!(
            a.headers.get("x-n").map(HeaderValue::as_bytes),
            Some(&b"1"[..])
        );

        let bare = answer(&json!({"ok": true}));
        assert_eq!(bare.status, StatusCode::OK);
        assert_eq!(bare.body, br#"{"ok":true}"#);
        assert_eq!(
            bare.headers
                .get(header::CONTENT_TYPE)
                .map(HeaderValue::as_bytes),
            Some(&b"application/json"[..])
        );
    }
}
