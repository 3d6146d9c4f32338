//! `GET /events/{eventId}/messages` over the in-memory stores: newest first, each filter,
//! paging across pages with the shared `limit`/`cursor`/`next` shape, bad queries named, and
//! nothing of another tenant's or another event's messages. The DynamoDB index path is tested
//! against the emulator in the integration tests.

use std::sync::Arc;

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture};
use herald_shared::App;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::identity::Role;
use herald_shared::domain::message::{Message, MessageContent, MessageId, MessageStatus};
use herald_shared::domain::recipient::Recipient;
use herald_shared::domain::{Category, Channel, EventId, TenantId};
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

const TENANT: &str = "acme-events";
const EVENT: &str = "gala-2026";

fn app() -> App {
    App::over_memory(
        Arc::new(MemoryStore::default()),
        Arc::new(PassingChecker),
        Arc::new(AcceptingSender),
    )
}

struct Seed {
    tenant: &'static str,
    event: &'static str,
    minute: i64,
    channel: Channel,
    category: Category,
    status: MessageStatus,
    test: bool,
}

fn seed(minute: i64, channel: Channel, category: Category, status: MessageStatus) -> Seed {
    Seed {
        tenant: TENANT,
        event: EVENT,
        minute,
        channel,
        category,
        status,
        test: false,
    }
}

const START: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn message(s: &Seed) -> Message {
    let tenant = TenantId::parse(s.tenant).expect("tenant");
    let to = match s.channel {
        Channel::Email => "ada.lovelace@acme.example",
        _ => "+260971234567",
    };
    Message {
        id: MessageId::derive(&tenant, s.event, "seed", s.minute as usize),
        tenant,
        event: EventId::parse(s.event).expect("event"),
        snapshot_version: 1,
        category: s.category,
        channel: s.channel,
        recipient: Recipient::parse(s.channel, to).expect("recipient"),
        recipient_key: format!("rk-{}", s.minute),
        content: MessageContent {
            subject: Some("Secret subject".into()),
            html: None,
            text: "Secret body text".into(),
            segments: Some(1),
            whatsapp_template: None,
        },
        status: s.status,
        status_reason: None,
        status_at: None,
        trigger: None,
        estimated_cost: None,
        cost: None,
        provider: None,
        provider_kind: None,
        provider_message_id: None,
        attempts: Vec::new(),
        created_at: START + time::Duration::minutes(s.minute),
        sent_at: None,
        request_id: "req".into(),
        expires_at: None,
        not_before: None,
        erased_at: None,
        test: s.test,
        list_unsubscribe: None,
    }
}

async fn store(app: &App, seeds: &[Seed]) {
    let messages: Vec<(Message, AuditEntry)> = seeds
        .iter()
        .map(|s| {
            let m = message(s);
            let audit = AuditEntry::message_accepted("seed", Role::TenantAdmin, &m, "req");
            (m, audit)
        })
        .collect();
    app.messages.create_many(&messages).await.expect("stored");
}

fn list(query: &[(&str, &str)]) -> Value {
    let mut event = fixture("send-api/list-messages");
    event["queryStringParameters"] = json!({});
    for (k, v) in query {
        event["queryStringParameters"][*k] = json!(v);
    }
    event["rawQueryString"] = json!(
        query
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A").replace('+', "%2B")))
            .collect::<Vec<_>>()
            .join("&")
    );
    event
}

async fn call(app: &App, event: Value) -> (u16, Value) {
    let (status, body, _) = crate::support::serve(app, event).await;
    (status, body)
}

/// The minutes (creation order) of a page's items, by id.
fn minutes(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {body}"))
        .iter()
        .map(|m| {
            let at = OffsetDateTime::parse(
                m["created_at"].as_str().expect("created_at"),
                &time::format_description::well_known::Rfc3339,
            )
            .expect("time");
            (at - START).whole_minutes()
        })
        .collect()
}

