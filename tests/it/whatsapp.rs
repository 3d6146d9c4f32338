//! WhatsApp against the emulator and the Meta stand-in: an invitation to someone who has not
//! written goes out as the registered template with its components; once their own message
//! reaches Herald through the signed webhook, the next one goes as free-form text; a message
//! with no registered template outside the window fails `whatsapp_template_required` without
//! reaching Meta.

use provider_standins::{Accounts, MetaInbound, MetaTemplate, Provider, TwilioContent};
use serde_json::{Value, json};

use crate::harness::{META_PHONE, META_WABA, TWILIO_SID, World, provider_body};

const ADA: &str = "+260971234567";
const GRACE: &str = "+260971234568";

fn invitation() -> Value {
    json!({
        "body": "Dear {{ guest_name }}, your seat at the Acme Gala is held. Dinner: {{ dinner | money }}.",
        "variables": [
            {"name": "guest_name", "sample": "Ada"},
            {"name": "dinner", "type": "money"}
        ],
        "whatsapp": {"meta": {
            "name": "gala_invitation", "language": "en_US",
            "body": [{"var": "guest_name"}, {"var": "dinner"}]
        }}
    })
}

fn send(to: &str, category: &str) -> Value {
    json!({"category": category, "channel": "whatsapp", "to": to,
           "variables": {"guest_name": "Ada", "dinner": {"amount": "1250.5", "currency": "ZMW"}}})
}

/// Meta's record of the invitation template in the tenant's WhatsApp Business Account.
fn register(w: &World, status: &str) {
    w.standins.register(
        Accounts::new().meta_template(
            MetaTemplate::new(
                META_WABA,
                "gala_invitation",
                "en_US",
                vec![json!({"type": "BODY", "text": "Dear {{1}}, your seat is held. Dinner: {{2}}."})],
            )
            .with_status(status)
            .with_quality_score("GREEN"),
        ),
    );
}

/// An event sending `categories` on WhatsApp through the tenant's Meta number, with the
/// invitation registered as Meta's `gala_invitation`.
async fn whatsapp_event(w: &World, categories: &[&str]) {
    w.ok(w.event("config-api/put-event-settings").body(json!({
        "channels": ["whatsapp"], "categories": categories,
        "default_locale": "en-GB", "time_zone": "Africa/Lusaka"
    })))
    .await;
    w.ok(w.event("config-api/put-tenant-brand")).await;
    w.tenant_provider(provider_body("meta_whatsapp")).await;
    w.ok(w
        .event("config-api/put-tenant-template")
        .path("category", "invitation")
        .path("channel", "whatsapp")
        .body(invitation()))
        .await;
}

#[tokio::test]
async fn outside_the_window_the_registered_template_goes_and_inside_it_free_text() {
    let mut w = World::isolated().await;
    w.serve_receipts().await;
    register(&w, "APPROVED");
    whatsapp_event(&w, &["invitation", "rsvp_confirmation"]).await;
    let mut unregistered = invitation();
    unregistered
        .as_object_mut()
        .expect("object")
        .remove("whatsapp");
    w.ok(w
        .event("config-api/put-tenant-template")
        .path("category", "rsvp_confirmation")
        .path("channel", "whatsapp")
        .body(unregistered))
        .await;
    w.ok(w.event("wizard-completion/complete-wizard")).await;
    let dispatcher = w.dispatcher();

    // Ada has never written: the registered template, with her parameters.
    w.ok(w
        .event("send-api/send-message")
        .header("idempotency-key", &ulid::Ulid::new().to_string())
        .body(send(ADA, "invitation")))
        .await;
    w.deliver(&dispatcher, "whatsapp", 1).await;
    let sent = w.standins.sent_messages_for(Provider::Meta);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].template.as_deref(), Some("gala_invitation"));
    assert_eq!(
        sent[0].body.as_deref(),
        Some("Dear Ada, your seat is held. Dinner: 1,250.50\u{a0}ZMW.")
    );
    let request = w
        .standins
        .requests_for(Provider::Meta)
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .expect("the send")
        .body_json()
        .expect("JSON");
    assert_eq!(
        request["template"]["components"][0]["parameters"][1],
        json!({"type": "currency", "currency": {
            "fallback_value": "1,250.50\u{a0}ZMW", "code": "ZMW", "amount_1000": 1_250_500}})
    );

    // She answers; Meta's signed webhook reaches Herald and opens the window.
    let url = w.receipt_route("meta_whatsapp")["url"]
        .as_str()
        .expect("Meta's receipt URL")
        .to_owned();
    let outcome = w
        .standins
        .meta_inbound(
            MetaInbound::new(META_PHONE, ADA, "Yes, I'll be there!")
                .webhook(url, "app-secret-demo-55e1"),
        )
        .await
        .expect("inbound");
    assert_eq!(outcome.webhook_status, Some(200), "{outcome:?}");
    w.standins.clear_journal();
    let second = w
        .ok(w
            .event("send-api/send-message")
            .header("idempotency-key", &ulid::Ulid::new().to_string())
            .body(send(ADA, "invitation")))
        .await;
    w.deliver(&dispatcher, "whatsapp", 1).await;
    let id = second["messages"][0]["id"].as_str().expect("message id");
    let message = w
        .ok(w.event("send-api/get-message").path("messageId", id))
        .await;
    assert_eq!(message["status"], "sent", "{message}");
    let sent = w.standins.sent_messages_for(Provider::Meta);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].template, None, "free-form inside the window");
    assert_eq!(
        sent[0].body.as_deref(),
        Some("Dear Ada, your seat at the Acme Gala is held. Dinner: 1,250.50\u{a0}ZMW.")
    );

    // Grace has never written and this category has no registered template: it fails here,
    // not at Meta.
    w.standins.clear_journal();
    let accepted = w
        .ok(w
            .event("send-api/send-message")
            .header("idempotency-key", &ulid::Ulid::new().to_string())
            .body(send(GRACE, "rsvp_confirmation")))
        .await;
    w.deliver(&dispatcher, "whatsapp", 1).await;
    assert!(w.standins.sent_messages_for(Provider::Meta).is_empty());
    let id = accepted["messages"][0]["id"].as_str().expect("message id");
    let message = w
        .ok(w.event("send-api/get-message").path("messageId", id))
        .await;
    assert_eq!(message["status"], "failed", "{message}");
    let reason = message["status_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("whatsapp_template_required"), "{reason}");
}

