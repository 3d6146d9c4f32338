//! The status-webhooks worker: posts each queued [`Delivery`] to its endpoint, signed, and
//! decides what happens to the queue message. 2xx: done (and the endpoint's failure streak
//! ends). Anything else, a timeout or a refused address: the endpoint's streak grows, and the
//! message comes back after the retry schedule's next wait (at least the receiver's
//! `Retry-After`) until the schedule is spent, when the delivery is given up. An endpoint that
//! keeps failing for long enough is switched off ([`DisablePolicy`]), with an audit entry. A
//! write of the endpoint's health the store refuses for good (too large to store) is logged and
//! counted, never a reason to retry; an endpoint that cannot be switched off has its delivery
//! given up.
//!
//! What is posted: the event's JSON with `webhook-id` (the event id: receivers drop repeats),
//! `webhook-timestamp` and `webhook-signature` (Standard Webhooks). Redirects are not followed,
//! and every address the endpoint's host resolves to must pass the [`UrlPolicy`] (no private,
//! loopback or link-local targets). Logs carry endpoint and event ids, never a URL, a body or a
//! secret.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tracing::{Instrument as _, info, info_span, warn};

use super::queue::Delivery;
use super::signature::{SCHEDULE, retry_delay_in, sign};
use crate::credentials::{CredentialVault, VaultError};
use crate::dispatch::sqs::QueueClient;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::webhook_endpoint::{
    DisablePolicy, UrlPolicy, WebhookEndpoint, WebhookEndpointId,
};
use crate::store::{StoreError, WebhookEndpointStore};

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
const SECRET_TTL: Duration = Duration::from_secs(300);
const SECRET_CACHE_LIMIT: usize = 1024;
/// Wait before retrying when Herald's own storage or key service failed (not the endpoint).
const INFRASTRUCTURE_RETRY: Duration = Duration::from_secs(30);

/// What the worker reads from its environment (template parameters; short values locally).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Waits before each retry (`STATUS_WEBHOOK_RETRY_SCHEDULE`, comma-separated seconds;
    /// default [`SCHEDULE`]).
    pub schedule: Vec<Duration>,
    /// `STATUS_WEBHOOK_DISABLE_AFTER_FAILURES` (default 20) and
    /// `STATUS_WEBHOOK_DISABLE_AFTER_SECONDS` (default 432000, 5 days).
    pub disable: DisablePolicy,
    /// `WEBHOOKS_ALLOW_LOOPBACK=true` only in the local stack and tests.
    pub urls: UrlPolicy,
    pub timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            schedule: SCHEDULE.to_vec(),
            disable: DisablePolicy::default(),
            urls: UrlPolicy::default(),
            timeout: TIMEOUT,
        }
    }
}

impl WorkerConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    /// From any source of the template's environment variables (a local stack's, in tests).
    pub fn from_vars(vars: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let set = |name: &str| vars(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::default();
        if let Some(schedule) = set("STATUS_WEBHOOK_RETRY_SCHEDULE") {
            config.schedule = schedule
                .split(',')
                .map(|s| s.trim().parse::<u64>().map(Duration::from_secs))
                .collect::<Result<_, _>>()
                .context("STATUS_WEBHOOK_RETRY_SCHEDULE: comma-separated seconds")?;
        }
        if let Some(failures) = set("STATUS_WEBHOOK_DISABLE_AFTER_FAILURES") {
            config.disable.failures = failures
                .trim()
                .parse()
                .context("STATUS_WEBHOOK_DISABLE_AFTER_FAILURES: a number")?;
        }
        if let Some(seconds) = set("STATUS_WEBHOOK_DISABLE_AFTER_SECONDS") {
            config.disable.over = Duration::from_secs(
                seconds
                    .trim()
                    .parse()
                    .context("STATUS_WEBHOOK_DISABLE_AFTER_SECONDS: a number")?,
            );
        }
        config.urls.allow_loopback = set("WEBHOOKS_ALLOW_LOOPBACK").as_deref() == Some("true");
        Ok(config)
    }
}

/// What became of one queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// Not posted, for good: the endpoint is gone, inactive, or no longer wants the type.
    Dropped(&'static str),
    /// Try again after this long.
    RetryAfter(Duration),
    /// The last attempt failed: the schedule is spent.
    GaveUp,
    /// Not a delivery at all: left to redelivery and the dead-letter queue.
    Poison(String),
}