fn mixed() -> Vec<Seed> {
    use Category::*;
    use Channel::*;
    use MessageStatus::*;
    vec![
        seed(0, Sms, Invitation, Sent),
        seed(1, Email, Invitation, Delivered),
        seed(2, Sms, RsvpConfirmation, Failed),
        seed(3, Email, RsvpConfirmation, Sent),
        seed(4, Sms, Invitation, Delivered),
        seed(5, Whatsapp, EventReminder, Accepted),
        seed(6, Sms, Invitation, Sent),
    ]
}

#[tokio::test]
async fn newest_first_and_each_filter_narrows_the_list() {
    let app = app();
    store(&app, &mixed()).await;
    let (status, all) = call(&app, list(&[])).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(minutes(&all), vec![6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(all["next"], Value::Null);

    for (query, expected) in [
        (vec![("channel", "sms")], vec![6, 4, 2, 0]),
        (vec![("status", "sent")], vec![6, 3, 0]),
        (vec![("category", "rsvp_confirmation")], vec![3, 2]),
        (vec![("from", "2026-11-22T10:02:00Z")], vec![6, 5, 4, 3, 2]),
        (vec![("to", "2026-11-22T10:02:00Z")], vec![1, 0]),
        (
            vec![
                ("from", "2026-11-22T10:01:00Z"),
                ("to", "2026-11-22T10:05:00Z"),
            ],
            vec![4, 3, 2, 1],
        ),
        // Offsets are times like any other: 12:03+02:00 is 10:03 UTC.
        (
            vec![("from", "2026-11-22T12:03:00+02:00")],
            vec![6, 5, 4, 3],
        ),
        (
            vec![
                ("channel", "sms"),
                ("status", "delivered"),
                ("category", "invitation"),
            ],
            vec![4],
        ),
    ] {
        let (status, body) = call(&app, list(&query)).await;
        assert_eq!(status, 200, "{query:?}: {body}");
        assert_eq!(minutes(&body), expected, "{query:?}");
    }
}

#[tokio::test]
async fn items_say_what_happened_without_content_or_the_address() {
    let app = app();
    let mut test = seed(0, Channel::Email, Category::Invitation, MessageStatus::Sent);
    test.test = true;
    store(&app, &[test]).await;
    let (_, body) = call(&app, list(&[])).await;
    let item = &body["items"][0];
    for field in [
        "id",
        "channel",
        "category",
        "status",
        "status_at",
        "provider",
        "cost",
        "created_at",
        "test",
        "recipient",
    ] {
        assert!(item.get(field).is_some(), "{field} missing: {item}");
    }
    assert_eq!(item["test"], true);
    assert_eq!(item["recipient"], "a***@acme.example");
    let text = body.to_string();
    for secret in ["ada.lovelace", "Secret subject", "Secret body text"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn pages_follow_their_cursor_to_the_end_and_only_their_own_list() {
    let app = app();
    let seeds: Vec<Seed> = (0..23)
        .map(|m| {
            let channel = if m % 3 == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            seed(m, channel, Category::Invitation, MessageStatus::Sent)
        })
        .collect();
    store(&app, &seeds).await;
    for (query, total) in [(vec![], 23usize), (vec![("channel", "sms")], 15)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let mut q = query.clone();
            q.push(("limit", "5"));
            if let Some(c) = &cursor {
                q.push(("cursor", c.as_str()));
            }
            let (status, body) = call(&app, list(&q)).await;
            assert_eq!(status, 200, "{body}");
            assert!(minutes(&body).len() <= 5);
            seen.extend(minutes(&body));
            match body["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), total, "{query:?}");
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "newest first across pages");
    }

    let (_, first) = call(&app, list(&[("limit", "5")])).await;
    let cursor = first["next"].as_str().expect("a next page").to_owned();
    // The same cursor with other filters, on another event, or by another tenant.
    for event in [
        list(&[("limit", "5"), ("cursor", &cursor), ("channel", "sms")]),
        list(&[("limit", "5"), ("cursor", &cursor)]).path("eventId", "other-event"),
        list(&[("limit", "5"), ("cursor", &cursor)]).claim("herald:tenant", "globex"),
    ] {
        let (status, body) = call(&app, event).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], "query.cursor", "{body}");
    }
}

#[tokio::test]
async fn another_tenants_or_events_messages_are_not_listed() {
    let app = app();
    let mut theirs = seed(1, Channel::Sms, Category::Invitation, MessageStatus::Sent);
    theirs.tenant = "globex";
    let mut other_event = seed(2, Channel::Sms, Category::Invitation, MessageStatus::Sent);
    other_event.event = "launch-2027";
    store(
        &app,
        &[
            seed(0, Channel::Sms, Category::Invitation, MessageStatus::Sent),
            theirs,
            other_event,
        ],
    )
    .await;
    let (_, ours) = call(&app, list(&[])).await;
    assert_eq!(minutes(&ours), vec![0]);
    let (status, globex) = call(&app, list(&[]).claim("herald:tenant", "globex")).await;
    assert_eq!(status, 200);
    assert_eq!(
        minutes(&globex),
        vec![1],
        "globex sees its own event of the same name, only"
    );
}

#[tokio::test]
async fn bad_queries_are_400s_naming_the_parameter() {
    let app = app();
    for (query, field) in [
        (vec![("limit", "0")], "query.limit"),
        (vec![("limit", "101")], "query.limit"),
        (vec![("limit", "many")], "query.limit"),
        (vec![("cursor", "not-a-cursor")], "query.cursor"),
        (
            vec![("cursor", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
            "query.cursor",
        ),
        (vec![("status", "lost")], "query.status"),
        (vec![("channel", "pigeon")], "query.channel"),
        (vec![("category", "gossip")], "query.category"),
        (vec![("from", "yesterday")], "query.from"),
        (vec![("to", "2026-13-01T00:00:00Z")], "query.to"),
        (
            vec![
                ("from", "2026-11-22T10:00:00Z"),
                ("to", "2026-11-22T10:00:00Z"),
            ],
            "query.to",
        ),
    ] {
        let (status, body) = call(&app, list(&query)).await;
        assert_eq!(status, 400, "{query:?}: {body}");
        assert_eq!(body["error"]["field"], field, "{query:?}: {body}");
    }
}

#[tokio::test]
async fn every_list_route_pages_the_same_way() {
    let app = app();
    // Three tenant providers, listed one per page by the shared paging.
    for name in ["A", "B", "C"] {
        let mut create = fixture("config-api/create-tenant-provider");
        let mut body: Value =
            serde_json::from_str(create["body"].as_str().expect("body")).expect("JSON");
        body["name"] = json!(name);
        create["body"] = json!(body.to_string());
        let (status, reply) = call(&app, create).await;
        assert_eq!(status, 201, "{reply}");
    }
    let with_query = |name: &str, query: &[(&str, &str)]| {
        let mut event = fixture(name);
        event["queryStringParameters"] = json!(
            query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
        );
        // API Gateway v2 events carry the query twice; lambda_http reads the raw one.
        event["rawQueryString"] = json!(
            query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        event
    };
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut query = vec![("limit", "1")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let (status, page) =
            call(&app, with_query("config-api/list-tenant-providers", &query)).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page["items"].as_array().is_some_and(|i| i.len() == 1),
            "{page}"
        );
        names.push(page["items"][0]["name"].clone());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    names.sort_by_key(|n| n.to_string());
    assert_eq!(names, vec![json!("A"), json!("B"), json!("C")]);

    for name in [
        "config-api/list-tenant-providers",
        "config-api/list-tenant-templates",
        "config-api/list-webhook-endpoints",
        "send-api/list-messages",
    ] {
        let (status, page) = call(&app, with_query(name, &[])).await;
        assert_eq!(status, 200, "{name}: {page}");
        assert!(
            page["items"].is_array() && page.get("next").is_some(),
            "{name}: {page}"
        );
        for (query, field) in [
            (vec![("limit", "0")], "query.limit"),
            (
                vec![("cursor", "bm90LWEtY3Vyc29yLWF0LWFsbC0xMjM0NTY3OA")],
                "query.cursor",
            ),
        ] {
            let (status, body) = call(&app, with_query(name, &query)).await;
            assert_eq!(status, 400, "{name} {query:?}: {body}");
            assert_eq!(body["error"]["field"], field, "{name}");
        }
    }
}
