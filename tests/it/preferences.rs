//! The consent ledger, preferences and the preference centre against the emulator: decisions
//! kept with their whole history in the Recipients table, a message sent in quiet hours held on
//! its queue until the window ends and then delivered, preference links signed with the
//! template's Secrets Manager secret, and no address anywhere in the table.

use std::time::{Duration, Instant};

use provider_standins::Provider;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::World;

const ADA: &str = "+260971234567";
const ADA_EMAIL: &str = "ada@guests.example";

fn send(w: &World, key: &str, category: &str, channel: &str, to: &str) -> crate::harness::Request {
    let variables = if channel == "email" {
        json!({"guest_name": "Ada Lovelace", "event_date": "12 December 2026"})
    } else {
        json!({"guest_name": "Ada", "event_date": "12 Dec"})
    };
    w.event("send-api/send-message")
        .header("idempotency-key", key)
        .body(json!({"category": category, "channel": channel, "to": to, "variables": variables}))
}

fn hm(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// Every string value anywhere in a scanned item.
fn strings(value: &aws_sdk_dynamodb::types::AttributeValue, out: &mut Vec<String>) {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        A::S(s) | A::N(s) => out.push(s.clone()),
        A::L(items) => items.iter().for_each(|v| strings(v, out)),
        A::M(map) => map.values().for_each(|v| strings(v, out)),
        A::Ss(items) | A::Ns(items) => out.extend(items.iter().cloned()),
        _ => {}
    }
}

