//! Dispatch: one queued message to one person, through the provider chain of the event's
//! *active* snapshot (so a rollback also reroutes messages still in the queues; the content was
//! rendered at send time). A conditional claim on the message record comes
//! before any provider call, so a redelivered queue message never sends twice. Then the
//! recipient is judged again ([`recipient_gate`](crate::recipient_gate)): an opt-out,
//! suppression or withdrawal that arrived while the message waited fails it unsent, and quiet
//! hours set since hold it. Providers are
//! tried in routing order (priority, then a weighted pick stable per recipient), skipping those
//! whose circuit is open; outages and refusals of *us* fail over, a refusal of the *recipient*
//! fails the message, and when every provider is down the message goes back to the queue with
//! a backoff.
//!
//! The ambiguous case: a dispatcher that dies after a provider accepted the message but before
//! the outcome is written leaves its claim behind. A later delivery that finds a claim older than
//! the lease does not send again; it settles the message as `failed` with reason
//! `outcome_unknown` (Herald prefers a missed message to a duplicate one), and a receipt from the
//! provider can still correct it later.
//!
//! Once settled, the message's status event goes to the status-event sink (tenants' webhooks).
//! If that fails the queue message is retried; the redelivery finds the message settled and
//! publishes its current status again (event ids are derived from the change, so a repeat is
//! harmless).
//!
//! A record too large to store ([`StoreError::is_permanent`]: its attempts or content grew it
//! past DynamoDB's item limit) is refused on every retry, so it is never retried: the message is
//! settled as `failed` with reason `record_too_large` in a smaller record (without its content
//! and without attempts other than an accepted one), and the queue message is acknowledged. A
//! message a provider accepted is not sent again, even when nothing could be written.

pub mod circuit;
pub mod rate;
pub mod sqs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::credentials::{CredentialVault, OpenCredentials};
use crate::domain::audit::AuditEntry;
use crate::domain::cost::{Currency, Money, RateTable};
use crate::domain::message::{Attempt, AttemptOutcome, Message, MessageId, MessageStatus};
use crate::domain::preferences::Verdict;
use crate::domain::resolution::{ResolvedConfiguration, ResolvedProvider};
use crate::domain::routing::provider_order;
use crate::domain::snapshot::Snapshot;
use crate::domain::status_event::StatusEvent;
use crate::domain::whatsapp::{self, TemplateCall};
use crate::domain::{Channel, EventId, ProviderId, TenantId};
use crate::providers::{ChannelSender, Outbound, SendError};
use crate::recipient_gate::{self, Asked};
use crate::status_webhooks::StatusEventSink;
use crate::store::{
    ClaimResult, ConsentStore, MessageStore, RecipientStore, SnapshotStore, StoreError,
};
use circuit::CircuitBreaker;
use rate::RateLimits;

/// What the fan-out topic carries: the id (the record holds the message) and, for a message
/// sent inside its recipient's quiet hours, when it may go out, so dispatch can hold it without
/// reading the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub message_id: MessageId,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_before: Option<OffsetDateTime>,
}

impl QueuedMessage {
    pub fn of(message: &Message) -> Self {
        Self {
            message_id: message.id.clone(),
            not_before: message.not_before,
        }
    }
}

/// How long until `not_before`, rounded up to whole seconds (what a visibility timeout takes:
/// rounding down would bring the message back a moment early, to be held once more).
fn until(not_before: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<Duration> {
    let wait = not_before? - now;
    wait.is_positive().then(|| {
        Duration::from_secs(wait.as_seconds_f64().ceil() as u64).max(Duration::from_secs(1))
    })
}

/// What to do with the queue message after dispatching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Settled (sent or failed) or nothing to do: delete it from the queue.
    Done,
    /// Try again after this long (visibility change, then redelivery; the dead-letter queue
    /// takes it after the configured number of receives).
    RetryAfter(Duration),
    /// Unusable input: leave it to redelivery and, in the end, the dead-letter queue.
    Poison(String),
    /// Not due yet (the recipient's quiet hours): redeliver after this long. No provider was
    /// tried and nothing was recorded; the wait is set as the visibility timeout (at most 12 h
    /// per receive, so a longer hold takes a few receives; see docs/architecture.md on the
    /// queue's maxReceiveCount).
    Hold(Duration),
}

