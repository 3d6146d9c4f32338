//! A batch send whose records are only partly written (a transaction failed midway): the
//! client gets an error, nothing is published, and a retry with the same `Idempotency-Key`
//! writes the rest and publishes every message once, with one audit entry per message.

use std::sync::{Arc, Mutex};

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture};
use async_trait::async_trait;
use herald_shared::App;
use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::cost::Money;
use herald_shared::domain::message::{Message, MessageId, StatusReport};
use herald_shared::domain::provider::ProviderKind;
use herald_shared::domain::report::{MessageSummary, Period};
use herald_shared::fanout::MemoryFanout;
use herald_shared::store::memory::MemoryStore;
use herald_shared::store::{ClaimResult, MessageStore, StoreError, StoreResult, StoredMessage};
use serde_json::{Value, json};

/// The in-memory message store, except that the next `create_many` may write only its first
/// messages and then fail, as a batch whose third transaction of five failed would.
struct FailingMidway {
    inner: Arc<MemoryStore>,
    write_then_fail: Mutex<Option<usize>>,
}

#[async_trait]
impl MessageStore for FailingMidway {
    async fn create_many(&self, messages: &[(Message, AuditEntry)]) -> StoreResult<Vec<bool>> {
        let cut = self.write_then_fail.lock().expect("lock").take();
        match cut {
            Some(n) => {
                self.inner.create_many(&messages[..n]).await?;
                Err(StoreError::Unavailable(anyhow::anyhow!(
                    "TransactWriteItems failed"
                )))
            }
            None => self.inner.create_many(messages).await,
        }
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
        self.inner.settle(message, token, audit).await
    }
    async fn release(
        &self,
        message: &Message,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()> {
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

async fn call(app: &App, event: Value) -> (u16, Value) {
    let (status, body, _) = crate::support::serve(app, event).await;
    (status, body)
}

async fn ok(app: &App, event: Value) -> Value {
    let route = event["routeKey"].clone();
    let (status, body) = call(app, event).await;
    assert!(
        (200..300).contains(&status),
        "{route} answered {status}: {body}"
    );
    body
}

/// A completed event sending invitations by SMS through Twilio (and email through Brevo).
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

#[tokio::test]
async fn a_batch_written_halfway_is_finished_by_its_retry_without_duplicates() {
    let store = Arc::new(MemoryStore::default());
    let mut app = App::over_memory(
        store.clone(),
        Arc::new(PassingChecker),
        Arc::new(AcceptingSender),
    );
    let fanout = Arc::new(MemoryFanout::default());
    app.fanout = fanout.clone();
    live_event(&app).await;
    let messages = Arc::new(FailingMidway {
        inner: store.clone(),
        write_then_fail: Mutex::new(Some(3)),
    });
    app.messages = messages.clone();

    let recipients: Vec<Value> = (0..5)
        .map(|i| {
            json!({"to": format!("+26097{:07}", 3_000_000 + i),
                        "variables": {"guest_name": format!("Guest {i}"), "event_date": "12 Dec"}})
        })
        .collect();
    let request = || {
        fixture("send-api/send-batch")
            .header("idempotency-key", "halfway")
            .body(json!({"category": "invitation", "channel": "sms", "recipients": recipients}))
    };
    let accepted = |store: &MemoryStore| {
        let mut targets: Vec<String> = store
            .audit_entries()
            .into_iter()
            .filter(|e| e.action == "message.accepted")
            .map(|e| e.target)
            .collect();
        targets.sort();
        targets
    };

    // Three of five records written, then the store failed: an error, nothing published.
    let (status, body) = call(&app, request()).await;
    assert_eq!(status, 500, "{body}");
    assert!(fanout.published.lock().expect("lock").is_empty());
    assert_eq!(accepted(&store).len(), 3);

    // The retry (same key: the failure released it) writes the other two and publishes all five.
    let reply = ok(&app, request()).await;
    let ids: Vec<String> = reply["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 5);
    let mut targets: Vec<String> = ids.iter().map(|id| format!("message/{id}")).collect();
    targets.sort();
    assert_eq!(
        accepted(&store),
        targets,
        "one entry per message, none twice"
    );
    let mut published: Vec<String> = fanout
        .published
        .lock()
        .expect("lock")
        .iter()
        .map(|(q, _)| q.message_id.to_string())
        .collect();
    published.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(published, expected, "every message published once");
    for id in &ids {
        let id = MessageId::parse(id).expect("id");
        assert!(store.message(&id).await.expect("store").is_some());
    }

    // A third try is answered from the idempotency record: nothing written or published again.
    let (status, again) = call(&app, request()).await;
    assert_eq!((status, &again), (202, &reply));
    assert_eq!(fanout.published.lock().expect("lock").len(), 5);
    assert_eq!(accepted(&store).len(), 5);
}
