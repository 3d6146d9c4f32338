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

// ---------------------------------------------------------------------------------------------
// The whole handler: route token lookup, credentials opened, authentication, parsing, the status
// transition and the status event, over in-memory stores (each iteration moves a fresh `sent`
// message to its receipt's status). In AWS the lookup, transition and event are DynamoDB and SQS
// requests (network, not measured here) and credentials are opened with KMS, cached per container.
// ---------------------------------------------------------------------------------------------

mod support;

mod handled {
    use super::support::NoProviders;
    use std::sync::Arc;

    use criterion::{BatchSize, Criterion};
    use herald_shared::App;
    use herald_shared::api::receipts::{Receiver, handle_at};
    use herald_shared::domain::audit::AuditEntry;
    use herald_shared::domain::message::{Message, MessageContent, MessageId, MessageStatus};
    use herald_shared::domain::provider::{
        CredentialInput, ProviderConfig, ProviderKind, ProviderSettings,
    };
    use herald_shared::domain::receipt::{Notification, ReceiptRoute, SecretDigest};
    use herald_shared::domain::recipient::Recipient;
    use herald_shared::domain::recipient::RecipientKeyring;
    use herald_shared::domain::validation::EmailAddress;
    use herald_shared::domain::{Category, Channel, EventId, ProviderId, TenantId};
    use herald_shared::providers::sns_signature::SnsVerifier;
    use herald_shared::store::memory::MemoryStore;
    use herald_shared::store::{MessageStore as _, ProviderStore as _};
    use secrecy::SecretString;
    use serde_json::Value;
    use time::OffsetDateTime;

    use super::{
        AT_PASSWORD, BREVO_PASSWORD, META_APP_SECRET, SES_TOPIC, TWILIO_AUTH_TOKEN, certificate,
        events_dir,
    };

    struct Case {
        name: &'static str,
        fixture: &'static str,
        settings: ProviderSettings,
        channel: Channel,
        credentials: &'static [(&'static str, &'static str)],
        secret: Option<&'static str>,
    }

    fn cases() -> Vec<Case> {
        let email = EmailAddress::parse("events@acme.example").unwrap_or_else(|e| panic!("{e}"));
        vec![
            Case {
                name: "handled: twilio status callback → delivered",
                fixture: "twilio-status-delivered.json",
                settings: ProviderSettings::Twilio {
                    account_sid: "AC5f1c2b7e9d0a4c3b8e6f7a1d2c3b4a59".into(),
                    from: "+260211555010".into(),
                },
                channel: Channel::Sms,
                credentials: &[("auth_token", TWILIO_AUTH_TOKEN)],
                secret: None,
            },
            Case {
                name: "handled: ses delivery through SNS (certificate cached) → delivered",
                fixture: "ses-delivery.json",
                settings: ProviderSettings::Ses {
                    from_address: email.clone(),
                    from_name: None,
                    configuration_set: None,
                    events_topic_arn: Some(SES_TOPIC.into()),
                },
                channel: Channel::Email,
                credentials: &[],
                secret: None,
            },
            Case {
                name: "handled: meta status webhook → delivered",
                fixture: "meta-status-delivered.json",
                settings: ProviderSettings::MetaWhatsapp {
                    phone_number_id: "106540352242922".into(),
                    business_account_id: None,
                },
                channel: Channel::Whatsapp,
                credentials: &[
                    ("access_token", "EAAG-bench"),
                    ("app_secret", META_APP_SECRET),
                ],
                secret: None,
            },
            Case {
                name: "handled: africastalking delivery report → delivered",
                fixture: "africastalking-delivery-success.json",
                settings: ProviderSettings::AfricasTalking {
                    username: "acme_gala".into(),
                    sender_id: None,
                },
                channel: Channel::Sms,
                credentials: &[("api_key", "atsk-bench")],
                secret: Some(AT_PASSWORD),
            },
            Case {
                name: "handled: brevo delivered event → delivered",
                fixture: "brevo-delivered.json",
                settings: ProviderSettings::Brevo {
                    from_address: email,
                    from_name: None,
                },
                channel: Channel::Email,
                credentials: &[("api_key", "xkeysib-bench")],
                secret: Some(BREVO_PASSWORD),
            },
        ]
    }

    fn event(name: &str) -> (String, Value) {
        let text = std::fs::read_to_string(format!("{}/{name}", events_dir())).unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or_default();
        (text, value)
    }

    /// A `sent` message the receipt names, in a store of its own.
    fn sent(tenant: &TenantId, channel: Channel, kind: ProviderKind, provider_id: &str) -> Message {
        let to = match channel {
            Channel::Email => "guest@example.com",
            _ => "+260971234567",
        };
        let recipient = Recipient::parse(channel, to).unwrap_or_else(|e| panic!("{e}"));
        let now = OffsetDateTime::now_utc();
        Message {
            id: MessageId::derive(tenant, "gala-2026", "bench", 0),
            tenant: tenant.clone(),
            event: EventId::parse("gala-2026").unwrap_or_else(|e| panic!("{e}")),
            snapshot_version: 1,
            category: Category::Invitation,
            channel,
            recipient_key: recipient.key(
                &RecipientKeyring::new(vec![1; 32]).unwrap_or_else(|e| panic!("{e}")),
                tenant.as_str(),
            ),
            recipient,
            content: MessageContent {
                subject: None,
                html: None,
                text: "You're invited".into(),
                segments: Some(1),
                whatsapp_template: None,
            },
            status: MessageStatus::Sent,
            status_reason: None,
            trigger: None,
            estimated_cost: None,
            cost: None,
            provider: None,
            provider_kind: Some(kind),
            provider_message_id: Some(provider_id.to_owned()),
            attempts: Vec::new(),
            created_at: now,
            sent_at: Some(now),
            request_id: "bench".into(),
            expires_at: None,
            not_before: None,
            erased_at: None,
            test: false,
            list_unsubscribe: None,
            status_at: None,
        }
    }

