//! Live credential checks of every provider kind: against the stand-ins (HTTP providers), a
//! real SMTP server, and SES/SNS in the emulator.

use provider_standins::{Fault, Provider};
use serde_json::json;

use crate::harness::{World, provider_body};

async fn outcome(w: &World, body: serde_json::Value) -> String {
    let id = w.tenant_provider(body).await;
    let check = w
        .ok(w
            .event("config-api/test-tenant-provider")
            .path("providerId", &id))
        .await;
    check["outcome"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn good_credentials_pass_and_bad_ones_are_rejected() {
    let w = World::new().await;
    let secret_fields = [
        ("twilio", "auth_token"),
        ("twilio_whatsapp", "auth_token"),
        ("africas_talking", "api_key"),
        ("brevo", "api_key"),
        ("meta_whatsapp", "access_token"),
        ("smtp", "password"),
    ];
    for (kind, field) in secret_fields {
        assert_eq!(
            outcome(&w, provider_body(kind)).await,
            "passed",
            "{kind} with good credentials"
        );
        let mut bad = provider_body(kind);
        bad["credentials"][field] = json!("wrong-secret-000000");
        assert_eq!(
            outcome(&w, bad).await,
            "rejected",
            "{kind} with a wrong {field}"
        );
    }
}

#[tokio::test]
async fn outages_are_unreachable_not_rejected() {
    let w = World::new().await;
    w.standins
        .fail_next(Provider::Twilio, 1, Fault::Status(503));
    assert_eq!(outcome(&w, provider_body("twilio")).await, "unreachable");
    w.standins.fail_next(Provider::Brevo, 1, Fault::Status(429));
    assert_eq!(outcome(&w, provider_body("brevo")).await, "unreachable");
    let mut nowhere = provider_body("smtp");
    nowhere["settings"]["port"] = json!(1);
    assert_eq!(outcome(&w, nowhere).await, "unreachable");
}

#[tokio::test]
async fn ses_needs_a_verified_sender_and_sns_answers() {
    let w = World::new().await;
    let ses = aws_sdk_sesv2::Client::new(&w.aws);
    let mut body = provider_body("ses");
    let domain = format!("{}.example", w.tenant);
    body["settings"]["from_address"] = json!(format!("events@{domain}"));
    assert_eq!(
        outcome(&w, body.clone()).await,
        "rejected",
        "no identity yet"
    );
    ses.create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("identity created");
    assert_eq!(outcome(&w, body).await, "passed");
    assert_eq!(outcome(&w, provider_body("sns")).await, "passed");
}
