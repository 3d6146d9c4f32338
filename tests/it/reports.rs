//! Compliance reports and message retention against the emulator: real sends through the
//! queues and the Twilio/Brevo stand-ins (one refused for good), configuration changes by
//! people, then the report from the Messages table's `by_tenant_created` index and the audit
//! chains; and the TTL each message record gets from its tenant's retention setting.

use aws_sdk_dynamodb::types::AttributeValue;
use herald_shared::domain::TenantId;
use herald_shared::domain::identity::Role;
use herald_shared::domain::report::{EntryClass, Period};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{Request, World};

fn ids(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

/// The report request for `[from, to)`, its query as API Gateway passes it.
fn report(w: &World, from: OffsetDateTime, to: OffsetDateTime, format: &str) -> Request {
    let (from, to) = (
        from.format(&Rfc3339).expect("time"),
        to.format(&Rfc3339).expect("time"),
    );
    let mut request = w.event("config-api/get-compliance-report");
    request.0["rawQueryString"] = json!(format!(
        "from={}&to={}&format={format}",
        from.replace(':', "%3A"),
        to.replace(':', "%3A")
    ));
    request.0["queryStringParameters"] = json!({"from": from, "to": to, "format": format});
    request
}

fn count(report: &Value, section: &str, channel: &str, status: &str) -> u64 {
    report[section]
        .as_array()
        .expect("section")
        .iter()
        .filter(|r| r["channel"] == channel && r["status"] == status)
        .map(|r| r["count"].as_u64().unwrap_or_default())
        .sum()
}

/// The message item's TTL and its record's creation time, as stored.
async fn stored_expiry(w: &World, id: &str) -> (i64, OffsetDateTime) {
    let item = w
        .dynamodb()
        .get_item()
        .table_name(&w.stack.env["MESSAGES_TABLE"])
        .key("pk", AttributeValue::S(id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the message item");
    let expires_at = item["expires_at"]
        .as_n()
        .expect("a number")
        .parse()
        .expect("seconds");
    let created = item["record"].as_m().expect("record")["created_at"]
        .as_s()
        .expect("a time");
    (
        expires_at,
        OffsetDateTime::parse(created, &Rfc3339).expect("RFC 3339"),
    )
}

#[tokio::test]
async fn the_report_counts_sends_failures_and_the_configuration_changes() {
    let w = World::isolated().await;
    let from = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    w.live_event(&[]).await;
    // Retention first: the send path reads it once per container and minute.
    let settings = w.ok(w.event("config-api/put-tenant-settings")).await;
    assert_eq!(settings["message_retention_days"], 30);
    w.ok(w
        .event("config-api/put-tenant-brand")
        .claim("sub", "user-bo")
        .body(
            json!({"display_name": "Acme Gala", "primary_color": "#112233",
            "legal_name": "Acme Events Ltd", "postal_address": "Plot 12, Cairo Road, Lusaka"}),
        ))
    .await;

    let sms = w.ok(w.event("send-api/send-message")).await;
    // Twilio's documented test number for an invalid 'To' (21211): refused for good.
    let refused = w
        .ok(w
            .event("send-api/send-message")
            .header("idempotency-key", "invalid-number")
            .body(
                json!({"category": "invitation", "channel": "sms", "to": "+15005550001",
                "variables": {"guest_name": "Bo", "event_date": "12 Dec"}}),
            ))
        .await;
    let emails = w.ok(w.event("send-api/send-batch")).await;
    let d = w.dispatcher();
    let (sms_batch, _) = w.deliver(&d, "sms", 1).await;
    let (email_batch, _) = w.deliver(&d, "email", 1).await;
    assert_eq!((sms_batch.len(), email_batch.len()), (2, 2));
    let to = OffsetDateTime::now_utc() + time::Duration::minutes(5);

    let reply = w.call(report(&w, from, to, "json")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let r = reply.body;
    assert_eq!(r["tenant"], w.tenant.as_str());
    assert_eq!(count(&r, "messages", "sms", "sent"), 1, "{r}");
    assert_eq!(count(&r, "messages", "sms", "failed"), 1, "{r}");
    assert_eq!(count(&r, "messages", "email", "sent"), 2, "{r}");
    assert_eq!(r["totals"]["messages"], 4);
    let failure = &r["failures"][0];
    assert_eq!(
        (&failure["channel"], &failure["count"]),
        (&json!("sms"), &json!(1))
    );
    assert!(
        failure["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("21211"),
        "{failure}"
    );

    // The changes people made, with their actors; none of Herald's own entries. Cross-checked
    // against reading the tenant's whole audit log.
    let changes = r["configuration_changes"].as_array().expect("changes");
    let brand = changes
        .iter()
        .find(|c| c["actor"] == "user-bo")
        .expect("user-bo's change");
    assert_eq!(
        (&brand["action"], &brand["target"], &brand["actor_role"]),
        (
            &json!("brand.updated"),
            &json!("tenant/brand"),
            &json!("tenant_admin")
        )
    );
    assert!(changes.iter().any(|c| c["actor"] == "user-ada"
        && c["action"] == "tenant.settings_updated"
        && c["target"] == "tenant/settings"));
    assert!(changes.iter().any(|c| c["action"] == "snapshot.activated"));
    let everything = herald_shared::audit::entries(
        w.app.audit.as_ref(),
        &w.tenant,
        herald_shared::audit::Window {
            from: Some(from),
            to: Some(to),
        },
    )
    .await
    .expect("the whole log");
    let configuration = everything
        .iter()
        .filter(|e| EntryClass::of(&e.entry) == EntryClass::Configuration)
        .count();
    assert_eq!(changes.len(), configuration);
    assert!(
        everything
            .iter()
            .any(|e| e.entry.action == "message.accepted" && e.entry.actor_role != Role::System),
        "the send API's entries are in the log, not in the report's changes"
    );
    assert!(
        everything.len() > configuration,
        "dispatch's entries are in the log, not in the report's changes"
    );

    // The CSV carries the same counts.
    let csv = w.call(report(&w, from, to, "csv")).await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.text.as_bytes());
    let rows: Vec<std::collections::HashMap<String, String>> = reader
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("CSV rows");
    assert!(rows.iter().any(|row| row["section"] == "messages"
        && row["channel"] == "email"
        && row["status"] == "sent"
        && row["count"] == "2"));
    assert_eq!(
        rows.iter()
            .filter(|row| row["section"] == "configuration_changes")
            .count(),
        configuration
    );

    // Message TTL: the tenant's 30 days from creation, still so after dispatch rewrote the
    // records.
    for id in ids(&sms).iter().chain(&ids(&refused)).chain(&ids(&emails)) {
        let (expires_at, created_at) = stored_expiry(&w, id).await;
        assert_eq!(
            expires_at,
            (created_at + time::Duration::days(30)).unix_timestamp(),
            "{id}"
        );
    }
}

#[tokio::test]
async fn the_index_is_read_page_by_page_and_only_for_the_tenant() {
    let w = World::isolated().await;
    let from = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    w.live_event(&[]).await;
    let emails = w.ok(w.event("send-api/send-batch")).await;
    let sms = w.ok(w.event("send-api/send-message")).await;
    let tenant = TenantId::parse(&w.tenant).expect("tenant");
    // A message of another tenant, created in the same period.
    let id = herald_shared::domain::message::MessageId::parse(&ids(&sms)[0]).expect("id");
    let mut foreign = w
        .app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message")
        .message;
    foreign.tenant = TenantId::parse("t-someone-else").expect("tenant");
    foreign.id = herald_shared::domain::message::MessageId::derive(&foreign.tenant, "e", "k", 0);
    assert!(
        w.app
            .messages
            .create(
                &foreign,
                &herald_shared::domain::audit::AuditEntry::message_accepted(
                    "test",
                    herald_shared::domain::identity::Role::System,
                    &foreign,
                    "req"
                )
            )
            .await
            .expect("created")
    );

    let period =
        Period::new(from, OffsetDateTime::now_utc() + time::Duration::minutes(5)).expect("period");
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (page, next) = w
            .app
            .messages
            .messages_between(&tenant, &period, after.as_deref(), 1)
            .await
            .expect("a page");
        assert!(page.len() <= 1);
        seen.extend(page.into_iter().map(|m| (m.created_at, m.id.to_string())));
        match next {
            Some(token) => after = Some(token),
            None => break,
        }
    }
    let mut expected: Vec<String> = ids(&emails).into_iter().chain(ids(&sms)).collect();
    expected.sort();
    let mut got: Vec<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert!(
        seen.windows(2).all(|p| p[0].0 <= p[1].0),
        "oldest first: {seen:?}"
    );
    got.sort();
    assert_eq!(got, expected);

    // A period that ends before the sends holds none of them.
    let before = Period::new(from - time::Duration::days(1), from).expect("period");
    let (page, next) = w
        .app
        .messages
        .messages_between(&tenant, &before, None, 100)
        .await
        .expect("a page");
    assert!(page.is_empty() && next.is_none());
}
