//! The AWS status-event sink: one SQS message per event × endpoint that wants its type, on the
//! status-webhooks queue the worker consumes. A container keeps each tenant's active endpoints
//! for [`ENDPOINTS_TTL`], so a burst of changes costs one Query per tenant; an endpoint switched
//! off meanwhile is still dropped by the worker, which reads the endpoint before each post.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use super::StatusEventSink;
use crate::domain::TenantId;
use crate::domain::status_event::{StatusEvent, StatusEventType};
use crate::domain::webhook_endpoint::WebhookEndpointId;
use crate::store::WebhookEndpointStore;

/// How long a container trusts its list of a tenant's endpoints.
pub const ENDPOINTS_TTL: Duration = Duration::from_secs(30);
const CACHE_LIMIT: usize = 1024;
/// SendMessageBatch takes at most ten entries.
const BATCH: usize = 10;

/// One queued post: this event to this endpoint (the queue message body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub endpoint_id: WebhookEndpointId,
    pub tenant: TenantId,
    pub event: StatusEvent,
}

/// An active endpoint and the event types it wants.
#[derive(Debug)]
struct Subscription {
    id: WebhookEndpointId,
    events: BTreeSet<StatusEventType>,
}

type Cached = (Instant, Arc<Vec<Subscription>>);

pub struct SqsStatusEvents {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    endpoints: Arc<dyn WebhookEndpointStore>,
    cache: Mutex<HashMap<TenantId, Cached>>,
}

impl std::fmt::Debug for SqsStatusEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsStatusEvents")
            .field("queue_url", &self.queue_url)
            .finish_non_exhaustive()
    }
}

impl SqsStatusEvents {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        endpoints: Arc<dyn WebhookEndpointStore>,
    ) -> Self {
        Self {
            sqs,
            queue_url,
            endpoints,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn subscriptions(&self, tenant: &TenantId) -> anyhow::Result<Arc<Vec<Subscription>>> {
        if let Some((at, subscriptions)) =
            self.cache.lock().ok().and_then(|c| c.get(tenant).cloned())
            && at.elapsed() < ENDPOINTS_TTL
        {
            return Ok(subscriptions);
        }
        let subscriptions: Arc<Vec<Subscription>> = Arc::new(
            self.endpoints
                .endpoints(tenant)
                .await
                .context("reading the tenant's webhook endpoints")?
                .into_iter()
                .filter(|e| e.active)
                .map(|e| Subscription {
                    id: e.id,
                    events: e.config.events,
                })
                .collect(),
        );
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(tenant.clone(), (Instant::now(), subscriptions.clone()));
        }
        Ok(subscriptions)
    }

    /// What `events` come to: one delivery per event and endpoint that wants its type.
    pub async fn deliveries(&self, events: &[StatusEvent]) -> anyhow::Result<Vec<Delivery>> {
        let mut deliveries = Vec::new();
        for event in events {
            for subscription in self.subscriptions(&event.tenant).await?.iter() {
                if subscription.events.contains(&event.kind) {
                    deliveries.push(Delivery {
                        endpoint_id: subscription.id.clone(),
                        tenant: event.tenant.clone(),
                        event: event.clone(),
                    });
                }
            }
        }
        Ok(deliveries)
    }
}

#[async_trait]
impl StatusEventSink for SqsStatusEvents {
    async fn publish(&self, events: &[StatusEvent]) -> anyhow::Result<()> {
        let deliveries = self.deliveries(events).await?;
        for chunk in deliveries.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, delivery)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(serde_json::to_string(delivery)?)
                        .build()
                        .map_err(anyhow::Error::new)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "SendMessageBatch failed: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                })?;
            if let Some(failed) = out.failed().first() {
                anyhow::bail!(
                    "SendMessageBatch refused {} of {} deliveries ({}: {})",
                    out.failed().len(),
                    chunk.len(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                );
            }
        }
        if !deliveries.is_empty() {
            tracing::debug!(deliveries = deliveries.len(), "status events queued");
        }
        Ok(())
    }
}
