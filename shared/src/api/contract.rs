//! Herald's HTTP contract as an OpenAPI 3.1 document, built from the route table
//! ([`super::routes`]), each route's entry in [`operation`] (an exhaustive match: a new route
//! does not compile until it is described), the error catalogue ([`ErrorCode`]) and the
//! sample requests in `events/`. `herald openapi` prints it; `docs/openapi.json` is its output,
//! held equal to it by a test.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::configuration::{self, ProviderInput};
use super::routes::{Function, RouteId};
use super::template_preview::{Preview, PreviewInput};
use super::webhook_endpoints::{self, EndpointView};
use super::{preference_centre, recipients, send, tenant_settings, test_send, wizard};
use crate::domain::brand::Brand;
use crate::domain::message::MessageListing;
use crate::domain::provider::{EventProviderEntry, ProviderConfig};
use crate::domain::report::ComplianceReport;
use crate::domain::resolution::{EventSettings, ResolvedConfiguration};
use crate::domain::snapshot::{Activation, ProviderCheck, Snapshot};
use crate::domain::status_event::{STATUS_EVENT_VERSION, StatusEventType};
use crate::domain::template::{TemplateContent, TemplateVersion};
use crate::domain::tenant_settings::TenantSettings;
use crate::domain::{Category, Channel, ErrorCode};
use crate::http::{MAX_BODY_BYTES, ROLE_CLAIM, TENANT_CLAIM};
use crate::receipts::Applied;

/// The document's `info.version`: the contract's own version, raised when it changes.
pub const CONTRACT_VERSION: &str = "1.0.0";
/// Every route is served under this base path (the HTTP API's stage).
pub const BASE_PATH: &str = "/v1";
const BEARER: &str = "bearerJwt";

/// Whether a route reads the `Idempotency-Key` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idempotency {
    None,
    /// A repeat with the same key answers the first answer, nothing done twice.
    Optional,
    /// As optional, and a request without one is refused.
    Required,
}

