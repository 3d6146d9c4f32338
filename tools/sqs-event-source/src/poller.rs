//! One queue's poller, as Lambda's event source mapping runs it: receive a batch, invoke the
//! function with it, delete the records it did not report as failed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use tokio::sync::watch;

use crate::event::{Outcome, Source, outcome, sqs_event};
use crate::lifecycle::Activity;

/// The function behind the local Lambda invoke API (`cargo lambda watch`).
#[derive(Debug)]
pub struct Invoker {
    http: reqwest::Client,
    url: String,
}

impl Invoker {
    pub fn new(invoke_url: &str, function: &str, timeout: Duration) -> anyhow::Result<Invoker> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("building the HTTP client")?;
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            invoke_url.trim_end_matches('/')
        );
        Ok(Invoker { http, url })
    }

    /// The function's answer; an error when the invocation itself failed (unreachable,
    /// non-2xx, or Lambda's `X-Amz-Function-Error`).
    async fn invoke(&self, event: &SqsEvent) -> anyhow::Result<Vec<u8>> {
        let response = self
            .http
            .post(&self.url)
            .json(event)
            .send()
            .await
            .with_context(|| format!("invoking {}", self.url))?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let payload = response
            .bytes()
            .await
            .context("reading the invocation result")?;
        if !status.is_success() || function_error {
            // errorType only: an errorMessage may quote the message it failed on.
            let error_type = serde_json::from_slice::<serde_json::Value>(&payload)
                .ok()
                .and_then(|v| v["errorType"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".to_owned());
            bail!("function error (HTTP {status}, errorType {error_type})");
        }
        Ok(payload.to_vec())
    }
}

#[derive(Debug)]
pub struct Poller {
    pub channel: String,
    pub queue_url: String,
    pub source: Source,
    pub sqs: aws_sdk_sqs::Client,
    pub invoker: Arc<Invoker>,
    pub batch_size: i32,
    pub wait_seconds: i32,
    pub activity: Arc<Activity>,
}

const RETRY_PAUSE: Duration = Duration::from_secs(1);

impl Poller {
    /// Polls until `stop` turns true. A pending long poll is abandoned (at worst a message it
    /// was about to return stays invisible until its visibility timeout, as when Lambda's
    /// pollers stop); a batch already received is delivered to the end.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let received = tokio::select! {
                received = self.receive() => received,
                _ = stop.changed() => break,
            };
            let messages = match received {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(queue = %self.channel, error = %format!("{error:#}"), "receive failed");
                    pause(&mut stop, RETRY_PAUSE).await;
                    continue;
                }
            };
            if messages.is_empty() {
                if self.wait_seconds == 0 {
                    pause(&mut stop, Duration::from_millis(200)).await;
                }
                continue;
            }
            let _busy = self.activity.busy();
            self.deliver(&messages).await;
        }
    }

    async fn receive(&self) -> anyhow::Result<Vec<Message>> {
        #[allow(deprecated)] // `AttributeNames` too: older emulators know only that one
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(self.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .attribute_names(QueueAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|error| {
                anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))
            })?;
        Ok(output.messages.unwrap_or_default())
    }

    async fn deliver(&self, messages: &[Message]) {
        let started = Instant::now();
        let event = sqs_event(messages, &self.source);
        let ids: HashSet<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
        let result = match self.invoker.invoke(&event).await {
            Ok(payload) => outcome(&payload, &ids),
            Err(error) => Outcome::BatchFailed(format!("{error:#}")),
        };
        let count = messages.len();
        match result {
            Outcome::Partial(failed) => {
                let done: Vec<&Message> = messages
                    .iter()
                    .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
                    .collect();
                let deleted = self.delete(&done).await;
                tracing::info!(
                    queue = %self.channel,
                    count,
                    failed = failed.len(),
                    deleted,
                    ms = started.elapsed().as_millis() as u64,
                    "batch"
                );
            }
            Outcome::BatchFailed(reason) => {
                tracing::warn!(
                    queue = %self.channel,
                    count,
                    failed = count,
                    deleted = 0,
                    ms = started.elapsed().as_millis() as u64,
                    reason = %reason,
                    "batch failed; nothing deleted"
                );
            }
        }
    }

    /// Deletes the acknowledged records; returns how many are gone.
    async fn delete(&self, done: &[&Message]) -> usize {
        let entries: Vec<DeleteMessageBatchRequestEntry> = done
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return 0;
        }
        match self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                for failure in output.failed() {
                    tracing::warn!(queue = %self.channel, code = %failure.code(), "delete failed");
                }
                output.successful().len()
            }
            Err(error) => {
                let error = aws_sdk_sqs::error::DisplayErrorContext(error);
                tracing::warn!(queue = %self.channel, error = %error, "delete failed");
                0
            }
        }
    }
}

/// Sleeps for `duration` or until `stop` changes.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        _ = stop.changed() => {}
    }
}
