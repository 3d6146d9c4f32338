//! Field-level problems found while parsing input: a machine-readable code, the offending field
//! (a dotted path into the request), and a sentence for people.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self {
            code: "required",
            field,
            message,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new("invalid", field, message)
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Checks a free-text field: trimmed, non-empty, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::required(field));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            "too_long",
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(FieldError::invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// An email address, checked for the shape providers accept (not for deliverability).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@').ok_or("an email address needs an @")?;
        let valid_local = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let valid_domain = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if valid_local && valid_domain {
            Ok(Self(s.to_owned()))
        } else {
            Err("not a valid email address".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        assert!(EmailAddress::parse("events@acme.example").is_ok());
        assert_eq!(
            EmailAddress::parse("a.b+c@mail.acme.io").map(|e| e.domain().to_owned()),
            Ok("mail.acme.io".into())
        );
        for bad in [
            "",
            "acme.example",
            "@acme.example",
            "a@b",
            "a b@c.io",
            "a@-c.io",
            ".a@c.io",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_fields() {
        assert_eq!(text("name", "  Gala  ", 10), Ok("Gala".into()));
        assert_eq!(text("name", "  ", 10).map_err(|e| e.code), Err("required"));
        assert_eq!(
            text("name", "x".repeat(11).as_str(), 10).map_err(|e| e.code),
            Err("too_long")
        );
    }
}
