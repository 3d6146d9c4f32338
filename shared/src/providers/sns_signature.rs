//! Amazon SNS message signatures: proves that an HTTPS delivery (an SES event, a subscription
//! confirmation) was signed by SNS for one of the topics Herald expects, before anything in it
//! is read.
//!
//! | Check | How | Refused as |
//! | --- | --- | --- |
//! | Envelope | JSON with `Type`, `MessageId`, `TopicArn`, `Message`, `Timestamp`, `SignatureVersion`, `Signature`, `SigningCertURL` | `Malformed` |
//! | Topic | `TopicArn` is one the caller expects (the tenant's configuration) | `Unauthenticated` |
//! | Certificate URL | `https://sns.<region>.amazonaws.com/<name>.pem`: no user, port, query or fragment; checked **before** anything is fetched | `Unauthenticated` |
//! | Age | `Timestamp` at most 1 hour old (SNS's longest HTTPS retry policy) and at most 5 minutes ahead | `Stale` |
//! | Confirmation URL | a `SubscribeURL` is an `https://sns.<region>.amazonaws.com/` URL, so confirming cannot be turned into a request elsewhere | `Unauthenticated` |
//! | Signature | `SignatureVersion` 1 = SHA1withRSA, 2 = SHA256withRSA (PKCS #1 v1.5) over the canonical string of the signed fields, with the certificate's RSA key; the certificate must be within its validity period | `Unauthenticated` |
//!
//! Certificates come through [`CertificateSource`] (HTTPS without redirects in AWS, injected in
//! tests) and their keys are cached per URL for the container's life, so a warm function checks a
//! signature without any request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem as _, Encode as _};

use crate::domain::receipt::ReceiptError;

/// SNS retries an HTTPS delivery for at most an hour (the longest delivery policy it allows), so
/// an older message is a replay.
pub const MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// How far ahead of Herald's clock a timestamp may be.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Certificates are a few kilobytes; anything much larger is not one.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// SNS rotates certificates rarely and names each by its hash; a handful per region at most.
const MAX_CACHED_KEYS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsMessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

/// An SNS message whose signature, topic and age have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    pub kind: SnsMessageType,
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    /// The payload: for SES, the event as a JSON string.
    pub message: String,
    pub timestamp: OffsetDateTime,
    /// Confirmations only; checked to be an SNS endpoint.
    pub subscribe_url: Option<String>,
}

/// The envelope SNS posts, as it posts it.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Subject", default)]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "SignatureVersion")]
    signature_version: String,
    #[serde(rename = "Signature")]
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "SubscribeURL", default)]
    subscribe_url: Option<String>,
    #[serde(rename = "Token", default)]
    token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha1WithRsa,
    Sha256WithRsa,
}

/// Why a certificate could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertificateFetchError(pub String);

/// Port: fetches an SNS signing certificate (PEM) from a URL already checked to be SNS's.
#[async_trait]
pub trait CertificateSource: Send + Sync {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, CertificateFetchError>;
}

/// Fetches certificates over HTTPS, following no redirects (a redirect could lead anywhere).
#[derive(Debug, Clone)]
pub struct HttpCertificateSource {
    http: reqwest::Client,
}

impl HttpCertificateSource {
    pub fn new() -> Result<Self, CertificateFetchError> {
        let http = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CertificateFetchError(format!("HTTP client not built: {e}")))?;
        Ok(Self { http })
    }
}

#[async_trait]
impl CertificateSource for HttpCertificateSource {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, CertificateFetchError> {
        let unreachable = |e: reqwest::Error| {
            CertificateFetchError(if e.is_timeout() {
                "the certificate request timed out".to_owned()
            } else {
                "the certificate could not be fetched".to_owned()
            })
        };
        let mut response = self.http.get(url).send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(CertificateFetchError(format!(
                "the certificate URL answered {}",
                response.status().as_u16()
            )));
        }
        let mut pem = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if pem.len() + chunk.len() > MAX_CERTIFICATE_BYTES {
                return Err(CertificateFetchError(
                    "the certificate is implausibly large".to_owned(),
                ));
            }
            pem.extend_from_slice(&chunk);
        }
        Ok(pem)
    }
}