impl Disposition {
    /// A retry after a released claim, as a hold (nothing was tried).
    fn held(self) -> Self {
        match self {
            Disposition::RetryAfter(wait) => Disposition::Hold(wait),
            other => other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// A claim older than this belongs to a dispatcher that died.
    pub lease: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub breaker_threshold: u32,
    pub breaker_cool_down: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(900),
            breaker_threshold: 5,
            breaker_cool_down: Duration::from_secs(30),
        }
    }
}

/// What a send does when every provider failed for now: a queued message goes back to its
/// queue to be retried; a test send, which nobody retries, fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exhausted {
    Retry,
    Fail,
}

type SnapshotKey = (TenantId, EventId, u32);
/// A provider and its sealed credentials' ciphertext (a credential change is a new entry).
type CredentialKey = (ProviderId, String);
type OpenedCredentials = (Instant, Arc<OpenCredentials>);

pub struct Dispatcher {
    pub messages: Arc<dyn MessageStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    /// Opt-outs, suppressions, consent decisions and preferences, judged before each send.
    pub consents: Arc<dyn ConsentStore>,
    /// When each recipient last wrote to a WhatsApp provider (the customer-service window).
    pub recipients: Arc<dyn RecipientStore>,
    pub vault: Arc<dyn CredentialVault>,
    pub sender: Arc<dyn ChannelSender>,
    /// Prices for the cost of a message when its provider reports none.
    pub rates: Arc<RateTable>,
    /// Where settled messages' status events go (tenants' webhooks).
    pub status_events: Arc<dyn StatusEventSink>,
    pub config: DispatchConfig,
    /// Herald's public API URL: providers that take a per-message callback URL (Twilio's
    /// `StatusCallback`) are told to report to the configuration's receipt route under it.
    pub receipts_base_url: Option<String>,
    breaker: CircuitBreaker,
    limits: RateLimits,
    /// Snapshots are immutable: cached for the container's life.
    snapshot_cache: Mutex<HashMap<SnapshotKey, Arc<Snapshot>>>,
    /// Which version is active per event, re-read every few seconds.
    activation_cache: Mutex<HashMap<(TenantId, EventId), (Instant, u32)>>,
    /// Opened credentials, per provider and sealed value, for a few minutes (saves a KMS call per message).
    credential_cache: Mutex<HashMap<CredentialKey, OpenedCredentials>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const CREDENTIALS_TTL: Duration = Duration::from_secs(300);
const SNAPSHOT_CACHE_LIMIT: usize = 256;
/// How long a container trusts its idea of an event's active version (rollbacks reach routing
/// within this delay).
const ACTIVATION_TTL: Duration = Duration::from_secs(10);
/// Longest a message waits for a provider's rate limit before trying the next provider.
const RATE_WAIT: Duration = Duration::from_secs(5);
/// When a settled message's status event could not be published: redeliver soon to publish again.
const PUBLISH_RETRY: Duration = Duration::from_secs(5);

impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        messages: Arc<dyn MessageStore>,
        snapshots: Arc<dyn SnapshotStore>,
        consents: Arc<dyn ConsentStore>,
        recipients: Arc<dyn RecipientStore>,
        vault: Arc<dyn CredentialVault>,
        sender: Arc<dyn ChannelSender>,
        rates: Arc<RateTable>,
        status_events: Arc<dyn StatusEventSink>,
        config: DispatchConfig,
    ) -> Self {
        let breaker = CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down);
        Self {
            messages,
            snapshots,
            consents,
            recipients,
            vault,
            sender,
            rates,
            status_events,
            config,
            receipts_base_url: None,
            breaker,
            limits: RateLimits::from_env(),
            snapshot_cache: Mutex::new(HashMap::new()),
            activation_cache: Mutex::new(HashMap::new()),
            credential_cache: Mutex::new(HashMap::new()),
        }
    }

    /// A dispatcher over an [`App`](crate::App)'s stores, vault, providers, rates and
    /// status-event sink.
    pub fn from_app(app: &crate::App, config: DispatchConfig) -> Self {
        let mut dispatcher = Self::new(
            app.messages.clone(),
            app.snapshots.clone(),
            app.consents.clone(),
            app.recipients.clone(),
            app.vault.clone(),
            app.sender.clone(),
            app.rates.clone(),
            app.status_events.clone(),
            config,
        );
        dispatcher.receipts_base_url = app.public_url.clone();
        dispatcher
    }

    /// Dispatches the queue message `body`, delivered for the `delivery`th time.
    pub async fn dispatch_body(&self, body: &str, delivery: u32) -> Disposition {
        match serde_json::from_str::<QueuedMessage>(body) {
            Ok(queued) => match until(queued.not_before, OffsetDateTime::now_utc()) {
                Some(wait) => Disposition::Hold(wait),
                None => self.dispatch(&queued.message_id, delivery).await,
            },
            Err(_) => Disposition::Poison("the queue message is not a Herald message".into()),
        }
    }

    pub async fn dispatch(&self, id: &MessageId, delivery: u32) -> Disposition {
        let token = ulid::Ulid::new().to_string();
        let now = OffsetDateTime::now_utc();
        match self.messages.claim(id, &token, now).await {
            // The record is the authority on quiet hours, whatever the queue message said.
            Ok(ClaimResult::Claimed(message)) => match until(message.not_before, now) {
                Some(wait) => self.release(*message, &token, None, wait).await.held(),
                None => self.judge_and_send(*message, &token, delivery, now).await,
            },
            Ok(ClaimResult::Settled(status)) => {
                info!(
                    status = status.as_str(),
                    "already settled; duplicate delivery acknowledged"
                );
                // The first delivery may have settled it and then failed to publish.
                match self.messages.message(id).await {
                    Ok(Some(stored)) => self.publish(&stored.message).await,
                    Ok(None) => Disposition::Done,
                    Err(e) => {
                        warn!(error = %e, "could not read the settled message to republish its status");
                        Disposition::RetryAfter(PUBLISH_RETRY)
                    }
                }
            }
            Ok(ClaimResult::Held(claim)) => {
                let age = now - claim.at;
                if age > self.config.lease && !claim.token.is_empty() {
                    self.settle_unknown(id, &claim.token).await
                } else {
                    let wait = self
                        .config
                        .lease
                        .saturating_sub(Duration::try_from(age).unwrap_or_default());
                    Disposition::RetryAfter(wait.max(Duration::from_secs(1)))
                }
            }
            Ok(ClaimResult::Missing) => {
                Disposition::Poison("no message record with this id".into())
            }
            Err(e) => {
                let retry = self.backoff(delivery, None);
                unwritten(&e, retry, "claim failed")
            }
        }
    }

    /// A claim outlived its lease: the dispatcher holding it died, maybe after a provider took
    /// the message. Not resending; see the module documentation.
    async fn settle_unknown(&self, id: &MessageId, stale_token: &str) -> Disposition {
        let Ok(Some(stored)) = self.messages.message(id).await else {
            return Disposition::RetryAfter(Duration::from_secs(5));
        };
        let mut message = stored.message;
        message.status = MessageStatus::Failed;
        message.status_reason = Some(
            "outcome_unknown: a dispatcher stopped mid-send; not resent to avoid a duplicate"
                .into(),
        );
        message.status_at = Some(OffsetDateTime::now_utc());
        let audit = self.audit(&message, "message.failed", MessageStatus::Accepted);
        match self.write_outcome(&message, stale_token, &audit).await {
            Ok(written) => {
                warn!("stale dispatch claim settled as outcome_unknown");
                self.publish(&written).await
            }
            Err(StoreError::Conflict) => Disposition::Done,
            Err(e) => unwritten(&e, Duration::from_secs(5), "settling a stale claim failed"),
        }
    }

    /// Asks the recipient gate again (what changed since the send API asked), then sends.
    async fn judge_and_send(
        &self,
        message: Message,
        token: &str,
        delivery: u32,
        now: OffsetDateTime,
    ) -> Disposition {
        let asked = Asked {
            channel: message.channel,
            category: message.category,
            recipient_key: &message.recipient_key,
            at: now,
        };
        let verdict = recipient_gate::verdicts(self.consents.as_ref(), &message.tenant, &[asked])
            .await
            .map(|v| v.first().copied());
        match verdict {
            Ok(Some(Verdict::Send)) => self.send(message, token, delivery).await,
            Ok(Some(Verdict::Defer(until_then))) => {
                let wait = until(Some(until_then), now).unwrap_or(Duration::from_secs(1));
                info!(wait_s = wait.as_secs(), "recipient's quiet hours; held");
                self.release(message, token, None, wait).await.held()
            }
            Ok(Some(Verdict::Refuse(why))) => {
                info!(
                    code = %why.code(),
                    "recipient refused since the message was accepted; not sent"
                );
                self.fail(message, token, why.code().as_str(), why.message())
                    .await
            }
            // Never send without a verdict.
            Ok(None) => {
                let wait = self.backoff(delivery, None);
                self.release(message, token, None, wait).await
            }
            Err(e) => {
                warn!(error = %e, "recipient standing unavailable; retrying later");
                let wait = self.backoff(delivery, None);
                self.release(message, token, None, wait).await
            }
        }
    }

    async fn send(&self, message: Message, token: &str, delivery: u32) -> Disposition {
        let snapshot = match self.active_snapshot(&message.tenant, &message.event).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return self
                    .fail(
                        message,
                        token,
                        "no_snapshot",
                        "the event has no active snapshot",
                    )
                    .await;
            }
            Err(e) => {
                warn!(error = %e, "snapshot unavailable");
                let wait = self.backoff(delivery, None);
                return self.release(message, token, None, wait).await;
            }
        };
        self.send_through(
            message,
            token,
            delivery,
            &snapshot.configuration,
            Exhausted::Retry,
        )
        .await
    }

    /// Sends a test message (already recorded, never queued) now, through the providers of
    /// `configuration` (the event's active snapshot, or its draft configuration before the
    /// wizard completes), exactly as a queued message goes: claim, provider chain, circuit
    /// breakers, failover, outcome and audit written. There is no later delivery, so when every
    /// provider is down the message fails (`providers_unavailable`) instead of waiting. The
    /// message as it ended; `None` when it could not be claimed (it was not `accepted`).
    pub async fn send_test(
        &self,
        message: &Message,
        configuration: &ResolvedConfiguration,
    ) -> Result<Option<Message>, StoreError> {
        let token = ulid::Ulid::new().to_string();
        let claimed = match self
            .messages
            .claim(&message.id, &token, OffsetDateTime::now_utc())
            .await?
        {
            ClaimResult::Claimed(m) => *m,
            _ => return Ok(None),
        };
        self.send_through(claimed, &token, 1, configuration, Exhausted::Fail)
            .await;
        Ok(self.messages.message(&message.id).await?.map(|s| s.message))
    }

    async fn send_through(
        &self,
        mut message: Message,
        token: &str,
        delivery: u32,
        configuration: &ResolvedConfiguration,
        exhausted: Exhausted,
    ) -> Disposition {
        let Some(channel) = configuration.channels.get(&message.channel) else {
            return self
                .fail(
                    message,
                    token,
                    "no_provider",
                    "the channel has no provider in the snapshot",
                )
                .await;
        };
        let order = provider_order(channel, &message.recipient_key);
        if order.is_empty() {
            return self
                .fail(
                    message,
                    token,
                    "no_provider",
                    "the channel has no active provider",
                )
                .await;
        }
        let from_name = configuration
            .brand
            .get("display_name")
            .map(|b| b.value.clone());
        let mut retry_after: Option<Duration> = None;
        // Providers passed over because the window is closed and no template is registered
        // with them: when that is every provider, waiting will not help.
        let mut needs_template = 0;
        let providers = order.len();
        for provider in order {
            // WhatsApp: free-form inside the window the recipient's last message opened at this
            // provider's number, else the template registered with this provider, else not here
            // (decided first: a provider passed over takes no trial slot, rate or credentials).
            let template = match self.whatsapp_form(&message, provider).await {
                Ok(form) => form,
                Err(reason) => {
                    needs_template += 1;
                    message.attempts.push(attempt(
                        provider,
                        delivery,
                        AttemptOutcome::Skipped { reason },
                        Duration::ZERO,
                    ));
                    continue;
                }
            };
            // Every outcome below is recorded through the permit; leaving the loop body any
            // other way drops it, which gives a half-open trial slot back.
            let Some(permit) = self.breaker.allow(&provider.id, Instant::now()) else {
                message.attempts.push(attempt(
                    provider,
                    delivery,
                    AttemptOutcome::Skipped {
                        reason: "circuit open".into(),
                    },
                    Duration::ZERO,
                ));
                continue;
            };
            if let Some(rate) = provider.rate_limit_per_second
                && !self.limits.acquire(&provider.id, rate, RATE_WAIT).await
            {
                retry_after = retry_after.max(Some(Duration::from_secs(1)));
                let outcome = AttemptOutcome::Retryable {
                    reason: "send rate limit reached".into(),
                };
                message
                    .attempts
                    .push(attempt(provider, delivery, outcome, RATE_WAIT));
                continue;
            }
            let credentials = match self.credentials(&message.tenant, provider).await {
                Ok(c) => c,
                Err(reason) => {
                    permit.provider_failed(Instant::now());
                    let outcome = AttemptOutcome::ProviderRefused {
                        code: "credentials".into(),
                        reason,
                    };
                    message
                        .attempts
                        .push(attempt(provider, delivery, outcome, Duration::ZERO));
                    continue;
                }
            };
            // Twilio tells WhatsApp from SMS by the address prefix.
            let to = match (message.channel, provider.kind) {
                (
                    crate::domain::Channel::Whatsapp,
                    crate::domain::provider::ProviderKind::Twilio,
                ) => {
                    format!("whatsapp:{}", message.recipient.as_str())
                }
                _ => message.recipient.as_str().to_owned(),
            };
            let status_callback = match (&self.receipts_base_url, &provider.receipt_token) {
                (Some(base), Some(token)) => provider
                    .kind
                    .receipt_path()
                    .map(|path| format!("{}/webhooks/{path}/{token}", base.trim_end_matches('/'))),
                _ => None,
            };
            let outbound = Outbound {
                message_id: message.id.as_str(),
                to: &to,
                subject: message.content.subject.as_deref(),
                html: message.content.html.as_deref(),
                text: &message.content.text,
                from_name: from_name.as_deref(),
                status_callback: status_callback.as_deref(),
                list_unsubscribe: message.list_unsubscribe.as_ref(),
                whatsapp_template: template.as_ref(),
            };
            let started = Instant::now();
            let result = self
                .sender
                .send(&provider.settings, &credentials, &outbound)
                .await;
            let took = started.elapsed();
            match result {
                Ok(accepted) => {
                    permit.accepted();
                    let outcome = AttemptOutcome::Accepted {
                        provider_message_id: accepted.provider_message_id.clone(),
                    };
                    message
                        .attempts
                        .push(attempt(provider, delivery, outcome, took));
                    message.status = MessageStatus::Sent;
                    message.status_reason = None;
                    message.provider = Some(provider.id.clone());
                    message.provider_kind = Some(provider.kind);
                    message.provider_message_id = Some(accepted.provider_message_id);
                    message.cost = accepted
                        .cost
                        .and_then(|c| {
                            Currency::parse(&c.currency)
                                .ok()
                                .map(|cur| Money::new(c.amount_micros, cur))
                        })
                        // Otherwise the list price of the provider that actually sent it.
                        .or_else(|| {
                            let segments =
                                accepted.segments.or(message.content.segments).unwrap_or(1);
                            self.rates.estimate(
                                provider.kind,
                                message.channel,
                                message.recipient.as_str(),
                                segments,
                            )
                        });
                    message.sent_at = Some(OffsetDateTime::now_utc());
                    message.status_at = message.sent_at;
                    info!(provider = %provider.id, kind = provider.kind.as_str(), took_ms = took.as_millis() as u64, "sent");
                    return self.settle(message, token, MessageStatus::Sent).await;
                }
                Err(SendError::Permanent { code, reason }) => {
                    // The provider answered: it works, whatever it thought of the recipient.
                    permit.recipient_refused();
                    message.attempts.push(attempt(
                        provider,
                        delivery,
                        AttemptOutcome::Rejected {
                            code: code.clone(),
                            reason: reason.clone(),
                        },
                        took,
                    ));
                    info!(provider = %provider.id, code = %code, "recipient refused; no failover");
                    return self.fail(message, token, &code, &reason).await;
                }
                Err(SendError::Provider { code, reason }) => {
                    permit.provider_failed(Instant::now());
                    warn!(provider = %provider.id, code = %code, "provider refused us; failing over");
                    message.attempts.push(attempt(
                        provider,
                        delivery,
                        AttemptOutcome::ProviderRefused { code, reason },
                        took,
                    ));
                }
                Err(SendError::Retryable {
                    reason,
                    retry_after: hint,
                }) => {
                    permit.provider_failed(Instant::now());
                    warn!(provider = %provider.id, took_ms = took.as_millis() as u64, "provider unavailable; failing over");
                    retry_after = retry_after.max(hint);
                    message.attempts.push(attempt(
                        provider,
                        delivery,
                        AttemptOutcome::Retryable { reason },
                        took,
                    ));
                }
            }
        }
        if needs_template == providers {
            info!("WhatsApp window closed and no provider has a registered template");
            return self
                .fail(
                    message,
                    token,
                    "whatsapp_template_required",
                    "the recipient has not written within 24 hours and no provider has a registered template for this message",
                )
                .await;
        }
        if exhausted == Exhausted::Fail {
            info!("every provider failed; a test send is not retried");
            return self
                .fail(
                    message,
                    token,
                    "providers_unavailable",
                    "every provider failed or was unavailable",
                )
                .await;
        }
        let wait = self.backoff(delivery, retry_after);
        info!(
            delivery,
            wait_s = wait.as_secs(),
            "every provider failed; retrying later"
        );
        // The failed attempts are a change of the record: audited with it.
        let audit = self.audit(&message, "message.attempts_failed", MessageStatus::Accepted);
        self.release(message, token, Some(&audit), wait).await
    }

    /// How a message goes through `provider`: free-form (`None`) on every channel but WhatsApp,
    /// and on WhatsApp inside the customer-service window that the recipient's last message to
    /// this provider's number opened; else as the template registered with this provider;
    /// `Err` (why) when it has none.
    async fn whatsapp_form(
        &self,
        message: &Message,
        provider: &ResolvedProvider,
    ) -> Result<Option<TemplateCall>, String> {
        if message.channel != Channel::Whatsapp {
            return Ok(None);
        }
        let last = self
            .recipients
            .last_inbound(&message.tenant, &provider.id, &message.recipient_key)
            .await
            .unwrap_or_else(|e| {
                // A template goes in or out of the window: the safe form when in doubt.
                warn!(error = %e, "service window unknown; sending the template");
                None
            });
        if whatsapp::window_open(last, OffsetDateTime::now_utc()) {
            return Ok(None);
        }
        message
            .content
            .whatsapp_template
            .as_ref()
            .and_then(|call| call.for_kind(provider.kind))
            .map(Some)
            .ok_or_else(|| {
                "outside the 24-hour customer-service window, and no template registered with this provider".to_owned()
            })
    }

    async fn settle(&self, message: Message, token: &str, status: MessageStatus) -> Disposition {
        let action = format!("message.{}", status.as_str());
        let audit = self.audit(&message, &action, MessageStatus::Accepted);
        // Once a provider took the message, its record must be written: retry briefly, and if the
        // store stays down, leave the claim for the lease path (which never resends).
        for pause in [0u64, 100, 400, 1600] {
            if pause > 0 {
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            match self.write_outcome(&message, token, &audit).await {
                Ok(written) => return self.publish(&written).await,
                // Our claim is gone: whoever settled the message published its status.
                Err(StoreError::Conflict) => return Disposition::Done,
                Err(e) if e.is_permanent() => {
                    return unwritten(&e, self.config.lease, "settling failed");
                }
                Err(e) => warn!(error = %e, "settling failed; retrying"),
            }
        }
        Disposition::RetryAfter(self.config.lease)
    }

    /// Writes the claimed message's outcome; when its record is too large to store, the smaller
    /// record of [`smaller_record`] instead. What was written, for its status event.
    async fn write_outcome(
        &self,
        message: &Message,
        token: &str,
        audit: &AuditEntry,
    ) -> Result<Message, StoreError> {
        match self.messages.settle(message, token, audit).await {
            Err(e) if e.is_permanent() => {
                warn!(
                    record_too_large = 1,
                    error = %e,
                    status = message.status.as_str(),
                    "the message's record is too large to store; settling it as failed, smaller"
                );
            }
            written => return written.map(|()| message.clone()),
        }
        let smaller = smaller_record(message.clone());
        let audit = self.audit(&smaller, "message.failed", MessageStatus::Accepted);
        self.messages.settle(&smaller, token, &audit).await?;
        Ok(smaller)
    }

    /// Hands the settled message's status event to the sink; on failure the queue message is
    /// retried, and its redelivery (finding the message settled) publishes again.
    async fn publish(&self, message: &Message) -> Disposition {
        let at = match message.status {
            MessageStatus::Sent => message.sent_at,
            _ => None,
        }
        .unwrap_or_else(OffsetDateTime::now_utc);
        let Some(event) = StatusEvent::for_message(
            message,
            message.status,
            message.status_reason.as_deref(),
            message.cost,
            at,
        ) else {
            return Disposition::Done;
        };
        match self
            .status_events
            .publish(std::slice::from_ref(&event))
            .await
        {
            Ok(()) => Disposition::Done,
            Err(e) => {
                warn!(error = %format!("{e:#}"), event_type = event.kind.as_str(), "publishing the status event failed; retrying");
                Disposition::RetryAfter(PUBLISH_RETRY)
            }
        }
    }

    async fn fail(
        &self,
        mut message: Message,
        token: &str,
        code: &str,
        reason: &str,
    ) -> Disposition {
        message.status = MessageStatus::Failed;
        message.status_reason = Some(format!("{code}: {reason}"));
        message.status_at = Some(OffsetDateTime::now_utc());
        self.settle(message, token, MessageStatus::Failed).await
    }

    /// Gives the claimed message back to be retried after `wait`, with `audit` when there is
    /// something to record. A record too large to keep its attempts would be refused on every
    /// later delivery too: the message fails instead.
    async fn release(
        &self,
        message: Message,
        token: &str,
        audit: Option<&AuditEntry>,
        wait: Duration,
    ) -> Disposition {
        match self.messages.release(&message, token, audit).await {
            Err(e) if e.is_permanent() => {
                // Counted where the failure is settled.
                warn!(error = %e, "the message's record is too large to store; failing it");
                return self
                    .fail(
                        message,
                        token,
                        RECORD_TOO_LARGE,
                        "its record is too large to store",
                    )
                    .await;
            }
            // The claim stays; the lease path settles it later without resending.
            Err(e) => warn!(error = %e, "releasing the claim failed"),
            Ok(()) => {}
        }
        Disposition::RetryAfter(wait)
    }

    fn audit(&self, message: &Message, action: &str, before: MessageStatus) -> AuditEntry {
        AuditEntry::by_system_on_message(
            "dispatch",
            message,
            message.id.as_str(),
            action,
            Some(before.as_str().to_owned()),
            Some(message.status.as_str().to_owned()),
        )
    }

    /// Exponential backoff with full jitter, at least the provider's `Retry-After`.
    pub fn backoff(&self, delivery: u32, at_least: Option<Duration>) -> Duration {
        let exponent = delivery.saturating_sub(1).min(16);
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1 << exponent)
            .min(self.config.backoff_cap);
        let jittered =
            Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling.as_millis() as u64));
        jittered
            .max(at_least.unwrap_or_default())
            .max(Duration::from_secs(1))
    }

    async fn active_snapshot(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> Result<Option<Arc<Snapshot>>, StoreError> {
        let key = (tenant.clone(), event.clone());
        let cached = self
            .activation_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied());
        let version = match cached {
            Some((at, version)) if at.elapsed() < ACTIVATION_TTL => version,
            _ => {
                let Some(activation) = self.snapshots.activation(tenant, event).await? else {
                    return Ok(None);
                };
                if let Ok(mut cache) = self.activation_cache.lock() {
                    cache.insert(key, (Instant::now(), activation.version));
                }
                activation.version
            }
        };
        self.snapshot(tenant, event, version).await
    }

    async fn snapshot(
        &self,
        tenant: &TenantId,
        event: &EventId,
        version: u32,
    ) -> Result<Option<Arc<Snapshot>>, StoreError> {
        let key = (tenant.clone(), event.clone(), version);
        if let Some(s) = self
            .snapshot_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(Some(s));
        }
        let Some(snapshot) = self.snapshots.snapshot(tenant, event, version).await? else {
            return Ok(None);
        };
        let snapshot = Arc::new(snapshot);
        if let Ok(mut cache) = self.snapshot_cache.lock() {
            if cache.len() >= SNAPSHOT_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, snapshot.clone());
        }
        Ok(Some(snapshot))
    }

    async fn credentials(
        &self,
        tenant: &TenantId,
        provider: &ResolvedProvider,
    ) -> Result<Arc<OpenCredentials>, String> {
        let sealed_id = provider
            .credentials
            .as_ref()
            .map(|c| c.ciphertext.clone())
            .unwrap_or_default();
        let key = (provider.id.clone(), sealed_id);
        if let Some((at, creds)) = self
            .credential_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            && at.elapsed() < CREDENTIALS_TTL
        {
            return Ok(creds);
        }
        let opened = self
            .vault
            .open(tenant, &provider.id, provider.credentials.as_ref())
            .await
            .map_err(|e| format!("credentials could not be opened: {e}"))?;
        let opened = Arc::new(opened);
        if let Ok(mut cache) = self.credential_cache.lock() {
            cache.insert(key, (Instant::now(), opened.clone()));
        }
        Ok(opened)
    }
}

