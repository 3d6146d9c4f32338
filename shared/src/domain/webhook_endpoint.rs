//! Tenants' webhook endpoints: where Herald posts its signed status events. The rules here are
//! pure: which URLs may be registered (https, no credentials, no private or loopback hosts:
//! Herald must not be turned into a probe of its own network), which event types exist, and
//! when a failing endpoint is switched off.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::{Host, Url};

use super::status_event::StatusEventType;
use super::validation::FieldError;
use crate::domain::ErrorCode;

pub use super::ids::WebhookEndpointId;

/// An endpoint's signing secret at rest (envelope encryption bound to tenant and endpoint; see
/// `credentials.rs`). Only the KMS-encrypted data key, the nonce and the ciphertext are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SealedSecret {
    pub encrypted_data_key: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// What the tenant configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointConfig {
    pub url: String,
    pub events: BTreeSet<StatusEventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub secret: SealedSecret,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// How deliveries to the endpoint have been going (kept by the status-webhooks worker).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryHealth {
    /// Failed deliveries since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The first failure of the current streak.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub last_failure_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub last_success_at: Option<OffsetDateTime>,
    /// When Herald switched the endpoint off, and why.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    pub disabled_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    /// Inactive endpoints get nothing: switched off by the tenant, or by Herald after a
    /// sustained failure (`health.disabled_at`).
    pub active: bool,
    pub revision: u32,
    pub config: EndpointConfig,
    #[serde(default)]
    pub health: DeliveryHealth,
}

impl WebhookEndpoint {
    /// Whether a status event of `kind` is to be posted here.
    pub fn wants(&self, kind: StatusEventType) -> bool {
        self.active && self.config.events.contains(&kind)
    }
}

/// Most event type names an endpoint's `events` may list: each type once.
pub const MAX_EVENT_TYPES: usize = StatusEventType::ALL.len();

/// The event types of an endpoint, from their names: at least one, each known.
pub fn parse_event_types(
    field: &str,
    names: &[String],
) -> Result<BTreeSet<StatusEventType>, FieldError> {
    if names.is_empty() {
        return Err(FieldError::new(
            ErrorCode::Required,
            field,
            format!("{field} needs at least one event type"),
        ));
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            StatusEventType::ALL
                .into_iter()
                .find(|kind| kind.as_str() == name)
                .ok_or_else(|| {
                    FieldError::new(
                        ErrorCode::UnknownEventType,
                        format!("{field}[{i}]"),
                        format!(
                            "not an event type; known: {}",
                            StatusEventType::ALL.map(StatusEventType::as_str).join(", ")
                        ),
                    )
                })
        })
        .collect()
}

/// Longest URL an endpoint may have.
const MAX_URL_LENGTH: usize = 2048;

/// Which endpoint URLs Herald posts to. Only the local stack and tests allow loopback
/// (`WEBHOOKS_ALLOW_LOOPBACK=true`), and then plain `http` to it too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_loopback: bool,
}

impl UrlPolicy {
    /// Checks a URL a tenant registers (and the worker before each delivery).
    pub fn check(&self, field: &str, raw: &str) -> Result<Url, FieldError> {
        if raw.len() > MAX_URL_LENGTH {
            return Err(FieldError::new(
                ErrorCode::TooLong,
                field,
                format!("{field} must be at most {MAX_URL_LENGTH} characters"),
            ));
        }
        let url = Url::parse(raw.trim()).map_err(|_| {
            FieldError::new(
                ErrorCode::InvalidUrl,
                field,
                format!("{field} is not an absolute URL"),
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldError::new(
                ErrorCode::CredentialsInUrl,
                field,
                format!(
                    "{field} must not carry credentials: receivers verify the signature instead"
                ),
            ));
        }
        let host = url.host().ok_or_else(|| {
            FieldError::new(ErrorCode::InvalidUrl, field, format!("{field} has no host"))
        })?;
        let loopback = self.allow_loopback && is_loopback(&host);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(FieldError::new(
                    ErrorCode::InsecureUrl,
                    field,
                    format!("{field} must use https"),
                ));
            }
        }
        if !loopback && !public_host(&host) {
            return Err(FieldError::new(
                ErrorCode::PrivateAddress,
                field,
                format!(
                    "{field} must name a public host, not a private, loopback or link-local one"
                ),
            ));
        }
        Ok(url)
    }

    /// Whether a resolved address may be connected to (names can resolve to private addresses,
    /// so the worker checks every address it is about to use).
    pub fn allows_address(&self, ip: IpAddr) -> bool {
        public_ip(ip) || (self.allow_loopback && ip.is_loopback())
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

fn public_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => public_ip(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => public_ip(IpAddr::V6(*ip)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            // Single labels resolve through search domains to internal hosts.
            name.contains('.')
                && ![
                    ".localhost",
                    ".local",
                    ".internal",
                    ".home.arpa",
                    ".localdomain",
                ]
                .iter()
                .any(|suffix| name.ends_with(suffix))
                && name != "localhost"
        }
    }
}

