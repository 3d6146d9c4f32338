//! Handler tests for the consent ledger, preferences and the preference centre, driven by the
//! sample requests in `events/` over in-memory stores: what the send path does with withdrawn
//! consent, opt-outs and quiet hours, and what a signed preference link opens (and does not).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use herald_shared::App;
use herald_shared::credentials::OpenCredentials;
use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition};
use herald_shared::domain::TenantId;
use herald_shared::domain::message::{MessageId, MessageStatus};
use herald_shared::domain::preference_link::PreferenceLink;
use herald_shared::domain::provider::ProviderSettings;
use herald_shared::fanout::MemoryFanout;
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::{PassingChecker, fixture};

const ADA: &str = "+260971234567";

/// Accepts every message and remembers which were sent.
#[derive(Default)]
struct RecordingSender {
    sent: Mutex<Vec<String>>,
}

#[async_trait]
impl ChannelSender for RecordingSender {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        self.sent
            .lock()
            .expect("lock")
            .push(message.message_id.to_owned());
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
    sender: Arc<RecordingSender>,
    fanout: Arc<MemoryFanout>,
}

/// A fixture with its body, path parameters or headers changed.
trait Adjust {
    fn body(self, body: Value) -> Self;
    fn path(self, name: &str, value: &str) -> Self;
    fn header(self, name: &str, value: &str) -> Self;
    fn claim(self, name: &str, value: &str) -> Self;
    /// A raw (form) body.
    fn with_body_text(self, body: &str) -> Self;
    fn token(self, token: &str) -> Self;
}

impl Adjust for Value {
    fn body(mut self, body: Value) -> Self {
        self["body"] = json!(body.to_string());
        self
    }
    fn path(mut self, name: &str, value: &str) -> Self {
        self["pathParameters"][name] = json!(value);
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self["headers"][name] = json!(value);
        self
    }
    fn claim(mut self, name: &str, value: &str) -> Self {
        self["requestContext"]["authorizer"]["jwt"]["claims"][name] = json!(value);
        self
    }
    fn with_body_text(mut self, body: &str) -> Self {
        self["body"] = json!(body);
        self
    }
    fn token(mut self, token: &str) -> Self {
        let path = format!("/v1/preferences/{token}");
        self["pathParameters"]["token"] = json!(token);
        self["rawPath"] = json!(path);
        self["requestContext"]["http"]["path"] = json!(path);
        self
    }
}

