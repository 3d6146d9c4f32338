//! The circuit breaker seen from dispatch: whatever a half-open trial ends in, the provider is
//! tried again for later messages (in memory, with a scripted provider).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Adjust, PassingChecker, fixture};
use async_trait::async_trait;
use herald_shared::App;
use herald_shared::api;
use herald_shared::credentials::OpenCredentials;
use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition};
use herald_shared::domain::message::{MessageId, MessageStatus};
use herald_shared::domain::provider::ProviderSettings;
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

const COOL_DOWN: Duration = Duration::from_millis(50);

/// Answers each send with the next scripted outcome (`None`: accepted); counts the calls.
#[derive(Default)]
struct ScriptedSender {
    script: Mutex<Vec<Option<SendError>>>,
    calls: Mutex<usize>,
}

impl ScriptedSender {
    fn then(&self, outcome: Option<SendError>) {
        self.script.lock().expect("lock").push(outcome);
    }

    fn calls(&self) -> usize {
        *self.calls.lock().expect("lock")
    }
}

#[async_trait]
impl ChannelSender for ScriptedSender {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        *self.calls.lock().expect("lock") += 1;
        let next = {
            let mut script = self.script.lock().expect("lock");
            (!script.is_empty()).then(|| script.remove(0)).flatten()
        };
        match next {
            Some(error) => Err(error),
            None => Ok(Accepted {
                provider_message_id: format!("pm-{}", message.message_id),
                cost: None,
                segments: None,
            }),
        }
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

async fn sms(app: &App, n: usize) -> MessageId {
    let reply = ok(
        app,
        fixture("send-api/send-message").header("idempotency-key", &format!("circuit-{n}")),
    )
    .await;
    MessageId::parse(reply["messages"][0]["id"].as_str().expect("id")).expect("message id")
}

async fn status(app: &App, id: &MessageId) -> MessageStatus {
    app.messages
        .message(id)
        .await
        .expect("store")
        .expect("message")
        .message
        .status
}

#[tokio::test]
async fn a_provider_whose_trial_refused_the_recipient_is_tried_for_the_next_message() {
    let sender = Arc::new(ScriptedSender::default());
    let app = App::over_memory(
        Arc::new(MemoryStore::default()),
        Arc::new(PassingChecker),
        sender.clone(),
    );
    live_event(&app).await;
    let d = Dispatcher::from_app(
        &app,
        DispatchConfig {
            breaker_threshold: 1,
            breaker_cool_down: COOL_DOWN,
            ..DispatchConfig::default()
        },
    );

    // An outage opens Twilio's circuit (threshold 1).
    sender.then(Some(SendError::Retryable {
        reason: "503".into(),
        retry_after: None,
    }));
    let first = sms(&app, 1).await;
    assert!(matches!(
        d.dispatch(&first, 1).await,
        Disposition::RetryAfter(_)
    ));
    let skipped = sms(&app, 2).await;
    assert!(
        matches!(d.dispatch(&skipped, 1).await, Disposition::RetryAfter(_)),
        "open: not tried"
    );
    assert_eq!(sender.calls(), 1);

    // After the cool-down the trial message is refused for its recipient: a permanent error.
    tokio::time::sleep(COOL_DOWN * 2).await;
    sender.then(Some(SendError::Permanent {
        code: "21211".into(),
        reason: "invalid 'To' number".into(),
    }));
    let trial = sms(&app, 3).await;
    assert_eq!(d.dispatch(&trial, 1).await, Disposition::Done);
    assert_eq!(status(&app, &trial).await, MessageStatus::Failed);
    assert_eq!(sender.calls(), 2);

    // The provider answered, so the circuit closed: the next message goes through it at once.
    let next = sms(&app, 4).await;
    assert_eq!(d.dispatch(&next, 1).await, Disposition::Done);
    assert_eq!(status(&app, &next).await, MessageStatus::Sent);
    assert_eq!(sender.calls(), 3, "Twilio was tried again");
}
