//! Acting on what a provider reported, once its request is authenticated and parsed: receipts
//! move messages forward through the status machine (never back), hard bounces and complaints
//! suppress the recipient, opt-out keywords opt the sender out of the channel, and every change
//! is told to the tenant's status webhooks. Everything here is idempotent: providers retry, and
//! a retried request changes nothing twice.

use time::OffsetDateTime;

use crate::app::App;
use crate::domain::TenantId;
use crate::domain::audit::AuditEntry;
use crate::domain::message::{Message, MessageStatus};
use crate::domain::provider::ProviderConfig;
use crate::domain::receipt::{InboundMessage, Notification, Receipt};
use crate::domain::recipient::Recipient;
use crate::domain::status_event::{RecipientData, StatusEvent, StatusEventType};
use crate::domain::suppression::{Block, BlockKind};
use crate::store::StoreError;

/// The actor audit entries name for changes receipts make.
const ACTOR: &str = "herald:delivery-webhooks";

/// What one webhook request amounted to; logged as one line and returned to the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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
}

/// A subscription the caller must confirm (SNS): returned rather than fetched here, so the HTTP
/// layer decides how to reach SNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConfirmation {
    pub subscribe_url: String,
    pub topic_arn: String,
}

/// Applies `notifications` from `provider` (a configuration of `tenant`). Fails only when
/// storage or the status sink fails: the provider is then answered 5xx and retries, and the
/// retry finds the changes already made.
pub async fn apply(
    app: &App,
    tenant: &TenantId,
    provider: &ProviderConfig,
    notifications: Vec<Notification>,
    request_id: &str,
) -> anyhow::Result<(Applied, Vec<PendingConfirmation>)> {
    let mut applied = Applied::default();
    let mut confirmations = Vec::new();
    let mut events = Vec::new();
    for notification in notifications {
        match notification {
            Notification::Receipt(receipt) => {
                receipt_for(app, tenant, &receipt, request_id, &mut applied, &mut events).await?;
            }
            Notification::Inbound(inbound) => {
                inbound_from(
                    app,
                    tenant,
                    provider,
                    &inbound,
                    request_id,
                    &mut applied,
                    &mut events,
                )
                .await?;
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

async fn receipt_for(
    app: &App,
    tenant: &TenantId,
    receipt: &Receipt,
    request_id: &str,
    applied: &mut Applied,
    events: &mut Vec<StatusEvent>,
) -> anyhow::Result<()> {
    let message = app
        .messages
        .by_provider_message(receipt.provider, &receipt.provider_message_id)
        .await?
        // A configuration only speaks for its own tenant's messages.
        .filter(|m| &m.tenant == tenant);
    let Some(message) = message else {
        applied.unknown += 1;
        tracing::info!(
            provider = receipt.provider.as_str(),
            status = receipt.status.as_str(),
            "receipt for an unknown message acknowledged"
        );
        return Ok(());
    };
    let now = OffsetDateTime::now_utc();
    let audit = AuditEntry::by_system(
        ACTOR,
        tenant,
        request_id,
        &format!("message.{}", receipt.status.as_str()),
        format!("message/{}", message.id),
        Some(message.status.as_str().to_owned()),
        Some(receipt.status.as_str().to_owned()),
    );
    let moved = app
        .messages
        .advance(
            &message.id,
            receipt.status,
            receipt.reason.as_deref(),
            receipt.cost,
            &audit,
        )
        .await?;
    let at = receipt.occurred_at.unwrap_or(now);
    if moved {
        applied.advanced += 1;
    } else {
        applied.unchanged += 1;
    }
    // A provider retrying a receipt whose status change was made but whose event may not have
    // been queued (the sink failed): queue it again; its id is the same, receivers drop repeats.
    if moved || message.status == receipt.status {
        events.extend(StatusEvent::for_message(
            &message,
            receipt.status,
            receipt.reason.as_deref(),
            receipt.cost,
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
        if block_recipient(app, tenant, &message, &block, request_id).await? {
            applied.suppressed += 1;
            events.push(recipient_event(
                tenant,
                &message.recipient_key,
                &message,
                &block,
            ));
        }
    }
    Ok(())
}

async fn block_recipient(
    app: &App,
    tenant: &TenantId,
    message: &Message,
    block: &Block,
    request_id: &str,
) -> Result<bool, StoreError> {
    let audit = AuditEntry::by_system(
        ACTOR,
        tenant,
        request_id,
        &format!("recipient.{}", block.kind.as_str()),
        format!(
            "recipient/{}/{}",
            message.recipient_key,
            message.channel.as_str()
        ),
        None,
        Some(crate::domain::audit::digest(block)),
    );
    app.recipients
        .block(
            tenant,
            message.channel,
            &message.recipient_key,
            block,
            &audit,
        )
        .await
}

fn recipient_event(tenant: &TenantId, key: &str, message: &Message, block: &Block) -> StatusEvent {
    StatusEvent::for_recipient(
        tenant,
        match block.kind {
            BlockKind::OptedOut => StatusEventType::RecipientOptedOut,
            BlockKind::Suppressed => StatusEventType::RecipientSuppressed,
        },
        RecipientData {
            recipient_key: key.to_owned(),
            channel: message.channel,
            reason: block.reason.clone(),
            message_id: Some(message.id.clone()),
        },
        block.at,
    )
}

async fn inbound_from(
    app: &App,
    tenant: &TenantId,
    provider: &ProviderConfig,
    inbound: &InboundMessage,
    request_id: &str,
    applied: &mut Applied,
    events: &mut Vec<StatusEvent>,
) -> anyhow::Result<()> {
    let opt_out = inbound.is_opt_out();
    if !opt_out && !inbound.is_opt_in() {
        // Replies are not a conversation Herald holds (yet): acknowledged, not stored.
        applied.ignored += 1;
        return Ok(());
    }
    let Ok(sender) = Recipient::parse(inbound.channel, &inbound.from) else {
        applied.ignored += 1;
        tracing::info!(
            provider = provider.kind().as_str(),
            "inbound keyword from an unreadable sender ignored"
        );
        return Ok(());
    };
    let key = sender.key(tenant.as_str());
    let target = format!("recipient/{key}/{}", inbound.channel.as_str());
    let now = OffsetDateTime::now_utc();
    if opt_out {
        let block = Block {
            kind: BlockKind::OptedOut,
            reason: "opt_out_keyword".to_owned(),
            provider: inbound.provider,
            message_id: None,
            at: now,
        };
        let audit = AuditEntry::by_system(
            ACTOR,
            tenant,
            request_id,
            "recipient.opted_out",
            target,
            None,
            Some(crate::domain::audit::digest(&block)),
        );
        if app
            .recipients
            .block(tenant, inbound.channel, &key, &block, &audit)
            .await?
        {
            applied.opted_out += 1;
            events.push(StatusEvent::for_recipient(
                tenant,
                StatusEventType::RecipientOptedOut,
                RecipientData {
                    recipient_key: key,
                    channel: inbound.channel,
                    reason: block.reason,
                    message_id: None,
                },
                now,
            ));
        } else {
            applied.ignored += 1;
        }
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