/// Builds a body's schema (a `$ref` into the document's components, mostly).
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T` as serde reads it (requests) or writes it (responses).
fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A page of a list (`http::paging`): `{"items": [T...], "next": cursor or null}`.
fn page<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<T>();
    schemars::json_schema!({
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": item, "maxItems": crate::http::paging::MAX_LIMIT},
            "next": {"type": ["string", "null"], "description": "The cursor of the next page; null on the last."},
        },
    })
}

/// An event provider's replacement: a whole provider for the event's own, or the override of
/// an inherited tenant default (whichever the event holds under that id).
fn provider_or_override(generator: &mut SchemaGenerator) -> Schema {
    let own = generator.subschema_for::<configuration::ProviderInput>();
    let change = generator.subschema_for::<configuration::OverrideInput>();
    schemars::json_schema!({"anyOf": [own, change]})
}

/// What the contract says about one route beyond its key.
#[derive(Debug)]
struct Operation {
    description: &'static str,
    /// Success statuses and what each means.
    ok: &'static [(u16, &'static str)],
    /// Whether it takes a JSON body.
    body: bool,
    query: &'static [(&'static str, &'static str)],
    idempotency: Idempotency,
    /// Codes particular to the route, beyond those every route of its kind can answer.
    errors: &'static [ErrorCode],
    /// The JSON body it reads, as serde reads it.
    request: Option<SchemaFn>,
    /// The JSON body of its success answers, as serde writes it.
    response: Option<SchemaFn>,
    /// Other media types a success may answer with (a CSV report, Meta's echoed challenge).
    media: &'static [&'static str],
}

const fn op(description: &'static str, ok: &'static [(u16, &'static str)]) -> Operation {
    Operation {
        description,
        ok,
        body: false,
        query: &[],
        idempotency: Idempotency::None,
        errors: &[],
        request: None,
        response: None,
        media: &[],
    }
}

impl Operation {
    /// Reads a JSON body of this schema.
    fn reads(mut self, request: SchemaFn) -> Self {
        self.body = true;
        self.request = Some(request);
        self
    }

    /// Answers success with a JSON body of this schema.
    fn answers(mut self, response: SchemaFn) -> Self {
        self.response = Some(response);
        self
    }

    fn media(mut self, media: &'static [&'static str]) -> Self {
        self.media = media;
        self
    }

    const fn errors(mut self, errors: &'static [ErrorCode]) -> Self {
        self.errors = errors;
        self
    }

    const fn idempotent(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    const fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
}

const OK: &[(u16, &str)] = &[(200, "OK")];
/// Every list route pages the same way (`http::paging`): `{"items": [...], "next": cursor|null}`.
const PAGED: &[(&str, &str)] = &[
    ("limit", "Items per page, 1 to 100 (default 50)."),
    (
        "cursor",
        "The `next` of the previous page; absent for the first page.",
    ),
];
const MESSAGES: &[(&str, &str)] = &[
    (
        "status",
        "Only messages in this status (accepted, sent, delivered, read, failed, bounced, complained).",
    ),
    ("channel", "Only messages on this channel."),
    ("category", "Only messages of this category."),
    ("from", "Created at or after this time (RFC 3339)."),
    ("to", "Created before this time (RFC 3339)."),
    ("limit", "Items per page, 1 to 100 (default 50)."),
    (
        "cursor",
        "The `next` of the previous page; absent for the first page.",
    ),
];
const CREATED: &[(u16, &str)] = &[(201, "Created")];
const SAVED_OR_SUBMITTED: &[(u16, &str)] = &[
    (200, "Published (a new version of an existing template)"),
    (201, "Published (the slot's first version)"),
    (202, "Submitted for review: not in use until approved"),
];
const TEMPLATES: &[(&str, &str)] = &[
    (
        "state",
        "`published` (default): the templates in use; `submitted`: the versions waiting for review.",
    ),
    (
        "reviewable",
        "With `state=submitted`, `true` keeps only the versions the caller may approve (not their own).",
    ),
    ("limit", "Items per page, 1 to 100 (default 50)."),
    (
        "cursor",
        "The `next` of the previous page; absent for the first page.",
    ),
];
const SAVED: &[(u16, &str)] = &[(200, "Replaced"), (201, "Created")];
const DELETED: &[(u16, &str)] = &[(204, "Deleted (or already absent)")];

use ErrorCode as E;

const PROVIDER: &[ErrorCode] = &[E::UnknownField, E::ConcurrentChange, E::TooLarge];
const TEMPLATE: &[ErrorCode] = &[
    E::NotAllowed,
    E::Reserved,
    E::Duplicate,
    E::TemplateInvalid,
    E::TemplateTooLarge,
    E::ConcurrentChange,
    E::TooLarge,
];
const PREVIEW: &[ErrorCode] = &[
    E::NotAllowed,
    E::Reserved,
    E::Duplicate,
    E::UnknownVariable,
    E::TemplateInvalid,
    E::TemplateTooLarge,
];
const WRITE: &[ErrorCode] = &[E::ConcurrentChange, E::TooLarge];
const REVIEW: &[ErrorCode] = &[
    E::FourEyes,
    E::NotSubmitted,
    E::ConcurrentChange,
    E::TooLarge,
];
const ENDPOINT: &[ErrorCode] = &[
    E::InvalidUrl,
    E::CredentialsInUrl,
    E::InsecureUrl,
    E::PrivateAddress,
    E::UnknownEventType,
    E::ConcurrentChange,
];
const SEND: &[ErrorCode] = &[
    E::NotInUse,
    E::NotSupported,
    E::UnknownVariable,
    E::MissingVariable,
    E::TemplateInvalid,
    E::TemplateTooLarge,
    E::RecipientOptedOut,
    E::RecipientSuppressed,
    E::RecipientWithdrewConsent,
    E::RecipientOptedOutOfCategory,
    E::RecipientOptedOutOfChannel,
    E::TooLarge,
];
const RECEIPT: &[ErrorCode] = &[E::Stale, E::Malformed, E::Unavailable];
const LINK: &[ErrorCode] = &[E::PreferenceLinkInvalid, E::PreferenceLinkExpired];

/// Every route's description: adding a route to [`RouteId`] does not compile until it has one.
fn operation(route: RouteId) -> Operation {
    use RouteId::*;
    match route {
        ListTenantProviders => op("The tenant's default providers, credentials redacted.", OK)
            .query(PAGED).answers(page::<ProviderConfig>),
        ListEventProviders => op("The event's provider overrides, credentials redacted.", OK)
            .query(PAGED).answers(page::<EventProviderEntry>),
        CreateTenantProvider => op("Adds a tenant default provider; credentials are stored encrypted and never returned.", CREATED)
            .reads(schema::<ProviderInput>).answers(schema::<ProviderConfig>).errors(PROVIDER).idempotent(Idempotency::Optional),
        CreateEventProvider => op("Adds a provider for the event only.", CREATED)
            .reads(schema::<ProviderInput>).answers(schema::<EventProviderEntry>).errors(PROVIDER).idempotent(Idempotency::Optional),
        GetTenantProvider => op("One provider, credentials redacted (hints only).", OK)
            .answers(schema::<ProviderConfig>),
        GetEventProvider => op("One provider of the event, or its override of a tenant default; credentials redacted (hints only).", OK)
            .answers(schema::<EventProviderEntry>),
        PutTenantProvider => op("Replaces a tenant provider's settings (credentials kept unless given).", OK)
            .reads(schema::<ProviderInput>).answers(schema::<ProviderConfig>).errors(PROVIDER),
        PutEventProvider => op("Replaces an event provider, or overrides a tenant default for the event (priority, weight, active).", OK)
            .reads(provider_or_override).answers(schema::<EventProviderEntry>).errors(PROVIDER),
        DeleteTenantProvider | DeleteEventProvider => op("Removes the provider; at the event layer the tenant default applies again.", DELETED)
            .errors(WRITE),
        TestTenantProvider | TestEventProvider => op("Live-tests the provider's credentials where the provider allows one.", OK)
            .answers(schema::<ProviderCheck>),
        ListPlatformTemplates => op("Platform (compliance) templates by category and channel; with `state=submitted`, the versions waiting for review (`reviewable=true`: those the caller may approve).", OK)
            .query(TEMPLATES).answers(page::<TemplateVersion>),
        ListTenantTemplates => op("The tenant's templates by category and channel; with `state=submitted`, the versions waiting for review (`reviewable=true`: those the caller may approve).", OK)
            .query(TEMPLATES).answers(page::<TemplateVersion>),
        ListEventTemplates => op("The event's template overrides by category and channel; with `state=submitted`, the versions waiting for review (`reviewable=true`: those the caller may approve).", OK)
            .query(TEMPLATES).answers(page::<TemplateVersion>),
        ApprovePlatformTemplate | ApproveTenantTemplate | ApproveEventTemplate => op("Approves a submitted version, which publishes it: it becomes the layer's template in use. Never by its author (403 `four_eyes`).", OK)
            .answers(schema::<TemplateVersion>).errors(REVIEW),
        RejectPlatformTemplate | RejectTenantTemplate | RejectEventTemplate => op("Rejects a submitted version with a reason for its author (its author may so withdraw it); it is never used.", OK)
            .reads(schema::<super::templates::RejectInput>).answers(schema::<TemplateVersion>).errors(REVIEW),
        GetPlatformTemplate | GetTenantTemplate | GetEventTemplate => op("The template of this layer for the category and channel.", OK)
            .answers(schema::<TemplateVersion>),
        PutPlatformTemplate | PutTenantTemplate | PutEventTemplate => op("Saves a new version of the template; it must compile and render with its own samples. Published at once (200, 201), or, where a second person's approval is needed (the tenant's `templates_need_approval`; always for platform templates), submitted for review (202) while the published version stays in use.", SAVED_OR_SUBMITTED)
            .reads(schema::<TemplateContent>).answers(schema::<TemplateVersion>).errors(TEMPLATE),
        DeletePlatformTemplate | DeleteTenantTemplate | DeleteEventTemplate => op("Removes the template of this layer; the next layer's applies again.", DELETED)
            .errors(WRITE),
        PreviewPlatformTemplate | PreviewTenantTemplate | PreviewEventTemplate => op("Renders saved or draft content with sample or given variables and the scope's brand: subject, HTML, text, SMS segments, cost estimate and the layer of each part. Writes nothing.", OK)
            .reads(schema::<PreviewInput>).answers(schema::<Preview>).errors(PREVIEW),
        ListPlatformTemplateVersions | ListTenantTemplateVersions | ListEventTemplateVersions => op("Every saved version of the template, newest first, with its state (submitted, published, rejected) and review.", OK)
            .query(PAGED).answers(page::<TemplateVersion>),
        GetTenantBrand | GetEventBrand => op("Brand assets of this layer.", OK)
            .answers(schema::<Brand>),
        PutTenantBrand | PutEventBrand => op("Replaces the brand assets of this layer.", OK)
            .reads(schema::<Brand>).answers(schema::<Brand>).errors(WRITE),
        DeleteEventBrand => op("Removes the event's brand overrides; the tenant's brand applies again.", DELETED)
            .errors(WRITE),
        GetEventSettings => op("The event's settings: channels and categories in use, triggers, quiet hours.", OK)
            .answers(schema::<EventSettings>),
        PutEventSettings => op("Creates or replaces the event's settings (an event exists once its settings are saved).", SAVED)
            .reads(schema::<EventSettings>).answers(schema::<EventSettings>).errors(WRITE),
        ListWebhookEndpoints => op("The tenant's status webhook endpoints (secrets never returned).", OK)
            .query(PAGED).answers(page::<EndpointView<'static>>),
        CreateWebhookEndpoint => op("Adds a status webhook endpoint; the answer carries its signing secret, once.", CREATED)
            .reads(schema::<webhook_endpoints::CreateInput>).answers(webhook_endpoints::created_schema).errors(&[E::InvalidUrl, E::CredentialsInUrl, E::InsecureUrl, E::PrivateAddress, E::UnknownEventType, E::TooManyEndpoints]).idempotent(Idempotency::Optional),
        GetWebhookEndpoint => op("One status webhook endpoint.", OK)
            .answers(schema::<EndpointView<'static>>),
        PutWebhookEndpoint => op("Changes an endpoint's URL, event types, description or active flag.", OK)
            .reads(schema::<webhook_endpoints::UpdateInput>).answers(schema::<EndpointView<'static>>).errors(ENDPOINT),
        DeleteWebhookEndpoint => op("Removes the endpoint; queued deliveries to it are dropped.", DELETED)
            .errors(WRITE),
        RotateWebhookEndpointSecret => op("Issues a new signing secret; the answer carries it, once.", OK)
            .answers(schema::<webhook_endpoints::SecretShown<'static>>)
            .errors(WRITE),
        GetTenantSettings => op("The tenant's own settings (message retention).", OK)
            .answers(schema::<tenant_settings::View>),
        PutTenantSettings => op("Replaces the tenant's own settings.", OK)
            .reads(schema::<TenantSettings>).answers(schema::<tenant_settings::View>).errors(WRITE),
        GetComplianceReport => op("Consent, opt-out and suppression activity over a period, as JSON or CSV.", OK)
            .answers(schema::<ComplianceReport>).media(&["text/csv"])
            .query(&[
                ("from", "Required. Start of the period (RFC 3339, inclusive)."),
                ("to", "Required. End of the period (RFC 3339, exclusive)."),
                ("format", "`json` (default) or `csv`."),
                ("tenant", "The tenant reported on: platform admins only."),
            ])
            .errors(&[E::Required, E::InvalidPeriod, E::PeriodTooLong, E::ReportTooLarge, E::NotFound]),
        RecordRecipientConsent => op("Records a recipient's consent decision, with its source and evidence reference.", CREATED)
            .reads(schema::<recipients::ConsentInput>).answers(schema::<recipients::ConsentRecorded<'static>>).errors(&[E::Reserved, E::ContainsAddress, E::ConcurrentChange, E::TooLarge]).idempotent(Idempotency::Optional),
        LookupRecipient => op("A recipient's preferences and consent ledger, by address (the address is never stored).", OK)
            .reads(schema::<recipients::RecipientInput>).answers(schema::<recipients::LedgerView<'static>>),
        PutRecipientPreferences => op("Replaces a recipient's preferences (opted-out categories and channels, quiet hours).", OK)
            .reads(schema::<recipients::PutPreferencesInput>).answers(schema::<recipients::PreferencesSaved<'static>>).errors(&[E::NotOptional, E::ConcurrentChange, E::TooLarge]).idempotent(Idempotency::Optional),
        CreatePreferenceLink => op("A signed link to the recipient's preference page.", CREATED)
            .reads(schema::<recipients::LinkInput>).answers(schema::<recipients::PreferenceLinkView<'static>>),
        ExportRecipient => op("Everything Herald holds about a recipient (data subject access).", OK)
            .reads(schema::<recipients::ExportInput>).answers(schema::<recipients::ExportView<'static>>),
        EraseRecipient => op("Erases a recipient's data; 409 while messages to them are being dispatched (repeat shortly).", OK)
            .reads(schema::<recipients::RecipientInput>).answers(schema::<crate::data_subject::Erasure>).errors(&[E::ErasureIncomplete]).idempotent(Idempotency::Required),
        GetEventConfiguration => op("The event's resolved configuration, each value with the layer it came from.", OK)
            .answers(schema::<ResolvedConfiguration>),
        CompleteWizard => op("Validates the whole event configuration, live-tests providers, and activates a new immutable snapshot; 422 lists every problem.", CREATED)
            .answers(schema::<wizard::Completed<'static>>).errors(&[E::ConfigurationInvalid, E::ConcurrentCompletion, E::TooLarge]).idempotent(Idempotency::Required),
        ListSnapshots => op("The event's snapshots and which one is active.", OK)
            .query(PAGED).answers(page::<wizard::Listed<'static>>),
        GetSnapshot => op("One snapshot.", OK)
            .answers(schema::<Snapshot>),
        ActivateSnapshot => op("Makes an earlier snapshot the active one (rollback).", OK)
            .answers(schema::<Activation>)
            .errors(&[E::ConcurrentActivation]),
        CheckWhatsappTemplates => op("What each WhatsApp provider of the event says now of the templates its WhatsApp slots are registered as (status, quality), and what would stop completion.", OK)
            .answers(schema::<wizard::Registrations>),
        SendMessage => op("Sends one message through the event's active snapshot.", &[(202, "Accepted for delivery")])
            .reads(schema::<send::SingleInput>).answers(schema::<send::SendAnswer<'static>>).errors(SEND).idempotent(Idempotency::Required),
        SendBatch => op("Sends up to 500 messages; refused recipients are listed, the rest accepted.", &[(202, "Accepted for delivery")])
            .reads(schema::<send::BatchInput>).answers(schema::<send::SendAnswer<'static>>).errors(SEND).idempotent(Idempotency::Required),
        TriggerBusinessEvent => op("Sends the messages a business event (`loan.approved`) is configured to send.", &[(202, "Accepted for delivery")])
            .reads(schema::<send::TriggerInput>).answers(schema::<send::SendAnswer<'static>>).errors(&[E::UnknownTrigger, E::NotInUse, E::UnknownVariable, E::MissingVariable, E::TemplateInvalid, E::TemplateTooLarge, E::TooLarge]).idempotent(Idempotency::Required),
        ListMessages => op("The event's messages, newest first, with status, provider and cost; recipients masked, never content; test sends marked.", OK)
            .answers(page::<MessageListing>)
            .query(MESSAGES).errors(&[E::InvalidPeriod]),
        TestEventTemplate => op("Sends one real message rendered from the event's template to the address given, through the event's providers (its active snapshot, or the draft configuration before completion); recorded and audited as a test, limited per tenant per hour.", OK)
            .reads(schema::<test_send::TestInput>).answers(schema::<test_send::TestSent>).errors(&[E::NotSupported, E::UnknownVariable, E::MissingVariable, E::TemplateInvalid, E::TemplateTooLarge, E::ConfigurationInvalid, E::QuietHours, E::RecipientOptedOut, E::RecipientSuppressed, E::RecipientWithdrewConsent, E::RecipientOptedOutOfCategory, E::RecipientOptedOutOfChannel, E::QuotaExceeded, E::TooLarge]),
        GetMessage => op("One message record: status, provider, cost, attempts (no address or content).", OK)
            .answers(schema::<send::MessageView<'static>>),
        TwilioReceipts => op("Twilio status callbacks and inbound messages (opt-out keywords); signed with X-Twilio-Signature.", OK)
            .answers(schema::<Applied>).errors(RECEIPT),
        SesReceipts => op("Amazon SES notifications through SNS (signed SNS messages), subscription confirmation included.", OK)
            .answers(schema::<Applied>).errors(RECEIPT),
        MetaReceipts => op("Meta WhatsApp Cloud webhooks (statuses, inbound messages); signed with X-Hub-Signature-256.", OK)
            .answers(schema::<Applied>).errors(RECEIPT),
        MetaVerification => op("Meta's verification of the webhook URL: echoes `hub.challenge` when the verify token matches.", OK)
            .query(&[
                ("hub.mode", "`subscribe`."),
                ("hub.verify_token", "The verify token configured for the provider."),
                ("hub.challenge", "Echoed back on success."),
            ])
            .media(&["text/plain"]).errors(RECEIPT),
        AfricasTalkingReceipts => op("Africa's Talking delivery reports and inbound messages.", OK)
            .answers(schema::<Applied>).errors(RECEIPT),
        BrevoReceipts => op("Brevo transactional email events.", OK)
            .answers(schema::<Applied>).errors(RECEIPT),
        GetPreferences => op("The recipient's preferences and decisions in force, behind the signed link: JSON, or the preference page (HTML, no JavaScript, in the browser's language) for a request that accepts `text/html`.", OK)
            .answers(schema::<preference_centre::PreferencesPage>).media(&["text/html"]).errors(LINK),
        SavePreferencesForm => op("The preference page's form (`application/x-www-form-urlencoded`: `marketing=yes|no`, `category=<marketing category>` for each wanted), posted by the recipient's browser. Answers 303 back to the page, which then says the preferences are saved.", &[(303, "Saved: see the page again (`Location: ?saved=1`).")])
            .errors(&[E::PreferenceLinkInvalid, E::PreferenceLinkExpired, E::NotAllowed, E::TooLarge]),
        OneClickUnsubscribe => op("RFC 8058 one-click unsubscribe: the URL of a marketing email's `List-Unsubscribe` header, to which the recipient's mail client POSTs `List-Unsubscribe=One-Click`. Withdraws consent to marketing on the link's channel; no login, no body needed; a repeat records nothing new.", OK)
            .answers(schema::<preference_centre::PreferencesPage>).errors(LINK),
        PutPreferences => op("The recipient changes their preferences, behind the signed link.", OK)
            .reads(schema::<preference_centre::ChangeInput>).answers(schema::<preference_centre::PreferencesPage>).errors(&[E::PreferenceLinkInvalid, E::PreferenceLinkExpired, E::NotOptional, E::ConcurrentChange, E::TooLarge]),
    }
}

/// The codes a route can answer with: its own, and those of its kind (identity, parsing,
/// path parameters, writes).
fn error_codes(route: RouteId, op: &Operation) -> Vec<ErrorCode> {
    let mut codes: Vec<ErrorCode> = op.errors.to_vec();
    codes.push(E::Internal);
    if route.public() {
        // Provider webhooks and preference links: unknown tokens are not found.
        codes.push(E::NotFound);
        if route.function() == Function::DeliveryWebhooks {
            codes.extend([E::Unauthenticated, E::PayloadTooLarge]);
        }
    } else {
        codes.extend([E::Unauthenticated, E::Forbidden]);
    }
    if route.path().contains('{') {
        codes.extend([E::Invalid, E::NotFound]);
    }
    if op.body {
        codes.extend([
            E::Invalid,
            E::Required,
            E::TooLong,
            E::TooMany,
            E::OutOfRange,
            E::PayloadTooLarge,
        ]);
    }
    if !op.query.is_empty() {
        codes.extend([E::Invalid, E::OutOfRange]);
    }
    if op.idempotency != Idempotency::None {
        codes.extend([E::Invalid, E::RequestInProgress, E::IdempotencyKeyReused]);
        if op.idempotency == Idempotency::Required {
            codes.push(E::Required);
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

/// Sample requests (from `events/`): the body of the first sample of each route, with its
/// content type, by route key.
#[derive(Debug, Default, Clone)]
pub struct Examples {
    bodies: BTreeMap<String, (String, Value, String)>,
    /// Path parameters' values in the samples (the demo's tenant data: `gala-2026`).
    parameters: BTreeMap<String, String>,
}

impl Examples {
    /// Reads every API Gateway event (`*.json` with a `routeKey`) under `dir`, by file name.
    /// Samples of refused requests (`-as-` another role, `-other-tenant`) are not examples.
    pub fn load(dir: &std::path::Path) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let sub = entry?.path();
            if sub.is_dir() {
                for file in std::fs::read_dir(&sub)? {
                    files.push(file?.path());
                }
            }
        }
        files.sort();
        let mut examples = Examples::default();
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if !name.ends_with(".json") || name.contains("-as-") || name.contains("other-tenant") {
                continue;
            }
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            examples.add(&name, &event);
        }
        Ok(examples)
    }

    fn add(&mut self, name: &str, event: &Value) {
        if let Some(parameters) = event["pathParameters"].as_object() {
            for (name, value) in parameters {
                if let Some(value) = value.as_str() {
                    self.parameters
                        .entry(name.clone())
                        .or_insert_with(|| value.to_owned());
                }
            }
        }
        let (Some(key), Some(body)) = (event["routeKey"].as_str(), event["body"].as_str()) else {
            return;
        };
        if self.bodies.contains_key(key) {
            return;
        }
        let body = if event["isBase64Encoded"].as_bool() == Some(true) {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(text) => text,
                None => return,
            }
        } else {
            body.to_owned()
        };
        let content_type = event["headers"]["content-type"]
            .as_str()
            .unwrap_or("application/json")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let value = if content_type == "application/json" {
            match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(_) => return,
            }
        } else {
            Value::String(body)
        };
        let summary = name.trim_end_matches(".json").replace('-', " ");
        self.bodies
            .insert(key.to_owned(), (content_type, value, summary));
    }
}

/// `ListTenantProviders` -> `listTenantProviders`.
fn operation_id(route: RouteId) -> String {
    let name = route.name();
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `ListTenantProviders` -> `List tenant providers`.
fn summary(route: RouteId) -> String {
    let mut out = String::new();
    for (i, c) in route.name().chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn tag(route: RouteId) -> &'static str {
    match route.function() {
        Function::ConfigApi => "configuration",
        Function::ConfigResolution => "resolution",
        Function::WizardCompletion => "wizard",
        Function::SendApi => "send",
        Function::DeliveryWebhooks => "provider webhooks",
        Function::PreferenceCentre => "preference centre",
    }
}

fn path_parameter(name: &str, examples: &Examples) -> Value {
    let description = match name {
        "eventId" => "The event (an id of the caller's tenant).",
        "providerId" => "The provider's id (`prv_...`).",
        "category" => "The message category (`invitation`, `reminder`, ...).",
        "channel" => "The channel: `email`, `sms`, `whatsapp`.",
        "endpointId" => "The status webhook endpoint's id.",
        "version" => "The snapshot's or the template's version (1, 2, ...).",
        "eventType" => "The business event's name, as configured in the event's triggers.",
        "messageId" => "The message's id, as the send API returned it.",
        "token" => {
            "The opaque token Herald issued (the provider's webhook URL or the preference link)."
        }
        _ => "",
    };
    let schema = match name {
        "version" => json!({"type": "integer", "minimum": 1}),
        "category" => {
            json!({"type": "string", "enum": crate::domain::Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()})
        }
        "channel" => {
            json!({"type": "string", "enum": crate::domain::Channel::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()})
        }
        _ => json!({"type": "string", "minLength": 1}),
    };
    let mut parameter = json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema});
    if let Some(example) = examples.parameters.get(name) {
        parameter["example"] = match name {
            "version" => example.parse::<u32>().map_or(json!(example), |v| json!(v)),
            _ => json!(example),
        };
    }
    parameter
}

/// A query parameter's schema, by its name (the same name means the same thing on every route).
fn query_schema(name: &str) -> Value {
    let names = |all: Vec<&'static str>| json!({"type": "string", "enum": all});
    match name {
        "limit" => {
            json!({"type": "integer", "minimum": 1, "maximum": crate::http::paging::MAX_LIMIT})
        }
        "status" => names(
            crate::domain::message::MessageStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect(),
        ),
        "channel" => names(Channel::ALL.iter().map(|c| c.as_str()).collect()),
        "category" => names(Category::ALL.iter().map(|c| c.as_str()).collect()),
        "from" | "to" => json!({"type": "string", "format": "date-time"}),
        "format" => names(vec!["json", "csv"]),
        "state" => names(vec!["published", "submitted"]),
        "reviewable" => names(vec!["true", "false"]),
        _ => json!({"type": "string"}),
    }
}

fn path_parameters(path: &str, examples: &Examples) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| path_parameter(name, examples))
        .collect()
}

/// The error responses of a route: one per status, its codes listed and the body's `code`
/// held to them.
fn error_responses(codes: &[ErrorCode], gateway: bool) -> BTreeMap<u16, Value> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        if let Some(status) = code.status() {
            by_status.entry(status).or_default().push(*code);
        }
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let lines: Vec<String> = codes
                .iter()
                .map(|c| format!("- `{}`: {}", c.as_str(), c.description()))
                .collect();
            let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
            let response = json!({
                "description": lines.join("\n"),
                "content": {"application/json": {"schema": {
                    "allOf": [{"$ref": "#/components/schemas/Error"}],
                    "properties": {"error": {"properties": {"code": {"enum": names}}}},
                }}},
            });
            let response = match status {
                // Before any function: API Gateway's JWT authorizer refuses a missing, expired
                // or foreign token with its own body.
                401 if gateway => json!({
                    "description": format!("{}\n- API Gateway's JWT authorizer, before Herald: `{{\"message\": \"Unauthorized\"}}` (no token, or one it does not accept).", response["description"].as_str().unwrap_or_default()),
                    "content": {"application/json": {"schema": {"anyOf": [
                        response["content"]["application/json"]["schema"].clone(),
                        {"$ref": "#/components/schemas/GatewayUnauthorized"},
                    ]}}},
                }),
                429 => {
                    let mut response = response;
                    response["headers"] = json!({"Retry-After": {
                        "description": "Seconds until the quota has room again.",
                        "schema": {"type": "integer", "minimum": 1},
                    }});
                    response
                }
                _ => response,
            };
            (status, response)
        })
        .collect()
}

