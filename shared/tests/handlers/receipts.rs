//! Delivery receipts from every provider, authenticated over the raw request and read into
//! Herald's notifications. Each provider: the sample receipts in `events/receipts/` (API Gateway
//! v2 events, signed with the test secrets listed in `events/receipts/README.md`) are accepted and
//! read to the right status, ids and cost; one altered byte is refused; providers' published
//! vectors pass where they exist. SNS also: replays outside the hour, certificates from anywhere
//! but `sns.<region>.amazonaws.com` (refused before any fetch), unexpected topics. Inbound `STOP`
//! is an opt-out on every provider that carries inbound messages.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use herald_shared::domain::Channel;
use herald_shared::domain::message::MessageStatus;
use herald_shared::domain::provider::ProviderKind;
use herald_shared::domain::receipt::{
    InboundMessage, Notification, Receipt, ReceiptError, is_opt_out_keyword,
};
use herald_shared::providers::sns_signature::{
    CertificateFetchError, CertificateSource, SnsVerifier,
};
use herald_shared::providers::{africastalking, brevo, meta_whatsapp, ses, twilio};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

// The test secrets the fixtures are signed with (events/receipts/README.md).
const TWILIO_AUTH_TOKEN: &str = "herald-receipts-test-twilio-token";
const META_APP_SECRET: &str = "herald-receipts-test-meta-app-secret";
const META_VERIFY_TOKEN: &str = "herald-receipts-test-verify-token";
const AT_USER: &str = "herald";
const AT_PASSWORD: &str = "herald-receipts-test-at-password";
const BREVO_USER: &str = "herald";
const BREVO_PASSWORD: &str = "herald-receipts-test-brevo-password";
const BREVO_BEARER: &str = "herald-receipts-test-brevo-token";

const SES_TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:herald-ses-events-acme";
const SNS_CERT_URL: &str = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";

/// The key behind `events/receipts/sns-test-signing-cert.pem` (self-signed, CN=sns.amazonaws.com,
/// valid 2026-2036): a test key, generated once for these tests and used nowhere else.
const SNS_TEST_PRIVATE_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDVaxTI2GVUjPMy
u1j9NCdsVgjkerOy/oHf5qjuR1gkACDwHoVxeIPX1Vo6UyCuc3R5rY7HG2q3fBID
QrDc0aXvVgR77nImBQjcWirkoA4zUZteJJUE7a3By5pyfh1+iNQj49w01mmtSPvV
VYTPO3BA3/ws47Ok96JR+na3XXg9f5+gbglBGALSmm1er+sT9G02THGJLe0sotgC
z65z5IDgOyfqnte8wMDHPYvupBXJfgI/WPE6IlL1xlMH7d/PEg/5zbmHyN9Pxmuy
JOxXaxNOK7772ipfZ9Err6ZMboJ34z3UXClj/JJVO1q5QAC9/KJrKBHNmv4WGroe
+9q8QBh5AgMBAAECggEABiVPg6ohnuHxNe6JtT7tfLPsjSHQb3DfThKPHk99JQpA
6JFEb/xTtaEt+DyBFiz6d2+NS0QJmm+O+DuRKsa5w87jEauP63LdKrVJA2ztg8JP
mlIs3We3x3skvzPNByILE96Brp7XC7esktvj13DjfmbE1QkYmQFNkhVHmmetaP3o
pO6yhf+QnpeMWm7RCB8hmcOAof1Nm4aa8hhzFJy//twiRvWQnLtR2MOA+BxzZEnt
2b00WEjjoHbi7UzDDR+3al5sQdSQYf6cYYxnJKQIFVul2tpa8lkeIT5Xci40Lz6Q
iRYQQpq+TCjxfCf/tpFMAYB5bW0SEbeaNLEgF/nZVQKBgQDtMdZtieuhSiw1SsnE
YYh5BJUcPxeM+CQ/l5iLWub6qsfwCG9l5SNNQFx9C4GQKd01NrxbY9oJhNwGHYVA
IjfLWh5MZ00vpR+0cHWgvPx6qjQo+3T4ydQqUaOHJLefBUTTZPcSJRW2kra+la1n
GGULTknzYaqR0uscS3Dm9aONpQKBgQDmVqwHdepFXWhcGDd59XFzjBO5Dxbwa89G
fqCLgOtD3MmBUuVFGzXfww8UKXHgCKSujtxlWDwF10JZpCba5pFrk6si5ME+h2ry
PdBvX88LexJy+HcgVFsOVdz1aCBfVZ/WBEm+reUBr7K+gxIGQdszTcVoIBzZFIi2
k3BCRJFPRQKBgQCxOyD2vixjWvHHbDdw1lPL4SGtdnMZcTxci+B+mBCo0j0M3LCo
GVuUWHgDMzq/Rpi0L070lpqPrEdfBmXPcwHvn0muWy2wYRhckf9CeJPK8CyDRsiz
MNOoP1IKI+RUHPK9Zd67HxynS97ibyKfOvodRYU6Jwr1ZP0qKjCVUou/xQKBgQDJ
iwz7ejGCgDjQXGAuVpTuhaK8SnfH5o13IVVYu3Uf7BBlGCOEVErPf92xxpHddbKj
Cl3OT2Y1tiRYS0m0QAr+FjeoUIDGNbdePrgiu7JuWUHLV5zkrOr/oCG2mWW6BTHW
Eep07bNzxkigag9bakRin6obcf3L9CurlVakpVqAAQKBgBOezEtbly7dFMxUVYH1
Zapd8sPAEGigcK+UQi8cMwB4/6YUTtXPcuWndDGZ1dy1evozEJo3pO/Q9X0k1y3f
ipeMQh1D31f97Xh9xsU8fYvYm8lhdClc5YKlzEKpQHnJcUd7ITb5f/YHurGxb58S
6eYa1OMOeIwtjgoHe2+EnSy0
-----END PRIVATE KEY-----";

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------------------------
// Fixtures: API Gateway v2 events, read the way the webhook function will read them
// ---------------------------------------------------------------------------------------------

