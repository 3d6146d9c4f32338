//! The audit log's CPU costs, without the network: linking one entry (what each append adds to
//! a transaction) and verifying 100,000 entries spread over a tenant's 16 chains (what
//! `herald audit verify` does after reading them; reading is measured against the emulator by
//! `herald-local audit-load --verify-entries 100000`).
//! `cargo bench -p herald-shared --bench audit`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use herald_shared::domain::TenantId;
use herald_shared::domain::audit::{
    AuditEntry, ChainHead, ChainedEntry, StoredLink, chain_of, verify_chain,
};
use herald_shared::store::AUDIT_CHAINS;

const ENTRIES: usize = 100_000;

fn entry(tenant: &TenantId, i: usize) -> AuditEntry {
    AuditEntry::by_system(
        "herald:dispatch",
        tenant,
        &format!("req-{i}"),
        "message.sent",
        format!("message/msg_{i:08}"),
        Some("accepted".into()),
        Some("sent".into()),
    )
}

fn audit(c: &mut Criterion) {
    let tenant = TenantId::parse("acme-events").unwrap_or_else(|e| panic!("{e}"));
    let head = ChainHead::empty(0);
    let one = entry(&tenant, 1);
    c.bench_function(
        "audit: link one entry (SHA-256 over its canonical JSON)",
        |b| b.iter(|| ChainedEntry::after(black_box(&head), one.clone())),
    );

    let mut heads: Vec<ChainHead> = (0..AUDIT_CHAINS).map(ChainHead::empty).collect();
    let mut chains: Vec<Vec<StoredLink>> = vec![Vec::new(); AUDIT_CHAINS as usize];
    for i in 0..ENTRIES {
        let e = entry(&tenant, i);
        let chain = chain_of(&e.target, AUDIT_CHAINS) as usize;
        let chained = ChainedEntry::after(&heads[chain], e);
        heads[chain] = chained.head();
        chains[chain].push(StoredLink {
            key: format!("E#{:012}", chained.seq),
            position: Some(chained.seq),
            entry: Ok(chained),
        });
    }
    let mut group = c.benchmark_group("audit");
    group.sample_size(10);
    group.bench_function("verify 100,000 entries in 16 chains (CPU only)", |b| {
        b.iter(|| {
            let problems: usize = chains
                .iter()
                .zip(&heads)
                .map(|(links, head)| verify_chain(head.chain, links, head, None).len())
                .sum();
            assert_eq!(problems, 0);
        })
    });
    group.finish();
}

criterion_group!(benches, audit);
criterion_main!(benches);
