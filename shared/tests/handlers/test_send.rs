//! The wizard's test send over the in-memory stores: one real message through the event's
//! providers (its draft configuration before completion, its snapshot after), marked as a test
//! in the record and the message list, audited; the recipient gate applies; beyond the hourly
//! quota the answer is 429 with `Retry-After` and nothing is sent or written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::support::{Adjust, PassingChecker, fixture};
use async_trait::async_trait;
use herald_shared::App;
use herald_shared::credentials::OpenCredentials;
use herald_shared::domain::Channel;
use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::provider::{ProviderKind, ProviderSettings};
use herald_shared::domain::recipient::Recipient;
use herald_shared::domain::suppression::{Block, BlockKind};
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

/// Takes every message and remembers (kind, recipient, text).
#[derive(Default)]
struct Recording {
    sent: Mutex<Vec<(ProviderKind, String, String)>>,
}

#[async_trait]
impl ChannelSender for Recording {
    async fn send(
        &self,
        settings: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        self.sent.lock().expect("lock").push((
            settings.kind(),
            message.to.to_owned(),
            message.text.to_owned(),
        ));
        Ok(Accepted {
            provider_message_id: format!("pm-{}", message.message_id),
            cost: None,
            segments: None,
        })
    }
}

struct Harness {
    app: App,
    store: Arc<MemoryStore>,
    sender: Arc<Recording>,
}

impl Harness {
    fn new(quota: u32) -> Self {
        let store = Arc::new(MemoryStore::default());
        let sender = Arc::new(Recording::default());
        let mut app = App::over_memory(store.clone(), Arc::new(PassingChecker), sender.clone());
        app.test_send_hourly_quota = quota;
        Self { app, store, sender }
    }

    async fn call(&self, event: Value) -> (u16, Value, HashMap<String, String>) {
        crate::support::serve(&self.app, event).await
    }

    async fn ok(&self, event: Value) -> Value {
        crate::support::ok(&self.app, event).await
    }

    /// An event with settings, a brand, a Twilio SMS provider and the SMS invitation template:
    /// a draft, not completed.
    async fn draft_event(&self) {
        self.ok(fixture("config-api/put-event-settings")).await;
        self.ok(fixture("config-api/put-tenant-brand")).await;
        self.ok(fixture("config-api/create-tenant-provider")).await;
        self.ok(fixture("config-api/put-tenant-template")).await;
    }

    fn sent(&self) -> Vec<(ProviderKind, String, String)> {
        self.sender.sent.lock().expect("lock").clone()
    }

    async fn listed(&self) -> Vec<Value> {
        self.ok(fixture("send-api/list-messages").body(json!({})))
            .await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn test_send() -> Value {
    fixture("send-api/test-event-template")
}

#[tokio::test]
async fn a_draft_events_test_goes_out_through_its_providers_and_is_listed_as_a_test() {
    let h = Harness::new(20);
    h.draft_event().await;
    let reply = h.ok(test_send()).await;
    assert_eq!(reply["configuration"], "draft");
    assert_eq!(reply["message"]["status"], "sent", "{reply}");
    assert_eq!(reply["message"]["test"], true);
    assert_eq!(reply["message"]["recipient"], "+260*******67");
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, ProviderKind::Twilio);
    assert_eq!(sent[0].1, "+260971234567");
    assert!(
        sent[0].2.contains("Hi Grace") && sent[0].2.contains("12 Dec"),
        "given variables over samples: {}",
        sent[0].2
    );

    let listed = h.listed().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], reply["message"]["id"]);
    assert_eq!(listed[0]["test"], true);
    assert_eq!(listed[0]["status"], "sent");

    let actions: Vec<String> = h
        .store
        .audit_entries()
        .into_iter()
        .filter(|e| {
            e.target
                == format!(
                    "message/{}",
                    reply["message"]["id"].as_str().unwrap_or_default()
                )
        })
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, vec!["message.test_accepted", "message.sent"]);
}

