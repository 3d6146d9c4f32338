//! API Gateway's JWT authorizer: the bearer token from `Authorization`, its RSA signature
//! checked against the issuer's JWKS (found through OpenID discovery, cached), then `iss`,
//! `aud` (or `client_id`), `exp`, `nbf`, `iat` and the route's scopes. Tokens are never logged.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::template::JwtAuthorizerSpec;

/// How long fetched keys are trusted (API Gateway caches them for up to two hours).
const JWKS_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// A token naming an unknown key may mean the issuer rotated: look again, at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(10);

/// Why a request was refused; the description goes into `www-authenticate`, as API Gateway's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no token")]
    Missing,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the token does not have any of the route's scopes")]
    Scope,
}

impl Refusal {
    /// The `www-authenticate` header API Gateway answers a refused token with.
    pub fn www_authenticate(&self, scopes: &[String]) -> String {
        let scope = scopes.join(" ");
        match self {
            Refusal::Missing => "Bearer".to_owned(),
            Refusal::Invalid(description) => {
                format!(
                    r#"Bearer scope="{scope}" error="invalid_token" error_description="{description}""#
                )
            }
            Refusal::Scope => format!(
                r#"Bearer scope="{scope}" error="insufficient_scope" error_description="the token does not have the required scopes""#
            ),
        }
    }
}

/// A verified token: its claims as API Gateway passes them (every value a string) and scopes.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub claims: Map<String, Value>,
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug)]
struct CachedKeys {
    keys: JwkSet,
    fetched: Instant,
}

/// One JWT authorizer of the API.
#[derive(Debug)]
pub struct JwtAuthorizer {
    spec: JwtAuthorizerSpec,
    http: reqwest::Client,
    cache: Mutex<Option<CachedKeys>>,
}

impl JwtAuthorizer {
    pub fn new(spec: JwtAuthorizerSpec, http: reqwest::Client) -> Self {
        Self {
            spec,
            http,
            cache: Mutex::new(None),
        }
    }

    pub fn spec(&self) -> &JwtAuthorizerSpec {
        &self.spec
    }

