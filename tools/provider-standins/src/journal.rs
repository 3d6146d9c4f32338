//! The bounded in-memory record of what reached the stand-ins: every request as received, every
//! message a provider accepted and every status callback attempted, with a way to wait for new
//! entries.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::{Fault, Provider};

/// One HTTP request that reached a provider stand-in, as the client sent it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedRequest {
    /// Position in arrival order, unique for the server's lifetime.
    pub seq: u64,
    pub provider: Provider,
    pub method: String,
    /// Path below the provider's base, e.g. `/2010-04-01/Accounts/AC.../Messages.json`
    /// (for Meta it includes the Graph version: `/v21.0/{phone_number_id}/messages`).
    pub path: String,
    /// Raw query string without the `?`.
    pub query: Option<String>,
    /// Header names (lowercase) and values in the order received.
    pub headers: Vec<(String, String)>,
    /// Raw body; JSON carries it as (lossy) UTF-8 text.
    #[serde(with = "body_text")]
    pub body: Bytes,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Status answered, once known (`None` while in flight or if the client went away).
    pub status: Option<u16>,
    /// The injected fault this request consumed, if any.
    pub fault: Option<Fault>,
}

impl CapturedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn body_json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The body parsed as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

/// Headers that carry credentials; `Debug` output hides their values.
const SECRET_HEADERS: [&str; 3] = ["authorization", "apikey", "api-key"];

impl std::fmt::Debug for CapturedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let shown = if SECRET_HEADERS.iter().any(|s| n.eq_ignore_ascii_case(s)) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (n.as_str(), shown)
            })
            .collect();
        f.debug_struct("CapturedRequest")
            .field("seq", &self.seq)
            .field("provider", &self.provider)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .field("received_at", &self.received_at)
            .field("status", &self.status)
            .field("fault", &self.fault)
            .finish()
    }
}

/// The kind of message a provider accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Whatsapp,
    Email,
}

/// A message a stand-in accepted for delivery, one per recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub provider: Provider,
    pub channel: Channel,
    /// The provider's id for it: Twilio `SM...`, Africa's Talking `ATXid_...`, Brevo
    /// `<...@smtp-relay.mailin.fr>`, Meta `wamid....`.
    pub id: String,
    /// Recipient as the client wrote it (`whatsapp:` prefix and all).
    pub to: String,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// Text of the message (SMS/WhatsApp text, email text part or else HTML part).
    pub body: Option<String>,
    /// Template name (Meta), content sid (Twilio `HX...`) or template id (Brevo), when the
    /// message used one.
    pub template: Option<String>,
    /// The template's language (Meta `template.language.code`, Twilio the content's
    /// `language`), for template sends.
    #[serde(default)]
    pub language: Option<String>,
    /// `seq` of the request that sent it.
    pub request_seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

/// One attempt at a status callback the stand-in made (Twilio's `StatusCallback`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAttempt {
    pub provider: Provider,
    /// The message it reports on (Twilio `SM...`).
    pub message_id: String,
    /// Where it went: the `StatusCallback` URL exactly as given.
    pub url: String,
    /// `MessageStatus` posted: `sent`, `delivered`, `undelivered` or `failed`.
    pub message_status: String,
    /// `ErrorCode` posted, for `undelivered` and `failed`.
    pub error_code: Option<u32>,
    /// 1 for the first attempt at this status, 2 for its first retry, ...
    pub attempt: u32,
    /// Form parameters posted, in the order sent.
    pub form: Vec<(String, String)>,
    /// `X-Twilio-Signature` sent.
    pub signature: String,
    /// `I-Twilio-Idempotency-Token` sent: one per status, the same on its retries.
    pub idempotency_token: String,
    /// HTTP status the receiver answered; `None` if it did not (see `error`).
    pub http_status: Option<u16>,
    /// Why there was no answer: timed out, connection failed, ...
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
}

