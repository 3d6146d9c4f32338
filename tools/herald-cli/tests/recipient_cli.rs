//! `herald recipient export|erase` against the emulator: the recipient key comes from the
//! stack's recipient-key secret (the same one the functions use), the export has the consent
//! recorded for the address, and erasure digests its evidence.

use herald_shared::App;
use herald_shared::app::AppConfig;
use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::consent::{
    ConsentRecord, ConsentScope, ConsentSource, ConsentStatus, LegalBasis,
};
use herald_shared::domain::recipient::Recipient;
use herald_shared::domain::{CategoryClass, Channel};
use herald_shared::store::LedgerChange;
use local_stack::Stack;

mod support;
use support::herald;

const ADA: &str = "+260971234567";

#[tokio::test]
async fn export_and_erasure_find_the_recipient_under_the_deployments_key() {
    let stack = Stack::start().expect("the local stack starts");
    let aws = stack.sdk_config().await;
    let config = AppConfig::from_vars(&|name| stack.env.get(name).cloned()).expect("config");
    let app = App::new(&aws, config, None);
    let tenant = TenantId::parse("acme-cli").expect("tenant");
    let ada = Recipient::parse(Channel::Sms, ADA).expect("phone");
    let key = app.recipient_key(&tenant, &ada).await.expect("keyed");

    let record = ConsentRecord {
        id: ConsentRecord::new_id(),
        channel: Channel::Sms,
        scope: ConsentScope::Class(CategoryClass::Marketing),
        status: ConsentStatus::Granted,
        legal_basis: LegalBasis::Consent,
        source: ConsentSource::parse("signup_form").expect("source"),
        evidence: Some("signed form #4411".into()),
        at: time::OffsetDateTime::now_utc(),
        recorded_by: "user-ada".into(),
        request_id: "req-cli".into(),
    };
    let audit = AuditEntry::by_system(
        "test",
        &tenant,
        "req-cli",
        "recipient.consent_granted",
        format!("recipient/{key}"),
        None,
        None,
    );
    let change = LedgerChange {
        consents: vec![record],
        preferences: None,
    };
    app.consents
        .record(&tenant, &key, &change, &audit)
        .await
        .expect("recorded");

    let args = ["--tenant", "acme-cli", "--channel", "sms", "--address", ADA];
    let (code, stdout, stderr) = herald(&stack, &[&["recipient", "export"][..], &args].concat());
    assert_eq!(code, 0, "{stderr}");
    let export: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(export["recipient_key"], key.as_str());
    assert_eq!(export["history"][0]["evidence"], "signed form #4411");
    assert!(
        !stderr.contains("260971234567"),
        "the address is never echoed"
    );

    let (code, stdout, stderr) = herald(&stack, &[&["recipient", "erase"][..], &args].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"complete\": true"), "{stdout}");
    let ledger = app.consents.ledger(&tenant, &key).await.expect("ledger");
    let evidence = ledger.history[0].evidence.clone().unwrap_or_default();
    assert!(evidence.starts_with("sha256:"), "{evidence}");

    // Without the deployment's key the CLI cannot know whom it is asked about: exit code 2.
    let (code, _, stderr) = support::herald_with(
        &stack,
        &[&["recipient", "export"][..], &args].concat(),
        &["RECIPIENT_KEY_SECRET_ARN"],
    );
    assert_eq!(code, 2, "{stderr}");
}
