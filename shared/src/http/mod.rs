//! HTTP plumbing shared by the API functions: the caller's identity from the JWT authorizer's
//! claims, request parsing with field-level errors, and one error type mapped to responses.

mod error;
mod identity;
pub mod paging;
mod request;
mod strict;

pub use error::{ApiError, refusal};
pub use identity::{ROLE_CLAIM, TENANT_CLAIM, caller};
pub use paging::Paging;
pub use request::{
    MAX_BODY_BYTES, Route, api_path, idempotency_key, json_body, no_content, parse_json,
    path_param, public_base_url, public_url, query_param, request_id, respond, route,
};

pub type Response = lambda_http::Response<lambda_http::Body>;
pub type ApiResult = Result<Response, ApiError>;
