//! `herald audit verify` against the emulator: an untouched log verifies (exit 0); after one
//! entry is edited, one deleted, one inserted and two swapped directly in the table, it fails
//! (exit 1) and names each; an empty log or no stack is exit 2. `herald audit export` writes
//! every entry.

use std::collections::HashMap;
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;
use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::brand::Brand;
use herald_shared::store::dynamodb::{DynamoDb, TableNames};
use herald_shared::store::{Owner, Revisioned, TemplateStore as _};
use local_stack::Stack;

mod support;
use support::herald;

type Item = HashMap<String, AttributeValue>;

fn key(tenant: &str, chain: u32, seq: u64) -> Item {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("A#{tenant}#{chain:02}")),
        ),
        ("sk".to_owned(), AttributeValue::S(format!("E#{seq:012}"))),
    ])
}

/// Twelve brand changes of `tenant` (twelve entries in the brand's chain), through the store;
/// the audit table's name.
async fn twelve_brand_changes(stack: &Stack, aws: &aws_config::SdkConfig, tenant: &str) -> String {
    let tables = TableNames::from_vars(&|name| stack.env.get(name).cloned()).expect("tables");
    let audit_table = tables.audit.clone();
    let store = DynamoDb::new(aws_sdk_dynamodb::Client::new(aws), tables);
    let tenant = TenantId::parse(tenant).expect("tenant");
    let owner = Owner::Tenant(tenant.clone());
    for revision in 1..=12u32 {
        let brand = Revisioned {
            value: Brand {
                display_name: Some(format!("Acme {revision}")),
                ..Brand::default()
            },
            revision,
        };
        let audit = AuditEntry::by_system(
            "test",
            &tenant,
            &format!("req-{revision}"),
            "brand.updated",
            "tenant/brand".into(),
            None,
            Some(herald_shared::domain::audit::digest(&brand)),
        );
        store
            .put_brand(&owner, &brand, &audit)
            .await
            .expect("brand");
    }
    audit_table
}

