//! The fan-out port: queued messages go to the SNS topic with a `channel` attribute, and one
//! SQS queue per channel (subscribed with a filter policy, raw delivery) feeds that channel's
//! dispatch function.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use crate::dispatch::QueuedMessage;
use crate::domain::Channel;

#[async_trait]
pub trait Fanout: Send + Sync {
    /// Publishes every message (all or an error; a retried publish is harmless because
    /// dispatch is idempotent per message id).
    async fn publish(&self, messages: &[(QueuedMessage, Channel)]) -> anyhow::Result<()>;
}

/// SNS `PublishBatch`, ten entries per call.
#[derive(Debug, Clone)]
pub struct SnsFanout {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: String,
}

#[async_trait]
impl Fanout for SnsFanout {
    async fn publish(&self, messages: &[(QueuedMessage, Channel)]) -> anyhow::Result<()> {
        for chunk in messages.chunks(10) {
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
            let out = self
                .sns
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await?;
            let failed = out.failed();
            if !failed.is_empty() {
                anyhow::bail!(
                    "{} of {} messages were not published",
                    failed.len(),
                    chunk.len()
                );
            }
        }
        Ok(())
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
