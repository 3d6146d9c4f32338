//! Wizard completion: validate an event's whole resolved configuration, then freeze it as the
//! next immutable snapshot and activate it. Validation collects every problem rather than
//! stopping at the first, so the organiser sees the full list at once.

use futures::future::join_all;

use crate::credentials::CredentialVault;
use crate::domain::Channel;
use crate::domain::ErrorCode;
use crate::domain::provider::ProviderKind;
use crate::domain::resolution::{ResolvedConfiguration, ResolvedProvider};
use crate::domain::snapshot::{CheckOutcome, Problem, ProviderCheck};
use crate::domain::whatsapp::Registration;
use crate::domain::{ProviderId, TenantId};
use crate::providers::CredentialChecker;
use crate::rendering::Renderer;

/// Problems that need no network: selections, templates present and rendering, providers present.
pub fn check_configuration(cfg: &ResolvedConfiguration) -> Vec<Problem> {
    let mut problems = Vec::new();
    if cfg.settings.channels.is_empty() {
        problems.push(Problem::new(
            ErrorCode::NoChannels,
            "settings.channels",
            "select at least one channel",
        ));
    }
    if cfg.settings.categories.is_empty() {
        problems.push(Problem::new(
            ErrorCode::NoCategories,
            "settings.categories",
            "select at least one message category",
        ));
    }
    for pending in &cfg.pending_review {
        problems.push(Problem::new(
            ErrorCode::TemplatePendingApproval,
            format!(
                "templates.{}.{}.versions.{}",
                pending.category, pending.channel, pending.version
            ),
            format!(
                "version {} of the {} {} {} template waits for a second person's approval: approve or reject it first",
                pending.version,
                match pending.layer {
                    crate::domain::resolution::Layer::Global => "platform",
                    crate::domain::resolution::Layer::Tenant => "tenant",
                    crate::domain::resolution::Layer::Event => "event",
                },
                pending.category,
                pending.channel
            ),
        ));
    }
    let brand = cfg.brand_values();
    let marketing_email = cfg.settings.channels.contains(&Channel::Email)
        && cfg
            .settings
            .categories
            .iter()
            .any(|c| c.class() == crate::domain::CategoryClass::Marketing);
    if marketing_email {
        for field in crate::domain::brand::MARKETING_IDENTITY {
            if brand.get(field).is_none_or(|v| v.trim().is_empty()) {
                problems.push(Problem::new(
                    ErrorCode::ComplianceBlockMissing,
                    format!("brand.{field}"),
                    format!(
                        "marketing email carries the sender's legal name and postal address: set the brand's {field}"
                    ),
                ));
            }
        }
    }
    for &channel in &cfg.settings.channels {
        for &category in &cfg.settings.categories {
            let field = format!("templates.{category}.{channel}");
            let Some(template) = cfg.template(category, channel) else {
                problems.push(Problem::new(
                    ErrorCode::TemplateMissing,
                    field,
                    format!("no {channel} template for {category} at any layer"),
                ));
                continue;
            };
            if let Err(e) = Renderer.render(
                channel,
                &template.content,
                &template.content.samples(),
                &brand,
            ) {
                let code = match e {
                    crate::rendering::RenderError::TooLarge { .. } => ErrorCode::TemplateTooLarge,
                    _ => ErrorCode::TemplateInvalid,
                };
                problems.push(Problem::new(code, field, e.to_string()).at(e.position()));
            }
        }
        if channel.needs_provider()
            && cfg
                .channels
                .get(&channel)
                .is_none_or(|c| c.active().next().is_none())
        {
            problems.push(Problem::new(
                ErrorCode::ProviderMissing,
                format!("providers.{channel}"),
                format!("no active {channel} provider"),
            ));
        }
    }
    problems
}

/// Live-tests every active provider of every channel in use, concurrently. A channel fails when
/// none of its providers passes; a failing provider behind a passing one is only a warning.
pub async fn check_providers(
    cfg: &ResolvedConfiguration,
    vault: &dyn CredentialVault,
    checker: &dyn CredentialChecker,
) -> (Vec<ProviderCheck>, Vec<Problem>, Vec<Problem>) {
    let in_use: Vec<(Channel, &ResolvedProvider)> = cfg
        .settings
        .channels
        .iter()
        .filter_map(|ch| cfg.channels.get(ch).map(|c| (*ch, c)))
        .flat_map(|(ch, c)| c.active().map(move |p| (ch, p)))
        .collect();
    let checks = join_all(
        in_use
            .iter()
            .map(|(_, p)| check_provider(&cfg.tenant, p, vault, checker)),
    )
    .await;

    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    for &channel in &cfg.settings.channels {
        let results: Vec<(&ResolvedProvider, &ProviderCheck)> = in_use
            .iter()
            .zip(&checks)
            .filter(|((ch, _), _)| *ch == channel)
            .map(|((_, p), c)| (*p, c))
            .collect();
        let channel_works = results.iter().any(|(_, c)| c.outcome.passed());
        for (provider, check) in results.iter().filter(|(_, c)| !c.outcome.passed()) {
            let detail = match &check.outcome {
                CheckOutcome::Rejected { detail }
                | CheckOutcome::Unreachable { detail }
                | CheckOutcome::Passed { detail } => detail,
            };
            let code = if matches!(check.outcome, CheckOutcome::Rejected { .. }) {
                ErrorCode::ProviderCredentialsRejected
            } else {
                ErrorCode::ProviderUnreachable
            };
            let problem = Problem::new(
                code,
                format!("providers.{channel}.{}", provider.id),
                format!("{} ({}): {detail}", provider.name, provider.kind.as_str()),
            );
            if channel_works {
                warnings.push(problem)
            } else {
                problems.push(problem)
            }
        }
    }
    (checks, problems, warnings)
}

