//! The SQS side of dispatch: a batch from the channel queue, processed concurrently (one span
//! per message), answered with the ids to redeliver (`ReportBatchItemFailures`). A message to
//! retry later gets its visibility timeout set to the backoff first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use tracing::{Instrument as _, info_span, warn};

use super::{Dispatcher, Disposition};

/// SQS's ceiling for a visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug)]
pub struct QueueClient {
    sqs: aws_sdk_sqs::Client,
    urls: Mutex<HashMap<String, String>>,
}

impl QueueClient {
    pub fn new(sqs: aws_sdk_sqs::Client) -> Self {
        Self {
            sqs,
            urls: Mutex::new(HashMap::new()),
        }
    }

    /// The queue URL for an event source ARN (`arn:aws:sqs:region:account:name`), looked up once.
    async fn url(&self, arn: &str) -> Option<String> {
        if let Some(url) = self.urls.lock().ok().and_then(|u| u.get(arn).cloned()) {
            return Some(url);
        }
        let mut parts = arn.rsplitn(2, ':');
        let name = parts.next()?;
        let account = parts.next()?.rsplit(':').next()?;
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .ok()?;
        let url = out.queue_url?;
        if let Ok(mut urls) = self.urls.lock() {
            urls.insert(arn.to_owned(), url.clone());
        }
        Some(url)
    }

    /// Keeps `record` invisible for `wait` (capped at SQS's 12 h), so its redelivery comes
    /// then rather than after the queue's visibility timeout.
    pub async fn delay(&self, record: &SqsMessage, wait: Duration) {
        let (Some(arn), Some(handle)) = (
            record.event_source_arn.as_deref(),
            record.receipt_handle.as_deref(),
        ) else {
            return;
        };
        let Some(url) = self.url(arn).await else {
            return;
        };
        let seconds = wait.min(MAX_VISIBILITY).as_secs() as i32;
        if let Err(e) = self
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(seconds)
            .send()
            .await
        {
            warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not delay the message; it returns after the queue's visibility timeout");
        }
    }
}

pub async fn handle(
    dispatcher: &Dispatcher,
    queue: &QueueClient,
    event: SqsEvent,
) -> SqsBatchResponse {
    let results = join_all(event.records.iter().map(|record| {
        let id = record.message_id.clone().unwrap_or_default();
        let span = info_span!("message", queue_message_id = %id, message_id = tracing::field::Empty);
        async move {
            let delivery: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
            let body = record.body.as_deref().unwrap_or_default();
            if let Ok(q) = serde_json::from_str::<super::QueuedMessage>(body) {
                tracing::Span::current().record("message_id", q.message_id.as_str());
            }
            let disposition = dispatcher.dispatch_body(body, delivery).await;
            match &disposition {
                Disposition::Done => None,
                Disposition::RetryAfter(wait) => {
                    queue.delay(record, *wait).await;
                    Some(id)
                }
                Disposition::Hold(wait) => {
                    tracing::info!(hold_s = wait.as_secs(), delivery, "not due yet (quiet hours); held");
                    queue.delay(record, *wait).await;
                    Some(id)
                }
                Disposition::Poison(reason) => {
                    warn!(reason = %reason, delivery, "unusable queue message; it goes to the dead-letter queue after the configured receives");
                    Some(id)
                }
            }
        }
        .instrument(span)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = results
        .into_iter()
        .flatten()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}