#[tokio::test]
async fn completion_refuses_a_template_meta_has_not_approved() {
    let w = World::new().await;
    register(&w, "PENDING");
    whatsapp_event(&w, &["invitation"]).await;

    // What Meta says, asked before completing.
    let asked = w
        .ok(w.event("wizard-completion/check-whatsapp-templates"))
        .await;
    assert_eq!(asked["registrations"][0]["status"], "PENDING", "{asked}");
    assert_eq!(asked["registrations"][0]["quality"], "GREEN");
    assert_eq!(
        asked["problems"][0]["code"], "whatsapp_template_not_approved",
        "{asked}"
    );

    let refused = w.call(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let problems = refused.body["error"]["problems"]
        .as_array()
        .expect("problems");
    let problem = problems
        .iter()
        .find(|p| p["code"] == "whatsapp_template_not_approved")
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert_eq!(problem["field"], "templates.invitation.whatsapp.meta");
    assert!(
        problem["message"]
            .as_str()
            .unwrap_or_default()
            .contains("PENDING"),
        "{problem}"
    );

    // Meta approves it: completion goes through and shows what Meta says of it.
    register(&w, "APPROVED");
    let completed = w.ok(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!(
        completed["whatsapp_templates"],
        json!([{
            "category": "invitation", "provider": completed["whatsapp_templates"][0]["provider"],
            "kind": "meta_whatsapp", "template": "gala_invitation", "language": "en_US",
            "status": "APPROVED", "approved": true, "quality": "GREEN"
        }])
    );
}

#[tokio::test]
async fn completion_asks_twilio_about_the_content_template() {
    let w = World::new().await;
    let sid = "HX0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let register = |status: &str| {
        w.standins.register(
            Accounts::new().twilio_content(
                TwilioContent::new(TWILIO_SID, "gala_invitation", "Dear {{1}}, dinner: {{2}}.")
                    .with_sid(sid)
                    .with_variables([("1", "Guest"), ("2", "0")])
                    .with_approval_status(status),
            ),
        )
    };
    register("rejected");
    w.ok(w.event("config-api/put-event-settings").body(json!({
        "channels": ["whatsapp"], "categories": ["invitation"]
    })))
    .await;
    w.ok(w.event("config-api/put-tenant-brand")).await;
    w.tenant_provider(provider_body("twilio_whatsapp")).await;
    let mut template = invitation();
    template["whatsapp"] = json!({"twilio": {"content_sid": sid,
        "variables": {"1": "guest_name", "2": "dinner"}}});
    w.ok(w
        .event("config-api/put-tenant-template")
        .path("category", "invitation")
        .path("channel", "whatsapp")
        .body(template))
        .await;

    let refused = w.call(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let problems = refused.body["error"]["problems"].to_string();
    assert!(
        problems.contains("templates.invitation.whatsapp.twilio") && problems.contains("rejected"),
        "{problems}"
    );

    register("approved");
    let completed = w.ok(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!(completed["whatsapp_templates"][0]["template"], sid);
    assert_eq!(completed["whatsapp_templates"][0]["status"], "approved");
}
