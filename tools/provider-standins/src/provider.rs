//! The third-party providers this crate stands in for, and the path prefix each is served under.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the providers served by the stand-in server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Twilio REST API 2010-04-01 (SMS and WhatsApp).
    Twilio,
    /// Africa's Talking SMS API `version1`.
    #[serde(rename = "africastalking")]
    AfricasTalking,
    /// Brevo API v3 (transactional email).
    Brevo,
    /// Meta Graph API, WhatsApp Cloud.
    Meta,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 4] = [
        Provider::Twilio,
        Provider::AfricasTalking,
        Provider::Brevo,
        Provider::Meta,
    ];

    /// The name used in JSON, on the command line and as the path prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::AfricasTalking => "africastalking",
            Provider::Brevo => "brevo",
            Provider::Meta => "meta",
        }
    }

    /// The path prefix the provider is served under, e.g. `/twilio`.
    pub fn prefix(self) -> String {
        format!("/{}", self.as_str())
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .to_ascii_lowercase()
            .replace(['_', '-', '\''], "")
            .as_str()
        {
            "twilio" => Ok(Provider::Twilio),
            "africastalking" | "at" => Ok(Provider::AfricasTalking),
            "brevo" => Ok(Provider::Brevo),
            "meta" | "whatsapp" | "metawhatsapp" => Ok(Provider::Meta),
            _ => anyhow::bail!(
                "unknown provider {s:?}; expected one of twilio, africastalking, brevo, meta"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() -> anyhow::Result<()> {
        for provider in Provider::ALL {
            assert_eq!(provider.as_str().parse::<Provider>()?, provider);
            let json = serde_json::to_string(&provider)?;
            assert_eq!(json, format!("\"{}\"", provider.as_str()));
            assert_eq!(serde_json::from_str::<Provider>(&json)?, provider);
        }
        assert_eq!(
            "Africa's-Talking".parse::<Provider>()?,
            Provider::AfricasTalking
        );
        assert!("sns".parse::<Provider>().is_err());
        Ok(())
    }
}
