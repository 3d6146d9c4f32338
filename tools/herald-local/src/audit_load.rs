//! `herald-local audit-load --appends N [--concurrency C] [--verify-entries M]`: measures the
//! audit log against the emulator (provisioned from the template). Appends: N audited writes
//! (an opt-out each: the item and its audit entry in one transaction, chained) from C
//! concurrent writers, each with a store of its own as separate Lambda containers have, once
//! spread over a tenant's chains (distinct targets, as messages are)
//! and once all on one chain (one target), reporting appends per second and the transaction
//! attempts each append took. Verification: M chained entries restored into the table, then
//! the whole tenant verified as `herald audit verify` does, timed. Bounded: N and M are capped.

use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use futures::stream::{self, StreamExt as _};
use herald_shared::audit::{self, Window};
use herald_shared::domain::audit::{AuditEntry, ChainHead, ChainedEntry, chain_of};
use herald_shared::domain::provider::ProviderKind;
use herald_shared::domain::suppression::{Block, BlockKind};
use herald_shared::domain::{Channel, TenantId};
use herald_shared::observability::AwsRequestCounter;
use herald_shared::store::dynamodb::{DynamoDb, TableNames};
use herald_shared::store::{AUDIT_CHAINS, RecipientStore as _};
use time::OffsetDateTime;

pub const MAX_APPENDS: usize = 20_000;
pub const MAX_VERIFY_ENTRIES: usize = 1_000_000;

pub async fn run(appends: usize, concurrency: usize, verify_entries: usize) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_APPENDS).contains(&appends),
        "--appends must be 1-{MAX_APPENDS}"
    );
    ensure!(
        (1..=256).contains(&concurrency),
        "--concurrency must be 1-256"
    );
    ensure!(
        verify_entries <= MAX_VERIFY_ENTRIES,
        "--verify-entries must be at most {MAX_VERIFY_ENTRIES}"
    );
    let stack = local_stack::Stack::start()?;
    let aws = stack.sdk_config().await;
    let counter = AwsRequestCounter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(counter.clone())
            .build(),
    );
    let tables = TableNames::from_vars(&|name| stack.env.get(name).cloned())?;
    let store = Arc::new(DynamoDb::new(client.clone(), tables.clone()));
    // One store per writer, as each Lambda container has its own (head cache and per-chain
    // turn-taking are per container): writers contend as containers do.
    let writers: Vec<Arc<DynamoDb>> = (0..concurrency)
        .map(|_| Arc::new(DynamoDb::new(client.clone(), tables.clone())))
        .collect();

    for (label, tenant, one_chain) in [
        ("spread over the tenant's chains", "load-spread", false),
        ("all on one chain", "load-hot", true),
    ] {
        let tenant = TenantId::parse(tenant)?;
        counter.reset();
        let started = Instant::now();
        let results: Vec<anyhow::Result<()>> = stream::iter(0..appends)
            .map(|i| {
                let store = writers[i % concurrency].clone();
                let tenant = tenant.clone();
                async move {
                    let key = format!("{i:032x}");
                    let target = if one_chain {
                        "recipient/hot".to_owned()
                    } else {
                        format!("recipient/{key}/sms")
                    };
                    let block = Block {
                        kind: BlockKind::OptedOut,
                        reason: "opt_out_keyword".into(),
                        provider: ProviderKind::Twilio,
                        message_id: None,
                        at: OffsetDateTime::now_utc(),
                    };
                    let audit = AuditEntry::by_system(
                        "herald:audit-load",
                        &tenant,
                        &format!("load-{i}"),
                        "recipient.opted_out",
                        target,
                        None,
                        Some(herald_shared::domain::audit::digest(&block)),
                    );
                    store
                        .block(&tenant, Channel::Sms, &key, &block, &audit)
                        .await?;
                    Ok(())
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            eprintln!("audit-load: first failure: {e:#}");
        }
        let counts = counter.snapshot();
        let attempts = counts
            .get("DynamoDB.TransactWriteItems")
            .copied()
            .unwrap_or_default();
        let reads = counts.get("DynamoDB.GetItem").copied().unwrap_or_default();
        println!(
            "audit appends, {label}: {appends} in {:.2} s = {:.0} appends/s with {concurrency} writers \
             ({failed} failed; {:.2} transaction attempts and {:.2} head reads per append)",
            elapsed.as_secs_f64(),
            appends as f64 / elapsed.as_secs_f64(),
            attempts as f64 / appends as f64,
            reads as f64 / appends as f64,
        );
        let report = audit::verify(
            store.as_ref(),
            tenant.as_str(),
            Window::default(),
            None,
            None,
            &|_| {},
        )
        .await?;
        ensure!(
            report.intact() && report.entries as usize == appends - failed,
            "the appended log does not verify: {report:?}"
        );
    }

    if verify_entries > 0 {
        let tenant = "load-verify";
        let mut heads: Vec<ChainHead> = (0..AUDIT_CHAINS).map(ChainHead::empty).collect();
        let scope = TenantId::parse(tenant)?;
        let entries: Vec<ChainedEntry> = (0..verify_entries)
            .map(|i| {
                let target = format!("message/msg_{i:08}");
                let chain = chain_of(&target, AUDIT_CHAINS) as usize;
                let entry = AuditEntry::by_system(
                    "herald:dispatch",
                    &scope,
                    &format!("req-{i}"),
                    "message.sent",
                    target,
                    Some("accepted".into()),
                    Some("sent".into()),
                );
                let chained = ChainedEntry::after(&heads[chain], entry);
                heads[chain] = chained.head();
                chained
            })
            .collect();
        let started = Instant::now();
        store.restore_audit(tenant, &entries).await?;
        println!(
            "seeded {verify_entries} chained entries in {:.1} s (BatchWriteItem)",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let report = audit::verify(
            store.as_ref(),
            tenant,
            Window::default(),
            None,
            None,
            &|_| {},
        )
        .await?;
        let elapsed = started.elapsed();
        ensure!(report.intact(), "the seeded log does not verify");
        println!(
            "verified {} entries in {} chains in {:.1} s ({:.0} entries/s, reading from the emulator included)",
            report.entries,
            report.chains.len(),
            elapsed.as_secs_f64(),
            report.entries as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
