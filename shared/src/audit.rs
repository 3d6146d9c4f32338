//! Reading the audit log back: verifying every hash chain of a scope (a tenant, or `platform`)
//! and exporting its entries. The chains themselves are written by the stores, inside the same
//! transaction as the change they record (see `domain::audit` for the scheme).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use time::OffsetDateTime;

use crate::audit_anchors::{AnchorSigner, signature_verifies};
use crate::domain::audit::{
    ChainHead, ChainedEntry, StoredLink, Tamper, verify_anchors, verify_chain,
};
use crate::store::{AuditStore, StoreResult};

/// Entries read per request.
const PAGE: usize = 1000;

/// A period of entries to look at (`from` inclusive, `to` exclusive); open ends are unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl Window {
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }
}

/// What verification of one chain found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    pub chain: u32,
    /// Entries stored in the chain.
    pub entries: u64,
    /// Of which inside the window.
    pub in_window: u64,
    pub head_seq: u64,
    pub problems: Vec<Tamper>,
}

/// What verification of a scope found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub scope: String,
    pub entries: u64,
    pub in_window: u64,
    pub chains: Vec<ChainReport>,
    /// The signed anchors checked; `None` when verification was asked not to (no key).
    pub anchors: Option<AnchorReport>,
}

/// What checking a scope's signed anchors found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AnchorReport {
    pub count: u64,
    /// The newest anchor: entries appended after it are protected by the chains alone.
    pub latest_seq: Option<u64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub latest_at: Option<OffsetDateTime>,
    pub problems: Vec<Tamper>,
}

impl Verification {
    pub fn problems(&self) -> impl Iterator<Item = &Tamper> {
        self.chains
            .iter()
            .flat_map(|c| c.problems.iter())
            .chain(self.anchors.iter().flat_map(|a| a.problems.iter()))
    }

    pub fn intact(&self) -> bool {
        self.problems().next().is_none()
    }
}

/// The number of entries the scope's chains hold according to their heads: a progress total.
pub async fn expected_entries(store: &dyn AuditStore, scope: &str) -> StoreResult<u64> {
    Ok(store.audit_heads(scope).await?.iter().map(|h| h.seq).sum())
}

