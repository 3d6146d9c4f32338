//! Recipients' consent ledger and preferences, served by the configuration API to tenant systems
//! and back offices: record a consent decision, look a recipient up, replace their preferences,
//! make a signed preference-centre link. The recipient is named by `{channel, address}` in the
//! JSON body, never in a URL; Herald keeps and answers only the recipient key (a digest of tenant
//! and address). Tenant admins and event managers alike: whoever may send to a person may record
//! what that person said. Data-subject export and erasure ([`crate::data_subject`]) are for
//! tenant admins only.

use std::collections::BTreeSet;

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::routes::RouteId;
use crate::app::App;
use crate::data_subject;
use crate::domain::ErrorCode;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::consent::{
    ConsentRecord, ConsentScope, ConsentSource, ConsentStatus, LegalBasis, parse_evidence,
};
use crate::domain::identity::{Action, Caller};
use crate::domain::preference_link::PreferenceLink;
use crate::domain::preferences::{Preferences, QuietHours, RecipientPreferences};
use crate::domain::recipient::Recipient;
use crate::domain::validation::FieldError;
use crate::domain::{Category, Channel, TenantId};
use crate::http::{self, ApiError, ApiResult};
use crate::store::{LedgerChange, RecipientLedger};

/// How long a preference link works unless the request says otherwise, and at most.
const DEFAULT_LINK_DAYS: u32 = 30;
const MAX_LINK_DAYS: u32 = 90;

/// Whether the configuration API hands `route` to this module.
pub fn serves(route: RouteId) -> bool {
    matches!(
        route,
        RouteId::RecordRecipientConsent
            | RouteId::LookupRecipient
            | RouteId::PutRecipientPreferences
            | RouteId::CreatePreferenceLink
            | RouteId::ExportRecipient
            | RouteId::EraseRecipient
    )
}

struct Ctx<'a> {
    app: &'a App,
    request: &'a Request,
    caller: &'a Caller,
    request_id: String,
}

impl Ctx<'_> {
    /// The tenant of a tenant admin: data-subject requests are the organisation's decision.
    fn admin_tenant(&self) -> Result<TenantId, ApiError> {
        Ok(self.caller.tenant_for(Action::WriteTenant)?.clone())
    }

    fn sources(&self) -> data_subject::Sources<'_> {
        data_subject::Sources {
            messages: self.app.messages.as_ref(),
            consents: self.app.consents.as_ref(),
        }
    }

    fn tenant(&self, write: bool) -> Result<TenantId, ApiError> {
        let action = if write {
            Action::WriteEvent
        } else {
            Action::ReadEvent
        };
        Ok(self.caller.tenant_for(action)?.clone())
    }
}

pub async fn handle(app: &App, request: &Request, caller: &Caller) -> ApiResult {
    let route = http::route(request);
    let ctx = Ctx {
        app,
        request,
        caller,
        request_id: http::request_id(request),
    };
    let Some(id) = RouteId::from_key(&route.0) else {
        return Err(ApiError::NoRoute(route.0));
    };
    match id {
        RouteId::RecordRecipientConsent => record_consent(&ctx).await,
        RouteId::LookupRecipient => lookup(&ctx).await,
        RouteId::PutRecipientPreferences => put_preferences(&ctx).await,
        RouteId::CreatePreferenceLink => preference_link(&ctx).await,
        RouteId::ExportRecipient => export(&ctx).await,
        RouteId::EraseRecipient => erase(&ctx).await,
        _ => Err(ApiError::NoRoute(route.0)),
    }
}

/// The recipient a request names, parsed as its channel requires.
fn recipient(channel: Channel, address: &str) -> Result<Recipient, FieldError> {
    Recipient::parse(channel, address).map_err(|m| FieldError::invalid("address", m))
}

/// `preference_centre` marks what recipients did through their signed link: tenants cannot
/// record decisions in their name.
fn tenant_source(source: &ConsentSource) -> Result<(), FieldError> {
    if source.as_str() == ConsentSource::PREFERENCE_CENTRE {
        return Err(FieldError::new(
            ErrorCode::Reserved,
            "source",
            "preference_centre is recorded only by the recipient's own preference centre",
        ));
    }
    Ok(())
}

