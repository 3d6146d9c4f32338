//! One-click unsubscribe end to end: a marketing email dispatched through the real local SMTP
//! server carries `List-Unsubscribe` (the signed one-click URL and the preference page) and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058); the mail client's POST to that
//! URL withdraws consent to marketing on email, and the next marketing send is refused while a
//! transactional one is not.

use serde_json::{Value, json};

use crate::harness::{World, provider_body, smtp};

fn email(w: &World, category: &str, key: &str) -> crate::harness::Request {
    w.event("send-api/send-message")
        .header("idempotency-key", key)
        .body(
            json!({"category": category, "channel": "email", "to": "ada@guests.example",
            "variables": {"guest_name": "Ada", "event_date": "12 Dec"}}),
        )
}

/// The raw message the SMTP server accepted for Herald's message `id`, headers unfolded.
fn spooled(id: &str) -> Option<String> {
    smtp().spooled().into_iter().find_map(|record: Value| {
        let data = record["data"]
            .as_str()?
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        data.contains(&format!("X-Herald-Message-Id: {id}"))
            .then_some(data)
    })
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn a_marketing_email_carries_rfc_8058_headers_and_its_one_click_opts_out() {
    // Its own emulator: it drains the email queue, which other tests' worlds share.
    let w = World::isolated().await;
    let ids = w.configured_event().await;
    // Email through the local SMTP server: the tenant's Brevo is switched off for the event.
    w.tenant_provider(provider_body("smtp")).await;
    w.ok(w
        .event("config-api/override-tenant-provider-for-event")
        .path("providerId", &ids["brevo"])
        .body(json!({"active": false})))
        .await;
    w.ok(w.event("wizard-completion/complete-wizard")).await;

    let sent = w.ok(email(&w, "invitation", "unsub-inv-1")).await;
    let id = sent["messages"][0]["id"].as_str().expect("id").to_owned();
    let dispatcher = w.dispatcher();
    w.deliver(&dispatcher, "email", 1).await;
    let message = spooled(&id).expect("the SMTP server accepted the invitation");
    assert_eq!(
        header(&message, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let list = header(&message, "List-Unsubscribe").expect("List-Unsubscribe");
    let one_click = list
        .split(", ")
        .next()
        .and_then(|u| u.strip_prefix('<'))
        .and_then(|u| u.strip_suffix('>'))
        .expect("the one-click URL first, in angle brackets");
    assert!(
        one_click.starts_with("https://") && one_click.ends_with("/unsubscribe"),
        "{list}"
    );
    assert!(!list.contains("ada@"), "no address in the links");

    // The mail client's POST to the one-click URL: no login.
    let path = one_click
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, path)| format!("/{path}"))
        .expect("a path");
    let token = path
        .strip_prefix("/v1/preferences/")
        .and_then(|p| p.strip_suffix("/unsubscribe"))
        .expect("a preference token");
    let mut post = w
        .event("preference-centre/one-click-unsubscribe")
        .path("token", token);
    post.0["rawPath"] = json!(path);
    post.0["requestContext"]["http"]["path"] = json!(path);
    let page = w.ok(post).await;
    assert!(
        page["consents"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["category"] == "marketing" && c["status"] == "withdrawn")),
        "{page}"
    );

    let refused = w.call(email(&w, "invitation", "unsub-inv-2")).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "recipient_withdrew_consent");
    let transactional = w.call(email(&w, "rsvp_confirmation", "unsub-rsvp-1")).await;
    assert_eq!(transactional.status, 202, "{}", transactional.text);
    let rsvp_id = transactional.body["messages"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    w.deliver(&dispatcher, "email", 1).await;
    let rsvp = spooled(&rsvp_id).expect("the SMTP server accepted the confirmation");
    assert_eq!(
        header(&rsvp, "List-Unsubscribe"),
        None,
        "transactional email has no unsubscribe"
    );
}
