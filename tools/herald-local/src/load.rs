//! `herald-local load --messages N`: pushes N SMS messages through the send API handler, the
//! SNS topic and the SMS queue (both in the emulator, provisioned from the template), the
//! dispatch handler and the Twilio stand-in, all on 127.0.0.1, and reports messages per second
//! and the AWS requests each message cost (counted by an SDK interceptor on every client).
//! Bounded: N is capped and the run gives up after a deadline.
//!
//! `herald-local load --batch-size N --batches K` measures the send API alone: K batch requests
//! of N SMS recipients each, one after another, each reporting its wall time, the AWS requests
//! it made by operation and its round trips (the longest run of requests each waiting for the
//! one before, [`AwsRequestCounter::round_trips`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use herald_shared::app::{App, AppConfig};
use herald_shared::dispatch::sqs::{QueueClient, handle};
use herald_shared::dispatch::{DispatchConfig, Dispatcher};
use herald_shared::observability::AwsRequestCounter;
use provider_standins::{Provider, StandIns};
use serde_json::{Value, json};

pub const MAX_MESSAGES: usize = 100_000;
/// The send API's limit on recipients per request.
const MAX_BATCH_SIZE: usize = herald_shared::api::send::MAX_RECIPIENTS;
const MAX_BATCHES: usize = 100;
const RECIPIENTS_PER_REQUEST: usize = 100;
const POLLERS: usize = 4;

const TWILIO_SID: &str = "AC5f1c2b7e9d0a4c3b8e6f7a1d2c3b4a59";
const TWILIO_TOKEN: &str = "tw-auth-token-0000-demo-4d2f";

