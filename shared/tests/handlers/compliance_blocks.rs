//! What marketing messages carry whatever their template says, over the in-memory stores:
//! completion refuses marketing email while the brand lacks the sender's legal name and postal
//! address (naming each); then a marketing SMS ends with the opt-out line in its recipient's
//! language and a transactional one does not; a marketing email's footer carries the legal
//! identity and the recipient's own unsubscribe link (HTML and text), a transactional one only
//! the identity.

use std::sync::Arc;

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture, ok, serve};
use herald_shared::App;
use herald_shared::domain::message::{Message, MessageId};
use herald_shared::store::MessageStore;
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

struct Harness {
    app: App,
    store: Arc<MemoryStore>,
}

impl Harness {
    /// An event sending invitations (marketing) and RSVP confirmations (transactional) by SMS
    /// and email; completed only when `complete`.
    async fn new(brand: Value, complete: bool) -> Self {
        let store = Arc::new(MemoryStore::default());
        let app = App::over_memory(
            store.clone(),
            Arc::new(PassingChecker),
            Arc::new(AcceptingSender),
        );
        ok(
            &app,
            fixture("config-api/put-event-settings").body(json!({
                "channels": ["email", "sms"], "categories": ["invitation", "rsvp_confirmation"]
            })),
        )
        .await;
        ok(&app, fixture("config-api/put-tenant-brand").body(brand)).await;
        ok(&app, fixture("config-api/create-tenant-provider")).await;
        ok(
            &app,
            fixture("config-api/create-tenant-provider").body(json!({
                "channel": "email", "name": "Brevo",
                "settings": {"kind": "brevo", "from_address": "events@acme.example"},
                "credentials": {"api_key": "xkeysib-demo-000000000000"}
            })),
        )
        .await;
        for category in ["invitation", "rsvp_confirmation"] {
            // The template says nothing about opting out: Herald adds it where the law wants it.
            ok(
                &app,
                fixture("config-api/put-tenant-template")
                    .path("category", category)
                    .path("channel", "sms")
                    .body(json!({
                        "body": "{{ brand.display_name }}: Hi {{ guest_name }}, see you on {{ event_date }}.",
                        "variables": [{"name": "guest_name", "sample": "Ada"}, {"name": "event_date", "sample": "12 Dec"}]
                    })),
            )
            .await;
            ok(
                &app,
                fixture("config-api/put-tenant-email-template")
                    .path("category", category)
                    .path("channel", "email"),
            )
            .await;
        }
        if complete {
            ok(&app, fixture("wizard-completion/complete-wizard")).await;
        }
        Self { app, store }
    }

    /// Sends one message and reads back its record.
    async fn send(&self, category: &str, channel: &str, to: &str, locale: &str) -> Message {
        let body = ok(
            &self.app,
            fixture("send-api/send-message")
                .header("idempotency-key", &format!("{category}-{channel}-{locale}"))
                .body(json!({
                    "category": category, "channel": channel, "to": to, "locale": locale,
                    "variables": {"guest_name": "Ada", "event_date": "12 December"}
                })),
        )
        .await;
        let id: MessageId = body["messages"][0]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("an id");
        self.store
            .message(&id)
            .await
            .expect("reads")
            .expect("stored")
            .message
    }
}

fn brand(with_identity: bool) -> Value {
    let mut brand = json!({"display_name": "Acme Events", "support_email": "help@acme.example"});
    if with_identity {
        brand["legal_name"] = json!("Acme Events Ltd");
        brand["postal_address"] = json!("Plot 12, Cairo Road, Lusaka");
    }
    brand
}

#[tokio::test]
async fn completion_names_the_missing_legal_identity_of_marketing_email() {
    let h = Harness::new(brand(false), false).await;
    let (status, body, _) = serve(&h.app, fixture("wizard-completion/complete-wizard")).await;
    assert_eq!(status, 422, "{body}");
    let problems = crate::support::problems(&body);
    assert_eq!(
        problems,
        [
            ("compliance_block_missing".into(), "brand.legal_name".into()),
            (
                "compliance_block_missing".into(),
                "brand.postal_address".into()
            )
        ]
    );
}

#[tokio::test]
async fn marketing_sms_ends_with_the_opt_out_line_in_the_recipients_language() {
    let h = Harness::new(brand(true), true).await;
    let invitation = h.send("invitation", "sms", "+260971234567", "fr").await;
    assert!(
        invitation
            .content
            .text
            .ends_with("\nRépondez STOP pour vous désabonner."),
        "{}",
        invitation.content.text
    );
    let english = h.send("invitation", "sms", "+260971234568", "en").await;
    assert!(english.content.text.ends_with("\nReply STOP to opt out."));
    let confirmation = h
        .send("rsvp_confirmation", "sms", "+260971234567", "fr")
        .await;
    assert!(
        !confirmation.content.text.contains("STOP"),
        "{}",
        confirmation.content.text
    );
}

#[tokio::test]
async fn marketing_email_carries_the_legal_identity_and_the_recipients_unsubscribe_link() {
    let h = Harness::new(brand(true), true).await;
    let invitation = h
        .send("invitation", "email", "ada@guests.example", "en")
        .await;
    let page = invitation
        .list_unsubscribe
        .as_ref()
        .map(|l| l.page.clone())
        .expect("marketing email carries unsubscribe links");
    let html = invitation.content.html.clone().unwrap_or_default();
    assert!(html.contains("Acme Events Ltd, Plot 12, Cairo Road, Lusaka"));
    let escaped_page = page.replace('&', "&amp;");
    assert!(
        html.contains(&format!(
            "<a href=\"{escaped_page}\" style=\"color:#1f4e79;\">Unsubscribe or manage your preferences</a>"
        )),
        "{html}"
    );
    assert!(
        invitation.content.text.ends_with(&format!(
            "Acme Events Ltd, Plot 12, Cairo Road, Lusaka\nUnsubscribe or manage your preferences: {page}"
        )),
        "{}",
        invitation.content.text
    );

    let french = h
        .send("invitation", "email", "grace@guests.example", "fr")
        .await;
    assert!(
        french
            .content
            .text
            .contains("Se désabonner ou gérer vos préférences: "),
        "{}",
        french.content.text
    );

    let confirmation = h
        .send("rsvp_confirmation", "email", "ada@guests.example", "en")
        .await;
    let html = confirmation.content.html.unwrap_or_default();
    assert!(html.contains("Acme Events Ltd, Plot 12, Cairo Road, Lusaka"));
    assert!(!html.contains("Unsubscribe"), "{html}");
    assert!(confirmation.list_unsubscribe.is_none());
}