#[tokio::test]
async fn tampering_is_named_and_fails_verification() {
    let stack = Stack::start().expect("the local stack starts");
    let aws = stack.sdk_config().await;
    // Twelve brand changes: twelve entries in the brand's chain.
    let audit_table = twelve_brand_changes(&stack, &aws, "acme-audit").await;
    let chain = herald_shared::domain::audit::chain_of("tenant/brand", 16);

    // A tenant with no log at all (a misspelt id, or a log deleted whole) cannot pass as intact.
    let (code, stdout, stderr) = herald(&stack, &["audit", "verify", "--tenant", "acme-audlt"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("no audit entries"), "{stderr}");
    let (code, _, _) = herald(
        &stack,
        &["audit", "verify", "--tenant", "acme-audlt", "--allow-empty"],
    );
    assert_eq!(code, 0);
    // Without the emulator's tables the CLI cannot run: exit code 2, not a verdict.
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["audit", "verify", "--tenant", "acme-audit"])
        .env_clear()
        .output()
        .expect("the CLI runs");
    assert_eq!(out.status.code(), Some(2));

    let (code, stdout, stderr) = herald(&stack, &["audit", "verify", "--tenant", "acme-audit"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("12 entries") && stdout.contains("intact"),
        "{stdout}"
    );
    // Entries and no anchor at all: the anchoring job is not running for this tenant.
    let (code, stdout, _) = herald(
        &stack,
        &[
            "audit",
            "verify",
            "--tenant",
            "acme-audit",
            "--max-anchor-age-hours",
            "2",
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("STALE"), "{stdout}");

    let export = std::env::temp_dir().join(format!("herald-audit-{}.jsonl", std::process::id()));
    let path = export.to_string_lossy().into_owned();
    let (code, _, stderr) = herald(
        &stack,
        &["audit", "export", "--tenant", "acme-audit", "--out", &path],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines = std::fs::read_to_string(&export).expect("export written");
    assert_eq!(lines.lines().count(), 12);
    let _ = std::fs::remove_file(&export);

    let db = aws_sdk_dynamodb::Client::new(&aws);
    let get = async |seq: u64| -> Item {
        db.get_item()
            .table_name(&audit_table)
            .set_key(Some(key("acme-audit", chain, seq)))
            .send()
            .await
            .expect("get")
            .item
            .expect("the entry exists")
    };
    let put = async |item: Item| {
        db.put_item()
            .table_name(&audit_table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put");
    };
    // Edit entry 3: someone else did it.
    let mut edited = get(3).await;
    edited.insert("actor".into(), AttributeValue::S("mallory".into()));
    put(edited).await;
    // Delete entry 6.
    db.delete_item()
        .table_name(&audit_table)
        .set_key(Some(key("acme-audit", chain, 6)))
        .send()
        .await
        .expect("delete");
    // Swap entries 8 and 9 (each one's content under the other's key).
    let (eight, nine) = (get(8).await, get(9).await);
    let mut moved_nine = nine.clone();
    moved_nine.insert("sk".into(), AttributeValue::S(format!("E#{:012}", 8)));
    let mut moved_eight = eight.clone();
    moved_eight.insert("sk".into(), AttributeValue::S(format!("E#{:012}", 9)));
    put(moved_nine).await;
    put(moved_eight).await;
    // Insert a 13th entry after the head, copied from entry 12 with a new id.
    let mut inserted = get(12).await;
    inserted.insert("sk".into(), AttributeValue::S(format!("E#{:012}", 13)));
    inserted.insert("seq".into(), AttributeValue::N("13".into()));
    inserted.insert(
        "id".into(),
        AttributeValue::S("01JFORGED000000000000000000".into()),
    );
    put(inserted).await;

    let (code, stdout, stderr) = herald(&stack, &["audit", "verify", "--tenant", "acme-audit"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    for named in [
        format!("chain {chain}: entry 3 ("),
        format!("chain {chain}: entry 6 was deleted"),
        format!("chain {chain}: entry 9 ("),
        "was moved to position 8".to_owned(),
        format!("chain {chain}: entry 8 ("),
        "was moved to position 9".to_owned(),
        "01JFORGED000000000000000000) was inserted".to_owned(),
    ] {
        assert!(stdout.contains(&named), "{named:?} not in:\n{stdout}");
    }
    assert!(stdout.contains("was edited"), "{stdout}");

    let (code, json, _) = herald(
        &stack,
        &["audit", "verify", "--tenant", "acme-audit", "--json"],
    );
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    let problems: Vec<&str> = report["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .flat_map(|c| c["problems"].as_array().into_iter().flatten())
        .filter_map(|p| p["problem"].as_str())
        .collect();
    for kind in ["edited", "missing", "reordered", "inserted"] {
        assert!(problems.contains(&kind), "{kind} not in {problems:?}");
    }
}

#[tokio::test]
async fn a_chain_cut_back_or_deleted_below_a_signed_anchor_fails_verification() {
    let stack = Stack::start().expect("the local stack starts");
    assert!(
        stack.env.contains_key("AUDIT_ANCHOR_KEY_ID"),
        "the stack has the template's anchor key"
    );
    let aws = stack.sdk_config().await;
    let audit_table = twelve_brand_changes(&stack, &aws, "acme-anchor").await;
    let chain = herald_shared::domain::audit::chain_of("tenant/brand", 16);

    // The scheduled job's work, by hand: an anchor for every scope that moved.
    let (code, stdout, stderr) = herald(&stack, &["audit", "anchor", "--all"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("\"anchored\":1"), "{stdout}");
    let (code, stdout, _) = herald(&stack, &["audit", "anchor", "--tenant", "acme-anchor"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("Unchanged"),
        "nothing moved since: {stdout}"
    );
    let (code, stdout, stderr) = herald(&stack, &["audit", "verify", "--tenant", "acme-anchor"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1 signed anchor(s) checked"), "{stdout}");
    let (code, stdout, _) = herald(
        &stack,
        &[
            "audit",
            "verify",
            "--tenant",
            "acme-anchor",
            "--max-anchor-age-hours",
            "2",
        ],
    );
    assert_eq!(code, 0, "anchored just now: {stdout}");
    let (code, stdout, _) = herald(
        &stack,
        &[
            "audit",
            "verify",
            "--tenant",
            "acme-audit-none",
            "--allow-empty",
            "--max-anchor-age-hours",
            "2",
        ],
    );
    assert_eq!(code, 0, "an empty log needs no anchor: {stdout}");

    // Entries 11 and 12 deleted, the head set back to entry 10: a consistent chain that only
    // the anchor can contradict.
    let db = aws_sdk_dynamodb::Client::new(&aws);
    for seq in [11, 12] {
        db.delete_item()
            .table_name(&audit_table)
            .set_key(Some(key("acme-anchor", chain, seq)))
            .send()
            .await
            .expect("delete");
    }
    let ten = db
        .get_item()
        .table_name(&audit_table)
        .set_key(Some(key("acme-anchor", chain, 10)))
        .send()
        .await
        .expect("get")
        .item
        .expect("entry 10");
    let head = HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("A#acme-anchor#{chain:02}")),
        ),
        ("sk".to_owned(), AttributeValue::S("HEAD".into())),
        ("seq".to_owned(), AttributeValue::N("10".into())),
        ("hash".to_owned(), ten["hash"].clone()),
    ]);
    db.put_item()
        .table_name(&audit_table)
        .set_item(Some(head))
        .send()
        .await
        .expect("head rewound");
    let (code, stdout, _) = support::herald_with(
        &stack,
        &["audit", "verify", "--tenant", "acme-anchor"],
        &["AUDIT_ANCHOR_KEY_ID"],
    );
    assert_eq!(
        (code, stdout.contains("intact")),
        (0, true),
        "the chains alone cannot tell a cut-back tail"
    );
    let (code, stdout, stderr) = herald(&stack, &["audit", "verify", "--tenant", "acme-anchor"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "chain {chain}: entry 12, signed for by anchor 1, is gone or changed"
        )),
        "{stdout}"
    );

    // The whole log deleted, heads included: still not "nothing to verify".
    let items = db
        .scan()
        .table_name(&audit_table)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    for item in items.into_iter().filter(|i| {
        i.get("pk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.starts_with("A#acme-anchor#"))
    }) {
        let key = HashMap::from([
            ("pk".to_owned(), item["pk"].clone()),
            ("sk".to_owned(), item["sk"].clone()),
        ]);
        db.delete_item()
            .table_name(&audit_table)
            .set_key(Some(key))
            .send()
            .await
            .expect("delete");
    }
    let (code, stdout, stderr) = herald(&stack, &["audit", "verify", "--tenant", "acme-anchor"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("signed for by anchor 1"), "{stdout}");

    // An anchor whose statement was changed no longer carries KMS's signature.
    let anchor_key = HashMap::from([
        ("pk".to_owned(), AttributeValue::S("N#acme-anchor".into())),
        ("sk".to_owned(), AttributeValue::S(format!("N#{:012}", 1))),
    ]);
    let mut anchor = db
        .get_item()
        .table_name(&audit_table)
        .set_key(Some(anchor_key))
        .send()
        .await
        .expect("get")
        .item
        .expect("anchor 1");
    let Some(AttributeValue::M(signed)) = anchor.get_mut("anchor") else {
        panic!("an anchor item: {anchor:?}");
    };
    let Some(AttributeValue::M(statement)) = signed.get_mut("anchor") else {
        panic!("a signed anchor: {signed:?}");
    };
    statement.insert(
        "at".into(),
        AttributeValue::S("2026-01-01T00:00:00Z".into()),
    );
    db.put_item()
        .table_name(&audit_table)
        .set_item(Some(anchor))
        .send()
        .await
        .expect("anchor changed");
    let (code, stdout, stderr) = herald(&stack, &["audit", "verify", "--tenant", "acme-anchor"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("anchor 1: the signature does not verify"),
        "{stdout}"
    );
}
