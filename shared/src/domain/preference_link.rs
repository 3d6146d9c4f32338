//! Signed preference-centre links. A recipient has no account: the link itself is the
//! credential, so it says whose preferences it opens (tenant, recipient key, channel) and until
//! when, signed with HMAC-SHA256 under a key only the deployment holds. The address is never in
//! it. Format: `v1.<payload>.<mac>`, both base64url without padding; the MAC covers
//! `v1.<payload>` exactly as it appears in the URL, and is checked (in constant time) before the
//! payload is read.

use super::error_code::ErrorCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use super::catalogue::Channel;
use super::ids::TenantId;

const VERSION: &str = "v1";
/// Keeps these MACs from meaning anything anywhere else the key might be used.
const CONTEXT: &[u8] = b"herald preference link\n";
/// Longest token read (a real one is about 150 characters).
const MAX_TOKEN: usize = 512;

/// Whose preferences a link opens, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferenceLink {
    pub tenant: TenantId,
    pub recipient_key: String,
    /// The channel the link was sent on: what the recipient's consent changes apply to.
    pub channel: Channel,
    pub expires_at: OffsetDateTime,
}

/// Why a token opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token Herald made, or changed since: wrong shape, or the signature does not match.
    #[error("this preference link is not valid")]
    Invalid,
    /// Authentic but past its expiry.
    #[error("this preference link has expired; use the link in a newer message")]
    Expired,
}

impl LinkError {
    pub fn code(self) -> ErrorCode {
        match self {
            LinkError::Invalid => ErrorCode::PreferenceLinkInvalid,
            LinkError::Expired => ErrorCode::PreferenceLinkExpired,
        }
    }
}

fn mac(key: &[u8], signed: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(CONTEXT);
    mac.update(signed.as_bytes());
    mac
}

/// Recipient keys are 32 lowercase hex characters (`Recipient::key`).
pub fn is_recipient_key(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl PreferenceLink {
    /// The token for this link, signed with `key`.
    pub fn sign(&self, key: &[u8]) -> String {
        let payload = format!(
            "{}:{}:{}:{}",
            self.tenant,
            self.recipient_key,
            self.channel.as_str(),
            self.expires_at.unix_timestamp()
        );
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = mac(key, &signed).finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The link `token` stands for, if one of `keys` signed it and it has not expired at `now`.
    /// Several keys let links signed before a key rotation keep working.
    pub fn verify(token: &str, keys: &[&[u8]], now: OffsetDateTime) -> Result<Self, LinkError> {
        if token.len() > MAX_TOKEN {
            return Err(LinkError::Invalid);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(LinkError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LinkError::Invalid)?;
        if !keys
            .iter()
            .any(|key| mac(key, signed).verify_slice(&tag).is_ok())
        {
            return Err(LinkError::Invalid);
        }
        let link = Self::read(signed).ok_or(LinkError::Invalid)?;
        if now >= link.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }

    fn read(signed: &str) -> Option<Self> {
        let payload = signed.strip_prefix(VERSION)?.strip_prefix('.')?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let mut parts = payload.split(':');
        let (tenant, key, channel, expires) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_recipient_key(key) {
            return None;
        }
        Some(Self {
            tenant: TenantId::parse(tenant).ok()?,
            recipient_key: key.to_owned(),
            channel: channel.parse().ok()?,
            expires_at: OffsetDateTime::from_unix_timestamp(expires.parse().ok()?).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const KEY: &[u8] = b"test-key-0123456789abcdef0123456789abcdef";

    fn link() -> PreferenceLink {
        PreferenceLink {
            tenant: TenantId::parse("acme-events").expect("tenant"),
            recipient_key: "0123456789abcdef0123456789abcdef".into(),
            channel: Channel::Sms,
            expires_at: datetime!(2026-12-01 00:00 UTC),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let token = link().sign(KEY);
        assert_eq!(PreferenceLink::verify(&token, &[KEY], NOW), Ok(link()));
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "URL-safe: {token}"
        );
        assert_eq!(
            PreferenceLink::verify(&token, &[KEY], datetime!(2026-12-01 00:00 UTC)),
            Err(LinkError::Expired)
        );
        // A rotated key: the previous one still opens old links.
        assert_eq!(
            PreferenceLink::verify(&token, &[b"new-key-000000000000000000000000", KEY], NOW),
            Ok(link())
        );
        assert_eq!(
            PreferenceLink::verify(&token, &[b"another-key-00000000000000000000"], NOW),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn changing_any_byte_breaks_the_link() {
        let token = link().sign(KEY);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).expect("ascii");
            assert_eq!(
                PreferenceLink::verify(&tampered, &[KEY], NOW),
                Err(LinkError::Invalid),
                "byte {i} of {token}"
            );
        }
        for bad in ["", "v1", "v1..", "v1.e30.", &"a".repeat(600)] {
            assert_eq!(
                PreferenceLink::verify(bad, &[KEY], NOW),
                Err(LinkError::Invalid)
            );
        }
    }

    #[test]
    fn a_payload_moved_to_another_tenant_is_refused() {
        let token = link().sign(KEY);
        let (_, tag) = token.rsplit_once('.').expect("tag");
        let other = format!(
            "v1.{}",
            URL_SAFE_NO_PAD.encode("globex:0123456789abcdef0123456789abcdef:sms:1796083200")
        );
        assert_eq!(
            PreferenceLink::verify(&format!("{other}.{tag}"), &[KEY], NOW),
            Err(LinkError::Invalid)
        );
    }
}
