//! `herald report compliance` against the emulator: messages and a configuration change
//! written through the stores, then the report as JSON on stdout and as CSV into a file; a bad
//! period is refused naming the flag.

use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::brand::Brand;
use herald_shared::domain::identity::{Caller, Role};
use herald_shared::domain::message::{Message, MessageId, MessageStatus, StatusReport};
use herald_shared::store::dynamodb::{DynamoDb, TableNames};
use herald_shared::store::{MessageStore as _, Owner, Revisioned, TemplateStore as _};
use local_stack::Stack;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod support;
use support::herald;

/// An SMS record as the send API writes it (fields it leaves to their defaults left out).
fn sms(tenant: &TenantId, n: usize, at: OffsetDateTime) -> Message {
    serde_json::from_value(json!({
        "id": MessageId::derive(tenant, "gala-2026", "report-cli", n),
        "tenant": tenant, "event": "gala-2026", "snapshot_version": 1,
        "category": "invitation", "channel": "sms",
        "recipient": "+260971234567", "recipient_key": "rk-report-cli",
        "content": {"text": "You're invited", "segments": 1},
        "status": "accepted",
        "created_at": at.format(&Rfc3339).expect("time"),
        "request_id": "req-send",
    }))
    .expect("a message")
}

#[tokio::test]
async fn the_cli_writes_the_report_as_json_and_csv() {
    let stack = Stack::start().expect("the local stack starts");
    let aws = stack.sdk_config().await;
    let tables = TableNames::from_vars(&|name| stack.env.get(name).cloned()).expect("tables");
    let store = DynamoDb::new(aws_sdk_dynamodb::Client::new(&aws), tables);
    let tenant = TenantId::parse("acme-report").expect("tenant");
    let now = OffsetDateTime::now_utc();

    for n in 0..3 {
        let m = sms(&tenant, n, now);
        assert!(
            store
                .create(
                    &m,
                    &herald_shared::domain::audit::AuditEntry::message_accepted(
                        "test",
                        herald_shared::domain::identity::Role::System,
                        &m,
                        "req"
                    )
                )
                .await
                .expect("created")
        );
    }
    // Last year's message is outside the period.
    let old = sms(&tenant, 9, now - time::Duration::days(400));
    assert!(
        store
            .create(
                &old,
                &herald_shared::domain::audit::AuditEntry::message_accepted(
                    "test",
                    herald_shared::domain::identity::Role::System,
                    &old,
                    "req"
                )
            )
            .await
            .expect("created")
    );
    let failed = AuditEntry::by_system(
        "herald:dispatch",
        &tenant,
        "req-dispatch",
        "message.failed",
        format!("message/{}", sms(&tenant, 2, now).id),
        Some("accepted".into()),
        Some("failed".into()),
    );
    assert!(
        store
            .advance(
                &sms(&tenant, 2, now).id,
                &StatusReport {
                    status: MessageStatus::Failed,
                    reason: Some("21211: invalid 'To' phone number".into()),
                    at: Some(now),
                    cost: None,
                },
                &failed,
            )
            .await
            .expect("advanced")
    );
    let caller = Caller {
        subject: "user-ada".into(),
        role: Role::TenantAdmin,
        tenant: Some(tenant.clone()),
    };
    let change = AuditEntry::new(
        &caller,
        "req-brand",
        "brand.updated",
        "tenant/brand".into(),
        None,
        None,
    );
    store
        .put_brand(
            &Owner::Tenant(tenant.clone()),
            &Revisioned {
                value: Brand::default(),
                revision: 1,
            },
            &change,
        )
        .await
        .expect("brand");

    let from = (now - time::Duration::days(1))
        .format(&Rfc3339)
        .expect("time");
    let to = (now + time::Duration::days(1))
        .format(&Rfc3339)
        .expect("time");
    let args = [
        "report",
        "compliance",
        "--tenant",
        "acme-report",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let (code, stdout, stderr) = herald(&stack, &args);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(report["totals"]["messages"], 3, "{report}");
    assert_eq!(report["totals"]["failures"], 1);
    assert_eq!(
        report["failures"][0]["reason"],
        "21211: invalid 'To' phone number"
    );
    let changes = report["configuration_changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "the person's change, not dispatch's");
    assert_eq!(
        (&changes[0]["actor"], &changes[0]["action"]),
        (&json!("user-ada"), &json!("brand.updated"))
    );
    assert!(stderr.contains("3 messages"), "{stderr}");

    let file = std::env::temp_dir().join(format!("herald-report-{}.csv", std::process::id()));
    let path = file.to_string_lossy().into_owned();
    let mut csv_args = args.to_vec();
    csv_args.extend(["--format", "csv", "--out", &path]);
    let (code, _, stderr) = herald(&stack, &csv_args);
    assert_eq!(code, 0, "{stderr}");
    let csv = std::fs::read_to_string(&file).expect("CSV written");
    let _ = std::fs::remove_file(&file);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(herald_shared::reports::CSV_COLUMNS.join(",").as_str())
    );
    assert!(
        csv.lines()
            .any(|l| l.contains(",messages,,sms,accepted,,,2,")),
        "{csv}"
    );

    let (code, _, stderr) = herald(
        &stack,
        &[
            "report",
            "compliance",
            "--tenant",
            "acme-report",
            "--from",
            &to,
            "--to",
            &from,
        ],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("--to"), "{stderr}");
}
