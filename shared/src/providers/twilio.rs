//! Twilio (SMS and WhatsApp). Credentials: the account SID (a setting) and its auth token.
//! The check fetches the Account resource, which needs exactly those credentials; a send creates
//! a Message resource (`POST /2010-04-01/Accounts/{sid}/Messages.json`).

use serde::Deserialize;

use super::{Accepted, Outbound, ProviderCost, SendError};
use crate::domain::snapshot::CheckOutcome;

const PROVIDER: &str = "Twilio";

pub async fn check_credentials(
    http: &reqwest::Client,
    base: &str,
    account_sid: &str,
    auth_token: &str,
) -> CheckOutcome {
    let url = format!("{base}/2010-04-01/Accounts/{account_sid}.json");
    super::classify(
        http.get(url)
            .basic_auth(account_sid, Some(auth_token))
            .send()
            .await,
        "Twilio",
    )
    .await
}

/// The parts of a Message resource Herald reads.
#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    num_segments: Option<String>,
    price: Option<String>,
    price_unit: Option<String>,
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
}

/// Sends `message` from `from`: an E.164 number, a `whatsapp:` address, or a Messaging Service
/// SID (`MG...`, which picks the sender itself). A WhatsApp send through a Messaging Service
/// passes `to` as `whatsapp:+E164`.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    account_sid: &str,
    from: &str,
    auth_token: &str,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    super::require_text(message)?;
    let is_service = from.len() == 34 && from.starts_with("MG");
    let whatsapp = from.starts_with("whatsapp:") || message.to.starts_with("whatsapp:");
    let number = super::e164(message.to.strip_prefix("whatsapp:").unwrap_or(message.to))?;
    let address = |n: &str| {
        if whatsapp && !n.starts_with("whatsapp:") {
            format!("whatsapp:{n}")
        } else {
            n.to_owned()
        }
    };
    let to = address(number);
    let mut form: Vec<(&str, String)> = vec![("To", to)];
    if is_service {
        form.push(("MessagingServiceSid", from.to_owned()));
    } else {
        form.push(("From", address(from)));
    }
    form.push(("Body", message.text.to_owned()));
    if let Some(callback) = message.status_callback {
        form.push(("StatusCallback", callback.to_owned()));
    }

    let url = format!("{base}/2010-04-01/Accounts/{account_sid}/Messages.json");
    let response = http
        .post(url)
        .basic_auth(account_sid, Some(auth_token))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
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
        let resource: MessageResource =
            serde_json::from_slice(&body).map_err(|_| super::unexpected_answer(PROVIDER))?;
        return Ok(accepted(resource));
    }
    let code = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.code);
    let error = code.and_then(classify_code).unwrap_or_else(|| {
        match super::by_status(PROVIDER, status, &headers) {
            // Keep Twilio's own code when it is one Herald does not list.
            SendError::Provider {
                code: http_code,
                reason,
            } => SendError::Provider {
                code: code.map_or(http_code, |c| c.to_string()),
                reason,
            },
            other => other,
        }
    });
    Err(error.hinted(super::retry_after(&headers)))
}

fn accepted(resource: MessageResource) -> Accepted {
    // A Messaging Service reports 0 segments until it has picked a sender: unknown, not zero.
    let segments = resource
        .num_segments
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n > 0);
    let cost = match (&resource.price, &resource.price_unit) {
        (Some(price), Some(unit)) => ProviderCost::from_parts(price, unit),
        _ => None,
    };
    Accepted {
        provider_message_id: resource.sid,
        cost,
        segments,
    }
}

/// Twilio error codes (https://www.twilio.com/docs/api/errors) by who is at fault. `None` for
/// codes not listed here: the HTTP status decides.
fn classify_code(code: u32) -> Option<SendError> {
    let permanent = |reason: &str| Some(SendError::permanent(code.to_string(), reason));
    let provider = |reason: &str| Some(SendError::provider(code.to_string(), reason));
    match code {
        // The recipient, for good.
        21211 => permanent("the 'To' number is not a valid phone number"),
        21408 => permanent("sending to the recipient's region is not enabled"),
        21610 => permanent("the recipient has unsubscribed (STOP) from this sender"),
        21612 => permanent("the 'To' number cannot be reached from this sender"),
        21614 => permanent("the 'To' number is not a mobile number"),
        21602 => permanent("the message has no body"),
        21617 => permanent("the message body exceeds 1600 characters"),
        63003 => permanent("the WhatsApp recipient could not be found"),
        63016 => permanent("outside the WhatsApp 24-hour window a template is required"),
        // Herald's account or sender.
        20003 => provider("Twilio refused the credentials"),
        20404 => provider("the account does not exist for these credentials"),
        20005 | 20008 => {
            provider("the account is not active or cannot send with these credentials")
        }
        21212 => provider("the 'From' number is not a valid sender"),
        21606 => provider("the 'From' number cannot send SMS for this account"),
        21603 => provider("no 'From' number is configured"),
        21608 => provider("a trial account can only send to verified numbers"),
        21701 => provider("the Messaging Service does not exist"),
        21910 => provider("the 'From' address and the 'To' address are on different channels"),
        63007 => provider("no WhatsApp sender matches the 'From' address"),
        // Throttling and queues: later, or elsewhere.
        20429 | 14107 | 21611 | 63018 => Some(SendError::retryable(
            format!("Twilio is throttling ({code}); try again later"),
            None,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_blame_the_right_party() {
        for code in [21211, 21408, 21610, 21612, 21614] {
            assert_eq!(
                classify_code(code).map(|e| e.kind()),
                Some("permanent"),
                "{code}"
            );
        }
        for code in [20003, 21212, 21606, 21608] {
            assert_eq!(
                classify_code(code).map(|e| e.kind()),
                Some("provider"),
                "{code}"
            );
        }
        assert_eq!(classify_code(20429).map(|e| e.kind()), Some("retryable"));
        assert!(classify_code(20500).is_none());
    }

    #[test]
    fn price_and_segments_are_read_exactly() {
        let resource: MessageResource = serde_json::from_value(serde_json::json!({
            "sid": "SM1", "num_segments": "2", "price": "-0.00750", "price_unit": "USD"
        }))
        .expect("resource");
        let accepted = accepted(resource);
        assert_eq!(accepted.segments, Some(2));
        assert_eq!(
            accepted.cost,
            Some(ProviderCost {
                amount_micros: 7_500,
                currency: "USD".into()
            })
        );
        let service: MessageResource = serde_json::from_value(serde_json::json!({
            "sid": "SM2", "num_segments": "0", "price": null, "price_unit": "USD"
        }))
        .expect("resource");
        let accepted = super::accepted(service);
        assert_eq!((accepted.segments, accepted.cost), (None, None));
    }
}
