//! Meta WhatsApp Cloud API. Credentials: a system-user access token (and the app secret that
//! signs webhooks). The check reads the business phone number the configuration sends from.

use crate::domain::snapshot::CheckOutcome;

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