/// The two schema generators of the document: requests as serde reads them, responses as it
/// writes them (a field with a default is optional in one and always present in the other).
struct Generators {
    requests: SchemaGenerator,
    responses: SchemaGenerator,
}

impl Generators {
    fn new() -> Self {
        let settings = || {
            schemars::generate::SchemaSettings::draft2020_12().with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
        };
        Generators {
            requests: settings().for_deserialize().into_generator(),
            responses: settings().for_serialize().into_generator(),
        }
    }

    /// Every named schema for `components.schemas`. A type whose request and response schemas
    /// differ keeps its name for the response and is `{Name}Input` for requests.
    fn into_components(mut self) -> Map<String, Value> {
        let mut components = self.responses.take_definitions(true);
        crate::resolution::present_credentials_schema(&mut components);
        super::configuration::present_receipts_schema(&mut components);
        let requests = self.requests.take_definitions(true);
        let renamed: Vec<String> = requests
            .iter()
            .filter(|(name, schema)| components.get(*name).is_some_and(|s| s != *schema))
            .map(|(name, _)| name.clone())
            .collect();
        for (name, mut schema) in requests {
            rename_refs(&mut schema, &renamed);
            let name = if renamed.contains(&name) {
                format!("{name}Input")
            } else {
                name
            };
            components.insert(name, schema);
        }
        components
    }
}

