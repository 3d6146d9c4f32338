//! The messaging providers Herald talks to, one module each: a live check of a tenant's
//! credentials (the wizard's "test connection") and the send itself, with every refusal
//! classified so dispatch can choose between failover, retry and permanent failure. Base URLs come
//! from the environment so the same code talks to the real APIs in AWS and to local stand-ins in
//! tests.

pub mod africastalking;
pub mod brevo;
pub mod meta_whatsapp;
pub mod ses;
pub mod smtp;
pub mod sns;
pub mod sns_signature;
pub mod twilio;

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::credentials::OpenCredentials;
use crate::domain::provider::ProviderSettings;
use crate::domain::snapshot::CheckOutcome;

/// How long a live check may take before the provider counts as unreachable.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(8);

/// The most one send may take, whatever the client's own timeouts: the HTTP client gives up
/// after [`CHECK_TIMEOUT`], the SDK clients and SMTP are cut off here.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Base URLs of the HTTP providers.
#[derive(Debug, Clone)]
pub struct ProviderEndpoints {
    pub twilio: String,
    pub africastalking: String,
    pub brevo: String,
    /// Includes the Graph API version, e.g. `https://graph.facebook.com/v21.0`.
    pub meta_graph: String,
    /// Twilio's Content API (templates and their WhatsApp approval), `https://content.twilio.com`.
    pub twilio_content: String,
}

impl ProviderEndpoints {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    pub fn from_vars(vars: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| {
            vars(name)
                .with_context(|| format!("environment variable {name} is not set"))
                .map(|v| v.trim_end_matches('/').to_owned())
        };
        Ok(Self {
            twilio: var("TWILIO_API_BASE_URL")?,
            africastalking: var("AFRICASTALKING_API_BASE_URL")?,
            brevo: var("BREVO_API_BASE_URL")?,
            meta_graph: var("META_GRAPH_API_BASE_URL")?,
            twilio_content: var("TWILIO_CONTENT_API_BASE_URL")?,
        })
    }
}

/// Port: a live test of a provider configuration's credentials, and what it says of the
/// WhatsApp templates registered with it.
#[async_trait]
pub trait CredentialChecker: Send + Sync {
    async fn check(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
    ) -> CheckOutcome;

    /// The state of `registered`'s form for this provider (`None`: it has none, or the
    /// provider keeps no templates). `Err`: why it could not be read.
    async fn registration(
        &self,
        _settings: &ProviderSettings,
        _credentials: &OpenCredentials,
        _registered: &crate::domain::whatsapp::WhatsappTemplates,
    ) -> Option<Result<crate::domain::whatsapp::RegistrationState, String>> {
        None
    }
}

/// The real providers.
#[derive(Debug, Clone)]
pub struct ProviderClients {
    pub http: reqwest::Client,
    pub endpoints: ProviderEndpoints,
    pub ses: aws_sdk_sesv2::Client,
    pub sns: aws_sdk_sns::Client,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

#[async_trait]
impl CredentialChecker for ProviderClients {
    async fn check(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
    ) -> CheckOutcome {
        let e = &self.endpoints;
        match settings {
            ProviderSettings::Twilio { account_sid, .. } => {
                twilio::check_credentials(
                    &self.http,
                    &e.twilio,
                    account_sid,
                    credentials.field("auth_token"),
                )
                .await
            }
            ProviderSettings::AfricasTalking { username, .. } => {
                africastalking::check_credentials(
                    &self.http,
                    &e.africastalking,
                    username,
                    credentials.field("api_key"),
                )
                .await
            }
            ProviderSettings::Brevo { .. } => {
                brevo::check_credentials(&self.http, &e.brevo, credentials.field("api_key")).await
            }
            ProviderSettings::MetaWhatsapp {
                phone_number_id, ..
            } => {
                meta_whatsapp::check_credentials(
                    &self.http,
                    &e.meta_graph,
                    phone_number_id,
                    credentials.field("access_token"),
                )
                .await
            }
            ProviderSettings::Ses { from_address, .. } => {
                ses::check_sender(&self.ses, from_address).await
            }
            ProviderSettings::Sns { .. } => sns::check_access(&self.sns).await,
            ProviderSettings::Smtp {
                host,
                port,
                security,
                username,
                ..
            } => {
                smtp::check_credentials(
                    host,
                    *port,
                    *security,
                    username,
                    credentials.field("password"),
                )
                .await
            }
        }
    }

