//! SMTP, the legacy email fallback. Credentials: the password of the configured user. The check
//! connects, negotiates TLS as configured, authenticates and says NOOP; a send delivers one
//! multipart/alternative message (text and HTML) over the same kind of connection.

use crate::domain::message::ListUnsubscribe;
use std::error::Error as _;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Accepted, Outbound, SendError};
use crate::domain::provider::SmtpSecurity;
use crate::domain::snapshot::CheckOutcome;
use crate::domain::validation::EmailAddress;

/// The server and login a configuration names.
#[derive(Clone, Copy)]
pub struct Server<'a> {
    pub host: &'a str,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: &'a str,
    pub password: &'a str,
}

impl std::fmt::Debug for Server<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A transport for `server`: TLS as configured, authenticated, bounded by the check timeout.
/// `None` when the host name cannot be used for TLS.
fn transport(server: &Server<'_>) -> Option<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match server.security {
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            server.host,
        )),
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(server.host),
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(server.host),
    };
    Some(
        builder
            .ok()?
            .port(server.port)
            .timeout(Some(super::CHECK_TIMEOUT))
            .credentials(Credentials::new(
                server.username.to_owned(),
                server.password.to_owned(),
            ))
            .build(),
    )
}

pub async fn check_credentials(
    host: &str,
    port: u16,
    security: SmtpSecurity,
    username: &str,
    password: &str,
) -> CheckOutcome {
    let server = Server {
        host,
        port,
        security,
        username,
        password,
    };
    let Some(transport) = transport(&server) else {
        return CheckOutcome::Rejected {
            detail: "the SMTP host name is not usable for TLS".to_owned(),
        };
    };
    // lettre bounds only the TCP connect; a server that connects and then stays silent is cut
    // off here.
    let tested = tokio::time::timeout(super::CHECK_TIMEOUT, transport.test_connection()).await;
    let Ok(tested) = tested else {
        return CheckOutcome::Unreachable {
            detail: "the SMTP server did not answer in time".to_owned(),
        };
    };
    match tested {
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

/// The header carrying Herald's message id.
pub const MESSAGE_ID_HEADER: &str = "X-Herald-Message-Id";

/// Sends `message` as multipart/alternative (text, and HTML when there is some) with a
/// `Message-ID` made from Herald's id, which is also the provider message id (bounces quote it).
///
/// The transport is built per call: simple, and right for a fallback. Pooling connections
/// (lettre's `pool` feature, one transport per configuration kept in `ProviderClients`) is
/// possible if SMTP ever carries volume.
pub async fn send(
    server: &Server<'_>,
    from_address: &EmailAddress,
    from_name: Option<&str>,
    message: &Outbound<'_>,
) -> Result<Accepted, SendError> {
    let to = super::email_recipient(message.to)?;
    let subject = super::require_subject(message)?;
    super::require_text(message)?;
    let sender: lettre::Address = from_address.as_str().parse().map_err(|_| {
        SendError::provider(
            "invalid_sender",
            "the configured sender address is not usable",
        )
    })?;
    let name = from_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    // Herald ids are letters, digits and '_'; anything else is kept out of the headers.
    let id: String = message
        .message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let message_id = format!("<{id}@{}>", sender.domain());
    let body = match message.html {
        Some(html) => MultiPart::alternative_plain_html(message.text.to_owned(), html.to_owned()),
        None => MultiPart::mixed().singlepart(SinglePart::plain(message.text.to_owned())),
    };
    let mut email = Message::builder()
        .message_id(Some(message_id.clone()))
        .from(Mailbox::new(name, sender))
        .to(Mailbox::new(None, to))
        .subject(subject)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(MESSAGE_ID_HEADER),
            id,
        ));
    if let Some(unsubscribe) = message.list_unsubscribe {
        email = email
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                unsubscribe.header(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                ListUnsubscribe::POST.to_owned(),
            ));
    }
    let email = email
        .multipart(body)
        .map_err(|_| SendError::permanent("invalid_message", "the email could not be built"))?;
    let Some(transport) = transport(server) else {
        return Err(SendError::provider(
            "invalid_host",
            "the SMTP host name is not usable for TLS",
        ));
    };
    // lettre bounds only the TCP connect; the whole conversation is bounded here.
    match tokio::time::timeout(super::CHECK_TIMEOUT, transport.send(email)).await {
        Ok(sent) => sent.map_err(|e| classify(&e))?,
        Err(_) => {
            return Err(SendError::retryable(
                "the SMTP server did not answer in time",
                None,
            ));
        }
    };
    Ok(Accepted {
        provider_message_id: message_id,
        cost: None,
        segments: None,
    })
}

