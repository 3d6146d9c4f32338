//! The send API tenant systems call: a single message, a batch (per-recipient variables), or a
//! business event mapped to a category and channels by the event's active snapshot. Every
//! request carries an `Idempotency-Key`. All recipients are parsed and rendered before anything
//! is written, so a bad recipient or a missing variable is a 400 naming it and nothing is sent;
//! Recipients who opted out of a channel or are suppressed on it, who withdrew consent, or who
//! opted out of a marketing category or of marketing on a channel in their preferences are
//! refused with the reason (a single send answers 422; a batch or trigger sends the rest and
//! lists the refused). A message sent inside its recipient's quiet hours is kept, with
//! `not_before` at the end of the window. Then one record per message (state `accepted`) and
//! one publish to the fan-out topic.

use lambda_http::Request;
use serde::Deserialize;
use time::OffsetDateTime;

use super::routes::RouteId;
use crate::app::App;
use crate::dispatch::QueuedMessage;
use crate::domain::ErrorCode;
use crate::domain::audit::AuditEntry;
use crate::domain::cost::Money;
use crate::domain::identity::Action;
use crate::domain::locale::{LocaleTag, TimeZoneName};
use crate::domain::message::{Attempt, ListUnsubscribe};
use crate::domain::message::{
    Message, MessageContent, MessageFilter, MessageId, MessagePosition, MessageStatus, NewMessage,
};
use crate::domain::preferences::Verdict;
use crate::domain::provider::ProviderKind;
use crate::domain::recipient::{Recipient, RecipientKeyring};
use crate::domain::resolution::EventSettings;
use crate::domain::routing::provider_order;
use crate::domain::snapshot::{Problem, Snapshot};
use crate::domain::tenant_settings::message_expiry;
use crate::domain::validation::{BoundedList, FieldError};
use crate::domain::variables::Variables;
use crate::domain::{Category, CategoryClass, Channel, EventId, ProviderId, TenantId};
use crate::http::{self, ApiError, ApiResult, Paging, paging};
use crate::preference_links::Unsubscribe;
use crate::recipient_gate::{self, Asked};
use crate::rendering::{Audience, Template, TemplateKey};