/// Points request schemas' `$ref`s at the `{Name}Input` of the renamed types.
fn rename_refs(value: &mut Value, renamed: &[String]) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref")
                && let Some(name) = target.strip_prefix("#/components/schemas/")
                && renamed.iter().any(|r| r == name)
            {
                *target = format!("{target}Input");
            }
            map.values_mut().for_each(|v| rename_refs(v, renamed));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renamed)),
        _ => {}
    }
}

fn path_item(route: RouteId, examples: &Examples, generators: &mut Generators) -> Value {
    let op = operation(route);
    let mut parameters = path_parameters(route.path(), examples);
    for (name, description) in op.query {
        // A query parameter a route cannot do without says so first (`Required. ...`).
        let required = description.starts_with("Required.");
        parameters.push(json!({"name": name, "in": "query", "required": required, "description": description, "schema": query_schema(name)}));
    }
    if op.idempotency != Idempotency::None {
        parameters.push(json!({"$ref": if op.idempotency == Idempotency::Required {
            "#/components/parameters/IdempotencyKeyRequired"
        } else {
            "#/components/parameters/IdempotencyKey"
        }}));
    }
    let mut responses = Map::new();
    for (status, description) in op.ok {
        let response = if *status == 204 {
            json!({"description": description})
        } else if (300..400).contains(status) {
            json!({"description": description, "headers": {"Location": {
                "description": "Where to go next (relative to the request's URL).",
                "required": true,
                "schema": {"type": "string"},
            }}})
        } else {
            let mut content = Map::new();
            match op.response {
                Some(response) => {
                    let schema = response(&mut generators.responses);
                    content.insert("application/json".into(), json!({ "schema": schema }));
                }
                None if op.media.is_empty() => {
                    content.insert("application/json".into(), json!({}));
                }
                None => {}
            }
            for media in op.media {
                content.insert((*media).into(), json!({"schema": {"type": "string"}}));
            }
            json!({"description": description, "content": content})
        };
        responses.insert(status.to_string(), response);
    }
    for (status, response) in error_responses(&error_codes(route, &op), !route.public()) {
        responses.insert(status.to_string(), response);
    }
    let mut operation = json!({
        "operationId": operation_id(route),
        "summary": summary(route),
        "description": op.description,
        "tags": [tag(route)],
        "responses": responses,
        "security": if route.public() { json!([]) } else { json!([{ BEARER: [] }]) },
    });
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    let example = examples.bodies.get(route.key());
    if op.body || example.is_some() {
        let mut content = Map::new();
        let read = op
            .request
            .map(|request| Value::from(request(&mut generators.requests)));
        match example {
            Some((content_type, value, summary)) => {
                let schema = match &read {
                    Some(schema) if content_type == "application/json" => schema.clone(),
                    // Providers' own formats (Twilio's form posts, Meta's and SNS's JSON):
                    // documented by the providers, checked by their signatures.
                    _ if content_type == "application/json" => {
                        json!({"description": "The provider's own format (an object, or a batch of them)."})
                    }
                    _ => json!({"type": "string"}),
                };
                content.insert(
                    content_type.clone(),
                    json!({"schema": schema, "examples": {"sample": {"summary": summary, "value": value}}}),
                );
            }
            None => {
                let schema = read.unwrap_or_else(|| json!({"type": "object"}));
                content.insert("application/json".into(), json!({"schema": schema}));
            }
        }
        operation["requestBody"] = json!({"required": op.body, "content": content});
    }
    operation
}