/// Classifies an SMTP failure by reply code (RFC 5321 §4.2) and, where the server gives one,
/// enhanced status code (RFC 3463), since lettre does not say which command was refused.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if let Some(code) = e.status() {
        let reply = u16::from(code);
        let text = e.source().map(ToString::to_string).unwrap_or_default();
        return by_reply(reply, enhanced(&text));
    }
    if e.is_timeout() {
        SendError::retryable("the SMTP server did not answer in time", None)
    } else if e.is_tls() {
        SendError::provider("tls", "TLS with the SMTP server failed")
    } else if e.is_client() {
        SendError::provider("client", "the SMTP server cannot take this message")
    } else {
        SendError::retryable("the SMTP server could not be reached", None)
    }
}

/// `5.1.1` from `5.1.1 <x@y>: Recipient address rejected`.
fn enhanced(text: &str) -> Option<(u16, u16)> {
    let first = text.split_whitespace().next()?;
    let mut parts = first.split('.');
    let class: u16 = parts.next()?.parse().ok()?;
    let subject: u16 = parts.next()?.parse().ok()?;
    let detail: u16 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && matches!(class, 2 | 4 | 5)).then_some((subject, detail))
}

fn by_reply(reply: u16, enhanced: Option<(u16, u16)>) -> SendError {
    let code = reply.to_string();
    if (400..500).contains(&reply) {
        return SendError::retryable(
            format!("the SMTP server answered {reply} (temporary); try again later"),
            None,
        );
    }
    match (reply, enhanced) {
        // Authentication (535 5.7.8 and friends).
        (530 | 534 | 535 | 538, _) | (_, Some((7, 8 | 9 | 11 | 12))) => {
            SendError::provider(code, "the SMTP server refused the login")
        }
        // Bad sender mailbox or system (X.1.7, X.1.8).
        (_, Some((1, 7 | 8))) => SendError::provider(code, "the SMTP server refused the sender"),
        // Mailbox unavailable, not local, name not allowed; message or mailbox too big;
        // transaction refused; domain accepts no mail.
        (550 | 551 | 553, _) => {
            SendError::permanent(code, "the SMTP server refused the recipient mailbox")
        }
        (552 | 554 | 521 | 556, _) => {
            SendError::permanent(code, "the SMTP server refused the message")
        }
        // Syntax errors, unsupported commands: this server cannot be used as configured.
        _ => SendError::provider(code, "the SMTP server refused the conversation"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_blame_the_right_party() {
        let kind = |reply, text: &str| by_reply(reply, enhanced(text)).kind();
        assert_eq!(kind(550, "5.1.1 mailbox unavailable"), "permanent");
        assert_eq!(kind(553, "5.1.3 Error: malformed address"), "permanent");
        assert_eq!(kind(551, ""), "permanent");
        assert_eq!(
            kind(535, "5.7.8 Authentication credentials invalid"),
            "provider"
        );
        assert_eq!(kind(550, "5.1.8 sender domain rejected"), "provider");
        assert_eq!(kind(452, "4.3.1 Insufficient system storage"), "retryable");
        assert_eq!(kind(421, ""), "retryable");
        assert_eq!(kind(502, "5.5.1 command not implemented"), "provider");
        assert_eq!(by_reply(550, None).code(), Some("550"));
    }

    #[test]
    fn enhanced_codes_are_read_from_the_reply_text() {
        assert_eq!(enhanced("5.1.1 <a@b.example>: unknown"), Some((1, 1)));
        assert_eq!(enhanced("Error: malformed address"), None);
        assert_eq!(enhanced("5.7"), None);
    }
}
