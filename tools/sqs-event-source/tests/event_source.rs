//! The event source end to end: the emulator provisioned from infra/template.yaml by
//! `scripts/stack.py`, messages published to the messages topic with a `channel` attribute, and
//! a local HTTP server standing in for `cargo lambda watch`'s invoke endpoint.

use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// A phone number in every body: it must never reach the event source's log.
const RECIPIENT: &str = "+260971234567";

use local_stack::Stack;

/// The emulator, provisioned from the SAM template once per test process (it exits with us).
fn stack() -> anyhow::Result<&'static Stack> {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    STACK
        .get_or_init(|| Stack::start().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// What the stand-in invoke endpoint received, per invocation: (function, event).
type Invocations = Arc<Mutex<Vec<(String, Value)>>>;

/// Serves `POST /2015-03-31/functions/{function}/invocations` like a dispatch function that
/// reports every record whose body says `"fail"` in `batchItemFailures`; the function named
/// `broken` fails the invocation instead, as a crashed handler does under cargo lambda watch.
async fn invoke_endpoint() -> anyhow::Result<(String, Invocations)> {
    async fn invoke(
        State(seen): State<Invocations>,
        Path(function): Path<String>,
        Json(event): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        if let Ok(mut seen) = seen.lock() {
            seen.push((function.clone(), event.clone()));
        }
        if function == "broken" {
            let error = json!({"errorType": "Runtime.Panic", "errorMessage": "boom"});
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(error));
        }
        let failures: Vec<Value> = event["Records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["body"].as_str().is_some_and(|b| b.contains(r#""fail""#)))
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        (StatusCode::OK, Json(json!({"batchItemFailures": failures})))
    }

    let seen = Invocations::default();
    let app = Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

async fn publish(
    sns: &aws_sdk_sns::Client,
    topic: &str,
    channel: &str,
    case: &str,
) -> anyhow::Result<()> {
    let body = json!({"case": case, "to": RECIPIENT}).to_string();
    sns.publish()
        .topic_arn(topic)
        .message(body)
        .message_attributes(
            "channel",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(channel)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Runs the event source until it exits by itself (`--idle-exit`); returns its stderr.
async fn run_event_source(
    stack: &Stack,
    invoke_url: &str,
    extra: &[&str],
) -> anyhow::Result<String> {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sqs-event-source"))
        .arg("--stack-json")
        .arg(&stack.stack_json)
        .args([
            "--invoke-url",
            invoke_url,
            "--wait-seconds",
            "1",
            "--idle-exit",
            "4",
        ])
        .arg("--exit-with-parent")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting sqs-event-source")?;
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .context("sqs-event-source did not stop on --idle-exit")??;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "sqs-event-source failed:\n{log}");
    Ok(log)
}

async fn set_visibility(sqs: &aws_sdk_sqs::Client, url: &str, seconds: u32) -> anyhow::Result<()> {
    sqs.set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string())
        .send()
        .await?;
    Ok(())
}

/// (visible, in flight) messages of a queue.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<(u64, u64)> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await?;
    let get = |name: QueueAttributeName| -> anyhow::Result<u64> {
        Ok(out
            .attributes()
            .and_then(|a| a.get(&name))
            .context("queue attribute")?
            .parse()?)
    };
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages)?,
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
    ))
}

async fn dead_letters(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<Vec<String>> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await?;
    Ok(out
        .messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect())
}

/// Every record the endpoint received, with the invoked function.
fn records(seen: &Invocations) -> anyhow::Result<Vec<(String, Value)>> {
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut all = Vec::new();
    for (function, event) in seen.iter() {
        // Well-formed: the function's own parser reads it.
        let parsed: SqsEvent = serde_json::from_value(event.clone()).context("an SqsEvent")?;
        ensure!(!parsed.records.is_empty(), "an empty batch was invoked");
        for record in event["Records"].as_array().context("Records")? {
            all.push((function.clone(), record.clone()));
        }
    }
    Ok(all)
}