/// Addresses on the public internet: not private, shared (CGNAT), loopback, link-local,
/// unspecified, documentation, benchmarking, multicast or reserved ranges, including IPv4
/// embedded in IPv6.
pub fn public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| {
        let [h1, h2] = high.to_be_bytes();
        let [l1, l2] = low.to_be_bytes();
        Ipv4Addr::new(h1, h2, l1, l2)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    match segments {
        // Unspecified, loopback and the deprecated IPv4-compatible form.
        [0, 0, 0, 0, 0, 0, high, low] => high != 0 && public_v4(embedded(high, low)),
        // NAT64.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => public_v4(embedded(high, low)),
        // 6to4.
        [0x2002, high, low, ..] => public_v4(embedded(high, low)),
        [first, second, ..] => {
            !((first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xff00) == 0xff00 // multicast
                || (first == 0x2001 && second == 0x0db8)) // documentation
        }
    }
}

/// When Herald switches a failing endpoint off: after `failures` consecutive failed deliveries
/// that have gone on for at least `over` (both must hold, so a burst of failures during a short
/// outage of a busy endpoint does not disable it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisablePolicy {
    pub failures: u32,
    pub over: Duration,
}

impl Default for DisablePolicy {
    /// 20 failures over at least 5 days (Svix-like).
    fn default() -> Self {
        Self {
            failures: 20,
            over: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

impl DisablePolicy {
    /// Whether an endpoint with this health (after its latest failure) is to be disabled.
    pub fn should_disable(&self, health: &DeliveryHealth, now: OffsetDateTime) -> bool {
        let Some(since) = health.failing_since else {
            return false;
        };
        health.consecutive_failures >= self.failures.max(1)
            && Duration::try_from(now - since).unwrap_or_default() >= self.over
    }

    /// Why, in the endpoint's `disabled_reason` and the audit log.
    pub fn reason(&self, health: &DeliveryHealth) -> String {
        format!(
            "{} consecutive failed deliveries since {}",
            health.consecutive_failures,
            health
                .failing_since
                .and_then(|t| t
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok())
                .unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> UrlPolicy {
        UrlPolicy::default()
    }

    fn code(policy: UrlPolicy, url: &str) -> Option<&'static str> {
        policy.check("url", url).err().map(|e| e.code.as_str())
    }

    #[test]
    fn only_public_https_urls_without_credentials_are_accepted() {
        for good in [
            "https://hooks.acme.example/herald",
            "https://hooks.acme.example:8443/herald?source=herald",
            "https://203.0.114.7/hook",
            "https://[2a00:1450:4009:81f::200e]/hook",
        ] {
            assert_eq!(code(strict(), good), None, "{good}");
        }
        let refused = [
            ("http://hooks.acme.example/herald", "insecure_url"),
            ("ftp://hooks.acme.example/herald", "insecure_url"),
            (
                "https://user:pass@hooks.acme.example/",
                "credentials_in_url",
            ),
            ("https://token@hooks.acme.example/", "credentials_in_url"),
            ("hooks.acme.example/herald", "invalid_url"),
            ("https://127.0.0.1/hook", "private_address"),
            ("https://localhost/hook", "private_address"),
            ("https://api.localhost/hook", "private_address"),
            ("https://10.1.2.3/hook", "private_address"),
            ("https://172.16.0.1/hook", "private_address"),
            ("https://192.168.1.1/hook", "private_address"),
            ("https://100.64.0.1/hook", "private_address"),
            (
                "https://169.254.169.254/latest/meta-data",
                "private_address",
            ),
            ("https://0.0.0.0/hook", "private_address"),
            ("https://0x7f000001/hook", "private_address"),
            ("https://2130706433/hook", "private_address"),
            ("https://[::1]/hook", "private_address"),
            ("https://[::ffff:127.0.0.1]/hook", "private_address"),
            ("https://[::ffff:169.254.169.254]/hook", "private_address"),
            ("https://[fd00:ec2::254]/hook", "private_address"),
            ("https://[fe80::1]/hook", "private_address"),
            ("https://[64:ff9b::a00:1]/hook", "private_address"),
            ("https://metadata.google.internal/", "private_address"),
            ("https://printer.local/", "private_address"),
            ("https://intranet/hook", "private_address"),
        ];
        for (bad, expected) in refused {
            assert_eq!(code(strict(), bad), Some(expected), "{bad}");
        }
        assert_eq!(
            code(strict(), &format!("https://a.example/{}", "x".repeat(2048))),
            Some("too_long")
        );
    }

    #[test]
    fn the_local_stack_may_allow_loopback_and_nothing_else_private() {
        let local = UrlPolicy {
            allow_loopback: true,
        };
        for good in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:3000/hook",
            "https://127.0.0.1/hook",
        ] {
            assert_eq!(code(local, good), None, "{good}");
        }
        assert_eq!(code(local, "http://10.0.0.1/hook"), Some("insecure_url"));
        assert_eq!(
            code(local, "https://10.0.0.1/hook"),
            Some("private_address")
        );
        assert_eq!(
            code(local, "http://hooks.acme.example/"),
            Some("insecure_url")
        );
        assert!(local.allows_address("127.0.0.1".parse().expect("ip")));
        assert!(!local.allows_address("192.168.0.1".parse().expect("ip")));
        assert!(!strict().allows_address("127.0.0.1".parse().expect("ip")));
        assert!(strict().allows_address("8.8.8.8".parse().expect("ip")));
    }

    #[test]
    fn event_types_must_be_known_and_present() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_event_types(
                "events",
                &names(&["message.sent", "message.failed", "message.sent"])
            ),
            Ok(BTreeSet::from([
                StatusEventType::MessageSent,
                StatusEventType::MessageFailed
            ]))
        );
        let err = parse_event_types("events", &names(&["message.sent", "message.opened"]))
            .expect_err("unknown");
        assert_eq!(
            (err.code, err.field.as_str()),
            (ErrorCode::UnknownEventType, "events[1]")
        );
        assert_eq!(
            parse_event_types("events", &[]).map_err(|e| e.code),
            Err(ErrorCode::Required)
        );
    }

    #[test]
    fn endpoints_are_disabled_after_enough_failures_over_enough_time() {
        let policy = DisablePolicy {
            failures: 3,
            over: Duration::from_secs(3600),
        };
        let start = time::macros::datetime!(2026-11-22 10:00 UTC);
        let health = |failures, since: Option<OffsetDateTime>| DeliveryHealth {
            consecutive_failures: failures,
            failing_since: since,
            ..DeliveryHealth::default()
        };
        let hour = time::Duration::hours(1);
        assert!(
            !policy.should_disable(&health(2, Some(start)), start + hour * 2),
            "too few failures"
        );
        assert!(
            !policy.should_disable(
                &health(50, Some(start)),
                start + time::Duration::minutes(59)
            ),
            "not for long enough"
        );
        assert!(policy.should_disable(&health(3, Some(start)), start + hour));
        assert!(
            !policy.should_disable(&health(3, None), start + hour * 5),
            "no streak"
        );
        let immediate = DisablePolicy {
            failures: 0,
            over: Duration::ZERO,
        };
        assert!(
            !immediate.should_disable(&health(0, Some(start)), start),
            "at least one failure"
        );
        assert!(immediate.should_disable(&health(1, Some(start)), start));
        assert_eq!(
            policy.reason(&health(3, Some(start))),
            "3 consecutive failed deliveries since 2026-11-22T10:00:00Z"
        );
        let defaults = DisablePolicy::default();
        assert_eq!((defaults.failures, defaults.over.as_secs()), (20, 432_000));
    }

    #[test]
    fn endpoint_ids_round_trip() {
        let id = WebhookEndpointId::generate();
        assert_eq!(WebhookEndpointId::parse(id.as_str()), Ok(id.clone()));
        assert!(WebhookEndpointId::parse("ep_nope").is_err());
        assert!(WebhookEndpointId::parse("prv_01jf3k8z6q9x2m4n7p5r1t3v8w").is_err());
    }
}
