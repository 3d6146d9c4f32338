//! One-click unsubscribe (RFC 8058) over the in-memory stores: a marketing email's record
//! carries signed `List-Unsubscribe` links (a transactional one does not); the one-click POST
//! withdraws consent to marketing on email without a login, once; after it the next marketing
//! email to that person is refused and a transactional one still goes out.

use std::sync::Arc;

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture};
use herald_shared::App;
use herald_shared::domain::message::MessageId;
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

struct Harness {
    app: App,
    store: Arc<MemoryStore>,
}

impl Harness {
    /// A completed event sending invitations (marketing) and RSVP confirmations
    /// (transactional) by email through Brevo.
    async fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let app = App::over_memory(
            store.clone(),
            Arc::new(PassingChecker),
            Arc::new(AcceptingSender),
        );
        let h = Self { app, store };
        h.ok(fixture("config-api/put-event-settings").body(
            json!({"channels": ["email"], "categories": ["invitation", "rsvp_confirmation"]}),
        ))
        .await;
        h.ok(fixture("config-api/put-tenant-brand")).await;
        h.ok(fixture("config-api/create-tenant-provider").body(json!({
            "channel": "email", "name": "Brevo",
            "settings": {"kind": "brevo", "from_address": "events@acme.example"},
            "credentials": {"api_key": "xkeysib-demo-000000000000"},
        })))
        .await;
        for category in ["invitation", "rsvp_confirmation"] {
            h.ok(fixture("config-api/put-tenant-email-template").path("category", category))
                .await;
        }
        h.ok(fixture("wizard-completion/complete-wizard")).await;
        h
    }

    async fn call(&self, event: Value) -> (u16, Value) {
        let (status, body, _) = crate::support::serve(&self.app, event).await;
        (status, body)
    }

    async fn ok(&self, event: Value) -> Value {
        crate::support::ok(&self.app, event).await
    }

    /// A single email of `category` to Ada: (status, answer).
    async fn email(&self, category: &str, key: &str) -> (u16, Value) {
        self.call(
            fixture("send-api/send-message")
                .header("idempotency-key", key)
                .body(
                    json!({"category": category, "channel": "email", "to": "ada@guests.example",
                    "variables": {"guest_name": "Ada", "event_date": "12 Dec"}}),
                ),
        )
        .await
    }

    async fn record(&self, answer: &Value) -> herald_shared::domain::message::Message {
        let id = MessageId::parse(answer["messages"][0]["id"].as_str().unwrap_or_default())
            .expect("message id");
        self.app
            .messages
            .message(&id)
            .await
            .expect("store")
            .expect("message")
            .message
    }
}

/// The one-click request a mail client makes for `url`.
fn one_click(url: &str) -> Value {
    let path = url
        .strip_prefix("https://api.herald.example")
        .expect("the API's own URL");
    let token = path
        .strip_prefix("/v1/preferences/")
        .and_then(|p| p.strip_suffix("/unsubscribe"))
        .expect("a one-click URL");
    let mut request = fixture("preference-centre/one-click-unsubscribe").path("token", token);
    request["rawPath"] = json!(path);
    request["requestContext"]["http"]["path"] = json!(path);
    request
}

#[tokio::test]
async fn one_click_unsubscribes_from_marketing_email_and_nothing_else() {
    let h = Harness::new().await;

    let (status, invitation) = h.email("invitation", "inv-1").await;
    assert_eq!(status, 202, "{invitation}");
    let links = h
        .record(&invitation)
        .await
        .list_unsubscribe
        .expect("a marketing email carries unsubscribe links");
    assert!(
        links
            .one_click
            .starts_with("https://api.herald.example/v1/preferences/v1.")
            && links.one_click.ends_with("/unsubscribe"),
        "{}",
        links.one_click
    );
    assert_eq!(format!("{}/unsubscribe", links.page), links.one_click);
    assert!(!links.one_click.contains("ada"), "no address in the link");

    let (status, confirmation) = h.email("rsvp_confirmation", "rsvp-1").await;
    assert_eq!(status, 202, "{confirmation}");
    assert!(
        h.record(&confirmation).await.list_unsubscribe.is_none(),
        "transactional email carries none"
    );

    // The mail client's POST: no login, the body as RFC 8058 has it.
    let (status, page) = h.call(one_click(&links.one_click)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["consents"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| {
                c["category"] == "marketing"
                    && c["status"] == "withdrawn"
                    && c["channel"] == "email"
            })),
        "{page}"
    );
    // A repeat records nothing new.
    assert_eq!(h.call(one_click(&links.one_click)).await.0, 200);
    let unsubscribed = h
        .store
        .audit_entries()
        .into_iter()
        .filter(|e| e.action == "recipient.unsubscribed")
        .count();
    assert_eq!(unsubscribed, 1);

    let (status, refused) = h.email("invitation", "inv-2").await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "recipient_withdrew_consent");
    let (status, still) = h.email("rsvp_confirmation", "rsvp-2").await;
    assert_eq!(status, 202, "transactional email still goes out: {still}");

    // A link that was changed opens nothing.
    let mut forged = one_click(&links.one_click);
    let token = forged["pathParameters"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    forged["pathParameters"]["token"] = json!(format!("{}x", token));
    assert_eq!(h.call(forged).await.0, 401);
}
