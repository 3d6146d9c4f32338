//! The messaging providers Herald talks to, one module each. Today each module knows how to
//! check a tenant's credentials live (the wizard's "test connection"); sending and receipt
//! parsing join them as dispatch and webhooks grow. Base URLs come from the environment so the
//! same code talks to the real APIs in AWS and to local stand-ins in tests.

pub mod africastalking;
pub mod brevo;
pub mod meta_whatsapp;
pub mod ses;
pub mod smtp;
pub mod sns;
pub mod twilio;

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;

use crate::credentials::OpenCredentials;
use crate::domain::provider::ProviderSettings;
use crate::domain::snapshot::CheckOutcome;

/// How long a live check may take before the provider counts as unreachable.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(8);

/// Base URLs of the HTTP providers.
#[derive(Debug, Clone)]
pub struct ProviderEndpoints {
    pub twilio: String,
    pub africastalking: String,
    pub brevo: String,
    /// Includes the Graph API version, e.g. `https://graph.facebook.com/v21.0`.
    pub meta_graph: String,
}

impl ProviderEndpoints {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .with_context(|| format!("environment variable {name} is not set"))
                .map(|v| v.trim_end_matches('/').to_owned())
        };
        Ok(Self {
            twilio: var("TWILIO_API_BASE_URL")?,
            africastalking: var("AFRICASTALKING_API_BASE_URL")?,
            brevo: var("BREVO_API_BASE_URL")?,
            meta_graph: var("META_GRAPH_API_BASE_URL")?,
        })
    }
}

/// Port: a live test of a provider configuration's credentials.
#[async_trait]
pub trait CredentialChecker: Send + Sync {
    async fn check(
        &self,
        settings: &ProviderSettings,
        credentials: &OpenCredentials,
    ) -> CheckOutcome;
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
