//! Compliance reports from the stores, for the API and the operator CLI. Nothing is scanned:
//! the tenant's messages of the period come page by page from the Messages table's
//! `by_tenant_created` index; its audit entries from its hash chains, each chain sought by
//! binary search to the period's start and read forward until past its end; the reasons of
//! opt-outs and suppressions from the recipients store. The aggregation is
//! [`crate::domain::report`]; the CSV layout is here.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use time::{Duration, OffsetDateTime};

use crate::app::App;
use crate::domain::audit::{AuditEntry, ChainHead};
use crate::domain::identity::Role;
use crate::domain::report::{
    ComplianceReport, EntryClass, MessageSummary, Period, ReportBuilder, recipient_action,
    recipient_target,
};
use crate::domain::suppression::BlockKind;
use crate::domain::{Channel, TenantId};
use crate::store::{AuditStore, MessageStore, RecipientStore, StoreError};

/// Messages read per Query (DynamoDB also stops a page at 1 MB).
const MESSAGE_PAGE: usize = 1000;
/// Audit entries read per request when walking a chain.
const AUDIT_PAGE: usize = 1000;
/// Items read per probe while seeking: the first readable entry among them decides.
const PROBE: usize = 8;
/// Recipients whose blocks are looked up per call (the store batches them 100 keys a request).
const BLOCK_LOOKUPS: usize = 500;
/// Entries are appended to a chain in time order give or take the moments an append takes
/// (`at` is stamped before its transaction, which may retry): seeking starts, and reading
/// stops, this far beyond the period so no entry at its edges is missed.
const APPEND_SKEW: Duration = Duration::minutes(15);

/// How much one report may read before it refuses (`ReportError::TooLarge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub messages: u64,
    /// Audit entries read, message status changes included.
    pub audit_entries: u64,
    pub configuration_changes: u64,
}

