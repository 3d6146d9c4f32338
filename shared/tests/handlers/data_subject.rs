//! Handler tests for data-subject export and erasure, driven by the sample requests in
//! `events/config-api/` over in-memory stores: what an export holds, what erasure removes and
//! keeps, that it is safe to repeat, that it waits for a message being dispatched, and that an
//! erased person who opted out is still not contacted.

use std::sync::Arc;

use herald_shared::App;
use herald_shared::api;
use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition};
use herald_shared::domain::TenantId;
use herald_shared::domain::message::{MessageId, MessageStatus};
use herald_shared::domain::provider::ProviderKind;
use herald_shared::domain::suppression::{Block, BlockKind};
use herald_shared::domain::{Channel, recipient::Recipient};
use herald_shared::store::memory::MemoryStore;
use herald_shared::store::{ClaimResult, MessageStore as _, RecipientStore as _};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture};

const ADA: &str = "+260971234567";
const ADA_EMAIL: &str = "ada@guests.example";

struct Harness {
    app: App,
    store: Arc<MemoryStore>,
}

impl Harness {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let mut app = App::over_memory(
            store.clone(),
            Arc::new(PassingChecker),
            Arc::new(AcceptingSender),
        );
        app.recipient_keys = Arc::new(herald_shared::recipient_keys::StaticRecipientKeys::fixed(
            RECIPIENT_KEY.to_vec(),
        ));
        Self { app, store }
    }

    async fn call(&self, event: Value) -> (u16, Value, String) {
        let request =
            lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event");
        let response = api::serve_any(&self.app, request)
            .await
            .expect("handlers answer every request");
        let text = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        let replayed = response.headers().contains_key("idempotent-replayed");
        let mut body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if replayed {
            body["_replayed"] = json!(true);
        }
        (response.status().as_u16(), body, text)
    }

    async fn ok(&self, event: Value) -> Value {
        let route = event["routeKey"].clone();
        let (status, body, _) = self.call(event).await;
        assert!(
            (200..300).contains(&status),
            "{route} answered {status}: {body}"
        );
        body
    }

    async fn live_event(&self) {
        self.ok(fixture("config-api/put-event-settings")).await;
        self.ok(fixture("config-api/put-tenant-brand")).await;
        self.ok(fixture("config-api/create-tenant-provider")).await;
        self.ok(fixture("config-api/create-tenant-provider").body(json!({
            "channel": "email", "name": "Brevo", "settings": {"kind": "brevo", "from_address": "events@acme.example"},
            "credentials": {"api_key": "xkeysib-demo-000000000000"}})))
        .await;
        for category in ["invitation", "rsvp_confirmation"] {
            for t in ["put-tenant-template", "put-tenant-email-template"] {
                let channel = if t.contains("email") { "email" } else { "sms" };
                self.ok(fixture(&format!("config-api/{t}"))
                    .path("category", category)
                    .path("channel", channel))
                    .await;
            }
        }
        self.ok(fixture("wizard-completion/complete-wizard")).await;
    }

    async fn send(&self, key: &str, channel: &str, to: &str) -> (u16, Value) {
        let variables = if channel == "email" {
            json!({"guest_name": "Ada Lovelace", "event_date": "12 December 2026"})
        } else {
            json!({"guest_name": "Ada", "event_date": "12 Dec"})
        };
        let (status, body, _) = self
            .call(
                fixture("send-api/send-message")
                    .header("idempotency-key", key)
                    .body(json!({"category": "rsvp_confirmation", "channel": channel, "to": to, "variables": variables})),
            )
            .await;
        (status, body)
    }

    async fn sent_id(&self, key: &str, channel: &str, to: &str) -> MessageId {
        let (status, body) = self.send(key, channel, to).await;
        assert_eq!(status, 202, "{body}");
        MessageId::parse(body["messages"][0]["id"].as_str().expect("id")).expect("message id")
    }

    fn export(&self, channel: &str, address: &str) -> Value {
        fixture("config-api/export-recipient").body(json!({"channel": channel, "address": address}))
    }

    fn erase(&self, key: &str) -> Value {
        fixture("config-api/erase-recipient").header("idempotency-key", key)
    }
}

fn tenant() -> TenantId {
    TenantId::parse("acme-events").expect("tenant")
}

/// The key recipient keys are made with in these tests.
const RECIPIENT_KEY: [u8; 32] = [42; 32];

fn ada_key() -> String {
    let keyring = herald_shared::domain::recipient::RecipientKeyring::new(RECIPIENT_KEY.to_vec())
        .expect("key");
    Recipient::parse(Channel::Sms, ADA)
        .expect("phone")
        .key(&keyring, tenant().as_str())
}

