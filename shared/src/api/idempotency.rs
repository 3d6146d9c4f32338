//! `Idempotency-Key` handling for API operations that must not happen twice: the first request
//! with a key runs, repeats get its stored response (header `idempotent-replayed: true`), the
//! same key with a different request is refused. Only successes are remembered, so a key whose
//! request was refused can be used again once the problem is fixed.

use std::future::Future;

use lambda_http::{Body, Request, RequestExt};
use sha2::{Digest as _, Sha256};

use crate::app::App;
use crate::domain::ErrorCode;
use crate::domain::validation::FieldError;
use crate::http::{self, ApiError, ApiResult};
use crate::store::{Claim, StoredResponse};

/// Runs `work` once per key within `scope` (the tenant and operation). Without a key, `work`
/// runs unguarded unless `required`.
pub async fn once<F, Fut>(
    app: &App,
    request: &Request,
    scope: &str,
    required: bool,
    work: F,
) -> ApiResult
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(u16, serde_json::Value), ApiError>>,
{
    let Some(key) = http::idempotency_key(request)? else {
        if required {
            return Err(FieldError::required("header.Idempotency-Key").into());
        }
        let (status, body) = work().await?;
        return http::respond(status, &body);
    };
    let scoped = format!("{scope}#{key}");
    let fingerprint = fingerprint(request);
    match app.idempotency.claim(&scoped, &fingerprint).await? {
        Claim::Fresh => {}
        Claim::Replay(stored) => return replay(stored),
        Claim::InFlight => {
            return Err(ApiError::Conflict {
                code: ErrorCode::RequestInProgress,
                message: "a request with this Idempotency-Key is still running".to_owned(),
            });
        }
        Claim::Mismatch => {
            return Err(ApiError::Unprocessable {
                code: ErrorCode::IdempotencyKeyReused,
                message: "this Idempotency-Key was used for a different request".to_owned(),
                problems: Vec::new(),
            });
        }
    }
    match work().await {
        Ok((status, body)) => {
            let stored = StoredResponse {
                status,
                body: body.to_string(),
            };
            app.idempotency
                .finish(&scoped, &fingerprint, &stored)
                .await?;
            http::respond(status, &body)
        }
        Err(e) => {
            app.idempotency.release(&scoped).await?;
            Err(e)
        }
    }
}

/// What makes two requests "the same": the route, its path parameters and the body bytes.
fn fingerprint(request: &Request) -> String {
    let route = http::route(request).0;
    let mut params: Vec<(String, String)> = request
        .path_parameters_ref()
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    params.sort();
    let body: &[u8] = match request.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    for (k, v) in params {
        hasher.update([0]);
        hasher.update(k.as_bytes());
        hasher.update([0]);
        hasher.update(v.as_bytes());
    }
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn replay(stored: StoredResponse) -> ApiResult {
    lambda_http::Response::builder()
        .status(stored.status)
        .header("content-type", "application/json")
        .header("idempotent-replayed", "true")
        .body(Body::Text(stored.body))
        .map_err(|e| ApiError::Internal(e.into()))
}
