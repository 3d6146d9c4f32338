//! Amazon SNS SMS. Herald's own IAM role sends; the check confirms the account's SMS settings
//! can be read with it. A send is one `Publish` to a phone number.

use aws_sdk_sns::types::MessageAttributeValue;

use super::{Accepted, Outbound, SendError};
use crate::domain::provider::SmsType;
use crate::domain::snapshot::CheckOutcome;

const PROVIDER: &str = "SNS";

pub async fn check_access(sns: &aws_sdk_sns::Client) -> CheckOutcome {
    match sns.get_sms_attributes().send().await {
        Ok(_) => CheckOutcome::Passed {
            detail: "SNS SMS is available to Herald's role".to_owned(),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_authorization_error_exception()) =>
        {
            CheckOutcome::Rejected {
                detail: "Herald's role may not use SNS SMS".to_owned(),
            }
        }
        Err(_) => CheckOutcome::Unreachable {
            detail: "SNS could not be reached".to_owned(),
        },
    }
}

/// Publishes `message` to its phone number with the configured SMS type and sender id
/// (`AWS.SNS.SMS.SMSType`, `AWS.SNS.SMS.SenderID`).
pub async fn send(
    sns: &aws_sdk_sns::Client,
    sender_id: Option<&str>,
    sms_type: SmsType,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    super::require_text(message)?;
    let to = super::e164(message.to)?;
    let string = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|_| {
                SendError::provider("request_not_built", "the SNS request could not be built")
            })
    };
    let sms_type = match sms_type {
        SmsType::Transactional => "Transactional",
        SmsType::Promotional => "Promotional",
    };
    let mut publish = sns
        .publish()
        .phone_number(to)
        .message(message.text)
        .message_attributes("AWS.SNS.SMS.SMSType", string(sms_type)?);
    if let Some(sender_id) = sender_id {
        publish = publish.message_attributes("AWS.SNS.SMS.SenderID", string(sender_id)?);
    }
    let output = publish
        .send()
        .await
        .map_err(|e| super::aws_error(PROVIDER, &e, classify))?;
    let provider_message_id = output
        .message_id()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| super::unexpected_answer(PROVIDER))?
        .to_owned();
    Ok(Accepted {
        provider_message_id,
        cost: None,
        segments: None,
    })
}

/// SNS `Publish` errors (API Reference, Publish "Errors") by who is at fault. `None` leaves it
/// to the generic AWS rules (throttling, 5xx, authorization).
fn classify(code: &str, message: &str) -> Option<SendError> {
    match code {
        "InvalidParameter" | "InvalidParameterValue" | "ParameterValueInvalid" => {
            // The sender id and SMS type are Herald's configuration; anything else in an SMS
            // publish is the number or the text.
            if message.contains("SenderID") || message.contains("SMSType") {
                Some(SendError::provider(
                    code,
                    "SNS refused the configured SMS attributes",
                ))
            } else {
                Some(SendError::permanent(
                    code,
                    "SNS refused the phone number or the message",
                ))
            }
        }
        "EndpointDisabled" => Some(SendError::permanent(code, "the endpoint is disabled")),
        "Throttled" => Some(SendError::retryable(
            "SNS is throttling; try again later",
            None,
        )),
        "AuthorizationError" => Some(SendError::provider(
            code,
            "Herald's role may not publish SMS",
        )),
        c if c.starts_with("KMS") => Some(SendError::provider(
            code,
            "SNS could not use its encryption key",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        let kind = |code, message| classify(code, message).map(|e| e.kind());
        assert_eq!(
            kind("InvalidParameter", "Invalid parameter: PhoneNumber"),
            Some("permanent")
        );
        assert_eq!(
            kind("InvalidParameter", "Invalid parameter: SenderID"),
            Some("provider")
        );
        assert_eq!(kind("Throttled", ""), Some("retryable"));
        assert_eq!(kind("AuthorizationError", ""), Some("provider"));
        assert_eq!(kind("InternalError", ""), None);
    }
}