/// Why a post did not succeed (nothing here holds a URL).
#[derive(Debug)]
enum Failure {
    Status(u16, Option<Duration>),
    Unreachable(&'static str),
}

type SecretKey = (WebhookEndpointId, String);

pub struct Worker {
    endpoints: Arc<dyn WebhookEndpointStore>,
    vault: Arc<dyn CredentialVault>,
    http: reqwest::Client,
    config: WorkerConfig,
    /// Opened secrets per endpoint and sealed value, for a few minutes (a KMS call per
    /// endpoint, not per delivery).
    secrets: Mutex<HashMap<SecretKey, (Instant, Arc<SecretString>)>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(
        endpoints: Arc<dyn WebhookEndpointStore>,
        vault: Arc<dyn CredentialVault>,
        config: WorkerConfig,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the address check.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { urls: config.urls }))
            .user_agent(concat!("Herald-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the webhook HTTP client")?;
        Ok(Self {
            endpoints,
            vault,
            http,
            config,
            secrets: Mutex::new(HashMap::new()),
        })
    }

    /// A worker over an [`App`](crate::App)'s endpoint store and vault.
    pub fn from_app(app: &crate::App, config: WorkerConfig) -> anyhow::Result<Self> {
        Self::new(app.webhook_endpoints.clone(), app.vault.clone(), config)
    }

    /// Handles the queue message `body`, received for the `attempt`th time.
    pub async fn deliver_body(&self, body: &str, attempt: u32) -> Outcome {
        match serde_json::from_str::<Delivery>(body) {
            Ok(delivery) => self.deliver(&delivery, attempt).await,
            Err(_) => Outcome::Poison("the queue message is not a status webhook delivery".into()),
        }
    }

