//! Writes the store refuses as too large to store, seen from the queue consumers (in memory,
//! with a message store that refuses some writes): never retried, so never sent twice; the
//! message ends `failed` with reason `record_too_large` when a smaller record fits, and a
//! receipt whose change does not fit is acknowledged and counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Adjust, PassingChecker, fixture};
use async_trait::async_trait;
use herald_shared::App;
use herald_shared::api;
use herald_shared::credentials::OpenCredentials;
use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition, QueuedMessage};
use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::cost::Money;
use herald_shared::domain::message::{
    AttemptOutcome, Message, MessageId, MessageStatus, StatusReport,
};
use herald_shared::domain::provider::{ProviderKind, ProviderSettings};
use herald_shared::domain::receipt::{Notification, Receipt};
use herald_shared::domain::report::{MessageSummary, Period};
use herald_shared::domain::status_event::StatusEventType;
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::status_webhooks::MemoryStatusEvents;
use herald_shared::store::memory::MemoryStore;
use herald_shared::store::{ClaimResult, MessageStore, StoreError, StoreResult, StoredMessage};
use serde_json::{Value, json};

type Rule = Box<dyn Fn(&Message) -> bool + Send + Sync>;

/// The in-memory message store, answering `TooLarge` to the settles, releases and advances its
/// rules pick (as DynamoDB's size checks would, before anything is sent).
struct Refusing {
    inner: Arc<MemoryStore>,
    settle: Rule,
    release: Rule,
    advance: bool,
}

impl Refusing {
    fn new(inner: Arc<MemoryStore>) -> Self {
        Self {
            inner,
            settle: Box::new(|_| false),
            release: Box::new(|_| false),
            advance: false,
        }
    }
}

fn too_large() -> StoreError {
    StoreError::TooLarge {
        what: "message.record".into(),
        size: 410_000,
        limit: 400 * 1024,
    }
}

/// Whether `message` still carries its rendered content (the record as dispatch first has it).
fn with_content(message: &Message) -> bool {
    !message.content.text.is_empty()
}

#[async_trait]
impl MessageStore for Refusing {
    async fn create_many(&self, messages: &[(Message, AuditEntry)]) -> StoreResult<Vec<bool>> {
        self.inner.create_many(messages).await
    }
    async fn message(&self, id: &MessageId) -> StoreResult<Option<StoredMessage>> {
        self.inner.message(id).await
    }
    async fn claim(
        &self,
        id: &MessageId,
        token: &str,
        at: time::OffsetDateTime,
    ) -> StoreResult<ClaimResult> {
        self.inner.claim(id, token, at).await
    }
    async fn settle(&self, message: &Message, token: &str, audit: &AuditEntry) -> StoreResult<()> {
        if (self.settle)(message) {
            return Err(too_large());
        }
        self.inner.settle(message, token, audit).await
    }
    async fn release(
        &self,
        message: &Message,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()> {
        if (self.release)(message) {
            return Err(too_large());
        }
        self.inner.release(message, token, audit).await
    }
    async fn by_provider_message(
        &self,
        kind: ProviderKind,
        provider_message_id: &str,
    ) -> StoreResult<Option<Message>> {
        self.inner
            .by_provider_message(kind, provider_message_id)
            .await
    }
    async fn advance(
        &self,
        id: &MessageId,
        report: &StatusReport,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        if self.advance {
            return Err(too_large());
        }
        self.inner.advance(id, report, audit).await
    }
    async fn correct_cost(
        &self,
        id: &MessageId,
        cost: Money,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        self.inner.correct_cost(id, cost, audit).await
    }
    async fn messages_between(
        &self,
        tenant: &TenantId,
        period: &Period,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<MessageSummary>, Option<String>)> {
        self.inner
            .messages_between(tenant, period, after, limit)
            .await
    }
    async fn messages_to(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<StoredMessage>, Option<String>)> {
        self.inner
            .messages_to(tenant, recipient_key, after, limit)
            .await
    }
    async fn event_messages(
        &self,
        tenant: &TenantId,
        event: &herald_shared::domain::EventId,
        filter: &herald_shared::domain::message::MessageFilter,
        after: Option<&herald_shared::domain::message::MessagePosition>,
        limit: usize,
    ) -> StoreResult<(
        Vec<herald_shared::domain::message::MessageListing>,
        Option<herald_shared::domain::message::MessagePosition>,
    )> {
        self.inner
            .event_messages(tenant, event, filter, after, limit)
            .await
    }
    async fn erase(&self, read: &Message, erased: &Message, audit: &AuditEntry) -> StoreResult<()> {
        self.inner.erase(read, erased, audit).await
    }
}

/// Accepts every message as `pm-<message id>`, or answers every send with a retryable error;
/// counts the calls.
#[derive(Default)]
struct CountingSender {
    unavailable: bool,
    calls: Mutex<usize>,
}

impl CountingSender {
    fn calls(&self) -> usize {
        *self.calls.lock().expect("lock")
    }
}

#[async_trait]
impl ChannelSender for CountingSender {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        *self.calls.lock().expect("lock") += 1;
        if self.unavailable {
            return Err(SendError::Retryable {
                reason: "503".into(),
                retry_after: None,
            });
        }
        Ok(Accepted {
            provider_message_id: format!("pm-{}", message.message_id),
            cost: None,
            segments: None,
        })
    }
}