/// The audit target of everything about one recipient: the key, never the address.
pub fn audit_target(recipient_key: &str) -> String {
    format!("recipient/{recipient_key}")
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsentInput {
    channel: Channel,
    address: String,
    /// A category, or a class of them (`marketing`, `transactional`).
    category: ConsentScope,
    status: ConsentStatus,
    legal_basis: LegalBasis,
    source: ConsentSource,
    #[serde(default)]
    evidence: Option<String>,
}

/// Records one decision (appended to the history, in force from now). Every call is recorded,
/// a repeated grant too: re-confirming consent is evidence. With an `Idempotency-Key`, a retried
/// request records nothing twice.
async fn record_consent(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(true)?;
    let scope = format!("recipient-consent#T#{tenant}");
    super::idempotency::once(ctx.app, ctx.request, &scope, false, || async {
        let input: ConsentInput = http::json_body(ctx.request)?;
        tenant_source(&input.source)?;
        let recipient = recipient(input.channel, &input.address)?;
        let evidence = parse_evidence("evidence", input.evidence.as_deref(), &recipient)?;
        let key = ctx
            .app
            .recipient_key(&tenant, &recipient)
            .await
            .map_err(ApiError::Internal)?;
        let record = ConsentRecord {
            id: ConsentRecord::new_id(),
            channel: input.channel,
            scope: input.category,
            status: input.status,
            legal_basis: input.legal_basis,
            source: input.source,
            evidence,
            at: OffsetDateTime::now_utc(),
            recorded_by: ctx.caller.subject.clone(),
            request_id: ctx.request_id.clone(),
        };
        let action = match record.status {
            ConsentStatus::Granted => "recipient.consent_granted",
            ConsentStatus::Withdrawn => "recipient.consent_withdrawn",
        };
        let audit = AuditEntry::new(
            ctx.caller,
            &ctx.request_id,
            action,
            audit_target(&key),
            None,
            Some(digest(&record)),
        );
        let change = LedgerChange {
            consents: vec![record.clone()],
            preferences: None,
        };
        ctx.app.consents.record(&tenant, &key, &change, &audit).await?;
        tracing::info!(recipient_key = %key, channel = %record.channel, scope = %record.scope, action, "consent recorded");
        let body = ConsentRecorded {
            recipient_key: &key,
            consent: &record,
        };
        Ok((201, to_value(&body)?))
    })
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RecipientInput {
    channel: Channel,
    address: String,
}

/// A block as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BlockView<'a> {
    channel: Channel,
    #[serde(flatten)]
    block: &'a crate::domain::suppression::Block,
}

/// The answer to recording a consent decision.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ConsentRecorded<'a> {
    recipient_key: &'a str,
    consent: &'a ConsentRecord,
}

/// The answer to replacing a recipient's preferences.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PreferencesSaved<'a> {
    recipient_key: &'a str,
    preferences: &'a RecipientPreferences,
}

/// What Herald holds on a recipient: the decisions in force, the whole history (oldest first),
/// preferences, and the opt-outs and suppressions receipts caused.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LedgerView<'a> {
    recipient_key: &'a str,
    /// The decision in force per channel and scope.
    consents: Vec<ConsentRecord>,
    /// Every decision ever recorded, oldest first.
    history: &'a [ConsentRecord],
    preferences: Option<&'a RecipientPreferences>,
    blocks: Vec<BlockView<'a>>,
}

impl<'a> LedgerView<'a> {
    pub fn of(key: &'a str, ledger: &'a RecipientLedger) -> Self {
        let mut consents = ledger.consents.clone();
        consents.sort_by_key(|c| (c.channel, c.scope));
        LedgerView {
            recipient_key: key,
            consents,
            history: &ledger.history,
            preferences: ledger.preferences.as_ref(),
            blocks: ledger
                .blocks
                .iter()
                .map(|(channel, block)| BlockView {
                    channel: *channel,
                    block,
                })
                .collect(),
        }
    }
}

/// A signed link to a recipient's preference page.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PreferenceLinkView<'a> {
    recipient_key: &'a str,
    channel: Channel,
    url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    expires_at: OffsetDateTime,
}

/// A page of a recipient's export: the ledger, the address asked about, and whole message
/// records (content included: it is the recipient's own data).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ExportView<'a> {
    #[serde(flatten)]
    ledger: LedgerView<'a>,
    channel: Channel,
    address: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    exported_at: OffsetDateTime,
    messages: &'a [crate::domain::message::Message],
    /// The `after` of the next page; null on the last.
    next: Option<&'a str>,
}

