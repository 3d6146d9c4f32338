//! Handler tests: the API functions' handlers driven by the sample requests in `events/`, over
//! in-memory stores and a scripted provider checker. The emulator-backed versions of these
//! flows live in the integration tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use herald_shared::App;
use herald_shared::api;
use herald_shared::credentials::OpenCredentials;
use herald_shared::domain::provider::{ProviderKind, ProviderSettings};
use herald_shared::domain::snapshot::CheckOutcome;
use herald_shared::providers::{Accepted, ChannelSender, CredentialChecker, Outbound, SendError};
use herald_shared::status_webhooks::MemoryStatusEvents;
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

/// Passes every provider except the kinds told to fail; remembers the secrets it was shown.
#[derive(Default)]
struct ScriptedChecker {
    failing: Mutex<HashMap<ProviderKind, CheckOutcome>>,
    seen_secrets: Mutex<Vec<String>>,
}

#[async_trait]
impl CredentialChecker for ScriptedChecker {
    async fn check(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
    ) -> CheckOutcome {
        for field in settings.kind().credential_fields() {
            if let Some(v) = credentials.get(field) {
                self.seen_secrets.lock().expect("lock").push(v.to_owned());
            }
        }
        let failing = self.failing.lock().expect("lock");
        failing
            .get(&settings.kind())
            .cloned()
            .unwrap_or(CheckOutcome::Passed {
                detail: "ok".into(),
            })
    }
}

/// Accepts messages unless told to fail the next ones of a provider kind; remembers every
/// message a provider accepted (kind, message id, recipient).
#[derive(Default)]
struct RecordingSender {
    failures: Mutex<HashMap<ProviderKind, Vec<SendError>>>,
    sent: Mutex<Vec<(ProviderKind, String, String)>>,
    calls: Mutex<usize>,
}

impl RecordingSender {
    fn fail_next(&self, kind: ProviderKind, errors: Vec<SendError>) {
        self.failures.lock().expect("lock").insert(kind, errors);
    }

    fn sent(&self) -> Vec<(ProviderKind, String, String)> {
        self.sent.lock().expect("lock").clone()
    }
}

#[async_trait]
impl ChannelSender for RecordingSender {
    async fn send(
        &self,
        settings: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        *self.calls.lock().expect("lock") += 1;
        if let Some(errors) = self
            .failures
            .lock()
            .expect("lock")
            .get_mut(&settings.kind())
            && !errors.is_empty()
        {
            return Err(errors.remove(0));
        }
        self.sent.lock().expect("lock").push((
            settings.kind(),
            message.message_id.to_owned(),
            message.to.to_owned(),
        ));
        Ok(Accepted {
            // Brevo names messages like email Message-IDs; the others with plain ids.
            provider_message_id: match settings.kind() {
                ProviderKind::Brevo => format!("<pm-{}@smtp-relay.mailin.fr>", message.message_id),
                _ => format!("pm-{}", message.message_id),
            },
            cost: None,
            segments: None,
        })
    }
}

struct Harness {
    app: App,
    checker: Arc<ScriptedChecker>,
    sender: Arc<RecordingSender>,
    /// Every port's store, for reading back audit entries.
    store: Arc<MemoryStore>,
    /// What was told to tenants' status webhooks.
    events: Arc<MemoryStatusEvents>,
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A fixture with path parameters and body replaced.
fn with(mut event: Value, params: &[(&str, &str)], body: Option<Value>) -> Value {
    for (k, v) in params {
        event["pathParameters"][*k] = json!(v);
    }
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    event
}

impl Harness {
    fn new() -> Self {
        let checker = Arc::new(ScriptedChecker::default());
        let sender = Arc::new(RecordingSender::default());
        let store = Arc::new(MemoryStore::default());
        let events = Arc::new(MemoryStatusEvents::default());
        let mut app = App::over_memory(store.clone(), checker.clone(), sender.clone());
        app.status_events = events.clone();
        Self {
            app,
            checker,
            sender,
            store,
            events,
        }
    }

    async fn call(&self, event: Value) -> (u16, Value, HashMap<String, String>) {
        let request =
            lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event");
        let response = api::serve_any(&self.app, request)
            .await
            .expect("handlers answer every request");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = match response.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, body, headers)
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

