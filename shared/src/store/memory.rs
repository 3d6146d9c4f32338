//! In-memory adapters of the storage ports, with the same conditional-write semantics as the
//! DynamoDB ones: for logic and handler tests that need no emulator.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Claim, ClaimResult, DispatchClaim, ExpectedRevision, IdempotencyStore, LayerContent,
    MessageStore, Owner, ProviderStore, Revisioned, SnapshotStore, SnapshotSummary, StoreError,
    StoreResult, StoredMessage, StoredResponse, TemplateStore,
};
use crate::domain::audit::{AuditEntry, ChainHead, ChainedEntry, StoredLink, chain_of};
use crate::domain::brand::Brand;
use crate::domain::message::{
    Message, MessageFilter, MessageId, MessageListing, MessagePosition, MessageStatus,
};
use crate::domain::provider::{EventProviderEntry, ProviderConfig};
use crate::domain::report::{MessageSummary, Period, sortable_time};
use crate::domain::resolution::EventSettings;
use crate::domain::snapshot::{Activation, Snapshot};
use crate::domain::suppression::{Block, BlockKind};
use crate::domain::template::{TemplateState, TemplateVersion};
use crate::domain::tenant_settings::TenantSettings;
use crate::domain::webhook_endpoint::{DeliveryHealth, WebhookEndpoint, WebhookEndpointId};
use crate::domain::{Category, Channel, EventId, ProviderId, TenantId};
use time::OffsetDateTime;

#[derive(Debug, Default)]
struct State {
    tenant_providers: BTreeMap<(TenantId, ProviderId), ProviderConfig>,
    event_providers: BTreeMap<(TenantId, EventId, ProviderId), EventProviderEntry>,
    template_heads: HashMap<(String, Category, Channel), TemplateVersion>,
    template_versions: BTreeMap<(String, Category, Channel, u32), TemplateVersion>,
    brands: HashMap<String, Revisioned<Brand>>,
    settings: HashMap<String, Revisioned<EventSettings>>,
    snapshots: BTreeMap<(String, u32), Snapshot>,
    activations: HashMap<String, Activation>,
    idempotency: HashMap<String, (String, Option<StoredResponse>)>,
    quotas: HashMap<String, u32>,
    messages: HashMap<MessageId, StoredMessage>,
    webhook_endpoints: BTreeMap<(TenantId, WebhookEndpointId), WebhookEndpoint>,
    blocks: BTreeMap<(TenantId, String, Channel, BlockKind), Block>,
    /// When each recipient last wrote to a provider (the WhatsApp service window).
    inbound: HashMap<(TenantId, ProviderId, String), OffsetDateTime>,
    /// Consent ledgers and preferences per tenant and recipient key (blocks stay in `blocks`).
    ledgers: BTreeMap<(TenantId, String), super::RecipientLedger>,
    tenant_settings: HashMap<TenantId, Revisioned<TenantSettings>>,
    audit: AuditLog,
}

/// All ports in one mutex-guarded state.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> StoreResult<T>) -> StoreResult<T> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("poisoned")))?;
        f(&mut state)
    }

    /// Every audit entry written so far, oldest first.
    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        self.state
            .lock()
            .map(|s| s.audit.entries.clone())
            .unwrap_or_default()
    }
}

/// The audit log in memory: every entry in append order, and the same entries chained per
/// scope and chain exactly as the DynamoDB adapter chains them.
#[derive(Debug, Default)]
struct AuditLog {
    entries: Vec<AuditEntry>,
    chains: BTreeMap<(String, u32), Vec<ChainedEntry>>,
    anchors: BTreeMap<(String, u64), crate::domain::audit::SignedAnchor>,
}

impl AuditLog {
    fn push(&mut self, entry: AuditEntry) {
        let chain = chain_of(&entry.target, super::AUDIT_CHAINS);
        let links = self.chains.entry((entry.scope.clone(), chain)).or_default();
        let head = links
            .last()
            .map_or_else(|| ChainHead::empty(chain), ChainedEntry::head);
        links.push(ChainedEntry::after(&head, entry.clone()));
        self.entries.push(entry);
    }
}

