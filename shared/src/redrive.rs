//! Redrive: moves messages from a dead-letter queue back to the queue they came from, once the
//! cause is fixed. Each message is sent to the source queue (body and attributes intact) before
//! it is deleted from the dead-letter queue, so a crash mid-way duplicates a queue message at
//! worst — which dispatch absorbs, being idempotent per message id — and never loses one.

use anyhow::Context as _;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

/// Moves up to `limit` messages from `dead_letter_url` to `queue_url`; returns how many moved.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dead_letter_url: &str,
    queue_url: &str,
    limit: usize,
) -> anyhow::Result<usize> {
    let mut moved = 0;
    while moved < limit {
        let batch = (limit - moved).min(10) as i32;
        let received = sqs
            .receive_message()
            .queue_url(dead_letter_url)
            .max_number_of_messages(batch)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .visibility_timeout(60)
            .wait_time_seconds(0)
            .send()
            .await
            .context("receiving from the dead-letter queue")?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let mut sends = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            sends.push(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(m.body.clone().unwrap_or_default())
                    .set_message_attributes(m.message_attributes.clone())
                    .build()?,
            );
        }
        let sent = sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(sends))
            .send()
            .await
            .context("sending to the queue")?;
        let ok: Vec<usize> = sent
            .successful()
            .iter()
            .filter_map(|s| s.id().strip_prefix('m')?.parse().ok())
            .collect();
        let deletes: Vec<DeleteMessageBatchRequestEntry> = ok
            .iter()
            .filter_map(|i| {
                let handle = messages.get(*i)?.receipt_handle.clone()?;
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(handle)
                    .build()
                    .ok()
            })
            .collect();
        if !deletes.is_empty() {
            sqs.delete_message_batch()
                .queue_url(dead_letter_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .context("deleting from the dead-letter queue")?;
        }
        moved += ok.len();
        if ok.len() < messages.len() {
            anyhow::bail!(
                "{} messages could not be sent back; they stay in the dead-letter queue",
                messages.len() - ok.len()
            );
        }
    }
    Ok(moved)
}