fn to_value<T: Serialize>(body: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError::Internal(e.into()))
}

async fn lookup(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(false)?;
    let input: RecipientInput = http::json_body(ctx.request)?;
    let key = ctx
        .app
        .recipient_key(&tenant, &recipient(input.channel, &input.address)?)
        .await
        .map_err(ApiError::Internal)?;
    let ledger = ctx.app.consents.ledger(&tenant, &key).await?;
    http::respond(200, &LedgerView::of(&key, &ledger))
}

/// Preferences as a request carries them (the whole set: what is left out is cleared).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    #[serde(default)]
    pub channel_opt_outs: BTreeSet<Channel>,
    #[serde(default)]
    pub category_opt_outs: BTreeSet<Category>,
    #[serde(default)]
    pub channel_order: Vec<Channel>,
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
}

impl PreferencesInput {
    /// The preferences, checked as a whole; `base` prefixes field names in errors.
    pub fn parse(self, base: &str) -> Result<Preferences, FieldError> {
        let preferences = Preferences {
            channel_opt_outs: self.channel_opt_outs,
            category_opt_outs: self.category_opt_outs,
            channel_order: self.channel_order,
            quiet_hours: self.quiet_hours,
        };
        preferences.check(base)?;
        Ok(preferences)
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PutPreferencesInput {
    channel: Channel,
    address: String,
    #[serde(default)]
    channel_opt_outs: BTreeSet<Channel>,
    #[serde(default)]
    category_opt_outs: BTreeSet<Category>,
    #[serde(default)]
    channel_order: Vec<Channel>,
    #[serde(default)]
    quiet_hours: Option<QuietHours>,
    /// Where the tenant heard them (default `api`).
    #[serde(default)]
    source: Option<ConsentSource>,
}

/// The next stored preferences after `current`, set by `by` from `source`.
pub fn next_preferences(
    current: Option<&RecipientPreferences>,
    preferences: Preferences,
    by: &str,
    source: ConsentSource,
) -> RecipientPreferences {
    RecipientPreferences {
        preferences,
        revision: current.map_or(1, |c| c.revision + 1),
        updated_at: OffsetDateTime::now_utc(),
        updated_by: by.to_owned(),
        source,
    }
}

/// Replaces the recipient's preferences; a concurrent change is 409 `concurrent_change`.
async fn put_preferences(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(true)?;
    let scope = format!("recipient-preferences#T#{tenant}");
    super::idempotency::once(ctx.app, ctx.request, &scope, false, || async {
        let input: PutPreferencesInput = http::json_body(ctx.request)?;
        let key = ctx
            .app
            .recipient_key(&tenant, &recipient(input.channel, &input.address)?)
            .await
            .map_err(ApiError::Internal)?;
        let source = match input.source {
            Some(s) => tenant_source(&s).map(|()| s)?,
            None => ConsentSource::parse("api").map_err(|m| FieldError::invalid("source", m))?,
        };
        let preferences = PreferencesInput {
            channel_opt_outs: input.channel_opt_outs,
            category_opt_outs: input.category_opt_outs,
            channel_order: input.channel_order,
            quiet_hours: input.quiet_hours,
        }
        .parse("")?;
        let current = ctx.app.consents.ledger(&tenant, &key).await?.preferences;
        let next = next_preferences(current.as_ref(), preferences, &ctx.caller.subject, source);
        let audit = AuditEntry::new(
            ctx.caller,
            &ctx.request_id,
            "recipient.preferences_changed",
            audit_target(&key),
            current.as_ref().map(|c| digest(&c.preferences)),
            Some(digest(&next.preferences)),
        );
        let change = LedgerChange {
            consents: Vec::new(),
            preferences: Some(next.clone()),
        };
        ctx.app
            .consents
            .record(&tenant, &key, &change, &audit)
            .await?;
        tracing::info!(recipient_key = %key, revision = next.revision, "preferences changed");
        let body = PreferencesSaved {
            recipient_key: &key,
            preferences: &next,
        };
        Ok((200, to_value(&body)?))
    })
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkInput {
    channel: Channel,
    address: String,
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A signed, expiring link to the recipient's preference centre, to put in a message on
/// `channel`. It carries the tenant, the recipient key, the channel and the expiry; never the
/// address. Nothing is stored: the signature is the record.
async fn preference_link(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.tenant(true)?;
    let input: LinkInput = http::json_body(ctx.request)?;
    let key = ctx
        .app
        .recipient_key(&tenant, &recipient(input.channel, &input.address)?)
        .await
        .map_err(ApiError::Internal)?;
    let days = input.expires_in_days.unwrap_or(DEFAULT_LINK_DAYS);
    if !(1..=MAX_LINK_DAYS).contains(&days) {
        return Err(FieldError::new(
            ErrorCode::OutOfRange,
            "expires_in_days",
            format!("expires_in_days must be 1-{MAX_LINK_DAYS}"),
        )
        .into());
    }
    let link = PreferenceLink {
        tenant,
        recipient_key: key.clone(),
        channel: input.channel,
        expires_at: OffsetDateTime::now_utc() + time::Duration::days(i64::from(days)),
    };
    let keys = ctx.app.link_keys.keys().await.map_err(ApiError::Internal)?;
    let base = http::public_base_url(ctx.request, ctx.app.public_url.as_deref());
    let url = format!("{base}/preferences/{}", keys.sign(&link));
    tracing::info!(recipient_key = %key, channel = %link.channel, days, "preference link made");
    http::respond(
        201,
        &PreferenceLinkView {
            recipient_key: &key,
            channel: link.channel,
            url,
            expires_at: link.expires_at,
        },
    )
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportInput {
    channel: Channel,
    address: String,
    /// The `next` of the previous page.
    #[serde(default)]
    after: Option<String>,
}

/// Everything Herald holds on one recipient (data-subject access): the ledger and their
/// messages, whole, a page at a time (`next`). Not idempotency-guarded: it changes nothing, and
/// its answer, which holds the address and content, must not be kept anywhere.
async fn export(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.admin_tenant()?;
    let input: ExportInput = http::json_body(ctx.request)?;
    let recipient = recipient(input.channel, &input.address)?;
    let key = ctx
        .app
        .recipient_key(&tenant, &recipient)
        .await
        .map_err(ApiError::Internal)?;
    if input.after.as_deref().is_some_and(|a| a.len() > 200) {
        return Err(FieldError::invalid("after", "not a page token of this export").into());
    }
    let page = data_subject::export(
        ctx.sources(),
        &tenant,
        &key,
        input.after.as_deref(),
        data_subject::EXPORT_PAGE,
    )
    .await?;
    let body = ExportView {
        ledger: LedgerView::of(&key, &page.ledger),
        channel: input.channel,
        address: recipient.as_str(),
        exported_at: OffsetDateTime::now_utc(),
        messages: &page.messages,
        next: page.next.as_deref(),
    };
    tracing::info!(recipient_key = %key, messages = page.messages.len(), "recipient exported");
    http::respond(200, &body)
}

/// Erases the recipient's personal data (see [`data_subject::erase`]); `Idempotency-Key`
/// required. 200 with what was done when every message was reached; 409 `erasure_incomplete`
/// when some were being dispatched or the history is longer than one run: what could be erased
/// is erased, and repeating the request (same key) finishes it.
async fn erase(ctx: &Ctx<'_>) -> ApiResult {
    let tenant = ctx.admin_tenant()?;
    let scope = format!("recipient-erase#T#{tenant}");
    super::idempotency::once(ctx.app, ctx.request, &scope, true, || async {
        let input: RecipientInput = http::json_body(ctx.request)?;
        let key = ctx
            .app
            .recipient_key(&tenant, &recipient(input.channel, &input.address)?)
            .await
            .map_err(ApiError::Internal)?;
        let outcome = data_subject::erase(
            ctx.sources(),
            data_subject::Actor::Caller(ctx.caller),
            &tenant,
            &key,
            &ctx.request_id,
        )
        .await?;
        if !outcome.complete {
            return Err(ApiError::Conflict {
                code: ErrorCode::ErasureIncomplete,
                message: if outcome.messages_in_flight > 0 {
                    format!(
                        "{} message(s) erased; {} being dispatched right now: repeat the request shortly to finish",
                        outcome.messages_erased, outcome.messages_in_flight
                    )
                } else {
                    format!(
                        "{} message(s) erased; more remain than one request erases: repeat the request to finish",
                        outcome.messages_erased
                    )
                },
            });
        }
        Ok((200, to_value(&outcome)?))
    })
    .await
}
