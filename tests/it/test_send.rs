//! The wizard's test send against the emulator: the draft configuration's Twilio provider (the
//! stand-in) gets one real message, the record is marked as a test and listed as one, and the
//! hourly quota, counted in DynamoDB, refuses the next with 429 and `Retry-After`, sending and
//! writing nothing.

use provider_standins::Provider;
use serde_json::Value;

use crate::harness::World;

async fn listed(w: &World) -> Vec<Value> {
    let mut request = w.event("send-api/list-messages");
    request.0["queryStringParameters"] = serde_json::json!({});
    request.0["rawQueryString"] = serde_json::json!("");
    w.ok(request).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_test_send_reaches_the_provider_is_listed_as_a_test_and_the_quota_holds() {
    let w = World::isolated_with(&["TestSendHourlyQuota=2"]).await;
    w.configured_event().await;
    let first = w.ok(w.event("send-api/test-event-template")).await;
    assert_eq!(first["configuration"], "draft");
    assert_eq!(first["message"]["status"], "sent", "{first}");
    assert_eq!(first["message"]["test"], true);
    let twilio = w.standins.sent_messages_for(Provider::Twilio);
    assert_eq!(twilio.len(), 1);
    assert_eq!(twilio[0].to, "+260971234567");

    let items = listed(&w).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["id"], first["message"]["id"]);
    assert_eq!(items[0]["test"], true);
    assert_eq!(items[0]["provider"], first["message"]["provider"]);

    w.ok(w.event("send-api/test-event-template")).await;
    let refused = w.call(w.event("send-api/test-event-template")).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "quota_exceeded");
    let retry: u64 = refused
        .headers
        .get("retry-after")
        .and_then(|r| r.parse().ok())
        .expect("Retry-After");
    assert!((1..=3600).contains(&retry));
    assert_eq!(w.standins.sent_messages_for(Provider::Twilio).len(), 2);
    assert_eq!(
        listed(&w).await.len(),
        2,
        "the refused one was not recorded"
    );
}
