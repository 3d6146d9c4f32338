//! Delivery receipts end to end against the emulator: the delivery-webhooks handler served over
//! HTTP on 127.0.0.1 as Herald's public URL, providers (stand-ins, or the test playing one)
//! calling it the way they document, and the message records, opt-outs and suppressions in the
//! emulator's tables.

use std::time::Duration;

use herald_shared::providers::twilio;
use serde_json::{Value, json};

use provider_standins::DeliveryOutcome;

use crate::harness::{TWILIO_SID, TWILIO_TOKEN, World};

async fn message(w: &World, id: &str) -> Value {
    w.ok(w.event("send-api/get-message").path("messageId", id))
        .await
}

fn first_id(reply: &Value) -> String {
    reply["messages"][0]["id"]
        .as_str()
        .expect("a message id")
        .to_owned()
}

/// Posts a form to a Twilio receipt URL, signed as Twilio signs.
async fn post_twilio(url: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-twilio-signature",
            twilio::signature(TWILIO_TOKEN, url, &pairs),
        )
        .body(body)
        .send()
        .await
        .expect("the receipt server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn stop_from_a_recipient_refuses_the_next_send_to_them() {
    let mut w = World::isolated().await;
    w.serve_receipts().await;
    w.live_event(&[]).await;
    let url = w.receipt_route("twilio")["url"]
        .as_str()
        .expect("Twilio's receipt URL")
        .to_owned();
    let stop = [
        ("AccountSid", TWILIO_SID),
        ("ApiVersion", "2010-04-01"),
        ("Body", "STOP"),
        ("From", "+260971234567"),
        ("MessageSid", "SM0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("To", "+260211555010"),
    ];
    let (status, reply) = post_twilio(&url, &stop).await;
    assert_eq!(
        (status, reply["opted_out"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );

    let refused = w.call(w.event("send-api/send-message")).await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (422, Some("recipient_opted_out")),
        "{}",
        refused.text
    );

    // The opt-out is kept under the recipient key: no table holds the number for it.
    let recipients = async || {
        w.dynamodb()
            .scan()
            .table_name(&w.stack.env["RECIPIENTS_TABLE"])
            .send()
            .await
            .expect("scan")
    };
    let scan = recipients().await;
    assert_eq!(scan.count(), 1);
    assert!(!format!("{:?}", scan.items()).contains("260971234567"));

    // A forged STOP for someone else changes nothing.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("x-twilio-signature", "Zm9yZ2Vk")
        .form(&[("Body", "STOP"), ("From", "+260971234568")])
        .send()
        .await
        .expect("answer");
    assert_eq!(forged.status().as_u16(), 401);
    assert_eq!(
        recipients().await.count(),
        1,
        "the forged STOP recorded nothing"
    );
}

#[tokio::test]
async fn a_hard_bounce_suppresses_the_address_for_the_next_send() {
    let mut w = World::isolated().await;
    w.serve_receipts().await;
    w.live_event(&[]).await;
    let email = json!({"category": "invitation", "channel": "email", "to": "nobody@guests.example",
        "variables": {"guest_name": "Nobody", "event_date": "12 Dec"}});
    let sent = w
        .ok(w
            .event("send-api/send-message")
            .header("idempotency-key", "bounce-1")
            .body(email.clone()))
        .await;
    let id = first_id(&sent);
    let d = w.dispatcher();
    w.deliver(&d, "email", 1).await;
    let record = message(&w, &id).await;
    let brevo_id = record["provider_message_id"]
        .as_str()
        .expect("Brevo's message id")
        .to_owned();

    let route = w.receipt_route("brevo");
    let url = route["url"].as_str().expect("Brevo's receipt URL");
    let secret = route["secret"].as_str().expect("shown at creation");
    let bounce = json!({"event": "hard_bounce", "email": "nobody@guests.example", "id": 1148231,
        "message-id": brevo_id, "ts_event": 1_795_341_598, "reason": "550 5.1.1 <nobody@guests.example>: User unknown"});
    let post = |user: &str, password: &str| {
        reqwest::Client::new()
            .post(url)
            .basic_auth(user, Some(password))
            .json(&bounce)
            .send()
    };
    assert_eq!(
        post("herald", "not-the-secret")
            .await
            .expect("answer")
            .status()
            .as_u16(),
        401
    );
    let reply: Value = post("herald", secret)
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (reply["advanced"].as_u64(), reply["suppressed"].as_u64()),
        (Some(1), Some(1)),
        "{reply}"
    );
    let record = message(&w, &id).await;
    assert_eq!(record["status"], "bounced", "{record}");
    assert!(
        !record.to_string().contains("guests.example>"),
        "the stored reason is redacted: {record}"
    );

    let refused = w
        .call(
            w.event("send-api/send-message")
                .header("idempotency-key", "bounce-2")
                .body(email),
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (422, Some("recipient_suppressed")),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn twilio_status_callbacks_bring_messages_to_their_final_status() {
    let mut w = World::isolated().await;
    w.serve_receipts().await;
    w.live_event(&[]).await;
    // Dispatch gives Twilio the configuration's receipt URL; the stand-in calls it back, signed.
    let d = w.dispatcher();
    let sent = w.ok(w.event("send-api/send-message")).await;
    let delivered = first_id(&sent);
    w.deliver(&d, "sms", 1).await;
    assert!(
        eventually(20, async || message(&w, &delivered).await["status"]
            == "delivered")
        .await,
        "{}",
        message(&w, &delivered).await
    );
    let callbacks = w
        .standins
        .wait_for_status_callbacks(2, Duration::from_secs(10))
        .await
        .expect("sent and delivered were posted");
    assert!(
        callbacks.iter().all(|c| c.http_status == Some(200)),
        "Herald accepted both: {callbacks:?}"
    );
    // The callbacks carry no price: on "delivered" Herald asked Twilio's Message resource what
    // it billed (one segment, USD 0.0079), in place of the estimate made at send.
    let record = message(&w, &delivered).await;
    assert_eq!(
        record["cost"],
        json!({"amount_micros": 7900, "currency": "USD"}),
        "{record}"
    );
    assert_ne!(record["estimated_cost"], record["cost"]);

    // The carrier could not deliver the next one: failed, with Twilio's code as the reason.
    w.standins
        .twilio_outcome_next(1, DeliveryOutcome::Undelivered { error_code: 30003 });
    let second = w
        .ok(w
            .event("send-api/send-message")
            .header("idempotency-key", "undelivered-1")
            .body(
                json!({"category": "invitation", "channel": "sms", "to": "+260971234568",
                "variables": {"guest_name": "Bo", "event_date": "12 Dec"}}),
            ))
        .await;
    let undelivered = first_id(&second);
    w.deliver(&d, "sms", 1).await;
    assert!(
        eventually(20, async || message(&w, &undelivered).await["status"]
            == "failed")
        .await,
        "{}",
        message(&w, &undelivered).await
    );
    let record = message(&w, &undelivered).await;
    assert!(record.to_string().contains("30003"), "{record}");
    assert_eq!(
        record["cost"],
        json!({"amount_micros": 7900, "currency": "USD"}),
        "an undelivered message was handed to a carrier: billed all the same"
    );
}

/// Polls until `check` holds, at most `seconds`.
async fn eventually(seconds: u64, mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..seconds * 10 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
