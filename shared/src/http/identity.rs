//! The caller, from the claims API Gateway's JWT authorizer verified. The authorizer has already
//! checked the token's signature, issuer, audience and expiry; a request without verified claims
//! never reaches a function in AWS, and is refused here all the same.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::ApiError;
use crate::domain::TenantId;
use crate::domain::identity::{Caller, Role};

/// Claim names in Herald's identity tokens.
pub const TENANT_CLAIM: &str = "herald:tenant";
pub const ROLE_CLAIM: &str = "herald:role";

pub fn caller(request: &Request) -> Result<Caller, ApiError> {
    let claims = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|j| &j.claims),
        _ => None,
    }
    .ok_or(ApiError::Unauthenticated)?;
    let subject = claims
        .get("sub")
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let role = claims
        .get(ROLE_CLAIM)
        .and_then(|r| Role::parse(r))
        .ok_or(ApiError::Unauthenticated)?;
    let tenant = match claims.get(TENANT_CLAIM) {
        Some(t) => Some(TenantId::parse(t).map_err(|_| ApiError::Unauthenticated)?),
        None => None,
    };
    if tenant.is_none() && role != Role::PlatformAdmin {
        return Err(ApiError::Unauthenticated);
    }
    Ok(Caller {
        subject: subject.clone(),
        role,
        tenant,
    })
}
