//! What the benchmarks that drive whole handlers share: provider ports that are never reached.

use herald_shared::credentials::OpenCredentials;
use herald_shared::domain::provider::ProviderSettings;
use herald_shared::domain::snapshot::CheckOutcome;
use herald_shared::providers::{Accepted, ChannelSender, CredentialChecker, Outbound, SendError};

/// Stands in for every provider where a benchmark reaches none.
pub struct NoProviders;

#[async_trait::async_trait]
impl CredentialChecker for NoProviders {
    async fn check(&self, _: &ProviderSettings, _: &OpenCredentials) -> CheckOutcome {
        CheckOutcome::Unreachable {
            detail: "not used".into(),
        }
    }
}

#[async_trait::async_trait]
impl ChannelSender for NoProviders {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        _: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        Err(SendError::Provider {
            code: "not_used".into(),
            reason: "not used".into(),
        })
    }
}
