//! The preference centre a recipient reaches through the signed link Herald made for them. No
//! JWT: the recipient has no account, the link is the credential. `GET /preferences/{token}`
//! shows their preferences and the consent decisions in force with this tenant; `PUT` changes
//! them, recorded with source `preference_centre` (consent decisions apply to the channel the
//! link was sent on).
//!
//! The token is checked before anything is read: HMAC-SHA256 in constant time, then its expiry.
//! A token that is not Herald's, or was changed, is 401 `preference_link_invalid`; an expired
//! one 403 `preference_link_expired`. The address is never in the link, an answer or a log line,
//! and neither is the token (this module logs under a fixed route name, not the path).

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::Instrument as _;

use super::preference_page;
use super::recipients::{PreferencesInput, audit_target, next_preferences};
use super::routes::RouteId;
use crate::app::App;
use crate::domain::audit::{AuditEntry, digest};
use crate::domain::consent::{
    ConsentRecord, ConsentScope, ConsentSource, ConsentStatus, LegalBasis,
};
use crate::domain::preference_link::{LinkError, PreferenceLink};
use crate::domain::preferences::Preferences;
use crate::domain::validation::FieldError;
use crate::domain::{CategoryClass, Channel, ErrorCode};
use crate::http::{self, ApiError, ApiResult, Response};
use crate::store::{LedgerChange, MAX_LEDGER_CONSENTS, RecipientLedger};

/// Who the audit log names for changes recipients make themselves.
const ACTOR: &str = "preference-centre";

/// Runs one request in its own span, named by a fixed route: the path holds the token.
pub async fn serve(app: &App, request: Request) -> Result<Response, lambda_http::Error> {
    let span = tracing::info_span!(
        "request",
        request_id = %http::request_id(&request),
        route = "preferences",
        status = tracing::field::Empty
    );
    async move {
        let response = handle(app, request)
            .await
            .unwrap_or_else(ApiError::into_response);
        tracing::Span::current().record("status", response.status().as_u16());
        tracing::info!("handled");
        Ok(response)
    }
    .instrument(span)
    .await
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let method = request.method().as_str().to_owned();
    let link = match authenticate(app, &request).await? {
        Ok(link) => link,
        Err(e) => return Ok(rejected(e)),
    };
    // From the method and path rather than API Gateway's route key, as for receipts: a
    // function URL serves every route as `$default`.
    let key = if request.uri().path().ends_with(UNSUBSCRIBE_SUFFIX) {
        format!("{method} /preferences/{{token}}{UNSUBSCRIBE_SUFFIX}")
    } else {
        format!("{method} /preferences/{{token}}")
    };
    match RouteId::from_key(&key) {
        Some(RouteId::GetPreferences) => show(app, &request, &link).await,
        Some(RouteId::PutPreferences) => {
            let input: ChangeInput = http::json_body(&request)?;
            let ledger = change(app, &request, &link, input).await?;
            answer(&view(&link, &ledger))
        }
        Some(RouteId::SavePreferencesForm) => save_form(app, &request, &link).await,
        Some(RouteId::OneClickUnsubscribe) => one_click(app, &request, &link).await,
        _ => Err(ApiError::NoRoute(key)),
    }
}

