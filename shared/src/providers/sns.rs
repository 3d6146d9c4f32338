//! Amazon SNS SMS. Herald's own IAM role sends; the check confirms the account's SMS settings
//! can be read with it.

use crate::domain::snapshot::CheckOutcome;

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
