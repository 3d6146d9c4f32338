//! The whole wizard against the emulator: tenant defaults, event overrides, completion into an
//! immutable snapshot, re-completion, rollback, idempotent repeats, and invalid configurations.

use provider_standins::{Fault, Provider};
use serde_json::json;

use crate::harness::{World, provider_body};

#[tokio::test]
async fn wizard_completes_versions_and_rolls_back() {
    let w = World::new().await;
    let ids = w.configured_event().await;
    // Event overrides: its own Africa's Talking account first, the tenant's Twilio demoted.
    let own = w
        .ok(w
            .event("config-api/create-event-provider")
            .body(provider_body("africas_talking")))
        .await;
    w.ok(w
        .event("config-api/override-tenant-provider-for-event")
        .path("providerId", &ids["twilio"]))
        .await;
    w.ok(w.event("config-api/put-event-template")).await;
    w.ok(w.event("config-api/put-event-brand")).await;

    let first = w.ok(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!(first["version"], 1);
    assert_eq!(first["previous_version"], json!(null));
    let checks = first["provider_checks"].as_array().expect("checks");
    assert_eq!(
        checks.len(),
        3,
        "every active provider of every channel in use is tested: {checks:?}"
    );
    assert!(
        checks.iter().all(|c| c["outcome"] == "passed"),
        "{checks:?}"
    );
    // The live checks really reached the providers.
    assert!(!w.standins.requests_for(Provider::Twilio).is_empty());
    assert!(!w.standins.requests_for(Provider::AfricasTalking).is_empty());
    assert!(!w.standins.requests_for(Provider::Brevo).is_empty());

    // The snapshot holds the resolution with provenance.
    let snapshot = w.ok(w.event("wizard-completion/get-snapshot")).await;
    let sms = &snapshot["configuration"]["channels"]["sms"]["providers"];
    assert_eq!(sms[0]["id"], own["id"]);
    assert_eq!(
        sms[1]["priority"],
        json!({"value": 2, "source": "event", "overrides": "tenant"})
    );

    // Same key again: the first result, not a new version.
    let again = w.call(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!((again.status, &again.body), (201, &first));
    assert_eq!(
        again.headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );

    // A change and a new completion: version 2 becomes active.
    w.ok(w.event("config-api/delete-event-template")).await;
    let second = w
        .ok(w
            .event("wizard-completion/complete-wizard")
            .header("idempotency-key", "attempt-2"))
        .await;
    assert_eq!(
        (
            second["version"].as_u64(),
            second["previous_version"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let listed = w.ok(w.event("wizard-completion/list-snapshots")).await;
    assert_eq!(
        listed["items"]
            .as_array()
            .and_then(|i| i.iter().find(|s| s["active"] == true))
            .map(|s| s["version"].clone()),
        Some(2.into())
    );

    // Rollback re-activates version 1, unchanged.
    let rolled = w.ok(w.event("wizard-completion/activate-snapshot")).await;
    assert_eq!(rolled["version"], 1);
    let listed = w.ok(w.event("wizard-completion/list-snapshots")).await;
    assert_eq!(
        listed["items"]
            .as_array()
            .and_then(|i| i.iter().find(|s| s["active"] == true))
            .map(|s| s["version"].clone()),
        Some(1.into())
    );
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(2));
    let v1 = w.ok(w.event("wizard-completion/get-snapshot")).await;
    assert_eq!(v1["digest"], first["digest"]);

    // Every change and every activation left an audit entry, in chains that verify.
    let window = herald_shared::audit::Window::default();
    let entries = herald_shared::audit::entries(w.app.audit.as_ref(), &w.tenant, window)
        .await
        .expect("audit entries");
    let actions: Vec<String> = entries.iter().map(|e| e.entry.action.clone()).collect();
    let report =
        herald_shared::audit::verify(w.app.audit.as_ref(), &w.tenant, window, None, None, &|_| {})
            .await
            .expect("verification");
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.entries as usize, entries.len());
    for expected in [
        "event.created",
        "provider.created",
        "provider.overridden",
        "template.published",
        "template.removed",
        "brand.updated",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "no {expected} in {actions:?}"
        );
    }
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "snapshot.activated")
            .count(),
        3,
        "{actions:?}"
    );
}

