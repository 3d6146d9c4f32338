//! WhatsApp templates through the handlers over the in-memory stores: a template version that
//! names its registered forms is saved (the sample in `events/`), a wrong mapping is a 400
//! naming its field; dispatch sends the registered template while the recipient has not
//! written, free text once they have, and fails `whatsapp_template_required` when the slot has
//! no template registered with the provider.

use std::sync::{Arc, Mutex};

use crate::support::{Adjust, PassingChecker, fixture, ok, serve};
use async_trait::async_trait;
use herald_shared::App;
use herald_shared::credentials::OpenCredentials;
use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition};
use herald_shared::domain::ProviderId;
use herald_shared::domain::message::MessageId;
use herald_shared::domain::provider::ProviderSettings;
use herald_shared::fanout::MemoryFanout;
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::store::memory::MemoryStore;
use herald_shared::store::{MessageStore, RecipientStore};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Remembers, per send, the template name it went as (`None`: free text) and the text.
#[derive(Default)]
struct Recording {
    sent: Mutex<Vec<(Option<String>, String)>>,
}

#[async_trait]
impl ChannelSender for Recording {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        let template = message
            .whatsapp_template
            .and_then(|t| t.meta.as_ref())
            .map(|m| m.name.clone());
        self.sent
            .lock()
            .expect("lock")
            .push((template, message.text.to_owned()));
        Ok(Accepted {
            provider_message_id: format!("wamid.{}", message.message_id),
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
    async fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let sender = Arc::new(Recording::default());
        let mut app = App::over_memory(store.clone(), Arc::new(PassingChecker), sender.clone());
        app.fanout = Arc::new(MemoryFanout::default());
        let h = Self { app, store, sender };
        ok(
            &h.app,
            fixture("config-api/put-event-settings").body(json!({
                "channels": ["whatsapp"], "categories": ["invitation", "rsvp_confirmation"],
                "default_locale": "en-GB", "time_zone": "Africa/Lusaka"
            })),
        )
        .await;
        ok(&h.app, fixture("config-api/put-tenant-brand")).await;
        ok(
            &h.app,
            fixture("config-api/create-tenant-provider").body(json!({
                "channel": "whatsapp", "name": "Meta WhatsApp",
                "settings": {"kind": "meta_whatsapp", "phone_number_id": "106540352242922",
                             "business_account_id": "102290129340398"},
                "credentials": {"access_token": "meta-token", "app_secret": "app-secret"}
            })),
        )
        .await;
        ok(&h.app, fixture("config-api/put-tenant-whatsapp-template")).await;
        let mut unregistered = template_body();
        unregistered
            .as_object_mut()
            .expect("object")
            .remove("whatsapp");
        ok(
            &h.app,
            fixture("config-api/put-tenant-whatsapp-template")
                .path("category", "rsvp_confirmation")
                .body(unregistered),
        )
        .await;
        ok(&h.app, fixture("wizard-completion/complete-wizard")).await;
        h
    }

    /// Sends one `category` message to `to` and dispatches it.
    async fn send(&self, to: &str, category: &str) -> MessageId {
        let reply = ok(
            &self.app,
            fixture("send-api/send-message")
                .header("idempotency-key", &ulid::Ulid::new().to_string())
                .body(json!({
                    "category": category, "channel": "whatsapp", "to": to,
                    "variables": {"guest_name": "Ada", "starts_at": "2026-12-12T18:30:00+02:00",
                                  "dinner": {"amount": "1250.50", "currency": "ZMW"},
                                  "rsvp_token": "tok_8f2c"}
                })),
        )
        .await;
        let id = MessageId::parse(reply["messages"][0]["id"].as_str().expect("id")).expect("id");
        let dispatcher = Dispatcher::from_app(&self.app, DispatchConfig::default());
        assert_eq!(dispatcher.dispatch(&id, 1).await, Disposition::Done);
        id
    }
}

fn template_body() -> Value {
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../events/config-api/put-tenant-whatsapp-template.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("sample"),
    )
    .expect("JSON");
    serde_json::from_str(event["body"].as_str().expect("body")).expect("JSON body")
}

