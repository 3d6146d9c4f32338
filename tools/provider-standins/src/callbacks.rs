//! Twilio status callbacks: after a Message is created with a `StatusCallback` URL, the stand-in
//! POSTs the later status changes there the way Twilio does (form body, `X-Twilio-Signature`,
//! `TwilioProxy/1.1`, `I-Twilio-Idempotency-Token`).
//!
//! Each accepted message takes the next queued [`DeliveryOutcome`] (or the default, `delivered`),
//! which decides the callbacks: `sent` then `delivered`, `sent` then `undelivered` with an
//! `ErrorCode`, `failed` alone (a failed message was never sent), or none at all. Callbacks run
//! in a task of their own, never holding up the create answer; every attempt is recorded in the
//! journal.
//!
//! Only loopback receivers (`localhost`, `127.0.0.0/8`, `[::1]`) are called unless
//! [`crate::StandInsBuilder::allow_remote_status_callbacks`] says otherwise: a test or demo whose
//! callback URL names a public host (`hooks.herald.example`, an API Gateway domain) never sends
//! signed requests out of the machine.
//!
//! Bounds: each status waits [`DEFAULT_STATUS_CALLBACK_DELAY`] (configurable) first, so the
//! caller has stored the message sid before its callbacks arrive; each attempt times out after
//! [`STATUS_CALLBACK_TIMEOUT`]; a failed attempt (no answer or a non-2xx one) is retried after
//! [`STATUS_CALLBACK_RETRY_DELAY`], [`STATUS_CALLBACK_ATTEMPTS`] attempts in all (real Twilio
//! retries connection failures only); at most [`MAX_IN_FLIGHT`] requests at once and
//! [`MAX_PENDING`] messages waiting (more are not called back, with a warning); shutdown stops
//! them all at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::journal::CallbackAttempt;
use crate::{Provider, Shared};

/// How long each status waits before it is reported (after the create answer, then after the
/// previous status), unless [`crate::StandInsBuilder::status_callback_delay`] says otherwise.
pub const DEFAULT_STATUS_CALLBACK_DELAY: Duration = Duration::from_millis(500);
/// How long one callback request may take before it counts as failed.
pub const STATUS_CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per status callback, the first included.
pub const STATUS_CALLBACK_ATTEMPTS: u32 = 3;
/// Pause before each retry of a failed callback.
pub const STATUS_CALLBACK_RETRY_DELAY: Duration = Duration::from_millis(250);
/// Callback requests in flight at once, across all messages.
pub(crate) const MAX_IN_FLIGHT: usize = 32;
/// Messages whose callbacks may be pending at once; later ones are not called back.
pub(crate) const MAX_PENDING: usize = 10_000;

const API_VERSION: &str = "2010-04-01";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const USER_AGENT: &str = "TwilioProxy/1.1";
/// Twilio rejects longer `StatusCallback` URLs (21609).
const MAX_URL_LEN: usize = 4000;
/// `ErrorCode` when the control API names none: "Unreachable destination handset".
const DEFAULT_UNDELIVERED_CODE: u32 = 30003;
/// `ErrorCode` when the control API names none: "Unknown error".
const DEFAULT_FAILED_CODE: u32 = 30008;

/// How a Twilio message ends, and so which status callbacks its `StatusCallback` URL receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// `sent`, then `delivered`.
    #[default]
    Delivered,
    /// `sent`, then `undelivered` with this `ErrorCode` (e.g. 30003 unreachable handset, 30005
    /// unknown handset, 30007 filtered).
    Undelivered { error_code: u32 },
    /// `failed` with this `ErrorCode`, and no `sent` before it: Twilio could not send it.
    Failed { error_code: u32 },
    /// No callback at all, for tests that post their own receipts.
    NoCallback,
}