/// The page's form, posted by a browser: applied as a change, then back to the page (303, so
/// that reloading it does not post again), which says the preferences are saved.
async fn save_form(app: &App, request: &Request, link: &PreferenceLink) -> ApiResult {
    let choice = preference_page::FormChoice::parse(request.body().as_ref())?;
    let ledger = app
        .consents
        .ledger(&link.tenant, &link.recipient_key)
        .await?;
    let current = ledger
        .preferences
        .as_ref()
        .map(|p| p.preferences.clone())
        .unwrap_or_default();
    let input = ChangeInput {
        preferences: Some(PreferencesInput {
            category_opt_outs: choice.opted_out(),
            channel_opt_outs: current.channel_opt_outs,
            channel_order: current.channel_order,
            quiet_hours: current.quiet_hours,
        }),
        consents: vec![ConsentChange {
            category: ConsentScope::Class(CategoryClass::Marketing),
            status: if choice.marketing {
                ConsentStatus::Granted
            } else {
                ConsentStatus::Withdrawn
            },
        }],
    };
    change(app, request, link, input).await?;
    lambda_http::Response::builder()
        .status(303)
        // A relative reference: the page itself, wherever the API is mounted.
        .header("location", "?saved=1")
        .header("cache-control", "no-store")
        .body(lambda_http::Body::Empty)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// The one-click unsubscribe URL's last segment (RFC 8058).
const UNSUBSCRIBE_SUFFIX: &str = "/unsubscribe";

/// RFC 8058 one-click unsubscribe: a mail client POSTs `List-Unsubscribe=One-Click` to the URL
/// in a marketing email's `List-Unsubscribe`; the recipient withdraws consent to marketing on
/// the link's channel, with no login and nothing else to confirm. The body is not needed (the
/// signed link is the credential) and not read; repeating it records nothing new.
async fn one_click(app: &App, request: &Request, link: &PreferenceLink) -> ApiResult {
    let ledger = app
        .consents
        .ledger(&link.tenant, &link.recipient_key)
        .await?;
    let marketing = ConsentScope::Class(CategoryClass::Marketing);
    let already = ledger.consents.iter().any(|c| {
        (c.channel, c.scope, c.status) == (link.channel, marketing, ConsentStatus::Withdrawn)
    });
    if already {
        return answer(&view(link, &ledger));
    }
    let request_id = http::request_id(request);
    let record = ConsentRecord {
        id: ConsentRecord::new_id(),
        channel: link.channel,
        scope: marketing,
        status: ConsentStatus::Withdrawn,
        legal_basis: LegalBasis::Consent,
        source: ConsentSource::one_click_unsubscribe(),
        evidence: Some(
            "one-click unsubscribe (RFC 8058) from a marketing email's signed link".to_owned(),
        ),
        at: OffsetDateTime::now_utc(),
        recorded_by: ACTOR.to_owned(),
        request_id: request_id.clone(),
    };
    let audit = AuditEntry::by_system(
        ACTOR,
        &link.tenant,
        &request_id,
        "recipient.unsubscribed",
        audit_target(&link.recipient_key),
        None,
        Some(digest(&record)),
    );
    let change = LedgerChange {
        consents: vec![record],
        preferences: None,
    };
    app.consents
        .record(&link.tenant, &link.recipient_key, &change, &audit)
        .await?;
    tracing::info!(
        recipient_key = %link.recipient_key,
        channel = %link.channel,
        "one-click unsubscribe"
    );
    let ledger = app
        .consents
        .ledger(&link.tenant, &link.recipient_key)
        .await?;
    answer(&view(link, &ledger))
}

/// The token from the route's `{token}` (API Gateway), or the path's last segment.
fn token(request: &Request) -> String {
    http::path_param::<String>(request, "token").unwrap_or_else(|_| {
        let path = request.uri().path();
        path.rsplit_once("/preferences/")
            .map(|(_, t)| t.strip_suffix(UNSUBSCRIBE_SUFFIX).unwrap_or(t).to_owned())
            .unwrap_or_default()
    })
}

async fn authenticate(
    app: &App,
    request: &Request,
) -> Result<Result<PreferenceLink, LinkError>, ApiError> {
    let keys = app.link_keys.keys().await.map_err(ApiError::Internal)?;
    Ok(keys.verify(&token(request), OffsetDateTime::now_utc()))
}

fn rejected(error: LinkError) -> Response {
    tracing::warn!(
        preference_links_rejected = 1,
        reason = %error.code(),
        "preference link refused"
    );
    let mut response = http::refusal(error.code(), error.to_string());
    response.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// What the recipient sees: preferences (defaults when never set) and the decisions in force.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PreferencesPage {
    channel: Channel,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    expires_at: OffsetDateTime,
    preferences: Preferences,
    /// Send it back unchanged with a change: a change made meanwhile elsewhere is refused.
    revision: u32,
    consents: Vec<ConsentShown>,
}

/// A consent decision in force, as the recipient sees it.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ConsentShown {
    channel: Channel,
    category: ConsentScope,
    status: ConsentStatus,
    source: ConsentSource,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    at: OffsetDateTime,
}

