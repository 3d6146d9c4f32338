//! The ports a function works with, wired once per cold start: DynamoDB, KMS and the real
//! providers in AWS (and against the local emulator, which differs only by endpoint URL), or
//! in-memory adapters in logic tests.

use std::sync::Arc;

use crate::credentials::{CredentialVault, EnvelopeVault, KmsDataKeys, LocalDataKeys};
use crate::domain::cost::RateTable;
use crate::domain::webhook_endpoint::UrlPolicy;
use crate::fanout::{Fanout, MemoryFanout, SnsFanout};
use crate::observability::AwsRequestCounter;
use crate::providers::{ChannelSender, CredentialChecker, ProviderClients, ProviderEndpoints};
use crate::retention::MessageRetention;
use crate::status_webhooks::{MemoryStatusEvents, SqsStatusEvents, StatusEventSink};
use crate::store::dynamodb::{DynamoDb, TableNames};
use crate::store::memory::MemoryStore;
use crate::store::{
    AuditStore, IdempotencyStore, MessageStore, ProviderStore, RecipientStore, SnapshotStore,
    TemplateStore,
};
use crate::store::{TenantSettingsStore, WebhookEndpointStore};

#[derive(Clone)]
pub struct App {
    pub providers: Arc<dyn ProviderStore>,
    pub templates: Arc<dyn TemplateStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub messages: Arc<dyn MessageStore>,
    /// The hash-chained audit log, read back (verification, export, reports).
    pub audit: Arc<dyn AuditStore>,
    /// Opt-outs and suppressions, checked before anything is sent.
    pub recipients: Arc<dyn RecipientStore>,
    /// Recipients' consent ledgers and preferences, also checked before anything is sent.
    pub consents: Arc<dyn crate::store::ConsentStore>,
    /// The key preference-centre links are signed with.
    pub link_keys: Arc<dyn crate::preference_links::LinkKeys>,
    /// The key recipient keys are made with (addresses never stored, keyed digests instead).
    pub recipient_keys: Arc<dyn crate::recipient_keys::RecipientKeys>,
    pub vault: Arc<dyn CredentialVault>,
    pub checker: Arc<dyn CredentialChecker>,
    pub sender: Arc<dyn ChannelSender>,
    pub fanout: Arc<dyn Fanout>,
    /// Prices for cost estimates at send time (receipts correct them).
    pub rates: Arc<RateTable>,
    /// Where status changes go to reach tenants' webhook endpoints.
    pub status_events: Arc<dyn StatusEventSink>,
    /// Tenants' status webhook endpoints.
    pub webhook_endpoints: Arc<dyn WebhookEndpointStore>,
    /// Which endpoint URLs may be registered and posted to.
    pub webhook_urls: UrlPolicy,
    /// The public base URL of Herald's API (`PUBLIC_API_URL`), for the receipt URLs Herald
    /// gives providers; when unset, API functions use the domain a request arrived on.
    pub public_url: Option<String>,
    /// Tenants' own settings (message retention).
    pub tenant_settings: Arc<dyn TenantSettingsStore>,
    /// Each tenant's message retention as the send path needs it (remembered a minute).
    pub retention: Arc<MessageRetention>,
    /// Per-tenant quota counters (test sends).
    pub quotas: Arc<dyn crate::store::QuotaStore>,
    /// Test sends a tenant may make per hour (`TEST_SEND_HOURLY_QUOTA`).
    pub test_send_hourly_quota: u32,
    /// The send path's compiled templates, per snapshot version (bounded, per container).
    pub compiled_templates: Arc<crate::rendering::TemplateCache>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("App")
    }
}

