//! Acting on what a provider reported, once its request is authenticated and parsed: receipts
//! move messages forward through the status machine (never back), hard bounces and complaints
//! suppress the recipient, opt-out keywords opt the sender out of the channel, and every change
//! is told to the tenant's status webhooks. Everything here is idempotent: providers retry, and
//! a retried request changes nothing twice. A change the store refuses for good (too large to
//! store: a provider's reason past the record's room) would be refused on every retry, so that
//! notification is acknowledged, logged and counted instead.

use time::OffsetDateTime;

use crate::app::App;
use crate::credentials::OpenCredentials;
use crate::domain::audit::AuditEntry;
use crate::domain::cost::{Currency, Money};
use crate::domain::message::{Message, MessageStatus, StatusReport};
use crate::domain::provider::ProviderConfig;
use crate::domain::receipt::{InboundMessage, Notification, Receipt};
use crate::domain::recipient::Recipient;
use crate::domain::status_event::{RecipientData, StatusEvent, StatusEventType};
use crate::domain::suppression::{Block, BlockKind};
use crate::domain::{Channel, TenantId};
use crate::store::StoreError;

/// The actor audit entries name for changes receipts make.
const ACTOR: &str = "herald:delivery-webhooks";

/// What one webhook request amounted to; logged as one line and returned to the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Applied {
    /// Receipts that moved a message forward.
    pub advanced: u32,
    /// Receipts a message was already at or past (duplicates, late arrivals).
    pub unchanged: u32,
    /// Receipts for messages Herald does not know (or another tenant's): acknowledged so the
    /// provider stops retrying, and counted.
    pub unknown: u32,
    pub opted_out: u32,
    pub opted_in: u32,
    pub suppressed: u32,
    /// Authentic but nothing to act on (replies, opens, deferrals).
    pub ignored: u32,
    /// Receipts and keywords whose change is too large to store: acknowledged so the provider
    /// stops retrying (every retry would be refused the same way), and counted.
    pub too_large: u32,
    /// WhatsApp messages from recipients, each opening the customer-service window.
    pub windows_opened: u32,
}

/// A subscription the caller must confirm (SNS): returned rather than fetched here, so the HTTP
/// layer decides how to reach SNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConfirmation {
    pub subscribe_url: String,
    pub topic_arn: String,
}

/// Who a webhook request came from: the provider configuration its route names, the tenant
/// that owns it, and its credentials when authenticating opened them.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub tenant: &'a TenantId,
    pub provider: &'a ProviderConfig,
    pub credentials: Option<&'a OpenCredentials>,
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("tenant", self.tenant)
            .field("provider", &self.provider.id)
            .finish_non_exhaustive()
    }
}

/// How long a receipt for a message Herald cannot find yet waits before the second look: a
/// provider may report before dispatch has written the provider's id (Twilio calls back within
/// moments), and the index receipts are looked up by is eventually consistent. Once per request.
const UNKNOWN_RECHECK: std::time::Duration = std::time::Duration::from_millis(750);

/// Applies `notifications` from `source`. Fails only when storage or the status sink fails:
/// the provider is then answered 5xx and retries, and the retry finds the changes already made.
pub async fn apply(
    app: &App,
    source: Source<'_>,
    notifications: Vec<Notification>,
    request_id: &str,
) -> anyhow::Result<(Applied, Vec<PendingConfirmation>)> {
    let tenant = source.tenant;
    let mut applied = Applied::default();
    let mut confirmations = Vec::new();
    let mut events = Vec::new();
    let mut rechecked = false;
    for notification in notifications {
        match notification {
            Notification::Receipt(receipt) => {
                let message = find(app, tenant, &receipt, &mut rechecked).await?;
                let Some(message) = message else {
                    applied.unknown += 1;
                    tracing::info!(
                        provider = receipt.provider.as_str(),
                        status = receipt.status.as_str(),
                        receipts_unknown = 1,
                        "receipt for an unknown message acknowledged"
                    );
                    continue;
                };
                let done = receipt_for(
                    app,
                    source,
                    message,
                    &receipt,
                    request_id,
                    &mut applied,
                    &mut events,
                )
                .await;
                unless_too_large(done, source, &mut applied)?;
            }
            Notification::Inbound(inbound) => {
                let intent = if inbound.is_opt_out() {
                    Some(Intent::OptOut("opt_out_keyword"))
                } else if inbound.is_opt_in() {
                    Some(Intent::OptIn)
                } else {
                    None
                };
                let done = inbound_from(
                    app,
                    tenant,
                    source.provider,
                    &inbound,
                    intent,
                    request_id,
                    &mut applied,
                    &mut events,
                )
                .await;
                unless_too_large(done, source, &mut applied)?;
            }
            Notification::Unsubscribed(inbound) => {
                let done = inbound_from(
                    app,
                    tenant,
                    source.provider,
                    &inbound,
                    Some(Intent::OptOut("unsubscribed")),
                    request_id,
                    &mut applied,
                    &mut events,
                )
                .await;
                unless_too_large(done, source, &mut applied)?;
            }
            Notification::SubscriptionConfirmation {
                subscribe_url,
                topic_arn,
            } => confirmations.push(PendingConfirmation {
                subscribe_url,
                topic_arn,
            }),
            Notification::Ignored(_) => applied.ignored += 1,
        }
    }
    if !events.is_empty() {
        app.status_events.publish(&events).await?;
    }
    Ok((applied, confirmations))
}