impl DeliveryOutcome {
    /// The `MessageStatus` values posted, in order, with their `ErrorCode`.
    fn statuses(self) -> &'static [(&'static str, bool)] {
        match self {
            DeliveryOutcome::Delivered => &[("sent", false), ("delivered", false)],
            DeliveryOutcome::Undelivered { .. } => &[("sent", false), ("undelivered", true)],
            DeliveryOutcome::Failed { .. } => &[("failed", true)],
            DeliveryOutcome::NoCallback => &[],
        }
    }

    fn error_code(self) -> Option<u32> {
        match self {
            DeliveryOutcome::Undelivered { error_code }
            | DeliveryOutcome::Failed { error_code } => Some(error_code),
            DeliveryOutcome::Delivered | DeliveryOutcome::NoCallback => None,
        }
    }

    /// Builds an outcome from the control API's fields: `status` is `delivered`, `undelivered`,
    /// `failed` or `none`; `error_code` only goes with `undelivered` (default 30003) and
    /// `failed` (default 30008).
    pub(crate) fn from_parts(status: &str, error_code: Option<u32>) -> Result<Self, String> {
        if error_code == Some(0) {
            return Err("error_code must be a Twilio error code, not 0".to_owned());
        }
        match (status, error_code) {
            ("delivered", None) => Ok(DeliveryOutcome::Delivered),
            ("none", None) => Ok(DeliveryOutcome::NoCallback),
            ("undelivered", code) => Ok(DeliveryOutcome::Undelivered {
                error_code: code.unwrap_or(DEFAULT_UNDELIVERED_CODE),
            }),
            ("failed", code) => Ok(DeliveryOutcome::Failed {
                error_code: code.unwrap_or(DEFAULT_FAILED_CODE),
            }),
            ("delivered" | "none", Some(_)) => {
                Err(format!("error_code does not go with status {status:?}"))
            }
            _ => Err(format!(
                "unknown status {status:?}; expected delivered, undelivered, failed or none"
            )),
        }
    }
}

/// JSON form: `{"status": "delivered"}`, `{"status": "undelivered", "error_code": 30005}`,
/// `{"status": "failed", "error_code": 30008}` or `{"status": "none"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeJson {
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<u32>,
}

impl Serialize for DeliveryOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Undelivered { .. } => "undelivered",
            DeliveryOutcome::Failed { .. } => "failed",
            DeliveryOutcome::NoCallback => "none",
        };
        OutcomeJson {
            status: status.to_owned(),
            error_code: self.error_code(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DeliveryOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = OutcomeJson::deserialize(deserializer)?;
        DeliveryOutcome::from_parts(&json.status, json.error_code).map_err(D::Error::custom)
    }
}

struct Outcomes {
    queued: VecDeque<DeliveryOutcome>,
    default: DeliveryOutcome,
}

/// Status-callback state shared by every handler: the outcome queue and the HTTP client.
pub(crate) struct Callbacks {
    outcomes: Mutex<Outcomes>,
    client: reqwest::Client,
    delay: Duration,
    /// Whether non-loopback receivers are called too.
    any_host: bool,
    in_flight: Semaphore,
    pending: AtomicUsize,
    dropped: AtomicU64,
    skipped_remote: AtomicU64,
}