/// What a function reads from its environment (set by the SAM template, or by the local stack).
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub tables: TableNames,
    pub credentials_key_id: String,
    pub endpoints: ProviderEndpoints,
    /// The fan-out topic sends publish to.
    pub messages_topic_arn: String,
    /// `PUBLIC_API_URL`, when the deployment sets one.
    pub public_url: Option<String>,
    /// `STATUS_WEBHOOKS_QUEUE_URL`: the queue status events are posted from.
    pub status_webhooks_queue_url: String,
    /// `WEBHOOKS_ALLOW_LOOPBACK=true` (local stack and tests only) allows loopback endpoints.
    pub webhook_urls: UrlPolicy,
    /// `PREFERENCE_LINK_SECRET_ARN`: the secret preference-centre links are signed with (only
    /// the functions that make or open links have it).
    pub preference_link_secret: Option<String>,
    /// `RECIPIENT_KEY_SECRET_ARN`: the secret recipient keys are made with (only the functions
    /// that turn addresses into keys have it).
    pub recipient_key_secret: Option<String>,
    /// `MESSAGE_RETENTION_DAYS`: how long message records are kept when their tenant set nothing.
    pub message_retention_days: u32,
    /// `TEST_SEND_HOURLY_QUOTA`: test sends per tenant and hour.
    pub test_send_hourly_quota: u32,
}

/// Test sends per tenant and hour when the environment names no quota.
pub const DEFAULT_TEST_SEND_HOURLY_QUOTA: u32 = 20;

/// The platform's message retention when the environment names none.
pub const DEFAULT_MESSAGE_RETENTION_DAYS: u32 = 90;

impl AppConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    /// From any source of the template's environment variables (a local stack's, in tests).
    pub fn from_vars(vars: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| {
            vars(name).ok_or_else(|| anyhow::anyhow!("environment variable {name} is not set"))
        };
        Ok(Self {
            tables: TableNames::from_vars(vars)?,
            credentials_key_id: var("CREDENTIALS_KEY_ID")?,
            endpoints: ProviderEndpoints::from_vars(vars)?,
            messages_topic_arn: var("MESSAGES_TOPIC_ARN")?,
            public_url: vars("PUBLIC_API_URL").filter(|u| !u.is_empty()),
            status_webhooks_queue_url: var("STATUS_WEBHOOKS_QUEUE_URL")?,
            webhook_urls: UrlPolicy {
                allow_loopback: vars("WEBHOOKS_ALLOW_LOOPBACK").as_deref() == Some("true"),
            },
            preference_link_secret: vars("PREFERENCE_LINK_SECRET_ARN").filter(|a| !a.is_empty()),
            recipient_key_secret: vars("RECIPIENT_KEY_SECRET_ARN").filter(|a| !a.is_empty()),
            message_retention_days: match vars("MESSAGE_RETENTION_DAYS") {
                Some(days) => days.parse().map_err(|_| {
                    anyhow::anyhow!("MESSAGE_RETENTION_DAYS is not a number of days")
                })?,
                None => DEFAULT_MESSAGE_RETENTION_DAYS,
            },
            test_send_hourly_quota: match vars("TEST_SEND_HOURLY_QUOTA") {
                Some(n) => n
                    .parse()
                    .map_err(|_| anyhow::anyhow!("TEST_SEND_HOURLY_QUOTA is not a whole number"))?,
                None => DEFAULT_TEST_SEND_HOURLY_QUOTA,
            },
        })
    }
}

impl App {
    /// `recipient`'s key within `tenant` (see [`RecipientKeyring`](crate::domain::recipient::RecipientKeyring)).
    pub async fn recipient_key(
        &self,
        tenant: &crate::domain::TenantId,
        recipient: &crate::domain::recipient::Recipient,
    ) -> anyhow::Result<String> {
        let keyring = self.recipient_keys.keyring().await?;
        Ok(recipient.key(&keyring, tenant.as_str()))
    }