/// Asks each active WhatsApp provider of the event what it says of the templates the event's
/// WhatsApp slots are registered as, concurrently. A template the provider has not approved
/// (or does not hold, or could not be asked about) is a problem: outside the 24-hour window
/// nothing else can be sent. A slot with no template registered with a provider is a warning:
/// its messages go through that provider only inside the window.
pub async fn check_whatsapp_templates(
    cfg: &ResolvedConfiguration,
    vault: &dyn CredentialVault,
    checker: &dyn CredentialChecker,
) -> (Vec<Registration>, Vec<Problem>, Vec<Problem>) {
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    if !cfg.settings.channels.contains(&Channel::Whatsapp) {
        return (Vec::new(), problems, warnings);
    }
    let providers: Vec<&ResolvedProvider> = cfg
        .channels
        .get(&Channel::Whatsapp)
        .map(|c| c.active().collect())
        .unwrap_or_default();
    let slots: Vec<_> = cfg
        .templates
        .iter()
        .filter(|t| t.channel == Channel::Whatsapp && cfg.settings.categories.contains(&t.category))
        .collect();
    let mut asks = Vec::new();
    for slot in &slots {
        for provider in &providers {
            let registered = slot.content.whatsapp.as_ref();
            let identity = registered.and_then(|r| match provider.kind {
                ProviderKind::MetaWhatsapp => r
                    .meta
                    .as_ref()
                    .map(|m| (m.name.clone(), Some(m.language.clone()))),
                ProviderKind::Twilio => r.twilio.as_ref().map(|t| (t.content_sid.clone(), None)),
                _ => None,
            });
            match (registered, identity) {
                (Some(registered), Some((template, language))) => {
                    asks.push((slot, *provider, registered, template, language));
                }
                _ => warnings.push(Problem::new(
                    ErrorCode::WhatsappTemplateUnregistered,
                    format!("templates.{}.whatsapp", slot.category),
                    format!(
                        "no template is registered with {} ({}): its messages go through it only within 24 hours of the recipient's own message",
                        provider.name,
                        provider.kind.as_str()
                    ),
                )),
            }
        }
    }
    // Each provider's credentials opened once (a KMS call in AWS), whatever its number of slots.
    let opened = join_all(providers.iter().map(|provider| async move {
        (
            provider.id.clone(),
            vault
                .open(&cfg.tenant, &provider.id, provider.credentials.as_ref())
                .await
                .ok(),
        )
    }))
    .await;
    let credentials_of = |id: &ProviderId| {
        opened
            .iter()
            .find(|(opened, _)| opened == id)
            .and_then(|(_, credentials)| credentials.as_ref())
    };
    let states = join_all(asks.iter().map(|(_, provider, registered, _, _)| {
        let credentials = credentials_of(&provider.id);
        async move {
            match credentials {
                Some(credentials) => {
                    checker
                        .registration(&provider.settings, credentials, registered)
                        .await
                }
                None => Some(Err("the stored credentials could not be opened".to_owned())),
            }
        }
    }))
    .await;
    let mut registrations = Vec::new();
    for ((slot, provider, _, template, language), state) in asks.into_iter().zip(states) {
        let field = format!(
            "templates.{}.whatsapp.{}",
            slot.category,
            if provider.kind == ProviderKind::Twilio {
                "twilio"
            } else {
                "meta"
            }
        );
        let state = match state {
            None => continue,
            Some(Err(detail)) => {
                problems.push(Problem::new(
                    ErrorCode::WhatsappTemplateNotApproved,
                    field,
                    format!(
                        "{template} at {} could not be checked: {detail}",
                        provider.name
                    ),
                ));
                continue;
            }
            Some(Ok(state)) => state,
        };
        if !state.approved {
            let reason = state
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            problems.push(Problem::new(
                ErrorCode::WhatsappTemplateNotApproved,
                field,
                format!(
                    "{template}{} at {} is {}{reason}: WhatsApp sends only approved templates",
                    language
                        .as_deref()
                        .map(|l| format!(" [{l}]"))
                        .unwrap_or_default(),
                    provider.name,
                    state.status
                ),
            ));
        }
        registrations.push(Registration {
            category: slot.category,
            provider: provider.id.clone(),
            kind: provider.kind,
            template,
            language,
            state,
        });
    }
    (registrations, problems, warnings)
}

/// One provider's live test with its credentials opened just for it.
pub async fn check_provider(
    tenant: &TenantId,
    provider: &ResolvedProvider,
    vault: &dyn CredentialVault,
    checker: &dyn CredentialChecker,
) -> ProviderCheck {
    check_settings(
        tenant,
        &provider.id,
        &provider.settings,
        provider.credentials.as_ref(),
        vault,
        checker,
    )
    .await
}

pub async fn check_settings(
    tenant: &TenantId,
    id: &ProviderId,
    settings: &crate::domain::provider::ProviderSettings,
    sealed: Option<&crate::domain::provider::SealedCredentials>,
    vault: &dyn CredentialVault,
    checker: &dyn CredentialChecker,
) -> ProviderCheck {
    let outcome = match vault.open(tenant, id, sealed).await {
        Ok(credentials) => checker.check(settings, &credentials).await,
        Err(e) => {
            tracing::error!(provider = %id, error = %e, "credentials could not be opened");
            CheckOutcome::Unreachable {
                detail: "the stored credentials could not be opened".to_owned(),
            }
        }
    };
    ProviderCheck {
        provider: id.clone(),
        outcome,
        checked_at: time::OffsetDateTime::now_utc(),
    }
}
