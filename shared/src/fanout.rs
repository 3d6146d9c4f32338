//! The fan-out port: queued messages go to the SNS topic with a `channel` attribute, and one
//! SQS queue per channel (subscribed with a filter policy, raw delivery) feeds that channel's
//! dispatch function. A retried publish is harmless: dispatch is idempotent per message id.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use futures::StreamExt as _;

use crate::dispatch::QueuedMessage;
use crate::domain::Channel;

#[async_trait]
pub trait Fanout: Send + Sync {
    /// Publishes every message (all or an error; a retried publish is harmless because
    /// dispatch is idempotent per message id).
    async fn publish(&self, messages: &[(QueuedMessage, Channel)]) -> anyhow::Result<()>;
}

/// Most entries one `PublishBatch` takes.
const BATCH_ENTRIES: usize = 10;
/// `PublishBatch` calls in flight at once: a request of 500 messages takes five rounds.
const CONCURRENT_PUBLISHES: usize = 10;
/// Calls per batch while SNS fails some of its entries on its side.
const PUBLISH_ATTEMPTS: u32 = 3;

/// SNS `PublishBatch`, ten entries per call, several calls at a time.
#[derive(Debug, Clone)]
pub struct SnsFanout {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: String,
}

impl SnsFanout {
    /// Publishes up to ten messages; entries SNS failed on its side are sent again (briefly),
    /// entries it refused as ours to fix are an error at once.
    async fn publish_batch(&self, chunk: &[(QueuedMessage, Channel)]) -> anyhow::Result<()> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, (queued, channel)) in chunk.iter().enumerate() {
            let body = serde_json::to_string(queued)?;
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(channel.as_str())
                .build()?;
            entries.push(
                PublishBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message(body)
                    .message_attributes("channel", attribute)
                    .build()?,
            );
        }
        for attempt in 0..PUBLISH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            let out = self
                .sns
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries.clone()))
                .send()
                .await?;
            let failed = out.failed();
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(ours) = failed.iter().find(|f| f.sender_fault()) {
                anyhow::bail!(
                    "{} of {} messages were refused ({})",
                    failed.len(),
                    chunk.len(),
                    ours.code()
                );
            }
            entries.retain(|e| failed.iter().any(|f| f.id() == e.id()));
        }
        anyhow::bail!(
            "{} of {} messages were not published after {PUBLISH_ATTEMPTS} attempts",
            entries.len(),
            chunk.len()
        )
    }
}

#[async_trait]
impl Fanout for SnsFanout {
    async fn publish(&self, messages: &[(QueuedMessage, Channel)]) -> anyhow::Result<()> {
        // Every batch is tried, so a failure leaves as little as possible to publish again.
        let batches: Vec<_> = messages
            .chunks(BATCH_ENTRIES)
            .map(|chunk| self.publish_batch(chunk))
            .collect();
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(batches)
            .buffer_unordered(CONCURRENT_PUBLISHES)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

/// Remembers what was published: for logic tests.
#[derive(Debug, Default)]
pub struct MemoryFanout {
    pub published: Mutex<Vec<(QueuedMessage, Channel)>>,
}

#[async_trait]
impl Fanout for MemoryFanout {
    async fn publish(&self, messages: &[(QueuedMessage, Channel)]) -> anyhow::Result<()> {
        self.published
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .extend_from_slice(messages);
        Ok(())
    }
}