/// Ada's history: two SMS (one dispatched, one still waiting), an email, a consent with
/// evidence, preferences, and a STOP opt-out on SMS.
async fn ada(h: &Harness) -> (MessageId, MessageId) {
    h.live_event().await;
    let sent = h.sent_id("rsvp-sms-1", "sms", ADA).await;
    let waiting = h.sent_id("rsvp-sms-2", "sms", ADA).await;
    h.sent_id("rsvp-mail-1", "email", ADA_EMAIL).await;
    let d = Dispatcher::from_app(&h.app, DispatchConfig::default());
    assert_eq!(d.dispatch(&sent, 1).await, Disposition::Done);
    h.ok(fixture("config-api/record-recipient-consent")
        .header("idempotency-key", "consent-1")
        .body(json!({"channel": "sms", "address": ADA, "category": "marketing", "status": "granted",
                     "legal_basis": "consent", "source": "signup_form", "evidence": "paper form 2026-11 #4471, signed"})))
        .await;
    h.ok(fixture("config-api/put-recipient-preferences")
        .header("idempotency-key", "prefs-1")
        .body(json!({"channel": "sms", "address": ADA, "channel_opt_outs": ["whatsapp"],
                     "quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Africa/Lusaka"}})))
        .await;
    let block = Block {
        kind: BlockKind::OptedOut,
        reason: "stop_keyword".into(),
        provider: ProviderKind::Twilio,
        message_id: None,
        at: OffsetDateTime::now_utc(),
    };
    let audit = herald_shared::domain::audit::AuditEntry::by_system(
        "receipts",
        &tenant(),
        "req-stop",
        "recipient.opted_out",
        format!("recipient/{}", ada_key()),
        None,
        None,
    );
    assert!(
        h.store
            .block(&tenant(), Channel::Sms, &ada_key(), &block, &audit)
            .await
            .expect("block")
    );
    (sent, waiting)
}

