//! The two wire formats of Lambda's SQS integration: the event a batch of received messages
//! becomes, and how Lambda reads the function's answer (`ReportBatchItemFailures`).

use std::collections::{HashMap, HashSet};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use serde_json::Value;

/// The queue a batch came from, as the records name it.
#[derive(Debug, Clone)]
pub struct Source {
    pub queue_arn: String,
    pub region: String,
}

/// The event Lambda sends for a batch of received messages.
pub fn sqs_event(messages: &[Message], source: &Source) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(|m| record(m, source)).collect();
    event
}

fn record(message: &Message, source: &Source) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = message.message_id.clone();
    record.receipt_handle = message.receipt_handle.clone();
    record.body = message.body.clone();
    record.md5_of_body = message.md5_of_body.clone();
    record.md5_of_message_attributes = message.md5_of_message_attributes.clone();
    record.attributes = message
        .attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                .collect()
        })
        .unwrap_or_default();
    record.message_attributes = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.clone(), attribute(value)))
                .collect::<HashMap<_, _>>()
        })
        .unwrap_or_default();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(source.queue_arn.clone());
    record.aws_region = Some(source.region.clone());
    record
}

fn attribute(value: &MessageAttributeValue) -> SqsMessageAttribute {
    let bytes = |blob: &aws_sdk_sqs::primitives::Blob| {
        let mut data = Base64Data::default();
        data.extend_from_slice(blob.as_ref());
        data
    };
    let mut attribute = SqsMessageAttribute::default();
    attribute.string_value = value.string_value.clone();
    attribute.binary_value = value.binary_value.as_ref().map(bytes);
    attribute.string_list_values = value.string_list_values().to_vec();
    attribute.binary_list_values = value.binary_list_values().iter().map(bytes).collect();
    attribute.data_type = Some(value.data_type.clone());
    attribute
}

/// What Lambda makes of an invocation's result, per record.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Delete every record except these (message ids; empty: delete all).
    Partial(HashSet<String>),
    /// Delete nothing: the function failed or answered something Lambda rejects.
    BatchFailed(String),
}

/// Reads a successful invocation's payload the way Lambda does with `ReportBatchItemFailures`:
/// an empty or null answer, or an empty or null `batchItemFailures`, acknowledges the whole
/// batch; invalid JSON, an item without a non-empty `itemIdentifier`, or an identifier that is
/// not in the batch fails the whole batch; a Lambda error payload (`errorType`/`errorMessage`,
/// which `cargo lambda watch` also returns for init errors) is a failed invocation.
pub fn outcome(payload: &[u8], batch: &HashSet<&str>) -> Outcome {
    let text = String::from_utf8_lossy(payload);
    if text.trim().is_empty() {
        return Outcome::Partial(HashSet::new());
    }
    let value: Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(error) => return Outcome::BatchFailed(format!("invalid JSON response: {error}")),
    };
    let object = match value {
        Value::Null => return Outcome::Partial(HashSet::new()),
        Value::Object(object) => object,
        _ => return Outcome::BatchFailed("response is not an SqsBatchResponse object".to_owned()),
    };
    if object.contains_key("errorType") || object.contains_key("errorMessage") {
        return Outcome::BatchFailed(format!(
            "function error: {}",
            object
                .get("errorType")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
        ));
    }
    match object.get("batchItemFailures") {
        None | Some(Value::Null) => return Outcome::Partial(HashSet::new()),
        Some(_) => {}
    }
    let response: SqsBatchResponse = match serde_json::from_value(Value::Object(object)) {
        Ok(response) => response,
        Err(error) => return Outcome::BatchFailed(format!("invalid batchItemFailures: {error}")),
    };
    let mut failed = HashSet::new();
    for item in response.batch_item_failures {
        if item.item_identifier.is_empty() {
            return Outcome::BatchFailed("empty itemIdentifier".to_owned());
        }
        if !batch.contains(item.item_identifier.as_str()) {
            return Outcome::BatchFailed(format!(
                "itemIdentifier {:?} is not a message of the batch",
                item.item_identifier
            ));
        }
        failed.insert(item.item_identifier);
    }
    Outcome::Partial(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    fn batch() -> HashSet<&'static str> {
        ["m-1", "m-2"].into_iter().collect()
    }

    fn failed(ids: &[&str]) -> Outcome {
        Outcome::Partial(ids.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn acknowledges_the_whole_batch_on_empty_answers() {
        for payload in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(
                outcome(payload.as_bytes(), &batch()),
                failed(&[]),
                "{payload}"
            );
        }
    }

    #[test]
    fn keeps_reported_failures() {
        let payload = r#"{"batchItemFailures":[{"itemIdentifier":"m-2"}]}"#;
        assert_eq!(outcome(payload.as_bytes(), &batch()), failed(&["m-2"]));
    }

    #[test]
    fn fails_the_whole_batch_like_lambda() {
        for payload in [
            "not json",
            r#""ok""#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"messageId":"m-1"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"m-9"}]}"#,
            r#"{"batchItemFailures":"m-1"}"#,
            r#"{"errorType":"Runtime.ExitError","errorMessage":"boom"}"#,
        ] {
            assert!(
                matches!(
                    outcome(payload.as_bytes(), &batch()),
                    Outcome::BatchFailed(_)
                ),
                "{payload}"
            );
        }
    }

    #[test]
    fn builds_records_as_lambda_does() -> anyhow::Result<()> {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body(r#"{"message_id":"msg_1"}"#)
            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .message_attributes(
                "channel",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("sms")
                    .build()?,
            )
            .message_attributes(
                "raw",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(b"hi".to_vec()))
                    .build()?,
            )
            .build();
        let source = Source {
            queue_arn: "arn:aws:sqs:eu-west-1:123456789012:sms".to_owned(),
            region: "eu-west-1".to_owned(),
        };
        let json = serde_json::to_value(sqs_event(&[message], &source))?;
        let record = &json["Records"][0];
        assert_eq!(record["messageId"], "m-1");
        assert_eq!(record["receiptHandle"], "rh-1");
        assert_eq!(record["md5OfBody"], "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(record["attributes"]["SentTimestamp"], "1700000000000");
        assert_eq!(record["messageAttributes"]["channel"]["stringValue"], "sms");
        assert_eq!(record["messageAttributes"]["channel"]["dataType"], "String");
        assert_eq!(record["messageAttributes"]["raw"]["binaryValue"], "aGk=");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], source.queue_arn);
        assert_eq!(record["awsRegion"], "eu-west-1");
        // And the function's own parser reads it back.
        let back: SqsEvent = serde_json::from_value(json)?;
        assert_eq!(
            back.records[0].body.as_deref(),
            Some(r#"{"message_id":"msg_1"}"#)
        );
        Ok(())
    }
}
