//! Sending end to end against the emulator: send API → message records → SNS topic → per-channel
//! SQS queues (filter policy, raw delivery) → dispatch → provider stand-ins. Each test has its own
//! emulator, because tests drain queues.

use std::time::Duration;

use provider_standins::{Fault, Provider};
use serde_json::{Value, json};

use crate::harness::{World, provider_body};

fn ids(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

async fn status(w: &World, id: &str) -> Value {
    w.ok(w.event("send-api/get-message").path("messageId", id))
        .await
}

/// Africa's Talking as the second SMS provider behind Twilio.
fn fallback() -> Value {
    let mut at = provider_body("africas_talking");
    at["priority"] = json!(2);
    at
}

#[tokio::test]
async fn messages_fan_out_to_their_channel_queue_and_reach_the_provider() {
    let w = World::isolated().await;
    w.live_event(&[]).await;
    let emails = w.ok(w.event("send-api/send-batch")).await;
    let sms = w.ok(w.event("send-api/send-message")).await;
    let d = w.dispatcher();

    let (email_batch, failed) = w.deliver(&d, "email", 1).await;
    assert_eq!(
        (email_batch.len(), failed.len()),
        (2, 0),
        "both emails, and only they, are on the email queue"
    );
    let (sms_batch, _) = w.deliver(&d, "sms", 1).await;
    assert_eq!(sms_batch.len(), 1);

    let brevo = w.standins.sent_messages_for(Provider::Brevo);
    assert_eq!(brevo.len(), 2);
    assert!(
        brevo
            .iter()
            .any(|m| m.subject.as_deref() == Some("You're invited, Ada Lovelace")),
        "{brevo:?}"
    );
    let twilio = w.standins.sent_messages_for(Provider::Twilio);
    assert_eq!(twilio.len(), 1);
    assert_eq!(twilio[0].to, "+260971234567");
    for id in ids(&emails).iter().chain(&ids(&sms)) {
        let m = status(&w, id).await;
        assert_eq!(m["status"], "sent", "{m}");
        assert!(m["provider_message_id"].is_string());
    }
    let m = status(&w, &ids(&sms)[0]).await;
    assert_eq!(m["segments"], 1);
    assert!(
        m["estimated_cost"]["amount_micros"]
            .as_i64()
            .unwrap_or_default()
            > 0,
        "{m}"
    );
}

#[tokio::test]
async fn a_failing_primary_falls_back_and_the_person_gets_one_message() {
    let w = World::isolated().await;
    w.live_event(&[fallback()]).await;
    let d = w.dispatcher();
    w.standins
        .fail_next(Provider::Twilio, 1, Fault::Status(500));
    let first = w.ok(w.event("send-api/send-message")).await;
    w.deliver(&d, "sms", 1).await;
    assert_eq!(w.standins.sent_messages_for(Provider::Twilio).len(), 0);
    assert_eq!(
        w.standins.sent_messages_for(Provider::AfricasTalking).len(),
        1
    );
    let m = status(&w, &ids(&first)[0]).await;
    assert_eq!(m["attempts"].as_array().map(Vec::len), Some(2), "{m}");

    // A timeout counts as an outage too.
    w.standins
        .fail_next(Provider::Twilio, 1, Fault::Delay(Duration::from_secs(15)));
    w.ok(w
        .event("send-api/send-message")
        .header("idempotency-key", "second"))
        .await;
    w.deliver(&d, "sms", 1).await;
    assert_eq!(
        w.standins.sent_messages_for(Provider::AfricasTalking).len(),
        2
    );
    assert_eq!(
        w.standins.sent_messages_for(Provider::Twilio).len(),
        0,
        "the timed-out request was not delivered"
    );
}

#[tokio::test]
async fn a_permanent_recipient_error_fails_without_failover() {
    let w = World::isolated().await;
    w.live_event(&[fallback()]).await;
    // Twilio's documented test number for "invalid To" (21211).
    let reply = w
        .ok(w.event("send-api/send-message").body(
            json!({"category": "invitation", "channel": "sms", "to": "+15005550001",
        "variables": {"guest_name": "Ada", "event_date": "12 Dec"}}),
        ))
        .await;
    w.deliver(&w.dispatcher(), "sms", 1).await;
    let m = status(&w, &ids(&reply)[0]).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert!(
        m["status_reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("21211"),
        "{m}"
    );
    assert!(
        w.standins
            .sent_messages_for(Provider::AfricasTalking)
            .is_empty(),
        "no failover"
    );
}

#[tokio::test]
async fn a_message_delivered_three_times_is_sent_once() {
    let w = World::isolated().await;
    w.live_event(&[]).await;
    w.ok(w.event("send-api/send-message")).await;
    let (batch, failed) = w.deliver(&w.dispatcher(), "sms", 3).await;
    assert_eq!((batch.len(), failed.len()), (1, 0));
    assert_eq!(w.standins.sent_messages_for(Provider::Twilio).len(), 1);
    // A repeated API request publishes the same message again: still one send.
    w.ok(w.event("send-api/send-message")).await;
    w.deliver(&w.dispatcher(), "sms", 1).await;
    assert_eq!(w.standins.sent_messages_for(Provider::Twilio).len(), 1);
}

#[tokio::test]
async fn when_every_provider_is_down_the_message_is_retried_later() {
    let w = World::isolated().await;
    w.live_event(&[fallback()]).await;
    let d = w.dispatcher();
    w.standins
        .fail_next(Provider::Twilio, 1, Fault::Status(503));
    w.standins
        .fail_next(Provider::AfricasTalking, 1, Fault::Status(503));
    let reply = w.ok(w.event("send-api/send-message")).await;
    let (_, failed) = w.deliver(&d, "sms", 1).await;
    assert_eq!(failed.len(), 1, "reported back to the queue");
    assert_eq!(status(&w, &ids(&reply)[0]).await["status"], "accepted");
    // The handler delayed the message by its backoff (at most 5 s on a first delivery); it
    // comes back by itself and goes out through the first provider.
    for _ in 0..12 {
        w.deliver(&d, "sms", 1).await;
        if !w.standins.sent_messages_for(Provider::Twilio).is_empty() {
            break;
        }
    }
    assert_eq!(w.standins.sent_messages_for(Provider::Twilio).len(), 1);
    let m = status(&w, &ids(&reply)[0]).await;
    assert_eq!(m["status"], "sent");
    assert_eq!(
        m["attempts"].as_array().map(Vec::len),
        Some(3),
        "two failures, then the send: {m}"
    );
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dead_letter_queue_and_redrive_brings_it_back() {
    let w = World::isolated().await;
    let sqs = w.sqs();
    let url = w.stack.queue("sms", "url").expect("queue");
    let dlq = w.stack.queue("sms", "dlq_url").expect("dead-letter queue");
    let max = w.stack.queues["sms"]["max_receive_count"]
        .as_u64()
        .expect("max receive count");
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "0",
        )
        .send()
        .await
        .expect("short visibility");
    sqs.send_message()
        .queue_url(&url)
        .message_body("{\"message_id\": \"msg_0000000000000000000000none\"}")
        .send()
        .await
        .expect("send");
    let d = w.dispatcher();
    let mut receives = 0;
    for _ in 0..(max * 4) {
        let (batch, failed) = w.deliver(&d, "sms", 1).await;
        assert_eq!(
            batch.len(),
            failed.len(),
            "a poison message is never acknowledged"
        );
        receives += batch.len() as u64;
        let in_dlq = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("attributes");
        if in_dlq
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .map(String::as_str)
            == Some("1")
        {
            break;
        }
    }
    assert_eq!(receives, max, "dead-lettered after {max} receives");
    let moved = herald_shared::redrive::redrive(&sqs, &dlq, &url, 100)
        .await
        .expect("redrive");
    assert_eq!(moved, 1);
    let (batch, _) = w.deliver(&d, "sms", 1).await;
    assert_eq!(batch.len(), 1, "back on the channel queue");
}

#[tokio::test]
async fn receipts_find_the_message_by_provider_id_and_any_order_ends_in_the_same_state() {
    use herald_shared::domain::TenantId;
    use herald_shared::domain::audit::AuditEntry;
    use herald_shared::domain::message::{MessageStatus, StatusReport};
    use herald_shared::domain::provider::ProviderKind;

    let w = World::isolated().await;
    w.live_event(&[]).await;
    let reply = w.ok(w.event("send-api/send-message")).await;
    w.deliver(&w.dispatcher(), "sms", 1).await;
    let sid = w.standins.sent_messages_for(Provider::Twilio)[0].id.clone();
    let message = w
        .app
        .messages
        .by_provider_message(ProviderKind::Twilio, &sid)
        .await
        .expect("query")
        .expect("found by provider id");
    assert_eq!(message.id.as_str(), ids(&reply)[0]);
    let tenant = TenantId::parse(&w.tenant).expect("tenant");
    // Each receipt is its own audited change.
    let audit = || {
        AuditEntry::by_system(
            "receipts",
            &tenant,
            "it",
            "message.receipt",
            format!("message/{}", message.id),
            None,
            None,
        )
    };
    let store = &w.app.messages;
    let report = |status| StatusReport {
        status,
        reason: None,
        at: None,
        cost: None,
    };
    assert!(
        store
            .advance(&message.id, &report(MessageStatus::Delivered), &audit())
            .await
            .expect("advance")
    );
    assert!(
        !store
            .advance(&message.id, &report(MessageStatus::Sent), &audit())
            .await
            .expect("advance"),
        "a late 'sent' changes nothing"
    );
    assert!(
        !store
            .advance(&message.id, &report(MessageStatus::Delivered), &audit())
            .await
            .expect("advance"),
        "a duplicate changes nothing"
    );
    assert_eq!(status(&w, &ids(&reply)[0]).await["status"], "delivered");
    assert!(
        store
            .advance(&message.id, &report(MessageStatus::Read), &audit())
            .await
            .expect("advance")
    );
    assert_eq!(status(&w, &ids(&reply)[0]).await["status"], "read");

    // Every order of a message's reports, a repeat included, ends where the reports in the
    // order they happened end, through DynamoDB's own condition: the highest status, and
    // between reports of it the latest (Twilio's 30003 then 30008 on a retried message).
    let at =
        |s: i64| Some(time::OffsetDateTime::from_unix_timestamp(1_795_341_600 + s).expect("time"));
    let failed = |code: &str, when| StatusReport {
        status: MessageStatus::Failed,
        reason: Some(code.to_owned()),
        at: when,
        cost: None,
    };
    let reports = [
        StatusReport {
            at: at(0),
            ..report(MessageStatus::Sent)
        },
        failed("30003", at(1)),
        failed("30008", at(2)),
        failed("30003", None),
    ];
    let mut orders: Vec<Vec<usize>> = Vec::new();
    permutations(&mut (0..reports.len()).collect(), 0, &mut orders);
    for (n, order) in orders.iter().enumerate() {
        let mut fresh = message.clone();
        fresh.id = herald_shared::domain::message::MessageId::derive(&tenant, "orders", "it", n);
        fresh.provider_message_id = None;
        let created = AuditEntry::message_accepted(
            "it",
            herald_shared::domain::identity::Role::System,
            &fresh,
            "it",
        );
        assert!(store.create(&fresh, &created).await.expect("created"));
        // Each order, with its first report repeated at the end.
        for &i in order.iter().chain(order.first()) {
            let entry = AuditEntry::by_system_on_message(
                "receipts",
                &fresh,
                "it",
                "message.receipt",
                None,
                None,
            );
            store
                .advance(&fresh.id, &reports[i], &entry)
                .await
                .expect("advance");
        }
        let stored = store
            .message(&fresh.id)
            .await
            .expect("read")
            .expect("stored")
            .message;
        assert_eq!(
            (
                stored.status,
                stored.status_reason.as_deref(),
                stored.status_at
            ),
            (MessageStatus::Failed, Some("30008"), at(2)),
            "order {order:?}"
        );
    }
}

/// Every ordering of `items[k..]` (Heap's algorithm would do; 24 orders need nothing clever).
fn permutations(items: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
    if k == items.len() {
        out.push(items.clone());
        return;
    }
    for i in k..items.len() {
        items.swap(k, i);
        permutations(items, k + 1, out);
        items.swap(k, i);
    }
}

#[tokio::test]
async fn a_batch_is_recorded_with_its_audit_entries_in_a_few_chained_transactions() {
    let w = World::new().await;
    w.live_event(&[]).await;
    let recipients: Vec<Value> = (0..120)
        .map(|i| {
            json!({"to": format!("guest{i}@guests.example"),
                   "variables": {"guest_name": format!("Guest {i}"), "event_date": "12 December 2026"}})
        })
        .collect();
    w.counter.reset();
    let reply = w
        .ok(w
            .event("send-api/send-batch")
            .header("idempotency-key", "batch-of-120")
            .body(json!({"category": "invitation", "channel": "email", "recipients": recipients})))
        .await;
    let counts = w.counter.snapshot();
    let sent = ids(&reply);
    assert_eq!(sent.len(), 120);
    // 120 records and their entries over 16 chains: one transaction per chain (about 7-8
    // messages each), not one write per message.
    let transactions = counts
        .get("DynamoDB.TransactWriteItems")
        .copied()
        .unwrap_or(0);
    assert!(
        (1..=32).contains(&transactions),
        "{transactions} transactions: {counts:?}"
    );
    assert!(
        counts.get("DynamoDB.PutItem").copied().unwrap_or(0) <= 1,
        "only the idempotency key's claim is a single write: {counts:?}"
    );
    eprintln!("a batch of 120: {counts:?}");

    let window = herald_shared::audit::Window::default();
    let log = herald_shared::audit::entries(w.app.audit.as_ref(), &w.tenant, window)
        .await
        .expect("audit entries");
    let accepted: std::collections::BTreeSet<String> = log
        .iter()
        .filter(|e| e.entry.action == "message.accepted")
        .map(|e| e.entry.target.clone())
        .collect();
    let expected: std::collections::BTreeSet<String> =
        sent.iter().map(|id| format!("message/{id}")).collect();
    assert_eq!(accepted, expected, "one entry per message, each its own");
    assert!(
        log.iter()
            .all(|e| !e.entry.after.as_deref().unwrap_or_default().contains('@')),
        "entries carry digests, not addresses"
    );
    let report =
        herald_shared::audit::verify(w.app.audit.as_ref(), &w.tenant, window, None, None, &|_| {})
            .await
            .expect("verification");
    assert!(report.intact(), "{report:?}");
    for id in &sent {
        assert_eq!(status(&w, id).await["status"], "accepted");
    }
}

#[tokio::test]
async fn many_messages_of_one_chain_are_split_and_existing_ones_are_left_alone() {
    use herald_shared::domain::TenantId;
    use herald_shared::domain::audit::{AuditEntry, chain_of};
    use herald_shared::domain::message::MessageId;
    use herald_shared::store::AUDIT_CHAINS;

    let w = World::new().await;
    w.live_event(&[]).await;
    let reply = w.ok(w.event("send-api/send-message")).await;
    let template = w
        .app
        .messages
        .message(&MessageId::parse(&ids(&reply)[0]).expect("id"))
        .await
        .expect("read")
        .expect("stored")
        .message;
    let tenant = TenantId::parse(&w.tenant).expect("tenant");
    // 60 messages whose entries all go to one chain: more than one transaction takes (49).
    let chain = chain_of(&template.audit_target(), AUDIT_CHAINS);
    let messages: Vec<_> = (0..)
        .map(|n| {
            let mut m = template.clone();
            m.id = MessageId::derive(&tenant, "one-chain", "it", n);
            m
        })
        .filter(|m| chain_of(&m.audit_target(), AUDIT_CHAINS) == chain)
        .take(60)
        .map(|m| {
            let audit = AuditEntry::message_accepted(
                "it",
                herald_shared::domain::identity::Role::System,
                &m,
                "req",
            );
            (m, audit)
        })
        .collect();
    let store = &w.app.messages;
    let first = store.create_many(&messages[..30]).await.expect("created");
    assert!(first.iter().all(|c| *c));
    // A retried request with 30 more: the first 30 exist and are left alone, the rest written.
    w.counter.reset();
    let second = store.create_many(&messages).await.expect("created");
    assert_eq!(second[..30], [false; 30]);
    assert_eq!(second[30..], [true; 30]);
    let transactions = w.counter.snapshot()["DynamoDB.TransactWriteItems"];
    assert_eq!(
        transactions, 3,
        "49 (refused: 30 exist), then the 19 new of them, then the last 11"
    );

    let window = herald_shared::audit::Window::default();
    let log = herald_shared::audit::entries(w.app.audit.as_ref(), &w.tenant, window)
        .await
        .expect("entries");
    let accepted = log
        .iter()
        .filter(|e| e.entry.action == "message.accepted" && e.entry.actor == "it")
        .count();
    assert_eq!(accepted, 60, "one entry per message, none twice");
    let report =
        herald_shared::audit::verify(w.app.audit.as_ref(), &w.tenant, window, None, None, &|_| {})
            .await
            .expect("verification");
    assert!(report.intact(), "{report:?}");
}

/// Every queue message on `channel`'s queue, received and deleted: the message ids published.
async fn drain(w: &World, channel: &str) -> Vec<String> {
    let sqs = w.sqs();
    let url = w.stack.queue(channel, "url").expect("queue url");
    let mut ids = Vec::new();
    let mut empty_rounds = 0;
    while empty_rounds < 2 {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            empty_rounds += 1;
            continue;
        }
        for m in messages {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("json");
            ids.push(body["message_id"].as_str().expect("message id").to_owned());
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    ids
}

#[tokio::test]
async fn a_batch_of_500_is_recorded_audited_and_published_once_in_a_few_round_trips() {
    use herald_shared::store::AUDIT_CHAINS;

    const N: usize = 500;
    let w = World::isolated().await;
    w.live_event(&[]).await;
    let recipients: Vec<Value> = (0..N)
        .map(|i| {
            json!({"to": format!("+26097{:07}", 2_000_000 + i),
                   "variables": {"guest_name": format!("Guest {i}"), "event_date": "12 Dec"}})
        })
        .collect();
    let request = || {
        w.event("send-api/send-batch")
            .header("idempotency-key", "batch-of-500")
            .body(json!({"category": "invitation", "channel": "sms", "recipients": recipients}))
    };
    w.counter.reset();
    let reply = w.ok(request()).await;
    let counts = w.counter.snapshot();
    let round_trips = w.counter.round_trips();
    eprintln!("a batch of {N}: {round_trips} round trips, {counts:?}");
    let sent = ids(&reply);
    assert_eq!(sent.len(), N);

    // Requests: two actions a message (record, entry) and one a chain in transactions of at
    // most 100, so at most one transaction a chain plus one per 49 messages; SNS takes ten
    // messages a call; the rest (idempotency key, snapshot, recipient gate) does not grow with
    // the number of transactions.
    let count = |op: &str| counts.get(op).copied().unwrap_or(0) as usize;
    let transactions = count("DynamoDB.TransactWriteItems");
    assert!(
        transactions <= AUDIT_CHAINS as usize + N.div_ceil(49),
        "{transactions} transactions: {counts:?}"
    );
    assert_eq!(count("SNS.PublishBatch"), N / 10, "{counts:?}");
    assert!(
        w.counter.total() as usize <= 20 + transactions + N / 10 + N / 20,
        "{counts:?}"
    );
    // Round trips: a constant and N/100 (ten PublishBatch calls at a time), however many
    // requests there are; one after another, 500 messages took 56.
    assert!(
        round_trips as usize <= 15 + N / 100,
        "{round_trips} round trips: {counts:?}"
    );

    // The same request again is answered from its idempotency record: nothing new.
    w.counter.reset();
    let (status, again) = {
        let r = w.call(request()).await;
        (r.status, r.body)
    };
    assert_eq!((status, &again), (202, &reply));
    assert_eq!(
        w.counter.snapshot().get("DynamoDB.TransactWriteItems"),
        None
    );

    // Each message published once.
    let mut published = drain(&w, "sms").await;
    published.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(published, expected, "every message published exactly once");

    // Each recorded once, audited once, and the chains verify.
    for id in &sent {
        assert_eq!(status_of(&w, id).await, "accepted");
    }
    let window = herald_shared::audit::Window::default();
    let log = herald_shared::audit::entries(w.app.audit.as_ref(), &w.tenant, window)
        .await
        .expect("audit entries");
    let mut accepted: Vec<String> = log
        .iter()
        .filter(|e| e.entry.action == "message.accepted")
        .map(|e| e.entry.target.clone())
        .collect();
    accepted.sort();
    let mut targets: Vec<String> = sent.iter().map(|id| format!("message/{id}")).collect();
    targets.sort();
    assert_eq!(accepted, targets, "one entry per message, none twice");
    let report =
        herald_shared::audit::verify(w.app.audit.as_ref(), &w.tenant, window, None, None, &|_| {})
            .await
            .expect("verification");
    assert!(report.intact(), "{report:?}");
}

async fn status_of(w: &World, id: &str) -> String {
    let stored = w
        .app
        .messages
        .message(&herald_shared::domain::message::MessageId::parse(id).expect("id"))
        .await
        .expect("read")
        .expect("stored");
    stored.message.status.as_str().to_owned()
}
