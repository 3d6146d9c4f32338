//! Signed anchors of the audit log (the scheme is in `domain::audit`): the anchoring job, which
//! signs where every chain of a scope stands whenever it moved since the scope's last anchor,
//! and the signing port. In AWS the key is the template's `AuditAnchorKey`, an asymmetric KMS
//! key (ECDSA P-256) that only the anchoring function may sign with; verifying asks KMS too, so
//! a verifier needs only `kms:Verify`. Logic tests sign with a local HMAC key.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use time::OffsetDateTime;

use crate::domain::audit::{Anchor, SignedAnchor};
use crate::store::{AuditStore, StoreError};

/// Scopes read per request when walking every scope.
const SCOPE_PAGE: usize = 100;
/// Most scopes one run anchors (a run that stops there resumes from the start next time;
/// unchanged scopes cost one read each).
const MAX_SCOPES_PER_RUN: usize = 100_000;

/// Port: sign an anchor's bytes, and check a signature.
#[async_trait]
pub trait AnchorSigner: Send + Sync {
    /// The key's id as recorded with each anchor, and the algorithm.
    fn key_id(&self) -> &str;
    fn algorithm(&self) -> &str;
    async fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>>;
    /// Whether `signature` is the key's over `message`. `key_id` is the anchor's own: a
    /// signature by any other key does not verify.
    async fn verify(&self, key_id: &str, message: &[u8], signature: &[u8]) -> anyhow::Result<bool>;
}

/// Signs with an asymmetric KMS key (`ECC_NIST_P256`, `ECDSA_SHA_256`).
#[derive(Debug, Clone)]
pub struct KmsAnchorSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
}

const ECDSA_SHA_256: &str = "ECDSA_SHA_256";

impl KmsAnchorSigner {
    pub fn new(client: aws_sdk_kms::Client, key_id: String) -> Self {
        Self { client, key_id }
    }
}

#[async_trait]
impl AnchorSigner for KmsAnchorSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn algorithm(&self) -> &str {
        ECDSA_SHA_256
    }

    async fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(aws_sdk_kms::primitives::Blob::new(message))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e).context("KMS Sign failed"))?;
        out.signature
            .map(|b| b.into_inner())
            .ok_or_else(|| anyhow::anyhow!("KMS Sign returned no signature"))
    }

    async fn verify(&self, key_id: &str, message: &[u8], signature: &[u8]) -> anyhow::Result<bool> {
        if key_id != self.key_id {
            return Ok(false);
        }
        let result = self
            .client
            .verify()
            .key_id(key_id)
            .message(aws_sdk_kms::primitives::Blob::new(message))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signature(aws_sdk_kms::primitives::Blob::new(signature))
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.signature_valid),
            // KMS answers a signature that does not verify with this error, not `false`.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_kms_invalid_signature_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(anyhow::Error::new(e).context("KMS Verify failed")),
        }
    }
}

/// Signs with a local HMAC-SHA256 key: for logic tests.
#[derive(Debug, Clone)]
pub struct LocalAnchorSigner {
    key: [u8; 32],
}

impl LocalAnchorSigner {
    pub fn random() -> Self {
        Self {
            key: rand::random(),
        }
    }

    fn mac(&self, message: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(message);
        mac
    }
}

#[async_trait]
impl AnchorSigner for LocalAnchorSigner {
    fn key_id(&self) -> &str {
        "local"
    }

    fn algorithm(&self) -> &str {
        "HMAC_SHA_256"
    }

    async fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        use hmac::Mac as _;
        Ok(self.mac(message).finalize().into_bytes().to_vec())
    }

    async fn verify(&self, key_id: &str, message: &[u8], signature: &[u8]) -> anyhow::Result<bool> {
        use hmac::Mac as _;
        Ok(key_id == self.key_id() && self.mac(message).verify_slice(signature).is_ok())
    }
}

