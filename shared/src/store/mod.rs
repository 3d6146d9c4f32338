//! Ports: what the configuration plane needs from storage, one small trait per capability, with
//! a DynamoDB adapter for AWS (and the local emulator) and an in-memory one for logic tests.
//! Every write that changes configuration carries its audit entry and lands atomically with it.

pub mod dynamodb;
pub mod memory;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::audit::AuditEntry;
use crate::domain::brand::Brand;
use crate::domain::provider::{EventProviderEntry, ProviderConfig};
use crate::domain::resolution::EventSettings;
use crate::domain::snapshot::{Activation, Snapshot};
use crate::domain::template::TemplateVersion;
use crate::domain::{Category, Channel, EventId, ProviderId, TenantId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write failed: someone else changed the item first, or it already exists.
    #[error("the item changed concurrently or already exists")]
    Conflict,
    /// What was to be written does not fit DynamoDB's limits (an item's 400 KB, a
    /// transaction's 4 MB): the input made it so, nothing was written. `what` names the part
    /// at fault as the API knows it (`template.body`, `brand.footer_text`, `snapshot`, ...);
    /// sizes are in bytes as DynamoDB counts them.
    #[error("{what} is too large to store: {size} bytes, at most {limit}")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    #[error("storage is unavailable: {0:#}")]
    Unavailable(#[from] anyhow::Error),
}

impl StoreError {
    /// Whether the same write is refused however often it is tried: the input made it too
    /// large to store. Queue consumers record such a failure and acknowledge their message (a
    /// retry would only carry it to the dead-letter queue); `Unavailable` is worth a retry, and
    /// a `Conflict` means what its call site says ("already done", "read again").
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::TooLarge { .. })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Who owns a layer of configuration, and so which partition holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Platform,
    Tenant(TenantId),
    Event(TenantId, EventId),
}

impl Owner {
    pub fn partition(&self) -> String {
        match self {
            Owner::Platform => "GLOBAL".to_owned(),
            Owner::Tenant(t) => format!("T#{t}"),
            Owner::Event(t, e) => format!("E#{t}#{e}"),
        }
    }
}

/// Expected state for optimistic concurrency: `None` means "must not exist yet".
pub type ExpectedRevision = Option<u32>;

