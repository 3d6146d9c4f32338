//! Brevo (email). Credentials: an API v3 key in the `api-key` header. The check reads the
//! account, which any valid key may do; a send posts a transactional email (`/v3/smtp/email`).

use serde::Deserialize;
use serde_json::json;

use super::{Accepted, Outbound, SendError};
use crate::domain::snapshot::CheckOutcome;
use crate::domain::validation::EmailAddress;

const PROVIDER: &str = "Brevo";

pub async fn check_credentials(http: &reqwest::Client, base: &str, api_key: &str) -> CheckOutcome {
    let request = http
        .get(format!("{base}/v3/account"))
        .header("api-key", api_key)
        .header("accept", "application/json");
    super::classify(request.send().await, "Brevo").await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    message_id: String,
}

/// Brevo's error body: `{"code": "invalid_parameter", "message": "..."}`.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    #[serde(default)]
    message: String,
}

/// Sends `message` from `from_address`. Herald's message id travels as the
/// `X-Herald-Message-Id` header and as `X-Mailin-custom`, which Brevo echoes in its webhooks.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    from_address: &EmailAddress,
    from_name: Option<&str>,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    let to = super::email_recipient(message.to)?;
    let subject = super::require_subject(message)?;
    super::require_text(message)?;
    let mut sender = json!({ "email": from_address.as_str() });
    if let Some(name) = from_name {
        sender["name"] = json!(name);
    }
    let mut email = json!({
        "sender": sender,
        "to": [{ "email": to.to_string() }],
        "subject": subject,
        "textContent": message.text,
        "headers": {
            "X-Herald-Message-Id": message.message_id,
            "X-Mailin-custom": message.message_id,
        },
    });
    if let Some(html) = message.html {
        email["htmlContent"] = json!(html);
    }
    let response = http
        .post(format!("{base}/v3/smtp/email"))
        .header("api-key", api_key)
        .header(reqwest::header::ACCEPT, "application/json")
        .json(&email)
        .send()
        .await
        .map_err(|e| super::unreachable(PROVIDER, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| super::unreachable(PROVIDER, &e))?;
    if status.is_success() {
        let sent: Sent =
            serde_json::from_slice(&body).map_err(|_| super::unexpected_answer(PROVIDER))?;
        return Ok(Accepted {
            provider_message_id: sent.message_id,
            cost: None,
            segments: None,
        });
    }
    let error = serde_json::from_slice::<ErrorBody>(&body).ok();
    let hint = super::retry_after(&headers)
        .or_else(|| super::seconds_header(&headers, "x-sib-ratelimit-reset"));
    let classified = error
        .as_ref()
        .and_then(|e| classify(status.as_u16(), e.code.as_deref()?, &e.message));
    Err(classified
        .unwrap_or_else(|| super::by_status(PROVIDER, status, &headers))
        .hinted(hint))
}

/// Brevo's error codes (developers.brevo.com, "Error codes"; rate limits in "Rate limit
/// headers") by who is at fault. `None` leaves it to the HTTP status.
fn classify(status: u16, code: &str, message: &str) -> Option<SendError> {
    match code {
        "unauthorized"
        | "permission_denied"
        | "not_enough_credits"
        | "account_under_validation"
        | "reseller_permission_denied" => Some(SendError::provider(
            code,
            "Brevo refused the account (key, permissions, credits or validation)",
        )),
        // The sender is Herald's configuration, whatever else is wrong with the request.
        "invalid_parameter" | "missing_parameter" if message.contains("sender") => Some(
            SendError::provider(code, "Brevo refused the configured sender"),
        ),
        // The recipient or the message itself.
        "invalid_parameter" | "missing_parameter" | "out_of_range" if status == 400 => Some(
            SendError::permanent(code, "Brevo refused the recipient or the message content"),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        let kind = |status, code, message| classify(status, code, message).map(|e| e.kind());
        assert_eq!(
            kind(400, "invalid_parameter", "email is not valid in to"),
            Some("permanent")
        );
        assert_eq!(
            kind(400, "invalid_parameter", "valid sender email required"),
            Some("provider")
        );
        assert_eq!(kind(401, "unauthorized", "Key not found"), Some("provider"));
        assert_eq!(kind(402, "not_enough_credits", ""), Some("provider"));
        assert_eq!(kind(429, "too_many_requests", ""), None);
    }
}