/// What anchoring one scope did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Anchored {
    /// A new anchor with this number.
    New(u64),
    /// Nothing moved since the latest anchor (this number).
    Unchanged(u64),
    /// Another run anchored the scope at the same moment.
    Raced,
}

/// Anchors `scope` if any of its chains moved since its latest anchor.
pub async fn anchor_scope(
    store: &dyn AuditStore,
    signer: &dyn AnchorSigner,
    scope: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Anchored> {
    let (heads, latest) = futures::try_join!(store.audit_heads(scope), store.latest_anchor(scope))?;
    if let Some(latest) = &latest {
        if latest.anchor.heads == heads {
            return Ok(Anchored::Unchanged(latest.anchor.seq));
        }
        // Never sign over tampering: the anchor built on must be genuine, and chains only grow
        // (someone who deleted the newest anchors and cut chains back below them would have
        // the job vouch for the cut).
        anyhow::ensure!(
            signature_verifies(signer, latest).await?,
            "the latest anchor ({}) of {scope} does not verify: not anchoring over it",
            latest.anchor.seq
        );
        for before in &latest.anchor.heads {
            let now_at = heads
                .iter()
                .find(|h| h.chain == before.chain)
                .map_or(0, |h| h.seq);
            anyhow::ensure!(
                now_at >= before.seq,
                "chain {} of {scope} went back from entry {} (anchor {}) to {now_at}: not \
                 anchoring over it",
                before.chain,
                before.seq,
                latest.anchor.seq
            );
        }
    }
    let anchor = Anchor::next(scope, latest.as_ref().map(|l| &l.anchor), heads, now);
    let signature = signer.sign(&anchor.signed_bytes()).await?;
    let signed = SignedAnchor {
        key_id: signer.key_id().to_owned(),
        algorithm: signer.algorithm().to_owned(),
        signature: B64.encode(signature),
        anchor,
    };
    match store.put_anchor(&signed).await {
        Ok(()) => Ok(Anchored::New(signed.anchor.seq)),
        Err(StoreError::Conflict) => Ok(Anchored::Raced),
        Err(e) => Err(e.into()),
    }
}

/// What one run of the anchoring job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnchorRun {
    pub scopes: u64,
    pub anchored: u64,
    pub unchanged: u64,
    pub failed: u64,
}

/// Anchors every scope with audit entries (a failure on one scope does not stop the others; it
/// is counted and logged, and the next run tries again).
pub async fn anchor_all(
    store: &dyn AuditStore,
    signer: &dyn AnchorSigner,
    now: OffsetDateTime,
) -> anyhow::Result<AnchorRun> {
    let mut run = AnchorRun::default();
    let mut after: Option<String> = None;
    while (run.scopes as usize) < MAX_SCOPES_PER_RUN {
        let (scopes, next) = store.audit_scopes(after.as_deref(), SCOPE_PAGE).await?;
        for scope in &scopes {
            run.scopes += 1;
            match anchor_scope(store, signer, scope, now).await {
                Ok(Anchored::New(_)) => run.anchored += 1,
                Ok(Anchored::Unchanged(_) | Anchored::Raced) => run.unchanged += 1,
                Err(e) => {
                    run.failed += 1;
                    tracing::warn!(
                        scope = %scope,
                        audit_anchor_failed = 1,
                        error = %format!("{e:#}"),
                        "anchoring failed"
                    );
                }
            }
        }
        match next {
            Some(key) if Some(&key) != after.as_ref() => after = Some(key),
            _ => break,
        }
    }
    Ok(run)
}

/// One scheduled run: anchors every scope now and logs what it did (one line).
pub async fn scheduled(
    store: &dyn AuditStore,
    signer: &dyn AnchorSigner,
) -> anyhow::Result<AnchorRun> {
    let run = anchor_all(store, signer, OffsetDateTime::now_utc()).await?;
    tracing::info!(
        scopes = run.scopes,
        anchored = run.anchored,
        unchanged = run.unchanged,
        failed = run.failed,
        "audit anchoring run"
    );
    Ok(run)
}