#[async_trait]
pub trait ProviderStore: Send + Sync {
    async fn tenant_providers(&self, tenant: &TenantId) -> StoreResult<Vec<ProviderConfig>>;
    async fn event_providers(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> StoreResult<Vec<EventProviderEntry>>;
    async fn tenant_provider(
        &self,
        tenant: &TenantId,
        id: &ProviderId,
    ) -> StoreResult<Option<ProviderConfig>>;
    async fn event_provider(
        &self,
        tenant: &TenantId,
        event: &EventId,
        id: &ProviderId,
    ) -> StoreResult<Option<EventProviderEntry>>;
    async fn put_tenant_provider(
        &self,
        tenant: &TenantId,
        provider: &ProviderConfig,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn put_event_provider(
        &self,
        tenant: &TenantId,
        event: &EventId,
        entry: &EventProviderEntry,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn delete_provider(
        &self,
        owner: &Owner,
        id: &ProviderId,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The configuration (tenant default or an event's own) whose receipt route has `token`,
    /// with its tenant: how a provider's webhook request is tied to a tenant.
    async fn by_receipt_token(
        &self,
        token: &str,
    ) -> StoreResult<Option<(TenantId, ProviderConfig)>>;
}

/// What one layer partition holds besides providers: template heads, brand, event settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerContent {
    /// The published version of each slot the layer uses.
    pub templates: Vec<TemplateVersion>,
    /// Versions submitted for review and not yet approved or rejected, oldest first.
    pub pending: Vec<TemplateVersion>,
    pub brand: Option<Revisioned<Brand>>,
    pub settings: Option<Revisioned<EventSettings>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revisioned<T> {
    pub value: T,
    pub revision: u32,
}

#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Everything current in one layer, in one query.
    async fn layer(&self, owner: &Owner) -> StoreResult<LayerContent>;
    async fn current_template(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
    ) -> StoreResult<Option<TemplateVersion>>;
    /// One page of up to `limit` of the slot's versions in this layer, newest first, older
    /// than version `before`; with the version to continue before, `None` at the end.
    async fn template_versions(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        before: Option<u32>,
        limit: usize,
    ) -> StoreResult<(Vec<TemplateVersion>, Option<u32>)>;
    /// The newest version number ever published for the slot in this layer (0 if none), even
    /// when the layer no longer uses the slot.
    async fn latest_version(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
    ) -> StoreResult<u32>;
    /// One version of the slot in this layer, whatever its state.
    async fn template_version(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        version: u32,
    ) -> StoreResult<Option<TemplateVersion>>;
    /// Adds `template` (published) as a new version, numbered above every version of the slot,
    /// and makes it current. `Conflict` when that version exists or a later one is current.
    async fn put_template(
        &self,
        owner: &Owner,
        template: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Adds `template` (submitted) as a new version without publishing it: the layer's current
    /// version stays in use, and the new one is pending review ([`LayerContent::pending`]).
    /// `Conflict` when that version exists.
    async fn submit_template(
        &self,
        owner: &Owner,
        template: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Records the review of a submitted version: `reviewed` is that version approved (so
    /// published: it becomes current) or rejected, and no longer pending. `Conflict` when the
    /// version is no longer submitted (reviewed by someone else first) or, for an approval, a
    /// later version is current.
    async fn review_template(
        &self,
        owner: &Owner,
        reviewed: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Stops using the layer's template for the slot (its versions stay as history).
    async fn remove_template(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        version: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn put_brand(
        &self,
        owner: &Owner,
        brand: &Revisioned<Brand>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn remove_brand(
        &self,
        owner: &Owner,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn put_settings(
        &self,
        tenant: &TenantId,
        event: &EventId,
        settings: &Revisioned<EventSettings>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// A snapshot without its configuration, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SnapshotSummary {
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub created_at: time::OffsetDateTime,
    pub created_by: String,
    pub digest: String,
}

#[async_trait]
pub trait SnapshotStore: Send + Sync {
    async fn latest_version(&self, tenant: &TenantId, event: &EventId) -> StoreResult<u32>;
    /// Writes `snapshot` (a new version) and makes it active, in one transaction with `audit`.
    /// Fails with `Conflict` if the version exists or the active version is no longer `previous`.
    async fn create_and_activate(
        &self,
        tenant: &TenantId,
        event: &EventId,
        snapshot: &Snapshot,
        previous: Option<u32>,
        audit: &AuditEntry,
    ) -> StoreResult<Activation>;
    async fn snapshot(
        &self,
        tenant: &TenantId,
        event: &EventId,
        version: u32,
    ) -> StoreResult<Option<Snapshot>>;
    /// One page of up to `limit` of the event's snapshots, newest first, older than version
    /// `before`; with the version to continue before, `None` at the end. One Query.
    async fn snapshots(
        &self,
        tenant: &TenantId,
        event: &EventId,
        before: Option<u32>,
        limit: usize,
    ) -> StoreResult<(Vec<SnapshotSummary>, Option<u32>)>;
    async fn activation(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> StoreResult<Option<Activation>>;
    /// Re-activates an existing version (rollback), in one transaction with `audit`.
    async fn activate(
        &self,
        tenant: &TenantId,
        event: &EventId,
        version: u32,
        previous: Option<u32>,
        audit: &AuditEntry,
    ) -> StoreResult<Activation>;
}

/// A response kept for an idempotency key, to answer repeats with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time this key is seen: go ahead, then `finish` or `release`.
    Fresh,
    /// Done before with the same request: answer with the stored response.
    Replay(StoredResponse),
    /// Another request with this key is still being handled.
    InFlight,
    /// The key was used before for a different request.
    Mismatch,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// `key` is already scoped (tenant, operation); `fingerprint` is a digest of the request.
    async fn claim(&self, key: &str, fingerprint: &str) -> StoreResult<Claim>;
    async fn finish(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
    ) -> StoreResult<()>;
    /// Forgets a claim whose request failed unexpectedly, so a retry can run.
    async fn release(&self, key: &str) -> StoreResult<()>;
}

/// Per-tenant quotas counted in fixed windows (test sends per hour): one counter item per
/// quota, tenant and window, counted atomically, gone after its window (TTL).
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Counts one use under `key` (already scoped: quota, tenant, window) if fewer than `limit`
    /// were counted; `false`, with nothing counted, when the quota is used up. The counter is
    /// kept until `expires_at`.
    async fn take(
        &self,
        key: &str,
        limit: u32,
        expires_at: time::OffsetDateTime,
    ) -> StoreResult<bool>;
}

/// A message with its dispatch claim, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub message: crate::domain::message::Message,
    /// Set while a dispatcher works on the message: its token and when it claimed it.
    pub claim: Option<DispatchClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchClaim {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
}

/// How a claim attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// The caller now owns the message until it finishes or releases it.
    Claimed(Box<crate::domain::message::Message>),
    /// The message is past `accepted`: nothing to do (a duplicate delivery).
    Settled(crate::domain::message::MessageStatus),
    /// Another dispatcher holds a claim taken at this time.
    Held(DispatchClaim),
    Missing,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores new messages, each with its audit entry (`message.accepted`), atomically per
    /// message; for each, `false` when a message with its id already exists (a retried
    /// request), in which case nothing is written for it. In DynamoDB the messages share
    /// transactions of up to 100 actions (several chains each), run a few at a time, so a
    /// batch costs a few requests, not one per message. On an error some messages may have
    /// been written: calling again with the same messages writes the rest, none twice.
    async fn create_many(
        &self,
        messages: &[(crate::domain::message::Message, AuditEntry)],
    ) -> StoreResult<Vec<bool>>;
    /// [`MessageStore::create_many`] of one message.
    async fn create(
        &self,
        message: &crate::domain::message::Message,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let created = self
            .create_many(&[(message.clone(), audit.clone())])
            .await?;
        Ok(created.first().copied().unwrap_or(false))
    }
    async fn message(
        &self,
        id: &crate::domain::message::MessageId,
    ) -> StoreResult<Option<StoredMessage>>;
    /// Claims an `accepted` message that nobody holds, before any provider is called: the
    /// guard that keeps a redelivered queue message from sending twice.
    async fn claim(
        &self,
        id: &crate::domain::message::MessageId,
        token: &str,
        at: time::OffsetDateTime,
    ) -> StoreResult<ClaimResult>;
    /// Writes the claimed message's outcome (sent, failed...) and drops the claim, with its
    /// audit entry, in one transaction; `Conflict` if `token` no longer holds the claim.
    async fn settle(
        &self,
        message: &crate::domain::message::Message,
        token: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Gives a claimed message back, still `accepted`, to be retried later (its attempts kept),
    /// with `audit` when there is something to record (failed attempts).
    async fn release(
        &self,
        message: &crate::domain::message::Message,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()>;
    /// The message a provider knows by `provider_message_id` (what receipts carry).
    async fn by_provider_message(
        &self,
        kind: crate::domain::provider::ProviderKind,
        provider_message_id: &str,
    ) -> StoreResult<Option<crate::domain::message::Message>>;
    /// Records `report` if it moves the message forward ([`StatusReport::moves`]: never back,
    /// whatever order receipts arrive in), with an audit entry, atomically. `Ok(false)` when
    /// the message already stands at or past it (a duplicate or a late receipt).
    ///
    /// [`StatusReport::moves`]: crate::domain::message::StatusReport::moves
    async fn advance(
        &self,
        id: &crate::domain::message::MessageId,
        report: &crate::domain::message::StatusReport,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
    /// Sets the cost the provider billed for a message whose status does not change (a late
    /// receipt, or a price asked of the provider), with its audit entry, atomically; `false`
    /// when the message is gone.
    async fn correct_cost(
        &self,
        id: &crate::domain::message::MessageId,
        cost: crate::domain::cost::Money,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
    /// One page of up to `limit` of the tenant's messages created in `period`, oldest first,
    /// after the page token `after`; with the token to continue after, `None` at the end. An
    /// index Query in DynamoDB (`by_tenant_created`), never a scan.
    async fn messages_between(
        &self,
        tenant: &TenantId,
        period: &crate::domain::report::Period,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<crate::domain::report::MessageSummary>, Option<String>)>;
    /// One page of up to `limit` of the messages sent to one recipient (by recipient key),
    /// oldest first, after the page token `after`; with the token to continue after, `None`
    /// at the end. An index Query in DynamoDB (`by_recipient`), never a scan: what data-subject
    /// export and erasure read.
    async fn messages_to(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<StoredMessage>, Option<String>)>;
    /// One page of up to `limit` of one event's messages that match `filter`, newest first,
    /// resuming after `after`; with the position to resume after, `None` at the end. A page may
    /// hold fewer than `limit` messages and still have a next one (filters are applied to what
    /// the index reads). An index Query in DynamoDB (`by_event_created`, the time range as its
    /// key condition), never a scan.
    async fn event_messages(
        &self,
        tenant: &TenantId,
        event: &EventId,
        filter: &crate::domain::message::MessageFilter,
        after: Option<&crate::domain::message::MessagePosition>,
        limit: usize,
    ) -> StoreResult<(
        Vec<crate::domain::message::MessageListing>,
        Option<crate::domain::message::MessagePosition>,
    )>;
    /// Replaces the message `read` with `erased` (its data-subject erasure: same id), with its
    /// audit entry, atomically, if the stored message is still unclaimed and where `read` was
    /// (its status mark); `Conflict` otherwise (dispatch or a receipt got there first: read it
    /// again).
    async fn erase(
        &self,
        read: &crate::domain::message::Message,
        erased: &crate::domain::message::Message,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// Settings a tenant makes for all its events (message retention), with revision and audit.
#[async_trait]
pub trait TenantSettingsStore: Send + Sync {
    async fn tenant_settings(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Option<Revisioned<crate::domain::tenant_settings::TenantSettings>>>;
    /// Writes `settings` if the stored revision is still the one before it (none for the
    /// first), together with `audit`; `Conflict` otherwise.
    async fn put_tenant_settings(
        &self,
        tenant: &TenantId,
        settings: &Revisioned<crate::domain::tenant_settings::TenantSettings>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// Tenants' webhook endpoints for status events. Configuration changes carry their audit entry;
/// the status-webhooks worker keeps each endpoint's delivery health with atomic updates that
/// never overwrite the configuration (and configuration updates keep the health).
#[async_trait]
pub trait WebhookEndpointStore: Send + Sync {
    async fn endpoints(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Vec<crate::domain::webhook_endpoint::WebhookEndpoint>>;
    async fn endpoint(
        &self,
        tenant: &TenantId,
        id: &crate::domain::webhook_endpoint::WebhookEndpointId,
    ) -> StoreResult<Option<crate::domain::webhook_endpoint::WebhookEndpoint>>;
    /// `Conflict` when an endpoint with its id exists.
    async fn create_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &crate::domain::webhook_endpoint::WebhookEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Writes `active`, `revision` and the configuration if the stored revision is still
    /// `expected`; the delivery health is replaced only with `reset_health` (re-enabling).
    async fn update_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &crate::domain::webhook_endpoint::WebhookEndpoint,
        expected: u32,
        reset_health: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn delete_endpoint(
        &self,
        tenant: &TenantId,
        id: &crate::domain::webhook_endpoint::WebhookEndpointId,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// A delivery succeeded: the failure streak ends. Nothing happens to a deleted endpoint.
    async fn record_success(
        &self,
        tenant: &TenantId,
        id: &crate::domain::webhook_endpoint::WebhookEndpointId,
        at: time::OffsetDateTime,
    ) -> StoreResult<()>;
    /// A delivery failed: the streak grows (and starts at `at` if there was none). The health
    /// after it; `None` when the endpoint is gone.
    async fn record_failure(
        &self,
        tenant: &TenantId,
        id: &crate::domain::webhook_endpoint::WebhookEndpointId,
        at: time::OffsetDateTime,
    ) -> StoreResult<Option<crate::domain::webhook_endpoint::DeliveryHealth>>;
    /// Switches an active endpoint off with `reason`, together with its audit entry; `false`
    /// when it was already inactive or is gone.
    async fn disable_endpoint(
        &self,
        tenant: &TenantId,
        id: &crate::domain::webhook_endpoint::WebhookEndpointId,
        reason: &str,
        at: time::OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
}

/// Opt-outs and suppressions per tenant, recipient key and channel.
#[async_trait]
pub trait RecipientStore: Send + Sync {
    /// Records `block` for the recipient on `channel`, with its audit entry, atomically;
    /// `false` (and nothing written) when the recipient is already blocked that way.
    async fn block(
        &self,
        tenant: &TenantId,
        channel: Channel,
        recipient_key: &str,
        block: &crate::domain::suppression::Block,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
    /// Lifts a block (an opt-in keyword after an opt-out), with its audit entry; `false` when
    /// there was none.
    async fn unblock(
        &self,
        tenant: &TenantId,
        channel: Channel,
        recipient_key: &str,
        kind: crate::domain::suppression::BlockKind,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
    /// The blocks in force among `recipients` (channel, recipient key), in any order.
    async fn blocks(
        &self,
        tenant: &TenantId,
        recipients: &[(Channel, String)],
    ) -> StoreResult<Vec<(Channel, String, crate::domain::suppression::Block)>>;
    /// Records that the recipient wrote to the tenant's WhatsApp number behind `provider` at
    /// `at`, which opens the customer-service window there; an earlier time than the one
    /// stored changes nothing. Kept a little longer than the window, then expires.
    async fn record_inbound(
        &self,
        tenant: &TenantId,
        provider: &crate::domain::ProviderId,
        recipient_key: &str,
        at: time::OffsetDateTime,
    ) -> StoreResult<()>;
    /// When the recipient last wrote to `provider`, as far as the records still held tell.
    async fn last_inbound(
        &self,
        tenant: &TenantId,
        provider: &crate::domain::ProviderId,
        recipient_key: &str,
    ) -> StoreResult<Option<time::OffsetDateTime>>;
}

/// Everything held on one recipient of a tenant (one Query of their partition): what lookups,
/// the preference centre and data-subject export read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientLedger {
    /// The decision in force per channel and scope.
    pub consents: Vec<crate::domain::consent::ConsentRecord>,
    /// Every decision ever recorded, oldest first.
    pub history: Vec<crate::domain::consent::ConsentRecord>,
    pub preferences: Option<crate::domain::preferences::RecipientPreferences>,
    /// Opt-outs and suppressions from receipts, per channel.
    pub blocks: Vec<(Channel, crate::domain::suppression::Block)>,
}

pub use crate::domain::preferences::Standing;

/// One change to a recipient's ledger, written in one transaction with its audit entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerChange {
    /// New decisions: each is appended to the history and becomes current for its channel and
    /// scope.
    pub consents: Vec<crate::domain::consent::ConsentRecord>,
    /// New preferences, whose `revision` is one more than the stored one (1 for the first).
    pub preferences: Option<crate::domain::preferences::RecipientPreferences>,
}

/// Most consent decisions one change may carry (each is two items of one transaction).
pub const MAX_LEDGER_CONSENTS: usize = 20;

/// What erasing a recipient's ledger changes (see [`ConsentStore::erase_ledger`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerErasure {
    /// History records with their evidence digested.
    pub history: Vec<crate::domain::consent::ConsentRecord>,
    /// Decisions in force with their evidence digested.
    pub consents: Vec<crate::domain::consent::ConsentRecord>,
    /// The revision of the preferences to delete, if there are any.
    pub preferences_revision: Option<u32>,
}

impl LedgerErasure {
    pub fn is_empty(&self) -> bool {
        self.history.is_empty() && self.consents.is_empty() && self.preferences_revision.is_none()
    }
}

/// Most items one part of a ledger erasure writes (a transaction holds 100, two are the audit
/// entry's).
pub const MAX_ERASURE_ITEMS: usize = 90;

/// The consent ledger and preferences, per tenant and recipient key, in the recipient's
/// partition beside the blocks.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Writes `change` and `audit` atomically. `Conflict` when the preferences changed since they
    /// were read, or a newer decision is already current for one of the channels and scopes.
    async fn record(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        change: &LedgerChange,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn ledger(&self, tenant: &TenantId, recipient_key: &str) -> StoreResult<RecipientLedger>;
    /// Data-subject erasure of the ledger: rewrites the given decisions (history records by id,
    /// decisions in force by channel and scope, each only if still the one read) and deletes
    /// the preferences (if still at `preferences_revision`), with `audit`. Blocks are kept.
    /// Atomic in parts of at most [`MAX_ERASURE_ITEMS`] items, each with an audit entry (`audit`
    /// with the last, `<action>_part` with the others); every part is safe to write again, so a
    /// retry after a failed part finishes the job.
    async fn erase_ledger(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        erasure: &LedgerErasure,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Per recipient key among `asked` (channel, category, recipient key): its opt-outs and
    /// suppressions on those channels, its preferences and the decisions in force that cover
    /// those channels and categories, in one batched read (what sending checks).
    async fn standings(
        &self,
        tenant: &TenantId,
        asked: &[(Channel, Category, String)],
    ) -> StoreResult<std::collections::HashMap<String, Standing>>;
}

/// How many hash chains each audit scope (tenant or platform) has: appends to different chains
/// never contend. Never lower it once entries exist (verification walks this many chains).
pub const AUDIT_CHAINS: u32 = 16;

/// Reading the chained audit log back, for verification, export and reports.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The head of each of the scope's [`AUDIT_CHAINS`] chains (empty chains included).
    async fn audit_heads(&self, scope: &str) -> StoreResult<Vec<crate::domain::audit::ChainHead>>;
    /// Up to `limit` items of one chain in storage order, after the item keyed `after`; with
    /// the key to continue after, `None` at the end.
    async fn audit_page(
        &self,
        scope: &str,
        chain: u32,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<crate::domain::audit::StoredLink>, Option<String>)>;
    /// Every signed anchor of the scope, in number order.
    async fn anchors(&self, scope: &str) -> StoreResult<Vec<crate::domain::audit::SignedAnchor>>;
    /// The scope's newest anchor.
    async fn latest_anchor(
        &self,
        scope: &str,
    ) -> StoreResult<Option<crate::domain::audit::SignedAnchor>>;
    /// Adds an anchor; `Conflict` when the scope already has one with its number.
    async fn put_anchor(&self, anchor: &crate::domain::audit::SignedAnchor) -> StoreResult<()>;
    /// One page of the scopes that have audit entries (tenants, `platform`), in name order,
    /// after `after`; with the name to continue after, `None` at the end.
    async fn audit_scopes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<String>, Option<String>)>;
}
