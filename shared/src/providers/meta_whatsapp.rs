//! Meta WhatsApp Cloud API. Credentials: a system-user access token (and the app secret that
//! signs webhooks). The check reads the business phone number the configuration sends from; a
//! send posts a text message to `/{phone-number-id}/messages`.

use serde::Deserialize;
use serde_json::json;

use super::{Accepted, Outbound, SendError};
use crate::domain::snapshot::CheckOutcome;

const PROVIDER: &str = "Meta WhatsApp";

pub async fn check_credentials(
    http: &reqwest::Client,
    base: &str,
    phone_number_id: &str,
    access_token: &str,
) -> CheckOutcome {
    let request = http
        .get(format!("{base}/{phone_number_id}"))
        .query(&[("fields", "id,display_phone_number,verified_name")])
        .bearer_auth(access_token);
    super::classify(request.send().await, "Meta WhatsApp").await
}

#[derive(Deserialize)]
struct Sent {
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

/// Graph's error body: `{"error": {"message", "type", "code", "error_subcode", "error_data",
/// "fbtrace_id"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    code: Option<u32>,
    error_subcode: Option<u32>,
}

/// Sends `message` as a free-form text message. Herald's message id rides along as
/// `biz_opaque_callback_data`, which Meta returns in the status webhooks.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    phone_number_id: &str,
    access_token: &str,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    super::require_text(message)?;
    let number = super::e164(message.to.strip_prefix("whatsapp:").unwrap_or(message.to))?;
    // Cloud API takes the number as digits, without the '+'.
    let to = number.trim_start_matches('+');
    let body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": { "body": message.text, "preview_url": false },
        "biz_opaque_callback_data": message.message_id,
    });
    let response = http
        .post(format!("{base}/{phone_number_id}/messages"))
        .bearer_auth(access_token)
        .json(&body)
        .send()
        .await
        .map_err(|e| super::unreachable(PROVIDER, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| super::unreachable(PROVIDER, &e))?;
    if status.is_success() {
        let sent: Sent =
            serde_json::from_slice(&bytes).map_err(|_| super::unexpected_answer(PROVIDER))?;
        let id = sent
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| super::unexpected_answer(PROVIDER))?;
        return Ok(Accepted {
            provider_message_id: id,
            cost: None,
            segments: None,
        });
    }
    let graph = serde_json::from_slice::<ErrorBody>(&bytes)
        .ok()
        .map(|b| b.error);
    let classified = graph
        .as_ref()
        .and_then(|e| classify(e.code?, e.error_subcode));
    let error = match classified {
        Some(error) => error,
        None if status.as_u16() == 429 || status.is_server_error() => {
            super::by_status(PROVIDER, status, &headers)
        }
        None => {
            let code = graph.and_then(|e| e.code).map(|c| c.to_string());
            match super::by_status(PROVIDER, status, &headers) {
                SendError::Provider {
                    code: http_code,
                    reason,
                } => SendError::Provider {
                    code: code.unwrap_or(http_code),
                    reason,
                },
                other => other,
            }
        }
    };
    Err(error.hinted(super::retry_after(&headers)))
}

/// Graph / WhatsApp Cloud API error codes (developers.facebook.com, WhatsApp Cloud API
/// "Error codes") by who is at fault. `None` leaves it to the HTTP status.
fn classify(code: u32, subcode: Option<u32>) -> Option<SendError> {
    let permanent = |reason: &str| Some(SendError::permanent(code.to_string(), reason));
    let provider = |reason: &str| Some(SendError::provider(code.to_string(), reason));
    match code {
        // Throttling and outages: later, or elsewhere.
        1 | 2 | 4 | 80007 | 130429 | 131000 | 131016 | 131048 | 131056 | 133004 => {
            Some(SendError::retryable(
                format!(
                    "WhatsApp Cloud API is throttling or unavailable ({code}); try again later"
                ),
                None,
            ))
        }
        // Subcode 33: the phone number id does not exist for this token.
        100 if subcode == Some(33) => {
            provider("the business phone number does not exist or the token may not use it")
        }
        // Our token, app or business account.
        0 | 3 | 10 | 190 => provider("Meta refused the access token or its permissions"),
        200..=299 => provider("the token lacks a permission WhatsApp needs"),
        368 | 131031 => provider("the WhatsApp Business Account is restricted or locked"),
        131042 => provider("the WhatsApp Business Account has a payment problem"),
        131030 => provider("the recipient is not on the test number's allowed list"),
        131045 | 133010 => provider("the business phone number is not registered"),
        // This recipient or this message.
        100 => permanent("WhatsApp refused a parameter of the message (recipient or content)"),
        131008 | 131009 => permanent("WhatsApp refused a parameter of the message"),
        131021 => permanent("the recipient is the sender"),
        131026 => permanent("the message cannot be delivered to this WhatsApp user"),
        131047 => permanent("outside the 24-hour window a template message is required"),
        131049 => permanent("Meta chose not to deliver this message to the recipient"),
        131051 => permanent("the message type is not supported"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        let kind = |code, subcode| classify(code, subcode).map(|e| e.kind());
        assert_eq!(kind(190, None), Some("provider"));
        assert_eq!(kind(131026, None), Some("permanent"));
        assert_eq!(kind(100, None), Some("permanent"));
        assert_eq!(kind(100, Some(33)), Some("provider"));
        for code in [130429, 131048, 131056, 4, 80007] {
            assert_eq!(kind(code, None), Some("retryable"), "{code}");
        }
        assert_eq!(kind(999_999, None), None);
    }
}
