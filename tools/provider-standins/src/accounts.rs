//! Credentials the stand-ins accept: the public, serialisable description (`Accounts`, also the
//! `--accounts` file and the body of `POST /_standin/accounts`) and the lookup tables built from it.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Starting Africa's Talking balance, in ten-thousandths of a shilling (KES 1000.0000).
pub(crate) const DEFAULT_AT_BALANCE: i64 = 1000 * 10_000;

/// Credentials to register, grouped by provider. Every list may be empty.
///
/// ```json
/// {
///   "twilio": [{"account_sid": "AC...", "auth_token": "...", "api_keys": [{"sid": "SK...", "secret": "..."}]}],
///   "africastalking": [{"username": "sandbox", "api_key": "..."}],
///   "brevo": [{"api_key": "xkeysib-..."}],
///   "meta": [{"phone_number_id": "106540352242922", "access_token": "..."}]
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    pub twilio: Vec<TwilioAccount>,
    pub africastalking: Vec<AfricasTalkingAccount>,
    pub brevo: Vec<BrevoAccount>,
    pub meta: Vec<MetaPhoneNumber>,
}

impl Accounts {
    /// No credentials at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a Twilio account authenticated with `AccountSid:AuthToken`.
    pub fn twilio_account(
        mut self,
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> Self {
        self.twilio.push(TwilioAccount {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            api_keys: Vec::new(),
            friendly_name: None,
        });
        self
    }

    /// Adds an API key (`SK...:secret`) that authenticates as `account_sid`.
    pub fn twilio_api_key(
        mut self,
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        let account_sid = account_sid.into();
        let key = TwilioApiKey {
            sid: key_sid.into(),
            secret: secret.into(),
        };
        match self
            .twilio
            .iter_mut()
            .find(|a| a.account_sid == account_sid)
        {
            Some(account) => account.api_keys.push(key),
            // An API key alone still needs its account to exist; without an auth token only the
            // key authenticates.
            None => self.twilio.push(TwilioAccount {
                account_sid,
                auth_token: String::new(),
                api_keys: vec![key],
                friendly_name: None,
            }),
        }
        self
    }

    /// Adds an Africa's Talking application (`username` plus `apiKey`).
    pub fn africastalking_account(
        mut self,
        username: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        self.africastalking.push(AfricasTalkingAccount {
            username: username.into(),
            api_key: api_key.into(),
        });
        self
    }

    /// Adds a Brevo API key.
    pub fn brevo_key(mut self, api_key: impl Into<String>) -> Self {
        self.brevo.push(BrevoAccount {
            api_key: api_key.into(),
            email: None,
            company_name: None,
        });
        self
    }

    /// Adds a WhatsApp Cloud phone number id reachable with `access_token`.
    pub fn meta_phone_number(
        mut self,
        phone_number_id: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Self {
        self.meta.push(MetaPhoneNumber {
            phone_number_id: phone_number_id.into(),
            access_token: access_token.into(),
            display_phone_number: None,
            verified_name: None,
        });
        self
    }

    /// Appends everything in `other`.
    pub fn extend(&mut self, other: Accounts) {
        self.twilio.extend(other.twilio);
        self.africastalking.extend(other.africastalking);
        self.brevo.extend(other.brevo);
        self.meta.extend(other.meta);
    }

    /// How many entries of each provider this holds.
    pub(crate) fn counts(&self) -> serde_json::Value {
        serde_json::json!({
            "twilio": self.twilio.len(),
            "africastalking": self.africastalking.len(),
            "brevo": self.brevo.len(),
            "meta": self.meta.len(),
        })
    }
}

/// A Twilio account (or subaccount).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioAccount {
    pub account_sid: String,
    /// Empty means only the account's API keys authenticate.
    #[serde(default)]
    pub auth_token: String,
    #[serde(default)]
    pub api_keys: Vec<TwilioApiKey>,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

/// A Twilio API key (`SK...`) and its secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioApiKey {
    pub sid: String,
    pub secret: String,
}

/// An Africa's Talking application.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfricasTalkingAccount {
    pub username: String,
    pub api_key: String,
}

/// A Brevo API key and the account details `GET /v3/account` reports for it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrevoAccount {
    pub api_key: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
}

/// A WhatsApp Cloud phone number id and a token allowed to use it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaPhoneNumber {
    pub phone_number_id: String,
    pub access_token: String,
    #[serde(default)]
    pub display_phone_number: Option<String>,
    #[serde(default)]
    pub verified_name: Option<String>,
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for TwilioAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioAccount")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &REDACTED)
            .field("api_keys", &self.api_keys)
            .field("friendly_name", &self.friendly_name)
            .finish()
    }
}

impl fmt::Debug for TwilioApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioApiKey")
            .field("sid", &self.sid)
            .field("secret", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for AfricasTalkingAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfricasTalkingAccount")
            .field("username", &self.username)
            .field("api_key", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for BrevoAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrevoAccount")
            .field("api_key", &REDACTED)
            .field("email", &self.email)
            .field("company_name", &self.company_name)
            .finish()
    }
}

impl fmt::Debug for MetaPhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaPhoneNumber")
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &REDACTED)
            .field("display_phone_number", &self.display_phone_number)
            .field("verified_name", &self.verified_name)
            .finish()
    }
}

/// Lookup tables answering "do these credentials belong to a registered account?".
#[derive(Default)]
pub(crate) struct Registry {
    twilio: HashMap<String, TwilioAccount>,
    /// API key sid -> (secret, account sid).
    twilio_keys: HashMap<String, (String, String)>,
    africastalking: HashMap<String, AtApplication>,
    brevo: HashMap<String, BrevoAccount>,
    meta: HashMap<String, MetaNumber>,
    meta_tokens: HashSet<String>,
}

