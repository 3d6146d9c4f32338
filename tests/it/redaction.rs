//! Credentials are write-only: never in a response, never in a log line, never in plain text
//! in DynamoDB.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::harness::{SECRETS, World, logs, provider_body};

#[tokio::test]
async fn secrets_never_leave_in_responses_logs_or_storage() {
    let w = World::new().await;
    let mut bodies = Vec::new();
    let ids = w.configured_event().await;
    for kind in [
        "africas_talking",
        "meta_whatsapp",
        "twilio_whatsapp",
        "smtp",
    ] {
        let created = w
            .call(
                w.event("config-api/create-tenant-provider")
                    .body(provider_body(kind)),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.body["id"].as_str().expect("id").to_owned();
        bodies.push(created.text);
        bodies.push(
            w.call(
                w.event("config-api/get-tenant-provider")
                    .path("providerId", &id),
            )
            .await
            .text,
        );
        bodies.push(
            w.call(
                w.event("config-api/test-tenant-provider")
                    .path("providerId", &id),
            )
            .await
            .text,
        );
    }
    bodies.push(
        w.call(w.event("config-api/list-tenant-providers"))
            .await
            .text,
    );
    bodies.push(
        w.call(w.event("config-resolution/get-event-configuration"))
            .await
            .text,
    );
    bodies.push(
        w.call(w.event("wizard-completion/complete-wizard"))
            .await
            .text,
    );
    bodies.push(w.call(w.event("wizard-completion/get-snapshot")).await.text);
    bodies.push(
        w.call(
            w.event("config-api/test-tenant-provider")
                .path("providerId", &ids["twilio"]),
        )
        .await
        .text,
    );

    let logged = String::from_utf8_lossy(&logs().lock().expect("logs")).to_string();
    assert!(logged.contains("provider tested"), "the log capture works");
    for secret in SECRETS {
        for body in &bodies {
            assert!(
                !body.contains(secret),
                "a response carries a secret: {body}"
            );
        }
        assert!(!logged.contains(secret), "a log line carries a secret");
    }
    for body in &bodies {
        assert!(
            !body.contains("ciphertext") && !body.contains("encrypted_data_key"),
            "sealed credentials in a response: {body}"
        );
    }

    // At rest: only ciphertext.
    let scan = w
        .dynamodb()
        .scan()
        .table_name(&w.stack.env["PROVIDERS_TABLE"])
        .send()
        .await
        .expect("scan");
    let stored = format!("{:?}", scan.items());
    assert!(
        stored.contains(&w.tenant),
        "the tenant's providers are stored"
    );
    for secret in SECRETS {
        assert!(!stored.contains(secret), "a secret is stored in plain text");
    }
    let twilio = scan
        .items()
        .iter()
        .find(|i| i.get("sk") == Some(&AttributeValue::S(format!("PROVIDER#{}", ids["twilio"]))))
        .expect("item");
    let record = twilio
        .get("record")
        .and_then(|r| r.as_m().ok())
        .expect("record");
    let credentials = record
        .get("credentials")
        .and_then(|c| c.as_m().ok())
        .expect("credentials");
    assert!(
        credentials.contains_key("ciphertext") && credentials.contains_key("encrypted_data_key")
    );
}