/// The status reason of a message whose record was too large to store.
pub const RECORD_TOO_LARGE: &str = "record_too_large";

/// What a failed store write means for the queue message: a refusal no retry changes (too large
/// to store) is logged, counted and acknowledged; anything else is retried after `retry`.
fn unwritten(e: &StoreError, retry: Duration, what: &str) -> Disposition {
    if e.is_permanent() {
        warn!(record_unwritten = 1, error = %e, "{what}: refused for good; acknowledged, not sent again");
        Disposition::Done
    } else {
        warn!(error = %e, "{what}; retrying later");
        Disposition::RetryAfter(retry)
    }
}

/// What is kept of a message whose record was too large to store: `failed` with reason
/// [`RECORD_TOO_LARGE`] (a message a provider accepted is not sent again), without its rendered
/// content, and of its attempts only an accepted one; its provider's message id stays, so a
/// receipt can still find it.
fn smaller_record(mut message: Message) -> Message {
    let sent = message.status == MessageStatus::Sent;
    message.status = MessageStatus::Failed;
    message.status_reason = Some(format!(
        "{RECORD_TOO_LARGE}: {} recorded without its content and other attempts",
        if sent {
            "accepted by the provider, not sent again;"
        } else {
            "not sent;"
        }
    ));
    message.status_at = Some(OffsetDateTime::now_utc());
    message.content = crate::domain::message::MessageContent {
        subject: None,
        html: None,
        text: String::new(),
        segments: message.content.segments,
        whatsapp_template: None,
    };
    message
        .attempts
        .retain(|a| matches!(a.outcome, AttemptOutcome::Accepted { .. }));
    message
}

fn attempt(
    provider: &ResolvedProvider,
    delivery: u32,
    outcome: AttemptOutcome,
    took: Duration,
) -> Attempt {
    Attempt {
        provider: provider.id.clone(),
        kind: provider.kind,
        delivery,
        outcome,
        at: OffsetDateTime::now_utc(),
        duration_ms: took.as_millis() as u64,
    }
}
