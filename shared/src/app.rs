//! The ports a function works with, wired once per cold start: DynamoDB, KMS and the real
//! providers in AWS (and against the local emulator, which differs only by endpoint URL), or
//! in-memory adapters in logic tests.

use std::sync::Arc;

use crate::credentials::{CredentialVault, EnvelopeVault, KmsDataKeys, LocalDataKeys};
use crate::providers::{CredentialChecker, ProviderClients, ProviderEndpoints};
use crate::store::dynamodb::{DynamoDb, TableNames};
use crate::store::memory::MemoryStore;
use crate::store::{IdempotencyStore, ProviderStore, SnapshotStore, TemplateStore};

#[derive(Clone)]
pub struct App {
    pub providers: Arc<dyn ProviderStore>,
    pub templates: Arc<dyn TemplateStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub vault: Arc<dyn CredentialVault>,
    pub checker: Arc<dyn CredentialChecker>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("App")
    }
}

impl App {
    /// Everything from the environment the SAM template sets (and `AWS_ENDPOINT_URL` locally).
    pub async fn from_env() -> anyhow::Result<Self> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let key_id = std::env::var("CREDENTIALS_KEY_ID")
            .map_err(|_| anyhow::anyhow!("environment variable CREDENTIALS_KEY_ID is not set"))?;
        let store = Arc::new(DynamoDb::new(
            aws_sdk_dynamodb::Client::new(&aws),
            TableNames::from_env()?,
        ));
        let checker = ProviderClients {
            http: crate::providers::http_client(),
            endpoints: ProviderEndpoints::from_env()?,
            ses: aws_sdk_sesv2::Client::new(&aws),
            sns: aws_sdk_sns::Client::new(&aws),
        };
        Ok(Self {
            providers: store.clone(),
            templates: store.clone(),
            snapshots: store.clone(),
            idempotency: store,
            vault: Arc::new(EnvelopeVault::new(KmsDataKeys::new(
                aws_sdk_kms::Client::new(&aws),
                key_id,
            ))),
            checker: Arc::new(checker),
        })
    }

    /// In-memory stores and a local key, with the given provider checker.
    pub fn in_memory(checker: Arc<dyn CredentialChecker>) -> Self {
        let store = Arc::new(MemoryStore::default());
        Self {
            providers: store.clone(),
            templates: store.clone(),
            snapshots: store.clone(),
            idempotency: store,
            vault: Arc::new(EnvelopeVault::new(LocalDataKeys::random())),
            checker,
        }
    }
}