#[tokio::test]
async fn export_holds_everything_on_the_recipient_and_only_tenant_admins_get_it() {
    let h = Harness::new();
    let (sent, waiting) = ada(&h).await;
    let export = h.ok(h.export("sms", ADA)).await;
    assert_eq!(export["recipient_key"], ada_key());
    assert_eq!(export["address"], ADA);
    let messages = export["messages"].as_array().expect("messages");
    let ids: Vec<&str> = messages.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "the SMS, not the email: {ids:?}");
    assert!(ids.contains(&sent.as_str()) && ids.contains(&waiting.as_str()));
    let dispatched = messages
        .iter()
        .find(|m| m["id"] == sent.as_str())
        .expect("sent");
    assert_eq!(dispatched["status"], "sent");
    assert_eq!(dispatched["recipient"], ADA);
    assert!(
        dispatched["content"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Ada"))
    );
    assert_eq!(dispatched["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        export["history"][0]["evidence"],
        "paper form 2026-11 #4471, signed"
    );
    assert_eq!(export["consents"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        export["preferences"]["preferences"]["channel_opt_outs"],
        json!(["whatsapp"])
    );
    assert_eq!(export["blocks"][0]["kind"], "opted_out");
    assert_eq!(export["next"], Value::Null);

    let email = h.ok(h.export("email", ADA_EMAIL)).await;
    assert_eq!(email["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(email["messages"][0]["channel"], "email");

    let (status, body, _) = h
        .call(h.export("sms", ADA).claim("herald:role", "event_manager"))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body, _) = h
        .call(h.export("sms", ADA).claim("herald:tenant", "globex"))
        .await;
    assert_eq!(
        (status, body["messages"].as_array().map(Vec::len)),
        (200, Some(0)),
        "another tenant knows nothing of Ada: {body}"
    );
    let (status, body, _) = h.call(h.export("sms", "not a number")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("address"))
    );
}

#[tokio::test]
async fn erasure_removes_the_person_keeps_the_facts_and_the_opt_out_and_can_be_repeated() {
    let h = Harness::new();
    let (sent, waiting) = ada(&h).await;

    let (status, body, _) = h
        .call(fixture("config-api/erase-recipient").header("idempotency-key", ""))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("header.Idempotency-Key")),
        "{body}"
    );
    let (status, _, _) = h
        .call(
            h.erase("erase-as-manager")
                .claim("herald:role", "event_manager"),
        )
        .await;
    assert_eq!(status, 403);

    let erased = h.ok(fixture("config-api/erase-recipient")).await;
    assert_eq!(erased["recipient_key"], ada_key());
    assert_eq!(erased["messages_erased"], 2, "{erased}");
    assert_eq!(
        erased["consent_evidence_digested"], 2,
        "history and in force"
    );
    assert_eq!(erased["preferences_deleted"], true);
    assert_eq!(erased["blocks_kept"], 1);
    assert_eq!(erased["complete"], true);

    let (_, after, text) = h.call(h.export("sms", ADA)).await;
    let without_address = text.replace(&format!("\"address\":\"{ADA}\""), "");
    for personal in ["260971234567", "971234567", "Ada", "paper form"] {
        assert!(
            !without_address.contains(personal),
            "{personal} still held: {text}"
        );
    }
    let messages = after["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "the records stay");
    for m in messages {
        assert_eq!(m["recipient"], "[erased]");
        assert_eq!(m["content"]["text"], "[erased]");
        assert!(m["erased_at"].is_string());
        assert_eq!(m["recipient_key"], ada_key());
    }
    let by_id = |id: &MessageId| {
        messages
            .iter()
            .find(|m| m["id"] == id.as_str())
            .expect("message")
            .clone()
    };
    assert_eq!(by_id(&sent)["status"], "sent");
    assert_eq!(by_id(&sent)["provider_message_id"], format!("pm-{sent}"));
    assert_eq!(
        (
            by_id(&waiting)["status"].as_str(),
            by_id(&waiting)["status_reason"].as_str()
        ),
        (Some("failed"), Some("recipient_erased")),
        "never sent now"
    );
    assert!(
        after["history"][0]["evidence"]
            .as_str()
            .is_some_and(|e| e.starts_with("sha256:") && e.len() == 71)
    );
    assert_eq!(after["history"][0]["status"], "granted", "the proof stays");
    assert_eq!(after["preferences"], Value::Null);
    assert_eq!(after["blocks"][0]["kind"], "opted_out");
    // The email is another address: untouched.
    let email = h.ok(h.export("email", ADA_EMAIL)).await;
    assert_eq!(email["messages"][0]["recipient"], ADA_EMAIL);

    // Dispatch of the waiting message finds it settled; the opt-out still refuses Ada.
    let d = Dispatcher::from_app(&h.app, DispatchConfig::default());
    assert_eq!(d.dispatch(&waiting, 2).await, Disposition::Done);
    let (status, body) = h.send("rsvp-sms-3", "sms", ADA).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("recipient_opted_out")),
        "{body}"
    );

    // The audit log has the erasure, with digests and keys only.
    let entries = h.store.audit_entries();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "message.erased").count(),
        2
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "recipient.erased").count(),
        1
    );
    let audit = serde_json::to_string(&entries).expect("json");
    assert!(!audit.contains("260971234567") && !audit.contains("971234567"));

    // Repeats: the same key replays; a new key finds nothing left to erase.
    let replay = h.ok(fixture("config-api/erase-recipient")).await;
    assert_eq!(replay["_replayed"], true);
    let again = h.ok(h.erase("erase-ada-again")).await;
    assert_eq!(
        (
            again["messages_erased"].as_u64(),
            again["messages_already_erased"].as_u64()
        ),
        (Some(0), Some(2))
    );
    assert_eq!(
        again["consent_evidence_digested"], 0,
        "digests are not digested again"
    );
    assert_eq!(again["complete"], true);
}

#[tokio::test]
async fn erasure_waits_for_a_message_being_dispatched() {
    let h = Harness::new();
    h.live_event().await;
    let id = h.sent_id("rsvp-sms-1", "sms", ADA).await;
    let ClaimResult::Claimed(_) = h
        .store
        .claim(&id, "dispatcher-1", OffsetDateTime::now_utc())
        .await
        .expect("claim")
    else {
        panic!("the message is claimable");
    };
    let (status, body, _) = h.call(h.erase("erase-1")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("erasure_incomplete")),
        "{body}"
    );
    // The dispatcher finishes; the same key runs again (incomplete runs are not remembered).
    let mut message = h
        .store
        .message(&id)
        .await
        .expect("read")
        .expect("message")
        .message;
    message.status = MessageStatus::Sent;
    let audit = herald_shared::domain::audit::AuditEntry::by_system(
        "dispatch",
        &tenant(),
        id.as_str(),
        "message.sent",
        format!("message/{id}"),
        None,
        None,
    );
    h.store
        .settle(&message, "dispatcher-1", &audit)
        .await
        .expect("settle");
    let done = h.ok(h.erase("erase-1")).await;
    assert_eq!(
        (done["messages_erased"].as_u64(), done["complete"].as_bool()),
        (Some(1), Some(true))
    );
    let stored = h
        .store
        .message(&id)
        .await
        .expect("read")
        .expect("message")
        .message;
    assert_eq!(stored.status, MessageStatus::Sent);
    assert!(stored.erased_at.is_some());
    assert_eq!(stored.recipient.as_str(), "[erased]");
}