/// What one notification's failure means for the request: a write the store refuses for good
/// ([`StoreError::is_permanent`]) ends that notification, acknowledged, logged and counted;
/// anything else fails the request (5xx), and the provider's retry finds the changes made.
fn unless_too_large(
    done: anyhow::Result<()>,
    source: Source<'_>,
    applied: &mut Applied,
) -> anyhow::Result<()> {
    match done {
        Err(e)
            if e.downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_permanent) =>
        {
            applied.too_large += 1;
            tracing::warn!(
                provider = source.provider.kind().as_str(),
                receipts_too_large = 1,
                error = %e,
                "a change too large to store; acknowledged, not applied"
            );
            Ok(())
        }
        done => done,
    }
}

/// The tenant's message `receipt` is about, looking a second time (once per request) after a
/// moment when it is not found.
async fn find(
    app: &App,
    tenant: &TenantId,
    receipt: &Receipt,
    rechecked: &mut bool,
) -> Result<Option<Message>, StoreError> {
    loop {
        let found = app
            .messages
            .by_provider_message(receipt.provider, &receipt.provider_message_id)
            .await?
            // A configuration only speaks for its own tenant's messages.
            .filter(|m| &m.tenant == tenant);
        if found.is_some() || *rechecked {
            return Ok(found);
        }
        *rechecked = true;
        tokio::time::sleep(UNKNOWN_RECHECK).await;
    }
}

/// Whether a receipt ends the message's journey at the provider, so the provider's bill for it
/// is final.
fn ends_the_message(status: MessageStatus) -> bool {
    matches!(
        status,
        MessageStatus::Delivered | MessageStatus::Failed | MessageStatus::Bounced
    )
}

async fn receipt_for(
    app: &App,
    source: Source<'_>,
    message: Message,
    receipt: &Receipt,
    request_id: &str,
    applied: &mut Applied,
    events: &mut Vec<StatusEvent>,
) -> anyhow::Result<()> {
    let tenant = source.tenant;
    let now = OffsetDateTime::now_utc();
    // What the provider billed: in the receipt where the provider puts it there, else asked of
    // it once the message has ended (Twilio prices a message only after sending).
    let billed = match (receipt.cost, source.credentials) {
        (Some(cost), _) => Some(cost),
        (None, Some(credentials)) if ends_the_message(receipt.status) => app
            .sender
            .billed(
                &source.provider.settings,
                credentials,
                &receipt.provider_message_id,
            )
            .await
            .and_then(|c| {
                Some(Money::new(
                    c.amount_micros,
                    Currency::parse(&c.currency).ok()?,
                ))
            }),
        _ => None,
    };
    let audit = AuditEntry::by_system_on_message(
        ACTOR,
        &message,
        request_id,
        &format!("message.{}", receipt.status.as_str()),
        Some(message.status.as_str().to_owned()),
        Some(receipt.status.as_str().to_owned()),
    );
    let report = StatusReport {
        status: receipt.status,
        reason: receipt.reason.clone(),
        at: receipt.occurred_at,
        cost: billed,
    };
    let moved = app.messages.advance(&message.id, &report, &audit).await?;
    let at = receipt.occurred_at.unwrap_or(now);
    if moved {
        applied.advanced += 1;
    } else {
        applied.unchanged += 1;
        // A late or repeated receipt may still carry (or lead to) the provider's bill.
        if let Some(cost) = billed.filter(|c| message.cost != Some(*c)) {
            let audit = AuditEntry::by_system_on_message(
                ACTOR,
                &message,
                request_id,
                "message.cost_corrected",
                message.cost.map(|c| crate::domain::audit::digest(&c)),
                Some(crate::domain::audit::digest(&cost)),
            );
            app.messages.correct_cost(&message.id, cost, &audit).await?;
        }
    }
    // A provider retrying a receipt whose status change was made but whose event may not have
    // been queued (the sink failed): queue it again; its id is the same, receivers drop repeats.
    if moved || message.status == receipt.status {
        events.extend(StatusEvent::for_message(
            &message,
            receipt.status,
            receipt.reason.as_deref(),
            billed,
            at,
        ));
    }
    let suppress = receipt.hard || receipt.status == MessageStatus::Complained;
    if suppress {
        let reason = match receipt.status {
            MessageStatus::Complained => "complaint".to_owned(),
            _ => receipt
                .reason
                .clone()
                .unwrap_or_else(|| "hard_bounce".to_owned()),
        };
        let block = Block {
            kind: BlockKind::Suppressed,
            reason,
            provider: receipt.provider,
            message_id: Some(message.id.clone()),
            at,
        };
        let (created, event) = block_recipient(
            app,
            tenant,
            message.channel,
            &message.recipient_key,
            block,
            request_id,
        )
        .await?;
        if created {
            applied.suppressed += 1;
        }
        events.extend(event);
    }
    Ok(())
}