/// A certificate's key, ready for either signature version, with the period it may be used in
/// (Unix seconds).
#[derive(Debug)]
struct SigningKey {
    sha1: VerifyingKey<sha1::Sha1>,
    sha256: VerifyingKey<sha2::Sha256>,
    not_before: i64,
    not_after: i64,
}

impl SigningKey {
    fn from_pem(pem: &[u8]) -> Result<Self, ReceiptError> {
        let certificate = Certificate::from_pem(pem).map_err(|_| {
            ReceiptError::unauthenticated("the signing certificate is not a PEM X.509 certificate")
        })?;
        let tbs = certificate.tbs_certificate();
        let spki = tbs.subject_public_key_info().to_der().map_err(|_| {
            ReceiptError::unauthenticated("the signing certificate's key cannot be read")
        })?;
        let key = RsaPublicKey::from_public_key_der(&spki).map_err(|_| {
            ReceiptError::unauthenticated("the signing certificate's key is not an RSA key")
        })?;
        let seconds = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        Ok(Self {
            sha1: VerifyingKey::new(key.clone()),
            sha256: VerifyingKey::new(key),
            not_before: seconds(&tbs.validity().not_before),
            not_after: seconds(&tbs.validity().not_after),
        })
    }

    fn valid_at(&self, now: OffsetDateTime) -> bool {
        (self.not_before..=self.not_after).contains(&now.unix_timestamp())
    }

    fn verify(&self, algorithm: Algorithm, signed: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::try_from(signature) else {
            return false;
        };
        match algorithm {
            Algorithm::Sha1WithRsa => self.sha1.verify(signed, &signature).is_ok(),
            Algorithm::Sha256WithRsa => self.sha256.verify(signed, &signature).is_ok(),
        }
    }
}

/// Verifies SNS messages, caching signing keys per certificate URL.
#[derive(Debug)]
pub struct SnsVerifier<S = HttpCertificateSource> {
    source: S,
    keys: RwLock<HashMap<String, Arc<SigningKey>>>,
}

impl<S: CertificateSource> SnsVerifier<S> {
    pub fn new(source: S) -> Self {
        Self {
            source,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// Where certificates come from; it also fetches subscription confirmation URLs, which
    /// are SNS URLs checked the same way.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Checks the raw request body of an SNS HTTPS delivery and returns the message. `now` is
    /// the time the request arrived; `expected_topics` the topic ARNs this endpoint serves.
    pub async fn verify(
        &self,
        body: &[u8],
        expected_topics: &[&str],
        now: OffsetDateTime,
    ) -> Result<SnsMessage, ReceiptError> {
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|_| ReceiptError::malformed("not an SNS message envelope"))?;
        let kind = match envelope.kind.as_str() {
            "Notification" => SnsMessageType::Notification,
            "SubscriptionConfirmation" => SnsMessageType::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => SnsMessageType::UnsubscribeConfirmation,
            _ => return Err(ReceiptError::malformed("unknown SNS message type")),
        };
        if !expected_topics.contains(&envelope.topic_arn.as_str()) {
            return Err(ReceiptError::unauthenticated(
                "the message is from a topic this endpoint does not serve",
            ));
        }
        let algorithm = match envelope.signature_version.as_str() {
            "1" => Algorithm::Sha1WithRsa,
            "2" => Algorithm::Sha256WithRsa,
            _ => {
                return Err(ReceiptError::unauthenticated(
                    "unsupported SNS SignatureVersion",
                ));
            }
        };
        let certificate_url = certificate_url(&envelope.signing_cert_url)?;
        let timestamp = OffsetDateTime::parse(&envelope.timestamp, &Rfc3339)
            .map_err(|_| ReceiptError::malformed("the Timestamp is not an RFC 3339 time"))?;
        check_age(timestamp, now)?;
        let subscribe_url = match kind {
            SnsMessageType::Notification => None,
            SnsMessageType::SubscriptionConfirmation | SnsMessageType::UnsubscribeConfirmation => {
                let url = envelope.subscribe_url.as_deref().ok_or_else(|| {
                    ReceiptError::malformed("the confirmation has no SubscribeURL")
                })?;
                Some(sns_endpoint_url(url)?.to_string())
            }
        };
        let signature = B64
            .decode(envelope.signature.trim())
            .map_err(|_| ReceiptError::unauthenticated("the Signature is not base64"))?;
        let signed = canonical_string(&envelope)?;

        let key = self.signing_key(&certificate_url, now).await?;
        if !key.verify(algorithm, signed.as_bytes(), &signature) {
            return Err(ReceiptError::unauthenticated(
                "the SNS signature does not match",
            ));
        }
        Ok(SnsMessage {
            kind,
            message_id: envelope.message_id,
            topic_arn: envelope.topic_arn,
            subject: envelope.subject,
            message: envelope.message,
            timestamp,
            subscribe_url,
        })
    }

    /// The key of the certificate at `url` (already checked), from the cache or fetched once.
    async fn signing_key(
        &self,
        url: &url::Url,
        now: OffsetDateTime,
    ) -> Result<Arc<SigningKey>, ReceiptError> {
        let cached = self
            .keys
            .read()
            .ok()
            .and_then(|keys| keys.get(url.as_str()).cloned());
        if let Some(key) = cached.filter(|k| k.valid_at(now)) {
            return Ok(key);
        }
        let pem = self
            .source
            .fetch(url.as_str())
            .await
            .map_err(|e| ReceiptError::Unavailable(format!("SNS signing certificate: {e}")))?;
        let key = Arc::new(SigningKey::from_pem(&pem)?);
        if !key.valid_at(now) {
            return Err(ReceiptError::unauthenticated(
                "the signing certificate is not valid at this time",
            ));
        }
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= MAX_CACHED_KEYS {
                keys.clear();
            }
            keys.insert(url.as_str().to_owned(), Arc::clone(&key));
        }
        Ok(key)
    }
}

