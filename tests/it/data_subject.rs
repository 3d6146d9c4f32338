//! Data-subject export and erasure against the emulator: messages found through the Messages
//! table's `by_recipient` index, the ledger from the recipient's partition; after erasure a scan
//! of every table of the stack finds neither the phone number nor the email address, the
//! opt-out still refuses a send, and the audit chains still verify.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use herald_shared::domain::Channel;
use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::provider::ProviderKind;
use herald_shared::domain::recipient::Recipient;
use herald_shared::domain::suppression::{Block, BlockKind};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::harness::World;

const ADA: &str = "+260971234567";
const ADA_EMAIL: &str = "ada@guests.example";
/// Pages of a table scan before giving up (a test stack's tables are small).
const SCAN_PAGES: usize = 50;

fn send(w: &World, key: &str, channel: &str, to: &str) -> crate::harness::Request {
    let variables = if channel == "email" {
        json!({"guest_name": "Ada Lovelace", "event_date": "12 December 2026"})
    } else {
        json!({"guest_name": "Ada", "event_date": "12 Dec"})
    };
    w.event("send-api/send-message")
        .header("idempotency-key", key)
        .body(json!({"category": "rsvp_confirmation", "channel": channel, "to": to, "variables": variables}))
}

/// Every string value anywhere in a scanned item.
fn strings(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::L(items) => items.iter().for_each(|v| strings(v, out)),
        AttributeValue::M(map) => map.values().for_each(|v| strings(v, out)),
        AttributeValue::Ss(items) | AttributeValue::Ns(items) => out.extend(items.iter().cloned()),
        AttributeValue::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).into_owned()),
        _ => {}
    }
}

