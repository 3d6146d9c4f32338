//! Templates with typed variables through the API: an invitation email whose programme is a
//! list of objects (a loop, nested fields, the `time` and `money` filters), sent in a batch.
//! A wrong value deep in one recipient's agenda is a 400 naming its path and nothing is written;
//! right values render in each recipient's locale and time zone, the event's by default; the
//! preview renders with samples made from the declared types.

use std::sync::Arc;

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture, ok, serve};
use herald_shared::App;
use herald_shared::domain::message::MessageId;
use herald_shared::fanout::MemoryFanout;
use herald_shared::store::MessageStore;
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

fn template() -> Value {
    json!({
        "subject": "Your programme, {{ guest_name }}",
        "body": "<p>Dear {{ guest_name }},</p><ul>{% for item in agenda %}<li>{{ item.starts_at | time }} {{ item.title }}{% if item.room %} ({{ item.room }}){% endif %}</li>{% endfor %}</ul><p>Dinner is {{ dinner | money }}, on {{ day | date('long') }}.</p>",
        "variables": [
            {"name": "guest_name", "sample": "Ada Lovelace"},
            {"name": "agenda", "type": "list", "items": {"type": "object", "fields": [
                {"name": "title"},
                {"name": "starts_at", "type": "datetime"},
                {"name": "room", "required": false}
            ]}},
            {"name": "dinner", "type": "money"},
            {"name": "day", "type": "date"}
        ]
    })
}

/// A completed event in Lusaka sending invitations by email, with the typed template.
async fn live_event(app: &App) {
    ok(
        app,
        fixture("config-api/put-event-settings").body(json!({
            "channels": ["email"], "categories": ["invitation"],
            "default_locale": "en-GB", "time_zone": "Africa/Lusaka"
        })),
    )
    .await;
    ok(app, fixture("config-api/put-tenant-brand")).await;
    ok(
        app,
        fixture("config-api/create-tenant-provider").body(json!({
            "channel": "email", "name": "Brevo",
            "settings": {"kind": "brevo", "from_address": "events@acme.example"},
            "credentials": {"api_key": "xkeysib-demo-000000000000"}
        })),
    )
    .await;
    ok(
        app,
        fixture("config-api/put-tenant-email-template")
            .path("category", "invitation")
            .path("channel", "email")
            .body(template()),
    )
    .await;
    ok(app, fixture("wizard-completion/complete-wizard")).await;
}

fn agenda() -> Value {
    json!([
        {"title": "Doors", "starts_at": "2026-12-12T16:30:00Z"},
        {"title": "Dinner", "starts_at": "2026-12-12T17:30:00Z", "room": "Ballroom"},
        {"title": "Auction", "starts_at": "2026-12-12T19:00:00Z"}
    ])
}

fn recipient(to: &str, agenda: Value) -> Value {
    json!({"to": to, "variables": {
        "guest_name": "Ada", "agenda": agenda,
        "dinner": {"amount": "1250.5", "currency": "ZMW"}, "day": "2026-12-12"
    }})
}

fn app() -> (App, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let mut app = App::over_memory(
        store.clone(),
        Arc::new(PassingChecker),
        Arc::new(AcceptingSender),
    );
    app.fanout = Arc::new(MemoryFanout::default());
    (app, store)
}

#[tokio::test]
async fn a_wrong_value_deep_in_a_list_is_named_and_nothing_is_sent() {
    let (app, _) = app();
    live_event(&app).await;
    let mut bad = agenda();
    bad[2]["starts_at"] = json!("after dinner");
    let batch = fixture("send-api/send-batch").body(json!({
        "category": "invitation", "channel": "email",
        "recipients": [recipient("ada@guests.example", agenda()), recipient("grace@guests.example", bad)]
    }));
    let (status, body, _) = serve(&app, batch).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["field"],
        json!("recipients[1].variables.agenda[2].starts_at")
    );
    let (status, body, _) = serve(&app, fixture("send-api/list-messages")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]), "nothing was written");

    // A field the template does not declare, and a wrong type, are named too.
    let mut extra = agenda();
    extra[0]["colour"] = json!("red");
    for (agenda, field) in [
        (extra, "recipients[0].variables.agenda[0].colour"),
        (json!("Doors at six"), "recipients[0].variables.agenda"),
    ] {
        let (status, body, _) = serve(
            &app,
            fixture("send-api/send-batch")
                .header("idempotency-key", field)
                .body(json!({
                    "category": "invitation", "channel": "email",
                    "recipients": [recipient("ada@guests.example", agenda)]
                })),
        )
        .await;
        assert_eq!(
            (status, body["error"]["field"].clone()),
            (400, json!(field))
        );
    }
}

#[tokio::test]
async fn lists_render_in_each_recipients_locale_and_time_zone() {
    let (app, store) = app();
    live_event(&app).await;
    let mut paris = recipient("grace@guests.example", agenda());
    paris["locale"] = json!("fr");
    paris["time_zone"] = json!("Europe/Paris");
    let body = ok(
        &app,
        fixture("send-api/send-batch").body(json!({
            "category": "invitation", "channel": "email",
            "recipients": [recipient("ada@guests.example", agenda()), paris]
        })),
    )
    .await;
    let (mut texts, mut htmls) = (Vec::new(), Vec::new());
    for accepted in body["messages"].as_array().expect("messages") {
        let id: MessageId = accepted["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("an id");
        let stored = store.message(&id).await.expect("reads").expect("stored");
        texts.push(stored.message.content.text);
        htmls.push(stored.message.content.html.unwrap_or_default());
    }
    // The event's default: English (GB), Lusaka (UTC+2).
    assert!(texts[0].contains("- 18:30 Doors"), "{}", texts[0]);
    assert!(
        texts[0].contains("- 19:30 Dinner (Ballroom)"),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("1,250.50\u{a0}ZMW"), "{}", texts[0]);
    assert!(texts[0].contains("12 December 2026"), "{}", texts[0]);
    // The recipient's own: French, Paris (UTC+1).
    assert!(texts[1].contains("- 17:30 Doors"), "{}", texts[1]);
    // French groups thousands with a narrow no-break space.
    assert!(
        htmls[1].contains("1\u{202f}250,50\u{a0}ZMW"),
        "{}",
        htmls[1]
    );
    assert!(
        texts[1].contains("1\u{202f}250,50\u{a0}ZMW"),
        "{:?}",
        texts[1]
    );
    assert!(texts[1].contains("12 décembre 2026"), "{}", texts[1]);
}

#[tokio::test]
async fn previews_render_with_samples_made_from_the_types() {
    let (app, _) = app();
    live_event(&app).await;
    let preview = fixture("config-api/preview-tenant-template")
        .path("category", "invitation")
        .path("channel", "email")
        .body(json!({"locale": "en-GB"}));
    let body = ok(&app, preview).await;
    assert_eq!(body["variables"]["agenda"]["source"], json!("sample"));
    assert_eq!(
        body["variables"]["agenda"]["value"][0]["title"],
        json!("Title")
    );
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("- 18:30 Title")),
        "{body}"
    );
    // A bad locale is refused at the edge.
    let (status, body, _) = serve(
        &app,
        fixture("config-api/preview-tenant-template")
            .path("category", "invitation")
            .path("channel", "email")
            .body(json!({"locale": "not a locale"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("locale"))
    );
}