    /// Everything from the environment the SAM template sets (and `AWS_ENDPOINT_URL` locally).
    pub async fn from_env() -> anyhow::Result<Self> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(&aws, AppConfig::from_env()?, None))
    }

    /// The AWS-backed app; `counter`, when given, counts every AWS request the app makes.
    pub fn new(
        aws: &aws_config::SdkConfig,
        config: AppConfig,
        counter: Option<AwsRequestCounter>,
    ) -> Self {
        macro_rules! client {
            ($sdk:ident) => {{
                let mut builder = $sdk::config::Builder::from(aws);
                if let Some(c) = &counter {
                    builder = builder.interceptor(c.clone());
                }
                $sdk::Client::from_conf(builder.build())
            }};
        }
        let store = Arc::new(DynamoDb::new(client!(aws_sdk_dynamodb), config.tables));
        let sns = client!(aws_sdk_sns);
        let providers = Arc::new(ProviderClients {
            http: crate::providers::http_client(),
            endpoints: config.endpoints,
            ses: client!(aws_sdk_sesv2),
            sns: sns.clone(),
        });
        let keys = KmsDataKeys::new(client!(aws_sdk_kms), config.credentials_key_id);
        let status_events = Arc::new(SqsStatusEvents::new(
            client!(aws_sdk_sqs),
            config.status_webhooks_queue_url,
            store.clone(),
        ));
        let link_keys: Arc<dyn crate::preference_links::LinkKeys> =
            match config.preference_link_secret {
                Some(secret) => Arc::new(crate::preference_links::SecretsManagerLinkKeys::new(
                    client!(aws_sdk_secretsmanager),
                    secret,
                )),
                None => Arc::new(crate::preference_links::NoLinkKeys),
            };
        let recipient_keys: Arc<dyn crate::recipient_keys::RecipientKeys> =
            match config.recipient_key_secret {
                Some(secret) => Arc::new(crate::recipient_keys::SecretsManagerRecipientKeys::new(
                    client!(aws_sdk_secretsmanager),
                    secret,
                )),
                None => Arc::new(crate::recipient_keys::NoRecipientKeys),
            };
        Self {
            providers: store.clone(),
            templates: store.clone(),
            snapshots: store.clone(),
            idempotency: store.clone(),
            messages: store.clone(),
            audit: store.clone(),
            recipients: store.clone(),
            consents: store.clone(),
            link_keys,
            recipient_keys,
            vault: Arc::new(EnvelopeVault::new(keys)),
            checker: providers.clone(),
            sender: providers,
            fanout: Arc::new(SnsFanout {
                sns,
                topic_arn: config.messages_topic_arn,
            }),
            rates: Arc::new(RateTable::default_rates()),
            status_events,
            webhook_urls: config.webhook_urls,
            public_url: config.public_url,
            tenant_settings: store.clone(),
            retention: Arc::new(MessageRetention::new(
                store.clone(),
                config.message_retention_days,
            )),
            quotas: store.clone(),
            test_send_hourly_quota: config.test_send_hourly_quota,
            compiled_templates: Arc::default(),
            webhook_endpoints: store,
        }
    }

    /// In-memory stores, fan-out and a local key, with the given provider checker and sender.
    pub fn in_memory(checker: Arc<dyn CredentialChecker>, sender: Arc<dyn ChannelSender>) -> Self {
        Self::over_memory(Arc::new(MemoryStore::default()), checker, sender)
    }

    /// Like [`App::in_memory`], with every store port on `store` (which a test keeps, to look
    /// inside).
    pub fn over_memory(
        store: Arc<MemoryStore>,
        checker: Arc<dyn CredentialChecker>,
        sender: Arc<dyn ChannelSender>,
    ) -> Self {
        Self {
            providers: store.clone(),
            templates: store.clone(),
            snapshots: store.clone(),
            idempotency: store.clone(),
            messages: store.clone(),
            audit: store.clone(),
            recipients: store.clone(),
            consents: store.clone(),
            link_keys: Arc::new(crate::preference_links::StaticLinkKeys::random()),
            recipient_keys: Arc::new(crate::recipient_keys::StaticRecipientKeys::random()),
            webhook_endpoints: store.clone(),
            webhook_urls: UrlPolicy::default(),
            vault: Arc::new(EnvelopeVault::new(LocalDataKeys::random())),
            checker,
            sender,
            fanout: Arc::new(MemoryFanout::default()),
            rates: Arc::new(RateTable::default_rates()),
            status_events: Arc::new(MemoryStatusEvents::default()),
            public_url: None,
            tenant_settings: store.clone(),
            retention: Arc::new(MessageRetention::new(
                store.clone(),
                DEFAULT_MESSAGE_RETENTION_DAYS,
            )),
            quotas: store,
            test_send_hourly_quota: DEFAULT_TEST_SEND_HOURLY_QUOTA,
            compiled_templates: Arc::default(),
        }
    }
}