impl Callbacks {
    pub(crate) fn new(
        default: DeliveryOutcome,
        delay: Duration,
        any_host: bool,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(STATUS_CALLBACK_TIMEOUT)
            .connect_timeout(STATUS_CALLBACK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // The stand-in plays Twilio calling the receiver directly, never through a proxy.
            .no_proxy()
            .build()?;
        Ok(Self {
            outcomes: Mutex::new(Outcomes {
                queued: VecDeque::new(),
                default,
            }),
            client,
            delay,
            any_host,
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            pending: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            skipped_remote: AtomicU64::new(0),
        })
    }

    fn outcomes(&self) -> MutexGuard<'_, Outcomes> {
        self.outcomes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `count` copies of `outcome` behind those already queued; returns how many are.
    pub(crate) fn push(&self, count: usize, outcome: DeliveryOutcome) -> usize {
        let mut outcomes = self.outcomes();
        outcomes.queued.extend(std::iter::repeat_n(outcome, count));
        outcomes.queued.len()
    }

    /// The outcome of the next accepted message: the oldest queued one, else the default.
    pub(crate) fn next(&self) -> DeliveryOutcome {
        let mut outcomes = self.outcomes();
        let default = outcomes.default;
        outcomes.queued.pop_front().unwrap_or(default)
    }

    pub(crate) fn queued(&self) -> Vec<DeliveryOutcome> {
        self.outcomes().queued.iter().copied().collect()
    }

    pub(crate) fn default_outcome(&self) -> DeliveryOutcome {
        self.outcomes().default
    }

    pub(crate) fn set_default(&self, outcome: DeliveryOutcome) {
        self.outcomes().default = outcome;
    }

    pub(crate) fn clear(&self) {
        self.outcomes().queued.clear();
    }

    /// Whether a request to `url` may go out: loopback hosts always, others only when remote
    /// callbacks are allowed.
    pub(crate) fn may_call(&self, url: &str) -> bool {
        self.any_host || is_loopback(url)
    }

    /// The client callbacks and webhooks go out with (no proxy, no redirects, bounded time).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Bounds the requests in flight at once, across callbacks and webhooks.
    pub(crate) fn in_flight(&self) -> &Semaphore {
        &self.in_flight
    }
}

/// Whether Twilio would take `url` as a `StatusCallback`: absolute http(s), a host without
/// underscores, at most 4000 characters.
pub(crate) fn is_valid_url(url: &str) -> bool {
    url.len() <= MAX_URL_LEN
        && url::Url::parse(url).is_ok_and(|parsed| {
            matches!(parsed.scheme(), "http" | "https")
                && parsed
                    .host_str()
                    .is_some_and(|host| !host.is_empty() && !host.contains('_'))
        })
}

/// Whether `url`'s host is this machine: `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Logs the first and every 1000th of a repeated warning, not each one.
fn now_and_then(counter: &AtomicU64) -> Option<u64> {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    (n == 1 || n.is_multiple_of(1000)).then_some(n)
}

/// One accepted message whose status changes go to its `StatusCallback`.
pub(crate) struct Delivery {
    /// The `StatusCallback` URL exactly as given; also what the signature covers.
    pub(crate) url: String,
    /// The account's auth token (also when an API key created the message): the signing key.
    pub(crate) auth_token: String,
    pub(crate) account_sid: String,
    pub(crate) message_sid: String,
    /// As on the message: `whatsapp:`-prefixed for WhatsApp, absent for a Messaging Service.
    pub(crate) from: Option<String>,
    pub(crate) to: String,
    pub(crate) messaging_service_sid: Option<String>,
    /// `sms` or `whatsapp`.
    pub(crate) channel_prefix: &'static str,
    pub(crate) outcome: DeliveryOutcome,
}

impl Delivery {
    /// The callback's form parameters, in Twilio's (alphabetical) order.
    fn params(&self, status: &str, error_code: Option<u32>) -> Vec<(String, String)> {
        let mut params: Vec<(&str, String)> = vec![
            ("AccountSid", self.account_sid.clone()),
            ("ApiVersion", API_VERSION.to_owned()),
            ("ChannelPrefix", self.channel_prefix.to_owned()),
        ];
        if let Some(code) = error_code {
            params.push(("ErrorCode", code.to_string()));
        }
        if let Some(from) = &self.from {
            params.push(("From", from.clone()));
        }
        params.push(("MessageSid", self.message_sid.clone()));
        params.push(("MessageStatus", status.to_owned()));
        if let Some(service) = &self.messaging_service_sid {
            params.push(("MessagingServiceSid", service.clone()));
        }
        params.push(("SmsSid", self.message_sid.clone()));
        params.push(("SmsStatus", status.to_owned()));
        params.push(("To", self.to.clone()));
        params
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }
}

/// Counts a message as pending for as long as its callback task lives.
struct PendingSlot(Arc<Shared>);

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.0.callbacks.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts reporting `delivery`'s status changes in the background (nothing for
/// [`DeliveryOutcome::NoCallback`]).
pub(crate) fn spawn(shared: &Arc<Shared>, delivery: Delivery) {
    if delivery.outcome.statuses().is_empty() {
        return;
    }
    let callbacks = &shared.callbacks;
    if !callbacks.any_host && !is_loopback(&delivery.url) {
        if let Some(skipped) = now_and_then(&callbacks.skipped_remote) {
            tracing::warn!(
                provider = %Provider::Twilio,
                skipped,
                "status callback URL is not on this machine; not calling back \
                 (allow_remote_status_callbacks / --allow-remote-callbacks to allow)"
            );
        }
        return;
    }
    if callbacks.pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING {
        callbacks.pending.fetch_sub(1, Ordering::Relaxed);
        if let Some(dropped) = now_and_then(&callbacks.dropped) {
            tracing::warn!(
                provider = %Provider::Twilio,
                dropped,
                max_pending = MAX_PENDING,
                "too many pending status callbacks; not calling back"
            );
        }
        return;
    }
    let slot = PendingSlot(shared.clone());
    tokio::spawn(async move {
        let shared = &slot.0;
        let mut stopping = shared.stopping.subscribe();
        // Stopping first: once shut down, not even a due retry goes out.
        tokio::select! {
            biased;
            _ = stopping.wait_for(|&stopping| stopping) => {}
            () = deliver(shared, &delivery) => {}
        }
    });
}

async fn deliver(shared: &Shared, delivery: &Delivery) {
    let error_code = delivery.outcome.error_code();
    for &(status, with_code) in delivery.outcome.statuses() {
        tokio::time::sleep(shared.callbacks.delay).await;
        let code = if with_code { error_code } else { None };
        // The resource moves first, so a receiver fetching it on the callback sees the change.
        shared
            .twilio_messages
            .advance(&delivery.message_sid, status, code);
        post(shared, delivery, status, code).await;
    }
}

/// Posts one status, retrying a failed attempt up to the bound; records every attempt.
async fn post(shared: &Shared, delivery: &Delivery, status: &str, error_code: Option<u32>) {
    let params = delivery.params(status, error_code);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let signature = signature(&delivery.auth_token, &delivery.url, &params);
    // One token per status change, the same on its retries, as Twilio's.
    let idempotency_token = idempotency_token();
    for attempt in 1..=STATUS_CALLBACK_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(STATUS_CALLBACK_RETRY_DELAY).await;
        }
        let Ok(_permit) = shared.callbacks.in_flight.acquire().await else {
            return;
        };
        let attempted_at = OffsetDateTime::now_utc();
        let result = shared
            .callbacks
            .client
            .post(&delivery.url)
            .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
            .header(ACCEPT, "*/*")
            .header("X-Twilio-Signature", &signature)
            .header("I-Twilio-Idempotency-Token", &idempotency_token)
            .header("X-Home-Region", "us1")
            .body(body.clone())
            .send()
            .await;
        let (http_status, error) = match result {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(describe(e))),
        };
        // Status and attempt only: the URL carries the receiver's token, the form numbers.
        tracing::info!(
            provider = %Provider::Twilio,
            message_status = status,
            attempt,
            http_status,
            error = error.as_deref(),
            "status callback"
        );
        shared.journal.record_callback(CallbackAttempt {
            provider: Provider::Twilio,
            message_id: delivery.message_sid.clone(),
            url: delivery.url.clone(),
            message_status: status.to_owned(),
            error_code,
            attempt,
            form: params.clone(),
            signature: signature.clone(),
            idempotency_token: idempotency_token.clone(),
            http_status,
            error,
            attempted_at,
        });
        if http_status.is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
    }
}

