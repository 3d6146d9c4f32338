//! SMTP, the legacy email fallback. Credentials: the password of the configured user. The check
//! connects, negotiates TLS as configured, authenticates and says NOOP.

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::domain::provider::SmtpSecurity;
use crate::domain::snapshot::CheckOutcome;

pub async fn check_credentials(
    host: &str,
    port: u16,
    security: SmtpSecurity,
    username: &str,
    password: &str,
) -> CheckOutcome {
    let builder = match security {
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
    };
    let Ok(builder) = builder else {
        return CheckOutcome::Rejected {
            detail: "the SMTP host name is not usable for TLS".to_owned(),
        };
    };
    let transport: AsyncSmtpTransport<Tokio1Executor> = builder
        .port(port)
        .timeout(Some(super::CHECK_TIMEOUT))
        .credentials(Credentials::new(username.to_owned(), password.to_owned()))
        .build();
    match transport.test_connection().await {
        Ok(true) => CheckOutcome::Passed {
            detail: "the SMTP server accepted the login".to_owned(),
        },
        Ok(false) => CheckOutcome::Unreachable {
            detail: "the SMTP server closed the connection".to_owned(),
        },
        Err(e) if e.is_permanent() => CheckOutcome::Rejected {
            detail: "the SMTP server refused the login".to_owned(),
        },
        Err(_) => CheckOutcome::Unreachable {
            detail: "the SMTP server could not be reached".to_owned(),
        },
    }
}