    async fn registration(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
        registered: &crate::domain::whatsapp::WhatsappTemplates,
    ) -> Option<Result<crate::domain::whatsapp::RegistrationState, String>> {
        match (settings, registered) {
            (
                ProviderSettings::MetaWhatsapp {
                    business_account_id,
                    ..
                },
                crate::domain::whatsapp::WhatsappTemplates {
                    meta: Some(template),
                    ..
                },
            ) => Some(match business_account_id {
                Some(waba) => {
                    meta_whatsapp::template_registration(
                        &self.http,
                        &self.endpoints.meta_graph,
                        waba,
                        credentials.field("access_token"),
                        &template.name,
                        &template.language,
                    )
                    .await
                }
                None => Err(
                    "the provider has no business_account_id, where its templates are registered"
                        .to_owned(),
                ),
            }),
            (
                ProviderSettings::Twilio { account_sid, .. },
                crate::domain::whatsapp::WhatsappTemplates {
                    twilio: Some(content),
                    ..
                },
            ) => Some(
                twilio::content_registration(
                    &self.http,
                    &self.endpoints.twilio_content,
                    account_sid,
                    credentials.field("auth_token"),
                    &content.content_sid,
                )
                .await,
            ),
            _ => None,
        }
    }
}

/// Classifies an HTTP provider's answer to a credential check.
pub(crate) async fn classify(
    result: reqwest::Result<reqwest::Response>,
    provider: &str,
) -> CheckOutcome {
    match result {
        Ok(r) if r.status().is_success() => CheckOutcome::Passed {
            detail: format!("{provider} accepted the credentials"),
        },
        Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
            CheckOutcome::Unreachable {
                detail: format!(
                    "{provider} answered {}; try again later",
                    r.status().as_u16()
                ),
            }
        }
        Ok(r) => CheckOutcome::Rejected {
            detail: format!(
                "{provider} refused the credentials ({})",
                r.status().as_u16()
            ),
        },
        Err(e) if e.is_timeout() => CheckOutcome::Unreachable {
            detail: format!("{provider} did not answer in time"),
        },
        Err(_) => CheckOutcome::Unreachable {
            detail: format!("{provider} could not be reached"),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

/// One message ready for a provider: rendered, addressed, with Herald's id for correlation.
#[derive(Clone, Copy)]
pub struct Outbound<'a> {
    /// Herald's message id (`msg_...`), sent as a reference, tag or custom argument where the
    /// provider takes one.
    pub message_id: &'a str,
    /// E.164 phone number (SMS, WhatsApp) or email address.
    pub to: &'a str,
    /// Email only.
    pub subject: Option<&'a str>,
    /// Email only.
    pub html: Option<&'a str>,
    /// SMS/WhatsApp body, or the email's plain-text alternative.
    pub text: &'a str,
    /// Display name for email senders (the brand); falls back to the provider's `from_name`.
    pub from_name: Option<&'a str>,
    /// Webhook URL for delivery receipts, where the provider takes one per message (Twilio
    /// `StatusCallback`).
    pub status_callback: Option<&'a str>,
    /// Marketing email only: the unsubscribe links, sent as `List-Unsubscribe` and
    /// `List-Unsubscribe-Post` (RFC 8058) by every email provider.
    pub list_unsubscribe: Option<&'a crate::domain::message::ListUnsubscribe>,
    /// WhatsApp outside the customer-service window: send this registered template (this
    /// provider's form of it) instead of `text`.
    pub whatsapp_template: Option<&'a crate::domain::whatsapp::TemplateCall>,
}

/// Recipients and bodies never reach a log line, not even through `{:?}`.
impl fmt::Debug for Outbound<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound")
            .field("message_id", &self.message_id)
            .field("to", &"[redacted]")
            .field("subject", &self.subject.map(|_| "[redacted]"))
            .field("html_len", &self.html.map(str::len))
            .field("text_len", &self.text.len())
            .field("from_name", &self.from_name)
            .field("status_callback", &self.status_callback.is_some())
            .field("whatsapp_template", &self.whatsapp_template.is_some())
            .finish()
    }
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id for the message, which its receipts refer to.
    pub provider_message_id: String,
    /// What the provider charged, when it says so at send time (Africa's Talking `cost`, Twilio
    /// `price` once set).
    pub cost: Option<ProviderCost>,
    /// SMS parts billed, when the provider reports them (Twilio `num_segments`).
    pub segments: Option<u32>,
}