/// The string SNS signs: `Name\nvalue\n` for each signed field, in byte order of the names.
/// Notifications sign `Message`, `MessageId`, `Subject` (when present), `Timestamp`, `TopicArn`
/// and `Type`; confirmations sign `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`,
/// `TopicArn` and `Type`.
fn canonical_string(envelope: &Envelope) -> Result<String, ReceiptError> {
    let mut fields: Vec<(&str, &str)> = vec![
        ("Message", &envelope.message),
        ("MessageId", &envelope.message_id),
    ];
    if envelope.kind == "Notification" {
        if let Some(subject) = &envelope.subject {
            fields.push(("Subject", subject));
        }
    } else {
        let missing =
            |name: &str| ReceiptError::malformed(format!("the confirmation has no {name}"));
        fields.push((
            "SubscribeURL",
            envelope
                .subscribe_url
                .as_deref()
                .ok_or_else(|| missing("SubscribeURL"))?,
        ));
        fields.push(("Timestamp", &envelope.timestamp));
        fields.push((
            "Token",
            envelope.token.as_deref().ok_or_else(|| missing("Token"))?,
        ));
        fields.push(("TopicArn", &envelope.topic_arn));
        fields.push(("Type", &envelope.kind));
        return Ok(join(&fields));
    }
    fields.push(("Timestamp", &envelope.timestamp));
    fields.push(("TopicArn", &envelope.topic_arn));
    fields.push(("Type", &envelope.kind));
    Ok(join(&fields))
}

fn join(fields: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (name, value) in fields {
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    }
    out
}

fn check_age(timestamp: OffsetDateTime, now: OffsetDateTime) -> Result<(), ReceiptError> {
    let age = now - timestamp;
    if age > MAX_AGE || -age > MAX_CLOCK_SKEW {
        return Err(ReceiptError::Stale);
    }
    Ok(())
}

/// Whether `host` is `sns.<region>.amazonaws.com` (a region such as `eu-west-1` or
/// `us-gov-west-1`: lower-case letters and digits in dash-separated parts, ending in a number).
pub fn is_sns_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let [sns, region, amazonaws, com] = labels.as_slice() else {
        return false;
    };
    let parts: Vec<&str> = region.split('-').collect();
    *sns == "sns"
        && *amazonaws == "amazonaws"
        && *com == "com"
        && parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// An `https://sns.<region>.amazonaws.com/...` URL with nothing that could send a request