pub async fn run(messages: usize, events_dir: &Path) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_MESSAGES).contains(&messages),
        "--messages must be 1-{MAX_MESSAGES}"
    );
    let stack = local_stack::Stack::start()?;
    let standins = StandIns::builder()
        .twilio_account(TWILIO_SID, TWILIO_TOKEN)
        .build()
        .spawn()
        .await?;
    let aws = stack.sdk_config().await;
    let mut config = AppConfig::from_vars(&|name| stack.env.get(name).cloned())?;
    config.endpoints.twilio = standins.twilio_base_url().to_owned();
    let counter = AwsRequestCounter::default();
    let app = App::new(&aws, config, Some(counter.clone()));
    let requests = Requests {
        events_dir: events_dir.to_owned(),
    };
    set_up_event(&app, &requests).await?;

    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .interceptor(counter.clone())
            .build(),
    );
    let queue_url = stack.queue("sms", "url")?;
    let queue_arn = stack.queue("sms", "arn")?;
    let dispatcher = Arc::new(Dispatcher::from_app(&app, DispatchConfig::default()));
    counter.reset();
    println!(
        "load: {messages} SMS through send API -> SNS -> SQS -> dispatch -> Twilio stand-in (127.0.0.1)"
    );

    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..POLLERS)
        .map(|_| {
            let (sqs, url, arn, dispatcher, done, region) = (
                sqs.clone(),
                queue_url.clone(),
                queue_arn.clone(),
                dispatcher.clone(),
                done.clone(),
                stack.var("AWS_REGION"),
            );
            tokio::spawn(async move { poll(&sqs, &url, &arn, &region?, &dispatcher, &done).await })
        })
        .collect();
    let mut sent_requests = 0;
    for (n, chunk) in (0..messages)
        .collect::<Vec<_>>()
        .chunks(RECIPIENTS_PER_REQUEST)
        .enumerate()
    {
        let recipients: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"to": format!("+26097{:07}", 1_000_000 + i), "variables": {"guest_name": format!("Guest {i}"), "event_date": "12 Dec"}}))
            .collect();
        let body = json!({"category": "invitation", "channel": "sms", "recipients": recipients});
        let reply = requests
            .call(
                &app,
                "send-api/send-batch",
                &[],
                Some(body),
                Some(&format!("load-{n}")),
            )
            .await?;
        ensure!(reply.0 == 202, "send answered {}: {}", reply.0, reply.1);
        sent_requests += 1;
    }
    let accepted_after = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60 + messages as u64 / 10);
    while standins.sent_messages_for(Provider::Twilio).len() < messages {
        if Instant::now() > deadline {
            done.store(true, Ordering::Relaxed);
            bail!(
                "only {} of {messages} messages reached the provider before the deadline",
                standins.sent_messages_for(Provider::Twilio).len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    for p in pollers {
        p.await??;
    }
    let counts = counter.snapshot();
    let total: u64 = counts.values().sum();
    println!(
        "load: {messages} messages in {:.2} s ({} send requests accepted in {:.2} s)",
        elapsed.as_secs_f64(),
        sent_requests,
        accepted_after.as_secs_f64()
    );
    println!(
        "load: {:.0} messages/s end to end",
        messages as f64 / elapsed.as_secs_f64()
    );
    println!(
        "load: AWS requests per message {:.2} ({total} in all):",
        total as f64 / messages as f64
    );
    for (operation, count) in &counts {
        println!(
            "        {operation:<36} {count:>8}  {:>6.2}/message",
            *count as f64 / messages as f64
        );
    }
    Ok(())
}

/// What one batch request cost.
struct BatchCost {
    wall: Duration,
    round_trips: u64,
    requests: std::collections::BTreeMap<String, u64>,
}

impl BatchCost {
    fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

pub async fn run_batches(size: usize, batches: usize, events_dir: &Path) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_BATCH_SIZE).contains(&size),
        "--batch-size must be 1-{MAX_BATCH_SIZE}"
    );
    ensure!(
        (1..=MAX_BATCHES).contains(&batches),
        "--batches must be 1-{MAX_BATCHES}"
    );
    let stack = local_stack::Stack::start()?;
    // Completing the event checks the provider's credentials live.
    let standins = StandIns::builder()
        .twilio_account(TWILIO_SID, TWILIO_TOKEN)
        .build()
        .spawn()
        .await?;
    let aws = stack.sdk_config().await;
    let mut config = AppConfig::from_vars(&|name| stack.env.get(name).cloned())?;
    config.endpoints.twilio = standins.twilio_base_url().to_owned();
    let counter = AwsRequestCounter::default();
    let app = App::new(&aws, config, Some(counter.clone()));
    let requests = Requests {
        events_dir: events_dir.to_owned(),
    };
    set_up_event(&app, &requests).await?;
    println!(
        "load: {batches} batch requests of {size} SMS each through the send API handler (emulator on 127.0.0.1)"
    );
    let mut costs = Vec::with_capacity(batches);
    for n in 0..batches {
        let recipients: Vec<Value> = (0..size)
            .map(|i| {
                let guest = n * size + i;
                json!({"to": format!("+26097{:07}", 1_000_000 + guest),
                       "variables": {"guest_name": format!("Guest {guest}"), "event_date": "12 Dec"}})
            })
            .collect();
        let body = json!({"category": "invitation", "channel": "sms", "recipients": recipients});
        counter.reset();
        let started = Instant::now();
        let reply = requests
            .call(
                &app,
                "send-api/send-batch",
                &[],
                Some(body),
                Some(&format!("batch-load-{size}-{n}")),
            )
            .await?;
        let wall = started.elapsed();
        ensure!(reply.0 == 202, "send answered {}: {}", reply.0, reply.1);
        let cost = BatchCost {
            wall,
            round_trips: counter.round_trips(),
            requests: counter.snapshot(),
        };
        println!(
            "load: batch {:>3}: {:>7.3} s, {:>4} AWS requests, {:>3} round trips",
            n + 1,
            cost.wall.as_secs_f64(),
            cost.total(),
            cost.round_trips
        );
        costs.push(cost);
    }
    // The first request fills the container's caches (chain heads, retention, recipient keys);
    // a warm container's requests are the steady state.
    let warm = if costs.len() > 1 {
        &costs[1..]
    } else {
        &costs[..]
    };
    let mean = |f: &dyn Fn(&BatchCost) -> f64| warm.iter().map(f).sum::<f64>() / warm.len() as f64;
    let total = mean(&|c| c.total() as f64);
    println!(
        "load: batch of {size}, mean of {} warm requests: {:.3} s wall, {:.1} round trips, {:.1} AWS requests ({:.3}/message)",
        warm.len(),
        mean(&|c| c.wall.as_secs_f64()),
        mean(&|c| c.round_trips as f64),
        total,
        total / size as f64
    );
    let operations: std::collections::BTreeSet<&String> =
        warm.iter().flat_map(|c| c.requests.keys()).collect();
    for operation in operations {
        let count = mean(&|c| c.requests.get(operation).copied().unwrap_or(0) as f64);
        println!(
            "        {operation:<36} {count:>8.1}/batch request  {:>6.3}/message",
            count / size as f64
        );
    }
    if let Some(first) = costs.first() {
        println!(
            "load: first (cold) request: {:.3} s wall, {} round trips, {} AWS requests",
            first.wall.as_secs_f64(),
            first.round_trips,
            first.total()
        );
    }
    Ok(())
}

