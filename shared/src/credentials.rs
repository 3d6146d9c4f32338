//! Provider credentials and webhook endpoint secrets at rest: envelope encryption. Each seal asks
//! KMS for a fresh data key bound (by encryption context) to the tenant and the provider or
//! endpoint, encrypts the secret with AES-256-GCM under it, and keeps only the KMS-encrypted data
//! key. Secrets sealed for one tenant's provider or endpoint cannot be opened as another's.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::provider::{CredentialInput, SealedCredentials};
use crate::domain::webhook_endpoint::{SealedSecret, WebhookEndpointId};
use crate::domain::{ProviderId, TenantId};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the key service failed: {0:#}")]
    KeyService(anyhow::Error),
    #[error("sealed credentials do not open (tampered, or sealed for another provider)")]
    Corrupt,
}

/// Opened credentials: secrets that print as `[REDACTED]`.
#[derive(Debug, Default)]
pub struct OpenCredentials(BTreeMap<String, SecretString>);

impl OpenCredentials {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.expose_secret())
    }

    /// The named secret, or an empty string (a provider check then fails as "rejected").
    pub fn field(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

#[async_trait]
pub trait CredentialVault: Send + Sync {
    /// Seals `input`; `None` when the provider kind has no secrets.
    async fn seal(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        input: &CredentialInput,
    ) -> Result<Option<SealedCredentials>, VaultError>;

    async fn open(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        sealed: Option<&SealedCredentials>,
    ) -> Result<OpenCredentials, VaultError>;

    /// Seals a webhook endpoint's signing secret, bound to the tenant and the endpoint.
    async fn seal_endpoint_secret(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpointId,
        secret: &SecretString,
    ) -> Result<SealedSecret, VaultError>;

    async fn open_endpoint_secret(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpointId,
        sealed: &SealedSecret,
    ) -> Result<SecretString, VaultError>;
}

/// Where data keys come from: KMS in AWS and locally, a local key in logic tests.
#[async_trait]
pub trait DataKeys: Send + Sync {
    /// A fresh 256-bit key and its encrypted form.
    async fn generate(
        &self,
        context: &BTreeMap<String, String>,
    ) -> Result<([u8; 32], Vec<u8>), VaultError>;
    async fn decrypt(
        &self,
        encrypted: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<[u8; 32], VaultError>;
}

/// The envelope-encryption vault over any source of data keys.
#[derive(Debug)]
pub struct EnvelopeVault<K> {
    keys: K,
}

impl<K> EnvelopeVault<K> {
    pub fn new(keys: K) -> Self {
        Self { keys }
    }
}

fn context(tenant: &TenantId, provider: &ProviderId) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("tenant".to_owned(), tenant.to_string()),
        ("provider".to_owned(), provider.to_string()),
    ])
}

fn aad(tenant: &TenantId, provider: &ProviderId) -> Vec<u8> {
    format!("herald:{tenant}:{provider}").into_bytes()
}

fn endpoint_context(tenant: &TenantId, endpoint: &WebhookEndpointId) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("tenant".to_owned(), tenant.to_string()),
        ("webhook_endpoint".to_owned(), endpoint.to_string()),
    ])
}

fn endpoint_aad(tenant: &TenantId, endpoint: &WebhookEndpointId) -> Vec<u8> {
    format!("herald:{tenant}:webhook_endpoint:{endpoint}").into_bytes()
}

