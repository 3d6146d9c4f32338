//! Receipt handling per provider, without the network: authenticate the raw request (signature
//! or shared secret) and parse it into notifications, for the sample receipts in
//! `events/receipts/`. SNS with its signing certificate already cached (a warm function), and
//! once with a cold cache (certificate parsed, fetch answered at once).
//! `cargo bench -p herald-shared --bench receipts`

use std::hint::black_box;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use herald_shared::domain::receipt::Notification;
use herald_shared::providers::sns_signature::{
    CertificateFetchError, CertificateSource, SnsVerifier,
};
use herald_shared::providers::{africastalking, brevo, meta_whatsapp, ses, twilio};
use reqwest::header::HeaderMap;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use serde_json::Value;
use time::OffsetDateTime;
use x509_cert::der::{DecodePem as _, Encode as _};

const TWILIO_AUTH_TOKEN: &str = "herald-receipts-test-twilio-token";
const META_APP_SECRET: &str = "herald-receipts-test-meta-app-secret";
const AT_PASSWORD: &str = "herald-receipts-test-at-password";
const BREVO_PASSWORD: &str = "herald-receipts-test-brevo-password";
const SES_TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:herald-ses-events-acme";

struct Webhook {
    body: Vec<u8>,
    headers: HeaderMap,
    url: String,
    at: OffsetDateTime,
}

fn events_dir() -> String {
    format!("{}/../events/receipts", env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Webhook {
    let text = std::fs::read_to_string(format!("{}/{name}", events_dir())).unwrap_or_default();
    let event: Value = serde_json::from_str(&text).unwrap_or_default();
    let request = lambda_http::request::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
    let url = format!(
        "https://{}{}",
        event["requestContext"]["domainName"]
            .as_str()
            .unwrap_or_default(),
        event["rawPath"].as_str().unwrap_or_default()
    );
    let millis = event["requestContext"]["timeEpoch"]
        .as_i64()
        .unwrap_or_default();
    Webhook {
        body: request.body().as_ref().to_vec(),
        headers: request.headers().clone(),
        url,
        at: OffsetDateTime::from_unix_timestamp(millis / 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

/// The test signing certificate, served at once.
struct LocalCertificate(Vec<u8>);

#[async_trait]
impl CertificateSource for LocalCertificate {
    async fn fetch(&self, _url: &str) -> Result<Vec<u8>, CertificateFetchError> {
        Ok(self.0.clone())
    }
}

fn certificate() -> LocalCertificate {
    LocalCertificate(
        std::fs::read(format!("{}/sns-test-signing-cert.pem", events_dir())).unwrap_or_default(),
    )
}

fn accepted(outcome: Result<Vec<Notification>, impl std::fmt::Debug>) -> Vec<Notification> {
    match outcome {
        Ok(notifications) => notifications,
        Err(e) => panic!("the sample receipt was refused: {e:?}"),
    }
}

fn receipts(c: &mut Criterion) {
    let w = fixture("twilio-status-delivered.json");
    c.bench_function(
        "twilio: X-Twilio-Signature (HMAC-SHA1) + parse status callback",
        |b| {
            b.iter(|| {
                accepted(twilio::receive(
                    TWILIO_AUTH_TOKEN,
                    black_box(&w.url),
                    &w.headers,
                    black_box(&w.body),
                ))
            })
        },
    );

    let w = fixture("ses-delivery.json");
    let warm = SnsVerifier::new(certificate());
    accepted(futures::executor::block_on(ses::receive(
        &warm,
        &w.body,
        &[SES_TOPIC],
        w.at,
    )));
    c.bench_function(
        "ses: SNS signature v1 (RSA-2048, certificate cached) + parse SES delivery",
        |b| {
            b.iter(|| {
                accepted(futures::executor::block_on(ses::receive(
                    &warm,
                    black_box(&w.body),
                    &[SES_TOPIC],
                    w.at,
                )))
            })
        },
    );
    let bounce = fixture("ses-bounce-permanent.json");
    accepted(futures::executor::block_on(ses::receive(
        &warm,
        &bounce.body,
        &[SES_TOPIC],
        bounce.at,
    )));
    c.bench_function(
        "ses: SNS signature v2 (RSA-2048, certificate cached) + parse SES bounce",
        |b| {
            b.iter(|| {
                accepted(futures::executor::block_on(ses::receive(
                    &warm,
                    black_box(&bounce.body),
                    &[SES_TOPIC],
                    bounce.at,
                )))
            })
        },
    );
    let pem = certificate().0;
    c.bench_function(
        "ses: same, certificate not cached (PEM + X.509 parse)",
        |b| {
            b.iter(|| {
                let cold = SnsVerifier::new(LocalCertificate(pem.clone()));
                accepted(futures::executor::block_on(ses::receive(
                    &cold,
                    black_box(&w.body),
                    &[SES_TOPIC],
                    w.at,
                )))
            })
        },
    );

    // The RSA step alone: the cached key checking the fixture's signature over its canonical
    // string (rebuilt here as SNS documents it).
    let envelope: Value = serde_json::from_slice(&w.body).unwrap_or_default();
    let field = |name: &str| envelope[name].as_str().unwrap_or_default().to_owned();
    let signed: String = ["Message", "MessageId", "Timestamp", "TopicArn", "Type"]
        .iter()
        .map(|name| format!("{name}\n{}\n", field(name)))
        .collect();
    let signature = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        field("Signature"),
    )
    .unwrap_or_default();
    let certificate = x509_cert::Certificate::from_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
    let spki = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap_or_default();
    let key = rsa::pkcs1v15::VerifyingKey::<sha1::Sha1>::new(
        rsa::RsaPublicKey::from_public_key_der(&spki).unwrap_or_else(|e| panic!("{e}")),
    );
    let signature =
        rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap_or_else(|e| panic!("{e}"));
    assert!(key.verify(signed.as_bytes(), &signature).is_ok());
    c.bench_function("of which: RSA-2048 PKCS #1 v1.5 verify (SHA-1)", |b| {
        b.iter(|| key.verify(black_box(signed.as_bytes()), &signature))
    });

    let w = fixture("meta-status-delivered.json");
    c.bench_function(
        "meta: X-Hub-Signature-256 (HMAC-SHA256) + parse status webhook",
        |b| {
            b.iter(|| {
                accepted(meta_whatsapp::receive(
                    META_APP_SECRET,
                    &w.headers,
                    black_box(&w.body),
                ))
            })
        },
    );

    let w = fixture("africastalking-delivery-success.json");
    assert!(africastalking::verify_basic_auth(&w.headers, "herald", AT_PASSWORD).is_ok());
    c.bench_function(
        "africastalking: Basic credentials + parse delivery report",
        |b| {
            b.iter(|| {
                africastalking::verify_basic_auth(&w.headers, "herald", AT_PASSWORD)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        africastalking::parse_callback(black_box(&w.body))
                            .map_err(|e| e.to_string())
                    })
            })
        },
    );

    let w = fixture("brevo-delivered.json");
    assert!(brevo::verify_basic_auth(&w.headers, "herald", BREVO_PASSWORD).is_ok());
    c.bench_function("brevo: Basic credentials + parse delivered event", |b| {
        b.iter(|| {
            brevo::verify_basic_auth(&w.headers, "herald", BREVO_PASSWORD)
                .map_err(|e| e.to_string())
                .and_then(|()| brevo::parse_webhook(black_box(&w.body)).map_err(|e| e.to_string()))
        })
    });
}

criterion_group!(benches, receipts);
criterion_main!(benches);