#[tokio::test]
async fn a_wrong_mapping_is_named() {
    let h = Harness::new().await;
    let cases = [
        (
            json!({"meta": {"name": "gala_invitation", "language": "en_US", "body": [{"var": "seat"}]}}),
            "whatsapp.meta.body[0].var",
        ),
        (
            json!({"meta": {"name": "Gala Invitation", "language": "en_US"}}),
            "whatsapp.meta.name",
        ),
        (
            json!({"twilio": {"content_sid": "HX12", "variables": {}}}),
            "whatsapp.twilio.content_sid",
        ),
        (
            json!({"meta": {"name": "x", "language": "en_US", "colour": 1}}),
            "whatsapp",
        ),
    ];
    for (mapping, field) in cases {
        let mut body = template_body();
        body["whatsapp"] = mapping;
        let (status, answer, _) = serve(
            &h.app,
            fixture("config-api/put-tenant-whatsapp-template").body(body),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["field"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{field}: {answer}"
        );
    }
    // Only WhatsApp templates are registered ones.
    let mut sms = template_body();
    sms["body"] = json!("Hi {{ guest_name }}");
    let (status, answer, _) = serve(
        &h.app,
        fixture("config-api/put-tenant-whatsapp-template")
            .path("channel", "sms")
            .body(sms),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "whatsapp");
}

#[tokio::test]
async fn the_template_goes_outside_the_window_and_free_text_inside_it() {
    let h = Harness::new().await;
    let first = h.send("+260971234567", "invitation").await;
    let message = h
        .store
        .message(&first)
        .await
        .expect("store")
        .expect("message")
        .message;
    let call = message.content.whatsapp_template.expect("parameters kept");
    let meta = call.meta.expect("meta");
    assert_eq!(meta.components[0].parameters.len(), 3);

    // Ada writes to the number: the window is open for that provider.
    let provider: ProviderId = message.provider.expect("provider");
    h.store
        .record_inbound(
            &message.tenant,
            &provider,
            &message.recipient_key,
            OffsetDateTime::now_utc(),
        )
        .await
        .expect("recorded");
    h.send("+260971234567", "invitation").await;

    // Grace never wrote, and RSVP confirmations have no registered template.
    let third = h.send("+260971234568", "rsvp_confirmation").await;
    let failed = h
        .store
        .message(&third)
        .await
        .expect("store")
        .expect("message")
        .message;
    assert_eq!(
        failed.status_reason.as_deref().map(|r| r.split(':').next()),
        Some(Some("whatsapp_template_required"))
    );

    let sent = h.sender.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].0.as_deref(), Some("gala_invitation"));
    assert_eq!(sent[1].0, None, "free text inside the window");
    assert!(sent[1].1.starts_with("Dear Ada"), "{}", sent[1].1);
}

#[tokio::test]
async fn the_preview_shows_what_each_provider_is_sent() {
    let h = Harness::new().await;
    let preview = ok(
        &h.app,
        fixture("config-api/preview-tenant-template")
            .path("category", "invitation")
            .path("channel", "whatsapp")
            .body(json!({})),
    )
    .await;
    let call = &preview["whatsapp_template"];
    assert_eq!(call["meta"]["name"], "gala_invitation", "{preview}");
    assert_eq!(call["meta"]["components"][0]["type"], "body");
    assert_eq!(
        call["meta"]["components"][0]["parameters"][2]["currency"]["amount_1000"],
        1_250_500
    );
    assert_eq!(call["twilio"]["variables"]["1"], "Ada");
    // The declared sample in the filter's default style; a tenant's preview has no event, so
    // no event time zone: UTC.
    assert_eq!(
        call["twilio"]["variables"]["2"], "Dec 12, 2026, 4:30\u{202f}PM",
        "{preview}"
    );
}
