//! The development token issuer: an RSA signing key kept per local stack (PKCS#8 PEM, created
//! on first use), its JWKS, and tokens with the claims Herald reads. RSA because API Gateway's
//! JWT authorizer accepts only RSA signatures.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Where the local stack keeps the key unless told otherwise (under the gitignored `.local/`).
pub const DEFAULT_KEY_PATH: &str = ".local/dev-issuer/signing-key.pem";

/// The signing key and its public half.
pub struct DevIssuer {
    public: RsaPublicKey,
    kid: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl DevIssuer {
    /// Reads the key at `path`, or makes one there (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(pem) => Self::from_pem(&pem).with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                    .context("generating the signing key")?;
                let pem = key.to_pkcs8_pem(LineEnding::LF)?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(path) {
                    Ok(mut file) => {
                        file.write_all(pem.as_bytes())?;
                        Self::from_pem(&pem)
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::from_pem(&std::fs::read_to_string(path)?)
                    }
                    Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
                }
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem).context("not a PKCS#8 RSA private key")?;
        let public = key.to_public_key();
        let der = public.to_public_key_der()?;
        let kid = hex::encode(&Sha256::digest(der.as_bytes())[..8]);
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        Ok(Self {
            public,
            kid,
            encoding,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS an issuer publishes (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": B64URL.encode(self.public.n().to_bytes_be()),
            "e": B64URL.encode(self.public.e().to_bytes_be()),
        }]})
    }

    /// The OpenID discovery document of an issuer at `issuer` whose keys are at `jwks_uri`.
    pub fn discovery(issuer: &str, jwks_uri: &str) -> Value {
        json!({
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// Signs `claims` (RS256, this key's `kid`).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// What a development token says about its bearer.
#[derive(Debug, Clone)]
pub struct DevIdentity {
    pub subject: String,
    pub role: String,
    pub tenant: Option<String>,
}

/// The claims of a token for `who`: Herald's (`sub`, `herald:role`, `herald:tenant`) and the
/// ones the authorizer checks, valid for `ttl` from `now` (seconds since the epoch).
pub fn dev_claims(
    who: &DevIdentity,
    issuer: &str,
    audience: &str,
    now: u64,
    ttl: Duration,
) -> Value {
    let mut claims = json!({
        "sub": who.subject,
        "herald:role": who.role,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl.as_secs(),
        "token_use": "access",
        "scope": "herald/api",
    });
    if let Some(tenant) = &who.tenant {
        claims["herald:tenant"] = json!(tenant);
    }
    claims
}

/// `90`, `45s`, `30m`, `1h`, `2d`.
pub fn parse_ttl(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("ttl {text:?}: expected a number with s, m, h or d"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("ttl {text:?}: expected a number with s, m, h or d"),
    };
    if seconds == 0 {
        bail!("ttl must be positive");
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse() -> anyhow::Result<()> {
        assert_eq!(parse_ttl("1h")?, Duration::from_secs(3600));
        assert_eq!(parse_ttl("30m")?, Duration::from_secs(1800));
        assert_eq!(parse_ttl("90")?, Duration::from_secs(90));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("0s").is_err());
        Ok(())
    }
}
