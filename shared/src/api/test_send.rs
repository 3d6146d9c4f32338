//! Test send for the wizard: `POST /events/{eventId}/templates/{category}/{channel}/test`
//! sends one real message of the event's template to an address the caller gives, rendered with
//! the given variables over the template's samples, through the event's providers: those of its
//! active snapshot, or, before the wizard completes, its draft configuration resolved as
//! completion would. It is sent at once (not queued) through dispatch's provider chain, so the
//! answer says whether a provider took it. The record is marked `test`, listed with the event's
//! messages, and audited (`message.test_accepted`, then its outcome). The recipient gate
//! applies as to any message (opt-outs, suppressions, consent, preferences, quiet hours).
//!
//! Each tenant may make [`App::test_send_hourly_quota`] test sends per clock hour (UTC),
//! counted atomically before anything is written; beyond it the answer is 429
//! `quota_exceeded` with `Retry-After` (seconds to the next hour) and nothing is sent or written.

use lambda_http::Request;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::app::App;
use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::domain::ErrorCode;
use crate::domain::audit::AuditEntry;
use crate::domain::identity::Action;
use crate::domain::locale::{LocaleTag, TimeZoneName};
use crate::domain::message::{Message, MessageContent, MessageId, MessageListing, NewMessage};
use crate::domain::preferences::Verdict;
use crate::domain::recipient::Recipient;
use crate::domain::resolution::ResolvedConfiguration;
use crate::domain::routing::provider_order;
use crate::domain::snapshot::Problem;
use crate::domain::tenant_settings::message_expiry;
use crate::domain::validation::FieldError;
use crate::domain::variables::Variables;
use crate::domain::{Category, Channel, EventId, TenantId};
use crate::http::{self, ApiError, ApiResult};
use crate::recipient_gate::{self, Asked};
use crate::rendering::Template;
use crate::resolution::resolve_event;

pub const ROUTE: &str = "POST /events/{eventId}/templates/{category}/{channel}/test";

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TestInput {
    to: String,
    /// Values that replace the template's samples.
    #[serde(default)]
    variables: Variables,
    /// The language to format in; the event's default when absent.
    #[serde(default)]
    locale: Option<LocaleTag>,
    /// The time zone to show times in; the event's when absent.
    #[serde(default)]
    time_zone: Option<TimeZoneName>,
}

/// The quota window a time falls in: its counter key and the seconds left until it ends.
pub fn hourly_window(tenant: &TenantId, now: OffsetDateTime) -> (String, OffsetDateTime, u64) {
    let now = now.to_offset(time::UtcOffset::UTC);
    let start = now
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(now);
    let end = start + time::Duration::hours(1);
    let key = format!(
        "quota#test-send#{tenant}#{:04}-{:02}-{:02}T{:02}",
        start.year(),
        u8::from(start.month()),
        start.day(),
        start.hour()
    );
    let left = (end - now).whole_seconds().max(1);
    (key, end, u64::try_from(left).unwrap_or(1))
}

