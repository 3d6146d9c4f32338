//! Data-subject rights over one recipient of a tenant, for the configuration API and the
//! operator CLI alike: export (everything Herald holds on them) and erasure (their personal data
//! removed from every message and from the consent ledger; the facts of what was sent, the proof
//! of consent and the suppressions kept). Works on the recipient key only; the address never
//! reaches this module's logs or audit entries.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::TenantId;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::erasure::{erase_evidence, erase_message};
use crate::domain::identity::Caller;
use crate::domain::message::Message;
use crate::store::{
    ConsentStore, LedgerErasure, MessageStore, RecipientLedger, StoreError, StoreResult,
    StoredMessage,
};

/// Messages per page of an export (a Lambda response holds 6 MB; rendered emails are large).
pub const EXPORT_PAGE: usize = 100;
/// Messages read per page of an erasure, each erased in its own transaction.
const ERASURE_PAGE: usize = 25;
/// Pages one erasure run goes through (1 000 messages); a longer history takes more runs.
const ERASURE_PAGES: usize = 40;
/// Tries per message (or for the ledger) when dispatch or a receipt changes it meanwhile.
const ATTEMPTS: usize = 3;

/// The ports data-subject requests use.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub messages: &'a dyn MessageStore,
    pub consents: &'a dyn ConsentStore,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sources")
    }
}

/// Who asked, as the audit log records it.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A caller of the configuration API.
    Caller(&'a Caller),
    /// An operator using the CLI (recorded with role `system` under this name).
    Operator(&'a str),
}

impl Actor<'_> {
    fn entry(
        &self,
        tenant: &TenantId,
        request_id: &str,
        action: &str,
        target: String,
        before: Option<String>,
        after: Option<String>,
    ) -> AuditEntry {
        match self {
            Actor::Caller(caller) => {
                AuditEntry::new(caller, request_id, action, target, before, after)
            }
            Actor::Operator(name) => {
                AuditEntry::by_system(name, tenant, request_id, action, target, before, after)
            }
        }
    }
}

/// One page of a recipient's export: the whole ledger (small) and a page of messages.
#[derive(Debug, Clone)]
pub struct ExportPage {
    pub ledger: RecipientLedger,
    /// Whole records, rendered content included: it is the recipient's own data.
    pub messages: Vec<Message>,
    /// The page token for the next messages; `None` at the end.
    pub next: Option<String>,
}

/// Everything held on the recipient, with up to `limit` messages after the page token `after`.
pub async fn export(
    sources: Sources<'_>,
    tenant: &TenantId,
    recipient_key: &str,
    after: Option<&str>,
    limit: usize,
) -> StoreResult<ExportPage> {
    let (ledger, (stored, next)) = futures::try_join!(
        sources.consents.ledger(tenant, recipient_key),
        sources
            .messages
            .messages_to(tenant, recipient_key, after, limit.clamp(1, EXPORT_PAGE)),
    )?;
    Ok(ExportPage {
        ledger,
        messages: stored.into_iter().map(|s| s.message).collect(),
        next,
    })
}

/// What an erasure run did. Holds no personal data: it is answered, audited (as a digest) and
/// logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Erasure {
    pub recipient_key: String,
    pub messages_erased: usize,
    pub messages_already_erased: usize,
    /// Held by a dispatcher at the time (or changing too fast): a later run erases them.
    pub messages_in_flight: usize,
    /// Consent records (history and in force) whose evidence became its digest.
    pub consent_evidence_digested: usize,
    pub preferences_deleted: bool,
    /// Opt-outs and suppressions, kept so the person is still not contacted.
    pub blocks_kept: usize,
    /// Every message reached and erased; `false`: run it again.
    pub complete: bool,
}

enum Outcome {
    Erased,
    Already,
    InFlight,
}