pub(crate) struct AtApplication {
    api_key: String,
    /// Ten-thousandths of a shilling.
    pub(crate) balance: i64,
}

pub(crate) struct MetaNumber {
    tokens: HashSet<String>,
    pub(crate) display_phone_number: String,
    pub(crate) verified_name: String,
}

/// Outcome of checking a Meta bearer token against a phone number id.
pub(crate) enum MetaAccess<'a> {
    Granted(&'a MetaNumber),
    /// The token is unknown everywhere: Graph answers 401 / code 190.
    BadToken,
    /// The token is known but not for this object: Graph answers 400 / code 100, subcode 33.
    NoSuchObject,
}

impl Registry {
    /// Registers `accounts`; a later registration of the same id replaces the earlier secret.
    pub(crate) fn register(&mut self, accounts: Accounts) {
        for account in accounts.twilio {
            for key in &account.api_keys {
                self.twilio_keys.insert(
                    key.sid.clone(),
                    (key.secret.clone(), account.account_sid.clone()),
                );
            }
            match self.twilio.get_mut(&account.account_sid) {
                Some(existing) => {
                    if !account.auth_token.is_empty() {
                        existing.auth_token = account.auth_token;
                    }
                    if account.friendly_name.is_some() {
                        existing.friendly_name = account.friendly_name;
                    }
                    existing.api_keys.extend(account.api_keys);
                }
                None => {
                    self.twilio.insert(account.account_sid.clone(), account);
                }
            }
        }
        for app in accounts.africastalking {
            let balance = self
                .africastalking
                .get(&app.username)
                .map_or(DEFAULT_AT_BALANCE, |a| a.balance);
            self.africastalking.insert(
                app.username,
                AtApplication {
                    api_key: app.api_key,
                    balance,
                },
            );
        }
        for account in accounts.brevo {
            self.brevo.insert(account.api_key.clone(), account);
        }
        for number in accounts.meta {
            self.meta_tokens.insert(number.access_token.clone());
            let entry = self
                .meta
                .entry(number.phone_number_id.clone())
                .or_insert_with(|| MetaNumber {
                    tokens: HashSet::new(),
                    display_phone_number: "+1 555-010-0000".to_owned(),
                    verified_name: "Herald Stand-in".to_owned(),
                });
            entry.tokens.insert(number.access_token);
            if let Some(display) = number.display_phone_number {
                entry.display_phone_number = display;
            }
            if let Some(name) = number.verified_name {
                entry.verified_name = name;
            }
        }
    }

    /// The account a Twilio Basic-auth pair authenticates as, if any.
    pub(crate) fn twilio_authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Option<&TwilioAccount> {
        if let Some((secret, account_sid)) = self.twilio_keys.get(username) {
            return (secret == password)
                .then(|| self.twilio.get(account_sid))
                .flatten();
        }
        self.twilio
            .get(username)
            .filter(|a| !a.auth_token.is_empty() && a.auth_token == password)
    }

    pub(crate) fn africastalking_app(
        &mut self,
        username: &str,
        api_key: &str,
    ) -> Option<&mut AtApplication> {
        self.africastalking
            .get_mut(username)
            .filter(|app| app.api_key == api_key)
    }

    pub(crate) fn brevo_account(&self, api_key: &str) -> Option<&BrevoAccount> {
        self.brevo.get(api_key)
    }

    pub(crate) fn meta_access(&self, phone_number_id: &str, token: &str) -> MetaAccess<'_> {
        if !self.meta_tokens.contains(token) {
            return MetaAccess::BadToken;
        }
        match self.meta.get(phone_number_id) {
            Some(number) if number.tokens.contains(token) => MetaAccess::Granted(number),
            _ => MetaAccess::NoSuchObject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_secrets() {
        let accounts = Accounts::new()
            .twilio_account("AC1", "tok-secret")
            .twilio_api_key("AC1", "SK1", "key-secret")
            .africastalking_account("sandbox", "at-secret")
            .brevo_key("brevo-secret")
            .meta_phone_number("123", "meta-secret");
        let debug = format!("{accounts:?}");
        for secret in [
            "tok-secret",
            "key-secret",
            "at-secret",
            "brevo-secret",
            "meta-secret",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
        assert!(debug.contains("AC1") && debug.contains("SK1"));
    }

    #[test]
    fn twilio_key_authenticates_as_its_account() {
        let mut registry = Registry::default();
        registry.register(
            Accounts::new()
                .twilio_account("AC1", "tok")
                .twilio_api_key("AC1", "SK1", "secret"),
        );
        let sid = |r: Option<&TwilioAccount>| r.map(|a| a.account_sid.clone());
        assert_eq!(
            sid(registry.twilio_authenticate("AC1", "tok")),
            Some("AC1".into())
        );
        assert_eq!(
            sid(registry.twilio_authenticate("SK1", "secret")),
            Some("AC1".into())
        );
        assert_eq!(sid(registry.twilio_authenticate("SK1", "tok")), None);
        assert_eq!(sid(registry.twilio_authenticate("AC1", "")), None);
    }

    #[test]
    fn meta_tells_bad_tokens_from_foreign_objects() {
        let mut registry = Registry::default();
        registry.register(
            Accounts::new()
                .meta_phone_number("111", "t1")
                .meta_phone_number("222", "t2"),
        );
        assert!(matches!(
            registry.meta_access("111", "t1"),
            MetaAccess::Granted(_)
        ));
        assert!(matches!(
            registry.meta_access("222", "t1"),
            MetaAccess::NoSuchObject
        ));
        assert!(matches!(
            registry.meta_access("111", "nope"),
            MetaAccess::BadToken
        ));
    }
}
