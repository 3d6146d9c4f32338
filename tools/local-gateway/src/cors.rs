//! CORS as API Gateway's HTTP API applies its `CorsConfiguration`: preflights answered by the
//! gateway itself (before routes and authorizers), CORS headers added to every other answer for
//! an allowed origin, and the function's own CORS headers ignored.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use crate::template::CorsSpec;

#[derive(Debug, Clone)]
pub struct Cors {
    spec: CorsSpec,
}

impl Cors {
    pub fn new(spec: CorsSpec) -> Self {
        Self { spec }
    }

    /// A preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The origin, when it is one the configuration allows.
    fn allowed_origin<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        self.spec
            .allow_origins
            .iter()
            .any(|allowed| origin_matches(allowed, origin))
            .then_some(origin)
    }

    fn allow_origin_value(&self, origin: &str) -> String {
        // With credentials a browser needs the origin itself, never `*`.
        if self.spec.allow_origins.iter().any(|o| o == "*") && !self.spec.allow_credentials {
            "*".to_owned()
        } else {
            origin.to_owned()
        }
    }

    /// The headers of the answer to a preflight (status 204); none for an origin not allowed.
    pub fn preflight(&self, request: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        let Some(origin) = self.allowed_origin(request) else {
            return out;
        };
        put(
            &mut out,
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            &self.allow_origin_value(origin),
        );
        if self.spec.allow_credentials {
            put(&mut out, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        let echo = |name: HeaderName| {
            request
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let methods = if self.spec.allow_methods.iter().any(|m| m == "*") {
            echo(header::ACCESS_CONTROL_REQUEST_METHOD)
        } else {
            self.spec.allow_methods.join(",")
        };
        if !methods.is_empty() {
            put(&mut out, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
        }
        let headers = if self.spec.allow_headers.iter().any(|h| h == "*") {
            echo(header::ACCESS_CONTROL_REQUEST_HEADERS)
        } else {
            self.spec.allow_headers.join(",")
        };
        if !headers.is_empty() {
            put(&mut out, header::ACCESS_CONTROL_ALLOW_HEADERS, &headers);
        }
        if let Some(max_age) = self.spec.max_age {
            put(
                &mut out,
                header::ACCESS_CONTROL_MAX_AGE,
                &max_age.to_string(),
            );
        }
        out
    }

    /// Applies the configuration to an answer: the function's `access-control-*` headers are
    /// dropped, and for an allowed origin the gateway's are added.
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let theirs: Vec<HeaderName> = response
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in theirs {
            response.remove(name);
        }
        let Some(origin) = self.allowed_origin(request) else {
            return;
        };
        put(
            response,
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            &self.allow_origin_value(origin),
        );
        if self.spec.allow_credentials {
            put(response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if !self.spec.expose_headers.is_empty() {
            put(
                response,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                &self.spec.expose_headers.join(","),
            );
        }
    }
}

fn put(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// `*`, an exact origin, or one with a wildcard subdomain (`https://*.example.com`).
fn origin_matches(allowed: &str, origin: &str) -> bool {
    if allowed == "*" || allowed.eq_ignore_ascii_case(origin) {
        return true;
    }
    match allowed.split_once("://*.") {
        Some((scheme, domain)) => origin
            .strip_prefix(scheme)
            .and_then(|o| o.strip_prefix("://"))
            .is_some_and(|host| {
                host.len() > domain.len() + 1
                    && host
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", domain.to_ascii_lowercase()))
            }),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_subdomain_wildcard() {
        assert!(origin_matches(
            "http://localhost:5173",
            "http://localhost:5173"
        ));
        assert!(!origin_matches(
            "http://localhost:5173",
            "http://localhost:5174"
        ));
        assert!(origin_matches(
            "https://*.acme.example",
            "https://app.acme.example"
        ));
        assert!(!origin_matches(
            "https://*.acme.example",
            "https://acme.example"
        ));
        assert!(!origin_matches(
            "https://*.acme.example",
            "http://app.acme.example"
        ));
        assert!(origin_matches("*", "https://anything.example"));
    }
}