/// An amount of money in millionths of the currency unit: `KES 0.8000` is 800 000 micros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCost {
    pub amount_micros: i64,
    /// ISO 4217 code, e.g. `KES`, `USD`.
    pub currency: String,
}

impl ProviderCost {
    /// Parses `"KES 0.8000"` (currency, space, decimal amount), exactly.
    pub fn parse(s: &str) -> Option<Self> {
        let (currency, amount) = s.trim().split_once(' ')?;
        Self::from_parts(amount.trim(), currency)
    }

    /// A decimal amount string and its currency, e.g. Twilio's `price` and `price_unit`.
    /// Providers report charges as negative amounts (Twilio `-0.00750`); the cost is the
    /// magnitude.
    pub fn from_parts(amount: &str, currency: &str) -> Option<Self> {
        let currency = currency.trim();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        Some(Self {
            amount_micros: parse_micros(amount)?.checked_abs()?,
            currency: currency.to_ascii_uppercase(),
        })
    }
}

/// `"-0.00750"` → `-7500`: an optional sign, digits, and up to six decimals (more only if they
/// are zeros). No floating point anywhere.
pub(crate) fn parse_micros(s: &str) -> Option<i64> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    if fraction.len() > 6 && fraction[6..].bytes().any(|b| b != b'0') {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut micros = 0i64;
    for (i, b) in fraction.bytes().take(6).enumerate() {
        micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
    }
    let value = whole.checked_mul(1_000_000)?.checked_add(micros)?;
    Some(if negative { -value } else { value })
}

/// Why a provider did not take a message, in the terms dispatch acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Provider outage, timeout, 5xx, throttling (429, provider rate-limit codes), network error:
    /// try the next provider, or retry later. `retry_after` from Retry-After / provider hints.
    #[error("temporary failure: {reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The provider refused *this recipient or message* for good (invalid number,
    /// unreachable/blacklisted number, rejected address, content refused): no failover, no retry.
    #[error("refused for good ({code}): {reason}")]
    Permanent { code: String, reason: String },
    /// The provider refused *us* (bad/expired credentials, unverified sender, suspended account,
    /// insufficient balance): this provider is unusable now; fail over to the next one, do not
    /// blame the recipient.
    #[error("provider unusable ({code}): {reason}")]
    Provider { code: String, reason: String },
}