/// One envelope: the encrypted data key, the nonce and the ciphertext.
struct Envelope {
    encrypted_key: Vec<u8>,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl<K: DataKeys> EnvelopeVault<K> {
    async fn encrypt(
        &self,
        context: &BTreeMap<String, String>,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Envelope, VaultError> {
        let (key, encrypted_key) = self.keys.generate(context).await?;
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        Ok(Envelope {
            encrypted_key,
            nonce,
            ciphertext,
        })
    }

    /// Opens base64 parts of an envelope; the plaintext is wiped when dropped.
    async fn decrypt(
        &self,
        context: &BTreeMap<String, String>,
        aad: &[u8],
        encrypted_key: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<Zeroizing, VaultError> {
        let decode = |s: &str| B64.decode(s).map_err(|_| VaultError::Corrupt);
        let encrypted_key = decode(encrypted_key)?;
        let nonce = decode(nonce)?;
        if nonce.len() != 12 {
            return Err(VaultError::Corrupt);
        }
        let key = self.keys.decrypt(&encrypted_key, context).await?;
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &decode(ciphertext)?,
                    aad,
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        Ok(zeroizing(plaintext))
    }
}

#[async_trait]
impl<K: DataKeys> CredentialVault for EnvelopeVault<K> {
    async fn seal(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        input: &CredentialInput,
    ) -> Result<Option<SealedCredentials>, VaultError> {
        if input.0.is_empty() {
            return Ok(None);
        }
        let plain: BTreeMap<&str, &str> = input
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect();
        let plaintext =
            zeroizing(serde_json::to_vec(&plain).map_err(|e| VaultError::KeyService(e.into()))?);
        let envelope = self
            .encrypt(
                &context(tenant, provider),
                &aad(tenant, provider),
                &plaintext.0,
            )
            .await?;
        Ok(Some(SealedCredentials {
            encrypted_data_key: B64.encode(envelope.encrypted_key),
            nonce: B64.encode(envelope.nonce),
            ciphertext: B64.encode(envelope.ciphertext),
            hints: input.hints(),
        }))
    }

    async fn open(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        sealed: Option<&SealedCredentials>,
    ) -> Result<OpenCredentials, VaultError> {
        let Some(sealed) = sealed else {
            return Ok(OpenCredentials::default());
        };
        let plaintext = self
            .decrypt(
                &context(tenant, provider),
                &aad(tenant, provider),
                &sealed.encrypted_data_key,
                &sealed.nonce,
                &sealed.ciphertext,
            )
            .await?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&plaintext.0).map_err(|_| VaultError::Corrupt)?;
        Ok(OpenCredentials(
            map.into_iter()
                .map(|(k, v)| (k, SecretString::from(v)))
                .collect(),
        ))
    }

    async fn seal_endpoint_secret(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpointId,
        secret: &SecretString,
    ) -> Result<SealedSecret, VaultError> {
        let envelope = self
            .encrypt(
                &endpoint_context(tenant, endpoint),
                &endpoint_aad(tenant, endpoint),
                secret.expose_secret().as_bytes(),
            )
            .await?;
        Ok(SealedSecret {
            encrypted_data_key: B64.encode(envelope.encrypted_key),
            nonce: B64.encode(envelope.nonce),
            ciphertext: B64.encode(envelope.ciphertext),
        })
    }

    async fn open_endpoint_secret(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpointId,
        sealed: &SealedSecret,
    ) -> Result<SecretString, VaultError> {
        let plaintext = self
            .decrypt(
                &endpoint_context(tenant, endpoint),
                &endpoint_aad(tenant, endpoint),
                &sealed.encrypted_data_key,
                &sealed.nonce,
                &sealed.ciphertext,
            )
            .await?;
        let text = std::str::from_utf8(&plaintext.0).map_err(|_| VaultError::Corrupt)?;
        Ok(SecretString::from(text.to_owned()))
    }
}

/// Plaintext bytes wiped on drop.
struct Zeroizing(Vec<u8>);

fn zeroizing(bytes: Vec<u8>) -> Zeroizing {
    Zeroizing(bytes)
}

impl Drop for Zeroizing {
    fn drop(&mut self) {
        use secrecy::zeroize::Zeroize;
        self.0.zeroize();
    }
}

/// Data keys from AWS KMS (`GenerateDataKey` / `Decrypt` with an encryption context).
#[derive(Debug, Clone)]
pub struct KmsDataKeys {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsDataKeys {
    pub fn new(client: aws_sdk_kms::Client, key_id: String) -> Self {
        Self { client, key_id }
    }
}

fn key_bytes(bytes: &[u8]) -> Result<[u8; 32], VaultError> {
    bytes.try_into().map_err(|_| VaultError::Corrupt)
}

#[async_trait]
impl DataKeys for KmsDataKeys {
    async fn generate(
        &self,
        context: &BTreeMap<String, String>,
    ) -> Result<([u8; 32], Vec<u8>), VaultError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| {
                VaultError::KeyService(anyhow::Error::new(e).context("GenerateDataKey"))
            })?;
        let plain = out.plaintext.ok_or(VaultError::Corrupt)?;
        let encrypted = out.ciphertext_blob.ok_or(VaultError::Corrupt)?;
        Ok((key_bytes(plain.as_ref())?, encrypted.into_inner()))
    }

    async fn decrypt(
        &self,
        encrypted: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<[u8; 32], VaultError> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(encrypted))
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_invalid_ciphertext_exception() => VaultError::Corrupt,
                _ => VaultError::KeyService(anyhow::Error::new(e).context("Decrypt")),
            })?;
        key_bytes(out.plaintext.ok_or(VaultError::Corrupt)?.as_ref())
    }
}