    /// An event with settings, tenant SMS + email providers and templates: completable.
    async fn configured_event(&self) -> String {
        self.ok(fixture("config-api/put-event-settings")).await;
        self.ok(fixture("config-api/put-tenant-brand")).await;
        let twilio = self.ok(fixture("config-api/create-tenant-provider")).await;
        let mut brevo = fixture("config-api/create-tenant-provider");
        brevo["body"] = json!(json!({"channel": "email", "name": "Brevo", "settings": {"kind": "brevo", "from_address": "events@acme.example"},
            "credentials": {"api_key": "xkeysib-demo-000000000000"}}).to_string());
        self.ok(brevo).await;
        for t in ["put-tenant-template", "put-tenant-email-template"] {
            self.ok(fixture(&format!("config-api/{t}"))).await;
        }
        for category in ["rsvp_confirmation"] {
            for (channel, t) in [
                ("sms", "put-tenant-template"),
                ("email", "put-tenant-email-template"),
            ] {
                self.ok(with(
                    fixture(&format!("config-api/{t}")),
                    &[("category", category), ("channel", channel)],
                    None,
                ))
                .await;
            }
        }
        twilio["id"].as_str().expect("id").to_owned()
    }
}

#[tokio::test]
async fn credentials_are_write_only() {
    let h = Harness::new();
    let created = h.ok(fixture("config-api/create-tenant-provider")).await;
    let id = created["id"].as_str().expect("id");
    for body in [
        created.clone(),
        h.ok(with(
            fixture("config-api/get-tenant-provider"),
            &[("providerId", id)],
            None,
        ))
        .await,
    ] {
        let text = body.to_string();
        assert!(
            !text.contains("tw-auth-token-0000-demo-4d2f"),
            "secret leaked: {text}"
        );
        assert!(!text.contains("ciphertext"), "sealed form leaked: {text}");
        assert_eq!(body["credentials"]["hints"]["auth_token"], "…4d2f");
    }
    let listed = h.ok(fixture("config-api/list-tenant-providers")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["next"], Value::Null);

    // Updating without credentials keeps them; the live test still opens the right secret.
    h.ok(with(
        fixture("config-api/update-tenant-provider"),
        &[("providerId", id)],
        None,
    ))
    .await;
    let check = h
        .ok(with(
            fixture("config-api/test-tenant-provider"),
            &[("providerId", id)],
            None,
        ))
        .await;
    assert_eq!(check["outcome"], "passed");
    assert_eq!(
        h.checker.seen_secrets.lock().expect("lock").as_slice(),
        ["tw-auth-token-0000-demo-4d2f"]
    );
}

#[tokio::test]
async fn roles_are_enforced() {
    let h = Harness::new();
    let (status, body, _) = h
        .call(fixture(
            "config-api/create-tenant-provider-as-event-manager",
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _, _) = h
        .call(fixture("config-api/put-platform-template-as-tenant-admin"))
        .await;
    assert_eq!(status, 403);
    h.ok(fixture("config-api/put-platform-template")).await;
    let mut no_claims = fixture("config-api/list-tenant-providers");
    no_claims["requestContext"]["authorizer"] = Value::Null;
    assert_eq!(h.call(no_claims).await.0, 401);
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let h = Harness::new();
    let mut bad = fixture("config-api/create-tenant-provider");
    let mut body: Value = serde_json::from_str(bad["body"].as_str().expect("body")).expect("json");
    body["settings"]["account_sid"] = json!("AC123");
    bad["body"] = json!(body.to_string());
    let (status, err, _) = h.call(bad).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["field"], "settings.account_sid");

    let mut wrong_channel = fixture("config-api/create-tenant-provider");
    let mut body: Value =
        serde_json::from_str(wrong_channel["body"].as_str().expect("body")).expect("json");
    body["channel"] = json!("email");
    wrong_channel["body"] = json!(body.to_string());
    let (status, err, _) = h.call(wrong_channel).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("channel"))
    );

    let mut missing_secret = fixture("config-api/create-tenant-provider");
    let mut body: Value =
        serde_json::from_str(missing_secret["body"].as_str().expect("body")).expect("json");
    body["credentials"] = json!({});
    missing_secret["body"] = json!(body.to_string());
    let (status, err, _) = h.call(missing_secret).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("credentials.auth_token"))
    );

    let undeclared = with(
        fixture("config-api/put-tenant-template"),
        &[],
        Some(json!({"body": "Hi {{ guest }}", "variables": []})),
    );
    let (status, err, _) = h.call(undeclared).await;
    assert_eq!(
        (
            status,
            err["error"]["code"].as_str(),
            err["error"]["problems"][0]["field"].as_str()
        ),
        (422, Some("template_invalid"), Some("body"))
    );

    let not_json = with(fixture("config-api/put-tenant-brand"), &[], None);
    let mut not_json = not_json;
    not_json["body"] = json!("{\"display_name\": ");
    assert_eq!(h.call(not_json).await.0, 400);

    assert!(
        h.ok(fixture("config-api/list-tenant-providers")).await["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    assert!(
        h.ok(fixture("config-api/list-tenant-templates")).await["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[tokio::test]
async fn event_overrides_show_their_provenance_and_fall_back_when_removed() {
    let h = Harness::new();
    let twilio = h.configured_event().await;
    h.ok(fixture("config-api/put-event-brand")).await;
    h.ok(fixture("config-api/put-event-template")).await;
    h.ok(with(
        fixture("config-api/override-tenant-provider-for-event"),
        &[("providerId", &twilio)],
        None,
    ))
    .await;
    let own = h.ok(fixture("config-api/create-event-provider")).await;

    let cfg = h
        .ok(fixture("config-resolution/get-event-configuration"))
        .await;
    let sms = &cfg["channels"]["sms"];
    assert_eq!(sms["customized"], true);
    assert_eq!(
        sms["providers"][0]["id"], own["id"],
        "the event's own provider (priority 1) comes first"
    );
    assert_eq!(sms["providers"][1]["id"].as_str(), Some(twilio.as_str()));
    assert_eq!(
        sms["providers"][1]["priority"],
        json!({"value": 2, "source": "event", "overrides": "tenant"})
    );
    assert_eq!(
        sms["providers"][1]["weight"],
        json!({"value": 100, "source": "tenant"})
    );
    let invitation_sms = cfg["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["category"] == "invitation" && t["channel"] == "sms")
        .expect("slot")
        .clone();
    assert_eq!(
        (
            invitation_sms["source"].as_str(),
            invitation_sms["overrides"].as_str()
        ),
        (Some("event"), Some("tenant"))
    );
    assert_eq!(
        cfg["brand"]["display_name"],
        json!({"value": "Acme Winter Gala 2026", "source": "event", "overrides": "tenant"})
    );
    assert_eq!(cfg["brand"]["logo_url"]["source"], "tenant");
    assert!(
        !cfg.to_string().contains("atsk_demo"),
        "no secret in the resolution"
    );

    // "Use tenant default" again: remove the overrides.
    h.ok(fixture("config-api/delete-event-template")).await;
    h.ok(with(
        fixture("config-api/delete-event-provider"),
        &[("providerId", &twilio)],
        None,
    ))
    .await;
    h.ok(fixture("config-api/delete-event-brand")).await;
    let cfg = h
        .ok(fixture("config-resolution/get-event-configuration"))
        .await;
    let inherited = cfg["channels"]["sms"]["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["id"].as_str() == Some(twilio.as_str()))
        .expect("tenant provider")
        .clone();
    assert_eq!(
        inherited["priority"],
        json!({"value": 1, "source": "tenant"})
    );
    let invitation_sms = cfg["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["category"] == "invitation" && t["channel"] == "sms")
        .expect("slot")
        .clone();
    assert_eq!(invitation_sms["source"], "tenant");
    assert_eq!(
        cfg["brand"]["display_name"],
        json!({"value": "Acme Events", "source": "tenant"})
    );
}

#[tokio::test]
async fn other_tenants_see_nothing() {
    let h = Harness::new();
    let twilio = h.configured_event().await;
    let (status, _, _) = h
        .call(fixture(
            "config-resolution/get-event-configuration-other-tenant",
        ))
        .await;
    assert_eq!(status, 404);
    let mut get = with(
        fixture("config-api/get-tenant-provider"),
        &[("providerId", &twilio)],
        None,
    );
    get["requestContext"]["authorizer"]["jwt"]["claims"]["herald:tenant"] = json!("globex");
    assert_eq!(h.call(get).await.0, 404);
    let mut complete = fixture("wizard-completion/complete-wizard");
    complete["requestContext"]["authorizer"]["jwt"]["claims"]["herald:tenant"] = json!("globex");
    assert_eq!(h.call(complete).await.0, 404);
}

#[tokio::test]
async fn invalid_configuration_lists_every_problem_and_activates_nothing() {
    let h = Harness::new();
    h.ok(fixture("config-api/put-event-settings")).await;
    h.ok(fixture("config-api/create-tenant-provider")).await;
    h.ok(with(fixture("config-api/put-tenant-template"), &[], Some(json!({"body": "Hi {{ guest_name }}", "variables": [{"name": "guest_name", "sample": "Ada"}]})))).await;
    h.checker.failing.lock().expect("lock").insert(
        ProviderKind::Twilio,
        CheckOutcome::Rejected {
            detail: "Twilio refused the credentials (401)".into(),
        },
    );

    let (status, body, _) = h.call(fixture("wizard-completion/complete-wizard")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "configuration_invalid");
    let problems: Vec<(String, String)> = body["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap_or_default().to_owned(),
                p["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let has = |code: &str, field: &str| {
        problems
            .iter()
            .any(|(c, f)| c == code && f.starts_with(field))
    };
    assert!(
        has("template_missing", "templates.invitation.email"),
        "{problems:?}"
    );
    assert!(
        has("template_missing", "templates.rsvp_confirmation.sms"),
        "{problems:?}"
    );
    assert!(has("provider_missing", "providers.email"), "{problems:?}");
    assert!(
        has("provider_credentials_rejected", "providers.sms.prv_"),
        "{problems:?}"
    );
    assert!(
        !has("template_missing", "templates.invitation.sms"),
        "{problems:?}"
    );
    assert_eq!(
        h.call(fixture("wizard-completion/list-snapshots")).await.0,
        404,
        "nothing activated"
    );
}

#[tokio::test]
async fn completion_is_idempotent_versioned_and_rolls_back() {
    let h = Harness::new();
    h.configured_event().await;
    let first = h.ok(fixture("wizard-completion/complete-wizard")).await;
    assert_eq!(first["version"], 1);
    let (status, again, headers) = h.call(fixture("wizard-completion/complete-wizard")).await;
    assert_eq!((status, &again), (201, &first));
    assert_eq!(
        headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );

    let mut reused = fixture("wizard-completion/complete-wizard");
    reused["body"] = json!("{\"note\": \"different\"}");
    assert_eq!(h.call(reused).await.0, 422);

    h.ok(fixture("config-api/put-event-template")).await;
    let mut second = fixture("wizard-completion/complete-wizard");
    second["headers"]["idempotency-key"] = json!("wizard-gala-2026-attempt-2");
    let second = h.ok(second).await;
    assert_eq!(
        (
            second["version"].as_u64(),
            second["previous_version"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_ne!(second["digest"], first["digest"]);

    let listed = h.ok(fixture("wizard-completion/list-snapshots")).await;
    assert_eq!(
        listed["items"]
            .as_array()
            .and_then(|i| i.iter().find(|s| s["active"] == true))
            .map(|s| s["version"].clone()),
        Some(2.into())
    );
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(2));
    let rolled = h.ok(fixture("wizard-completion/activate-snapshot")).await;
    assert_eq!(rolled["version"], 1);
    let snapshot = h.ok(fixture("wizard-completion/get-snapshot")).await;
    assert_eq!(snapshot["version"], 1);
    assert!(!snapshot.to_string().contains("ciphertext"));
    let missing = with(
        fixture("wizard-completion/activate-snapshot"),
        &[("version", "9")],
        None,
    );
    assert_eq!(h.call(missing).await.0, 404);
}

#[tokio::test]
async fn retried_provider_creates_do_not_duplicate() {
    let h = Harness::new();
    let mut create = fixture("config-api/create-tenant-provider");
    create["headers"]["idempotency-key"] = json!("create-twilio-1");
    let first = h.ok(create.clone()).await;
    let (status, again, headers) = h.call(create.clone()).await;
    assert_eq!((status, &again), (201, &first));
    assert_eq!(
        headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );
    let mut other = create;
    other["body"] = json!(json!({"channel": "sms", "name": "Other", "settings": {"kind": "sns", "sms_type": "transactional"}}).to_string());
    assert_eq!(h.call(other).await.0, 422);
    assert_eq!(
        h.ok(fixture("config-api/list-tenant-providers")).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

// ---- sending and dispatch (in memory) ----

use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition};
use herald_shared::domain::message::{MessageId, MessageStatus};

impl Harness {
    /// A completed event whose SMS chain is Twilio (priority 1) then Amazon SNS (priority 2).
    async fn live_event(&self) {
        self.configured_event().await;
        let mut sns = fixture("config-api/create-tenant-provider");
        sns["body"] = json!(json!({"channel": "sms", "name": "SNS", "settings": {"kind": "sns", "sms_type": "transactional"}, "priority": 2}).to_string());
        self.ok(sns).await;
        self.ok(fixture("wizard-completion/complete-wizard")).await;
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher::from_app(&self.app, DispatchConfig::default())
    }

    async fn status(&self, id: &MessageId) -> MessageStatus {
        self.app
            .messages
            .message(id)
            .await
            .expect("store")
            .expect("message")
            .message
            .status
    }
}

fn ids(reply: &Value) -> Vec<MessageId> {
    reply["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| MessageId::parse(m["id"].as_str().expect("id")).expect("message id"))
        .collect()
}

#[tokio::test]
async fn a_send_is_accepted_then_dispatched_through_the_first_provider() {
    let h = Harness::new();
    h.live_event().await;
    let reply = h.ok(fixture("send-api/send-message")).await;
    assert_eq!(reply["messages"][0]["status"], "accepted");
    assert_eq!(reply["messages"][0]["segments"], 1);
    let id = ids(&reply).remove(0);
    assert_eq!(h.dispatcher().dispatch(&id, 1).await, Disposition::Done);
    assert_eq!(h.status(&id).await, MessageStatus::Sent);
    assert_eq!(
        h.sender.sent(),
        vec![(
            ProviderKind::Twilio,
            id.to_string(),
            "+260971234567".to_owned()
        )]
    );
    let stored = h
        .app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message")
        .message;
    assert_eq!(
        stored.provider_message_id.as_deref(),
        Some(format!("pm-{id}").as_str())
    );
    assert!(stored.content.text.contains("Ada"));
}

#[tokio::test]
async fn bad_recipients_and_missing_variables_are_refused_before_anything_is_written() {
    let h = Harness::new();
    h.live_event().await;
    let mut bad_phone = fixture("send-api/send-batch");
    bad_phone["body"] = json!(
        json!({"category": "invitation", "channel": "sms", "recipients": [
        {"to": "+260971234567", "variables": {"guest_name": "Ada", "event_date": "12 Dec"}},
        {"to": "0971234567", "variables": {"guest_name": "Bo", "event_date": "12 Dec"}}]})
        .to_string()
    );
    let (status, body, _) = h.call(bad_phone).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("recipients[1].to")),
        "{body}"
    );

    let mut missing = fixture("send-api/send-batch");
    missing["body"] = json!(
        json!({"category": "invitation", "channel": "email", "recipients": [
        {"to": "ada@guests.example", "variables": {"guest_name": "Ada", "event_date": "12 Dec"}},
        {"to": "grace@guests.example", "variables": {"guest_name": "Grace"}}]})
        .to_string()
    );
    let (status, body, _) = h.call(missing).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (
            400,
            Some("missing_variable"),
            Some("recipients[1].variables")
        ),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("event_date"),
        "{body}"
    );

    // Nothing was written for either request: the ids they would have had do not exist.
    let tenant = herald_shared::domain::TenantId::parse("acme-events").expect("tenant");
    for (key, n) in [("invite-batch-2026-11-22-001", 2)] {
        for i in 0..n {
            let id = MessageId::derive(&tenant, "gala-2026", key, i);
            assert!(h.app.messages.message(&id).await.expect("store").is_none());
        }
    }
    assert!(h.sender.sent().is_empty());
}

#[tokio::test]
async fn repeated_sends_with_one_key_create_one_message() {
    let h = Harness::new();
    h.live_event().await;
    let first = h.ok(fixture("send-api/send-batch")).await;
    let (status, again, headers) = h.call(fixture("send-api/send-batch")).await;
    assert_eq!((status, &again), (202, &first));
    assert_eq!(
        headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );
    let mut different = fixture("send-api/send-batch");
    different["body"] = json!(
        json!({"category": "invitation", "channel": "email", "recipients": [
        {"to": "ada@guests.example", "variables": {"guest_name": "Ada", "event_date": "13 Dec"}}]})
        .to_string()
    );
    assert_eq!(h.call(different).await.0, 422);
    for id in ids(&first) {
        for _ in 0..3 {
            assert_eq!(h.dispatcher().dispatch(&id, 1).await, Disposition::Done);
        }
    }
    assert_eq!(
        h.sender.sent().len(),
        2,
        "three deliveries of each queue message, one send each"
    );
}

#[tokio::test]
async fn outages_fail_over_and_recipient_errors_do_not() {
    let h = Harness::new();
    h.live_event().await;
    let d = h.dispatcher();

    h.sender.fail_next(
        ProviderKind::Twilio,
        vec![SendError::Retryable {
            reason: "503".into(),
            retry_after: None,
        }],
    );
    let id = ids(&h.ok(fixture("send-api/send-message")).await).remove(0);
    assert_eq!(d.dispatch(&id, 1).await, Disposition::Done);
    assert_eq!(
        h.sender.sent(),
        vec![(
            ProviderKind::Sns,
            id.to_string(),
            "+260971234567".to_owned()
        )],
        "fallback used, once"
    );

    h.sender.fail_next(
        ProviderKind::Twilio,
        vec![SendError::Permanent {
            code: "21211".into(),
            reason: "invalid To".into(),
        }],
    );
    let mut other = fixture("send-api/send-message");
    other["headers"]["idempotency-key"] = json!("invite-2");
    let id = ids(&h.ok(other).await).remove(0);
    assert_eq!(d.dispatch(&id, 1).await, Disposition::Done);
    assert_eq!(h.status(&id).await, MessageStatus::Failed);
    assert_eq!(
        h.sender.sent().len(),
        1,
        "no failover after a permanent recipient error"
    );
    let stored = h
        .app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message")
        .message;
    assert!(
        stored
            .status_reason
            .unwrap_or_default()
            .starts_with("21211")
    );
}

#[tokio::test]
async fn when_every_provider_is_down_the_message_waits_and_is_sent_later() {
    let h = Harness::new();
    h.live_event().await;
    let d = h.dispatcher();
    let down = || SendError::Retryable {
        reason: "down".into(),
        retry_after: Some(std::time::Duration::from_secs(30)),
    };
    h.sender.fail_next(ProviderKind::Twilio, vec![down()]);
    h.sender.fail_next(ProviderKind::Sns, vec![down()]);
    let id = ids(&h.ok(fixture("send-api/send-message")).await).remove(0);
    match d.dispatch(&id, 1).await {
        Disposition::RetryAfter(wait) => assert!(
            wait >= std::time::Duration::from_secs(30),
            "honours Retry-After: {wait:?}"
        ),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(h.status(&id).await, MessageStatus::Accepted);
    assert_eq!(d.dispatch(&id, 2).await, Disposition::Done);
    let stored = h
        .app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message")
        .message;
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(
        stored.attempts.len(),
        3,
        "two failures on the first delivery, the success on the second"
    );
}

#[tokio::test]
async fn a_claim_left_by_a_dead_dispatcher_is_never_resent() {
    let h = Harness::new();
    h.live_event().await;
    let id = ids(&h.ok(fixture("send-api/send-message")).await).remove(0);
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    h.app
        .messages
        .claim(&id, "dead-dispatcher", long_ago)
        .await
        .expect("claimed");
    assert_eq!(h.dispatcher().dispatch(&id, 2).await, Disposition::Done);
    let stored = h
        .app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message")
        .message;
    assert_eq!(stored.status, MessageStatus::Failed);
    assert!(
        stored
            .status_reason
            .unwrap_or_default()
            .starts_with("outcome_unknown")
    );
    assert!(h.sender.sent().is_empty());
}

#[tokio::test]
async fn poison_messages_are_left_for_the_dead_letter_queue() {
    let h = Harness::new();
    let d = h.dispatcher();
    assert!(matches!(
        d.dispatch_body("not json", 1).await,
        Disposition::Poison(_)
    ));
    let sqs: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../events/dispatch/sqs-batch.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture"),
    )
    .expect("SQS event");
    let body = sqs.records[0].body.clone().unwrap_or_default();
    assert!(
        matches!(d.dispatch_body(&body, 1).await, Disposition::Poison(_)),
        "no such message"
    );
}

#[tokio::test]
async fn business_events_send_on_every_channel_of_their_trigger() {
    let h = Harness::new();
    h.configured_event().await;
    let mut settings = fixture("config-api/put-event-settings");
    settings["body"] = json!(json!({"channels": ["email", "sms"], "categories": ["invitation", "rsvp_confirmation"],
        "triggers": {"guest.rsvp_confirmed": {"category": "rsvp_confirmation", "channels": ["email", "sms"]}}}).to_string());
    h.ok(settings).await;
    h.ok(fixture("wizard-completion/complete-wizard")).await;
    let reply = h.ok(fixture("send-api/trigger")).await;
    let channels: Vec<&str> = reply["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["channel"].as_str())
        .collect();
    assert_eq!(channels, ["email", "sms"]);
    let mut unknown = fixture("send-api/trigger");
    unknown["pathParameters"]["eventType"] = json!("loan.approved");
    unknown["headers"]["idempotency-key"] = json!("another");
    let (status, body, _) = h.call(unknown).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_trigger"))
    );
}

#[tokio::test]
async fn dispatch_routes_with_the_snapshot_active_now() {
    let h = Harness::new();
    h.live_event().await;
    let id = ids(&h.ok(fixture("send-api/send-message")).await).remove(0);
    // Before the queued message is dispatched, a new version turns Twilio off for the event.
    let twilio = h.ok(fixture("config-api/list-tenant-providers")).await["items"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["settings"]["kind"] == "twilio")
        .and_then(|p| p["id"].as_str())
        .expect("twilio")
        .to_owned();
    h.ok(with(
        fixture("config-api/override-tenant-provider-for-event"),
        &[("providerId", &twilio)],
        Some(json!({"active": false})),
    ))
    .await;
    let mut again = fixture("wizard-completion/complete-wizard");
    again["headers"]["idempotency-key"] = json!("v2");
    h.ok(again).await;
    assert_eq!(h.dispatcher().dispatch(&id, 1).await, Disposition::Done);
    assert_eq!(
        h.sender.sent().first().map(|s| s.0),
        Some(ProviderKind::Sns)
    );
}

// ---- delivery receipts (in memory) ----

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use herald_shared::domain::status_event::StatusEventType;
use herald_shared::providers::twilio;

/// The auth token `config-api/create-tenant-provider` gives the tenant's Twilio configuration.
const TWILIO_AUTH_TOKEN: &str = "tw-auth-token-0000-demo-4d2f";

/// The route token at the end of a provider's `receipts.url`.
fn receipt_token(provider: &Value) -> String {
    let url = provider["receipts"]["url"].as_str().expect("receipts.url");
    url.rsplit('/').next().expect("token").to_owned()
}

/// The path of `event` without its stage, and the stage's prefix (`/v1`, or empty for `$default`).
fn unstaged_path(event: &Value) -> (String, String) {
    let raw = event["rawPath"].as_str().expect("rawPath");
    match event["requestContext"]["stage"].as_str() {
        Some(stage) if stage != "$default" => {
            let prefix = format!("/{stage}");
            let rest = raw.strip_prefix(&prefix).unwrap_or(raw);
            (rest.to_owned(), prefix)
        }
        _ => (raw.to_owned(), String::new()),
    }
}

/// Points a receipt fixture at `token`'s route (on the fixture's stage).
fn routed(mut event: Value, provider: &str, token: &str) -> Value {
    let (_, stage) = unstaged_path(&event);
    let path = format!("{stage}/webhooks/{provider}/{token}");
    let method = event["requestContext"]["http"]["method"]
        .as_str()
        .unwrap_or("POST")
        .to_owned();
    let route = format!("{method} /webhooks/{provider}/{{token}}");
    event["routeKey"] = json!(route);
    event["requestContext"]["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["token"] = json!(token);
    event
}

/// A Twilio fixture from `events/receipts/` sent to `token`, with form fields replaced, signed
/// the way Twilio signs (the public URL and the sorted parameters, keyed with the auth token).
fn twilio_receipt(name: &str, token: &str, set: &[(&str, &str)]) -> Value {
    let event = routed(fixture(&format!("receipts/{name}")), "twilio", token);
    let raw = B64
        .decode(event["body"].as_str().expect("body"))
        .expect("base64 form");
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(&raw).into_owned().collect();
    for (name, value) in set {
        match pairs.iter_mut().find(|(k, _)| k == name) {
            Some(pair) => pair.1 = (*value).to_owned(),
            None => pairs.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    signed_twilio(event, &pairs)
}

fn signed_twilio(mut event: Value, pairs: &[(String, String)]) -> Value {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let url = format!(
        "https://{}{}",
        event["requestContext"]["domainName"]
            .as_str()
            .expect("domain"),
        event["rawPath"].as_str().expect("path")
    );
    event["headers"]["x-twilio-signature"] =
        json!(twilio::signature(TWILIO_AUTH_TOKEN, &url, pairs));
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(B64.encode(body));
    event
}

impl Harness {
    /// A live event (Twilio then SNS for SMS, Brevo for email) and the tenant's providers.
    async fn providers(&self) -> Vec<Value> {
        self.ok(fixture("config-api/list-tenant-providers")).await["items"]
            .as_array()
            .expect("providers")
            .clone()
    }

    async fn twilio_token(&self) -> String {
        let providers = self.providers().await;
        let twilio = providers
            .iter()
            .find(|p| p["settings"]["kind"] == "twilio")
            .expect("a Twilio provider");
        receipt_token(twilio)
    }

    /// Sends the sample SMS and dispatches it: its id and Twilio's id for it.
    async fn sent_sms(&self, key: &str) -> (MessageId, String) {
        let reply = self
            .ok(fixture("send-api/send-message").header_value("Idempotency-Key", key))
            .await;
        let id = ids(&reply).remove(0);
        assert_eq!(self.dispatcher().dispatch(&id, 1).await, Disposition::Done);
        (id.clone(), format!("pm-{id}"))
    }

    fn published(&self) -> Vec<herald_shared::domain::status_event::StatusEvent> {
        self.events.published()
    }

    fn store_audit_actions(&self) -> Vec<String> {
        self.store
            .audit_entries()
            .into_iter()
            .map(|a| a.action)
            .collect()
    }
}

trait HeaderValue {
    fn header_value(self, name: &str, value: &str) -> Self;
}

impl HeaderValue for Value {
    fn header_value(mut self, name: &str, value: &str) -> Self {
        self["headers"][name.to_ascii_lowercase()] = json!(value);
        self
    }
}

#[tokio::test]
async fn a_twilio_receipt_moves_the_message_forward_once_and_never_back() {
    let h = Harness::new();
    h.live_event().await;
    let token = h.twilio_token().await;
    let (id, sid) = h.sent_sms("receipt-1").await;

    let delivered = twilio_receipt(
        "twilio-status-delivered",
        &token,
        &[("MessageSid", &sid), ("SmsSid", &sid)],
    );
    let first = h.ok(delivered.clone()).await;
    assert_eq!(
        (first["advanced"].as_u64(), first["unknown"].as_u64()),
        (Some(1), Some(0)),
        "{first}"
    );
    assert_eq!(h.status(&id).await, MessageStatus::Delivered);

    // Twilio retries, and a late "sent" arrives after "delivered": nothing moves.
    let again = h.ok(delivered).await;
    assert_eq!(again["unchanged"], 1, "{again}");
    let late = twilio_receipt(
        "twilio-status-delivered",
        &token,
        &[
            ("MessageSid", &sid),
            ("SmsSid", &sid),
            ("MessageStatus", "sent"),
            ("SmsStatus", "sent"),
        ],
    );
    assert_eq!(h.ok(late).await["unchanged"], 1);
    assert_eq!(h.status(&id).await, MessageStatus::Delivered);

    let delivered_events: Vec<_> = h
        .published()
        .into_iter()
        .filter(|e| e.id == format!("evt_{id}_delivered"))
        .collect();
    assert!(
        !delivered_events.is_empty(),
        "the change is told to the tenant's webhooks"
    );
    assert!(
        delivered_events
            .iter()
            .all(|e| e.id == delivered_events[0].id),
        "a repeated receipt repeats the same event id"
    );
    let audit = h.store_audit_actions();
    assert_eq!(
        audit.iter().filter(|a| *a == "message.delivered").count(),
        1,
        "one audit entry for one change: {audit:?}"
    );
}

/// `event` as API Gateway delivers it from the API's named stage `stage` on `domain`: `rawPath`
/// and `requestContext.http.path` begin with the stage, the route key does not, and
/// `requestContext.stage` names it (the HTTP API payload 2.0, execute-api URL or custom domain).
fn staged(mut event: Value, stage: &str, domain: &str) -> Value {
    let path = format!("/{stage}{}", unstaged_path(&event).0);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["stage"] = json!(stage);
    event["requestContext"]["domainName"] = json!(domain);
    event["headers"]["host"] = json!(domain);
    event
}

#[tokio::test]
async fn a_named_stage_routes_by_route_key_and_every_url_given_out_carries_it() {
    const EXECUTE_API: &str = "h3r4ld0api.execute-api.eu-west-1.amazonaws.com";
    // Without a configured public URL: the domain and stage the request came on.
    let h = Harness::new();
    h.live_event().await;
    let (status, body, _) = h
        .call(staged(
            fixture("config-api/list-tenant-providers"),
            "v1",
            EXECUTE_API,
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let twilio = body["items"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["settings"]["kind"] == "twilio"))
        .expect("the Twilio provider");
    let token = receipt_token(twilio);
    assert_eq!(
        twilio["receipts"]["url"],
        format!("https://{EXECUTE_API}/v1/webhooks/twilio/{token}")
    );

    // Twilio signs the URL it was given, stage included; the handler finds its route and
    // checks the signature against that same URL.
    let (id, sid) = h.sent_sms("staged-1").await;
    let delivered = staged(
        routed(
            fixture("receipts/twilio-status-delivered"),
            "twilio",
            &token,
        ),
        "v1",
        EXECUTE_API,
    );
    let raw = B64
        .decode(delivered["body"].as_str().expect("body"))
        .expect("base64 form");
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(&raw).into_owned().collect();
    for (name, value) in &mut pairs {
        if name == "MessageSid" || name == "SmsSid" {
            value.clone_from(&sid);
        }
    }
    let applied = h.ok(signed_twilio(delivered.clone(), &pairs)).await;
    assert_eq!(applied["advanced"], 1, "{applied}");
    assert_eq!(h.status(&id).await, MessageStatus::Delivered);

    // A signature over the URL without the stage is not the URL Twilio was given: refused.
    let mut unstaged = signed_twilio(delivered, &pairs);
    let url = format!("https://{EXECUTE_API}/webhooks/twilio/{token}");
    unstaged["headers"]["x-twilio-signature"] =
        json!(twilio::signature(TWILIO_AUTH_TOKEN, &url, &pairs));
    assert_eq!(h.call(unstaged).await.0, 401);

    // Preference links point at the stage too, and open there.
    let link = h
        .ok(staged(
            fixture("config-api/create-preference-link"),
            "v1",
            EXECUTE_API,
        ))
        .await;
    let link_url = link["url"].as_str().expect("url").to_owned();
    let prefix = format!("https://{EXECUTE_API}/v1/preferences/");
    let link_token = link_url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link_url}"));
    let mut open = staged(
        fixture("preference-centre/get-preferences"),
        "v1",
        EXECUTE_API,
    );
    open["pathParameters"]["token"] = json!(link_token);
    open["rawPath"] = json!(format!("/v1/preferences/{link_token}"));
    open["requestContext"]["http"]["path"] = open["rawPath"].clone();
    let (status, seen, _) = h.call(open).await;
    assert_eq!((status, &seen["channel"]), (200, &json!("sms")), "{seen}");

    // With a configured public URL (a custom domain mapped to the stage), URLs start with it and
    // Twilio's signature is checked against it, while the raw path still carries the stage.
    let mut h = Harness::new();
    h.app.public_url = Some("https://api.herald.example/v1".to_owned());
    h.live_event().await;
    let token = h.twilio_token().await;
    let providers = h.providers().await;
    assert!(
        providers.iter().any(|p| p["receipts"]["url"]
            == format!("https://api.herald.example/v1/webhooks/twilio/{token}")),
        "{providers:?}"
    );
    let (id, sid) = h.sent_sms("staged-2").await;
    let delivered = staged(
        routed(
            fixture("receipts/twilio-status-delivered"),
            "twilio",
            &token,
        ),
        "v1",
        "api.herald.example",
    );
    for (name, value) in &mut pairs {
        if name == "MessageSid" || name == "SmsSid" {
            value.clone_from(&sid);
        }
    }
    let applied = h.ok(signed_twilio(delivered, &pairs)).await;
    assert_eq!(applied["advanced"], 1, "{applied}");
    assert_eq!(h.status(&id).await, MessageStatus::Delivered);
}

#[tokio::test]
async fn forged_receipts_are_refused_and_change_nothing() {
    let h = Harness::new();
    h.live_event().await;
    let token = h.twilio_token().await;
    let (id, sid) = h.sent_sms("receipt-2").await;
    let genuine = twilio_receipt(
        "twilio-status-delivered",
        &token,
        &[("MessageSid", &sid), ("SmsSid", &sid)],
    );

    // One altered byte of the body: the signature no longer matches.
    let mut altered = genuine.clone();
    let body = B64
        .decode(altered["body"].as_str().expect("body"))
        .expect("base64");
    let text = String::from_utf8(body)
        .expect("form")
        .replace("delivered", "delivereD");
    altered["body"] = json!(B64.encode(text));
    let (status, body, _) = h.call(altered).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated")),
        "{body}"
    );

    // The signature of another configuration's secret, and a missing signature.
    let mut foreign = genuine.clone();
    foreign["headers"]["x-twilio-signature"] = json!("c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ==");
    assert_eq!(h.call(foreign).await.0, 401);
    let mut unsigned = genuine.clone();
    unsigned["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("x-twilio-signature");
    assert_eq!(h.call(unsigned).await.0, 401);

    // A token nobody has, a well-formed guess, and Twilio's token on another provider's route.
    for event in [
        routed(genuine.clone(), "twilio", "not-a-token"),
        routed(
            genuine.clone(),
            "twilio",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        routed(genuine.clone(), "brevo", &token),
    ] {
        assert_eq!(h.call(event).await.0, 404);
    }
    assert_eq!(h.status(&id).await, MessageStatus::Sent, "nothing changed");
}

#[tokio::test]
async fn a_receipt_for_an_unknown_message_is_acknowledged_and_counted() {
    let h = Harness::new();
    h.live_event().await;
    let token = h.twilio_token().await;
    let reply = h
        .ok(twilio_receipt("twilio-status-undelivered", &token, &[]))
        .await;
    assert_eq!(
        (reply["unknown"].as_u64(), reply["advanced"].as_u64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn stop_opts_the_recipient_out_and_the_next_send_is_refused() {
    let h = Harness::new();
    h.live_event().await;
    let token = h.twilio_token().await;
    let stop = twilio_receipt("twilio-inbound-stop", &token, &[]);
    assert_eq!(h.ok(stop.clone()).await["opted_out"], 1);
    assert_eq!(
        h.ok(stop).await["opted_out"],
        0,
        "a second STOP changes nothing"
    );
    // Its event is told again (Twilio retrying after a lost answer must not lose it) with the
    // first one's id, which receivers drop as a repeat.
    let opted_out: Vec<String> = h
        .published()
        .into_iter()
        .filter(|e| e.kind == StatusEventType::RecipientOptedOut)
        .map(|e| e.id)
        .collect();
    assert_eq!(opted_out.len(), 2, "{opted_out:?}");
    assert_eq!(opted_out[0], opted_out[1]);

    let (status, body, _) = h
        .call(fixture("send-api/send-message").header_value("Idempotency-Key", "after-stop-1"))
        .await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["problems"][0]["field"].as_str()
        ),
        (422, Some("recipient_opted_out"), Some("to")),
        "{body}"
    );
    assert!(
        !body.to_string().contains("+260971234567"),
        "the refusal does not repeat the number: {body}"
    );

    // A batch sends to the others and lists the refused one.
    let mut batch = fixture("send-api/send-batch").header_value("Idempotency-Key", "after-stop-2");
    batch["body"] = json!(
        json!({"category": "invitation", "channel": "sms", "recipients": [
        {"to": "+260971234567", "variables": {"guest_name": "Ada", "event_date": "12 Dec"}},
        {"to": "+260971234568", "variables": {"guest_name": "Bo", "event_date": "12 Dec"}}]})
        .to_string()
    );
    let reply = h.ok(batch).await;
    assert_eq!(
        reply["messages"].as_array().map(Vec::len),
        Some(1),
        "{reply}"
    );
    assert_eq!(reply["refused"][0]["field"], "recipients[0].to", "{reply}");
    assert_eq!(reply["refused"][0]["code"], "recipient_opted_out");

    // Email is another channel: the SMS opt-out does not touch it.
    assert!(
        h.published()
            .iter()
            .any(|e| e.kind.as_str() == "recipient.opted_out")
    );

    // START lifts it.
    let start = twilio_receipt("twilio-inbound-stop", &token, &[("Body", "START")]);
    assert_eq!(h.ok(start).await["opted_in"], 1);
    h.ok(fixture("send-api/send-message").header_value("Idempotency-Key", "after-start"))
        .await;
}

#[tokio::test]
async fn a_hard_bounce_suppresses_the_address_and_brevo_authenticates_with_its_secret() {
    let h = Harness::new();
    h.configured_event().await;
    // A Brevo configuration of its own, the only one for email: its receipt secret is shown once.
    for p in h.providers().await {
        if p["settings"]["kind"] == "brevo" {
            let id = p["id"].as_str().expect("id");
            h.ok(with(
                fixture("config-api/delete-tenant-provider"),
                &[("providerId", id)],
                None,
            ))
            .await;
        }
    }
    let mut brevo = fixture("config-api/create-tenant-provider");
    brevo["body"] = json!(
        json!({"channel": "email", "name": "Brevo (receipts)",
        "settings": {"kind": "brevo", "from_address": "events@acme.example"},
        "credentials": {"api_key": "xkeysib-demo-111111111111"}})
        .to_string()
    );
    let created = h.ok(brevo).await;
    let secret = created["receipts"]["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let token = receipt_token(&created);
    let listed = h.providers().await;
    assert!(
        !listed.iter().any(|p| p.to_string().contains(&secret)),
        "never shown again"
    );
    assert!(
        !listed
            .iter()
            .any(|p| p.to_string().contains("secret_sha256"))
    );
    h.ok(fixture("wizard-completion/complete-wizard")).await;

    let mut email = fixture("send-api/send-message").header_value("Idempotency-Key", "bounce-1");
    email["body"] = json!(
        json!({"category": "invitation", "channel": "email", "to": "nobody@example.com",
        "variables": {"guest_name": "Nobody", "event_date": "12 Dec"}})
        .to_string()
    );
    let id = ids(&h.ok(email.clone()).await).remove(0);
    assert_eq!(h.dispatcher().dispatch(&id, 1).await, Disposition::Done);

    let mut bounce = routed(fixture("receipts/brevo-hard-bounce"), "brevo", &token);
    let mut event: Value =
        serde_json::from_str(bounce["body"].as_str().expect("body")).expect("json");
    event["message-id"] = json!(format!("<pm-{id}@smtp-relay.mailin.fr>"));
    bounce["body"] = json!(event.to_string());
    bounce["headers"]["authorization"] = json!("Bearer not-the-secret");
    assert_eq!(h.call(bounce.clone()).await.0, 401);
    bounce["headers"]["authorization"] = json!(format!("Bearer {secret}"));
    let reply = h.ok(bounce).await;
    assert_eq!(
        (reply["advanced"].as_u64(), reply["suppressed"].as_u64()),
        (Some(1), Some(1)),
        "{reply}"
    );
    assert_eq!(h.status(&id).await, MessageStatus::Bounced);

    let (status, body, _) = h
        .call(email.header_value("Idempotency-Key", "bounce-2"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("recipient_suppressed")),
        "{body}"
    );
}

#[tokio::test]
async fn meta_verification_needs_the_verify_token_herald_generated() {
    let h = Harness::new();
    h.configured_event().await;
    let mut meta = fixture("config-api/create-tenant-provider");
    meta["body"] = json!(
        json!({"channel": "whatsapp", "name": "Meta",
        "settings": {"kind": "meta_whatsapp", "phone_number_id": "106540352242922"},
        "credentials": {"access_token": "EAAG-demo", "app_secret": "meta-app-secret-demo"}})
        .to_string()
    );
    let created = h.ok(meta).await;
    let verify_token = created["receipts"]["secret"]
        .as_str()
        .expect("verify token")
        .to_owned();
    let token = receipt_token(&created);
    let challenge = |presented: &str| {
        let mut event = routed(fixture("receipts/meta-verification"), "meta", &token);
        event["rawQueryString"] = json!(format!(
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={presented}"
        ));
        event["queryStringParameters"] = json!({"hub.mode": "subscribe",
            "hub.challenge": "1158201444", "hub.verify_token": presented});
        event
    };
    let (status, _, _) = h.call(challenge("herald-receipts-test-verify-token")).await;
    assert_eq!(status, 401);
    let request =
        lambda_http::request::from_str(&challenge(&verify_token).to_string()).expect("event");
    let response = api::serve_any(&h.app, request).await.expect("answer");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.body().as_ref(), b"1158201444");
}

#[tokio::test]
async fn a_receipt_that_comes_before_dispatch_recorded_the_providers_id_is_applied() {
    let h = Harness::new();
    h.live_event().await;
    let token = h.twilio_token().await;
    let reply = h
        .ok(fixture("send-api/send-message").header_value("Idempotency-Key", "early-1"))
        .await;
    let id = ids(&reply).remove(0);
    // Twilio's "sent" callback races dispatch's write of the message's Twilio id.
    let early = twilio_receipt(
        "twilio-status-delivered",
        &token,
        &[
            ("MessageSid", &format!("pm-{id}")),
            ("SmsSid", &format!("pm-{id}")),
        ],
    );
    let dispatch_later = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        h.dispatcher().dispatch(&id, 1).await
    };
    let (reply, disposition) = tokio::join!(h.ok(early), dispatch_later);
    assert_eq!(disposition, Disposition::Done);
    assert_eq!(
        (reply["advanced"].as_u64(), reply["unknown"].as_u64()),
        (Some(1), Some(0)),
        "{reply}"
    );
    assert_eq!(h.status(&id).await, MessageStatus::Delivered);
}

/// A template that builds too much is refused where it can be seen (at save) and stopped where
/// it was hidden behind a condition (at send), with a 422 naming the template and the limit, and
/// nothing written or sent.
#[tokio::test]
async fn templates_that_build_too_much_are_422s_at_save_and_at_send() {
    let h = Harness::new();
    h.live_event().await;
    let put = |body: &str| {
        let mut put = fixture("config-api/put-event-template");
        put["body"] = json!(
            json!({"body": body, "variables": [
                {"name": "guest_name", "sample": "Ada"}, {"name": "event_date", "sample": "12 Dec"}]})
            .to_string()
        );
        put
    };
    let (status, body, _) = h
        .call(put(
            r#"{{ "x" * 100000000 }} {{ guest_name }} {{ event_date }}"#,
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("template_too_large")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("invitation sms template") && message.contains("1600 characters"),
        "{body}"
    );

    // Hidden from the samples: saved, completed, then refused at send.
    h.ok(put(r#"Hi {{ guest_name }} on {{ event_date }}{% if guest_name == "boom" %}{{ ("a\n" * 2000)|indent(2000000) }}{% endif %}"#)).await;
    let mut again = fixture("wizard-completion/complete-wizard");
    again["headers"]["idempotency-key"] = json!("complete-again");
    h.ok(again).await;
    let mut send = fixture("send-api/send-message");
    send["body"] = json!(
        json!({"category": "invitation", "channel": "sms", "to": "+260971234567",
            "variables": {"guest_name": "boom", "event_date": "12 Dec"}})
        .to_string()
    );
    let (status, body, _) = h.call(send).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("template_too_large")),
        "{body}"
    );
    let tenant = herald_shared::domain::TenantId::parse("acme-events").expect("tenant");
    let key = fixture("send-api/send-message")["headers"]["idempotency-key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = MessageId::derive(&tenant, "gala-2026", &key, 0);
    assert!(h.app.messages.message(&id).await.expect("store").is_none());
    assert!(h.sender.sent().is_empty());
}

// ---- template preview ----

#[tokio::test]
async fn a_draft_previews_with_the_events_brand_given_values_and_samples() {
    let h = Harness::new();
    h.configured_event().await;
    let reply = h.ok(fixture("config-api/preview-event-template")).await;
    assert_eq!(reply["template"]["source"], "draft");
    assert_eq!(reply["subject"], "You are invited, Grace");
    let html = reply["html"].as_str().unwrap_or_default();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("Dear Grace"),
        "{reply}"
    );
    assert!(
        reply["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Dear Grace\n\nThe Winter Gala awaits you on 12 Dec."),
        "{reply}"
    );
    assert_eq!(reply["variables"]["guest_name"]["source"], "given");
    assert_eq!(reply["variables"]["event_date"]["source"], "sample");
    // The tenant's brand, each field with its layer; the email goes out through Brevo.
    let brand = reply["brand"].as_object().expect("brand");
    assert!(!brand.is_empty(), "{reply}");
    assert!(brand.values().all(|v| v["source"] == "tenant"), "{reply}");
    assert_eq!(reply["cost_estimate"]["provider"], "brevo", "{reply}");
    assert!(reply.get("sms").is_none());
}

#[tokio::test]
async fn saved_templates_preview_at_each_scope_with_their_layer() {
    let h = Harness::new();
    h.configured_event().await;
    let mut event = fixture("config-api/preview-event-template");
    event["pathParameters"]["channel"] = json!("sms");
    event["body"] = json!(json!({"to": "+260971234567"}).to_string());
    let reply = h.ok(event).await;
    assert_eq!(
        (
            reply["template"]["source"].as_str(),
            reply["template"]["version"].as_u64()
        ),
        (Some("tenant"), Some(1)),
        "{reply}"
    );
    assert_eq!(reply["sms"]["encoding"], "gsm7", "{reply}");
    assert_eq!(reply["sms"]["segments"], 1);
    assert_eq!(reply["cost_estimate"]["provider"], "twilio", "{reply}");
    assert!(
        reply["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Acme Events: Hi Ada, you're invited on 12 Dec."),
        "{reply}"
    );

    let tenant = h.ok(fixture("config-api/preview-tenant-template")).await;
    assert_eq!(tenant["template"]["source"], "tenant", "{tenant}");
    assert!(
        tenant["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Hi Grace,"),
        "{tenant}"
    );

    // The platform has no invitation SMS template of its own: 404, nothing made up.
    let (status, body, _) = h
        .call(fixture("config-api/preview-platform-template"))
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_draft_that_does_not_render_is_a_422_with_line_and_column() {
    let h = Harness::new();
    h.configured_event().await;
    let draft = |body: &str| {
        let mut preview = fixture("config-api/preview-event-template");
        preview["pathParameters"]["channel"] = json!("sms");
        preview["body"] = json!(
            json!({"content": {"body": body, "variables": [{"name": "guest_name", "sample": "Ada"}]}})
                .to_string()
        );
        preview
    };
    let (status, body, _) = h
        .call(draft("Hi {{ guest_name }}\nsee you {{ guest_name | }}"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("template_invalid")),
        "{body}"
    );
    let problem = &body["error"]["problems"][0];
    assert_eq!(problem["field"], "templates.invitation.sms.body", "{body}");
    assert_eq!(problem["at"]["line"], 2, "{body}");
    assert!(
        problem["at"]["column"].as_u64().is_some_and(|c| c > 1),
        "{body}"
    );

    let (status, body, _) = h
        .call(draft(r#"{{ guest_name }}{{ "x" * 100000000 }}"#))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("template_too_large")),
        "{body}"
    );
    let mut unknown = draft("{{ guest_name }}");
    unknown["body"] = json!(
        json!({"content": {"body": "{{ guest_name }}", "variables": [{"name": "guest_name", "sample": "Ada"}]},
            "variables": {"seat": "4"}})
        .to_string()
    );
    let (status, body, _) = h.call(unknown).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("variables.seat")),
        "{body}"
    );
}