impl SendError {
    /// `retryable`, `permanent` or `provider`: for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::Retryable { .. } => "retryable",
            SendError::Permanent { .. } => "permanent",
            SendError::Provider { .. } => "provider",
        }
    }

    /// The provider's (or Herald's) code for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            SendError::Retryable { .. } => None,
            SendError::Permanent { code, .. } | SendError::Provider { code, .. } => Some(code),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Adds the provider's `Retry-After` hint to a retryable error that has none.
    pub(crate) fn hinted(self, hint: Option<Duration>) -> Self {
        match self {
            SendError::Retryable {
                reason,
                retry_after: None,
            } => SendError::Retryable {
                reason,
                retry_after: hint,
            },
            other => other,
        }
    }

    pub(crate) fn retryable(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        SendError::Retryable {
            reason: reason.into(),
            retry_after,
        }
    }

    pub(crate) fn permanent(code: impl Into<String>, reason: impl Into<String>) -> Self {
        SendError::Permanent {
            code: code.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn provider(code: impl Into<String>, reason: impl Into<String>) -> Self {
        SendError::Provider {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// Port: hand one message to one provider configuration.
#[async_trait]
pub trait ChannelSender: Send + Sync {
    async fn send(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError>;

    /// What the provider billed for a message it took, for providers that report the price
    /// only after sending (Twilio's Message resource, asked once the message has ended);
    /// `None` when it does not say (yet), cannot be asked, or does not answer.
    async fn billed(
        &self,
        _settings: &ProviderSettings,
        _credentials: &OpenCredentials,
        _provider_message_id: &str,
    ) -> Option<ProviderCost> {
        None
    }
}

#[async_trait]
impl ChannelSender for ProviderClients {
    async fn send(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        let provider = settings.kind().as_str();
        let outcome =
            match tokio::time::timeout(SEND_TIMEOUT, self.send_now(settings, credentials, message))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(SendError::retryable(
                    format!(
                        "{provider} did not answer within {}s",
                        SEND_TIMEOUT.as_secs()
                    ),
                    None,
                )),
            };
        // Ids and codes only: never the recipient, the body or a credential.
        match &outcome {
            Ok(accepted) => tracing::info!(
                message_id = message.message_id,
                provider,
                provider_message_id = %accepted.provider_message_id,
                "provider accepted the message"
            ),
            Err(e) => tracing::warn!(
                message_id = message.message_id,
                provider,
                outcome = e.kind(),
                code = e.code().unwrap_or_default(),
                "provider did not accept the message"
            ),
        }
        outcome
    }

    async fn billed(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
        provider_message_id: &str,
    ) -> Option<ProviderCost> {
        let ProviderSettings::Twilio { account_sid, .. } = settings else {
            return None;
        };
        let token = secret(credentials, "auth_token").ok()?;
        let fetch = twilio::billed(
            &self.http,
            &self.endpoints.twilio,
            account_sid,
            token,
            provider_message_id,
        );
        tokio::time::timeout(BILLED_TIMEOUT, fetch)
            .await
            .ok()
            .flatten()
    }
}

/// How long a receipt waits for a provider to say what it billed before going on without.
const BILLED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl ProviderClients {
    async fn send_now(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        let e = &self.endpoints;
        match settings {
            ProviderSettings::Twilio { account_sid, from } => {
                let token = secret(credentials, "auth_token")?;
                twilio::send(&self.http, &e.twilio, account_sid, from, token, message).await
            }
            ProviderSettings::AfricasTalking {
                username,
                sender_id,
            } => {
                let key = secret(credentials, "api_key")?;
                let account = africastalking::Account {
                    username,
                    sender_id: sender_id.as_deref(),
                    api_key: key,
                };
                africastalking::send(&self.http, &e.africastalking, &account, message).await
            }
            ProviderSettings::Brevo {
                from_address,
                from_name,
            } => {
                let key = secret(credentials, "api_key")?;
                let from_name = message.from_name.or(from_name.as_deref());
                brevo::send(&self.http, &e.brevo, key, from_address, from_name, message).await
            }
            ProviderSettings::MetaWhatsapp {
                phone_number_id, ..
            } => {
                let token = secret(credentials, "access_token")?;
                meta_whatsapp::send(&self.http, &e.meta_graph, phone_number_id, token, message)
                    .await
            }
            ProviderSettings::Ses {
                from_address,
                from_name,
                configuration_set,
                ..
            } => {
                let sender = ses::Sender {
                    from_address,
                    from_name: message.from_name.or(from_name.as_deref()),
                    configuration_set: configuration_set.as_deref(),
                };
                ses::send(&self.ses, &sender, message).await
            }
            ProviderSettings::Sns {
                sender_id,
                sms_type,
            } => sns::send(&self.sns, sender_id.as_deref(), *sms_type, message).await,
            ProviderSettings::Smtp {
                host,
                port,
                security,
                username,
                from_address,
                from_name,
            } => {
                let server = smtp::Server {
                    host,
                    port: *port,
                    security: *security,
                    username,
                    password: secret(credentials, "password")?,
                };
                let from_name = message.from_name.or(from_name.as_deref());
                smtp::send(&server, from_address, from_name, message).await
            }
        }
    }
}

/// A credential the configuration must carry; without it the provider cannot be used at all.
fn secret<'c>(credentials: &'c OpenCredentials, name: &str) -> Result<&'c str, SendError> {
    match credentials.get(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(SendError::provider(
            "missing_credentials",
            format!("the provider configuration has no {name}"),
        )),
    }
}

/// Checks that `to` looks like an E.164 number (`+`, then 7 to 15 digits, the first not zero)
/// and returns it. Whether the number exists is the provider's call.
pub(crate) fn e164(to: &str) -> Result<&str, SendError> {
    let valid = to.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    });
    if valid {
        Ok(to)
    } else {
        Err(SendError::permanent(
            "invalid_recipient",
            "the recipient is not an E.164 phone number",
        ))
    }
}

