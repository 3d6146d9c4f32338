//! The API's error type: every failure becomes a status and
//! `{"error": {"code", "message", "field"?, "problems"?}}`; 500s say nothing about internals.

use lambda_http::Body;
use serde::Serialize;
use serde_json::json;

use crate::domain::ErrorCode;
use crate::domain::identity::Denied;
use crate::domain::snapshot::Problem;
use crate::domain::validation::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(FieldError),
    #[error("missing or invalid identity")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(Denied),
    #[error("request bodies are at most {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    #[error("{message}")]
    Unprocessable {
        code: ErrorCode,
        message: String,
        problems: Vec<Problem>,
    },
    #[error("no route for {0}")]
    NoRoute(String),
    /// A per-tenant quota is used up until its window ends (`Retry-After`); nothing was done.
    #[error("quota exceeded; try again in {retry_after_seconds} seconds")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::BadRequest(e)
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        ApiError::Forbidden(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::Conflict {
                code: ErrorCode::ConcurrentChange,
                message: "the resource changed since it was read; read it again and retry"
                    .to_owned(),
            },
            StoreError::TooLarge { what, size, limit } => ApiError::Unprocessable {
                code: ErrorCode::TooLarge,
                message: format!("{what} is too large to store: {size} bytes, at most {limit}"),
                problems: vec![Problem::new(
                    ErrorCode::TooLarge,
                    what,
                    "over the item limit",
                )],
            },
            StoreError::Unavailable(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::credentials::VaultError> for ApiError {
    fn from(e: crate::credentials::VaultError) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<&'a [Problem]>,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthenticated => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) | ApiError::NoRoute(_) => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Unprocessable { .. } => 422,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn into_response(self) -> super::Response {
        let status = self.status();
        let body = match &self {
            ApiError::BadRequest(f) => ErrorBody {
                code: f.code,
                message: f.message.clone(),
                field: Some(&f.field),
                problems: None,
            },
            ApiError::Unauthenticated => ErrorBody {
                code: ErrorCode::Unauthenticated,
                message: self.to_string(),
                field: None,
                problems: None,
            },
            ApiError::Forbidden(denied) => ErrorBody {
                code: denied.code(),
                message: self.to_string(),
                field: None,
                problems: None,
            },
            ApiError::NotFound(_) | ApiError::NoRoute(_) => ErrorBody {
                code: ErrorCode::NotFound,
                message: self.to_string(),
                field: None,
                problems: None,
            },
            ApiError::PayloadTooLarge { .. } => ErrorBody {
                code: ErrorCode::PayloadTooLarge,
                message: self.to_string(),
                field: Some("body"),
                problems: None,
            },
            ApiError::Conflict { code, message } => ErrorBody {
                code: *code,
                message: message.clone(),
                field: None,
                problems: None,
            },
            ApiError::Unprocessable {
                code,
                message,
                problems,
            } => ErrorBody {
                code: *code,
                message: message.clone(),
                field: None,
                problems: (!problems.is_empty()).then_some(problems.as_slice()),
            },
            ApiError::TooManyRequests { .. } => ErrorBody {
                code: ErrorCode::QuotaExceeded,
                message: self.to_string(),
                field: None,
                problems: None,
            },
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                ErrorBody {
                    code: ErrorCode::Internal,
                    message: "something went wrong on our side".to_owned(),
                    field: None,
                    problems: None,
                }
            }
        };
        let mut response = error_response(status, &body);
        if let ApiError::TooManyRequests {
            retry_after_seconds,
        } = &self
            && let Ok(value) = retry_after_seconds.to_string().parse()
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

/// A refusal outside [`ApiError`]'s cases (a provider's webhook that does not authenticate, a
/// preference link that does not verify): the same body, with the code's status.
pub fn refusal(code: ErrorCode, message: String) -> super::Response {
    // Codes without a status of their own only appear inside `problems`; none is refused alone.
    let status = code.status().unwrap_or(422);
    let body = ErrorBody {
        code,
        message,
        field: None,
        problems: None,
    };
    error_response(status, &body)
}

fn error_response(status: u16, body: &ErrorBody<'_>) -> super::Response {
    let json = json!({ "error": body }).to_string();
    lambda_http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(json))
        .unwrap_or_default()
}