/// elsewhere (user info, another port).
fn sns_endpoint_url(raw: &str) -> Result<url::Url, ReceiptError> {
    let refuse = |why: &str| ReceiptError::unauthenticated(format!("{why}: not an SNS endpoint"));
    let url = url::Url::parse(raw).map_err(|_| refuse("unparseable URL"))?;
    if url.scheme() != "https" {
        return Err(refuse("not https"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err(refuse("user info or port in the URL"));
    }
    match url.host() {
        Some(url::Host::Domain(host)) if is_sns_host(host) => Ok(url),
        _ => Err(refuse("host is not sns.<region>.amazonaws.com")),
    }
}

/// Checks a `SigningCertURL` before anything is fetched from it: an SNS endpoint, a path ending
/// in `.pem`, no query or fragment.
pub fn certificate_url(raw: &str) -> Result<url::Url, ReceiptError> {
    let url = sns_endpoint_url(raw)?;
    if !url.path().ends_with(".pem") || url.query().is_some() || url.fragment().is_some() {
        return Err(ReceiptError::unauthenticated(
            "the SigningCertURL is not a .pem file on an SNS endpoint",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_serve_certificates() {
        for good in [
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a86cb10b4e1f29c941702d737128f7b6.pem",
            "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://SNS.AF-SOUTH-1.AMAZONAWS.COM/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com:443/SimpleNotificationService-1.pem",
        ] {
            assert!(certificate_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
            "https://evil.example/sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com%2eevil.example/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com./SimpleNotificationService-1.pem",
            "https://s3.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.evil.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem?x=1",
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.txt",
            "https://user:pass@sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://54.239.0.1/SimpleNotificationService-1.pem",
            "sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
            "",
        ] {
            assert!(
                matches!(certificate_url(bad), Err(ReceiptError::Unauthenticated(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_canonical_string_follows_the_message_type() -> Result<(), ReceiptError> {
        let notification = Envelope {
            kind: "Notification".into(),
            message_id: "m-1".into(),
            topic_arn: "arn:aws:sns:eu-west-1:123456789012:t".into(),
            subject: None,
            message: "hello".into(),
            timestamp: "2026-11-22T10:00:00.000Z".into(),
            signature_version: "1".into(),
            signature: String::new(),
            signing_cert_url: String::new(),
            subscribe_url: None,
            token: None,
        };
        assert_eq!(
            canonical_string(&notification)?,
            "Message\nhello\nMessageId\nm-1\nTimestamp\n2026-11-22T10:00:00.000Z\n\
             TopicArn\narn:aws:sns:eu-west-1:123456789012:t\nType\nNotification\n"
        );
        let with_subject = Envelope {
            subject: Some("Hi".into()),
            ..notification
        };
        assert!(
            canonical_string(&with_subject)?.contains("MessageId\nm-1\nSubject\nHi\nTimestamp")
        );
        let confirmation = Envelope {
            kind: "SubscriptionConfirmation".into(),
            subscribe_url: Some(
                "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription".into(),
            ),
            token: Some("tok".into()),
            ..with_subject
        };
        assert_eq!(
            canonical_string(&confirmation)?,
            "Message\nhello\nMessageId\nm-1\n\
             SubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription\n\
             Timestamp\n2026-11-22T10:00:00.000Z\nToken\ntok\n\
             TopicArn\narn:aws:sns:eu-west-1:123456789012:t\nType\nSubscriptionConfirmation\n",
            "a confirmation never signs Subject"
        );
        Ok(())
    }

    #[test]
    fn ages_are_bounded_both_ways() {
        let now = OffsetDateTime::from_unix_timestamp(1_795_341_600)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let at = |seconds: i64| now + time::Duration::seconds(seconds);
        assert_eq!(check_age(at(-3600), now), Ok(()));
        assert_eq!(check_age(at(-3601), now), Err(ReceiptError::Stale));
        assert_eq!(check_age(at(300), now), Ok(()));
        assert_eq!(check_age(at(301), now), Err(ReceiptError::Stale));
    }
}
