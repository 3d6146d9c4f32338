//! Africa's Talking (SMS). Credentials: the app username (a setting) and its API key, sent in
//! the `apiKey` header. The check reads the account's user data (balance).

use crate::domain::snapshot::CheckOutcome;

pub async fn check_credentials(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    api_key: &str,
) -> CheckOutcome {
    let request = http
        .get(format!("{base}/version1/user"))
        .query(&[("username", username)])
        .header("apiKey", api_key)
        .header("Accept", "application/json");
    super::classify(request.send().await, "Africa's Talking").await
}