#[tokio::test]
async fn a_completed_events_test_uses_its_active_snapshot() {
    let h = Harness::new(20);
    h.draft_event().await;
    // Completion needs every selected slot: the fixture's settings select SMS and email.
    h.ok(fixture("config-api/put-tenant-email-template")).await;
    let mut brevo = fixture("config-api/create-tenant-provider");
    brevo["body"] = json!(json!({"channel": "email", "name": "Brevo", "settings": {"kind": "brevo", "from_address": "events@acme.example"},
        "credentials": {"api_key": "xkeysib-demo-000000000000"}}).to_string());
    h.ok(brevo).await;
    for category in ["rsvp_confirmation"] {
        for (channel, t) in [
            ("sms", "put-tenant-template"),
            ("email", "put-tenant-email-template"),
        ] {
            h.ok(fixture(&format!("config-api/{t}"))
                .path("category", category)
                .path("channel", channel))
                .await;
        }
    }
    h.ok(fixture("wizard-completion/complete-wizard")).await;
    let reply = h.ok(test_send()).await;
    assert_eq!(reply["configuration"], "snapshot 1", "{reply}");
    assert_eq!(reply["message"]["status"], "sent");
    assert_eq!(h.sent().len(), 1);
}

#[tokio::test]
async fn beyond_the_hourly_quota_nothing_is_sent_or_written() {
    let h = Harness::new(2);
    h.draft_event().await;
    h.ok(test_send()).await;
    h.ok(test_send()).await;
    let audit_before = h.store.audit_entries().len();
    let (status, body, headers) = h.call(test_send()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|r| r.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(h.sent().len(), 2, "the third was not sent");
    assert_eq!(h.listed().await.len(), 2, "nor recorded");
    assert_eq!(h.store.audit_entries().len(), audit_before, "nor audited");

    // Another tenant's quota is its own.
    let other = Harness::new(2);
    other.draft_event().await;
    assert_eq!(other.call(test_send()).await.0, 200);
}

#[tokio::test]
async fn the_recipient_gate_applies_and_a_refusal_uses_no_quota() {
    let h = Harness::new(1);
    h.draft_event().await;
    let tenant = TenantId::parse("acme-events").expect("tenant");
    let recipient = Recipient::parse(Channel::Sms, "+260971234567").expect("phone");
    let key = h.app.recipient_key(&tenant, &recipient).await.expect("key");
    let block = Block {
        kind: BlockKind::OptedOut,
        reason: "stop_keyword".into(),
        provider: ProviderKind::Twilio,
        message_id: None,
        at: time::OffsetDateTime::now_utc(),
    };
    let audit = AuditEntry::by_system(
        "test",
        &tenant,
        "req",
        "recipient.opted_out",
        "recipient/x".into(),
        None,
        None,
    );
    h.app
        .recipients
        .block(&tenant, Channel::Sms, &key, &block, &audit)
        .await
        .expect("blocked");
    let (status, body, _) = h.call(test_send()).await;
    assert_eq!(status, 422, "{body}");
    assert!(h.sent().is_empty());
    assert!(h.listed().await.is_empty());
    // Another address still has the one test send of the hour.
    let other = test_send().body(json!({"to": "+260971234568"}));
    assert_eq!(h.call(other).await.0, 200);
}

#[tokio::test]
async fn bad_requests_name_the_field_and_send_nothing() {
    let h = Harness::new(20);
    h.draft_event().await;
    for (body, field) in [
        (json!({"to": "not a number"}), "to"),
        // serde names a missing field in its message, on the body.
        (json!({}), "body"),
        (
            json!({"to": "+260971234567", "variables": {"guest_nam": "x"}}),
            "variables.guest_nam",
        ),
        (json!({"to": "+260971234567", "cc": "x"}), "cc"),
    ] {
        let (status, reply, _) = h.call(test_send().body(body.clone())).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["error"]["field"], field, "{body}: {reply}");
    }
    // A category the event has no template for: the configuration is what is missing.
    let (status, reply, _) = h.call(test_send().path("category", "thank_you")).await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["error"]["code"], "configuration_invalid");
    assert_eq!(reply["error"]["problems"][0]["code"], "template_missing");
    assert_eq!(
        reply["error"]["problems"][0]["field"],
        "templates.thank_you.sms"
    );
    let (status, _, _) = h.call(test_send().path("eventId", "no-such-event")).await;
    assert_eq!(status, 404);
    assert!(h.sent().is_empty());
}