/// Most recipients one request may carry.
pub const MAX_RECIPIENTS: usize = 500;

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let route = http::route(&request);
    let Some(id) = RouteId::from_key(&route.0) else {
        return Err(ApiError::NoRoute(route.0));
    };
    match id {
        RouteId::SendMessage => send(app, &request, Kind::Single).await,
        RouteId::SendBatch => send(app, &request, Kind::Batch).await,
        RouteId::TriggerBusinessEvent => send(app, &request, Kind::Trigger).await,
        RouteId::GetMessage => get(app, &request).await,
        RouteId::ListMessages => list(app, &request).await,
        RouteId::TestEventTemplate => super::test_send::handle(app, &request).await,
        _ => Err(ApiError::NoRoute(route.0)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Single,
    Batch,
    Trigger,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SingleInput {
    category: Category,
    channel: Channel,
    to: String,
    #[serde(default)]
    variables: Variables,
    /// The recipient's language (BCP 47: `en`, `fr`, `pt-BR`) for formatting; the event's
    /// default when absent.
    #[serde(default)]
    locale: Option<LocaleTag>,
    /// The recipient's IANA time zone (`Africa/Lusaka`); the event's when absent.
    #[serde(default)]
    time_zone: Option<TimeZoneName>,
}

/// Whom a message speaks to, for the formatting filters (`date`, `datetime`, `number`,
/// `money`), as a send gives it: the event's defaults where absent.
#[derive(Debug, Default, Clone)]
pub(super) struct AudienceInput {
    pub(super) locale: Option<LocaleTag>,
    pub(super) time_zone: Option<TimeZoneName>,
}

impl AudienceInput {
    /// The audience, falling back to the event's default locale and time zone, with the
    /// recipient's preference page when the message carries unsubscribe links.
    pub(super) fn or_event(
        &self,
        settings: &EventSettings,
        links: Option<&ListUnsubscribe>,
    ) -> Audience {
        Audience {
            unsubscribe: links.map(|l| l.page.clone()),
            locale: self
                .locale
                .as_ref()
                .or(settings.default_locale.as_ref())
                .map(|l| l.as_str().to_owned()),
            time_zone: self
                .time_zone
                .as_ref()
                .or(settings.time_zone.as_ref())
                .map(|z| z.as_str().to_owned()),
        }
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchInput {
    category: Category,
    channel: Channel,
    recipients: BoundedList<RecipientInput, MAX_RECIPIENTS>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BatchRecipient")]
struct RecipientInput {
    to: String,
    #[serde(default)]
    variables: Variables,
    /// The recipient's language (BCP 47: `en`, `fr`, `pt-BR`) for formatting; the event's
    /// default when absent.
    #[serde(default)]
    locale: Option<LocaleTag>,
    /// The recipient's IANA time zone (`Africa/Lusaka`); the event's when absent.
    #[serde(default)]
    time_zone: Option<TimeZoneName>,
}

/// A business event: each recipient names an address per channel the trigger sends on.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerInput {
    recipients: BoundedList<TriggerRecipient, MAX_RECIPIENTS>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TriggerRecipient {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    variables: Variables,
    /// The recipient's language (BCP 47: `en`, `fr`, `pt-BR`) for formatting; the event's
    /// default when absent.
    #[serde(default)]
    locale: Option<LocaleTag>,
    /// The recipient's IANA time zone (`Africa/Lusaka`); the event's when absent.
    #[serde(default)]
    time_zone: Option<TimeZoneName>,
}

/// One message to render: where it goes, on what, with which variables, and where in the
/// request its recipient is (`` for a single send, `recipients[3]` in a batch).
struct Planned {
    category: Category,
    channel: Channel,
    to: String,
    variables: Variables,
    audience: AudienceInput,
    base: String,
    address_field: &'static str,
    /// Single and batch sends name one template, so an unknown variable is a typo; a business
    /// event's payload feeds several templates, each taking what it declares.
    strict_variables: bool,
}

impl Planned {
    fn field(&self, name: &str) -> String {
        if self.base.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.base)
        }
    }
}

async fn send(app: &App, request: &Request, kind: Kind) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::WriteEvent)?.clone();
    let event: EventId = http::path_param(request, "eventId")?;
    let key = http::idempotency_key(request)?
        .ok_or_else(|| FieldError::required("header.Idempotency-Key"))?;
    let scope = format!("send#{tenant}#{event}");
    let request_id = http::request_id(request);
    super::idempotency::once(app, request, &scope, true, || async {
        let snapshot = active_snapshot(app, &tenant, &event).await?;
        let (planned, trigger) = plan(request, kind, &snapshot)?;
        let keyring = app
            .recipient_keys
            .keyring()
            .await
            .map_err(ApiError::Internal)?;
        let unsubscribe = unsubscribe(
            app,
            request,
            planned.iter().map(|p| (p.category, p.channel)),
        )
        .await?;
        let rendered = render_all(
            app,
            &keyring,
            unsubscribe.as_ref(),
            &tenant,
            &event,
            &snapshot,
            planned,
            &key,
            trigger.as_deref(),
            &request_id,
        )?;
        let (messages, refused) = refuse_blocked(app, &tenant, rendered).await?;
        if kind == Kind::Single
            && let Some(r) = refused.first()
        {
            return Err(ApiError::Unprocessable {
                code: r.code,
                message: r.message.to_owned(),
                problems: vec![Problem::new(r.code, r.field.clone(), r.message)],
            });
        }
        // The tenant's retention becomes each record's TTL (remembered per container a minute).
        let retention_days = app.retention.days(&tenant).await?;
        let messages: Vec<Message> = messages
            .into_iter()
            .map(|mut m| {
                m.expires_at = Some(message_expiry(m.created_at, retention_days));
                m
            })
            .collect();
        // Each record with its audit entry, by the caller.
        let audited: Vec<(Message, AuditEntry)> = messages
            .iter()
            .map(|m| {
                let audit =
                    AuditEntry::message_accepted(&caller.subject, caller.role, m, &request_id);
                (m.clone(), audit)
            })
            .collect();
        let created = app.messages.create_many(&audited).await?;
        // Messages that already existed (a retried request) are published again: dispatch is
        // idempotent per message id, and an earlier attempt may have died before publishing.
        let queued: Vec<_> = messages
            .iter()
            .map(|m| (QueuedMessage::of(m), m.channel))
            .collect();
        app.fanout
            .publish(&queued)
            .await
            .map_err(ApiError::Internal)?;
        tracing::info!(
            messages = messages.len(),
            new = created.iter().filter(|c| **c).count(),
            "messages accepted"
        );
        let body = SendAnswer {
            messages: messages.iter().map(Accepted::of).collect(),
            refused: refused.iter().map(RefusedView::of).collect(),
        };
        Ok((
            202,
            serde_json::to_value(body).map_err(|e| ApiError::Internal(e.into()))?,
        ))
    })
    .await
}

async fn active_snapshot(
    app: &App,
    tenant: &TenantId,
    event: &EventId,
) -> Result<Snapshot, ApiError> {
    let activation = app
        .snapshots
        .activation(tenant, event)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    app.snapshots
        .snapshot(tenant, event, activation.version)
        .await?
        .ok_or(ApiError::NotFound("event"))
}

fn plan(
    request: &Request,
    kind: Kind,
    snapshot: &Snapshot,
) -> Result<(Vec<Planned>, Option<String>), ApiError> {
    let planned = match kind {
        Kind::Single => {
            let input: SingleInput = http::json_body(request)?;
            vec![Planned {
                category: input.category,
                channel: input.channel,
                to: input.to,
                variables: input.variables,
                audience: AudienceInput {
                    locale: input.locale,
                    time_zone: input.time_zone,
                },
                base: String::new(),
                address_field: "to",
                strict_variables: true,
            }]
        }
        Kind::Batch => {
            let input: BatchInput = http::json_body(request)?;
            check_count(input.recipients.len())?;
            input
                .recipients
                .into_iter()
                .enumerate()
                .map(|(i, r)| Planned {
                    category: input.category,
                    channel: input.channel,
                    to: r.to,
                    variables: r.variables,
                    audience: AudienceInput {
                        locale: r.locale,
                        time_zone: r.time_zone,
                    },
                    base: format!("recipients[{i}]"),
                    address_field: "to",
                    strict_variables: true,
                })
                .collect()
        }
        Kind::Trigger => {
            let event_type: String = http::path_param(request, "eventType")?;
            let route = snapshot
                .configuration
                .settings
                .triggers
                .get(&event_type)
                .ok_or_else(|| {
                    // The name is the caller's text: not repeated (it may be anything, of any
                    // length); the event's triggers are listed in its settings.
                    FieldError::new(
                        ErrorCode::UnknownTrigger,
                        "path.eventType",
                        "the event has no trigger of that name",
                    )
                })?
                .clone();
            let input: TriggerInput = http::json_body(request)?;
            check_count(input.recipients.len())?;
            let mut planned = Vec::new();
            for (i, r) in input.recipients.into_iter().enumerate() {
                for &channel in &route.channels {
                    let (address, name) = match channel {
                        Channel::Email => (r.email.clone(), "email"),
                        _ => (r.phone.clone(), "phone"),
                    };
                    let base = format!("recipients[{i}]");
                    let to =
                        address.ok_or_else(|| FieldError::required(format!("{base}.{name}")))?;
                    planned.push(Planned {
                        category: route.category,
                        channel,
                        to,
                        variables: r.variables.clone(),
                        audience: AudienceInput {
                            locale: r.locale.clone(),
                            time_zone: r.time_zone.clone(),
                        },
                        base,
                        address_field: name,
                        strict_variables: false,
                    });
                }
            }
            return Ok((planned, Some(event_type)));
        }
    };
    Ok((planned, None))
}

fn check_count(n: usize) -> Result<(), FieldError> {
    match n {
        0 => Err(FieldError::required("recipients")),
        n if n > MAX_RECIPIENTS => Err(FieldError::new(
            ErrorCode::TooMany,
            "recipients",
            format!("at most {MAX_RECIPIENTS} recipients per request"),
        )),
        _ => Ok(()),
    }
}

/// The unsubscribe links' maker, when the request sends marketing email (the only messages
/// that carry them).
/// Shared with test sends, which carry the links a real message would.
pub(super) async fn unsubscribe(
    app: &App,
    request: &Request,
    mut slots: impl Iterator<Item = (Category, Channel)>,
) -> Result<Option<Unsubscribe>, ApiError> {
    if !slots.any(|(category, channel)| needs_unsubscribe(category, channel)) {
        return Ok(None);
    }
    let keys = app.link_keys.keys().await.map_err(ApiError::Internal)?;
    let base = http::public_base_url(request, app.public_url.as_deref());
    Ok(Some(Unsubscribe::new(keys, base)))
}

/// Marketing email carries `List-Unsubscribe` with one-click (RFC 8058); transactional
/// categories, and other channels (SMS has its STOP line), do not.
fn needs_unsubscribe(category: Category, channel: Channel) -> bool {
    channel == Channel::Email && category.class() == CategoryClass::Marketing
}

#[allow(clippy::too_many_arguments)]
fn render_all(
    app: &App,
    keyring: &RecipientKeyring,
    unsubscribe: Option<&Unsubscribe>,
    tenant: &TenantId,
    event: &EventId,
    snapshot: &Snapshot,
    planned: Vec<Planned>,
    key: &str,
    trigger: Option<&str>,
    request_id: &str,
) -> Result<Vec<(Message, String)>, ApiError> {
    let cfg = &snapshot.configuration;
    let brand = cfg.brand_values();
    let now = OffsetDateTime::now_utc();
    let mut messages = Vec::with_capacity(planned.len());
    for (index, p) in planned.into_iter().enumerate() {
        if !cfg.settings.channels.contains(&p.channel)
            || !cfg.settings.categories.contains(&p.category)
        {
            return Err(FieldError::new(
                ErrorCode::NotInUse,
                "category",
                format!(
                    "{} on {} is not configured for this event",
                    p.category, p.channel
                ),
            )
            .into());
        }
        if p.channel == Channel::InApp {
            return Err(FieldError::new(
                ErrorCode::NotSupported,
                "channel",
                "in-app delivery is not available yet",
            )
            .into());
        }
        let template = cfg.template(p.category, p.channel).ok_or_else(|| {
            FieldError::new(
                ErrorCode::NotInUse,
                "category",
                format!("no {} template for {}", p.channel, p.category),
            )
        })?;
        let recipient = Recipient::parse(p.channel, &p.to)
            .map_err(|m| FieldError::invalid(p.field(p.address_field), m))?;
        template.content.check_variables(
            &p.variables,
            &p.field("variables"),
            p.strict_variables,
        )?;
        let refused =
            |e| super::templates::render_refused(p.category, p.channel, p.field("variables"), e);
        let compiled = app
            .compiled_templates
            .get_or_compile(
                &TemplateKey {
                    tenant: tenant.clone(),
                    event: event.clone(),
                    snapshot_version: snapshot.version,
                    category: p.category,
                    channel: p.channel,
                },
                || {
                    Template::compile(
                        p.channel,
                        p.category.class().into(),
                        &template.content,
                        &brand,
                    )
                },
            )
            .map_err(refused)?;
        let recipient_key = recipient.key(keyring, tenant.as_str());
        let list_unsubscribe = unsubscribe
            .filter(|_| needs_unsubscribe(p.category, p.channel))
            .map(|u| u.links(tenant, &recipient_key, now));
        let audience = p
            .audience
            .or_event(&cfg.settings, list_unsubscribe.as_ref());
        let rendered = compiled
            .render_message(&p.variables, &audience)
            .map_err(refused)?;
        let segments = rendered.segments.map(|s| s.segments);
        let estimated_cost = cfg
            .channels
            .get(&p.channel)
            .and_then(|c| {
                provider_order(c, &recipient_key)
                    .first()
                    .map(|first| first.kind)
            })
            .and_then(|kind| {
                app.rates
                    .estimate(kind, p.channel, recipient.as_str(), segments.unwrap_or(1))
            });
        let field = p.field(p.address_field);
        let message = Message {
            trigger: trigger.map(str::to_owned),
            list_unsubscribe,
            ..Message::accepted(NewMessage {
                id: MessageId::derive(tenant, event.as_str(), key, index),
                tenant: tenant.clone(),
                event: event.clone(),
                snapshot_version: snapshot.version,
                category: p.category,
                channel: p.channel,
                recipient,
                recipient_key,
                content: MessageContent {
                    subject: rendered.subject,
                    html: rendered.html,
                    text: rendered.text,
                    segments,
                    whatsapp_template: rendered.whatsapp_template,
                },
                estimated_cost,
                created_at: now,
                request_id: request_id.to_owned(),
            })
        };
        messages.push((message, field));
    }
    Ok(messages)
}

/// The answer to a send, a batch or a trigger: the messages accepted and the recipients refused.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct SendAnswer<'a> {
    messages: Vec<Accepted<'a>>,
    refused: Vec<RefusedView<'a>>,
}