/// An app over `store` whose messages go through `refusing` (built over the same store), with
/// its status events kept.
struct Harness {
    app: App,
    sender: Arc<CountingSender>,
    events: Arc<MemoryStatusEvents>,
}

async fn harness(
    sender: CountingSender,
    refusing: impl FnOnce(Arc<MemoryStore>) -> Refusing,
) -> Harness {
    let store = Arc::new(MemoryStore::default());
    let sender = Arc::new(sender);
    let events = Arc::new(MemoryStatusEvents::default());
    let mut app = App::over_memory(store.clone(), Arc::new(PassingChecker), sender.clone());
    app.messages = Arc::new(refusing(store));
    app.status_events = events.clone();
    live_event(&app).await;
    Harness {
        app,
        sender,
        events,
    }
}

async fn ok(app: &App, event: Value) -> Value {
    let route = event["routeKey"].clone();
    let request = lambda_http::request::from_str(&event.to_string()).expect("valid event");
    let response = api::serve_any(app, request).await.expect("answers");
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    assert!(
        (200..300).contains(&status),
        "{route} answered {status}: {body}"
    );
    body
}

/// A completed event whose only SMS provider is Twilio.
async fn live_event(app: &App) {
    ok(app, fixture("config-api/put-event-settings")).await;
    ok(app, fixture("config-api/put-tenant-brand")).await;
    ok(app, fixture("config-api/create-tenant-provider")).await;
    ok(
        app,
        fixture("config-api/create-tenant-provider").body(
            json!({"channel": "email", "name": "Brevo",
            "settings": {"kind": "brevo", "from_address": "events@acme.example"},
            "credentials": {"api_key": "xkeysib-demo-000000000000"}}),
        ),
    )
    .await;
    for (category, channel, template) in [
        ("invitation", "sms", "put-tenant-template"),
        ("invitation", "email", "put-tenant-email-template"),
        ("rsvp_confirmation", "sms", "put-tenant-template"),
        ("rsvp_confirmation", "email", "put-tenant-email-template"),
    ] {
        ok(
            app,
            fixture(&format!("config-api/{template}"))
                .path("category", category)
                .path("channel", channel),
        )
        .await;
    }
    ok(app, fixture("wizard-completion/complete-wizard")).await;
}

/// An SMS accepted by the send API; its id and the queue message dispatch gets for it.
async fn sms(app: &App) -> (MessageId, String) {
    let reply = ok(
        app,
        fixture("send-api/send-message").header("idempotency-key", "too-large-1"),
    )
    .await;
    let id = MessageId::parse(reply["messages"][0]["id"].as_str().expect("id")).expect("id");
    let stored = app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message");
    let body = serde_json::to_string(&QueuedMessage::of(&stored.message)).expect("body");
    (id, body)
}

async fn stored(app: &App, id: &MessageId) -> StoredMessage {
    app.messages
        .message(id)
        .await
        .expect("store")
        .expect("message")
}