fn expect(current: Option<u32>, expected: ExpectedRevision) -> StoreResult<()> {
    if current == expected {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

fn event_key(tenant: &TenantId, event: &EventId) -> String {
    Owner::Event(tenant.clone(), event.clone()).partition()
}

#[async_trait]
impl ProviderStore for MemoryStore {
    async fn tenant_providers(&self, tenant: &TenantId) -> StoreResult<Vec<ProviderConfig>> {
        self.with(|s| {
            Ok(s.tenant_providers
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|(_, p)| p.clone())
                .collect())
        })
    }

    async fn event_providers(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> StoreResult<Vec<EventProviderEntry>> {
        self.with(|s| {
            Ok(s.event_providers
                .iter()
                .filter(|((t, e, _), _)| t == tenant && e == event)
                .map(|(_, p)| p.clone())
                .collect())
        })
    }

    async fn tenant_provider(
        &self,
        tenant: &TenantId,
        id: &ProviderId,
    ) -> StoreResult<Option<ProviderConfig>> {
        self.with(|s| {
            Ok(s.tenant_providers
                .get(&(tenant.clone(), id.clone()))
                .cloned())
        })
    }

    async fn event_provider(
        &self,
        tenant: &TenantId,
        event: &EventId,
        id: &ProviderId,
    ) -> StoreResult<Option<EventProviderEntry>> {
        self.with(|s| {
            Ok(s.event_providers
                .get(&(tenant.clone(), event.clone(), id.clone()))
                .cloned())
        })
    }

    async fn put_tenant_provider(
        &self,
        tenant: &TenantId,
        provider: &ProviderConfig,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let key = (tenant.clone(), provider.id.clone());
            expect(s.tenant_providers.get(&key).map(|p| p.revision), expected)?;
            s.tenant_providers.insert(key, provider.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn put_event_provider(
        &self,
        tenant: &TenantId,
        event: &EventId,
        entry: &EventProviderEntry,
        expected: ExpectedRevision,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let key = (tenant.clone(), event.clone(), entry.id().clone());
            expect(
                s.event_providers
                    .get(&key)
                    .map(EventProviderEntry::revision),
                expected,
            )?;
            s.event_providers.insert(key, entry.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn by_receipt_token(
        &self,
        token: &str,
    ) -> StoreResult<Option<(TenantId, ProviderConfig)>> {
        let named = |p: &ProviderConfig| p.receipts.as_ref().is_some_and(|r| r.token == token);
        self.with(|s| {
            let tenant_default = s
                .tenant_providers
                .iter()
                .find(|(_, p)| named(p))
                .map(|((t, _), p)| (t.clone(), p.clone()));
            let event_own = || {
                s.event_providers.iter().find_map(|((t, _, _), e)| match e {
                    EventProviderEntry::Own(p) if named(p) => Some((t.clone(), (**p).clone())),
                    _ => None,
                })
            };
            Ok(tenant_default.or_else(event_own))
        })
    }

    async fn delete_provider(
        &self,
        owner: &Owner,
        id: &ProviderId,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            match owner {
                Owner::Tenant(t) => {
                    let key = (t.clone(), id.clone());
                    expect(
                        s.tenant_providers.get(&key).map(|p| p.revision),
                        Some(revision),
                    )?;
                    s.tenant_providers.remove(&key);
                }
                Owner::Event(t, e) => {
                    let key = (t.clone(), e.clone(), id.clone());
                    expect(
                        s.event_providers
                            .get(&key)
                            .map(EventProviderEntry::revision),
                        Some(revision),
                    )?;
                    s.event_providers.remove(&key);
                }
                Owner::Platform => return Err(StoreError::Conflict),
            }
            s.audit.push(audit.clone());
            Ok(())
        })
    }
}

#[async_trait]
impl TemplateStore for MemoryStore {
    async fn layer(&self, owner: &Owner) -> StoreResult<LayerContent> {
        let pk = owner.partition();
        self.with(|s| {
            let mut templates: Vec<TemplateVersion> = s
                .template_heads
                .iter()
                .filter(|((p, _, _), _)| *p == pk)
                .map(|(_, t)| t.clone())
                .collect();
            templates.sort_by_key(|t| (t.category, t.channel));
            let pending = s
                .template_versions
                .iter()
                .filter(|((p, _, _, _), t)| *p == pk && t.state == TemplateState::Submitted)
                .map(|(_, t)| t.clone())
                .collect();
            Ok(LayerContent {
                templates,
                pending,
                brand: s.brands.get(&pk).cloned(),
                settings: s.settings.get(&pk).cloned(),
            })
        })
    }

    async fn current_template(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
    ) -> StoreResult<Option<TemplateVersion>> {
        self.with(|s| {
            Ok(s.template_heads
                .get(&(owner.partition(), category, channel))
                .cloned())
        })
    }

    async fn template_versions(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        before: Option<u32>,
        limit: usize,
    ) -> StoreResult<(Vec<TemplateVersion>, Option<u32>)> {
        let pk = owner.partition();
        self.with(|s| {
            let mut page: Vec<TemplateVersion> = s
                .template_versions
                .iter()
                .rev()
                .filter(|((p, cat, ch, v), _)| {
                    *p == pk && *cat == category && *ch == channel && before.is_none_or(|b| *v < b)
                })
                .map(|(_, t)| t.clone())
                .collect();
            let more = page.len() > limit;
            page.truncate(limit);
            let next = more.then(|| page.last().map(|t| t.version)).flatten();
            Ok((page, next))
        })
    }

    async fn latest_version(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
    ) -> StoreResult<u32> {
        let pk = owner.partition();
        self.with(|s| {
            Ok(s.template_versions
                .keys()
                .filter(|(p, cat, ch, _)| *p == pk && *cat == category && *ch == channel)
                .map(|(_, _, _, v)| *v)
                .max()
                .unwrap_or(0))
        })
    }

    async fn put_template(
        &self,
        owner: &Owner,
        template: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let pk = owner.partition();
        self.with(|s| {
            let vkey = (
                pk.clone(),
                template.category,
                template.channel,
                template.version,
            );
            let hkey = (pk.clone(), template.category, template.channel);
            if s.template_versions.contains_key(&vkey) {
                return Err(StoreError::Conflict);
            }
            if s.template_heads
                .get(&hkey)
                .is_some_and(|h| h.version >= template.version)
            {
                return Err(StoreError::Conflict);
            }
            s.template_versions.insert(vkey, template.clone());
            s.template_heads.insert(hkey, template.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn template_version(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        version: u32,
    ) -> StoreResult<Option<TemplateVersion>> {
        self.with(|s| {
            Ok(s.template_versions
                .get(&(owner.partition(), category, channel, version))
                .cloned())
        })
    }

    async fn submit_template(
        &self,
        owner: &Owner,
        template: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let vkey = (
                owner.partition(),
                template.category,
                template.channel,
                template.version,
            );
            if s.template_versions.contains_key(&vkey) {
                return Err(StoreError::Conflict);
            }
            s.template_versions.insert(vkey, template.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn review_template(
        &self,
        owner: &Owner,
        reviewed: &TemplateVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let pk = owner.partition();
            let vkey = (
                pk.clone(),
                reviewed.category,
                reviewed.channel,
                reviewed.version,
            );
            let hkey = (pk, reviewed.category, reviewed.channel);
            if s.template_versions.get(&vkey).map(|t| t.state) != Some(TemplateState::Submitted) {
                return Err(StoreError::Conflict);
            }
            if reviewed.state == TemplateState::Published {
                if s.template_heads
                    .get(&hkey)
                    .is_some_and(|h| h.version >= reviewed.version)
                {
                    return Err(StoreError::Conflict);
                }
                s.template_heads.insert(hkey, reviewed.clone());
            }
            s.template_versions.insert(vkey, reviewed.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn remove_template(
        &self,
        owner: &Owner,
        category: Category,
        channel: Channel,
        version: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let hkey = (owner.partition(), category, channel);
            expect(
                s.template_heads.get(&hkey).map(|t| t.version),
                Some(version),
            )?;
            s.template_heads.remove(&hkey);
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn put_brand(
        &self,
        owner: &Owner,
        brand: &Revisioned<Brand>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let pk = owner.partition();
            expect(
                s.brands.get(&pk).map(|b| b.revision),
                brand.revision.checked_sub(1).filter(|r| *r > 0),
            )?;
            s.brands.insert(pk, brand.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn remove_brand(
        &self,
        owner: &Owner,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let pk = owner.partition();
            expect(s.brands.get(&pk).map(|b| b.revision), Some(revision))?;
            s.brands.remove(&pk);
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn put_settings(
        &self,
        tenant: &TenantId,
        event: &EventId,
        settings: &Revisioned<EventSettings>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let pk = event_key(tenant, event);
            expect(
                s.settings.get(&pk).map(|b| b.revision),
                settings.revision.checked_sub(1).filter(|r| *r > 0),
            )?;
            s.settings.insert(pk, settings.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn latest_version(&self, tenant: &TenantId, event: &EventId) -> StoreResult<u32> {
        let pk = event_key(tenant, event);
        self.with(|s| {
            Ok(s.snapshots
                .keys()
                .filter(|(p, _)| *p == pk)
                .map(|(_, v)| *v)
                .max()
                .unwrap_or(0))
        })
    }

    async fn create_and_activate(
        &self,
        tenant: &TenantId,
        event: &EventId,
        snapshot: &Snapshot,
        previous: Option<u32>,
        audit: &AuditEntry,
    ) -> StoreResult<Activation> {
        let pk = event_key(tenant, event);
        self.with(|s| {
            if s.snapshots.contains_key(&(pk.clone(), snapshot.version)) {
                return Err(StoreError::Conflict);
            }
            expect(s.activations.get(&pk).map(|a| a.version), previous)?;
            let activation = Activation {
                version: snapshot.version,
                activated_at: snapshot.created_at,
                activated_by: snapshot.created_by.clone(),
            };
            s.snapshots
                .insert((pk.clone(), snapshot.version), snapshot.clone());
            s.activations.insert(pk, activation.clone());
            s.audit.push(audit.clone());
            Ok(activation)
        })
    }

    async fn snapshot(
        &self,
        tenant: &TenantId,
        event: &EventId,
        version: u32,
    ) -> StoreResult<Option<Snapshot>> {
        self.with(|s| {
            Ok(s.snapshots
                .get(&(event_key(tenant, event), version))
                .cloned())
        })
    }

    async fn snapshots(
        &self,
        tenant: &TenantId,
        event: &EventId,
        before: Option<u32>,
        limit: usize,
    ) -> StoreResult<(Vec<SnapshotSummary>, Option<u32>)> {
        let pk = event_key(tenant, event);
        self.with(|s| {
            let mut page: Vec<SnapshotSummary> = s
                .snapshots
                .iter()
                .rev()
                .filter(|((p, v), _)| *p == pk && before.is_none_or(|b| *v < b))
                .map(|(_, snap)| SnapshotSummary {
                    version: snap.version,
                    created_at: snap.created_at,
                    created_by: snap.created_by.clone(),
                    digest: snap.digest.clone(),
                })
                .collect();
            let more = page.len() > limit;
            page.truncate(limit);
            let next = more.then(|| page.last().map(|s| s.version)).flatten();
            Ok((page, next))
        })
    }

    async fn activation(
        &self,
        tenant: &TenantId,
        event: &EventId,
    ) -> StoreResult<Option<Activation>> {
        self.with(|s| Ok(s.activations.get(&event_key(tenant, event)).cloned()))
    }

    async fn activate(
        &self,
        tenant: &TenantId,
        event: &EventId,
        version: u32,
        previous: Option<u32>,
        audit: &AuditEntry,
    ) -> StoreResult<Activation> {
        let pk = event_key(tenant, event);
        self.with(|s| {
            if !s.snapshots.contains_key(&(pk.clone(), version)) {
                return Err(StoreError::Conflict);
            }
            expect(s.activations.get(&pk).map(|a| a.version), previous)?;
            let activation = Activation {
                version,
                activated_at: time::OffsetDateTime::now_utc(),
                activated_by: audit.actor.clone(),
            };
            s.activations.insert(pk, activation.clone());
            s.audit.push(audit.clone());
            Ok(activation)
        })
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(&self, key: &str, fingerprint: &str) -> StoreResult<Claim> {
        self.with(|s| match s.idempotency.get(key) {
            None => {
                s.idempotency
                    .insert(key.to_owned(), (fingerprint.to_owned(), None));
                Ok(Claim::Fresh)
            }
            Some((f, _)) if f != fingerprint => Ok(Claim::Mismatch),
            Some((_, Some(response))) => Ok(Claim::Replay(response.clone())),
            Some((_, None)) => Ok(Claim::InFlight),
        })
    }

    async fn finish(
        &self,
        key: &str,
        fingerprint: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        self.with(|s| {
            s.idempotency.insert(
                key.to_owned(),
                (fingerprint.to_owned(), Some(response.clone())),
            );
            Ok(())
        })
    }

    async fn release(&self, key: &str) -> StoreResult<()> {
        self.with(|s| {
            if matches!(s.idempotency.get(key), Some((_, None))) {
                s.idempotency.remove(key);
            }
            Ok(())
        })
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn create_many(&self, messages: &[(Message, AuditEntry)]) -> StoreResult<Vec<bool>> {
        self.with(|s| {
            Ok(messages
                .iter()
                .map(|(message, audit)| {
                    if s.messages.contains_key(&message.id) {
                        return false;
                    }
                    s.messages.insert(
                        message.id.clone(),
                        StoredMessage {
                            message: message.clone(),
                            claim: None,
                        },
                    );
                    s.audit.push(audit.clone());
                    true
                })
                .collect())
        })
    }

    async fn message(&self, id: &MessageId) -> StoreResult<Option<StoredMessage>> {
        self.with(|s| Ok(s.messages.get(id).cloned()))
    }

    async fn claim(
        &self,
        id: &MessageId,
        token: &str,
        at: time::OffsetDateTime,
    ) -> StoreResult<ClaimResult> {
        self.with(|s| {
            let Some(stored) = s.messages.get_mut(id) else {
                return Ok(ClaimResult::Missing);
            };
            if stored.message.status != MessageStatus::Accepted {
                return Ok(ClaimResult::Settled(stored.message.status));
            }
            if let Some(claim) = &stored.claim {
                return Ok(ClaimResult::Held(claim.clone()));
            }
            stored.claim = Some(DispatchClaim {
                token: token.to_owned(),
                at,
            });
            Ok(ClaimResult::Claimed(Box::new(stored.message.clone())))
        })
    }

    async fn settle(&self, message: &Message, token: &str, audit: &AuditEntry) -> StoreResult<()> {
        self.with(|s| {
            let stored = s
                .messages
                .get_mut(&message.id)
                .ok_or(StoreError::Conflict)?;
            if stored.claim.as_ref().map(|c| c.token.as_str()) != Some(token) {
                return Err(StoreError::Conflict);
            }
            *stored = StoredMessage {
                message: message.clone(),
                claim: None,
            };
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn by_provider_message(
        &self,
        kind: crate::domain::provider::ProviderKind,
        provider_message_id: &str,
    ) -> StoreResult<Option<Message>> {
        self.with(|s| {
            Ok(s.messages
                .values()
                .find(|m| {
                    m.message.provider_kind == Some(kind)
                        && m.message.provider_message_id.as_deref() == Some(provider_message_id)
                })
                .map(|m| m.message.clone()))
        })
    }

    async fn advance(
        &self,
        id: &MessageId,
        report: &crate::domain::message::StatusReport,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        self.with(|s| {
            let Some(stored) = s.messages.get_mut(id) else {
                return Err(StoreError::Conflict);
            };
            if !report.moves(&stored.message) {
                return Ok(false);
            }
            report.apply_to(&mut stored.message);
            s.audit.push(audit.clone());
            Ok(true)
        })
    }

    async fn correct_cost(
        &self,
        id: &MessageId,
        cost: crate::domain::cost::Money,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        self.with(|s| {
            let Some(stored) = s.messages.get_mut(id) else {
                return Ok(false);
            };
            stored.message.cost = Some(cost);
            s.audit.push(audit.clone());
            Ok(true)
        })
    }

    async fn release(
        &self,
        message: &Message,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()> {
        self.with(|s| {
            let stored = s
                .messages
                .get_mut(&message.id)
                .ok_or(StoreError::Conflict)?;
            if stored.claim.as_ref().map(|c| c.token.as_str()) != Some(token) {
                return Err(StoreError::Conflict);
            }
            *stored = StoredMessage {
                message: message.clone(),
                claim: None,
            };
            if let Some(audit) = audit {
                s.audit.push(audit.clone());
            }
            Ok(())
        })
    }

    async fn messages_between(
        &self,
        tenant: &TenantId,
        period: &Period,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<MessageSummary>, Option<String>)> {
        // The same order and page tokens as the DynamoDB index: `<sortable created_at>#<id>`.
        self.with(|s| {
            let mut keyed: Vec<(String, MessageSummary)> = s
                .messages
                .values()
                .map(|m| &m.message)
                .filter(|m| &m.tenant == tenant && period.contains(m.created_at))
                .map(|m| {
                    (
                        format!("{}#{}", sortable_time(m.created_at), m.id),
                        MessageSummary::from(m),
                    )
                })
                .filter(|(key, _)| after.is_none_or(|a| key.as_str() > a))
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            let more = keyed.len() > limit;
            keyed.truncate(limit);
            let next = more.then(|| keyed.last().map(|(k, _)| k.clone())).flatten();
            Ok((keyed.into_iter().map(|(_, m)| m).collect(), next))
        })
    }

    async fn messages_to(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<StoredMessage>, Option<String>)> {
        // The same order and page tokens as the DynamoDB index: `<sortable created_at>#<id>`.
        self.with(|s| {
            let mut keyed: Vec<(String, StoredMessage)> = s
                .messages
                .values()
                .filter(|m| &m.message.tenant == tenant && m.message.recipient_key == recipient_key)
                .map(|m| {
                    (
                        format!("{}#{}", sortable_time(m.message.created_at), m.message.id),
                        m.clone(),
                    )
                })
                .filter(|(key, _)| after.is_none_or(|a| key.as_str() > a))
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            let more = keyed.len() > limit;
            keyed.truncate(limit);
            let next = more.then(|| keyed.last().map(|(k, _)| k.clone())).flatten();
            Ok((keyed.into_iter().map(|(_, m)| m).collect(), next))
        })
    }

    async fn event_messages(
        &self,
        tenant: &TenantId,
        event: &EventId,
        filter: &MessageFilter,
        after: Option<&MessagePosition>,
        limit: usize,
    ) -> StoreResult<(Vec<MessageListing>, Option<MessagePosition>)> {
        // The same order and positions as the DynamoDB index, newest first.
        self.with(|s| {
            let mut keyed: Vec<(MessagePosition, MessageListing)> = s
                .messages
                .values()
                .map(|m| &m.message)
                .filter(|m| &m.tenant == tenant && &m.event == event)
                .map(|m| {
                    (
                        MessagePosition::of(m.created_at, &m.id),
                        MessageListing::from(m),
                    )
                })
                .filter(|(position, listing)| {
                    after.is_none_or(|a| position < a) && filter.matches(listing)
                })
                .collect();
            keyed.sort_by(|a, b| b.0.cmp(&a.0));
            let more = keyed.len() > limit;
            keyed.truncate(limit);
            let next = more.then(|| keyed.last().map(|(p, _)| p.clone())).flatten();
            Ok((keyed.into_iter().map(|(_, m)| m).collect(), next))
        })
    }

    async fn erase(&self, read: &Message, erased: &Message, audit: &AuditEntry) -> StoreResult<()> {
        self.with(|s| {
            let stored = s.messages.get_mut(&read.id).ok_or(StoreError::Conflict)?;
            let mark = crate::domain::message::StatusMark::of_message;
            if stored.claim.is_some() || mark(&stored.message) != mark(read) {
                return Err(StoreError::Conflict);
            }
            stored.message = erased.clone();
            s.audit.push(audit.clone());
            Ok(())
        })
    }
}

#[async_trait]
impl super::QuotaStore for MemoryStore {
    async fn take(&self, key: &str, limit: u32, _: time::OffsetDateTime) -> StoreResult<bool> {
        self.with(|s| {
            let used = s.quotas.entry(key.to_owned()).or_default();
            if *used >= limit {
                return Ok(false);
            }
            *used += 1;
            Ok(true)
        })
    }
}

#[async_trait]
impl super::TenantSettingsStore for MemoryStore {
    async fn tenant_settings(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Option<Revisioned<TenantSettings>>> {
        self.with(|s| Ok(s.tenant_settings.get(tenant).cloned()))
    }

    async fn put_tenant_settings(
        &self,
        tenant: &TenantId,
        settings: &Revisioned<TenantSettings>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            expect(
                s.tenant_settings.get(tenant).map(|t| t.revision),
                settings.revision.checked_sub(1).filter(|r| *r > 0),
            )?;
            s.tenant_settings.insert(tenant.clone(), settings.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }
}

#[async_trait]
impl super::WebhookEndpointStore for MemoryStore {
    async fn endpoints(&self, tenant: &TenantId) -> StoreResult<Vec<WebhookEndpoint>> {
        self.with(|s| {
            Ok(s.webhook_endpoints
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|(_, e)| e.clone())
                .collect())
        })
    }

    async fn endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        self.with(|s| {
            Ok(s.webhook_endpoints
                .get(&(tenant.clone(), id.clone()))
                .cloned())
        })
    }

    async fn create_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let key = (tenant.clone(), endpoint.id.clone());
            if s.webhook_endpoints.contains_key(&key) {
                return Err(StoreError::Conflict);
            }
            s.webhook_endpoints.insert(key, endpoint.clone());
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn update_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        expected: u32,
        reset_health: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let stored = s
                .webhook_endpoints
                .get_mut(&(tenant.clone(), endpoint.id.clone()))
                .ok_or(StoreError::Conflict)?;
            expect(Some(stored.revision), Some(expected))?;
            let health = if reset_health {
                endpoint.health.clone()
            } else {
                stored.health.clone()
            };
            *stored = WebhookEndpoint {
                health,
                ..endpoint.clone()
            };
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn delete_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        revision: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let key = (tenant.clone(), id.clone());
            expect(
                s.webhook_endpoints.get(&key).map(|e| e.revision),
                Some(revision),
            )?;
            s.webhook_endpoints.remove(&key);
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn record_success(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        at: time::OffsetDateTime,
    ) -> StoreResult<()> {
        self.with(|s| {
            if let Some(e) = s.webhook_endpoints.get_mut(&(tenant.clone(), id.clone())) {
                e.health.consecutive_failures = 0;
                e.health.failing_since = None;
                e.health.last_success_at = Some(at);
            }
            Ok(())
        })
    }

    async fn record_failure(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        at: time::OffsetDateTime,
    ) -> StoreResult<Option<DeliveryHealth>> {
        self.with(|s| {
            Ok(s.webhook_endpoints
                .get_mut(&(tenant.clone(), id.clone()))
                .map(|e| {
                    e.health.consecutive_failures += 1;
                    e.health.failing_since.get_or_insert(at);
                    e.health.last_failure_at = Some(at);
                    e.health.clone()
                }))
        })
    }

    async fn disable_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        reason: &str,
        at: time::OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        self.with(|s| {
            let Some(e) = s
                .webhook_endpoints
                .get_mut(&(tenant.clone(), id.clone()))
                .filter(|e| e.active)
            else {
                return Ok(false);
            };
            e.active = false;
            e.revision += 1;
            e.health.disabled_at = Some(at);
            e.health.disabled_reason = Some(reason.to_owned());
            s.audit.push(audit.clone());
            Ok(true)
        })
    }
}

#[async_trait]
impl crate::store::RecipientStore for MemoryStore {
    async fn block(
        &self,
        tenant: &TenantId,
        channel: Channel,
        recipient_key: &str,
        block: &Block,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        self.with(|s| {
            let key = (
                tenant.clone(),
                recipient_key.to_owned(),
                channel,
                block.kind,
            );
            if s.blocks.contains_key(&key) {
                return Ok(false);
            }
            s.blocks.insert(key, block.clone());
            s.audit.push(audit.clone());
            Ok(true)
        })
    }

    async fn unblock(
        &self,
        tenant: &TenantId,
        channel: Channel,
        recipient_key: &str,
        kind: BlockKind,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        self.with(|s| {
            let key = (tenant.clone(), recipient_key.to_owned(), channel, kind);
            if s.blocks.remove(&key).is_none() {
                return Ok(false);
            }
            s.audit.push(audit.clone());
            Ok(true)
        })
    }

    async fn blocks(
        &self,
        tenant: &TenantId,
        recipients: &[(Channel, String)],
    ) -> StoreResult<Vec<(Channel, String, Block)>> {
        let wanted: std::collections::HashSet<&(Channel, String)> = recipients.iter().collect();
        self.with(|s| {
            Ok(s.blocks
                .iter()
                .filter(|((t, key, channel, _), _)| {
                    t == tenant && wanted.contains(&(*channel, key.clone()))
                })
                .map(|((_, key, channel, _), b)| (*channel, key.clone(), b.clone()))
                .collect())
        })
    }

    async fn record_inbound(
        &self,
        tenant: &TenantId,
        provider: &crate::domain::ProviderId,
        recipient_key: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.with(|s| {
            let latest = s
                .inbound
                .entry((tenant.clone(), provider.clone(), recipient_key.to_owned()))
                .or_insert(at);
            *latest = (*latest).max(at);
            Ok(())
        })
    }

    async fn last_inbound(
        &self,
        tenant: &TenantId,
        provider: &crate::domain::ProviderId,
        recipient_key: &str,
    ) -> StoreResult<Option<OffsetDateTime>> {
        self.with(|s| {
            Ok(s.inbound
                .get(&(tenant.clone(), provider.clone(), recipient_key.to_owned()))
                .copied())
        })
    }
}

#[async_trait]
impl crate::store::AuditStore for MemoryStore {
    async fn anchors(&self, scope: &str) -> StoreResult<Vec<crate::domain::audit::SignedAnchor>> {
        self.with(|s| {
            Ok(s.audit
                .anchors
                .range((scope.to_owned(), 0)..=(scope.to_owned(), u64::MAX))
                .map(|(_, a)| a.clone())
                .collect())
        })
    }

    async fn latest_anchor(
        &self,
        scope: &str,
    ) -> StoreResult<Option<crate::domain::audit::SignedAnchor>> {
        Ok(self.anchors(scope).await?.pop())
    }

    async fn put_anchor(&self, anchor: &crate::domain::audit::SignedAnchor) -> StoreResult<()> {
        self.with(|s| {
            let key = (anchor.anchor.scope.clone(), anchor.anchor.seq);
            if s.audit.anchors.contains_key(&key) {
                return Err(StoreError::Conflict);
            }
            s.audit.anchors.insert(key, anchor.clone());
            Ok(())
        })
    }

    async fn audit_scopes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<String>, Option<String>)> {
        self.with(|s| {
            let scopes: std::collections::BTreeSet<&String> =
                s.audit.chains.keys().map(|(scope, _)| scope).collect();
            let page: Vec<String> = scopes
                .into_iter()
                .filter(|scope| after.is_none_or(|a| scope.as_str() > a))
                .take(limit + 1)
                .cloned()
                .collect();
            let next = (page.len() > limit).then(|| page[limit - 1].clone());
            Ok((page.into_iter().take(limit).collect(), next))
        })
    }

    async fn audit_heads(&self, scope: &str) -> StoreResult<Vec<ChainHead>> {
        self.with(|s| {
            Ok((0..super::AUDIT_CHAINS)
                .map(|chain| {
                    s.audit
                        .chains
                        .get(&(scope.to_owned(), chain))
                        .and_then(|links| links.last())
                        .map_or_else(|| ChainHead::empty(chain), ChainedEntry::head)
                })
                .collect())
        })
    }

    async fn audit_page(
        &self,
        scope: &str,
        chain: u32,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<StoredLink>, Option<String>)> {
        self.with(|s| {
            let links: Vec<StoredLink> = s
                .audit
                .chains
                .get(&(scope.to_owned(), chain))
                .map(|links| {
                    links
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (i as u64 + 1, e))
                        .map(|(position, e)| StoredLink {
                            key: format!("E#{position:012}"),
                            position: Some(position),
                            entry: Ok(e.clone()),
                        })
                        .filter(|l| after.is_none_or(|a| l.key.as_str() > a))
                        .take(limit)
                        .collect()
                })
                .unwrap_or_default();
            let next = (links.len() == limit)
                .then(|| links.last().map(|l| l.key.clone()))
                .flatten();
            Ok((links, next))
        })
    }
}

#[async_trait]
impl super::ConsentStore for MemoryStore {
    async fn record(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        change: &super::LedgerChange,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        use crate::domain::consent::ConsentRecord;
        self.with(|s| {
            let ledger = s
                .ledgers
                .entry((tenant.clone(), recipient_key.to_owned()))
                .or_default();
            // All conditions first: like the DynamoDB transaction, all or nothing.
            if let Some(p) = &change.preferences {
                expect(
                    ledger.preferences.as_ref().map(|x| x.revision),
                    p.revision.checked_sub(1).filter(|r| *r > 0),
                )?;
            }
            let mut newest: HashMap<_, &ConsentRecord> = HashMap::new();
            for record in &change.consents {
                let slot = newest
                    .entry((record.channel, record.scope))
                    .or_insert(record);
                if record.supersedes(slot) {
                    *slot = record;
                }
            }
            let stale = newest.values().any(|record| {
                ledger.consents.iter().any(|c| {
                    (c.channel, c.scope) == (record.channel, record.scope) && !record.supersedes(c)
                })
            });
            if stale {
                return Err(StoreError::Conflict);
            }
            ledger.history.extend(change.consents.iter().cloned());
            ledger.history.sort_by(|a, b| a.id.cmp(&b.id));
            for record in newest.into_values() {
                ledger
                    .consents
                    .retain(|c| (c.channel, c.scope) != (record.channel, record.scope));
                ledger.consents.push(record.clone());
            }
            if let Some(p) = &change.preferences {
                ledger.preferences = Some(p.clone());
            }
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn erase_ledger(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
        erasure: &super::LedgerErasure,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.with(|s| {
            let key = (tenant.clone(), recipient_key.to_owned());
            if let Some(ledger) = s.ledgers.get_mut(&key) {
                // All conditions first: like the DynamoDB transaction, all or nothing.
                let current_read = erasure.consents.iter().all(|e| {
                    ledger
                        .consents
                        .iter()
                        .any(|c| (c.channel, c.scope, &c.id) == (e.channel, e.scope, &e.id))
                });
                let revision = ledger.preferences.as_ref().map(|p| p.revision);
                if !current_read
                    || erasure
                        .preferences_revision
                        .is_some_and(|r| revision != Some(r))
                {
                    return Err(StoreError::Conflict);
                }
                for record in &erasure.history {
                    if let Some(old) = ledger.history.iter_mut().find(|h| h.id == record.id) {
                        *old = record.clone();
                    }
                }
                for record in &erasure.consents {
                    if let Some(old) = ledger.consents.iter_mut().find(|c| c.id == record.id) {
                        *old = record.clone();
                    }
                }
                if erasure.preferences_revision.is_some() {
                    ledger.preferences = None;
                }
            } else if !erasure.is_empty() {
                return Err(StoreError::Conflict);
            }
            s.audit.push(audit.clone());
            Ok(())
        })
    }

    async fn ledger(
        &self,
        tenant: &TenantId,
        recipient_key: &str,
    ) -> StoreResult<super::RecipientLedger> {
        self.with(|s| {
            let mut ledger = s
                .ledgers
                .get(&(tenant.clone(), recipient_key.to_owned()))
                .cloned()
                .unwrap_or_default();
            ledger.blocks = s
                .blocks
                .iter()
                .filter(|((t, key, _, _), _)| t == tenant && key == recipient_key)
                .map(|((_, _, channel, _), b)| (*channel, b.clone()))
                .collect();
            Ok(ledger)
        })
    }

    async fn standings(
        &self,
        tenant: &TenantId,
        asked: &[(Channel, Category, String)],
    ) -> StoreResult<HashMap<String, super::Standing>> {
        self.with(|s| {
            let mut standings: HashMap<String, super::Standing> = HashMap::new();
            for (channel, category, key) in asked {
                for kind in [BlockKind::OptedOut, BlockKind::Suppressed] {
                    let block = (tenant.clone(), key.clone(), *channel, kind);
                    if s.blocks.contains_key(&block) {
                        let standing = standings.entry(key.clone()).or_default();
                        if !standing.blocks.contains(&(*channel, kind)) {
                            standing.blocks.push((*channel, kind));
                        }
                    }
                }
                let Some(ledger) = s.ledgers.get(&(tenant.clone(), key.clone())) else {
                    continue;
                };
                let standing = standings.entry(key.clone()).or_default();
                standing.preferences = ledger.preferences.as_ref().map(|p| p.preferences.clone());
                for c in &ledger.consents {
                    if c.channel == *channel
                        && c.scope.covers(*category)
                        && !standing.consents.iter().any(|known| known.id == c.id)
                    {
                        standing.consents.push(c.clone());
                    }
                }
            }
            Ok(standings)
        })
    }
}