fn error_schema() -> Value {
    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|c| {
            let mut code = json!({"const": c.as_str(), "description": c.description()});
            if let Some(status) = c.status() {
                code["x-status"] = json!(status);
            }
            code
        })
        .collect();
    json!({
        "ErrorCode": {
            "description": "Every machine-readable error code Herald answers with (x-status: the HTTP status it comes with; codes without one appear only in `problems`).",
            "oneOf": codes,
        },
        "Problem": {
            "type": "object",
            "required": ["code", "field", "message"],
            "properties": {
                "code": {"$ref": "#/components/schemas/ErrorCode"},
                "field": {"type": "string", "description": "Where: a path into the request or the resolved configuration (`templates.invitation.sms.body`)."},
                "message": {"type": "string"},
                "at": {
                    "type": "object",
                    "description": "For a template that does not compile or render: where in its source.",
                    "required": ["line", "column"],
                    "properties": {"line": {"type": "integer", "minimum": 1}, "column": {"type": "integer", "minimum": 1}},
                },
            },
        },
        "GatewayUnauthorized": {
            "type": "object",
            "description": "API Gateway's own answer when its JWT authorizer refuses the request.",
            "required": ["message"],
            "properties": {"message": {"const": "Unauthorized"}},
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"$ref": "#/components/schemas/ErrorCode"},
                    "message": {"type": "string", "description": "For people; never repeats a secret or personal data."},
                    "field": {"type": "string", "description": "The offending field (`recipients[3].to`, `header.Idempotency-Key`, `path.eventId`)."},
                    "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
                },
            }},
        },
    })
}