fn case(record: &Value) -> String {
    record["body"]
        .as_str()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .and_then(|b| b["case"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test]
async fn deletes_successes_redelivers_failures_until_the_dead_letter_queue() -> anyhow::Result<()> {
    let stack = stack()?;
    let aws = stack.sdk_config().await;
    let (sqs, sns) = (
        aws_sdk_sqs::Client::new(&aws),
        aws_sdk_sns::Client::new(&aws),
    );
    let topic = stack.info["env"]["MESSAGES_TOPIC_ARN"]
        .as_str()
        .context("MESSAGES_TOPIC_ARN")?;
    let (sms, sms_dlq, sms_arn) = (
        stack.queue("sms", "url")?,
        stack.queue("sms", "dlq_url")?,
        stack.queue("sms", "arn")?,
    );
    let (email, email_arn) = (stack.queue("email", "url")?, stack.queue("email", "arn")?);
    let max_receives = stack.info["queues"]["sms"]["max_receive_count"]
        .as_u64()
        .context("max_receive_count")?;
    set_visibility(&sqs, &sms, 1).await?;

    publish(&sns, topic, "sms", "ok").await?;
    publish(&sns, topic, "sms", "fail").await?;
    publish(&sns, topic, "email", "email").await?;

    let (url, seen) = invoke_endpoint().await?;
    let log = run_event_source(
        stack,
        &url,
        &[
            "--function",
            "dispatch",
            "--channel",
            "sms",
            "--channel",
            "email",
        ],
    )
    .await?;
    let records = records(&seen)?;

    // The succeeded message: invoked once, as Lambda shapes it, then deleted.
    let ok: Vec<&Value> = records
        .iter()
        .filter(|(_, r)| case(r) == "ok")
        .map(|(_, r)| r)
        .collect();
    ensure!(
        ok.len() == 1,
        "the succeeded message was invoked {} times",
        ok.len()
    );
    let record = ok[0];
    ensure!(record["eventSource"] == "aws:sqs", "eventSource: {record}");
    ensure!(
        record["eventSourceARN"] == sms_arn.as_str(),
        "eventSourceARN: {record}"
    );
    ensure!(
        record["awsRegion"] == stack.info["region"],
        "awsRegion: {record}"
    );
    ensure!(
        record["messageAttributes"]["channel"]["stringValue"] == "sms",
        "{record}"
    );
    ensure!(
        record["messageAttributes"]["channel"]["dataType"] == "String",
        "{record}"
    );
    for attribute in [
        "ApproximateReceiveCount",
        "SentTimestamp",
        "ApproximateFirstReceiveTimestamp",
        "SenderId",
    ] {
        ensure!(
            record["attributes"][attribute].is_string(),
            "attributes.{attribute}: {record}"
        );
    }
    ensure!(
        record["attributes"]["ApproximateReceiveCount"] == "1",
        "{record}"
    );
    ensure!(
        record["md5OfBody"].as_str().is_some_and(|m| m.len() == 32),
        "md5OfBody: {record}"
    );
    ensure!(
        record["messageId"].is_string() && record["receiptHandle"].is_string(),
        "ids: {record}"
    );
    // Raw delivery: the body is what was published, not an SNS envelope.
    let body: Value = serde_json::from_str(record["body"].as_str().context("body")?)?;
    ensure!(
        body == json!({"case": "ok", "to": RECIPIENT}),
        "body: {body}"
    );

    // The failed message: back after its visibility timeout, maxReceiveCount times, then dead.
    let receives: Vec<&str> = records
        .iter()
        .filter(|(_, r)| case(r) == "fail")
        .filter_map(|(_, r)| r["attributes"]["ApproximateReceiveCount"].as_str())
        .collect();
    let expected: Vec<String> = (1..=max_receives).map(|n| n.to_string()).collect();
    ensure!(
        receives == expected,
        "receive counts of the failed message: {receives:?}"
    );
    ensure!(
        depth(&sqs, &sms).await? == (0, 0),
        "the sms queue still holds messages"
    );
    let dead = dead_letters(&sqs, &sms_dlq).await?;
    ensure!(
        dead.len() == 1 && dead[0].contains(r#""fail""#),
        "sms dead letters: {} (expected the failed message)",
        dead.len()
    );

    // The email message went only to the email queue, and was deleted there.
    let emails: Vec<&Value> = records
        .iter()
        .filter(|(_, r)| case(r) == "email")
        .map(|(_, r)| r)
        .collect();
    ensure!(
        emails.len() == 1,
        "email message invoked {} times",
        emails.len()
    );
    ensure!(
        emails[0]["eventSourceARN"] == email_arn.as_str(),
        "{}",
        emails[0]
    );
    ensure!(
        emails[0]["messageAttributes"]["channel"]["stringValue"] == "email",
        "{}",
        emails[0]
    );
    ensure!(
        depth(&sqs, &email).await? == (0, 0),
        "the email queue still holds messages"
    );
    ensure!(
        records.iter().all(|(f, _)| f == "dispatch"),
        "invoked another function"
    );

    // One line per batch, and never a message body.
    ensure!(log.contains("batch"), "no batch lines in the log:\n{log}");
    ensure!(
        !log.contains(RECIPIENT),
        "a message body reached the log:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_invocation_deletes_nothing() -> anyhow::Result<()> {
    let stack = stack()?;
    let aws = stack.sdk_config().await;
    let (sqs, sns) = (
        aws_sdk_sqs::Client::new(&aws),
        aws_sdk_sns::Client::new(&aws),
    );
    let topic = stack.info["env"]["MESSAGES_TOPIC_ARN"]
        .as_str()
        .context("MESSAGES_TOPIC_ARN")?;
    let (queue, dlq) = (
        stack.queue("whatsapp", "url")?,
        stack.queue("whatsapp", "dlq_url")?,
    );
    let max_receives = stack.info["queues"]["whatsapp"]["max_receive_count"]
        .as_u64()
        .context("max_receive_count")? as usize;
    set_visibility(&sqs, &queue, 1).await?;
    publish(&sns, topic, "whatsapp", "ok").await?;

    let (url, seen) = invoke_endpoint().await?;
    let log = run_event_source(
        stack,
        &url,
        &["--function", "broken", "--channel", "whatsapp"],
    )
    .await?;

    let records = records(&seen)?;
    if records.is_empty() {
        bail!("the endpoint was never invoked:\n{log}");
    }
    // Even a record the function never reported failed stays: the whole invocation failed.
    ensure!(
        records.len() == max_receives,
        "invocations of the message: {}",
        records.len()
    );
    ensure!(
        depth(&sqs, &queue).await? == (0, 0),
        "the whatsapp queue still holds messages"
    );
    ensure!(
        dead_letters(&sqs, &dlq).await?.len() == 1,
        "the message is not in the DLQ"
    );
    ensure!(
        log.contains("nothing deleted"),
        "no failed-batch line:\n{log}"
    );
    ensure!(
        !log.contains("boom"),
        "the error message reached the log:\n{log}"
    );
    Ok(())
}
