//! Brevo (email). Credentials: an API v3 key in the `api-key` header. The check reads the
//! account, which any valid key may do.

use crate::domain::snapshot::CheckOutcome;

pub async fn check_credentials(http: &reqwest::Client, base: &str, api_key: &str) -> CheckOutcome {
    let request = http
        .get(format!("{base}/v3/account"))
        .header("api-key", api_key)
        .header("accept", "application/json");
    super::classify(request.send().await, "Brevo").await
}
