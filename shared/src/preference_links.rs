//! The key preference-centre links are signed with. In AWS, and against the local emulator, it is
//! the template's `PreferenceLinkSecret` (Secrets Manager, generated at deploy, never in the
//! template or the environment), read on first use and again every hour; links signed under the
//! version before a rotation (`AWSPREVIOUS`) keep verifying. Logic tests use a random key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::domain::preference_link::{LinkError, PreferenceLink};

/// Shortest key accepted: HMAC-SHA256 wants at least its output size.
const MIN_KEY_BYTES: usize = 32;
/// How long a container keeps the keys before reading the secret again (picks up rotations).
const REFRESH: Duration = Duration::from_secs(3600);

/// The current signing key, and the previous one while links signed with it may be around.
pub struct SigningKeys {
    current: SecretSlice<u8>,
    previous: Option<SecretSlice<u8>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys([redacted])")
    }
}

impl SigningKeys {
    pub fn new(current: Vec<u8>, previous: Option<Vec<u8>>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            current.len() >= MIN_KEY_BYTES,
            "the preference-link key is shorter than {MIN_KEY_BYTES} bytes"
        );
        Ok(Self {
            current: current.into(),
            previous: previous
                .filter(|p| p.len() >= MIN_KEY_BYTES)
                .map(Into::into),
        })
    }

    pub fn sign(&self, link: &PreferenceLink) -> String {
        link.sign(self.current.expose_secret())
    }

    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<PreferenceLink, LinkError> {
        let mut keys = vec![self.current.expose_secret()];
        keys.extend(self.previous.as_ref().map(|p| p.expose_secret()));
        PreferenceLink::verify(token, &keys, now)
    }
}

/// Where a function gets its signing keys from.
#[async_trait]
pub trait LinkKeys: Send + Sync {
    async fn keys(&self) -> anyhow::Result<Arc<SigningKeys>>;
}

/// A fixed key: for logic tests.
#[derive(Debug, Clone)]
pub struct StaticLinkKeys(Arc<SigningKeys>);

impl StaticLinkKeys {
    pub fn random() -> Self {
        let key: [u8; 32] = rand::random();
        Self(Arc::new(SigningKeys {
            current: key.to_vec().into(),
            previous: None,
        }))
    }
}

#[async_trait]
impl LinkKeys for StaticLinkKeys {
    async fn keys(&self) -> anyhow::Result<Arc<SigningKeys>> {
        Ok(self.0.clone())
    }
}

/// For functions deployed without the secret: preference links are not theirs to handle.
#[derive(Debug, Clone, Copy)]
pub struct NoLinkKeys;

#[async_trait]
impl LinkKeys for NoLinkKeys {
    async fn keys(&self) -> anyhow::Result<Arc<SigningKeys>> {
        anyhow::bail!("PREFERENCE_LINK_SECRET_ARN is not set for this function")
    }
}

/// The keys in a Secrets Manager secret: its `AWSCURRENT` string signs, `AWSPREVIOUS` (when
/// there is one) still verifies.
#[derive(Debug)]
pub struct SecretsManagerLinkKeys {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    cached: Mutex<Option<(Instant, Arc<SigningKeys>)>>,
}

impl SecretsManagerLinkKeys {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String) -> Self {
        Self {
            client,
            secret_id,
            cached: Mutex::new(None),
        }
    }

    async fn stage(&self, stage: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.secret_string.map(String::into_bytes)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow::Error::new(e).context("GetSecretValue failed")),
        }
    }

    async fn read(&self) -> anyhow::Result<SigningKeys> {
        let current = self
            .stage("AWSCURRENT")
            .await?
            .ok_or_else(|| anyhow::anyhow!("the preference-link secret has no current value"))?;
        let previous = self.stage("AWSPREVIOUS").await?;
        SigningKeys::new(current, previous)
    }
}

#[async_trait]
impl LinkKeys for SecretsManagerLinkKeys {
    async fn keys(&self) -> anyhow::Result<Arc<SigningKeys>> {
        let mut cached = self.cached.lock().await;
        if let Some((at, keys)) = cached.as_ref()
            && at.elapsed() < REFRESH
        {
            return Ok(keys.clone());
        }
        match self.read().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cached = Some((Instant::now(), keys.clone()));
                Ok(keys)
            }
            // A refresh that fails keeps the keys already read: links go on working.
            Err(e) => match cached.as_ref() {
                Some((_, keys)) => {
                    tracing::warn!(error = %format!("{e:#}"), "preference-link key refresh failed; keeping the cached key");
                    Ok(keys.clone())
                }
                None => Err(e),
            },
        }
    }
}

/// The unsubscribe links of one request's marketing emails (RFC 8058 one-click and the
/// preference page), signed like every preference link and valid for [`UNSUBSCRIBE_DAYS`]: an
/// old newsletter's unsubscribe still works for a year.
#[derive(Debug)]
pub struct Unsubscribe {
    keys: Arc<SigningKeys>,
    base: String,
}

/// How long a marketing email's unsubscribe links work.
pub const UNSUBSCRIBE_DAYS: i64 = 365;

impl Unsubscribe {
    /// Links under `base` (Herald's public API URL with its stage).
    pub fn new(keys: Arc<SigningKeys>, base: String) -> Self {
        Self { keys, base }
    }

    pub fn links(
        &self,
        tenant: &crate::domain::TenantId,
        recipient_key: &str,
        now: OffsetDateTime,
    ) -> crate::domain::message::ListUnsubscribe {
        let link = PreferenceLink {
            tenant: tenant.clone(),
            recipient_key: recipient_key.to_owned(),
            channel: crate::domain::Channel::Email,
            expires_at: now + time::Duration::days(UNSUBSCRIBE_DAYS),
        };
        let page = format!(
            "{}/preferences/{}",
            self.base.trim_end_matches('/'),
            self.keys.sign(&link)
        );
        crate::domain::message::ListUnsubscribe {
            one_click: format!("{page}/unsubscribe"),
            page,
        }
    }
}