#[tokio::test]
async fn invalid_configuration_reports_every_problem_and_activates_nothing() {
    let w = World::new().await;
    w.ok(w.event("config-api/put-event-settings")).await;
    // SMS: a Twilio account whose token the provider refuses; email: no provider at all.
    let mut wrong = provider_body("twilio");
    wrong["credentials"]["auth_token"] = json!("not-the-right-token-1234");
    let twilio = w.tenant_provider(wrong).await;
    // invitation/sms renders; rsvp_confirmation/sms uses an unset brand value; no email templates.
    w.ok(w.event("config-api/put-tenant-template").body(json!({"body": "Hi {{ guest_name }}", "variables": [{"name": "guest_name", "sample": "Ada"}]}))).await;
    w.ok(w
        .event("config-api/put-tenant-template")
        .path("category", "rsvp_confirmation")
        .body(json!({"body": "See you, {{ brand.display_name }}", "variables": []})))
        .await;

    let reply = w.call(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], "configuration_invalid");
    let problems: Vec<(String, String)> = reply.body["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap_or_default().to_owned(),
                p["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        (
            "provider_credentials_rejected",
            format!("providers.sms.{twilio}"),
        ),
        ("provider_missing", "providers.email".to_owned()),
        (
            "template_invalid",
            "templates.rsvp_confirmation.sms".to_owned(),
        ),
        ("template_missing", "templates.invitation.email".to_owned()),
        (
            "template_missing",
            "templates.rsvp_confirmation.email".to_owned(),
        ),
        // Invitations are marketing: email needs the sender's legal name and postal address.
        ("compliance_block_missing", "brand.legal_name".to_owned()),
        (
            "compliance_block_missing",
            "brand.postal_address".to_owned(),
        ),
    ];
    for (code, field) in &expected {
        assert!(
            problems.iter().any(|(c, f)| c == code && f == field),
            "missing {code} at {field} in {problems:?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:?}");
    assert_eq!(
        w.call(w.event("wizard-completion/list-snapshots"))
            .await
            .status,
        404,
        "nothing was activated"
    );

    // The same key works again once the configuration is fixed.
    w.ok(w
        .event("config-api/update-tenant-provider")
        .path("providerId", &twilio)
        .body(provider_body("twilio")))
        .await;
    w.ok(w.event("config-api/put-tenant-brand")).await;
    w.tenant_provider(provider_body("brevo")).await;
    for category in ["invitation", "rsvp_confirmation"] {
        w.ok(w
            .event("config-api/put-tenant-email-template")
            .path("category", category))
            .await;
    }
    let done = w.ok(w.event("wizard-completion/complete-wizard")).await;
    assert_eq!(done["version"], 1);
}

#[tokio::test]
async fn an_unreachable_provider_is_reported_and_a_working_fallback_only_warns() {
    let w = World::new().await;
    w.configured_event().await;
    w.tenant_provider(provider_body("smtp")).await;
    // Brevo fails (503) but the SMTP fallback works: completion passes with a warning.
    w.standins.fail_next(Provider::Brevo, 1, Fault::Status(503));
    let done = w.ok(w.event("wizard-completion/complete-wizard")).await;
    let warnings = done["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["code"], "provider_unreachable");

    // Twilio is the only SMS provider: when it is down, completion fails and says why.
    w.standins
        .fail_next(Provider::Twilio, 1, Fault::Status(500));
    let reply = w
        .call(
            w.event("wizard-completion/complete-wizard")
                .header("idempotency-key", "second"),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.body["error"]["problems"][0]["code"],
        "provider_unreachable"
    );
}

#[tokio::test]
async fn concurrent_completions_with_one_key_activate_once() {
    let w = World::new().await;
    w.configured_event().await;
    let (a, b) = tokio::join!(
        w.call(w.event("wizard-completion/complete-wizard")),
        w.call(w.event("wizard-completion/complete-wizard"))
    );
    let statuses = [a.status, b.status];
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let listed = w.ok(w.event("wizard-completion/list-snapshots")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
}
