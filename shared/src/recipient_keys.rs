//! The key recipient keys are made with ([`RecipientKeyring`]). In AWS, and against the local
//! emulator, it is the template's `RecipientKeySecret` (Secrets Manager, generated at deploy,
//! never in the template or the environment), read once per container: it must never change, so
//! it is never rotated and never re-read. Logic tests use a fixed or random key.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::domain::recipient::RecipientKeyring;

/// Where a function gets the recipient keyring from.
#[async_trait]
pub trait RecipientKeys: Send + Sync {
    async fn keyring(&self) -> anyhow::Result<Arc<RecipientKeyring>>;
}

/// A fixed keyring: for logic tests and benchmarks.
#[derive(Debug, Clone)]
pub struct StaticRecipientKeys(Arc<RecipientKeyring>);

impl StaticRecipientKeys {
    pub fn random() -> Self {
        let key: [u8; 32] = rand::random();
        Self::fixed(key.to_vec())
    }

    pub fn fixed(key: Vec<u8>) -> Self {
        Self(Arc::new(
            RecipientKeyring::new(key).unwrap_or_else(|e| panic!("a test key: {e}")),
        ))
    }
}

#[async_trait]
impl RecipientKeys for StaticRecipientKeys {
    async fn keyring(&self) -> anyhow::Result<Arc<RecipientKeyring>> {
        Ok(self.0.clone())
    }
}

/// For functions deployed without the secret: recipients are not theirs to key.
#[derive(Debug, Clone, Copy)]
pub struct NoRecipientKeys;

#[async_trait]
impl RecipientKeys for NoRecipientKeys {
    async fn keyring(&self) -> anyhow::Result<Arc<RecipientKeyring>> {
        anyhow::bail!("RECIPIENT_KEY_SECRET_ARN is not set for this function")
    }
}

/// The keyring in a Secrets Manager secret's `AWSCURRENT` string, read on first use.
#[derive(Debug)]
pub struct SecretsManagerRecipientKeys {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    keyring: OnceCell<Arc<RecipientKeyring>>,
}

impl SecretsManagerRecipientKeys {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String) -> Self {
        Self {
            client,
            secret_id,
            keyring: OnceCell::new(),
        }
    }
}

#[async_trait]
impl RecipientKeys for SecretsManagerRecipientKeys {
    async fn keyring(&self) -> anyhow::Result<Arc<RecipientKeyring>> {
        let keyring = self
            .keyring
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_secret_value()
                    .secret_id(&self.secret_id)
                    .send()
                    .await
                    .map_err(|e| anyhow::Error::new(e).context("GetSecretValue failed"))?;
                let value = out
                    .secret_string
                    .ok_or_else(|| anyhow::anyhow!("the recipient-key secret has no value"))?;
                RecipientKeyring::new(value.into_bytes())
                    .map(Arc::new)
                    .map_err(|e| anyhow::anyhow!(e))
            })
            .await?;
        Ok(keyring.clone())
    }
}