#[tokio::test]
async fn consent_history_quiet_hours_and_preference_links_against_the_emulator() {
    let w = World::isolated().await;
    w.live_event(&[]).await;

    // Grant, then withdraw, email marketing: both kept, the withdrawal in force.
    for (key, status) in [("grant", "granted"), ("withdraw", "withdrawn")] {
        w.ok(w
            .event("config-api/record-recipient-consent")
            .header("idempotency-key", key)
            .body(
                json!({"channel": "email", "address": ADA_EMAIL, "category": "marketing",
                         "status": status, "legal_basis": "consent", "source": "signup_form",
                         "evidence": format!("form v3, {key}")}),
            ))
        .await;
    }
    let looked = w
        .ok(w
            .event("config-api/lookup-recipient")
            .body(json!({"channel": "email", "address": ADA_EMAIL})))
        .await;
    let history = looked["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{looked}");
    assert_eq!(
        (history[0]["status"].as_str(), history[1]["status"].as_str()),
        (Some("granted"), Some("withdrawn"))
    );
    assert_eq!(history[1]["evidence"], "form v3, withdraw");
    assert_eq!(looked["consents"].as_array().map(Vec::len), Some(1));
    assert_eq!(looked["consents"][0]["status"], "withdrawn");
    let refused = w
        .call(send(&w, "inv-email", "invitation", "email", ADA_EMAIL))
        .await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (422, Some("recipient_withdrew_consent"))
    );
    w.ok(send(
        &w,
        "rsvp-email",
        "rsvp_confirmation",
        "email",
        ADA_EMAIL,
    ))
    .await;

    // Quiet hours in UTC from this minute to the next (or the one after, when this one is
    // nearly over): an RSVP confirmation sent now waits on the queue until the window ends.
    let now = OffsetDateTime::now_utc();
    let minutes = if now.second() < 45 { 1 } else { 2 };
    let end = now + time::Duration::minutes(minutes);
    w.ok(w.event("config-api/put-recipient-preferences").body(json!({
        "channel": "sms", "address": ADA,
        "quiet_hours": {"start": hm(now), "end": hm(end), "time_zone": "UTC"}})))
        .await;
    let reply = w
        .ok(send(&w, "rsvp-quiet", "rsvp_confirmation", "sms", ADA))
        .await;
    let not_before = OffsetDateTime::parse(
        reply["messages"][0]["not_before"]
            .as_str()
            .expect("not_before"),
        &Rfc3339,
    )
    .expect("time");
    assert_eq!(
        (not_before.hour(), not_before.minute(), not_before.second()),
        (end.hour(), end.minute(), 0)
    );
    let id = reply["messages"][0]["id"].as_str().expect("id").to_owned();

    let d = w.dispatcher();
    let (batch, failed) = w.deliver(&d, "sms", 1).await;
    assert_eq!(
        (batch.len(), failed.len()),
        (1, 1),
        "held: back to the queue"
    );
    assert!(w.standins.sent_messages_for(Provider::Twilio).is_empty());
    // Until the window ends the queue gives it to nobody; then it goes out.
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut receives = 1;
    while w.standins.sent_messages_for(Provider::Twilio).is_empty() && Instant::now() < deadline {
        let (batch, _) = w.deliver(&d, "sms", 1).await;
        if !batch.is_empty() {
            receives += 1;
            assert!(
                OffsetDateTime::now_utc() >= not_before,
                "redelivered before the window ended"
            );
        }
    }
    let sent_at = OffsetDateTime::now_utc();
    assert_eq!(w.standins.sent_messages_for(Provider::Twilio).len(), 1);
    assert!(sent_at >= not_before);
    assert!(
        sent_at - not_before < time::Duration::seconds(15),
        "delivered soon after the window ended ({sent_at} vs {not_before})"
    );
    assert_eq!(receives, 2, "one hold, one send");
    let m = w
        .ok(w.event("send-api/get-message").path("messageId", &id))
        .await;
    assert_eq!(m["status"], "sent");
    assert_eq!(
        m["attempts"].as_array().map(Vec::len),
        Some(1),
        "the hold is not an attempt: {m}"
    );

    // A preference link signed with the template's secret (read from Secrets Manager).
    let link = w
        .ok(w
            .event("config-api/create-preference-link")
            .body(json!({"channel": "sms", "address": ADA})))
        .await;
    let token = link["url"]
        .as_str()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(_, t)| t.to_owned())
        .expect("token");
    let seen = w
        .ok(w
            .event("preference-centre/get-preferences")
            .path("token", &token))
        .await;
    assert_eq!(seen["preferences"]["quiet_hours"]["time_zone"], "UTC");
    let changed = w
        .ok(w
            .event("preference-centre/put-preferences")
            .path("token", &token))
        .await;
    assert_eq!(changed["consents"][0]["source"], "preference_centre");
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let reply = w
        .call(
            w.event("preference-centre/get-preferences")
                .path("token", &String::from_utf8(tampered).expect("ascii")),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["error"]["code"].as_str()),
        (401, Some("preference_link_invalid"))
    );

    // Everything above is in the Recipients table, and no address is.
    let table = &w.stack.env["RECIPIENTS_TABLE"];
    let scan = w
        .dynamodb()
        .scan()
        .table_name(table)
        .send()
        .await
        .expect("scan");
    let items = scan.items();
    let mut values = Vec::new();
    for item in items {
        item.values().for_each(|v| strings(v, &mut values));
    }
    let kinds: Vec<&str> = items
        .iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|pk| pk.starts_with(&format!("R#{}#", w.tenant)))
        })
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str))
        .collect();
    for kind in ["CONSENT#LOG#", "CONSENT#CUR#", "PREFERENCES"] {
        assert!(
            kinds.iter().any(|sk| sk.starts_with(kind)),
            "{kind} items in the table: {kinds:?}"
        );
    }
    for address in [ADA, "260971234567", ADA_EMAIL, "guests.example"] {
        assert!(
            !values.iter().any(|v| v.to_lowercase().contains(address)),
            "{address} found in the Recipients table"
        );
    }
    let history = w
        .ok(w
            .event("config-api/lookup-recipient")
            .body(json!({"channel": "sms", "address": ADA})))
        .await;
    assert_eq!(history["history"][0]["source"], "preference_centre");
}