/// Verifies every chain of `scope`: links recomputed, numbering and heads checked. Problems
/// about entries outside `window` are left out (the whole chain is still read, since a link
/// depends on everything before it). `retention` lets a chain start after entry 1 when its
/// first entry is about as old as the retention period (earlier ones expired). `progress` is
/// called with the number of entries read so far.
pub async fn verify(
    store: &dyn AuditStore,
    scope: &str,
    window: Window,
    retention: Option<time::Duration>,
    anchors: Option<&dyn AnchorSigner>,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Verification> {
    let heads = store.audit_heads(scope).await?;
    // A first entry within a month of the retention age may have lost its predecessors to TTL.
    let expired_before =
        retention.map(|r| OffsetDateTime::now_utc() - r + time::Duration::days(31));
    let mut read = 0u64;
    let mut chains = Vec::with_capacity(heads.len());
    // Every chain's entry links by number: what anchors are checked on.
    let mut by_chain: HashMap<u32, BTreeMap<u64, String>> = HashMap::new();
    for head in heads {
        let links = read_chain(store, scope, &head, &mut |n| {
            read += n;
            progress(read);
        })
        .await?;
        by_chain.insert(
            head.chain,
            links
                .iter()
                .filter_map(|l| l.entry.as_ref().ok())
                .map(|e| (e.seq, e.hash.clone()))
                .collect(),
        );
        let problems = verify_chain(head.chain, &links, &head, expired_before)
            .into_iter()
            .filter(|p| concerns_window(p, &links, window))
            .collect();
        let entries = links.iter().filter(|l| l.entry.is_ok()).count() as u64;
        let in_window = links
            .iter()
            .filter(|l| l.entry.as_ref().is_ok_and(|e| window.contains(e.entry.at)))
            .count() as u64;
        chains.push(ChainReport {
            chain: head.chain,
            entries,
            in_window,
            head_seq: head.seq,
            problems,
        });
    }
    let anchors = match anchors {
        Some(signer) => Some(check_anchors(store, signer, scope, &by_chain, expired_before).await?),
        None => None,
    };
    Ok(Verification {
        scope: scope.to_owned(),
        entries: chains.iter().map(|c| c.entries).sum(),
        in_window: chains.iter().map(|c| c.in_window).sum(),
        chains,
        anchors,
    })
}

/// Checks the scope's signed anchors against its chains as read.
async fn check_anchors(
    store: &dyn AuditStore,
    signer: &dyn AnchorSigner,
    scope: &str,
    by_chain: &HashMap<u32, BTreeMap<u64, String>>,
    expired_before: Option<OffsetDateTime>,
) -> anyhow::Result<AnchorReport> {
    let anchors = store.anchors(scope).await?;
    let mut genuine = std::collections::HashSet::new();
    for anchor in &anchors {
        if signature_verifies(signer, anchor).await? {
            genuine.insert(anchor.anchor.seq);
        }
    }
    let problems = verify_anchors(
        &anchors,
        &|a| genuine.contains(&a.anchor.seq) && a.anchor.scope == scope,
        &|chain, seq| by_chain.get(&chain).and_then(|c| c.get(&seq)).cloned(),
        expired_before,
    );
    let latest = anchors.iter().max_by_key(|a| a.anchor.seq);
    Ok(AnchorReport {
        count: anchors.len() as u64,
        latest_seq: latest.map(|a| a.anchor.seq),
        latest_at: latest.map(|a| a.anchor.at),
        problems,
    })
}

async fn read_chain(
    store: &dyn AuditStore,
    scope: &str,
    head: &ChainHead,
    progress: &mut (dyn FnMut(u64) + Send),
) -> StoreResult<Vec<StoredLink>> {
    let mut links = Vec::with_capacity(usize::try_from(head.seq).unwrap_or(0));
    let mut after: Option<String> = None;
    // Bounded: every page either advances the key or ends the chain.
    loop {
        let (page, next) = store
            .audit_page(scope, head.chain, after.as_deref(), PAGE)
            .await?;
        progress(page.len() as u64);
        links.extend(page);
        match next {
            Some(key) if Some(&key) != after.as_ref() => after = Some(key),
            _ => break,
        }
    }
    Ok(links)
}

/// Whether a problem is about an entry inside the window (problems without a dated entry,
/// such as a foreign item or a moved head, always count).
fn concerns_window(problem: &Tamper, links: &[StoredLink], window: Window) -> bool {
    if window == Window::default() {
        return true;
    }
    let at_seq = |seq: u64| {
        links
            .iter()
            .filter_map(|l| l.entry.as_ref().ok())
            .find(|e| e.seq == seq)
            .map(|e| e.entry.at)
    };
    let at = match problem {
        Tamper::Edited { seq, .. }
        | Tamper::Inserted { seq, .. }
        | Tamper::Reordered { seq, .. } => at_seq(*seq),
        // A gap is dated by the entry after it (or before it, at the tail).
        Tamper::Missing { from, to, .. } => {
            at_seq(to + 1).or_else(|| at_seq(from.saturating_sub(1)))
        }
        Tamper::UnlikeAnchor { seq, .. } => at_seq(*seq),
        Tamper::Foreign { .. }
        | Tamper::HeadMismatch { .. }
        | Tamper::AnchorForged { .. }
        | Tamper::AnchorsMissing { .. } => None,
    };
    at.is_none_or(|at| window.contains(at))
}

/// Writes the scope's entries inside `window` as JSON lines (one [`ChainedEntry`] each, with
/// its chain, number and links, so the export can be checked on its own), chain by chain in
/// chain order. Returns how many were written.
pub async fn export(
    store: &dyn AuditStore,
    scope: &str,
    window: Window,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<u64> {
    let mut written = 0;
    for head in store.audit_heads(scope).await? {
        let links = read_chain(store, scope, &head, &mut |_| {}).await?;
        for entry in links.iter().filter_map(|l| l.entry.as_ref().ok()) {
            if window.contains(entry.entry.at) {
                serde_json::to_writer(&mut *out, entry)?;
                out.write_all(b"\n")?;
                written += 1;
            }
        }
    }
    out.flush()?;
    Ok(written)
}

/// Every entry of the scope inside `window`, oldest first: for reports.
pub async fn entries(
    store: &dyn AuditStore,
    scope: &str,
    window: Window,
) -> StoreResult<Vec<ChainedEntry>> {
    let mut all = Vec::new();
    for head in store.audit_heads(scope).await? {
        let links = read_chain(store, scope, &head, &mut |_| {}).await?;
        all.extend(
            links
                .into_iter()
                .filter_map(|l| l.entry.ok())
                .filter(|e| window.contains(e.entry.at)),
        );
    }
    all.sort_by(|a, b| (a.entry.at, &a.entry.id).cmp(&(b.entry.at, &b.entry.id)));
    Ok(all)
}