/// Delivers the same queue message `times` times, as SQS may; the dispositions.
async fn deliver(dispatcher: &Dispatcher, body: &str, times: u32) -> Vec<Disposition> {
    let mut dispositions = Vec::new();
    for delivery in 1..=times {
        dispositions.push(dispatcher.dispatch_body(body, delivery).await);
        // Past the (short) lease of the tests that set one.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dispositions
}

fn short_lease() -> DispatchConfig {
    DispatchConfig {
        lease: Duration::from_millis(5),
        ..DispatchConfig::default()
    }
}

#[tokio::test]
async fn a_sent_message_whose_record_is_too_large_ends_failed_and_is_never_sent_again() {
    // The full record (with its content) is refused; the smaller one fits.
    let h = harness(CountingSender::default(), |store| Refusing {
        settle: Box::new(with_content),
        ..Refusing::new(store)
    })
    .await;
    let (id, body) = sms(&h.app).await;
    let dispatcher = Dispatcher::from_app(&h.app, DispatchConfig::default());

    let dispositions = deliver(&dispatcher, &body, 3).await;
    assert_eq!(dispositions, vec![Disposition::Done; 3], "never retried");
    assert_eq!(h.sender.calls(), 1, "the provider was called once");

    let stored = stored(&h.app, &id).await;
    assert!(stored.claim.is_none(), "the claim is dropped");
    let message = stored.message;
    assert_eq!(message.status, MessageStatus::Failed);
    let reason = message.status_reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("record_too_large"), "{reason}");
    assert!(reason.len() < 200, "a short reason: {reason}");
    // What receipts need to find it stays; the content does not.
    assert_eq!(
        message.provider_message_id.as_deref(),
        Some(format!("pm-{id}").as_str())
    );
    assert!(message.content.text.is_empty() && message.content.html.is_none());
    assert!(matches!(
        message.attempts.as_slice(),
        [a] if matches!(a.outcome, AttemptOutcome::Accepted { .. })
    ));
    // Tenants hear it failed.
    assert!(
        h.events
            .published()
            .iter()
            .any(|e| e.kind == StatusEventType::MessageFailed),
        "a message.failed event"
    );
}

#[tokio::test]
async fn a_sent_message_with_no_record_small_enough_is_acknowledged_and_never_sent_again() {
    // Every settle is refused, even the smaller record and the lease path's.
    let h = harness(CountingSender::default(), |store| Refusing {
        settle: Box::new(|_| true),
        ..Refusing::new(store)
    })
    .await;
    let (id, body) = sms(&h.app).await;
    let dispatcher = Dispatcher::from_app(&h.app, short_lease());

    let dispositions = deliver(&dispatcher, &body, 3).await;
    assert_eq!(dispositions, vec![Disposition::Done; 3], "never retried");
    assert_eq!(h.sender.calls(), 1, "the provider was called once");
    assert_ne!(
        stored(&h.app, &id).await.message.status,
        MessageStatus::Sent
    );
}

#[tokio::test]
async fn attempts_too_large_to_keep_fail_the_message_instead_of_retrying_it() {
    // Every provider is down, and the record with its failed attempts no longer fits.
    let h = harness(
        CountingSender {
            unavailable: true,
            ..CountingSender::default()
        },
        |store| Refusing {
            settle: Box::new(with_content),
            release: Box::new(|m| !m.attempts.is_empty()),
            ..Refusing::new(store)
        },
    )
    .await;
    let (id, body) = sms(&h.app).await;
    let dispatcher = Dispatcher::from_app(&h.app, DispatchConfig::default());

    let dispositions = deliver(&dispatcher, &body, 2).await;
    assert_eq!(dispositions, vec![Disposition::Done; 2], "not released");
    assert_eq!(h.sender.calls(), 1);
    let message = stored(&h.app, &id).await.message;
    assert_eq!(message.status, MessageStatus::Failed);
    let reason = message.status_reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("record_too_large"), "{reason}");
    assert!(message.attempts.is_empty(), "failed attempts are not kept");
}

#[tokio::test]
async fn a_receipt_too_large_to_store_is_acknowledged_and_counted() {
    let h = harness(CountingSender::default(), |store| Refusing {
        advance: true,
        ..Refusing::new(store)
    })
    .await;
    let (id, body) = sms(&h.app).await;
    let dispatcher = Dispatcher::from_app(&h.app, DispatchConfig::default());
    assert_eq!(dispatcher.dispatch_body(&body, 1).await, Disposition::Done);

    let tenant = TenantId::parse("acme-events").expect("tenant");
    let provider = h
        .app
        .providers
        .tenant_providers(&tenant)
        .await
        .expect("providers")
        .into_iter()
        .find(|p| p.kind() == ProviderKind::Twilio)
        .expect("Twilio");
    let mut receipt = Receipt::new(
        ProviderKind::Twilio,
        format!("pm-{id}"),
        MessageStatus::Delivered,
    );
    receipt.reason = Some("x".repeat(5000));
    let source = herald_shared::receipts::Source {
        tenant: &tenant,
        provider: &provider,
        credentials: None,
    };
    let (applied, _) = herald_shared::receipts::apply(
        &h.app,
        source,
        vec![Notification::Receipt(receipt)],
        "rcpt-too-large",
    )
    .await
    .expect("acknowledged, not a failure the provider would retry");
    assert_eq!(applied.too_large, 1);
    assert_eq!(applied.advanced, 0);
    assert_eq!(
        stored(&h.app, &id).await.message.status,
        MessageStatus::Sent
    );
}