/// A message as the send's answer shows it.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Accepted<'a> {
    id: &'a MessageId,
    channel: Channel,
    category: Category,
    status: MessageStatus,
    /// SMS segments (GSM-7 or UCS-2), for SMS and WhatsApp.
    segments: Option<u32>,
    estimated_cost: Option<&'a Money>,
    /// Held until then: the end of the recipient's quiet hours.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    not_before: Option<OffsetDateTime>,
}

impl<'a> Accepted<'a> {
    fn of(m: &'a Message) -> Self {
        Accepted {
            id: &m.id,
            channel: m.channel,
            category: m.category,
            status: m.status,
            segments: m.content.segments,
            estimated_cost: m.estimated_cost.as_ref(),
            not_before: m.not_before,
        }
    }
}

/// A recipient not sent to, and why (`field` names it in the request).
#[derive(serde::Serialize, schemars::JsonSchema)]
struct RefusedView<'a> {
    field: &'a str,
    channel: Channel,
    category: Category,
    code: ErrorCode,
    message: &'a str,
}

impl<'a> RefusedView<'a> {
    fn of(r: &'a Refused) -> Self {
        RefusedView {
            field: &r.field,
            channel: r.channel,
            category: r.category,
            code: r.code,
            message: r.message,
        }
    }
}