    pub async fn deliver(&self, delivery: &Delivery, attempt: u32) -> Outcome {
        let endpoint = match self
            .endpoints
            .endpoint(&delivery.tenant, &delivery.endpoint_id)
            .await
        {
            Ok(Some(endpoint)) => endpoint,
            Ok(None) => return Outcome::Dropped("endpoint deleted"),
            Err(e) => {
                warn!(error = %e, "endpoint unavailable; retrying later");
                return Outcome::RetryAfter(INFRASTRUCTURE_RETRY);
            }
        };
        if !endpoint.active {
            return Outcome::Dropped("endpoint inactive");
        }
        if !endpoint.config.events.contains(&delivery.event.kind) {
            return Outcome::Dropped("event type no longer wanted");
        }
        let url = match self.config.urls.check("url", &endpoint.config.url) {
            Ok(url) => url,
            Err(e) => {
                warn!(code = %e.code, "the endpoint's URL is not allowed here");
                return Outcome::Dropped("URL not allowed");
            }
        };
        let secret = match self.secret(&delivery.tenant, &endpoint).await {
            Ok(secret) => secret,
            Err(VaultError::Corrupt) => {
                warn!("the endpoint's secret does not open; giving up");
                return Outcome::GaveUp;
            }
            Err(e) => {
                warn!(error = %e, "the key service failed; retrying later");
                return Outcome::RetryAfter(INFRASTRUCTURE_RETRY);
            }
        };
        let started = Instant::now();
        let result = self.post(url, delivery, &secret).await;
        let took_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(status) => {
                info!(status, took_ms, attempt, "delivered");
                if endpoint.health.consecutive_failures > 0
                    || endpoint.health.failing_since.is_some()
                {
                    let now = OffsetDateTime::now_utc();
                    if let Err(e) = self
                        .endpoints
                        .record_success(&delivery.tenant, &endpoint.id, now)
                        .await
                    {
                        unwritten(&e, "could not clear the endpoint's failure streak");
                    }
                }
                Outcome::Delivered
            }
            Err(failure) => {
                let retry_after = match &failure {
                    Failure::Status(status, hint) => {
                        info!(
                            status,
                            took_ms, attempt, "the endpoint refused the delivery"
                        );
                        *hint
                    }
                    Failure::Unreachable(why) => {
                        info!(why, took_ms, attempt, "the endpoint could not be reached");
                        None
                    }
                };
                self.failed(&endpoint, delivery, attempt, retry_after).await
            }
        }
    }

    async fn failed(
        &self,
        endpoint: &WebhookEndpoint,
        delivery: &Delivery,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Outcome {
        let now = OffsetDateTime::now_utc();
        match self
            .endpoints
            .record_failure(&delivery.tenant, &endpoint.id, now)
            .await
        {
            Ok(None) => return Outcome::Dropped("endpoint deleted"),
            Ok(Some(health)) if self.config.disable.should_disable(&health, now) => {
                let reason = self.config.disable.reason(&health);
                let mut after = endpoint.clone();
                after.active = false;
                after.revision += 1;
                after.health = health;
                after.health.disabled_at = Some(now);
                after.health.disabled_reason = Some(reason.clone());
                let audit = AuditEntry::by_system(
                    "status-webhooks",
                    &delivery.tenant,
                    &delivery.event.id,
                    "webhook_endpoint.disabled",
                    format!("tenant/webhook-endpoint/{}", endpoint.id),
                    Some(digest(endpoint)),
                    Some(digest(&after)),
                );
                match self
                    .endpoints
                    .disable_endpoint(&delivery.tenant, &endpoint.id, &reason, now, &audit)
                    .await
                {
                    Ok(_) => {
                        warn!(
                            failures = after.health.consecutive_failures,
                            "endpoint disabled after sustained failures"
                        );
                        return Outcome::Dropped("endpoint disabled");
                    }
                    Err(e) if unwritten(&e, "could not disable the failing endpoint") => {
                        // Retrying would post again to an endpoint that should be off.
                        return Outcome::GaveUp;
                    }
                    Err(_) => {}
                }
            }
            Ok(Some(_)) => {}
            Err(e) => {
                unwritten(&e, "could not record the failed delivery");
            }
        }
        match retry_delay_in(&self.config.schedule, attempt, retry_after) {
            Some(wait) => Outcome::RetryAfter(wait),
            None => Outcome::GaveUp,
        }
    }

    async fn post(
        &self,
        url: url::Url,
        delivery: &Delivery,
        secret: &SecretString,
    ) -> Result<u16, Failure> {
        let body = serde_json::to_vec(&delivery.event)
            .map_err(|_| Failure::Unreachable("the event did not serialise"))?;
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(secret.expose_secret(), &delivery.event.id, timestamp, &body)
            .map_err(|_| Failure::Unreachable("the secret is not a whsec_ secret"))?;
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Unreachable(unreachable(&e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(Failure::Status(
                status.as_u16(),
                crate::providers::retry_after(response.headers()),
            ))
        }
    }

    async fn secret(
        &self,
        tenant: &crate::domain::TenantId,
        endpoint: &WebhookEndpoint,
    ) -> Result<Arc<SecretString>, VaultError> {
        let key = (
            endpoint.id.clone(),
            endpoint.config.secret.ciphertext.clone(),
        );
        if let Some((at, secret)) = self.secrets.lock().ok().and_then(|c| c.get(&key).cloned())
            && at.elapsed() < SECRET_TTL
        {
            return Ok(secret);
        }
        let secret = Arc::new(
            self.vault
                .open_endpoint_secret(tenant, &endpoint.id, &endpoint.config.secret)
                .await?,
        );
        if let Ok(mut cache) = self.secrets.lock() {
            if cache.len() >= SECRET_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), secret.clone()));
        }
        Ok(secret)
    }
}

/// Logs a failed write of an endpoint's health; whether the store refused it for good (too
/// large to store: counted, as no retry would write it).
fn unwritten(e: &StoreError, what: &str) -> bool {
    let permanent = e.is_permanent();
    if permanent {
        warn!(status_webhooks_too_large = 1, error = %e, "{what}: refused for good");
    } else {
        warn!(error = %e, "{what}");
    }
    permanent
}

/// Why a request got no answer, without the URL reqwest's errors carry.
fn unreachable(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<AddressRefused>() {
            return "the host resolves only to addresses Herald does not post to";
        }
        source = err.source();
    }
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to private, loopback or link-local addresses")]
struct AddressRefused;