fn view(link: &PreferenceLink, ledger: &RecipientLedger) -> PreferencesPage {
    let mut consents = ledger.consents.clone();
    consents.sort_by_key(|c| (c.channel, c.scope));
    PreferencesPage {
        channel: link.channel,
        expires_at: link.expires_at,
        preferences: ledger
            .preferences
            .as_ref()
            .map(|p| &p.preferences)
            .cloned()
            .unwrap_or_default(),
        revision: ledger.preferences.as_ref().map_or(0, |p| p.revision),
        consents: consents
            .iter()
            .map(|c| ConsentShown {
                channel: c.channel,
                category: c.scope,
                status: c.status,
                source: c.source.clone(),
                at: c.at,
            })
            .collect(),
    }
}

fn answer(body: &PreferencesPage) -> ApiResult {
    let mut response = http::respond(200, body)?;
    response.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

async fn show(app: &App, request: &Request, link: &PreferenceLink) -> ApiResult {
    let ledger = app
        .consents
        .ledger(&link.tenant, &link.recipient_key)
        .await?;
    if preference_page::wants_html(request) {
        let saved = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "saved=1"));
        return preference_page::page(request, link, &ledger, saved);
    }
    answer(&view(link, &ledger))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeInput {
    /// The whole set of preferences (left out: unchanged).
    #[serde(default)]
    preferences: Option<PreferencesInput>,
    /// Decisions about categories or classes on the link's channel.
    #[serde(default)]
    consents: Vec<ConsentChange>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConsentChange {
    category: ConsentScope,
    status: ConsentStatus,
}

/// Applies the recipient's changes in one transaction with one audit entry, answering the
/// ledger after them. Decisions that restate the one in force are not recorded again.
async fn change(
    app: &App,
    request: &Request,
    link: &PreferenceLink,
    input: ChangeInput,
) -> Result<RecipientLedger, ApiError> {
    if input.preferences.is_none() && input.consents.is_empty() {
        return Err(FieldError::required("preferences").into());
    }
    if input.consents.len() > MAX_LEDGER_CONSENTS {
        return Err(FieldError::new(
            ErrorCode::TooMany,
            "consents",
            format!("at most {MAX_LEDGER_CONSENTS} decisions per request"),
        )
        .into());
    }
    for (i, c) in input.consents.iter().enumerate() {
        if input.consents[..i].iter().any(|o| o.category == c.category) {
            return Err(FieldError::invalid(
                format!("consents[{i}].category"),
                "each category or class at most once",
            )
            .into());
        }
    }
    let preferences = input
        .preferences
        .map(|p| p.parse("preferences"))
        .transpose()?;
    let request_id = http::request_id(request);
    let ledger = app
        .consents
        .ledger(&link.tenant, &link.recipient_key)
        .await?;
    let now = OffsetDateTime::now_utc();
    let consents: Vec<ConsentRecord> = input
        .consents
        .into_iter()
        .filter(|c| {
            !ledger.consents.iter().any(|current| {
                (current.channel, current.scope, current.status)
                    == (link.channel, c.category, c.status)
            })
        })
        .map(|c| ConsentRecord {
            id: ConsentRecord::new_id(),
            channel: link.channel,
            scope: c.category,
            status: c.status,
            legal_basis: LegalBasis::Consent,
            source: ConsentSource::preference_centre(),
            evidence: Some("the recipient's signed preference-centre link".to_owned()),
            at: now,
            recorded_by: ACTOR.to_owned(),
            request_id: request_id.clone(),
        })
        .collect();
    let preferences = preferences
        .filter(|p| ledger.preferences.as_ref().map(|c| &c.preferences) != Some(p))
        .map(|p| {
            next_preferences(
                ledger.preferences.as_ref(),
                p,
                ACTOR,
                ConsentSource::preference_centre(),
            )
        });
    if consents.is_empty() && preferences.is_none() {
        return Ok(ledger);
    }
    let change = LedgerChange {
        consents,
        preferences,
    };
    let audit = AuditEntry::by_system(
        ACTOR,
        &link.tenant,
        &request_id,
        "recipient.preferences_changed_by_recipient",
        audit_target(&link.recipient_key),
        Some(digest(&(&ledger.preferences, &ledger.consents))),
        Some(digest(&(&change.preferences, &change.consents))),
    );
    app.consents
        .record(&link.tenant, &link.recipient_key, &change, &audit)
        .await?;
    tracing::info!(
        recipient_key = %link.recipient_key,
        consents = change.consents.len(),
        preferences = change.preferences.is_some(),
        "preferences changed by the recipient"
    );
    Ok(app
        .consents
        .ledger(&link.tenant, &link.recipient_key)
        .await?)
}