    /// Verifies the `Authorization` header's token for a route requiring `route_scopes`.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        route_scopes: &[String],
    ) -> Result<Verified, Refusal> {
        let raw = authorization.map(str::trim).unwrap_or_default();
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Refusal::Invalid("the token could not be decoded"))?;
        // Only RSA signatures, as API Gateway: `none`, HMAC and EC tokens are refused here.
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
        ) {
            return Err(Refusal::Invalid(
                "the token's signing method is not supported",
            ));
        }
        let kid = header
            .kid
            .ok_or(Refusal::Invalid("the token does not have a kid"))?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false; // checked below, with client_id, as API Gateway does
        validation.set_required_spec_claims(&["exp"]);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => Refusal::Invalid("the token has expired"),
                    ErrorKind::ImmatureSignature => Refusal::Invalid("the token is not valid yet"),
                    ErrorKind::InvalidSignature => {
                        Refusal::Invalid("the token's signature is invalid")
                    }
                    ErrorKind::MissingRequiredClaim(_) => {
                        Refusal::Invalid("the token does not have an expiry")
                    }
                    _ => Refusal::Invalid("the token could not be verified"),
                }
            })?;
        let claims = data.claims;

        if claims.get("iss").and_then(Value::as_str) != Some(self.spec.issuer.as_str()) {
            return Err(Refusal::Invalid("the token does not have a valid issuer"));
        }
        let audiences: Vec<&str> = match claims.get("aud").or_else(|| claims.get("client_id")) {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|a| self.spec.audience.iter().any(|allowed| allowed == a))
        {
            return Err(Refusal::Invalid("the token does not have a valid audience"));
        }
        let now = jsonwebtoken::get_current_timestamp();
        if claims
            .get("iat")
            .and_then(Value::as_f64)
            .is_some_and(|iat| iat > now as f64)
        {
            return Err(Refusal::Invalid("the token was issued in the future"));
        }

        let token_scopes = scopes_of(&claims);
        let scopes = if route_scopes.is_empty() {
            None
        } else {
            if !token_scopes.iter().any(|s| route_scopes.contains(s)) {
                return Err(Refusal::Scope);
            }
            Some(token_scopes)
        };
        Ok(Verified {
            claims: flatten_claims(&claims),
            scopes,
        })
    }

    /// The issuer's key `kid`, from the cached JWKS or a fresh fetch.
    async fn key(&self, kid: &str) -> Result<DecodingKey, Refusal> {
        let mut cache = self.cache.lock().await;
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.fetched.elapsed() < JWKS_TTL);
        let known = cache.as_ref().is_some_and(|c| c.keys.find(kid).is_some());
        let may_refetch = cache
            .as_ref()
            .is_none_or(|c| c.fetched.elapsed() >= REFETCH_AFTER);
        if !fresh || (!known && may_refetch) {
            match self.fetch_keys().await {
                Ok(keys) => {
                    *cache = Some(CachedKeys {
                        keys,
                        fetched: Instant::now(),
                    })
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.spec.issuer, error = %format!("{error:#}"), "fetching the issuer's keys failed");
                    if !fresh {
                        return Err(Refusal::Invalid("the issuer's keys could not be fetched"));
                    }
                }
            }
        }
        let jwk = cache
            .as_ref()
            .and_then(|c| c.keys.find(kid))
            .ok_or(Refusal::Invalid(
                "the token's kid is not one of the issuer's keys",
            ))?;
        if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
            return Err(Refusal::Invalid(
                "the token's signing method is not supported",
            ));
        }
        DecodingKey::from_jwk(jwk).map_err(|_| Refusal::Invalid("the issuer's key is unusable"))
    }

    /// OpenID discovery (`{issuer}/.well-known/openid-configuration` → `jwks_uri`), falling back
    /// to `{issuer}/.well-known/jwks.json` for issuers that publish no discovery document.
    async fn fetch_keys(&self) -> anyhow::Result<JwkSet> {
        let base = self.spec.issuer.trim_end_matches('/');
        let discovery = self
            .http
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let jwks_uri = match discovery {
            Ok(answer) => answer
                .json::<Value>()
                .await?
                .get("jwks_uri")
                .and_then(Value::as_str)
                .map(str::to_owned),
            Err(_) => None,
        }
        .unwrap_or_else(|| format!("{base}/.well-known/jwks.json"));
        Ok(self
            .http
            .get(&jwks_uri)
            .send()
            .await?
            .error_for_status()?
            .json::<JwkSet>()
            .await?)
    }
}

/// `scope` (space-separated) or `scp` (a list or a string).
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_owned)),
            Some(Value::Array(items)) => {
                out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    out.retain(|s| seen.insert(s.clone()));
    out
}

/// Claims as API Gateway hands them to a function: every value a string; numbers as written,
/// lists as `[a b]`, objects as `map[k:v]` (the formatting of the Go service behind it).
pub fn flatten_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(flatten(v))))
        .collect()
}

fn flatten(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(flatten).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[{}]",
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", flatten(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_flattened_like_api_gateway() {
        let claims = json!({"sub": "u", "iat": 1795341000, "groups": ["a", "b"], "ok": true, "o": {"y": 1, "x": "s"}});
        let flat = flatten_claims(&claims.as_object().cloned().unwrap_or_default());
        assert_eq!(
            Value::Object(flat),
            json!({"sub": "u", "iat": "1795341000", "groups": "[a b]", "ok": "true", "o": "map[x:s y:1]"})
        );
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims = json!({"scope": "a b", "scp": ["b", "c"]});
        let map = claims.as_object().cloned().unwrap_or_default();
        assert_eq!(scopes_of(&map), ["a", "b", "c"]);
    }
}
