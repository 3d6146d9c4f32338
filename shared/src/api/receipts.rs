//! The delivery-webhooks API providers call: `POST /webhooks/{provider}/{token}` (and Meta's
//! `GET` verification challenge). No JWT: the token in the path names one provider
//! configuration (opaque, random, not an id), and the request must then authenticate the way
//! that provider does, over the raw bytes, before anything in it is read:
//!
//! | Route | Authentication |
//! | --- | --- |
//! | `twilio` | `X-Twilio-Signature` with the configuration's auth token, over the public URL Twilio called |
//! | `ses` | SNS message signature (v1/v2, certificate from an SNS host, cached), from the configuration's `events_topic_arn`, at most an hour old |
//! | `meta` | `X-Hub-Signature-256` with the app secret; the `GET` challenge needs the verify token Herald generated |
//! | `africastalking`, `brevo` | HTTP Basic `herald:<secret>` (Brevo also `Bearer <secret>`) with the secret Herald generated and keeps only a digest of |
//!
//! Answers: 200 with counts once applied (unknown messages included, so providers stop
//! retrying); 404 for an unknown token or a token of another provider; 401 for a failed
//! authentication or a replay; 400 for an authentic request Herald cannot read; 503 when
//! something Herald depends on is down (the provider retries). Nothing is changed unless the
//! request authenticates.

use std::sync::Arc;

use lambda_http::{Body, Request};
use time::OffsetDateTime;

use super::routes::RouteId;
use crate::app::App;
use crate::credentials::OpenCredentials;
use crate::domain::TenantId;
use crate::domain::provider::{ProviderConfig, ProviderKind, ProviderSettings};
use crate::domain::receipt::{Notification, ReceiptError, WEBHOOK_USER};
use crate::http::{self, ApiError, ApiResult, Response};
use crate::providers::sns_signature::{CertificateSource, HttpCertificateSource, SnsVerifier};
use crate::providers::{africastalking, brevo, meta_whatsapp, ses, twilio};
use crate::receipts::{self, PendingConfirmation};

/// Largest webhook body read (Brevo and Meta batch; SNS messages are at most 256 KB).
const MAX_BODY_BYTES: usize = 512 * 1024;

/// What the function keeps between requests: the app, and SNS signing keys by certificate URL
/// (shared, so receivers over other stores can reuse a warm cache).
#[derive(Debug)]
pub struct Receiver<S = HttpCertificateSource> {
    pub app: App,
    pub sns: Arc<SnsVerifier<S>>,
}

impl Receiver {
    /// The AWS-backed receiver: certificates fetched over HTTPS from SNS hosts only.
    pub fn new(app: App) -> anyhow::Result<Self> {
        Ok(Self {
            app,
            sns: Arc::new(SnsVerifier::new(HttpCertificateSource::new()?)),
        })
    }
}

pub async fn handle<S: CertificateSource>(receiver: &Receiver<S>, request: Request) -> ApiResult {
    handle_at(receiver, request, OffsetDateTime::now_utc()).await
}

/// [`handle`] as if the request arrived at `now` (SNS signatures carry a time).
pub async fn handle_at<S: CertificateSource>(
    receiver: &Receiver<S>,
    request: Request,
    now: OffsetDateTime,
) -> ApiResult {
    let app = &receiver.app;
    let method = request.method().as_str().to_owned();
    // From the path itself rather than API Gateway's route key, so the same handler serves a
    // Lambda function URL (local runs) where every route is `$default`.
    let (segment, token) = receipt_route(request.uri().path())
        .ok_or_else(|| ApiError::NoRoute(format!("{method} {}", request.uri().path())))?;
    let (segment, token) = (segment.to_owned(), token.to_owned());
    let segment = segment.as_str();
    if !plausible_token(&token) {
        return Err(refused_route(segment));
    }
    let Some((tenant, config)) = app.providers.by_receipt_token(&token).await? else {
        return Err(refused_route(segment));
    };
    let kind = config.kind();
    if kind.receipt_path() != Some(segment) {
        return Err(refused_route(segment));
    }
    let body = body_bytes(&request)?;
    let key = format!("{method} /webhooks/{segment}/{{token}}");
    let outcome = match RouteId::from_key(&key) {
        Some(RouteId::MetaVerification) if kind == ProviderKind::MetaWhatsapp => {
            return meta_challenge(&request, &config);
        }
        Some(
            RouteId::TwilioReceipts
            | RouteId::SesReceipts
            | RouteId::MetaReceipts
            | RouteId::AfricasTalkingReceipts
            | RouteId::BrevoReceipts,
        ) => authenticate(receiver, &request, &tenant, &config, body, now).await,
        _ => return Err(ApiError::NoRoute(key)),
    };
    let (notifications, credentials) = match outcome {
        Ok(authenticated) => authenticated,
        Err(e) => return Ok(rejected(kind, &e)),
    };
    let request_id = http::request_id(&request);
    let source = receipts::Source {
        tenant: &tenant,
        provider: &config,
        credentials: credentials.as_ref(),
    };
    let (applied, confirmations) = receipts::apply(app, source, notifications, &request_id)
        .await
        .map_err(ApiError::Internal)?;
    for confirmation in &confirmations {
        confirm(&receiver.sns, confirmation).await?;
    }
    tracing::info!(
        provider = kind.as_str(),
        advanced = applied.advanced,
        unchanged = applied.unchanged,
        unknown = applied.unknown,
        opted_out = applied.opted_out,
        opted_in = applied.opted_in,
        suppressed = applied.suppressed,
        ignored = applied.ignored,
        confirmed = confirmations.len(),
        "receipts applied"
    );
    http::respond(200, &applied)
}

