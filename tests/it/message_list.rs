//! An event's message list against the emulator: the Messages table's `by_event_created` index
//! (from the template) read newest first, each filter, pages across the index with filters
//! applied to what it reads, and nothing of another tenant's event of the same name.

use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::identity::Role;
use herald_shared::domain::message::{Message, MessageContent, MessageId, MessageStatus};
use herald_shared::domain::recipient::Recipient;
use herald_shared::domain::{Category, Channel, EventId, TenantId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{Request, World};

const START: OffsetDateTime = time::macros::datetime!(2026-11-22 10:00 UTC);

fn message(
    tenant: &str,
    minute: i64,
    channel: Channel,
    category: Category,
    status: MessageStatus,
) -> Message {
    let tenant = TenantId::parse(tenant).expect("tenant");
    let to = match channel {
        Channel::Email => "ada.lovelace@acme.example",
        _ => "+260971234567",
    };
    Message {
        id: MessageId::derive(&tenant, "gala-2026", "it-list", minute as usize),
        tenant,
        event: EventId::parse("gala-2026").expect("event"),
        snapshot_version: 1,
        category,
        channel,
        recipient: Recipient::parse(channel, to).expect("recipient"),
        recipient_key: format!("rk-{minute}"),
        content: MessageContent {
            subject: None,
            html: None,
            text: "Secret body text".into(),
            segments: Some(1),
            whatsapp_template: None,
        },
        status,
        status_reason: None,
        status_at: None,
        trigger: None,
        estimated_cost: None,
        cost: None,
        provider: None,
        provider_kind: None,
        provider_message_id: None,
        attempts: Vec::new(),
        created_at: START + time::Duration::minutes(minute),
        sent_at: None,
        request_id: "it".into(),
        expires_at: None,
        not_before: None,
        erased_at: None,
        test: false,
        list_unsubscribe: None,
    }
}

async fn seed(w: &World, tenant: &str, minutes: std::ops::Range<i64>) {
    let messages: Vec<(Message, AuditEntry)> = minutes
        .map(|m| {
            let channel = if m % 3 == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            let category = if m % 2 == 0 {
                Category::Invitation
            } else {
                Category::RsvpConfirmation
            };
            let status = if m % 4 == 0 {
                MessageStatus::Failed
            } else {
                MessageStatus::Sent
            };
            let message = message(tenant, m, channel, category, status);
            let audit = AuditEntry::message_accepted("it", Role::TenantAdmin, &message, "it");
            (message, audit)
        })
        .collect();
    w.app
        .messages
        .create_many(&messages)
        .await
        .expect("messages stored");
}

fn list(w: &World, query: &[(&str, &str)]) -> Request {
    let mut request = w.event("send-api/list-messages");
    request.0["queryStringParameters"] = json!(
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
    );
    request.0["rawQueryString"] = json!(
        query
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A")))
            .collect::<Vec<_>>()
            .join("&")
    );
    request
}

fn minutes(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {body}"))
        .iter()
        .map(|m| {
            let at = OffsetDateTime::parse(m["created_at"].as_str().expect("created_at"), &Rfc3339)
                .expect("time");
            (at - START).whole_minutes()
        })
        .collect()
}

/// Every page of a list, followed to its end (bounded).
async fn all_pages(w: &World, query: &[(&str, &str)]) -> (Vec<i64>, usize) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=30 {
        let mut q = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let body = w.ok(list(w, &q)).await;
        seen.extend(minutes(&body));
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (seen, pages),
        }
    }
    panic!("the list did not end in 30 pages");
}

#[tokio::test]
async fn the_event_index_lists_newest_first_filters_and_pages() {
    let w = World::new().await;
    seed(&w, &w.tenant, 0..24).await;

    let first = w.ok(list(&w, &[])).await;
    assert_eq!(minutes(&first), (0..24).rev().collect::<Vec<_>>());
    assert_eq!(first["next"], Value::Null);
    assert_eq!(first["items"][0]["recipient"], "+260*******67");
    assert!(!first.to_string().contains("Secret body text"));

    let expect =
        |keep: &dyn Fn(i64) -> bool| (0..24).rev().filter(|m| keep(*m)).collect::<Vec<_>>();
    for (query, expected) in [
        (vec![("channel", "email")], expect(&|m| m % 3 == 0)),
        (
            vec![("category", "rsvp_confirmation")],
            expect(&|m| m % 2 == 1),
        ),
        (vec![("status", "failed")], expect(&|m| m % 4 == 0)),
        (
            vec![
                ("from", "2026-11-22T10:05:00Z"),
                ("to", "2026-11-22T10:09:00Z"),
            ],
            expect(&|m| (5..9).contains(&m)),
        ),
        (
            vec![
                ("channel", "sms"),
                ("status", "sent"),
                ("to", "2026-11-22T10:12:00Z"),
            ],
            expect(&|m| m % 3 != 0 && m % 4 != 0 && m < 12),
        ),
    ] {
        let body = w.ok(list(&w, &query)).await;
        assert_eq!(minutes(&body), expected, "{query:?}");
        // The same list in pages of 4: the same messages, in the same order.
        let mut paged_query = query.clone();
        paged_query.push(("limit", "4"));
        let (paged, pages) = all_pages(&w, &paged_query).await;
        assert_eq!(paged, expected, "{query:?} in pages");
        assert!(
            pages >= expected.len().div_ceil(4),
            "{query:?}: {pages} pages"
        );
    }
}

#[tokio::test]
async fn another_tenants_event_of_the_same_name_is_not_listed() {
    let ours = World::new().await;
    let theirs = World::new().await;
    seed(&ours, &ours.tenant, 0..6).await;
    seed(&theirs, &theirs.tenant, 10..13).await;
    assert_eq!(
        minutes(&ours.ok(list(&ours, &[])).await),
        vec![5, 4, 3, 2, 1, 0]
    );
    assert_eq!(
        minutes(&theirs.ok(list(&theirs, &[])).await),
        vec![12, 11, 10]
    );

    // Our cursor, presented by the other tenant, continues nothing.
    let page = ours.ok(list(&ours, &[("limit", "2")])).await;
    let cursor = page["next"].as_str().expect("more pages").to_owned();
    let reply = theirs
        .call(list(&theirs, &[("limit", "2"), ("cursor", &cursor)]))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["error"]["field"], "query.cursor");
}

#[tokio::test]
async fn template_versions_page_newest_first_through_the_store() {
    let w = World::new().await;
    for _ in 0..3 {
        w.ok(w.event("config-api/put-tenant-template")).await;
    }
    let versions = |query: &[(&str, &str)]| {
        let mut request = w.event("config-api/list-tenant-template-versions");
        request.0["queryStringParameters"] = json!(
            query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
        );
        request.0["rawQueryString"] = json!(
            query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        request
    };
    let first = w.ok(versions(&[("limit", "2")])).await;
    let numbers = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["version"].as_u64())
            .collect()
    };
    assert_eq!(numbers(&first), vec![3, 2], "{first}");
    let cursor = first["next"].as_str().expect("a second page").to_owned();
    let second = w.ok(versions(&[("limit", "2"), ("cursor", &cursor)])).await;
    assert_eq!(numbers(&second), vec![1]);
    assert_eq!(second["next"], Value::Null);
}
