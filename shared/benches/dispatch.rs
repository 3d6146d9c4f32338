//! Per-message dispatch CPU without the network: claim, routing through the snapshot's provider
//! chain, opening (cached) credentials, the provider call answered at once, and settling with the
//! audit entry, over in-memory stores.
//! `cargo bench -p herald-shared --bench dispatch`

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use herald_shared::credentials::{CredentialVault, EnvelopeVault, LocalDataKeys, OpenCredentials};
use herald_shared::dispatch::{DispatchConfig, Dispatcher};
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::cost::RateTable;
use herald_shared::domain::identity::{Caller, Role};
use herald_shared::domain::message::{Message, MessageContent, MessageId, MessageStatus};
use herald_shared::domain::provider::{CredentialInput, ProviderConfig, ProviderSettings};
use herald_shared::domain::recipient::{Recipient, RecipientKeyring};
use herald_shared::domain::resolution::{ConfigurationLayers, EventSettings, resolve};
use herald_shared::domain::snapshot::Snapshot;
use herald_shared::domain::{Category, Channel, EventId, ProviderId, TenantId};
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::store::memory::MemoryStore;
use herald_shared::store::{MessageStore, SnapshotStore};
use secrecy::SecretString;
use time::OffsetDateTime;

struct Instant;

#[async_trait]
impl ChannelSender for Instant {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        m: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        Ok(Accepted {
            provider_message_id: m.message_id.to_owned(),
            cost: None,
            segments: Some(1),
        })
    }
}

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tenant = TenantId::parse("acme").expect("tenant");
    let event = EventId::parse("gala").expect("event");
    let store = Arc::new(MemoryStore::default());
    let vault: Arc<dyn CredentialVault> = Arc::new(EnvelopeVault::new(LocalDataKeys::random()));
    runtime.block_on(async {
        let mut providers = Vec::new();
        for (i, priority) in [1u32, 1, 2].into_iter().enumerate() {
            let id = ProviderId::generate();
            let input = CredentialInput(BTreeMap::from([(
                "auth_token".to_owned(),
                SecretString::from(format!("token-{i}-0123456789")),
            )]));
            providers.push(ProviderConfig {
                credentials: vault.seal(&tenant, &id, &input).await.expect("seal"),
                id,
                channel: Channel::Sms,
                name: format!("twilio {i}"),
                settings: ProviderSettings::Twilio {
                    account_sid: format!("AC{}", "a".repeat(32)),
                    from: "+260211555010".into(),
                },
                priority,
                weight: 50,
                active: true,
                rate_limit_per_second: None,
                receipts: None,
                revision: 1,
                updated_at: OffsetDateTime::UNIX_EPOCH,
                updated_by: "bench".into(),
            });
        }
        let layers = ConfigurationLayers {
            tenant: tenant.clone(),
            event: event.clone(),
            tenant_providers: providers,
            event_providers: Vec::new(),
            global_templates: Vec::new(),
            tenant_templates: Vec::new(),
            event_templates: Vec::new(),
            tenant_brand: Default::default(),
            event_brand: Default::default(),
            settings: EventSettings {
                channels: BTreeSet::from([Channel::Sms]),
                categories: BTreeSet::from([Category::Invitation]),
                ..Default::default()
            },
            pending: Vec::new(),
        };
        let configuration = resolve(&layers);
        let snapshot = Snapshot {
            version: 1,
            created_at: OffsetDateTime::now_utc(),
            created_by: "bench".into(),
            digest: String::new(),
            configuration,
            provider_checks: Vec::new(),
        };
        let caller = Caller {
            subject: "bench".into(),
            role: Role::TenantAdmin,
            tenant: Some(tenant.clone()),
        };
        let audit = AuditEntry::new(
            &caller,
            "bench",
            "snapshot.activated",
            "bench".into(),
            None,
            None,
        );
        store
            .create_and_activate(&tenant, &event, &snapshot, None, &audit)
            .await
            .expect("activate");
    });
    let dispatcher = Dispatcher::new(
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
        vault,
        Arc::new(Instant),
        Arc::new(RateTable::default_rates()),
        Arc::new(herald_shared::status_webhooks::MemoryStatusEvents::default()),
        DispatchConfig::default(),
    );
    let recipient = Recipient::parse(Channel::Sms, "+260971234567").expect("recipient");
    let keyring = RecipientKeyring::new(vec![1; 32]).expect("key");
    let n = AtomicUsize::new(0);
    let message = |i: usize| Message {
        id: MessageId::derive(&tenant, "gala", "bench", i),
        tenant: tenant.clone(),
        event: event.clone(),
        snapshot_version: 1,
        category: Category::Invitation,
        channel: Channel::Sms,
        recipient_key: recipient.key(&keyring, &format!("r{i}")),
        recipient: recipient.clone(),
        content: MessageContent {
            subject: None,
            html: None,
            text: "Hi Ada, you're invited on 12 Dec.".into(),
            segments: Some(1),
            whatsapp_template: None,
        },
        status: MessageStatus::Accepted,
        status_reason: None,
        trigger: None,
        estimated_cost: None,
        cost: None,
        provider: None,
        provider_kind: None,
        provider_message_id: None,
        attempts: Vec::new(),
        created_at: OffsetDateTime::now_utc(),
        sent_at: None,
        request_id: "bench".into(),
        expires_at: None,
        not_before: None,
        erased_at: None,
        test: false,
        list_unsubscribe: None,
        status_at: None,
    };
    c.bench_function(
        "dispatch one message (in-memory stores, provider answers at once)",
        |b| {
            b.to_async(&runtime).iter(|| async {
                let m = message(n.fetch_add(1, Ordering::Relaxed));
                store
                    .create(
                        &m,
                        &herald_shared::domain::audit::AuditEntry::message_accepted(
                            "test",
                            herald_shared::domain::identity::Role::System,
                            &m,
                            "req",
                        ),
                    )
                    .await
                    .expect("create");
                black_box(dispatcher.dispatch(&m.id, 1).await)
            })
        },
    );
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