/// Authenticates the raw request the way `config`'s provider signs it, then parses it; with the
/// configuration's credentials when they were opened to check the signature (what receipts may
/// need again, e.g. to ask Twilio what it billed).
async fn authenticate<S: CertificateSource>(
    receiver: &Receiver<S>,
    request: &Request,
    tenant: &TenantId,
    config: &ProviderConfig,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(Vec<Notification>, Option<OpenCredentials>), ReceiptError> {
    let headers = request.headers();
    let secret = || {
        config
            .receipts
            .as_ref()
            .and_then(|r| r.secret())
            .ok_or_else(|| ReceiptError::unauthenticated("no webhook secret is configured"))
    };
    let credentials = || async {
        receiver
            .app
            .vault
            .open(tenant, &config.id, config.credentials.as_ref())
            .await
            .map_err(|_| ReceiptError::Unavailable("credentials cannot be opened".into()))
    };
    let unsigned = |parsed: Result<Vec<Notification>, ReceiptError>| parsed.map(|n| (n, None));
    match &config.settings {
        ProviderSettings::Twilio { .. } => {
            let open = credentials().await?;
            let url = http::public_url(request, receiver.app.public_url.as_deref());
            twilio::receive(open.field("auth_token"), &url, headers, body).map(|n| (n, Some(open)))
        }
        ProviderSettings::MetaWhatsapp { .. } => {
            let open = credentials().await?;
            meta_whatsapp::receive(open.field("app_secret"), headers, body).map(|n| (n, Some(open)))
        }
        ProviderSettings::AfricasTalking { .. } => {
            africastalking::verify_basic_auth(headers, WEBHOOK_USER, &secret()?)?;
            unsigned(africastalking::parse_callback(body))
        }
        ProviderSettings::Brevo { .. } => {
            let digest = secret()?;
            brevo::verify_basic_auth(headers, WEBHOOK_USER, &digest)
                .or_else(|_| brevo::verify_bearer_token(headers, &digest))?;
            unsigned(brevo::parse_webhook(body))
        }
        ProviderSettings::Ses {
            events_topic_arn, ..
        } => {
            let topic = events_topic_arn.as_deref().ok_or_else(|| {
                ReceiptError::unauthenticated("no events_topic_arn is configured")
            })?;
            unsigned(ses::receive(&receiver.sns, body, &[topic], now).await)
        }
        ProviderSettings::Smtp { .. } | ProviderSettings::Sns { .. } => Err(
            ReceiptError::unauthenticated("this provider posts no receipts"),
        ),
    }
}

/// Meta's `GET` when the webhook URL is saved: echo `hub.challenge` if the verify token is the
/// one Herald generated for this configuration.
fn meta_challenge(request: &Request, config: &ProviderConfig) -> ApiResult {
    let Some(digest) = config.receipts.as_ref().and_then(|r| r.secret()) else {
        return Ok(rejected(
            config.kind(),
            &ReceiptError::unauthenticated("no verify token is configured"),
        ));
    };
    match meta_whatsapp::verification_challenge(request.uri().query().unwrap_or(""), &digest) {
        Ok(challenge) => Ok(lambda_http::Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(Body::Text(challenge))
            .unwrap_or_default()),
        Err(e) => Ok(rejected(config.kind(), &e)),
    }
}

/// Confirms an SNS subscription by fetching its `SubscribeURL` (already checked to be an SNS
/// host); a failure is a 503 so SNS sends the confirmation again.
async fn confirm<S: CertificateSource>(
    sns: &SnsVerifier<S>,
    confirmation: &PendingConfirmation,
) -> Result<(), ApiError> {
    sns.source()
        .fetch(&confirmation.subscribe_url)
        .await
        .map(|_| tracing::info!(topic = %confirmation.topic_arn, "SNS subscription confirmed"))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("SNS subscription not confirmed: {e}")))
}

/// `(provider segment, token)` from a path ending in `/webhooks/<segment>/<token>`.
fn receipt_route(path: &str) -> Option<(&str, &str)> {
    let (_, rest) = path.rsplit_once("/webhooks/")?;
    let (segment, token) = rest.split_once('/')?;
    (!segment.is_empty() && !token.is_empty() && !token.contains('/')).then_some((segment, token))
}

/// Tokens are 32 URL-safe base64 characters; anything else is not looked up.
fn plausible_token(token: &str) -> bool {
    (16..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Unknown tokens are counted like failed authentications: someone is probing.
fn refused_route(segment: &str) -> ApiError {
    tracing::warn!(
        route = segment,
        receipts_rejected = 1,
        reason = "unknown_token",
        "receipt refused"
    );
    ApiError::NotFound("webhook")
}

fn body_bytes(request: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(bytes)
}

/// The answer to a request that did not authenticate or could not be read: counted, logged
/// without its content, nothing changed.
fn rejected(kind: ProviderKind, error: &ReceiptError) -> Response {
    tracing::warn!(
        provider = kind.as_str(),
        receipts_rejected = 1,
        reason = %error.code(),
        detail = %error,
        "receipt refused"
    );
    http::refusal(error.code(), error.to_string())
}