impl CallbackAttempt {
    /// Value of form parameter `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the receiver answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.http_status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Like `CapturedRequest`'s, leaves out what carries numbers or secrets: the URL's query (a
/// receiver token), the form values and the signature.
impl std::fmt::Debug for CallbackAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.split(['?', '#']).next().unwrap_or_default();
        let fields: Vec<&str> = self.form.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("CallbackAttempt")
            .field("provider", &self.provider)
            .field("message_id", &self.message_id)
            .field("url", &url)
            .field("message_status", &self.message_status)
            .field("error_code", &self.error_code)
            .field("attempt", &self.attempt)
            .field("fields", &fields)
            .field("http_status", &self.http_status)
            .field("error", &self.error)
            .field("attempted_at", &self.attempted_at)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Journal {
    inner: Mutex<Entries>,
    changed: Notify,
    max_requests: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Entries {
    next_seq: u64,
    requests: VecDeque<CapturedRequest>,
    request_bytes: usize,
    sent: VecDeque<SentMessage>,
    callbacks: VecDeque<CallbackAttempt>,
}

impl Journal {
    pub(crate) fn new(max_requests: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Entries::default()),
            changed: Notify::new(),
            max_requests: max_requests.max(1),
            max_bytes,
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `request` under a fresh `seq`, evicting the oldest entries past the bounds.
    pub(crate) fn record(&self, mut request: CapturedRequest) -> u64 {
        let seq = {
            let mut entries = self.entries();
            entries.next_seq += 1;
            let seq = entries.next_seq;
            request.seq = seq;
            entries.request_bytes += request.body.len();
            entries.requests.push_back(request);
            while entries.requests.len() > self.max_requests
                || (entries.request_bytes > self.max_bytes && entries.requests.len() > 1)
            {
                if let Some(old) = entries.requests.pop_front() {
                    entries.request_bytes -= old.body.len();
                }
            }
            seq
        };
        self.changed.notify_waiters();
        seq
    }

    pub(crate) fn set_status(&self, seq: u64, status: u16) {
        let mut entries = self.entries();
        if let Some(request) = entries.requests.iter_mut().rev().find(|r| r.seq == seq) {
            request.status = Some(status);
        }
    }

    pub(crate) fn record_sent(&self, messages: Vec<SentMessage>) {
        {
            let mut entries = self.entries();
            entries.sent.extend(messages);
            while entries.sent.len() > self.max_requests {
                entries.sent.pop_front();
            }
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn record_callback(&self, attempt: CallbackAttempt) {
        {
            let mut entries = self.entries();
            entries.callbacks.push_back(attempt);
            while entries.callbacks.len() > self.max_requests {
                entries.callbacks.pop_front();
            }
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn callbacks(&self, provider: Option<Provider>) -> Vec<CallbackAttempt> {
        self.entries()
            .callbacks
            .iter()
            .filter(|c| provider.is_none_or(|p| c.provider == p))
            .cloned()
            .collect()
    }

    pub(crate) fn requests(&self, provider: Option<Provider>) -> Vec<CapturedRequest> {
        self.entries()
            .requests
            .iter()
            .filter(|r| provider.is_none_or(|p| r.provider == p))
            .cloned()
            .collect()
    }

    pub(crate) fn sent(&self, provider: Option<Provider>) -> Vec<SentMessage> {
        self.entries()
            .sent
            .iter()
            .filter(|m| provider.is_none_or(|p| m.provider == p))
            .cloned()
            .collect()
    }

    pub(crate) fn clear(&self) {
        let mut entries = self.entries();
        entries.requests.clear();
        entries.request_bytes = 0;
        entries.sent.clear();
        entries.callbacks.clear();
    }

    /// Waits until `read` returns at least `count` items, or `timeout` passes.
    pub(crate) async fn wait_for<T>(
        &self,
        count: usize,
        timeout: Duration,
        read: impl Fn(&Self) -> Vec<T>,
    ) -> Result<Vec<T>, Vec<T>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before reading so a change between the read and the wait is
            // not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let items = read(self);
            if items.len() >= count {
                return Ok(items);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(read(self));
            }
        }
    }
}

mod body_text {
    use axum::body::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(body: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(body))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Bytes, D::Error> {
        Ok(Bytes::from(String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> CapturedRequest {
        CapturedRequest {
            seq: 0,
            provider: Provider::Brevo,
            method: "POST".into(),
            path: "/v3/smtp/email".into(),
            query: None,
            headers: vec![("api-key".into(), "secret-key".into())],
            body: Bytes::from(body.to_owned()),
            received_at: OffsetDateTime::now_utc(),
            status: None,
            fault: None,
        }
    }

    #[test]
    fn evicts_oldest_past_either_bound() {
        let journal = Journal::new(3, 10);
        for body in ["aaaa", "bbbb", "cccc"] {
            journal.record(request(body));
        }
        // 12 bytes > 10: the oldest goes.
        let kept: Vec<String> = journal
            .requests(None)
            .iter()
            .map(|r| r.body_text())
            .collect();
        assert_eq!(kept, ["bbbb", "cccc"]);
        for body in ["d", "e", "f"] {
            journal.record(request(body));
        }
        let kept: Vec<u64> = journal.requests(None).iter().map(|r| r.seq).collect();
        assert_eq!(kept, [4, 5, 6]);
    }

    #[test]
    fn debug_hides_credentials_and_body() {
        let debug = format!("{:?}", request("to=+254711000000"));
        assert!(!debug.contains("secret-key"));
        assert!(!debug.contains("254711"));
    }

    #[tokio::test]
    async fn wait_for_wakes_on_new_entries() {
        let journal = std::sync::Arc::new(Journal::new(10, 1 << 20));
        let writer = journal.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.record(request("x"));
        });
        let got = journal
            .wait_for(1, Duration::from_secs(5), |j| j.requests(None))
            .await;
        assert_eq!(got.map(|r| r.len()), Ok(1));
        let timed_out = journal
            .wait_for(5, Duration::from_millis(20), |j| j.requests(None))
            .await;
        assert_eq!(timed_out.map_err(|r| r.len()), Err(1));
    }
}