/// Data keys wrapped by a key held in memory: for logic tests and the in-memory stores.
#[derive(Debug)]
pub struct LocalDataKeys {
    wrapping: [u8; 32],
}

impl LocalDataKeys {
    pub fn random() -> Self {
        let mut wrapping = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut wrapping);
        Self { wrapping }
    }

    fn context_bytes(context: &BTreeMap<String, String>) -> Vec<u8> {
        serde_json::to_vec(context).unwrap_or_default()
    }
}

#[async_trait]
impl DataKeys for LocalDataKeys {
    async fn generate(
        &self,
        context: &BTreeMap<String, String>,
    ) -> Result<([u8; 32], Vec<u8>), VaultError> {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut key);
        rand::thread_rng().fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.wrapping));
        let wrapped = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &key,
                    aad: &Self::context_bytes(context),
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        Ok((key, [nonce.as_slice(), &wrapped].concat()))
    }

    async fn decrypt(
        &self,
        encrypted: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<[u8; 32], VaultError> {
        if encrypted.len() < 12 {
            return Err(VaultError::Corrupt);
        }
        let (nonce, wrapped) = encrypted.split_at(12);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.wrapping));
        let key = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: wrapped,
                    aad: &Self::context_bytes(context),
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        key_bytes(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> CredentialInput {
        CredentialInput(BTreeMap::from([(
            "api_key".to_owned(),
            SecretString::from("at_live_0123456789".to_owned()),
        )]))
    }

    #[tokio::test]
    async fn sealed_credentials_open_only_for_their_owner() {
        let vault = EnvelopeVault::new(LocalDataKeys::random());
        let (acme, globex) = (
            TenantId::parse("acme").expect("id"),
            TenantId::parse("globex").expect("id"),
        );
        let p = ProviderId::generate();
        let sealed = vault
            .seal(&acme, &p, &input())
            .await
            .expect("seals")
            .expect("has secrets");
        assert!(!sealed.ciphertext.contains("0123456789"));
        assert_eq!(sealed.hints["api_key"], "…6789");
        let open = vault.open(&acme, &p, Some(&sealed)).await.expect("opens");
        assert_eq!(open.get("api_key"), Some("at_live_0123456789"));
        assert!(matches!(
            vault.open(&globex, &p, Some(&sealed)).await,
            Err(VaultError::Corrupt)
        ));
        assert!(matches!(
            vault
                .open(&acme, &ProviderId::generate(), Some(&sealed))
                .await,
            Err(VaultError::Corrupt)
        ));
        let mut tampered = sealed.clone();
        tampered.ciphertext = B64.encode(b"not the ciphertext at all");
        assert!(matches!(
            vault.open(&acme, &p, Some(&tampered)).await,
            Err(VaultError::Corrupt)
        ));
        assert!(!format!("{open:?}").contains("0123456789"));
    }

    #[tokio::test]
    async fn endpoint_secrets_open_only_for_their_endpoint() {
        let vault = EnvelopeVault::new(LocalDataKeys::random());
        let acme = TenantId::parse("acme").expect("id");
        let endpoint = WebhookEndpointId::generate();
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let sealed = vault
            .seal_endpoint_secret(&acme, &endpoint, &secret)
            .await
            .expect("seals");
        assert!(!sealed.ciphertext.contains("MfKQ9r8"));
        let opened = vault
            .open_endpoint_secret(&acme, &endpoint, &sealed)
            .await
            .expect("opens");
        assert_eq!(opened.expose_secret(), secret.expose_secret());
        let other = WebhookEndpointId::generate();
        assert!(matches!(
            vault.open_endpoint_secret(&acme, &other, &sealed).await,
            Err(VaultError::Corrupt)
        ));
        assert!(matches!(
            vault
                .open_endpoint_secret(&TenantId::parse("globex").expect("id"), &endpoint, &sealed)
                .await,
            Err(VaultError::Corrupt)
        ));
    }
}