pub async fn handle(app: &App, request: &Request) -> ApiResult {
    let caller = http::caller(request)?;
    let tenant = caller.tenant_for(Action::WriteEvent)?.clone();
    let event: EventId = http::path_param(request, "eventId")?;
    let category: Category = http::path_param(request, "category")?;
    let channel: Channel = http::path_param(request, "channel")?;
    if channel == Channel::InApp {
        return Err(FieldError::new(
            ErrorCode::NotSupported,
            "path.channel",
            "in-app delivery is not available yet",
        )
        .into());
    }
    let input: TestInput = http::json_body(request)?;
    let recipient =
        Recipient::parse(channel, &input.to).map_err(|m| FieldError::invalid("to", m))?;
    let request_id = http::request_id(request);

    let (configuration, snapshot_version) = configuration(app, &tenant, &event).await?;
    let template = configuration.template(category, channel).ok_or_else(|| {
        let message = format!("the event has no {channel} template for {category} at any layer");
        ApiError::Unprocessable {
            code: ErrorCode::ConfigurationInvalid,
            problems: vec![Problem::new(
                ErrorCode::TemplateMissing,
                format!("templates.{category}.{channel}"),
                message.clone(),
            )],
            message,
        }
    })?;
    template
        .content
        .check_variables(&input.variables, "variables", true)?;
    let mut variables = template.content.samples();
    variables.extend(input.variables.into_inner());
    let recipient_key = app
        .recipient_key(&tenant, &recipient)
        .await
        .map_err(ApiError::Internal)?;
    let now = OffsetDateTime::now_utc();
    // A marketing email's test carries its unsubscribe links, as the real ones will.
    let list_unsubscribe =
        super::send::unsubscribe(app, request, std::iter::once((category, channel)))
            .await?
            .map(|u| u.links(&tenant, &recipient_key, now));
    let audience = super::send::AudienceInput {
        locale: input.locale,
        time_zone: input.time_zone,
    }
    .or_event(&configuration.settings, list_unsubscribe.as_ref());
    let rendered = Template::compile(
        channel,
        category.class().into(),
        &template.content,
        &configuration.brand_values(),
    )
    .and_then(|t| t.render_message(&variables, &audience))
    .map_err(|e| super::templates::render_refused(category, channel, "variables".to_owned(), e))?;
    if configuration
        .channels
        .get(&channel)
        .is_none_or(|c| c.active().next().is_none())
    {
        return Err(ApiError::Unprocessable {
            code: ErrorCode::ConfigurationInvalid,
            message: format!("the event has no active {channel} provider"),
            problems: vec![Problem::new(
                ErrorCode::ProviderMissing,
                format!("providers.{channel}"),
                format!("no active {channel} provider"),
            )],
        });
    }

    let asked = Asked {
        channel,
        category,
        recipient_key: &recipient_key,
        at: now,
    };
    let verdict = recipient_gate::verdicts(app.consents.as_ref(), &tenant, &[asked])
        .await?
        .into_iter()
        .next();
    match verdict {
        Some(Verdict::Send) => {}
        Some(Verdict::Refuse(why)) => {
            return Err(ApiError::Unprocessable {
                code: why.code(),
                message: why.message().to_owned(),
                problems: vec![Problem::new(why.code(), "to", why.message())],
            });
        }
        Some(Verdict::Defer(_)) => {
            let message =
                "the recipient is in their quiet hours; a test is sent at once or not at all";
            return Err(ApiError::Unprocessable {
                code: ErrorCode::QuietHours,
                message: message.to_owned(),
                problems: vec![Problem::new(ErrorCode::QuietHours, "to", message)],
            });
        }
        None => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "the recipient gate gave no verdict"
            )));
        }
    }

    // Counted last, once nothing but sending is left: a refused request uses no test send.
    let (key, window_end, retry_after_seconds) = hourly_window(&tenant, now);
    if !app
        .quotas
        .take(&key, app.test_send_hourly_quota, window_end)
        .await?
    {
        tracing::info!(
            quota = app.test_send_hourly_quota,
            "test send quota used up; nothing sent"
        );
        return Err(ApiError::TooManyRequests {
            retry_after_seconds,
        });
    }

    let segments = rendered.segments.map(|s| s.segments);
    let estimated_cost = configuration
        .channels
        .get(&channel)
        .and_then(|c| provider_order(c, &recipient_key).first().map(|p| p.kind))
        .and_then(|kind| {
            app.rates
                .estimate(kind, channel, recipient.as_str(), segments.unwrap_or(1))
        });
    let retention_days = app.retention.days(&tenant).await?;
    let message = Message {
        expires_at: Some(message_expiry(now, retention_days)),
        test: true,
        list_unsubscribe,
        ..Message::accepted(NewMessage {
            id: MessageId::derive(&tenant, "test", &ulid::Ulid::new().to_string(), 0),
            tenant: tenant.clone(),
            event: event.clone(),
            snapshot_version,
            category,
            channel,
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
            request_id: request_id.clone(),
        })
    };
    let audit = AuditEntry::message_accepted(&caller.subject, caller.role, &message, &request_id);
    app.messages.create(&message, &audit).await?;
    let dispatcher = Dispatcher::from_app(app, DispatchConfig::default());
    let sent = dispatcher
        .send_test(&message, &configuration)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the test message was taken")))?;
    tracing::info!(
        status = sent.status.as_str(),
        draft = snapshot_version == 0,
        "test message sent"
    );
    http::respond(
        200,
        &TestSent {
            message: MessageListing::from(&sent),
            configuration: if snapshot_version == 0 {
                "draft".to_owned()
            } else {
                format!("snapshot {snapshot_version}")
            },
        },
    )
}

/// The answer to a test send: the message as the event's message list shows it, and which
/// configuration sent it (`draft` or `snapshot N`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct TestSent {
    message: MessageListing,
    configuration: String,
}

/// The event's active snapshot's configuration and version, or its draft configuration
/// (version 0) when no snapshot is active yet; 404 when the tenant has no such event.
async fn configuration(
    app: &App,
    tenant: &TenantId,
    event: &EventId,
) -> Result<(ResolvedConfiguration, u32), ApiError> {
    if let Some(activation) = app.snapshots.activation(tenant, event).await?
        && let Some(snapshot) = app
            .snapshots
            .snapshot(tenant, event, activation.version)
            .await?
    {
        return Ok((snapshot.configuration, snapshot.version));
    }
    let draft = resolve_event(
        app.providers.as_ref(),
        app.templates.as_ref(),
        tenant,
        event,
    )
    .await?
    .ok_or(ApiError::NotFound("event"))?;
    Ok((draft, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_are_clock_hours_with_the_seconds_left() {
        let tenant = TenantId::parse("acme").expect("tenant");
        let (key, end, left) = hourly_window(&tenant, datetime!(2026-12-07 17:59:30 UTC));
        assert_eq!(key, "quota#test-send#acme#2026-12-07T17");
        assert_eq!(end, datetime!(2026-12-07 18:00 UTC));
        assert_eq!(left, 30);
        let (next, _, left) = hourly_window(&tenant, datetime!(2026-12-07 20:00:00 +02:00));
        assert_eq!(next, "quota#test-send#acme#2026-12-07T18");
        assert_eq!(left, 3600);
    }
}