/// Every string in every item of every table of the stack (`*_TABLE`), by table variable.
async fn every_table(w: &World) -> HashMap<String, Vec<String>> {
    let db = w.dynamodb();
    let mut found = HashMap::new();
    let tables: Vec<(&String, &String)> = w
        .stack
        .env
        .iter()
        .filter(|(k, _)| k.ends_with("_TABLE"))
        .collect();
    assert!(tables.len() >= 8, "the stack's tables: {tables:?}");
    for (variable, table) in tables {
        let mut values = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        for page in 0..=SCAN_PAGES {
            assert!(page < SCAN_PAGES, "{table} is larger than a test stack's");
            let out = db
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for item in out.items() {
                item.values().for_each(|v| strings(v, &mut values));
                item.keys().for_each(|k| values.push(k.clone()));
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        found.insert(variable.clone(), values);
    }
    found
}

fn holding<'a>(tables: &'a HashMap<String, Vec<String>>, needle: &str) -> Vec<(&'a str, &'a str)> {
    tables
        .iter()
        .flat_map(|(t, values)| values.iter().map(move |v| (t.as_str(), v.as_str())))
        .filter(|(_, v)| v.to_lowercase().contains(needle))
        .collect()
}

#[tokio::test]
async fn export_then_erasure_leaves_no_address_in_any_table_and_the_audit_intact() {
    let w = World::isolated().await;
    w.live_event(&[]).await;
    let tenant = TenantId::parse(&w.tenant).expect("tenant");
    let sms_key = w
        .app
        .recipient_key(
            &tenant,
            &Recipient::parse(Channel::Sms, ADA).expect("phone"),
        )
        .await
        .expect("the stack's recipient key");

    // Two SMS and an email, dispatched through the stand-ins.
    let mut ids = Vec::new();
    for (key, channel, to) in [
        ("rsvp-sms-1", "sms", ADA),
        ("rsvp-sms-2", "sms", ADA),
        ("rsvp-mail-1", "email", ADA_EMAIL),
    ] {
        let reply = w.ok(send(&w, key, channel, to)).await;
        ids.push(reply["messages"][0]["id"].as_str().expect("id").to_owned());
    }
    let d = w.dispatcher();
    for channel in ["sms", "email"] {
        let (batch, failed) = w.deliver(&d, channel, 1).await;
        assert!(
            !batch.is_empty() && failed.is_empty(),
            "{channel}: {batch:?} {failed:?}"
        );
    }
    // A consent with evidence, preferences, and a STOP opt-out (as the receipts path records it).
    for (channel, address) in [("sms", ADA), ("email", ADA_EMAIL)] {
        w.ok(w
            .event("config-api/record-recipient-consent")
            .header("idempotency-key", &format!("consent-{channel}"))
            .body(
                json!({"channel": channel, "address": address, "category": "marketing",
                         "status": "granted", "legal_basis": "consent", "source": "signup_form",
                         "evidence": "paper form 2026-11 #4471, signed by Ada Lovelace"}),
            ))
        .await;
        w.ok(w
            .event("config-api/put-recipient-preferences")
            .header("idempotency-key", &format!("prefs-{channel}"))
            .body(json!({"channel": channel, "address": address, "channel_opt_outs": ["whatsapp"],
                         "quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Africa/Lusaka"}})))
            .await;
    }
    let stop = Block {
        kind: BlockKind::OptedOut,
        reason: "stop_keyword".into(),
        provider: ProviderKind::Twilio,
        message_id: None,
        at: OffsetDateTime::now_utc(),
    };
    let audit = AuditEntry::by_system(
        "delivery-webhooks",
        &tenant,
        "req-stop",
        "recipient.opted_out",
        format!("recipient/{sms_key}"),
        None,
        None,
    );
    assert!(
        w.app
            .recipients
            .block(&tenant, Channel::Sms, &sms_key, &stop, &audit)
            .await
            .expect("block")
    );

    // Export: everything, through the index (GSIs are eventually consistent: a few tries).
    let mut export = Value::Null;
    for _ in 0..20 {
        export = w
            .ok(w
                .event("config-api/export-recipient")
                .body(json!({"channel": "sms", "address": ADA})))
            .await;
        if export["messages"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let messages = export["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{export}");
    assert!(
        messages
            .iter()
            .all(|m| m["recipient"] == ADA && m["status"] == "sent")
    );
    assert!(
        messages
            .iter()
            .all(|m| m["attempts"].as_array().is_some_and(|a| !a.is_empty()))
    );
    assert!(
        messages[0]["content"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Ada"))
    );
    assert_eq!(
        export["history"][0]["evidence"],
        "paper form 2026-11 #4471, signed by Ada Lovelace"
    );
    assert_eq!(
        export["preferences"]["preferences"]["channel_opt_outs"],
        json!(["whatsapp"])
    );
    assert_eq!(export["blocks"][0]["kind"], "opted_out");
    let email = w
        .ok(w
            .event("config-api/export-recipient")
            .body(json!({"channel": "email", "address": ADA_EMAIL})))
        .await;
    assert_eq!(
        email["messages"].as_array().map(Vec::len),
        Some(1),
        "{email}"
    );
    assert_eq!(email["messages"][0]["id"], ids[2]);
    assert!(email["messages"][0]["content"]["html"].is_string());

    // Before erasure the addresses are in the Messages table (the test would see them).
    let before = every_table(&w).await;
    assert!(!holding(&before, "260971234567").is_empty());
    assert!(!holding(&before, ADA_EMAIL).is_empty());

    // Erase both addresses.
    for (key, channel, address) in [
        ("erase-sms", "sms", ADA),
        ("erase-email", "email", ADA_EMAIL),
    ] {
        let erased = w
            .ok(w
                .event("config-api/erase-recipient")
                .header("idempotency-key", key)
                .body(json!({"channel": channel, "address": address})))
            .await;
        assert_eq!(erased["complete"], true, "{erased}");
        assert_eq!(erased["preferences_deleted"], true);
        assert_eq!(erased["consent_evidence_digested"], 2);
    }

    // No trace of either address, in any form (international with and without +, national
    // 0971234567, subscriber number; the email in any case: `holding` compares lower-cased), in
    // any table.
    let after = every_table(&w).await;
    for needle in [ADA, "260971234567", "971234567", ADA_EMAIL] {
        let found = holding(&after, needle);
        assert!(found.is_empty(), "{needle} still stored: {found:?}");
    }
    // Evidence text is digested in the ledger. The consent API's answer (which repeats it) is
    // kept for its Idempotency-Key's 24 hours (TTL): it holds no address, and goes with the TTL.
    let evidence: Vec<_> = holding(&after, "signed by ada lovelace")
        .into_iter()
        .filter(|(table, _)| *table != "IDEMPOTENCY_TABLE")
        .collect();
    assert!(evidence.is_empty(), "evidence kept: {evidence:?}");

    // The records stay, without the person; the opt-out still holds.
    let export = w
        .ok(w
            .event("config-api/export-recipient")
            .body(json!({"channel": "sms", "address": ADA})))
        .await;
    let messages = export["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{export}");
    assert!(messages.iter().all(|m| m["recipient"] == "[erased]"
        && m["status"] == "sent"
        && m["content"]["text"] == "[erased]"
        && m["provider_message_id"].is_string()));
    assert!(
        export["history"][0]["evidence"]
            .as_str()
            .is_some_and(|e| e.starts_with("sha256:"))
    );
    assert_eq!(export["preferences"], Value::Null);
    assert_eq!(export["blocks"][0]["kind"], "opted_out");
    let refused = w.call(send(&w, "rsvp-sms-3", "sms", ADA)).await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (422, Some("recipient_opted_out")),
        "{}",
        refused.text
    );

    // Repeating finds nothing left to do; the audit chains verify with the erasures in them.
    let again = w
        .ok(w
            .event("config-api/erase-recipient")
            .header("idempotency-key", "erase-sms-again")
            .body(json!({"channel": "sms", "address": ADA})))
        .await;
    assert_eq!(
        (
            again["messages_erased"].as_u64(),
            again["messages_already_erased"].as_u64()
        ),
        (Some(0), Some(2))
    );
    let window = herald_shared::audit::Window::default();
    let report =
        herald_shared::audit::verify(w.app.audit.as_ref(), &w.tenant, window, None, None, &|_| {})
            .await
            .expect("verification");
    assert!(report.intact(), "{report:?}");
    let entries = herald_shared::audit::entries(w.app.audit.as_ref(), &w.tenant, window)
        .await
        .expect("audit entries");
    let count = |action: &str| entries.iter().filter(|e| e.entry.action == action).count();
    assert_eq!(count("message.erased"), 3);
    assert_eq!(count("recipient.erased"), 3);
}