/// Why a callback got no answer, without the URL.
pub(crate) fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth token, over the URL followed by
/// every parameter's name and value, sorted by name (then value).
pub(crate) fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A random UUID (version 4), the shape of Twilio's idempotency tokens.
pub(crate) fn idempotency_token() -> String {
    let n = (rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_json_round_trips() -> anyhow::Result<()> {
        for (outcome, json) in [
            (DeliveryOutcome::Delivered, r#"{"status":"delivered"}"#),
            (
                DeliveryOutcome::Undelivered { error_code: 30005 },
                r#"{"status":"undelivered","error_code":30005}"#,
            ),
            (
                DeliveryOutcome::Failed { error_code: 30008 },
                r#"{"status":"failed","error_code":30008}"#,
            ),
            (DeliveryOutcome::NoCallback, r#"{"status":"none"}"#),
        ] {
            assert_eq!(serde_json::to_string(&outcome)?, json);
            assert_eq!(serde_json::from_str::<DeliveryOutcome>(json)?, outcome);
        }
        assert_eq!(
            serde_json::from_str::<DeliveryOutcome>(r#"{"status":"undelivered"}"#)?,
            DeliveryOutcome::Undelivered { error_code: 30003 }
        );
        for bad in [
            r#"{"status":"delivered","error_code":30003}"#,
            r#"{"status":"failed","error_code":0}"#,
            r#"{"status":"read"}"#,
            r#"{"status":"delivered","extra":1}"#,
        ] {
            assert!(
                serde_json::from_str::<DeliveryOutcome>(bad).is_err(),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn queued_outcomes_come_before_the_default() -> anyhow::Result<()> {
        let callbacks = Callbacks::new(DeliveryOutcome::Delivered, Duration::ZERO, false)?;
        callbacks.push(2, DeliveryOutcome::NoCallback);
        assert_eq!(callbacks.queued().len(), 2);
        assert_eq!(callbacks.next(), DeliveryOutcome::NoCallback);
        callbacks.set_default(DeliveryOutcome::Failed { error_code: 30001 });
        assert_eq!(callbacks.next(), DeliveryOutcome::NoCallback);
        assert_eq!(
            callbacks.next(),
            DeliveryOutcome::Failed { error_code: 30001 }
        );
        callbacks.push(1, DeliveryOutcome::Delivered);
        callbacks.clear();
        assert!(callbacks.queued().is_empty());
        Ok(())
    }

    #[test]
    fn only_absolute_http_urls_are_callbacks() {
        for good in [
            "https://hooks.herald.example/webhooks/twilio/whk?x=1",
            "http://127.0.0.1:8080/r",
        ] {
            assert!(is_valid_url(good), "{good}");
        }
        for bad in [
            "ftp://example.com/r",
            "/relative",
            "https://under_score.example/r",
            "not a url",
            &format!("https://example.com/{}", "a".repeat(4000)),
        ] {
            assert!(!is_valid_url(bad), "{bad}");
        }
    }

    #[test]
    fn only_loopback_hosts_are_local() {
        for local in [
            "http://127.0.0.1:8080/r",
            "http://127.1.2.3/r",
            "http://localhost:3000/r",
            "http://[::1]:3000/r",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "https://hooks.herald.example/r",
            "https://abc.execute-api.eu-west-1.amazonaws.com/r",
            "http://10.0.0.1/r",
            "http://0.0.0.0/r",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn signature_matches_twilios_documented_example() {
        // Twilio's webhook-security example: this URL, these parameters, token 12345.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn idempotency_tokens_are_v4_uuids() {
        let token = idempotency_token();
        assert_eq!(token.len(), 36);
        assert_eq!(token.as_bytes()[14], b'4');
        assert!(matches!(token.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(token, idempotency_token());
    }
}