/// One message as `GET .../messages/{messageId}` shows it: what happened to it, never its
/// address or content.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct MessageView<'a> {
    id: &'a MessageId,
    channel: Channel,
    category: Category,
    status: MessageStatus,
    status_reason: Option<&'a str>,
    provider: Option<&'a ProviderId>,
    provider_kind: Option<ProviderKind>,
    provider_message_id: Option<&'a str>,
    segments: Option<u32>,
    estimated_cost: Option<&'a Money>,
    cost: Option<&'a Money>,
    attempts: &'a [Attempt],
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<crate::domain::validation::Rfc3339Time>")]
    not_before: Option<OffsetDateTime>,
}

impl<'a> MessageView<'a> {
    fn of(m: &'a Message) -> Self {
        MessageView {
            id: &m.id,
            channel: m.channel,
            category: m.category,
            status: m.status,
            status_reason: m.status_reason.as_deref(),
            provider: m.provider.as_ref(),
            provider_kind: m.provider_kind,
            provider_message_id: m.provider_message_id.as_deref(),
            segments: m.content.segments,
            estimated_cost: m.estimated_cost.as_ref(),
            cost: m.cost.as_ref(),
            attempts: &m.attempts,
            created_at: m.created_at,
            sent_at: m.sent_at,
            not_before: m.not_before,
        }
    }
}