/// One poller: what Lambda's event source mapping does for the SMS queue.
async fn poll(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    arn: &str,
    region: &str,
    dispatcher: &Dispatcher,
    done: &AtomicBool,
) -> anyhow::Result<()> {
    let queue = QueueClient::new(sqs.clone());
    while !done.load(Ordering::Relaxed) {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let count = m
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .cloned()
                    .unwrap_or_else(|| "1".into());
                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                       "attributes": {"ApproximateReceiveCount": count}, "messageAttributes": {},
                       "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": region})
            })
            .collect();
        let event = serde_json::from_value(json!({ "Records": records }))?;
        let response = handle(dispatcher, &queue, event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let entries: Vec<_> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m.message_id()
                    .is_some_and(|id| !failed.iter().any(|f| f == id))
            })
            .filter_map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            sqs.delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await?;
        }
    }
    Ok(())
}

/// Requests built from the samples in `events/`, handed to the handlers in-process.
struct Requests {
    events_dir: std::path::PathBuf,
}

impl Requests {
    async fn call(
        &self,
        app: &App,
        sample: &str,
        path: &[(&str, &str)],
        body: Option<Value>,
        key: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let text = std::fs::read_to_string(self.events_dir.join(format!("{sample}.json")))?;
        let mut event: Value = serde_json::from_str(&text)?;
        event["requestContext"]["authorizer"]["jwt"]["claims"]["herald:tenant"] =
            json!("load-tenant");
        for (k, v) in path {
            event["pathParameters"][*k] = json!(v);
        }
        if let Some(body) = body {
            event["body"] = json!(body.to_string());
        }
        if let Some(key) = key {
            event["headers"]["idempotency-key"] = json!(key);
        }
        let request = lambda_http::request::from_str(&event.to_string())?;
        let response = herald_shared::api::serve_any(app, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let status = response.status().as_u16();
        let body = match response.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Ok((status, body))
    }
}

async fn set_up_event(app: &App, r: &Requests) -> anyhow::Result<()> {
    let settings = json!({"channels": ["sms"], "categories": ["invitation"]});
    for (sample, body) in [
        ("config-api/put-event-settings", Some(settings)),
        ("config-api/put-tenant-brand", None),
        ("config-api/create-tenant-provider", None),
        ("config-api/put-tenant-template", None),
    ] {
        let (status, reply) = r.call(app, sample, &[], body, None).await?;
        ensure!(
            (200..300).contains(&status),
            "{sample} answered {status}: {reply}"
        );
    }
    let (status, reply) = r
        .call(
            app,
            "wizard-completion/complete-wizard",
            &[],
            None,
            Some("load-complete"),
        )
        .await?;
    ensure!(status == 201, "completion answered {status}: {reply}");
    Ok(())
}