/// Records `block` with its audit entry; whether it is new, and the status event of the block in
/// force. A block recorded before (a provider retrying a request whose event may not have been
/// queued, or the same person saying STOP again) gives the event of the block as first
/// recorded: the same id, which receivers drop as a repeat.
async fn block_recipient(
    app: &App,
    tenant: &TenantId,
    channel: Channel,
    recipient_key: &str,
    block: Block,
    request_id: &str,
) -> Result<(bool, Option<StatusEvent>), StoreError> {
    let audit = AuditEntry::by_system(
        ACTOR,
        tenant,
        request_id,
        &format!("recipient.{}", block.kind.as_str()),
        format!("recipient/{recipient_key}/{}", channel.as_str()),
        None,
        Some(crate::domain::audit::digest(&block)),
    );
    let created = app
        .recipients
        .block(tenant, channel, recipient_key, &block, &audit)
        .await?;
    let in_force = if created {
        Some(block)
    } else {
        app.recipients
            .blocks(tenant, &[(channel, recipient_key.to_owned())])
            .await?
            .into_iter()
            .map(|(_, _, b)| b)
            .find(|b| b.kind == block.kind)
    };
    let event = in_force.map(|b| recipient_event(tenant, recipient_key, channel, b));
    Ok((created, event))
}

fn recipient_event(tenant: &TenantId, key: &str, channel: Channel, block: Block) -> StatusEvent {
    StatusEvent::for_recipient(
        tenant,
        match block.kind {
            BlockKind::OptedOut => StatusEventType::RecipientOptedOut,
            BlockKind::Suppressed => StatusEventType::RecipientSuppressed,
        },
        RecipientData {
            recipient_key: key.to_owned(),
            channel,
            reason: block.reason,
            message_id: block.message_id,
        },
        block.at,
    )
}

/// What a recipient's own word to the provider asks for.
#[derive(Debug, Clone, Copy)]
enum Intent {
    /// No more messages on the channel, for this reason (`opt_out_keyword`, `unsubscribed`).
    OptOut(&'static str),
    /// Messages again (`START`, `UNSTOP`).
    OptIn,
}

#[allow(clippy::too_many_arguments)]
async fn inbound_from(
    app: &App,
    tenant: &TenantId,
    provider: &ProviderConfig,
    inbound: &InboundMessage,
    intent: Option<Intent>,
    request_id: &str,
    applied: &mut Applied,
    events: &mut Vec<StatusEvent>,
) -> anyhow::Result<()> {
    // On WhatsApp every message from a person opens (or keeps open) the 24-hour window in
    // which the tenant may answer in free form; outside it only registered templates go.
    let opens_window = inbound.channel == Channel::Whatsapp;
    if intent.is_none() && !opens_window {
        // Replies are not a conversation Herald holds (yet): acknowledged, not stored.
        applied.ignored += 1;
        return Ok(());
    }
    let Ok(sender) = Recipient::parse(inbound.channel, &inbound.from) else {
        applied.ignored += 1;
        tracing::info!(
            provider = provider.kind().as_str(),
            "inbound message from an unreadable sender ignored"
        );
        return Ok(());
    };
    let key = app.recipient_key(tenant, &sender).await?;
    if opens_window {
        app.recipients
            .record_inbound(tenant, &provider.id, &key, OffsetDateTime::now_utc())
            .await?;
        applied.windows_opened += 1;
    }
    let Some(intent) = intent else {
        return Ok(());
    };
    let target = format!("recipient/{key}/{}", inbound.channel.as_str());
    let now = OffsetDateTime::now_utc();
    if let Intent::OptOut(reason) = intent {
        let block = Block {
            kind: BlockKind::OptedOut,
            reason: reason.to_owned(),
            provider: inbound.provider,
            message_id: None,
            at: now,
        };
        let (created, event) =
            block_recipient(app, tenant, inbound.channel, &key, block, request_id).await?;
        if created {
            applied.opted_out += 1;
        } else {
            applied.ignored += 1;
        }
        events.extend(event);
    } else {
        let audit = AuditEntry::by_system(
            ACTOR,
            tenant,
            request_id,
            "recipient.opted_in",
            target,
            Some(BlockKind::OptedOut.as_str().to_owned()),
            None,
        );
        if app
            .recipients
            .unblock(tenant, inbound.channel, &key, BlockKind::OptedOut, &audit)
            .await?
        {
            applied.opted_in += 1;
        } else {
            applied.ignored += 1;
        }
    }
    Ok(())
}