/// A message not sent, and why: its recipient opted out of or is suppressed on its channel
/// (receipts), withdrew consent to it, or opted out of it in their preferences.
struct Refused {
    field: String,
    channel: Channel,
    category: Category,
    code: ErrorCode,
    message: &'static str,
}

/// Splits rendered messages into those to send and those Herald must not send, and holds those
/// that fall in their recipient's quiet hours until the window ends (`not_before`). One batched
/// read for the whole request ([`recipient_gate`]).
async fn refuse_blocked(
    app: &App,
    tenant: &TenantId,
    rendered: Vec<(Message, String)>,
) -> Result<(Vec<Message>, Vec<Refused>), ApiError> {
    let asked: Vec<Asked<'_>> = rendered
        .iter()
        .map(|(m, _)| Asked {
            channel: m.channel,
            category: m.category,
            recipient_key: &m.recipient_key,
            at: m.created_at,
        })
        .collect();
    let verdicts = recipient_gate::verdicts(app.consents.as_ref(), tenant, &asked).await?;
    let mut send = Vec::with_capacity(rendered.len());
    let mut refused = Vec::new();
    for ((mut message, field), verdict) in rendered.into_iter().zip(verdicts) {
        match verdict {
            Verdict::Refuse(why) => refused.push(Refused {
                field,
                channel: message.channel,
                category: message.category,
                code: why.code(),
                message: why.message(),
            }),
            Verdict::Defer(until) => {
                message.not_before = Some(until);
                send.push(message);
            }
            Verdict::Send => send.push(message),
        }
    }
    if !refused.is_empty() {
        tracing::info!(
            refused = refused.len(),
            "recipients refused (opted out, suppressed or without consent)"
        );
    }
    Ok((send, refused))
}