    pub fn bench(c: &mut Criterion) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let tenant = TenantId::parse("acme-events").unwrap_or_else(|e| panic!("{e}"));
        let sns = Arc::new(SnsVerifier::new(certificate()));
        for case in cases() {
            let (text, value) = event(case.fixture);
            let at = OffsetDateTime::from_unix_timestamp(
                value["requestContext"]["timeEpoch"]
                    .as_i64()
                    .unwrap_or_default()
                    / 1000,
            )
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let token = value["pathParameters"]["token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let providers = Arc::new(MemoryStore::default());
            let mut app = App::in_memory(Arc::new(NoProviders), Arc::new(NoProviders));
            app.providers = providers.clone();
            let id = ProviderId::generate();
            let credentials = CredentialInput(
                case.credentials
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), SecretString::from(*v)))
                    .collect(),
            );
            let config = rt.block_on(async {
                let sealed = app
                    .vault
                    .seal(&tenant, &id, &credentials)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let config = ProviderConfig {
                    id: id.clone(),
                    channel: case.channel,
                    name: case.name.into(),
                    settings: case.settings.clone(),
                    credentials: sealed,
                    priority: 1,
                    weight: 100,
                    active: true,
                    rate_limit_per_second: None,
                    receipts: Some(ReceiptRoute {
                        token: token.clone(),
                        secret_sha256: case.secret.map(|s| SecretDigest::of(s).to_hex()),
                    }),
                    revision: 1,
                    updated_at: OffsetDateTime::now_utc(),
                    updated_by: "bench".into(),
                };
                let audit = AuditEntry::by_system(
                    "bench",
                    &tenant,
                    "r",
                    "provider.created",
                    "t".into(),
                    None,
                    None,
                );
                providers
                    .put_tenant_provider(&tenant, &config, None, &audit)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                config
            });
            // The provider's id for the message, as the receipt names it.
            let receiver = |messages: Arc<MemoryStore>| {
                let mut app = app.clone();
                app.messages = messages;
                Receiver {
                    app,
                    sns: sns.clone(),
                }
            };
            let probe = receiver(Arc::new(MemoryStore::default()));
            let request = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            let provider_id = rt.block_on(async {
                // An unknown message: acknowledged; read the id from the parsed receipt instead.
                let response = handle_at(&probe, request, at)
                    .await
                    .unwrap_or_else(|e| e.into_response());
                assert_eq!(response.status().as_u16(), 200, "{}", case.name);
                let request =
                    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
                receipt_id(&request, &config)
            });
            let kind = config.kind();
            c.bench_function(case.name, |b| {
                b.to_async(&rt).iter_batched(
                    || {
                        let messages = Arc::new(MemoryStore::default());
                        let message = sent(&tenant, case.channel, kind, &provider_id);
                        futures::executor::block_on(messages.create(
                            &message,
                            &herald_shared::domain::audit::AuditEntry::message_accepted(
                                "test",
                                herald_shared::domain::identity::Role::System,
                                &message,
                                "req",
                            ),
                        ))
                        .unwrap_or_else(|e| panic!("{e}"));
                        let request =
                            lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
                        (receiver(messages), request)
                    },
                    |(receiver, request)| async move {
                        let response = handle_at(&receiver, request, at)
                            .await
                            .unwrap_or_else(|e| e.into_response());
                        assert_eq!(response.status().as_u16(), 200);
                        assert!(
                            response.body().as_ref().starts_with(br#"{"advanced":1"#),
                            "the message moved"
                        );
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }

    /// The provider message id a fixture's (first) receipt carries.
    fn receipt_id(request: &lambda_http::Request, config: &ProviderConfig) -> String {
        let body = request.body().as_ref();
        let notifications = match config.kind() {
            ProviderKind::Twilio => herald_shared::providers::twilio::parse_callback(body),
            ProviderKind::MetaWhatsapp => {
                herald_shared::providers::meta_whatsapp::parse_webhook(body)
            }
            ProviderKind::AfricasTalking => {
                herald_shared::providers::africastalking::parse_callback(body)
            }
            ProviderKind::Brevo => herald_shared::providers::brevo::parse_webhook(body),
            ProviderKind::Ses => {
                let envelope: Value = serde_json::from_slice(body).unwrap_or_default();
                herald_shared::providers::ses::parse_event(
                    envelope["Message"].as_str().unwrap_or_default(),
                )
            }
            _ => Ok(Vec::new()),
        }
        .unwrap_or_else(|e| panic!("{e}"));
        notifications
            .into_iter()
            .find_map(|n| match n {
                Notification::Receipt(r) => Some(r.provider_message_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{}: no receipt", config.name))
    }
}

criterion_group!(handler_benches, handled::bench);
criterion_main!(benches, handler_benches);
