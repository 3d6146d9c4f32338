//! Twilio (SMS and WhatsApp). Credentials: the account SID (a setting) and its auth token.
//! The check fetches the Account resource, which needs exactly those credentials.

use crate::domain::snapshot::CheckOutcome;

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