impl Limits {
    /// Within an API call: its time limit and Lambda's 6 MB answer.
    pub const API: Limits = Limits {
        messages: 200_000,
        audit_entries: 600_000,
        configuration_changes: 10_000,
    };
    /// For the operator CLI, which has no time limit.
    pub const OPERATOR: Limits = Limits {
        messages: 20_000_000,
        audit_entries: 60_000_000,
        configuration_changes: 1_000_000,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the period holds more than {limit} {what}: ask for a shorter period")]
    TooLarge { what: &'static str, limit: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ports a report reads.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub messages: &'a dyn MessageStore,
    pub audit: &'a dyn AuditStore,
    pub recipients: &'a dyn RecipientStore,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sources")
    }
}

impl<'a> Sources<'a> {
    pub fn of(app: &'a App) -> Self {
        Self {
            messages: app.messages.as_ref(),
            audit: app.audit.as_ref(),
            recipients: app.recipients.as_ref(),
        }
    }
}

/// The tenant's compliance report for `period`.
pub async fn compliance(
    sources: Sources<'_>,
    tenant: &TenantId,
    period: Period,
    limits: Limits,
) -> Result<ComplianceReport, ReportError> {
    let mut builder = ReportBuilder::new(tenant.clone(), period);
    let (_, entries) = futures::try_join!(
        feed_messages(sources.messages, tenant, &period, limits, &mut builder),
        audit_entries(sources.audit, tenant.as_str(), &period, limits),
    )?;
    let changes = entries
        .iter()
        .filter(|e| EntryClass::of(e) == EntryClass::Configuration)
        .count() as u64;
    if changes > limits.configuration_changes {
        return Err(ReportError::TooLarge {
            what: "configuration changes",
            limit: limits.configuration_changes,
        });
    }
    let reasons = block_reasons(sources.recipients, tenant, &entries).await?;
    for entry in &entries {
        let reason = blocked(entry).and_then(|(key, channel, kind)| {
            reasons
                .get(&(channel, key.to_owned(), kind))
                .map(String::as_str)
        });
        builder.audit_entry(entry, reason);
    }
    Ok(builder.finish(OffsetDateTime::now_utc()))
}

async fn feed_messages(
    store: &dyn MessageStore,
    tenant: &TenantId,
    period: &Period,
    limits: Limits,
    builder: &mut ReportBuilder,
) -> Result<(), ReportError> {
    let mut after: Option<String> = None;
    let mut read = 0u64;
    // Bounded: each page moves the token on, and `limits.messages` caps the pages.
    loop {
        let (page, next): (Vec<MessageSummary>, _) = store
            .messages_between(tenant, period, after.as_deref(), MESSAGE_PAGE)
            .await?;
        read += page.len() as u64;
        if read > limits.messages {
            return Err(ReportError::TooLarge {
                what: "messages",
                limit: limits.messages,
            });
        }
        for m in &page {
            builder.message(m);
        }
        match next {
            Some(token) if Some(&token) != after.as_ref() => after = Some(token),
            _ => return Ok(()),
        }
    }
}

/// The key of a chain's entry `seq`, as both audit adapters store it: `audit_page` after this
/// key starts at entry `seq + 1`, which is how a chain is sought into.
fn entry_key(seq: u64) -> String {
    format!("E#{seq:012}")
}

/// Every entry of `scope` in `period`, from all its chains (read concurrently).
async fn audit_entries(
    store: &dyn AuditStore,
    scope: &str,
    period: &Period,
    limits: Limits,
) -> Result<Vec<AuditEntry>, ReportError> {
    let heads = store.audit_heads(scope).await?;
    let read = AtomicU64::new(0);
    let chains = heads
        .iter()
        .filter(|h| h.seq > 0)
        .map(|head| chain_entries(store, scope, head, period, limits, &read));
    let mut entries: Vec<AuditEntry> = futures::future::try_join_all(chains)
        .await?
        .into_iter()
        .flatten()
        .collect();
    entries.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(entries)
}

async fn chain_entries(
    store: &dyn AuditStore,
    scope: &str,
    head: &ChainHead,
    period: &Period,
    limits: Limits,
    read: &AtomicU64,
) -> Result<Vec<AuditEntry>, ReportError> {
    let first = seek(store, scope, head, period.from() - APPEND_SKEW).await?;
    let stop_at = period.to() + APPEND_SKEW;
    let mut after = (first > 1).then(|| entry_key(first - 1));
    let mut entries = Vec::new();
    // Bounded: each page moves the key on, and `limits.audit_entries` caps the pages.
    loop {
        let (page, next) = store
            .audit_page(scope, head.chain, after.as_deref(), AUDIT_PAGE)
            .await?;
        if read.fetch_add(page.len() as u64, Ordering::Relaxed) + page.len() as u64
            > limits.audit_entries
        {
            return Err(ReportError::TooLarge {
                what: "audit entries",
                limit: limits.audit_entries,
            });
        }
        let mut past = false;
        for link in &page {
            // Items that are not entries are verification's business (`herald audit verify`).
            let Ok(chained) = &link.entry else { continue };
            if chained.entry.at >= stop_at {
                past = true;
                break;
            }
            if period.contains(chained.entry.at) {
                entries.push(chained.entry.clone());
            }
        }
        match next {
            Some(key) if !past && Some(&key) != after.as_ref() => after = Some(key),
            _ => return Ok(entries),
        }
    }
}

/// The first position of the chain whose entry is at or after `not_before` (`head.seq + 1`
/// when there is none), by binary search over positions: one small read per step. Positions
/// whose entries expired (TTL) are skipped over by the store.
async fn seek(
    store: &dyn AuditStore,
    scope: &str,
    head: &ChainHead,
    not_before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let (mut lo, mut hi) = (1u64, head.seq.saturating_add(1));
    // Bounded: the range at least halves every round, so 64 rounds cover any u64.
    for _ in 0..=64 {
        if lo >= hi {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        let after = (mid > 1).then(|| entry_key(mid - 1));
        let (page, _) = store
            .audit_page(scope, head.chain, after.as_deref(), PROBE)
            .await?;
        let found = page.iter().find_map(|l| {
            let e = l.entry.as_ref().ok()?;
            Some((l.position.unwrap_or(e.seq), e.entry.at))
        });
        match found {
            // Everything from `mid` up to that entry is earlier.
            Some((position, at)) if at < not_before => lo = position.max(mid) + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// The recipient key, channel and kind of block an opt-out or suppression entry records.
fn blocked(entry: &AuditEntry) -> Option<(&str, Channel, BlockKind)> {
    let kind = match recipient_action(&entry.action)? {
        "opted_out" => BlockKind::OptedOut,
        "suppressed" => BlockKind::Suppressed,
        _ => return None,
    };
    let (key, channel) = recipient_target(&entry.target)?;
    Some((key, channel, kind))
}

/// The reasons of the blocks the entries record that are still in force.
async fn block_reasons(
    store: &dyn RecipientStore,
    tenant: &TenantId,
    entries: &[AuditEntry],
) -> Result<HashMap<(Channel, String, BlockKind), String>, StoreError> {
    let wanted: Vec<(Channel, String)> = entries
        .iter()
        .filter_map(blocked)
        .map(|(key, channel, _)| (channel, key.to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut reasons = HashMap::new();
    for chunk in wanted.chunks(BLOCK_LOOKUPS) {
        for (channel, key, block) in store.blocks(tenant, chunk).await? {
            reasons.insert((channel, key, block.kind), block.reason);
        }
    }
    Ok(reasons)
}

// ---- CSV ----

/// The columns of the CSV form, in order. Stable: new columns only ever go at the end. Every
/// row repeats the tenant and period; `section` says which other columns it fills:
///
/// | section | columns |
/// | --- | --- |
/// | `messages` | `channel`, `status`, `count` |
/// | `failures` | `channel`, `status`, `reason`, `count` |
/// | `recipients` | `channel`, `action` (`opted_out`, `suppressed`, `opted_in`), `reason`, `count` |
/// | `consent` | `action` (`consent_granted`, `consent_withdrawn`, `preferences_changed`, `preferences_changed_by_recipient`, `erased`), `count` |
/// | `configuration_changes` | `at`, `actor`, `actor_role`, `action`, `target`, `request_id` |
/// | `totals` | `metric` and `count`; for `metric` = `cost` also `currency` and `amount` (`count`: messages priced) |
pub const CSV_COLUMNS: [&str; 17] = [
    "tenant",
    "from",
    "to",
    "section",
    "metric",
    "channel",
    "status",
    "action",
    "reason",
    "count",
    "currency",
    "amount",
    "at",
    "actor",
    "actor_role",
    "target",
    "request_id",
];

/// One CSV row by column name; unnamed columns stay empty.
#[derive(Default)]
struct Row<'a> {
    section: &'a str,
    metric: &'a str,
    channel: &'a str,
    status: &'a str,
    action: String,
    reason: String,
    count: String,
    currency: &'a str,
    amount: &'a str,
    at: String,
    actor: String,
    actor_role: &'a str,
    target: String,
    request_id: String,
}

/// Text that came from outside (providers, identities, paths) is kept from being read as a
/// formula by spreadsheet programs: a leading `=`, `+`, `-`, `@`, tab or carriage return gets
/// a `'` in front.
fn inert(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::PlatformAdmin => "platform_admin",
        Role::TenantAdmin => "tenant_admin",
        Role::EventManager => "event_manager",
        Role::System => "system",
    }
}

/// The report as CSV (RFC 4180 quoting by the `csv` crate), header first.
pub fn to_csv(report: &ComplianceReport) -> Result<Vec<u8>, csv::Error> {
    let mut rows: Vec<Row<'_>> = Vec::new();
    for m in &report.messages {
        rows.push(Row {
            section: "messages",
            channel: m.channel.as_str(),
            status: m.status.as_str(),
            count: m.count.to_string(),
            ..Row::default()
        });
    }
    for f in &report.failures {
        rows.push(Row {
            section: "failures",
            channel: f.channel.as_str(),
            status: f.status.as_str(),
            reason: inert(&f.reason),
            count: f.count.to_string(),
            ..Row::default()
        });
    }
    for r in &report.recipients {
        rows.push(Row {
            section: "recipients",
            channel: r.channel.map_or("", Channel::as_str),
            action: inert(&r.action),
            reason: inert(&r.reason),
            count: r.count.to_string(),
            ..Row::default()
        });
    }
    for c in &report.consent {
        rows.push(Row {
            section: "consent",
            action: inert(&c.action),
            count: c.count.to_string(),
            ..Row::default()
        });
    }
    for c in &report.configuration_changes {
        rows.push(Row {
            section: "configuration_changes",
            at: rfc3339(c.at),
            actor: inert(&c.actor),
            actor_role: role_name(c.actor_role),
            action: inert(&c.action),
            target: inert(&c.target),
            request_id: inert(&c.request_id),
            ..Row::default()
        });
    }
    let t = &report.totals;
    for (metric, count) in [
        ("messages", t.messages),
        ("failures", t.failures),
        ("opted_out", t.opted_out),
        ("suppressed", t.suppressed),
        ("opted_in", t.opted_in),
        ("consent_granted", t.consent_granted),
        ("consent_withdrawn", t.consent_withdrawn),
        ("configuration_changes", t.configuration_changes),
        ("messages_without_cost", t.messages_without_cost),
    ] {
        rows.push(Row {
            section: "totals",
            metric,
            count: count.to_string(),
            ..Row::default()
        });
    }
    for cost in &t.cost {
        rows.push(Row {
            section: "totals",
            metric: "cost",
            count: cost.messages.to_string(),
            currency: cost.currency.as_str(),
            amount: &cost.amount,
            ..Row::default()
        });
    }

    let (tenant, from, to) = (
        report.tenant.to_string(),
        rfc3339(report.from),
        rfc3339(report.to),
    );
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_COLUMNS)?;
    for row in &rows {
        out.write_record([
            tenant.as_str(),
            &from,
            &to,
            row.section,
            row.metric,
            row.channel,
            row.status,
            &row.action,
            &row.reason,
            &row.count,
            row.currency,
            row.amount,
            &row.at,
            &row.actor,
            row.actor_role,
            &row.target,
            &row.request_id,
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::AuditEntry;
    use crate::domain::cost::{Currency, Money};
    use crate::domain::identity::Caller;
    use crate::domain::message::{MessageId, MessageStatus};
    use crate::domain::report::MessageSummary;
    use crate::store::memory::MemoryStore;
    use time::macros::datetime;

    fn tenant() -> TenantId {
        TenantId::parse("acme-events").expect("tenant")
    }

    fn period() -> Period {
        Period::new(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-12-01 00:00 UTC),
        )
        .expect("period")
    }

    fn sample() -> ComplianceReport {
        let mut b = ReportBuilder::new(tenant(), period());
        let at = datetime!(2026-11-10 09:00 UTC);
        b.message(&MessageSummary {
            id: MessageId::derive(&tenant(), "e", "k", 0),
            channel: Channel::Sms,
            status: MessageStatus::Failed,
            status_reason: Some("21211: invalid \"To\", see docs\nline two".into()),
            cost: Some(Money::new(7_900, Currency::USD)),
            created_at: at,
        });
        let caller = Caller {
            subject: "=HYPERLINK(\"http://x\")".into(),
            role: Role::TenantAdmin,
            tenant: Some(tenant()),
        };
        let mut change = AuditEntry::new(
            &caller,
            "req-1",
            "brand.updated",
            "tenant/brand".into(),
            None,
            None,
        );
        change.at = at;
        b.audit_entry(&change, None);
        b.finish(datetime!(2026-12-02 00:00 UTC))
    }

    #[test]
    fn csv_has_the_documented_columns_and_quotes_what_needs_it() {
        let csv_bytes = to_csv(&sample()).expect("csv");
        let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
        let headers: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(headers, CSV_COLUMNS);
        let rows: Vec<HashMap<String, String>> = reader
            .deserialize()
            .collect::<Result<_, _>>()
            .expect("rows parse back");
        let col = |row: &HashMap<String, String>, c: &str| row[c].clone();
        let failure = rows
            .iter()
            .find(|r| r["section"] == "failures")
            .expect("failure row");
        // Commas, quotes and newlines survive the round trip.
        assert_eq!(
            col(failure, "reason"),
            "21211: invalid \"To\", see docs\nline two"
        );
        assert_eq!(
            (
                col(failure, "channel"),
                col(failure, "status"),
                col(failure, "count")
            ),
            ("sms".into(), "failed".into(), "1".into())
        );
        let change = rows
            .iter()
            .find(|r| r["section"] == "configuration_changes")
            .expect("change row");
        assert_eq!(col(change, "actor"), "'=HYPERLINK(\"http://x\")", "inert");
        assert_eq!(col(change, "actor_role"), "tenant_admin");
        assert_eq!(col(change, "at"), "2026-11-10T09:00:00Z");
        let cost = rows
            .iter()
            .find(|r| r["section"] == "totals" && r["metric"] == "cost")
            .expect("cost row");
        assert_eq!(
            (
                col(cost, "currency"),
                col(cost, "amount"),
                col(cost, "count")
            ),
            ("USD".into(), "0.0079".into(), "1".into())
        );
        for row in &rows {
            assert_eq!(
                (col(row, "tenant"), col(row, "from"), col(row, "to")),
                (
                    "acme-events".into(),
                    "2026-11-01T00:00:00Z".into(),
                    "2026-12-01T00:00:00Z".into()
                )
            );
        }
    }

    /// Appends entries to the memory store's chains with the given times, in append order.
    fn chained_store(times: &[OffsetDateTime]) -> MemoryStore {
        use crate::store::TemplateStore as _;
        let store = MemoryStore::default();
        let caller = Caller {
            subject: "user-ada".into(),
            role: Role::TenantAdmin,
            tenant: Some(tenant()),
        };
        let owner = crate::store::Owner::Tenant(tenant());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        for (i, at) in times.iter().enumerate() {
            // One target: every entry lands in the same chain, in this order.
            let mut audit = AuditEntry::new(
                &caller,
                &format!("req-{i}"),
                "brand.updated",
                "tenant/brand".into(),
                None,
                None,
            );
            audit.at = *at;
            let brand = crate::store::Revisioned {
                value: crate::domain::brand::Brand::default(),
                revision: i as u32 + 1,
            };
            runtime
                .block_on(store.put_brand(&owner, &brand, &audit))
                .expect("stored");
        }
        store
    }

    #[test]
    fn chains_are_sought_to_the_period_and_read_only_as_far_as_needed() {
        let start = datetime!(2026-10-01 00:00 UTC);
        let times: Vec<OffsetDateTime> = (0..200).map(|d| start + Duration::hours(6 * d)).collect();
        let store = chained_store(&times);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let period = Period::new(
            datetime!(2026-10-20 00:00 UTC),
            datetime!(2026-10-25 00:00 UTC),
        )
        .expect("period");
        let entries = runtime
            .block_on(audit_entries(&store, "acme-events", &period, Limits::API))
            .expect("entries");
        let expected: Vec<OffsetDateTime> = times
            .iter()
            .copied()
            .filter(|t| period.contains(*t))
            .collect();
        assert_eq!(expected.len(), 20);
        assert_eq!(entries.iter().map(|e| e.at).collect::<Vec<_>>(), expected);
        // Seeking: the first entry at or after a time, by position.
        let head = runtime
            .block_on(store.audit_heads("acme-events"))
            .expect("heads")
            .into_iter()
            .find(|h| h.seq > 0)
            .expect("one chain");
        for (when, position) in [
            (start - Duration::days(1), 1),
            (start, 1),
            (start + Duration::hours(1), 2),
            (datetime!(2026-10-20 00:00 UTC), 77),
            (start + Duration::days(1000), 201),
        ] {
            assert_eq!(
                runtime
                    .block_on(seek(&store, "acme-events", &head, when))
                    .expect("seek"),
                position,
                "{when}"
            );
        }
        // A limit on what may be read is enforced.
        let tight = Limits {
            audit_entries: 10,
            ..Limits::API
        };
        let long = Period::new(start, start + Duration::days(60)).expect("period");
        assert!(matches!(
            runtime.block_on(audit_entries(&store, "acme-events", &long, tight)),
            Err(ReportError::TooLarge {
                what: "audit entries",
                ..
            })
        ));
    }
}