/// Resolves names as usual, then keeps only the addresses the [`UrlPolicy`] allows: a public
/// name pointing at an internal address (or re-pointed after registration) gets nothing.
struct GuardedResolver {
    urls: UrlPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let urls = self.urls;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| urls.allows_address(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(AddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Handles an SQS batch from the status-webhooks queue, concurrently, one span per message;
/// answers with the messages to redeliver (`ReportBatchItemFailures`), their visibility set to
/// the retry wait first.
pub async fn handle(worker: &Worker, queue: &QueueClient, event: SqsEvent) -> SqsBatchResponse {
    let results = join_all(event.records.iter().map(|record| {
        let id = record.message_id.clone().unwrap_or_default();
        let span = info_span!(
            "delivery",
            queue_message_id = %id,
            endpoint_id = tracing::field::Empty,
            event_id = tracing::field::Empty,
            event_type = tracing::field::Empty,
        );
        async move {
            let attempt: u32 = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let body = record.body.as_deref().unwrap_or_default();
            if let Ok(d) = serde_json::from_str::<Delivery>(body) {
                let span = tracing::Span::current();
                span.record("endpoint_id", d.endpoint_id.as_str());
                span.record("event_id", d.event.id.as_str());
                span.record("event_type", d.event.kind.as_str());
            }
            let outcome = worker.deliver_body(body, attempt).await;
            match &outcome {
                Outcome::Delivered => {}
                Outcome::Dropped(why) => info!(why, "delivery dropped"),
                Outcome::RetryAfter(wait) => {
                    // Visibility is whole seconds: round up, never down to "at once".
                    let wait = Duration::from_secs(wait.as_secs_f64().ceil() as u64);
                    info!(attempt, wait_s = wait.as_secs(), "delivery failed; retrying later");
                    queue.delay(record, wait).await;
                }
                Outcome::GaveUp => warn!(attempt, "delivery failed for good; given up"),
                Outcome::Poison(reason) => warn!(
                    reason = %reason,
                    "unusable queue message; it goes to the dead-letter queue after the configured receives"
                ),
            }
            (id, outcome)
        }
        .instrument(span)
    }))
    .await;
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|(_, o)| f(o)).count();
    info!(
        delivered = count(|o| matches!(o, Outcome::Delivered)),
        retrying = count(|o| matches!(o, Outcome::RetryAfter(_))),
        dropped = count(|o| matches!(o, Outcome::Dropped(_))),
        given_up = count(|o| matches!(o, Outcome::GaveUp)),
        unusable = count(|o| matches!(o, Outcome::Poison(_))),
        "status webhook batch"
    );
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = results
        .into_iter()
        .filter(|(_, o)| matches!(o, Outcome::RetryAfter(_) | Outcome::Poison(_)))
        .map(|(id, _)| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_get_no_connection() {
        let name = |host: &str| host.parse::<reqwest::dns::Name>().expect("name");
        let strict = GuardedResolver {
            urls: UrlPolicy::default(),
        };
        let refused = strict
            .resolve(name("localhost"))
            .await
            .err()
            .expect("refused");
        assert!(refused.is::<AddressRefused>(), "{refused}");
        let local = GuardedResolver {
            urls: UrlPolicy {
                allow_loopback: true,
            },
        };
        let addresses: Vec<SocketAddr> = local
            .resolve(name("localhost"))
            .await
            .expect("loopback allowed locally")
            .collect();
        assert!(!addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn configuration_comes_from_the_environment_with_safe_defaults() {
        let defaults = WorkerConfig::from_vars(&|_| None).expect("defaults");
        assert_eq!(defaults.schedule, SCHEDULE.to_vec());
        assert_eq!(defaults.disable, DisablePolicy::default());
        assert!(!defaults.urls.allow_loopback);
        let vars = HashMap::from([
            ("STATUS_WEBHOOK_RETRY_SCHEDULE", "1, 1,2"),
            ("STATUS_WEBHOOK_DISABLE_AFTER_FAILURES", "3"),
            ("STATUS_WEBHOOK_DISABLE_AFTER_SECONDS", "0"),
            ("WEBHOOKS_ALLOW_LOOPBACK", "true"),
        ]);
        let local = WorkerConfig::from_vars(&|n| vars.get(n).map(|v| (*v).to_owned()))
            .expect("local values");
        assert_eq!(local.schedule, [1, 1, 2].map(Duration::from_secs).to_vec());
        assert_eq!(
            local.disable,
            DisablePolicy {
                failures: 3,
                over: Duration::ZERO
            }
        );
        assert!(local.urls.allow_loopback);
        let empty =
            WorkerConfig::from_vars(&|n| (n == "STATUS_WEBHOOK_RETRY_SCHEDULE").then(String::new))
                .expect("empty = default");
        assert_eq!(empty.schedule, SCHEDULE.to_vec());
        assert!(
            WorkerConfig::from_vars(
                &|n| (n == "STATUS_WEBHOOK_RETRY_SCHEDULE").then(|| "1,x".to_owned())
            )
            .is_err()
        );
    }
}