impl Harness {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let sender = Arc::new(RecordingSender::default());
        let fanout = Arc::new(MemoryFanout::default());
        let mut app = App::over_memory(store.clone(), Arc::new(PassingChecker), sender.clone());
        app.fanout = fanout.clone();
        Self {
            app,
            store,
            sender,
            fanout,
        }
    }

    async fn call(&self, event: Value) -> (u16, Value) {
        let (status, body, _) = crate::support::serve(&self.app, event).await;
        (status, body)
    }

    async fn ok(&self, event: Value) -> Value {
        let route = event["routeKey"].clone();
        let (status, body) = self.call(event).await;
        assert!(
            (200..300).contains(&status),
            "{route} answered {status}: {body}"
        );
        body
    }

    /// `(status, error code)` of a call expected to fail.
    async fn refused(&self, event: Value) -> (u16, String) {
        let (status, body) = self.call(event).await;
        (
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// The sample event with SMS and email, invitations (marketing) and RSVP confirmations
    /// (transactional), completed into an active snapshot.
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

    /// Sends one message of `category` on `channel` to `to`.
    async fn send(&self, key: &str, category: &str, channel: &str, to: &str) -> (u16, Value) {
        let variables = if channel == "email" {
            json!({"guest_name": "Ada Lovelace", "event_date": "12 December 2026"})
        } else {
            json!({"guest_name": "Ada", "event_date": "12 Dec"})
        };
        self.call(
            fixture("send-api/send-message")
                .header("idempotency-key", key)
                .body(json!({"category": category, "channel": channel, "to": to, "variables": variables})),
        )
        .await
    }

    async fn lookup(&self, channel: &str, address: &str) -> Value {
        self.ok(fixture("config-api/lookup-recipient")
            .body(json!({"channel": channel, "address": address})))
            .await
    }

    async fn consent(&self, key: &str, channel: &str, scope: &str, status: &str) -> Value {
        self.ok(
            fixture("config-api/record-recipient-consent")
                .header("idempotency-key", key)
                .body(json!({"channel": channel, "address": ADA, "category": scope, "status": status,
                             "legal_basis": "consent", "source": "signup_form", "evidence": "form v3"})),
        )
        .await
    }

    async fn preferences(&self, key: &str, body: Value) -> Value {
        self.ok(fixture("config-api/put-recipient-preferences")
            .header("idempotency-key", key)
            .body(body))
            .await
    }

    /// A preference-centre token made through the API for `address` on `channel`.
    async fn link(&self, channel: &str, address: &str) -> String {
        let made = self
            .ok(fixture("config-api/create-preference-link")
                .body(json!({"channel": channel, "address": address})))
            .await;
        let url = made["url"].as_str().expect("url");
        assert!(
            url.starts_with("https://api.herald.example/v1/preferences/v1."),
            "{url}"
        );
        assert!(!url.contains("260971234567"), "the link holds no address");
        url.rsplit_once('/').expect("token").1.to_owned()
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher::from_app(&self.app, DispatchConfig::default())
    }

    async fn status(&self, id: &str) -> MessageStatus {
        use herald_shared::store::MessageStore as _;
        let id = MessageId::parse(id).expect("id");
        self.store
            .message(&id)
            .await
            .expect("the store answers")
            .expect("the message exists")
            .message
            .status
    }
}

fn message_ids(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn withdrawn_marketing_consent_refuses_invitations_but_not_rsvp_confirmations() {
    let h = Harness::new();
    h.live_event().await;
    // The sample: a call-centre withdrawal of SMS marketing, recorded by an event manager.
    let recorded = h.ok(fixture("config-api/record-recipient-consent")).await;
    assert_eq!(recorded["consent"]["status"], "withdrawn");
    assert_eq!(recorded["consent"]["recorded_by"], "user-grace");
    let key = recorded["recipient_key"].as_str().expect("key").to_owned();

    let (status, body) = h.send("inv-1", "invitation", "sms", ADA).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("recipient_withdrew_consent")),
        "{body}"
    );
    assert_eq!(body["error"]["problems"][0]["field"], "to");
    let (status, body) = h.send("rsvp-1", "rsvp_confirmation", "sms", ADA).await;
    assert_eq!(status, 202, "transactional messages still go out: {body}");
    assert_eq!(message_ids(&body).len(), 1);
    // Consent is per channel: email invitations still go.
    let (status, _) = h
        .send("inv-mail-1", "invitation", "email", "ada@guests.example")
        .await;
    assert_eq!(status, 202);

    // A batch sends to the others and lists the refused one.
    let batch = fixture("send-api/send-batch")
        .header("idempotency-key", "inv-batch-1")
        .body(
            json!({"category": "invitation", "channel": "sms", "recipients": [
            {"to": "+260971234568", "variables": {"guest_name": "Bo", "event_date": "12 Dec"}},
            {"to": ADA, "variables": {"guest_name": "Ada", "event_date": "12 Dec"}}]}),
        );
    let reply = h.ok(batch).await;
    assert_eq!(message_ids(&reply).len(), 1, "{reply}");
    assert_eq!(reply["refused"][0]["field"], "recipients[1].to");
    assert_eq!(reply["refused"][0]["code"], "recipient_withdrew_consent");

    // A later grant of invitations is the decision in force for them; the history keeps both.
    h.consent("grant-inv", "sms", "invitation", "granted").await;
    let (status, body) = h.send("inv-2", "invitation", "sms", ADA).await;
    assert_eq!(status, 202, "{body}");

    let looked = h.lookup("sms", "+260 97 1234567").await;
    assert_eq!(
        looked["recipient_key"],
        key.as_str(),
        "the key is the address's, however written"
    );
    assert_eq!(looked["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(looked["history"][0]["status"], "withdrawn");
    assert_eq!(looked["history"][0]["legal_basis"], "consent");
    assert_eq!(looked["history"][0]["source"], "call_centre");
    assert_eq!(looked["history"][0]["evidence"], "call ticket CS-4821");
    assert_eq!(looked["history"][1]["category"], "invitation");
    assert_eq!(looked["consents"].as_array().map(Vec::len), Some(2));

    // Nothing about the person carries the address: answers and the audit log.
    let audit = serde_json::to_string(&h.store.audit_entries()).expect("json");
    for text in [looked.to_string(), recorded.to_string(), audit.clone()] {
        assert!(!text.contains("260971234567"), "{text}");
    }
    assert!(audit.contains("recipient.consent_withdrawn") && audit.contains(&key));
}

#[tokio::test]
async fn consent_requests_are_checked_and_idempotent() {
    let h = Harness::new();
    let sample = fixture("config-api/record-recipient-consent");
    let first = h.ok(sample.clone()).await;
    let again = h.ok(sample.clone()).await;
    assert_eq!(first, again, "a retried request records nothing twice");
    assert_eq!(
        h.lookup("sms", ADA).await["history"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    for (body, field, code) in [
        (
            json!({"channel": "sms", "address": "0971234567", "category": "marketing", "status": "granted",
                "legal_basis": "consent", "source": "api"}),
            "address",
            "invalid",
        ),
        (
            json!({"channel": "sms", "address": ADA, "category": "newsletters", "status": "granted",
                "legal_basis": "consent", "source": "api"}),
            "category",
            "invalid",
        ),
        (
            json!({"channel": "sms", "address": ADA, "category": "marketing", "status": "granted",
                "legal_basis": "because", "source": "api"}),
            "legal_basis",
            "invalid",
        ),
        (
            json!({"channel": "sms", "address": ADA, "category": "marketing", "status": "granted",
                "legal_basis": "consent", "source": "api", "evidence": "replied from +260971234567"}),
            "evidence",
            "contains_address",
        ),
        (
            json!({"channel": "sms", "address": ADA, "category": "marketing", "status": "granted",
                "legal_basis": "consent", "source": "preference_centre"}),
            "source",
            "reserved",
        ),
    ] {
        let (status, reply) = h
            .call(sample.clone().header("idempotency-key", field).body(body))
            .await;
        assert_eq!(
            (
                status,
                reply["error"]["field"].as_str(),
                reply["error"]["code"].as_str()
            ),
            (400, Some(field), Some(code)),
            "{reply}"
        );
    }
    let platform = sample
        .clone()
        .header("idempotency-key", "platform")
        .claim("herald:role", "platform_admin");
    assert_eq!(h.call(platform).await.0, 403);
}

#[tokio::test]
async fn category_and_channel_opt_outs_refuse_marketing_only() {
    let h = Harness::new();
    h.live_event().await;
    let email = "ada@guests.example";
    let set = h
        .preferences(
            "prefs-1",
            json!({"channel": "email", "address": email, "category_opt_outs": ["invitation"]}),
        )
        .await;
    assert_eq!(set["preferences"]["revision"], 1);
    assert_eq!(
        h.send("e-inv", "invitation", "email", email).await.1["error"]["code"],
        "recipient_opted_out_of_category"
    );
    assert_eq!(
        h.send("e-rsvp", "rsvp_confirmation", "email", email)
            .await
            .0,
        202
    );

    h.preferences(
        "prefs-2",
        json!({"channel": "sms", "address": ADA, "channel_opt_outs": ["sms"], "channel_order": ["email", "sms"]}),
    )
    .await;
    assert_eq!(
        h.send("s-inv", "invitation", "sms", ADA).await.1["error"]["code"],
        "recipient_opted_out_of_channel"
    );
    assert_eq!(
        h.send("s-rsvp", "rsvp_confirmation", "sms", ADA).await.0,
        202
    );

    // Transactional categories are not optional; the whole set is checked before anything is kept.
    let (status, reply) = h
        .call(fixture("config-api/put-recipient-preferences").body(
            json!({"channel": "sms", "address": ADA, "category_opt_outs": ["rsvp_confirmation"]}),
        ))
        .await;
    assert_eq!(
        (
            status,
            reply["error"]["code"].as_str(),
            reply["error"]["field"].as_str()
        ),
        (400, Some("not_optional"), Some("category_opt_outs"))
    );
    let (status, reply) = h
        .call(
            fixture("config-api/put-recipient-preferences")
                .body(json!({"channel": "sms", "address": ADA,
            "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "Moon/Base"}})),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("quiet_hours.time_zone")),
        "{reply}"
    );
    let looked = h.lookup("sms", ADA).await;
    assert_eq!(looked["preferences"]["revision"], 1);
    assert_eq!(looked["preferences"]["source"], "api", "the default source");
    assert_eq!(
        looked["preferences"]["preferences"]["channel_order"],
        json!(["email", "sms"])
    );

    // The sample request, from a signup form, replaces the whole set.
    let sample = h.ok(fixture("config-api/put-recipient-preferences")).await;
    assert_eq!(sample["preferences"]["revision"], 2);
    let looked = h.lookup("sms", ADA).await;
    assert_eq!(looked["preferences"]["source"], "signup_form");
    assert_eq!(
        looked["preferences"]["preferences"]["quiet_hours"],
        json!({"start": "21:00", "end": "08:00", "time_zone": "Africa/Lusaka"})
    );
    assert_eq!(
        looked["preferences"]["preferences"]["channel_opt_outs"],
        json!(["whatsapp"])
    );
}

#[tokio::test]
async fn a_message_sent_in_quiet_hours_is_held_until_the_window_ends() {
    let h = Harness::new();
    h.live_event().await;
    // A window around now (UTC), crossing midnight when now is late in the day.
    let now = OffsetDateTime::now_utc();
    let start = now - time::Duration::hours(1);
    let end = now + time::Duration::hours(2);
    let hm = |t: OffsetDateTime| format!("{:02}:{:02}", t.hour(), t.minute());
    h.preferences(
        "quiet",
        json!({"channel": "sms", "address": ADA,
               "quiet_hours": {"start": hm(start), "end": hm(end), "time_zone": "UTC"}}),
    )
    .await;
    let (status, reply) = h.send("quiet-rsvp", "rsvp_confirmation", "sms", ADA).await;
    assert_eq!(status, 202, "{reply}");
    let not_before: OffsetDateTime = time::OffsetDateTime::parse(
        reply["messages"][0]["not_before"]
            .as_str()
            .expect("not_before"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("a time");
    let expected = end
        .replace_second(0)
        .expect("time")
        .replace_nanosecond(0)
        .expect("time");
    assert_eq!(not_before, expected, "the end of the window");
    let id = message_ids(&reply).remove(0);

    // Dispatch holds it: from the queue message alone, and from the record when the queue
    // message does not say (a redrive of an old body).
    let queued = h
        .fanout
        .published
        .lock()
        .expect("lock")
        .first()
        .map(|(q, _)| q.clone())
        .expect("published");
    assert_eq!(queued.not_before, Some(expected));
    let d = h.dispatcher();
    let body = serde_json::to_string(&queued).expect("json");
    for disposition in [
        d.dispatch_body(&body, 1).await,
        d.dispatch(&queued.message_id, 2).await,
    ] {
        match disposition {
            Disposition::Hold(wait) => {
                let wait = time::Duration::try_from(wait).expect("duration");
                assert!(
                    (expected - OffsetDateTime::now_utc() - wait).abs()
                        <= time::Duration::seconds(2),
                    "held for the rest of the window, not {wait}"
                );
            }
            other => panic!("not held: {other:?}"),
        }
    }
    assert!(
        h.sender.sent.lock().expect("lock").is_empty(),
        "nothing sent"
    );
    assert_eq!(h.status(&id).await, MessageStatus::Accepted);
    let m = h
        .ok(fixture("send-api/get-message").path("messageId", &id))
        .await;
    assert_eq!(m["attempts"], json!([]), "holding is not an attempt");
    assert!(m["not_before"].is_string());

    // Outside the window nothing waits.
    h.preferences("no-quiet", json!({"channel": "sms", "address": ADA}))
        .await;
    let (_, reply) = h.send("rsvp-now", "rsvp_confirmation", "sms", ADA).await;
    assert!(reply["messages"][0]["not_before"].is_null(), "{reply}");
    let id = MessageId::parse(&message_ids(&reply)[0]).expect("id");
    assert_eq!(d.dispatch(&id, 1).await, Disposition::Done);
    assert_eq!(h.sender.sent.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_preference_link_opens_its_recipients_preferences_and_nothing_else() {
    let h = Harness::new();
    h.live_event().await;
    h.preferences(
        "prefs",
        json!({"channel": "sms", "address": ADA, "channel_order": ["sms", "email"]}),
    )
    .await;
    let token = h.link("sms", ADA).await;

    let seen = h
        .ok(fixture("preference-centre/get-preferences").token(&token))
        .await;
    assert_eq!(seen["channel"], "sms");
    assert_eq!(
        seen["preferences"]["channel_order"],
        json!(["sms", "email"])
    );
    assert_eq!(seen["revision"], 1);

    // The recipient withdraws marketing and changes preferences through the link.
    let changed = h
        .ok(fixture("preference-centre/put-preferences").token(&token))
        .await;
    assert_eq!(changed["revision"], 2);
    assert_eq!(changed["consents"][0]["category"], "marketing");
    assert_eq!(changed["consents"][0]["status"], "withdrawn");
    assert_eq!(changed["consents"][0]["source"], "preference_centre");
    let looked = h.lookup("sms", ADA).await;
    assert_eq!(looked["history"][0]["source"], "preference_centre");
    assert_eq!(looked["history"][0]["recorded_by"], "preference-centre");
    assert_eq!(looked["preferences"]["source"], "preference_centre");
    // Repeating the same change records nothing new.
    h.ok(fixture("preference-centre/put-preferences").token(&token))
        .await;
    assert_eq!(
        h.lookup("sms", ADA).await["history"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // The send path honours it.
    assert_eq!(
        h.send("after-centre", "invitation", "sms", ADA).await.1["error"]["code"],
        "recipient_withdrew_consent"
    );

    // One byte changed anywhere: refused.
    for i in [3, token.len() / 2, token.len() - 1] {
        let mut bytes = token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(
            h.refused(fixture("preference-centre/get-preferences").token(&tampered))
                .await,
            (401, "preference_link_invalid".to_owned()),
            "byte {i}"
        );
    }
    // The sample's token is well formed but not signed with this deployment's key.
    assert_eq!(
        h.refused(fixture("preference-centre/put-preferences"))
            .await,
        (401, "preference_link_invalid".to_owned())
    );
    // Expired: signed with the right key, past its time.
    let keys = h.app.link_keys.keys().await.expect("keys");
    let key = looked["recipient_key"].as_str().expect("key").to_owned();
    let expired = keys.sign(&PreferenceLink {
        tenant: TenantId::parse("acme-events").expect("tenant"),
        recipient_key: key.clone(),
        channel: herald_shared::domain::Channel::Sms,
        expires_at: OffsetDateTime::now_utc() - time::Duration::seconds(1),
    });
    assert_eq!(
        h.refused(fixture("preference-centre/get-preferences").token(&expired))
            .await,
        (403, "preference_link_expired".to_owned())
    );
    // Another tenant's link for the same address opens that tenant's (empty) record only,
    // and a link moved to another tenant without its key's signature opens nothing.
    let other = h
        .ok(fixture("config-api/create-preference-link")
            .claim("herald:tenant", "globex")
            .body(json!({"channel": "sms", "address": ADA})))
        .await;
    let other_token = other["url"]
        .as_str()
        .expect("url")
        .rsplit_once('/')
        .expect("token")
        .1
        .to_owned();
    assert_ne!(other["recipient_key"], key.as_str());
    let theirs = h
        .ok(fixture("preference-centre/get-preferences").token(&other_token))
        .await;
    assert_eq!(theirs["revision"], 0);
    assert_eq!(theirs["consents"], json!([]));
    let (signed, tag) = token.rsplit_once('.').expect("tag");
    let (_, payload) = signed.split_once('.').expect("payload");
    use base64::Engine as _;
    let text = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("text");
    let moved = format!(
        "v1.{}.{tag}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.replacen(
            "acme-events",
            "globex",
            1
        ))
    );
    assert_eq!(
        h.refused(fixture("preference-centre/put-preferences").token(&moved))
            .await,
        (401, "preference_link_invalid".to_owned())
    );
}

#[tokio::test]
async fn what_changes_while_a_message_waits_in_its_queue_is_honoured_at_dispatch() {
    use herald_shared::domain::audit::AuditEntry;
    use herald_shared::domain::provider::ProviderKind;
    use herald_shared::domain::suppression::{Block, BlockKind};
    use herald_shared::store::{MessageStore as _, RecipientStore as _};

    let h = Harness::new();
    h.live_event().await;
    let d = h.dispatcher();
    let accepted = |reply: &Value| MessageId::parse(&message_ids(reply)[0]).expect("id");
    let reason = |id: &MessageId| {
        let store = h.store.clone();
        let id = id.clone();
        async move {
            let stored = store.message(&id).await.expect("store").expect("message");
            (stored.message.status, stored.message.status_reason)
        }
    };

    // Consent withdrawn after the invitation was accepted: it fails unsent.
    let (status, reply) = h.send("wait-inv", "invitation", "sms", ADA).await;
    assert_eq!(status, 202, "{reply}");
    let invitation = accepted(&reply);
    h.consent("withdraw-late", "sms", "marketing", "withdrawn")
        .await;
    assert_eq!(d.dispatch(&invitation, 1).await, Disposition::Done);
    let (status, why) = reason(&invitation).await;
    assert_eq!(status, MessageStatus::Failed);
    assert!(
        why.as_deref()
            .is_some_and(|w| w.starts_with("recipient_withdrew_consent")),
        "{why:?}"
    );

    // Quiet hours set after acceptance hold it; lifted, it goes.
    let (_, reply) = h.send("wait-rsvp", "rsvp_confirmation", "sms", ADA).await;
    let rsvp = accepted(&reply);
    assert!(reply["messages"][0]["not_before"].is_null(), "{reply}");
    let now = OffsetDateTime::now_utc();
    let hm = |t: OffsetDateTime| format!("{:02}:{:02}", t.hour(), t.minute());
    h.preferences(
        "late-quiet",
        json!({"channel": "sms", "address": ADA, "quiet_hours": {
            "start": hm(now - time::Duration::hours(1)),
            "end": hm(now + time::Duration::hours(2)), "time_zone": "UTC"}}),
    )
    .await;
    assert!(matches!(
        d.dispatch(&rsvp, 1).await,
        Disposition::Hold(wait) if wait > std::time::Duration::from_secs(3600)
    ));
    assert_eq!(reason(&rsvp).await.0, MessageStatus::Accepted);
    h.preferences("late-quiet-off", json!({"channel": "sms", "address": ADA}))
        .await;
    assert_eq!(d.dispatch(&rsvp, 2).await, Disposition::Done);
    assert_eq!(reason(&rsvp).await.0, MessageStatus::Sent);

    // A STOP that arrives while a transactional message waits: it fails unsent too.
    let (_, reply) = h.send("wait-stop", "rsvp_confirmation", "sms", ADA).await;
    let stopped = accepted(&reply);
    let tenant = TenantId::parse("acme-events").expect("tenant");
    let key = h.lookup("sms", ADA).await["recipient_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let block = Block {
        kind: BlockKind::OptedOut,
        reason: "opt_out_keyword".into(),
        provider: ProviderKind::Twilio,
        message_id: None,
        at: OffsetDateTime::now_utc(),
    };
    let audit = AuditEntry::by_system(
        "herald:delivery-webhooks",
        &tenant,
        "req-stop",
        "recipient.opted_out",
        format!("recipient/{key}/sms"),
        None,
        None,
    );
    assert!(
        h.store
            .block(
                &tenant,
                herald_shared::domain::Channel::Sms,
                &key,
                &block,
                &audit
            )
            .await
            .expect("blocked")
    );
    assert_eq!(d.dispatch(&stopped, 1).await, Disposition::Done);
    let (status, why) = reason(&stopped).await;
    assert_eq!(status, MessageStatus::Failed);
    assert!(
        why.as_deref()
            .is_some_and(|w| w.starts_with("recipient_opted_out")),
        "{why:?}"
    );

    let sent = h.sender.sent.lock().expect("lock").clone();
    assert_eq!(
        sent,
        vec![rsvp.as_str().to_owned()],
        "only the message nothing stopped reached a provider"
    );
}

/// The page as a browser gets it: (status, headers, HTML).
async fn page(h: &Harness, event: Value) -> (u16, std::collections::HashMap<String, String>) {
    let (status, _, headers) = crate::support::serve(&h.app, event).await;
    (status, headers)
}

#[tokio::test]
async fn the_preference_page_is_html_in_the_browsers_language_and_its_form_saves() {
    let h = Harness::new();
    h.live_event().await;
    let token = h.link("sms", ADA).await;
    let browser = |event: Value| {
        event
            .token(&token)
            .header(
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .header("accept-language", "fr-FR,fr;q=0.9,en;q=0.8")
    };

    let request = lambda_http::request::from_str(
        &browser(fixture("preference-centre/get-preferences")).to_string(),
    )
    .expect("an API Gateway event");
    let response = herald_shared::api::serve_any(&h.app, request)
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("content-language"), "fr");
    assert!(header("content-security-policy").contains("default-src 'none'"));
    let html = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    assert!(
        html.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"),
        "{html}"
    );
    assert!(html.contains("<h1>Vos préférences de communication</h1>"));
    assert!(html.contains("<legend>Invitations et nouvelles par SMS</legend>"));
    assert!(html.contains("name=\"marketing\" value=\"yes\" checked"));
    assert!(html.contains("name=\"category\" value=\"invitation\""));
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("role=\"status\""), "nothing saved yet");

    // The form: no marketing at all by SMS, and of the kinds only invitations.
    let (status, headers) = page(
        &h,
        browser(fixture("preference-centre/save-preferences-form"))
            .with_body_text("marketing=no&category=invitation"),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        headers.get("location").map(String::as_str),
        Some("?saved=1")
    );
    let looked = h.lookup("sms", ADA).await;
    assert_eq!(looked["consents"][0]["category"], "marketing");
    assert_eq!(looked["consents"][0]["status"], "withdrawn");
    assert_eq!(looked["consents"][0]["source"], "preference_centre");
    assert_eq!(
        looked["preferences"]["preferences"]["category_opt_outs"],
        json!(["save_the_date", "thank_you", "feedback_request"])
    );
    // An invitation by SMS is now refused.
    let (status, body) = h.send("after-form", "invitation", "sms", ADA).await;
    assert_eq!(status, 422, "{body}");

    // Bad forms are a 400 naming the field, and change nothing.
    for (form, field) in [
        ("category=invitation", "marketing"),
        ("marketing=yes&category=check_in", "category"),
        ("marketing=yes&role=admin", "form"),
    ] {
        let (status, body) = h
            .call(browser(fixture("preference-centre/save-preferences-form")).with_body_text(form))
            .await;
        assert_eq!(
            (status, body["error"]["field"].clone()),
            (400, json!(field))
        );
    }
}