/// Parses an email recipient (RFC 5321 shape; deliverability is the provider's call).
pub(crate) fn email_recipient(to: &str) -> Result<lettre::Address, SendError> {
    to.trim().parse().map_err(|_| {
        SendError::permanent(
            "invalid_recipient",
            "the recipient is not a valid email address",
        )
    })
}

/// Every channel needs a body; an empty one is refused before any provider sees it.
pub(crate) fn require_text(message: &Outbound<'_>) -> Result<(), SendError> {
    if message.text.trim().is_empty() {
        return Err(SendError::permanent(
            "empty_message",
            "the message has no text",
        ));
    }
    Ok(())
}

/// Email needs a subject.
pub(crate) fn require_subject<'a>(message: &Outbound<'a>) -> Result<&'a str, SendError> {
    match message.subject {
        Some(subject) if !subject.trim().is_empty() => Ok(subject),
        _ => Err(SendError::permanent(
            "missing_subject",
            "an email needs a subject",
        )),
    }
}

/// Longest wait a provider's hint may impose; anything longer is the provider misbehaving.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = at - time::OffsetDateTime::now_utc();
    Some(
        Duration::try_from(wait)
            .unwrap_or_default()
            .min(MAX_RETRY_AFTER),
    )
}

/// A header holding a number of seconds (Brevo's `x-sib-ratelimit-reset`).
pub(crate) fn seconds_header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<Duration> {
    let seconds: u64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The request never got an answer. A timeout is ambiguous (the provider may have taken the
/// message); dispatch's idempotency covers the retry.
pub(crate) fn unreachable(provider: &str, e: &reqwest::Error) -> SendError {
    if e.is_timeout() {
        SendError::retryable(format!("{provider} did not answer in time"), None)
    } else {
        SendError::retryable(format!("{provider} could not be reached"), None)
    }
}

/// A provider's answer to a send, read whole: status, headers (for `Retry-After` and rate-limit
/// hints) and body.
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

/// Sends `request` and reads the answer; no answer at all is [`unreachable`].
pub(crate) async fn exchange(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<Answer, SendError> {
    let response = request
        .send()
        .await
        .map_err(|e| unreachable(provider, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(provider, &e))?
        .to_vec();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The fields of a form-encoded callback; a repeated field keeps its first value, and empty
/// values count as absent.
pub(crate) struct FormFields(std::collections::HashMap<String, String>);

impl FormFields {
    pub fn parse(body: &[u8]) -> Self {
        let mut fields = std::collections::HashMap::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            fields
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Self(fields)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value even when empty (an empty text message is still a message).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// What an HTTP status alone says, for answers without a recognised provider code.
pub(crate) fn by_status(
    provider: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> SendError {
    let code = status.as_u16();
    if code == 429 || status.is_server_error() {
        SendError::retryable(
            format!("{provider} answered {code}; try again later"),
            retry_after(headers),
        )
    } else if code == 401 || code == 403 {
        SendError::provider(
            format!("http_{code}"),
            format!("{provider} refused the credentials ({code})"),
        )
    } else {
        // An unexplained refusal says nothing about the recipient: try another provider.
        SendError::provider(
            format!("http_{code}"),
            format!("{provider} refused the request ({code})"),
        )
    }
}

/// A success status whose body is not what the provider documents: the message may or may not
/// have been taken, and nothing identifies it.
pub(crate) fn unexpected_answer(provider: &str) -> SendError {
    SendError::provider(
        "unexpected_response",
        format!("{provider} answered with a body Herald does not understand"),
    )
}

/// AWS error codes that mean "slow down" or "try again" on any service.
const AWS_RETRYABLE: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "Throttled",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServiceErrorException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// AWS error codes that mean "not with these credentials / this account".
const AWS_PROVIDER: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
    "NotAuthorized",
    "OptInRequired",
];

/// Classifies an AWS SDK failure. `specific` sees the service's code and message first.
pub(crate) fn aws_error<E>(
    provider: &str,
    err: &SdkError<E, HttpResponse>,
    specific: impl Fn(&str, &str) -> Option<SendError>,
) -> SendError
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => {
            let meta = service.err();
            let status = service.raw().status().as_u16();
            let code = meta.code().unwrap_or_default();
            let message = meta.message().unwrap_or_default();
            if let Some(classified) = specific(code, message) {
                return classified;
            }
            if AWS_RETRYABLE.contains(&code) || status == 429 || status >= 500 {
                return SendError::retryable(
                    format!("{provider} answered {status} {code}; try again later"),
                    None,
                );
            }
            let code = if code.is_empty() {
                format!("http_{status}")
            } else {
                code.to_owned()
            };
            if AWS_PROVIDER.contains(&code.as_str()) || status == 401 || status == 403 {
                return SendError::provider(code, format!("{provider} refused Herald's role"));
            }
            SendError::provider(code, format!("{provider} refused the request ({status})"))
        }
        SdkError::TimeoutError(_) => {
            SendError::retryable(format!("{provider} did not answer in time"), None)
        }
        SdkError::ConstructionFailure(_) => SendError::provider(
            "request_not_built",
            format!("the {provider} request could not be built"),
        ),
        // Dispatch failures, unreadable responses and anything newer: the network's fault.
        _ => SendError::retryable(format!("{provider} could not be reached"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_parsed_exactly() {
        assert_eq!(
            ProviderCost::parse("KES 0.8000"),
            Some(ProviderCost {
                amount_micros: 800_000,
                currency: "KES".into()
            })
        );
        assert_eq!(
            ProviderCost::from_parts("-0.00750", "usd").map(|c| (c.amount_micros, c.currency)),
            Some((7_500, "USD".into()))
        );
        assert_eq!(parse_micros("12"), Some(12_000_000));
        assert_eq!(parse_micros(".5"), Some(500_000));
        assert_eq!(parse_micros("0.1234560"), Some(123_456));
        assert_eq!(
            parse_micros("0.1234567"),
            None,
            "not representable in micros"
        );
        assert_eq!(parse_micros("1e3"), None);
        assert_eq!(parse_micros(""), None);
        assert_eq!(parse_micros("99999999999999999999"), None);
        assert_eq!(
            ProviderCost::parse("0"),
            None,
            "a refused recipient costs \"0\""
        );
        assert_eq!(ProviderCost::parse("KES abc"), None);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let headers = |value: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
                h.insert(reqwest::header::RETRY_AFTER, v);
            }
            h
        };
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&headers("99999999")), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn recipients_are_checked_lightly() {
        assert!(e164("+260971234567").is_ok());
        assert!(e164("+6834002").is_ok());
        for bad in [
            "260971234567",
            "+0971234567",
            "+2609712345678901",
            "+26097 1234567",
            "",
        ] {
            assert_eq!(
                e164(bad).err().map(|e| e.kind()),
                Some("permanent"),
                "{bad}"
            );
        }
        assert!(email_recipient("guest@example.com").is_ok());
        assert!(email_recipient("not an address").is_err());
    }

    #[test]
    fn outbound_debug_hides_the_recipient_and_body() {
        let message = Outbound {
            message_id: "msg_1",
            to: "+260971234567",
            subject: Some("Secret subject"),
            html: None,
            text: "secret body",
            from_name: None,
            status_callback: None,
            list_unsubscribe: None,
            whatsapp_template: None,
        };
        let shown = format!("{message:?}");
        assert!(shown.contains("msg_1"));
        for hidden in ["+260971234567", "Secret subject", "secret body"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
    }
}
