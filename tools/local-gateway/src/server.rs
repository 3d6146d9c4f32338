//! The gateway itself: each request is answered as API Gateway's HTTP API would answer it
//! (preflight, route, authorizer, v2 event to the function under `cargo lambda watch`, the
//! function's answer, CORS headers), and the development issuer's keys are served beside it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::authorizer::{JwtAuthorizer, Refusal};
use crate::cors::Cors;
use crate::event::{self, Answer, ApiIdentity, Incoming};
use crate::issuer::DevIssuer;
use crate::routes::RouteTable;
use crate::template::HttpApiSpec;

/// API Gateway's payload limit for HTTP APIs.
const MAX_BODY: usize = 10 * 1024 * 1024;
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// What the gateway serves and where its functions run.
#[derive(Debug)]
pub struct GatewayConfig {
    pub api: HttpApiSpec,
    /// Base URL of `cargo lambda watch` (its invoke API).
    pub functions_url: String,
    pub identity: ApiIdentity,
    /// Serve this issuer's JWKS and discovery document on the gateway's own origin.
    pub dev_issuer: Option<DevIssuer>,
    /// API Gateway gives up on an integration after 30 seconds (503).
    pub integration_timeout: Duration,
}

#[derive(Debug)]
struct Gateway {
    api: HttpApiSpec,
    routes: RouteTable,
    authorizers: HashMap<String, JwtAuthorizer>,
    cors: Option<Cors>,
    functions_url: String,
    identity: ApiIdentity,
    dev_issuer: Option<DevIssuer>,
    base_url: String,
    local_port: u16,
    http: reqwest::Client,
}

/// A gateway serving in the background; dropped, it stops.
#[derive(Debug)]
pub struct RunningGateway {
    pub base_url: String,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RunningGateway {
    /// Serves until the task ends (it does not, unless the listener fails).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("the gateway stopped")
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `config` on `listener` (bind it first: its address is the gateway's base URL, which
/// the development issuer's tokens name as their issuer).
pub async fn serve(listener: TcpListener, config: GatewayConfig) -> anyhow::Result<RunningGateway> {
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .timeout(config.integration_timeout)
        .build()?;
    let keys_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let authorizers = config
        .api
        .authorizers
        .iter()
        .map(|spec| {
            (
                spec.name.clone(),
                JwtAuthorizer::new(spec.clone(), keys_http.clone()),
            )
        })
        .collect();
    let gateway = Arc::new(Gateway {
        routes: RouteTable::new(&config.api.routes),
        authorizers,
        cors: config.api.cors.clone().map(Cors::new),
        functions_url: config.functions_url.trim_end_matches('/').to_owned(),
        identity: config.identity,
        dev_issuer: config.dev_issuer,
        base_url: base_url.clone(),
        local_port: addr.port(),
        http,
        api: config.api,
    });
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(gateway)
        .into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(error = %error, "the gateway stopped serving");
        }
    });
    Ok(RunningGateway {
        base_url,
        addr,
        task,
    })
}

async fn handle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = request_id();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();

    let mut answer = gateway
        .answer(
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
            peer,
            &request_id,
        )
        .await;
    // Outside the stage there is no API, hence no CORS configuration either.
    let in_stage = gateway.api.path_in_stage(&path).is_some();
    if let Some(cors) = &gateway.cors
        && in_stage
        && !Cors::is_preflight(&parts.method, &parts.headers)
    {
        cors.apply(&parts.headers, &mut answer.headers);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        answer.headers.insert("apigw-requestid", value);
    }
    tracing::info!(request_id = %request_id, method = %method, path = %path, status = answer.status.as_u16(), "request");
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