async fn get(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::ReadEvent)?;
    let event: EventId = http::path_param(request, "eventId")?;
    let id: MessageId =
        http::path_param(request, "messageId").map_err(|_| ApiError::NotFound("message"))?;
    let stored = app
        .messages
        .message(&id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    let m = stored.message;
    if &m.tenant != tenant || m.event != event {
        return Err(ApiError::NotFound("message"));
    }
    http::respond(200, &MessageView::of(&m))
}

/// An event's messages, newest first, filtered by `status`, `channel`, `category` and creation
/// time (`from` inclusive, `to` exclusive, RFC 3339), paged like every list.
async fn list(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::ReadEvent)?;
    let event: EventId = http::path_param(request, "eventId")?;
    let filter = message_filter(request)?;
    let paging = Paging::from_request(
        request,
        &format!("event-messages#{tenant}#{event}#{}", filter.describe()),
    )?;
    let after = paging
        .after
        .as_deref()
        .map(|p| MessagePosition::parse(p).ok_or_else(paging::invalid_cursor))
        .transpose()?;
    let (items, next) = app
        .messages
        .event_messages(tenant, &event, &filter, after.as_ref(), paging.limit)
        .await?;
    paging.respond(&items, next.as_ref().map(MessagePosition::as_str))
}

fn message_filter(request: &Request) -> Result<MessageFilter, ApiError> {
    let query = |name: &str| http::query_param(request, name);
    let status = query("status")
        .map(|s| {
            serde_json::from_value::<MessageStatus>(serde_json::Value::String(s)).map_err(|_| {
                FieldError::invalid(
                    "query.status",
                    "status is one of accepted, sent, delivered, read, failed, bounced, complained",
                )
            })
        })
        .transpose()?;
    let channel = query("channel")
        .map(|c| {
            c.parse::<Channel>()
                .map_err(|_| FieldError::invalid("query.channel", "not a channel"))
        })
        .transpose()?;
    let category = query("category")
        .map(|c| {
            c.parse::<Category>()
                .map_err(|_| FieldError::invalid("query.category", "not a message category"))
        })
        .transpose()?;
    let time = |name: &str| {
        query(name)
            .map(|t| {
                crate::domain::validation::utc_time(&t).ok_or_else(|| {
                    FieldError::invalid(
                        format!("query.{name}"),
                        "not an RFC 3339 time (2026-12-07T10:00:00Z)",
                    )
                })
            })
            .transpose()
    };
    let (from, to) = (time("from")?, time("to")?);
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(FieldError::new(
            ErrorCode::InvalidPeriod,
            "query.to",
            "to must be after from",
        )
        .into());
    }
    Ok(MessageFilter {
        status,
        channel,
        category,
        from,
        to,
    })
}