/// Whether `anchor`'s signature verifies with `signer`'s key (an error when it cannot be
/// checked now: that is no verdict).
pub async fn signature_verifies(
    signer: &dyn AnchorSigner,
    anchor: &SignedAnchor,
) -> anyhow::Result<bool> {
    let Ok(signature) = B64.decode(&anchor.signature) else {
        return Ok(false);
    };
    signer
        .verify(&anchor.key_id, &anchor.anchor.signed_bytes(), &signature)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TenantId;
    use crate::domain::audit::{AuditEntry, ChainHead};
    use crate::domain::brand::Brand;
    use crate::store::memory::MemoryStore;
    use crate::store::{Owner, Revisioned, TemplateStore as _};

    /// Brand changes with revisions `revisions`: one audit entry each, in the brand's chain.
    async fn brand_changes(
        store: &MemoryStore,
        tenant: &TenantId,
        revisions: std::ops::RangeInclusive<u32>,
    ) {
        for revision in revisions {
            let brand = Revisioned {
                value: Brand::default(),
                revision,
            };
            let audit = AuditEntry::by_system(
                "test",
                tenant,
                "r",
                "brand.updated",
                "tenant/brand".into(),
                None,
                None,
            );
            store
                .put_brand(&Owner::Tenant(tenant.clone()), &brand, &audit)
                .await
                .expect("brand");
        }
    }

    #[tokio::test]
    async fn the_job_anchors_what_moved_and_never_signs_over_tampering() {
        let store = MemoryStore::default();
        let signer = LocalAnchorSigner::random();
        let tenant = TenantId::parse("acme").expect("tenant");
        let now = OffsetDateTime::now_utc();
        brand_changes(&store, &tenant, 1..=3).await;

        let run = anchor_all(&store, &signer, now).await.expect("run");
        assert_eq!((run.scopes, run.anchored, run.failed), (1, 1, 0));
        assert_eq!(
            anchor_scope(&store, &signer, "acme", now).await.expect("a"),
            Anchored::Unchanged(1)
        );
        brand_changes(&store, &tenant, 4..=4).await;
        assert_eq!(
            anchor_scope(&store, &signer, "acme", now).await.expect("a"),
            Anchored::New(2)
        );
        let anchors = store.anchors("acme").await.expect("anchors");
        assert_eq!(anchors[1].anchor.prev, anchors[0].anchor.digest());
        for anchor in &anchors {
            assert!(signature_verifies(&signer, anchor).await.expect("checked"));
        }

        // An anchor that says a chain stood further than it does now (the chain was cut back
        // after it): the job refuses to vouch for the cut.
        let mut ahead = anchors[1].anchor.clone();
        ahead.seq = 3;
        ahead.prev = anchors[1].anchor.digest();
        ahead.heads = ahead
            .heads
            .iter()
            .map(|h| ChainHead {
                seq: h.seq + 10 * u64::from(h.seq > 0),
                ..h.clone()
            })
            .collect();
        let signature = signer.sign(&ahead.signed_bytes()).await.expect("signed");
        let genuine_ahead = SignedAnchor {
            key_id: "local".into(),
            algorithm: signer.algorithm().into(),
            signature: B64.encode(signature),
            anchor: ahead,
        };
        store.put_anchor(&genuine_ahead).await.expect("put");
        brand_changes(&store, &tenant, 5..=5).await;
        let refused = anchor_scope(&store, &signer, "acme", now).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("went back")),
            "{refused:?}"
        );

        // A forged latest anchor: nothing is built on it.
        let mut forged = genuine_ahead.clone();
        forged.anchor.seq = 4;
        forged.signature = B64.encode([0u8; 32]);
        store.put_anchor(&forged).await.expect("put");
        let refused = anchor_scope(&store, &signer, "acme", now).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("does not verify")),
            "{refused:?}"
        );
        let run = anchor_all(&store, &signer, now).await.expect("run");
        assert_eq!((run.scopes, run.failed), (1, 1), "counted, and alarmed on");
    }
}