/// The status webhooks Herald posts to tenants' endpoints, one per event type: the payload
/// (`crate::domain::status_event::StatusEvent`, versioned) and the Standard Webhooks headers.
fn webhooks() -> Map<String, Value> {
    let names = |all: &[&str]| json!(all);
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    let channels: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    let header = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "header", "required": true, "description": description, "schema": schema});
    let parameters = json!([
        header(
            "webhook-id",
            "The event's id (`evt_...`): the same change reported twice carries the same id; drop repeats.",
            json!({"type": "string"})
        ),
        header(
            "webhook-timestamp",
            "Unix seconds when this attempt was signed; refuse it when far from your clock (replays).",
            json!({"type": "string", "pattern": "^[0-9]+$"})
        ),
        header(
            "webhook-signature",
            "`v1,` and the base64 HMAC-SHA256, keyed with the endpoint's secret (the bytes after `whsec_`, base64-decoded), of `{webhook-id}.{webhook-timestamp}.{body}`; several space-separated signatures while a secret is being rotated.",
            json!({"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"})
        ),
    ]);
    let mut hooks = Map::new();
    for kind in StatusEventType::ALL {
        let name = kind.as_str();
        let data = match name.split_once('.') {
            Some(("message", status)) => json!({
                "type": "object",
                "required": ["message_id", "event", "category", "channel", "status"],
                "properties": {
                    "message_id": {"type": "string", "description": "As the send API returned it: correlate by it (no address is ever posted)."},
                    "event": {"type": "string", "description": "The event the message was sent for."},
                    "category": {"type": "string", "enum": names(&categories)},
                    "channel": {"type": "string", "enum": names(&channels)},
                    "status": {"const": status},
                    "reason": {"type": "string", "description": "Why it failed or bounced, in the provider's or Herald's words."},
                    "provider": {"type": "string", "description": "The kind of provider that took it (`twilio`, `ses`, ...)."},
                    "cost": {
                        "type": "object",
                        "required": ["amount_micros", "currency"],
                        "properties": {
                            "amount_micros": {"type": "integer", "description": "Millionths of the currency's unit."},
                            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                        },
                    },
                    "test": {"const": true, "description": "Present (and true) only for a test send from the wizard: not the event's own traffic."},
                },
            }),
            Some(("template", step)) => json!({
                "type": "object",
                "required": ["layer", "category", "channel", "version", "by"],
                "description": format!("A tenant or event template version {step}: read it at `GET .../templates/{{category}}/{{channel}}/versions`."),
                "properties": {
                    "layer": {"type": "string", "enum": ["tenant", "event"]},
                    "event": {"type": "string", "description": "The event, for an event template."},
                    "category": {"type": "string", "enum": names(&categories)},
                    "channel": {"type": "string", "enum": names(&channels)},
                    "version": {"type": "integer", "minimum": 1},
                    "by": {"type": "string", "description": "Who submitted, approved or rejected it (the token's `sub`)."},
                    "reason": {"type": "string", "description": "A rejection's reason."},
                },
            }),
            _ => json!({
                "type": "object",
                "required": ["recipient_key", "channel", "reason"],
                "properties": {
                    "recipient_key": {"type": "string", "description": "The stable, non-reversible key of the recipient (never the address); the lookup route answers it for an address."},
                    "channel": {"type": "string", "enum": names(&channels)},
                    "reason": {"type": "string", "description": "What blocked the recipient (an opt-out keyword, a hard bounce, a complaint)."},
                    "message_id": {"type": "string", "description": "The message whose receipt told Herald, when there was one."},
                },
            }),
        };
        let payload = json!({
            "type": "object",
            "required": ["id", "type", "version", "timestamp", "tenant", "data"],
            "properties": {
                "id": {"type": "string", "description": "As `webhook-id`."},
                "type": {"const": name},
                "version": {"const": STATUS_EVENT_VERSION, "description": "The payload's version: raised when a field changes meaning or goes away (new optional fields do not raise it)."},
                "timestamp": {"type": "string", "format": "date-time", "description": "When the change happened."},
                "tenant": {"type": "string"},
                "data": data,
            },
        });
        hooks.insert(name.to_owned(), json!({"post": {
            "operationId": format!("statusWebhook_{}", name.replace('.', "_")),
            "summary": format!("`{name}`, posted to every active endpoint that subscribed to it"),
            "description": format!("Signed as Standard Webhooks. Answer 2xx within {} seconds to acknowledge; any other answer or none is retried with backoff (at least `Retry-After`), and an endpoint that keeps failing long enough is switched off. Redirects are not followed.", crate::status_webhooks::worker::TIMEOUT.as_secs()),
            "parameters": parameters,
            "requestBody": {"required": true, "content": {"application/json": {"schema": payload}}},
            "responses": {"2XX": {"description": "Received; not posted again."}},
        }}));
    }
    hooks
}