/// A webhook request as the function sees it: raw body bytes, headers, the public URL.
struct Webhook {
    body: Vec<u8>,
    headers: HeaderMap,
    url: String,
    query: String,
    at: OffsetDateTime,
}

fn fixture(name: &str) -> Result<Webhook, Box<dyn std::error::Error>> {
    let path = format!("{}/../events/receipts/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)?;
    let event: Value = serde_json::from_str(&text)?;
    assert!(
        event["requestContext"].get("authorizer").is_none(),
        "{name}: provider webhooks carry no authorizer"
    );
    // lambda_http decodes the body as the function will (base64 for form posts).
    let request = lambda_http::request::from_str(&text)?;
    let body = request.body().as_ref().to_vec();
    let headers = request.headers().clone();
    let query = event["rawQueryString"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut url = format!(
        "https://{}{}",
        event["requestContext"]["domainName"]
            .as_str()
            .unwrap_or_default(),
        event["rawPath"].as_str().unwrap_or_default()
    );
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let epoch_ms = event["requestContext"]["timeEpoch"]
        .as_i64()
        .unwrap_or_default();
    let at = OffsetDateTime::from_unix_timestamp(epoch_ms / 1000)?;
    Ok(Webhook {
        body,
        headers,
        url,
        query,
        at,
    })
}

/// `body` with the first byte of the first occurrence of `needle` flipped.
fn altered(body: &[u8], needle: &str) -> Vec<u8> {
    let mut out = body.to_vec();
    let position = body
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or(0);
    out[position] ^= 0x01;
    out
}

fn only(notifications: Vec<Notification>) -> Notification {
    assert_eq!(notifications.len(), 1, "{notifications:?}");
    notifications
        .into_iter()
        .next()
        .unwrap_or(Notification::Ignored(String::new()))
}

fn receipt(notification: Notification) -> Receipt {
    match notification {
        Notification::Receipt(receipt) => receipt,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

fn inbound(notification: Notification) -> InboundMessage {
    match notification {
        Notification::Inbound(message) => message,
        other => panic!("expected an inbound message, got {other:?}"),
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn at(rfc3339: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(rfc3339, &Rfc3339).ok()
}

// ---------------------------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------------------------

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn form(items: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(items)
        .finish()
        .into_bytes()
}

fn twilio_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    set(&mut headers, "x-twilio-signature", signature);
    headers
}

const TWILIO_DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

#[test]
fn twilio_published_vectors_pass() -> TestResult {
    // The request-validation example of Twilio's helper libraries (twilio-python, -php, -csharp
    // test suites): auth token "12345".
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];
    assert_eq!(
        twilio::signature("12345", TWILIO_DOC_URL, &pairs(&params)),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    let body = form(&params);
    twilio::verify_signature(
        "12345",
        TWILIO_DOC_URL,
        &twilio_headers("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        &body,
    )?;
    // The same example as Twilio's security page shows it today (other caller number).
    let current = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675310"),
        ("Digits", "1234"),
        ("From", "+14158675310"),
        ("To", "+18005551212"),
    ];
    twilio::verify_signature(
        "12345",
        TWILIO_DOC_URL,
        &twilio_headers("GvWf1cFY/Q7PnoempGyD5oXAezc="),
        &form(&current),
    )?;
    // Repeated parameters: sorted by value, identical pairs once (helper libraries' vector).
    let repeated = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ];
    twilio::verify_signature(
        "12345",
        TWILIO_DOC_URL,
        &twilio_headers("IK+Dwps556ElfBT0I3Rgjkr1wJU="),
        &form(&repeated),
    )?;
    // JSON bodies: the URL carries bodySHA256 and the signature covers the URL only.
    let json_body = br#"{"property": "value", "boolean": true}"#;
    let json_url = format!(
        "{TWILIO_DOC_URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    );
    let json_headers = twilio_headers("a9nBmqA0ju/hNViExpshrM61xv4=");
    twilio::verify_signature("12345", &json_url, &json_headers, json_body)?;
    let tampered = altered(json_body, "value");
    assert!(matches!(
        twilio::verify_signature("12345", &json_url, &json_headers, &tampered),
        Err(ReceiptError::Unauthenticated(_))
    ));
    Ok(())
}

#[test]
fn twilio_status_callbacks_are_read_after_the_signature() -> TestResult {
    let delivered = fixture("twilio-status-delivered.json")?;
    let r = receipt(only(twilio::receive(
        TWILIO_AUTH_TOKEN,
        &delivered.url,
        &delivered.headers,
        &delivered.body,
    )?));
    assert_eq!(
        r,
        Receipt::new(
            ProviderKind::Twilio,
            "SM3f0b8c2d9e1a4b7c6d5e4f3a2b1c0d9e",
            MessageStatus::Delivered
        )
    );

    let undelivered = fixture("twilio-status-undelivered.json")?;
    let r = receipt(only(twilio::receive(
        TWILIO_AUTH_TOKEN,
        &undelivered.url,
        &undelivered.headers,
        &undelivered.body,
    )?));
    assert_eq!(r.provider_message_id, "SM8e2d4c6b0a1f3e5d7c9b1a3f5e7d9c0b");
    assert_eq!(r.status, MessageStatus::Failed);
    assert_eq!(r.reason.as_deref(), Some("30005"));
    assert!(r.hard, "30005: unknown destination handset");
    Ok(())
}

#[test]
fn twilio_refuses_an_altered_byte_a_wrong_url_or_secret() -> TestResult {
    let w = fixture("twilio-status-delivered.json")?;
    let refused = |token: &str, url: &str, headers: &HeaderMap, body: &[u8]| {
        matches!(
            twilio::receive(token, url, headers, body),
            Err(ReceiptError::Unauthenticated(_))
        )
    };
    assert!(refused(
        TWILIO_AUTH_TOKEN,
        &w.url,
        &w.headers,
        &altered(&w.body, "delivered")
    ));
    assert!(refused(
        TWILIO_AUTH_TOKEN,
        &w.url,
        &w.headers,
        &altered(&w.body, "SM3f")
    ));
    assert!(refused("another-token", &w.url, &w.headers, &w.body));
    assert!(refused("", &w.url, &w.headers, &w.body));
    assert!(refused(
        TWILIO_AUTH_TOKEN,
        &w.url.replace("https://", "http://"),
        &w.headers,
        &w.body
    ));
    assert!(refused(
        TWILIO_AUTH_TOKEN,
        &format!("{}x", w.url),
        &w.headers,
        &w.body
    ));
    assert!(refused(
        TWILIO_AUTH_TOKEN,
        &w.url,
        &HeaderMap::new(),
        &w.body
    ));
    let signature = w
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut bad = w.headers.clone();
    let mut flipped = signature.as_bytes().to_vec();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    set(&mut bad, "x-twilio-signature", &String::from_utf8(flipped)?);
    assert!(refused(TWILIO_AUTH_TOKEN, &w.url, &bad, &w.body));
    // Twilio may sign the URL with the default port spelled out.
    let with_port = w.url.replace(".example/", ".example:443/");
    assert!(twilio::receive(TWILIO_AUTH_TOKEN, &with_port, &w.headers, &w.body).is_ok());
    Ok(())
}

#[test]
fn twilio_inbound_sms_and_whatsapp_are_read_and_stop_is_an_opt_out() -> TestResult {
    let stop = fixture("twilio-inbound-stop.json")?;
    let message = inbound(only(twilio::receive(
        TWILIO_AUTH_TOKEN,
        &stop.url,
        &stop.headers,
        &stop.body,
    )?));
    assert_eq!(message.channel, Channel::Sms);
    assert_eq!(message.from, "+260971234567");
    assert_eq!(message.to.as_deref(), Some("+260211555010"));
    assert!(message.is_opt_out(), "the body is {:?}", message.text);

    let reply = fixture("twilio-inbound-whatsapp.json")?;
    let message = inbound(only(twilio::receive(
        TWILIO_AUTH_TOKEN,
        &reply.url,
        &reply.headers,
        &reply.body,
    )?));
    assert_eq!(message.channel, Channel::Whatsapp);
    assert_eq!(message.from, "+260971234567");
    assert_eq!(message.to.as_deref(), Some("+260211555010"));
    assert_eq!(message.text, "Yes, I'll be there!");
    assert!(!message.is_opt_out());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SES through SNS
// ---------------------------------------------------------------------------------------------

/// Serves the test certificate for the one URL the fixtures name, counting fetches.
struct TestCertificates {
    pem: Vec<u8>,
    fetches: AtomicUsize,
    fetched: Mutex<Vec<String>>,
    down: bool,
}

impl TestCertificates {
    fn new() -> Result<Self, std::io::Error> {
        let path = format!(
            "{}/../events/receipts/sns-test-signing-cert.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        Ok(Self {
            pem: std::fs::read(path)?,
            fetches: AtomicUsize::new(0),
            fetched: Mutex::new(Vec::new()),
            down: false,
        })
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CertificateSource for TestCertificates {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, CertificateFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut fetched) = self.fetched.lock() {
            fetched.push(url.to_owned());
        }
        if self.down {
            return Err(CertificateFetchError("connection refused".into()));
        }
        Ok(self.pem.clone())
    }
}

#[async_trait]
impl CertificateSource for &TestCertificates {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, CertificateFetchError> {
        (*self).fetch(url).await
    }
}

/// A real-shaped SNS envelope, signed with the test key (version 1: SHA1withRSA, 2: SHA256withRSA).
fn signed_envelope(
    version: &str,
    fields: &[(&str, &str)],
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut envelope: HashMap<String, String> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    envelope.insert("SignatureVersion".into(), version.into());
    let kind = envelope.get("Type").cloned().unwrap_or_default();
    let signed: &[&str] = if kind == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut data = String::new();
    for name in signed {
        if let Some(value) = envelope.get(*name) {
            data.push_str(&format!("{name}\n{value}\n"));
        }
    }
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(SNS_TEST_PRIVATE_KEY)?;
    let signature = match version {
        "1" => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key)
            .try_sign(data.as_bytes())?
            .to_vec(),
        _ => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key)
            .try_sign(data.as_bytes())?
            .to_vec(),
    };
    envelope.insert("Signature".into(), B64.encode(signature));
    Ok(serde_json::to_vec_pretty(&envelope)?)
}

fn ses_delivery(message_id: &str) -> String {
    json!({
        "eventType": "Delivery",
        "mail": {"timestamp": "2026-11-22T09:59:58.120Z", "messageId": message_id,
                 "source": "events@acme.example", "destination": ["guest@example.com"]},
        "delivery": {"timestamp": "2026-11-22T09:59:59.874Z", "recipients": ["guest@example.com"],
                     "smtpResponse": "250 2.0.0 OK"}
    })
    .to_string()
}

fn notification_fields<'a>(
    message: &'a str,
    timestamp: &'a str,
    cert_url: &'a str,
    topic: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Type", "Notification"),
        ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"),
        ("TopicArn", topic),
        ("Message", message),
        ("Timestamp", timestamp),
        ("SigningCertURL", cert_url),
        (
            "UnsubscribeURL",
            "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        ),
    ]
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[tokio::test]
async fn ses_fixtures_verify_with_signature_versions_1_and_2() -> TestResult {
    let certificates = TestCertificates::new()?;
    let verifier = SnsVerifier::new(&certificates);

    let delivery = fixture("ses-delivery.json")?; // SignatureVersion 1
    let r = receipt(only(
        ses::receive(&verifier, &delivery.body, &[SES_TOPIC], delivery.at).await?,
    ));
    assert_eq!(r.provider, ProviderKind::Ses);
    assert_eq!(
        r.provider_message_id,
        "0102019a5c3e7f21-8d4b2a6e-1f3c-4e5d-9a7b-6c8d0e2f4a1b-000000"
    );
    assert_eq!(r.status, MessageStatus::Delivered);
    assert_eq!(r.occurred_at, at("2026-11-22T09:59:59.874Z"));
    assert!(!r.hard);

    let bounce = fixture("ses-bounce-permanent.json")?; // SignatureVersion 2
    let r = receipt(only(
        ses::receive(&verifier, &bounce.body, &[SES_TOPIC], bounce.at).await?,
    ));
    assert_eq!(
        r.provider_message_id,
        "0102019a5c3e8a44-2c6e8a0b-3d5f-4a7c-9e1b-8d0f2a4c6e8a-000000"
    );
    assert_eq!(r.status, MessageStatus::Bounced);
    assert!(r.hard, "bounceType Permanent");
    assert_eq!(r.reason.as_deref(), Some("Permanent/General"));
    assert_eq!(r.occurred_at, at("2026-11-22T09:59:59.402Z"));

    let complaint = fixture("ses-complaint.json")?;
    let r = receipt(only(
        ses::receive(&verifier, &complaint.body, &[SES_TOPIC], complaint.at).await?,
    ));
    assert_eq!(r.status, MessageStatus::Complained);
    assert_eq!(r.reason.as_deref(), Some("abuse"));
    assert!(!r.hard);

    let confirmation = fixture("ses-subscription-confirmation.json")?;
    match only(ses::receive(&verifier, &confirmation.body, &[SES_TOPIC], confirmation.at).await?) {
        Notification::SubscriptionConfirmation {
            subscribe_url,
            topic_arn,
        } => {
            assert!(
                subscribe_url.starts_with(
                    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
                ),
                "{subscribe_url}"
            );
            assert_eq!(topic_arn, SES_TOPIC);
        }
        other => panic!("expected a subscription confirmation, got {other:?}"),
    }

    assert_eq!(
        certificates.fetches(),
        1,
        "the certificate is fetched once and cached"
    );
    Ok(())
}

#[tokio::test]
async fn sns_messages_signed_now_verify_with_both_versions() -> TestResult {
    let certificates = TestCertificates::new()?;
    let verifier = SnsVerifier::new(&certificates);
    let now = OffsetDateTime::now_utc();
    let message = ses_delivery("0102019a5c3e7f21-aaaa-000000");
    let timestamp = rfc3339(now - time::Duration::seconds(2));
    for version in ["1", "2"] {
        let body = signed_envelope(
            version,
            &notification_fields(&message, &timestamp, SNS_CERT_URL, SES_TOPIC),
        )?;
        let r = receipt(only(
            ses::receive(&verifier, &body, &[SES_TOPIC], now).await?,
        ));
        assert_eq!(
            r.provider_message_id, "0102019a5c3e7f21-aaaa-000000",
            "v{version}"
        );
        assert_eq!(r.status, MessageStatus::Delivered);
        // One byte of the signed Message changed: refused.
        let tampered = altered(&body, "Delivery");
        assert!(
            matches!(
                ses::receive(&verifier, &tampered, &[SES_TOPIC], now).await,
                Err(ReceiptError::Unauthenticated(_))
            ),
            "v{version}"
        );
    }
    // A subject, when present, is signed too.
    let mut fields = notification_fields(&message, &timestamp, SNS_CERT_URL, SES_TOPIC);
    fields.push(("Subject", "Amazon SES Email Event Notification"));
    let body = signed_envelope("2", &fields)?;
    assert!(
        ses::receive(&verifier, &body, &[SES_TOPIC], now)
            .await
            .is_ok()
    );
    let body = altered(&body, "Amazon SES Email");
    assert!(
        ses::receive(&verifier, &body, &[SES_TOPIC], now)
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn sns_refuses_an_altered_byte_of_a_fixture() -> TestResult {
    let certificates = TestCertificates::new()?;
    let verifier = SnsVerifier::new(&certificates);
    let w = fixture("ses-bounce-permanent.json")?;
    // Message, MessageId inside it, TopicArn, Timestamp: all signed.
    for needle in [
        "Permanent",
        "0102019a5c3e8a44",
        "acme\",\n  \"Message",
        "0.531Z", // 10:00:00.531 becomes 10:00:01.531: still fresh, no longer signed
    ] {
        let body = altered(&w.body, needle);
        let outcome = ses::receive(&verifier, &body, &[SES_TOPIC], w.at).await;
        assert!(
            matches!(
                outcome,
                Err(ReceiptError::Unauthenticated(_) | ReceiptError::Malformed(_))
            ),
            "{needle}: {outcome:?}"
        );
    }
    // UnsubscribeURL is not signed (SNS signs a fixed list of fields): changing it changes
    // nothing Herald reads.
    let unsigned = altered(&w.body, "Action=Unsubscribe");
    assert!(
        ses::receive(&verifier, &unsigned, &[SES_TOPIC], w.at)
            .await
            .is_ok()
    );
    // The signature itself altered.
    let text = String::from_utf8(w.body.clone())?;
    let mut envelope: Value = serde_json::from_str(&text)?;
    let signature = envelope["Signature"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let flipped = format!(
        "{}{}",
        if signature.starts_with('A') { "B" } else { "A" },
        &signature[1..]
    );
    envelope["Signature"] = Value::String(flipped);
    let body = serde_json::to_vec(&envelope)?;
    assert!(matches!(
        ses::receive(&verifier, &body, &[SES_TOPIC], w.at).await,
        Err(ReceiptError::Unauthenticated(_))
    ));
    Ok(())
}

#[tokio::test]
async fn sns_refuses_replays_older_than_an_hour() -> TestResult {
    let certificates = TestCertificates::new()?;
    let verifier = SnsVerifier::new(&certificates);
    // The fixture, two hours after SNS signed it.
    let w = fixture("ses-delivery.json")?;
    let later = w.at + time::Duration::hours(2);
    assert_eq!(
        ses::receive(&verifier, &w.body, &[SES_TOPIC], later).await,
        Err(ReceiptError::Stale)
    );
    // Freshly signed messages at the edges of the window.
    let now = OffsetDateTime::now_utc();
    let message = ses_delivery("0102019a5c3e7f21-bbbb-000000");
    for (age_seconds, fresh) in [
        (59 * 60, true),
        (61 * 60, false),
        (-4 * 60, true),
        (-6 * 60, false),
    ] {
        let timestamp = rfc3339(now - time::Duration::seconds(age_seconds));
        let body = signed_envelope(
            "2",
            &notification_fields(&message, &timestamp, SNS_CERT_URL, SES_TOPIC),
        )?;
        let outcome = ses::receive(&verifier, &body, &[SES_TOPIC], now).await;
        assert_eq!(outcome.is_ok(), fresh, "{age_seconds}s old: {outcome:?}");
        if !fresh {
            assert_eq!(outcome, Err(ReceiptError::Stale));
        }
    }
    Ok(())
}

#[tokio::test]
async fn sns_certificates_from_anywhere_else_are_refused_before_any_fetch() -> TestResult {
    let certificates = TestCertificates::new()?;
    let verifier = SnsVerifier::new(&certificates);
    let now = OffsetDateTime::now_utc();
    let timestamp = rfc3339(now);
    let message = ses_delivery("0102019a5c3e7f21-cccc-000000");
    for url in [
        "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://evil.example/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.txt",
    ] {
        // Correctly signed by the holder of the key: only the URL is wrong.
        let body = signed_envelope(
            "1",
            &notification_fields(&message, &timestamp, url, SES_TOPIC),
        )?;
        assert!(
            matches!(
                ses::receive(&verifier, &body, &[SES_TOPIC], now).await,
                Err(ReceiptError::Unauthenticated(_))
            ),
            "{url}"
        );
    }
    assert_eq!(certificates.fetches(), 0, "nothing was fetched");
    Ok(())
}

#[tokio::test]
async fn sns_refuses_unexpected_topics_and_versions() -> TestResult {
    let certificates = TestCertificates::new()?;
    let verifier = SnsVerifier::new(&certificates);
    let w = fixture("ses-delivery.json")?;
    let other = "arn:aws:sns:eu-west-1:123456789012:herald-ses-events-globex";
    assert!(matches!(
        ses::receive(&verifier, &w.body, &[other], w.at).await,
        Err(ReceiptError::Unauthenticated(_))
    ));
    assert!(matches!(
        ses::receive(&verifier, &w.body, &[], w.at).await,
        Err(ReceiptError::Unauthenticated(_))
    ));
    assert_eq!(certificates.fetches(), 0);

    let now = OffsetDateTime::now_utc();
    let timestamp = rfc3339(now);
    let message = ses_delivery("0102019a5c3e7f21-dddd-000000");
    let body = signed_envelope(
        "3",
        &notification_fields(&message, &timestamp, SNS_CERT_URL, SES_TOPIC),
    )?;
    assert!(matches!(
        ses::receive(&verifier, &body, &[SES_TOPIC], now).await,
        Err(ReceiptError::Unauthenticated(_))
    ));
    // A confirmation whose SubscribeURL leads elsewhere is refused, though correctly signed.
    let body = signed_envelope(
        "1",
        &[
            ("Type", "SubscriptionConfirmation"),
            ("MessageId", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"),
            ("Token", "2336412f37fb"),
            ("TopicArn", SES_TOPIC),
            ("Message", "You have chosen to subscribe to the topic."),
            (
                "SubscribeURL",
                "https://evil.example/?Action=ConfirmSubscription",
            ),
            ("Timestamp", &timestamp),
            ("SigningCertURL", SNS_CERT_URL),
        ],
    )?;
    assert!(matches!(
        ses::receive(&verifier, &body, &[SES_TOPIC], now).await,
        Err(ReceiptError::Unauthenticated(_))
    ));
    Ok(())
}

#[tokio::test]
async fn sns_certificate_trouble_is_retryable_or_refused() -> TestResult {
    let mut down = TestCertificates::new()?;
    down.down = true;
    let verifier = SnsVerifier::new(&down);
    let w = fixture("ses-delivery.json")?;
    assert!(matches!(
        ses::receive(&verifier, &w.body, &[SES_TOPIC], w.at).await,
        Err(ReceiptError::Unavailable(_))
    ));
    // Signed in 2037, after the test certificate expired.
    let certificates = TestCertificates::new()?;
    let verifier = SnsVerifier::new(&certificates);
    let then = OffsetDateTime::from_unix_timestamp(2_120_000_000)?;
    let message = ses_delivery("0102019a5c3e7f21-eeee-000000");
    let body = signed_envelope(
        "2",
        &notification_fields(&message, &rfc3339(then), SNS_CERT_URL, SES_TOPIC),
    )?;
    assert!(matches!(
        ses::receive(&verifier, &body, &[SES_TOPIC], then).await,
        Err(ReceiptError::Unauthenticated(_))
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Meta WhatsApp Cloud
// ---------------------------------------------------------------------------------------------

#[test]
fn meta_signature_scheme_passes_the_published_vector() -> TestResult {
    // X-Hub-Signature-256 is the same scheme GitHub documents with this vector ("Validating
    // webhook deliveries"); Meta publishes none of its own.
    let mut headers = HeaderMap::new();
    set(
        &mut headers,
        "x-hub-signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    );
    meta_whatsapp::verify_signature("It's a Secret to Everybody", &headers, b"Hello, World!")?;
    assert_eq!(
        meta_whatsapp::signature("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    Ok(())
}

#[test]
fn meta_statuses_and_messages_are_read_after_the_signature() -> TestResult {
    let delivered = fixture("meta-status-delivered.json")?;
    let r = receipt(only(meta_whatsapp::receive(
        META_APP_SECRET,
        &delivered.headers,
        &delivered.body,
    )?));
    assert_eq!(r.provider, ProviderKind::MetaWhatsapp);
    assert_eq!(
        r.provider_message_id,
        "wamid.HBgMMjYwOTcxMjM0NTY3FQIAERgSQzY5QkU1RjM5QTBFMkI1RjYyAA=="
    );
    assert_eq!(r.status, MessageStatus::Delivered);
    assert_eq!(
        r.occurred_at,
        OffsetDateTime::from_unix_timestamp(1_795_341_598).ok()
    );

    let failed = fixture("meta-status-failed.json")?;
    let r = receipt(only(meta_whatsapp::receive(
        META_APP_SECRET,
        &failed.headers,
        &failed.body,
    )?));
    assert_eq!(r.status, MessageStatus::Failed);
    assert_eq!(r.reason.as_deref(), Some("131026"));
    assert!(!r.hard);

    let stop = fixture("meta-inbound-stop.json")?;
    let message = inbound(only(meta_whatsapp::receive(
        META_APP_SECRET,
        &stop.headers,
        &stop.body,
    )?));
    assert_eq!(message.channel, Channel::Whatsapp);
    assert_eq!(message.from, "+260971234567");
    assert_eq!(message.to.as_deref(), Some("+260211555020"));
    assert!(message.is_opt_out());
    Ok(())
}

#[test]
fn meta_refuses_an_altered_byte_or_a_wrong_secret() -> TestResult {
    let w = fixture("meta-status-delivered.json")?;
    let refused = |secret: &str, headers: &HeaderMap, body: &[u8]| {
        matches!(
            meta_whatsapp::receive(secret, headers, body),
            Err(ReceiptError::Unauthenticated(_))
        )
    };
    assert!(refused(
        META_APP_SECRET,
        &w.headers,
        &altered(&w.body, "delivered")
    ));
    assert!(refused("another-secret", &w.headers, &w.body));
    assert!(refused("", &w.headers, &w.body));
    assert!(refused(META_APP_SECRET, &HeaderMap::new(), &w.body));
    let mut sha1_only = w.headers.clone();
    sha1_only.remove("x-hub-signature-256");
    assert!(
        refused(META_APP_SECRET, &sha1_only, &w.body),
        "SHA-1 signatures are not enough"
    );
    let mut not_hex = w.headers.clone();
    set(&mut not_hex, "x-hub-signature-256", "sha256=zz");
    assert!(refused(META_APP_SECRET, &not_hex, &w.body));
    Ok(())
}

#[test]
fn meta_verification_challenge_needs_the_verify_token() -> TestResult {
    let w = fixture("meta-verification.json")?;
    assert_eq!(
        meta_whatsapp::verification_challenge(&w.query, META_VERIFY_TOKEN)?,
        "1158201444"
    );
    assert!(w.body.is_empty());
    assert!(matches!(
        meta_whatsapp::verification_challenge(&w.query, "another-token"),
        Err(ReceiptError::Unauthenticated(_))
    ));
    let query = |mode: &str, challenge: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("hub.mode", mode)
            .append_pair("hub.challenge", challenge)
            .append_pair("hub.verify_token", META_VERIFY_TOKEN)
            .finish()
    };
    assert!(matches!(
        meta_whatsapp::verification_challenge(&query("unsubscribe", "1"), META_VERIFY_TOKEN),
        Err(ReceiptError::Malformed(_))
    ));
    assert!(matches!(
        meta_whatsapp::verification_challenge(&query("subscribe", "<script>"), META_VERIFY_TOKEN),
        Err(ReceiptError::Malformed(_))
    ));
    assert!(matches!(
        meta_whatsapp::verification_challenge(
            "hub.mode=subscribe&hub.challenge=1",
            META_VERIFY_TOKEN
        ),
        Err(ReceiptError::Unauthenticated(_))
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Africa's Talking
// ---------------------------------------------------------------------------------------------

#[test]
fn africastalking_reports_and_messages_are_read_after_basic_auth() -> TestResult {
    let success = fixture("africastalking-delivery-success.json")?;
    africastalking::verify_basic_auth(&success.headers, AT_USER, AT_PASSWORD)?;
    let r = receipt(only(africastalking::parse_callback(&success.body)?));
    assert_eq!(
        r,
        Receipt::new(
            ProviderKind::AfricasTalking,
            "ATXid_4b1f7e0c9d2a3b5c6e8f0a1b2c3d4e5f",
            MessageStatus::Delivered
        )
    );

    let failed = fixture("africastalking-delivery-failed.json")?;
    africastalking::verify_basic_auth(&failed.headers, AT_USER, AT_PASSWORD)?;
    let r = receipt(only(africastalking::parse_callback(&failed.body)?));
    assert_eq!(r.status, MessageStatus::Failed);
    assert_eq!(r.reason.as_deref(), Some("UserDoesNotExist"));
    assert!(r.hard);

    let stop = fixture("africastalking-inbound-stop.json")?;
    africastalking::verify_basic_auth(&stop.headers, AT_USER, AT_PASSWORD)?;
    let message = inbound(only(africastalking::parse_callback(&stop.body)?));
    assert_eq!(message.provider, ProviderKind::AfricasTalking);
    assert_eq!(message.channel, Channel::Sms);
    assert_eq!(message.from, "+260971234567");
    assert_eq!(message.to.as_deref(), Some("20880"));
    assert!(message.is_opt_out());

    Ok(())
}

#[test]
fn africastalking_refuses_an_altered_credential() -> TestResult {
    let w = fixture("africastalking-delivery-success.json")?;
    let authorization = w
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // One byte of the credentials changed ("herald" → "heralc").
    let mut bytes = authorization.into_bytes();
    let last = bytes.len() - 1;
    bytes[last - 4] ^= 0x01;
    let mut headers = w.headers.clone();
    set(&mut headers, "authorization", &String::from_utf8(bytes)?);
    assert!(matches!(
        africastalking::verify_basic_auth(&headers, AT_USER, AT_PASSWORD),
        Err(ReceiptError::Unauthenticated(_))
    ));
    assert!(africastalking::verify_basic_auth(&w.headers, AT_USER, "another-password").is_err());
    assert!(africastalking::verify_basic_auth(&HeaderMap::new(), AT_USER, AT_PASSWORD).is_err());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Brevo
// ---------------------------------------------------------------------------------------------

#[test]
fn brevo_events_are_read_after_basic_or_bearer_auth() -> TestResult {
    let delivered = fixture("brevo-delivered.json")?;
    brevo::verify_basic_auth(&delivered.headers, BREVO_USER, BREVO_PASSWORD)?;
    let r = receipt(only(brevo::parse_webhook(&delivered.body)?));
    assert_eq!(r.provider, ProviderKind::Brevo);
    assert_eq!(
        r.provider_message_id,
        "<202611221000.68215643071@smtp-relay.mailin.fr>"
    );
    assert_eq!(r.status, MessageStatus::Delivered);
    assert_eq!(
        r.occurred_at,
        OffsetDateTime::from_unix_timestamp(1_795_341_599).ok()
    );

    let bounce = fixture("brevo-hard-bounce.json")?;
    brevo::verify_bearer_token(&bounce.headers, BREVO_BEARER)?;
    let r = receipt(only(brevo::parse_webhook(&bounce.body)?));
    assert_eq!(r.status, MessageStatus::Bounced);
    assert!(r.hard);
    let reason = r.reason.unwrap_or_default();
    assert!(reason.starts_with("hard_bounce: 550 5.1.1"), "{reason}");
    assert!(!reason.contains('@'), "no address in the reason: {reason}");

    let batch = fixture("brevo-batch.json")?;
    brevo::verify_basic_auth(&batch.headers, BREVO_USER, BREVO_PASSWORD)?;
    let statuses: Vec<MessageStatus> = brevo::parse_webhook(&batch.body)?
        .into_iter()
        .map(|n| receipt(n).status)
        .collect();
    assert_eq!(statuses, [MessageStatus::Read, MessageStatus::Complained]);

    // The unsubscribe link is the recipient's opt-out of email.
    let unsubscribed = fixture("brevo-unsubscribed.json")?;
    brevo::verify_basic_auth(&unsubscribed.headers, BREVO_USER, BREVO_PASSWORD)?;
    match only(brevo::parse_webhook(&unsubscribed.body)?) {
        Notification::Unsubscribed(who) => {
            assert_eq!(
                (who.channel, who.from.as_str()),
                (Channel::Email, "guest@example.com")
            );
            assert!(!format!("{who:?}").contains("guest@"), "{who:?}");
        }
        other => panic!("not an unsubscribe: {other:?}"),
    }
    // Brevo retries after a soft bounce: no outcome yet.
    let soft = br#"{"event":"soft_bounce","email":"guest@example.com","message-id":"<1@smtp-relay.mailin.fr>","reason":"mailbox full"}"#;
    assert!(matches!(
        only(brevo::parse_webhook(soft)?),
        Notification::Ignored(_)
    ));
    Ok(())
}

#[test]
fn brevo_refuses_an_altered_credential() -> TestResult {
    let basic = fixture("brevo-delivered.json")?;
    let bearer = fixture("brevo-hard-bounce.json")?;
    let flip = |headers: &HeaderMap| -> Result<HeaderMap, Box<dyn std::error::Error>> {
        let mut bytes = headers
            .get("authorization")
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        let mut out = headers.clone();
        set(&mut out, "authorization", &String::from_utf8(bytes)?);
        Ok(out)
    };
    assert!(brevo::verify_basic_auth(&flip(&basic.headers)?, BREVO_USER, BREVO_PASSWORD).is_err());
    assert!(brevo::verify_bearer_token(&flip(&bearer.headers)?, BREVO_BEARER).is_err());
    assert!(
        brevo::verify_bearer_token(&basic.headers, BREVO_BEARER).is_err(),
        "Basic is not Bearer"
    );
    assert!(brevo::verify_basic_auth(&bearer.headers, BREVO_USER, BREVO_PASSWORD).is_err());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Every fixture
// ---------------------------------------------------------------------------------------------

#[test]
fn inbound_stop_is_an_opt_out_on_every_channel() -> TestResult {
    for name in [
        "twilio-inbound-stop.json",
        "meta-inbound-stop.json",
        "africastalking-inbound-stop.json",
    ] {
        let w = fixture(name)?;
        let notifications = match name.split('-').next() {
            Some("twilio") => twilio::receive(TWILIO_AUTH_TOKEN, &w.url, &w.headers, &w.body)?,
            Some("meta") => meta_whatsapp::receive(META_APP_SECRET, &w.headers, &w.body)?,
            _ => {
                africastalking::verify_basic_auth(&w.headers, AT_USER, AT_PASSWORD)?;
                africastalking::parse_callback(&w.body)?
            }
        };
        let message = inbound(only(notifications));
        assert!(is_opt_out_keyword(&message.text), "{name}");
    }
    Ok(())
}

#[test]
fn every_receipt_fixture_is_an_api_gateway_event_without_authorizer() -> TestResult {
    let dir = format!("{}/../events/receipts", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let w = fixture(&name)?;
        assert!(
            w.url
                .starts_with("https://hooks.herald.example/v1/webhooks/"),
            "{name}"
        );
        count += 1;
    }
    assert!(count >= 17, "{count} fixtures");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The delivery-webhooks handler: SES events through SNS end to end (in memory)
// ---------------------------------------------------------------------------------------------

mod through_the_function {
    use std::sync::Arc;

    use async_trait::async_trait;
    use herald_shared::App;
    use herald_shared::api::receipts::{Receiver, handle_at};
    use herald_shared::credentials::OpenCredentials;
    use herald_shared::domain::audit::AuditEntry;
    use herald_shared::domain::message::{Message, MessageContent, MessageId, MessageStatus};
    use herald_shared::domain::provider::{ProviderConfig, ProviderKind, ProviderSettings};
    use herald_shared::domain::receipt::ReceiptRoute;
    use herald_shared::domain::recipient::Recipient;
    use herald_shared::domain::recipient::RecipientKeyring;
    use herald_shared::domain::snapshot::CheckOutcome;
    use herald_shared::domain::validation::EmailAddress;
    use herald_shared::domain::{Category, Channel, EventId, ProviderId, TenantId};
    use herald_shared::providers::sns_signature::SnsVerifier;
    use herald_shared::providers::{
        Accepted, ChannelSender, CredentialChecker, Outbound, SendError,
    };
    use herald_shared::store::memory::MemoryStore;
    use herald_shared::store::{MessageStore as _, ProviderStore as _, RecipientStore as _};
    use time::OffsetDateTime;

    use super::{SES_TOPIC, TestCertificates, TestResult};

    /// Receipts never check credentials or send: these ports are not reached.
    struct NoProviders;

    #[async_trait]
    impl CredentialChecker for NoProviders {
        async fn check(&self, _: &ProviderSettings, _: &OpenCredentials) -> CheckOutcome {
            CheckOutcome::Unreachable {
                detail: "receipts do not check providers".into(),
            }
        }
    }

    #[async_trait]
    impl ChannelSender for NoProviders {
        async fn send(
            &self,
            _: &ProviderSettings,
            _: &OpenCredentials,
            _: &Outbound<'_>,
        ) -> Result<Accepted, SendError> {
            Err(SendError::Provider {
                code: "not_here".into(),
                reason: "receipts do not send".into(),
            })
        }
    }

    const SES_TOKEN: &str = "whk_ses_7Hq2Wc5Rz8Tn1Yp4Ld6";
    const BOUNCED_SES_ID: &str = "0102019a5c3e8a44-2c6e8a0b-3d5f-4a7c-9e1b-8d0f2a4c6e8a-000000";

    struct World {
        receiver: Receiver<TestCertificates>,
        store: Arc<MemoryStore>,
        tenant: TenantId,
    }

    async fn world() -> Result<World, Box<dyn std::error::Error>> {
        let store = Arc::new(MemoryStore::default());
        let mut app = App::in_memory(Arc::new(NoProviders), Arc::new(NoProviders));
        app.providers = store.clone();
        app.messages = store.clone();
        app.recipients = store.clone();
        let tenant = TenantId::parse("acme-events")?;
        let config = ProviderConfig {
            id: ProviderId::generate(),
            channel: Channel::Email,
            name: "SES".into(),
            settings: ProviderSettings::Ses {
                from_address: EmailAddress::parse("events@acme.example")?,
                from_name: None,
                configuration_set: Some("herald-events".into()),
                events_topic_arn: Some(SES_TOPIC.into()),
            },
            credentials: None,
            priority: 1,
            weight: 100,
            active: true,
            rate_limit_per_second: None,
            receipts: Some(ReceiptRoute {
                token: SES_TOKEN.into(),
                secret_sha256: None,
            }),
            revision: 1,
            updated_at: OffsetDateTime::now_utc(),
            updated_by: "test".into(),
        };
        let audit = AuditEntry::by_system(
            "test",
            &tenant,
            "r",
            "provider.created",
            "t".into(),
            None,
            None,
        );
        store
            .put_tenant_provider(&tenant, &config, None, &audit)
            .await?;
        Ok(World {
            receiver: Receiver {
                app,
                sns: Arc::new(SnsVerifier::new(TestCertificates::new()?)),
            },
            store,
            tenant,
        })
    }

    fn sent_email(
        tenant: &TenantId,
        to: &str,
        ses_id: &str,
    ) -> Result<Message, Box<dyn std::error::Error>> {
        let recipient = Recipient::parse(Channel::Email, to)?;
        let now = OffsetDateTime::now_utc();
        Ok(Message {
            id: MessageId::derive(tenant, "gala-2026", "receipt-test", 0),
            tenant: tenant.clone(),
            event: EventId::parse("gala-2026")?,
            snapshot_version: 1,
            category: Category::Invitation,
            channel: Channel::Email,
            recipient_key: recipient.key(&RecipientKeyring::new(vec![1; 32])?, tenant.as_str()),
            recipient,
            content: MessageContent {
                subject: Some("You're invited".into()),
                html: None,
                text: "You're invited".into(),
                segments: None,
                whatsapp_template: None,
            },
            status: MessageStatus::Sent,
            status_reason: None,
            trigger: None,
            estimated_cost: None,
            cost: None,
            provider: None,
            provider_kind: Some(ProviderKind::Ses),
            provider_message_id: Some(ses_id.into()),
            attempts: Vec::new(),
            created_at: now,
            sent_at: Some(now),
            request_id: "r".into(),
            expires_at: None,
            not_before: None,
            erased_at: None,
            test: false,
            list_unsubscribe: None,
            status_at: None,
        })
    }

    async fn call(
        w: &World,
        name: &str,
    ) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error>> {
        let path = format!(
            "{}/../events/receipts/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path)?;
        let event: serde_json::Value = serde_json::from_str(&text)?;
        let at = OffsetDateTime::from_unix_timestamp(
            event["requestContext"]["timeEpoch"]
                .as_i64()
                .unwrap_or_default()
                / 1000,
        )?;
        let request = lambda_http::request::from_str(&text)?;
        let response = match handle_at(&w.receiver, request, at).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
        Ok((status, body))
    }

    #[tokio::test]
    async fn a_permanent_bounce_bounces_the_message_and_suppresses_the_address() -> TestResult {
        let w = world().await?;
        let message = sent_email(&w.tenant, "nobody@example.com", BOUNCED_SES_ID)?;
        w.store
            .create(
                &message,
                &herald_shared::domain::audit::AuditEntry::message_accepted(
                    "test",
                    herald_shared::domain::identity::Role::System,
                    &message,
                    "req",
                ),
            )
            .await?;
        let (status, body) = call(&w, "ses-bounce-permanent").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["advanced"].as_u64(), body["suppressed"].as_u64()),
            (Some(1), Some(1))
        );
        let stored = w
            .store
            .message(&message.id)
            .await?
            .ok_or("message")?
            .message;
        assert_eq!(stored.status, MessageStatus::Bounced);
        let blocks = w
            .store
            .blocks(
                &w.tenant,
                &[(Channel::Email, message.recipient_key.clone())],
            )
            .await?;
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert!(
            !format!("{blocks:?}").contains("nobody@example.com"),
            "the suppression does not hold the address"
        );
        // SNS redelivers: nothing changes twice.
        let (_, again) = call(&w, "ses-bounce-permanent").await?;
        assert_eq!(
            (again["unchanged"].as_u64(), again["suppressed"].as_u64()),
            (Some(1), Some(0))
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_subscription_confirmation_is_confirmed_at_its_sns_url() -> TestResult {
        let w = world().await?;
        let (status, body) = call(&w, "ses-subscription-confirmation").await?;
        assert_eq!(status, 200, "{body}");
        let fetched = w
            .receiver
            .sns
            .source()
            .fetched
            .lock()
            .map_err(|_| "lock")?
            .clone();
        assert!(
            fetched.iter().any(|u| u
                .starts_with("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription")),
            "{fetched:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_ses_event_for_an_unknown_message_is_acknowledged() -> TestResult {
        let w = world().await?;
        let (status, body) = call(&w, "ses-delivery").await?;
        assert_eq!((status, body["unknown"].as_u64()), (200, Some(1)), "{body}");
        Ok(())
    }
}