impl Gateway {
    async fn answer(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        body: Body,
        peer: SocketAddr,
        request_id: &str,
    ) -> Answer {
        if let Some(issuer) = &self.dev_issuer
            && method == Method::GET
        {
            match uri.path() {
                JWKS_PATH => return Answer::json(StatusCode::OK, &issuer.jwks()),
                DISCOVERY_PATH => {
                    let document = DevIssuer::discovery(
                        &self.base_url,
                        &format!("{}{JWKS_PATH}", self.base_url),
                    );
                    return Answer::json(StatusCode::OK, &document);
                }
                _ => {}
            }
        }
        // API Gateway serves a named stage under its own first path segment (`/v1/...`) and
        // nothing anywhere else; route keys are matched on the rest of the path.
        let Some(path_in_stage) = self.api.path_in_stage(uri.path()) else {
            return Answer::message(StatusCode::NOT_FOUND, "Not Found");
        };
        if let Some(cors) = &self.cors
            && Cors::is_preflight(method, headers)
        {
            return Answer {
                status: StatusCode::NO_CONTENT,
                headers: cors.preflight(headers),
                body: Vec::new(),
            };
        }

        let Some(matched) = self.routes.select(method.as_str(), path_in_stage) else {
            return Answer::message(StatusCode::NOT_FOUND, "Not Found");
        };
        let route = matched.spec;

        let verified = match &route.authorizer {
            None => None,
            Some(name) => {
                let Some(authorizer) = self.authorizers.get(name) else {
                    return Answer::message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                    );
                };
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                match authorizer.verify(authorization, &route.scopes).await {
                    Ok(verified) => Some(verified),
                    Err(refusal) => return unauthorized(&refusal, &route.scopes),
                }
            }
        };

        let Ok(body) = to_bytes(body, MAX_BODY).await else {
            return Answer::message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        };
        let received = OffsetDateTime::now_utc();
        let incoming = Incoming {
            method: method.as_str(),
            raw_path: uri.path(),
            stage: &self.api.stage,
            raw_query: uri.query().unwrap_or_default(),
            headers,
            body: &body,
            source_ip: peer.ip(),
            local_port: self.local_port,
            request_id,
            received,
        };
        let payload = event::build(
            &self.identity,
            &incoming,
            &route.route_key,
            &matched.path_parameters,
            verified.as_ref(),
        );
        self.invoke(&route.function, &payload).await
    }

    /// Invokes the function through Lambda's invoke API; its errors become API Gateway's 500,
    /// a timeout its 503.
    async fn invoke(&self, function: &str, payload: &Value) -> Answer {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.functions_url
        );
        let sent = self.http.post(&url).json(payload).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                tracing::warn!(function, "the function did not answer in time");
                return Answer::message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            }
            Err(error) => {
                tracing::warn!(function, error = %error, "invoking the function failed");
                return Answer::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(function, error = %error, "reading the function's answer failed");
                return Answer::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        let result: Option<Value> = serde_json::from_slice(&bytes).ok();
        let lambda_error = result
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(|o| o.contains_key("errorType") && !o.contains_key("statusCode"));
        match result {
            Some(result) if status.is_success() && !function_error && !lambda_error => {
                event::answer(&result)
            }
            _ => {
                tracing::warn!(function, status = status.as_u16(), "the function failed");
                Answer::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

fn unauthorized(refusal: &Refusal, scopes: &[String]) -> Answer {
    let (status, message) = match refusal {
        Refusal::Scope => (StatusCode::FORBIDDEN, "Forbidden"),
        _ => (StatusCode::UNAUTHORIZED, "Unauthorized"),
    };
    let mut answer = Answer::message(status, message);
    if let Ok(value) = HeaderValue::from_str(&refusal.www_authenticate(scopes)) {
        answer.headers.insert(header::WWW_AUTHENTICATE, value);
    }
    tracing::info!(reason = %refusal, "refused by the JWT authorizer");
    answer
}

/// An id shaped like API Gateway's (`apigw-requestid`): 15 base64 characters and `=`.
fn request_id() -> String {
    let bytes = ulid::Ulid::new().0.to_be_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[5..16])
}