/// The whole document.
pub fn document(examples: &Examples) -> Value {
    let mut generators = Generators::new();
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for route in RouteId::ALL {
        paths.entry(route.path()).or_default().insert(
            route.method().to_ascii_lowercase(),
            path_item(*route, examples, &mut generators),
        );
    }
    let mut schemas = generators.into_components();
    schemas.extend(error_schema().as_object().cloned().unwrap_or_default());
    let idempotency = |required: bool| {
        json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": required,
            "description": "1-255 printable ASCII characters. A repeat with the same key and body answers the first answer and does nothing twice; the same key with another body is 422 `idempotency_key_reused`; while the first is running, 409 `request_in_progress`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
        })
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Herald",
            "version": CONTRACT_VERSION,
            "summary": "Multi-tenant communication platform: configuration, wizard completion, sending, provider webhooks, preference centre.",
            "description": format!("Generated from Herald's route table, handlers' contract entries and error catalogue; do not edit by hand (regenerate with `cargo run -p herald-cli -- openapi > docs/openapi.json`). Request bodies are at most {MAX_BODY_BYTES} bytes. Every error answers `{{\"error\": {{\"code\", \"message\", \"field\"?, \"problems\"?}}}}` with a code of the catalogue (`ErrorCode`)."),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{
            "url": format!("{{apiUrl}}{BASE_PATH}"),
            "description": "The deployed HTTP API (stack output), or the local gateway.",
            "variables": {"apiUrl": {"default": "http://127.0.0.1:3000", "description": "Scheme and host of the API (no trailing slash)."}},
        }],
        "tags": [
            {"name": "configuration", "description": "Providers, templates, brand and settings at the platform, tenant and event layers; webhook endpoints; recipients."},
            {"name": "resolution", "description": "The resolved configuration with provenance."},
            {"name": "wizard", "description": "Completion and snapshots."},
            {"name": "send", "description": "Messages and business events."},
            {"name": "provider webhooks", "description": "Delivery receipts and inbound messages from providers, authenticated by their signatures."},
            {"name": "preference centre", "description": "The recipient's own page, behind a signed link."},
        ],
        "paths": paths,
        "webhooks": webhooks(),
        "components": {
            "securitySchemes": {BEARER: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": format!("A JWT verified by API Gateway's JWT authorizer (signature against the issuer's JWKS, `iss`, `aud`, `exp`, `nbf`). Herald reads three claims: `sub` (the caller, recorded in the audit log), `{ROLE_CLAIM}` (`platform_admin`, `tenant_admin` or `event_manager`) and `{TENANT_CLAIM}` (the caller's tenant id; only a platform admin may have none). A token without them is 401 `unauthenticated`; a role that may not do something is 403 `forbidden`."),
            }},
            "parameters": {
                "IdempotencyKey": idempotency(false),
                "IdempotencyKeyRequired": idempotency(true),
            },
            "schemas": schemas,
        },
    })
}

/// The document as committed in `docs/openapi.json`: pretty-printed.
pub fn render(examples: &Examples) -> String {
    serde_json::to_string_pretty(&document(examples)).unwrap_or_default()
}
