//! Amazon SES v2 (email). Herald's own IAM role sends, so there are no tenant secrets; what must
//! hold is that the tenant's sender address (or its domain) is a verified SES identity.

use crate::domain::snapshot::CheckOutcome;
use crate::domain::validation::EmailAddress;

pub async fn check_sender(ses: &aws_sdk_sesv2::Client, from: &EmailAddress) -> CheckOutcome {
    for identity in [from.as_str(), from.domain()] {
        match ses
            .get_email_identity()
            .email_identity(identity)
            .send()
            .await
        {
            // VerificationStatus SUCCESS is the verification itself; VerifiedForSendingStatus
            // follows it in AWS (the emulator only reports the former).
            Ok(out)
                if out.verified_for_sending_status()
                    || out.verification_status()
                        == Some(&aws_sdk_sesv2::types::VerificationStatus::Success) =>
            {
                return CheckOutcome::Passed {
                    detail: format!("SES identity {identity} is verified for sending"),
                };
            }
            Ok(_) => {
                return CheckOutcome::Rejected {
                    detail: format!("SES identity {identity} is not verified for sending"),
                };
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                continue;
            }
            Err(_) => {
                return CheckOutcome::Unreachable {
                    detail: "SES could not be reached".to_owned(),
                };
            }
        }
    }
    CheckOutcome::Rejected {
        detail: format!("no SES identity exists for {} or its domain", from.domain()),
    }
}