/// Erases the recipient's personal data: every message (in pages, each message atomically with
/// its `message.erased` audit entry), then the ledger's evidence and preferences with one
/// `recipient.erased` entry carrying the digest of the outcome. Safe to run again: erased
/// records are left alone, so a retry finishes what an interrupted run started.
pub async fn erase(
    sources: Sources<'_>,
    actor: Actor<'_>,
    tenant: &TenantId,
    recipient_key: &str,
    request_id: &str,
) -> StoreResult<Erasure> {
    let now = OffsetDateTime::now_utc();
    let mut outcome = Erasure {
        recipient_key: recipient_key.to_owned(),
        ..Erasure::default()
    };
    let mut after: Option<String> = None;
    let mut reached_end = false;
    for _ in 0..ERASURE_PAGES {
        let (page, next) = sources
            .messages
            .messages_to(tenant, recipient_key, after.as_deref(), ERASURE_PAGE)
            .await?;
        for stored in page {
            match erase_one(sources.messages, actor, tenant, request_id, stored, now).await? {
                Outcome::Erased => outcome.messages_erased += 1,
                Outcome::Already => outcome.messages_already_erased += 1,
                Outcome::InFlight => outcome.messages_in_flight += 1,
            }
        }
        after = next;
        if after.is_none() {
            reached_end = true;
            break;
        }
    }
    outcome.complete = reached_end && outcome.messages_in_flight == 0;
    erase_ledger(
        sources.consents,
        actor,
        tenant,
        recipient_key,
        request_id,
        &mut outcome,
    )
    .await?;
    tracing::info!(
        recipient_key,
        messages_erased = outcome.messages_erased,
        messages_in_flight = outcome.messages_in_flight,
        complete = outcome.complete,
        "recipient erased"
    );
    Ok(outcome)
}

async fn erase_one(
    messages: &dyn MessageStore,
    actor: Actor<'_>,
    tenant: &TenantId,
    request_id: &str,
    mut stored: StoredMessage,
    now: OffsetDateTime,
) -> StoreResult<Outcome> {
    for _ in 0..ATTEMPTS {
        if stored.claim.is_some() {
            return Ok(Outcome::InFlight);
        }
        let Some(erased) = erase_message(&stored.message, now) else {
            return Ok(Outcome::Already);
        };
        let audit = actor.entry(
            tenant,
            request_id,
            "message.erased",
            erased.audit_target(),
            Some(stored.message.status.as_str().to_owned()),
            Some(digest(&erased)),
        );
        match messages.erase(&stored.message, &erased, &audit).await {
            Ok(()) => return Ok(Outcome::Erased),
            Err(StoreError::Conflict) => match messages.message(&erased.id).await? {
                Some(again) => stored = again,
                // Expired (TTL) meanwhile: nothing left to erase.
                None => return Ok(Outcome::Already),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(Outcome::InFlight)
}

async fn erase_ledger(
    consents: &dyn ConsentStore,
    actor: Actor<'_>,
    tenant: &TenantId,
    recipient_key: &str,
    request_id: &str,
    outcome: &mut Erasure,
) -> StoreResult<()> {
    for attempt in 1..=ATTEMPTS {
        let ledger = consents.ledger(tenant, recipient_key).await?;
        let erasure = LedgerErasure {
            history: ledger.history.iter().filter_map(erase_evidence).collect(),
            consents: ledger.consents.iter().filter_map(erase_evidence).collect(),
            preferences_revision: ledger.preferences.as_ref().map(|p| p.revision),
        };
        outcome.consent_evidence_digested = erasure.history.len() + erasure.consents.len();
        outcome.preferences_deleted = erasure.preferences_revision.is_some();
        outcome.blocks_kept = ledger.blocks.len();
        let audit = actor.entry(
            tenant,
            request_id,
            "recipient.erased",
            format!("recipient/{recipient_key}"),
            None,
            Some(digest(&*outcome)),
        );
        match consents
            .erase_ledger(tenant, recipient_key, &erasure, &audit)
            .await
        {
            Err(StoreError::Conflict) if attempt < ATTEMPTS => {}
            result => return result,
        }
    }
    Err(StoreError::Conflict)
}
