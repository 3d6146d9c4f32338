//! Credentials the stand-ins accept: the public, serialisable description (`Accounts`, also the
//! `--accounts` file and the body of `POST /_standin/accounts`) and the lookup tables built from it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids;

/// Starting Africa's Talking balance, in ten-thousandths of a shilling (KES 1000.0000).
pub(crate) const DEFAULT_AT_BALANCE: i64 = 1000 * 10_000;

/// Credentials to register, grouped by provider. Every list may be empty.
///
/// ```json
/// {
///   "twilio": [{"account_sid": "AC...", "auth_token": "...", "api_keys": [{"sid": "SK...", "secret": "..."}]}],
///   "africastalking": [{"username": "sandbox", "api_key": "..."}],
///   "brevo": [{"api_key": "xkeysib-..."}],
///   "meta": [{"phone_number_id": "106540352242922", "access_token": "...", "business_account_id": "102290129340398"}],
///   "meta_templates": [{"business_account_id": "102290129340398", "name": "rsvp_reminder", "language": "en_US",
///                       "components": [{"type": "BODY", "text": "Hi {{1}}"}]}],
///   "twilio_contents": [{"account_sid": "AC...", "friendly_name": "rsvp_reminder",
///                        "variables": {"1": "Ada"}, "types": {"twilio/text": {"body": "Hi {{1}}"}}}]
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    pub twilio: Vec<TwilioAccount>,
    pub africastalking: Vec<AfricasTalkingAccount>,
    pub brevo: Vec<BrevoAccount>,
    pub meta: Vec<MetaPhoneNumber>,
    /// WhatsApp message templates, per business account (WABA); registering the same
    /// (business account, name, language) again replaces the earlier one.
    pub meta_templates: Vec<MetaTemplate>,
    /// Twilio Content API resources; registering the same sid again replaces the earlier one.
    pub twilio_contents: Vec<TwilioContent>,
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
            business_account_id: None,
        });
        self
    }

    /// Adds a WhatsApp Cloud phone number id owned by the business account (WABA)
    /// `business_account_id`, reachable with `access_token`; the token then also lists that
    /// WABA's message templates, and template sends from the number use them.
    pub fn meta_business_phone_number(
        mut self,
        business_account_id: impl Into<String>,
        phone_number_id: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Self {
        self.meta.push(MetaPhoneNumber {
            phone_number_id: phone_number_id.into(),
            access_token: access_token.into(),
            display_phone_number: None,
            verified_name: None,
            business_account_id: Some(business_account_id.into()),
        });
        self
    }

    /// Adds (or, for the same business account, name and language, replaces) a WhatsApp
    /// message template.
    pub fn meta_template(mut self, template: MetaTemplate) -> Self {
        self.meta_templates.push(template);
        self
    }

    /// Adds (or, for the same sid, replaces) a Twilio Content API resource.
    pub fn twilio_content(mut self, content: TwilioContent) -> Self {
        self.twilio_contents.push(content);
        self
    }

    /// Appends everything in `other`.
    pub fn extend(&mut self, other: Accounts) {
        self.twilio.extend(other.twilio);
        self.africastalking.extend(other.africastalking);
        self.brevo.extend(other.brevo);
        self.meta.extend(other.meta);
        self.meta_templates.extend(other.meta_templates);
        self.twilio_contents.extend(other.twilio_contents);
    }

    /// How many entries of each provider this holds.
    pub(crate) fn counts(&self) -> serde_json::Value {
        serde_json::json!({
            "twilio": self.twilio.len(),
            "africastalking": self.africastalking.len(),
            "brevo": self.brevo.len(),
            "meta": self.meta.len(),
            "meta_templates": self.meta_templates.len(),
            "twilio_contents": self.twilio_contents.len(),
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
    /// The WhatsApp Business Account (WABA) that owns the number.
    #[serde(default)]
    pub business_account_id: Option<String>,
}

fn approved_upper() -> String {
    "APPROVED".to_owned()
}

fn approved_lower() -> String {
    "approved".to_owned()
}

fn utility() -> String {
    "UTILITY".to_owned()
}

fn unknown_score() -> String {
    "UNKNOWN".to_owned()
}

fn no_reason() -> String {
    "NONE".to_owned()
}

fn english() -> String {
    "en".to_owned()
}

/// A WhatsApp message template as Meta's Business Management API describes it.
///
/// `components` use Meta's template definition format, e.g.
/// `[{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi {{1}}, {{2}} starts at
/// {{3}}"}, {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "RSVP", "url":
/// "https://rsvp.example/{{1}}"}, {"type": "QUICK_REPLY", "text": "No"}]}]`. Strings such as
/// `status` are kept verbatim, so states the stand-in does not know still list as given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaTemplate {
    pub business_account_id: String,
    pub name: String,
    /// Language or locale code, e.g. `en_US` or `fr`.
    pub language: String,
    /// `APPROVED` (default), `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...: only `APPROVED`
    /// templates send; `PAUSED` answers 132015, `DISABLED` 132016, anything else 132001.
    #[serde(default = "approved_upper")]
    pub status: String,
    /// `UTILITY` (default), `MARKETING` or `AUTHENTICATION`.
    #[serde(default = "utility")]
    pub category: String,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN` (default).
    #[serde(default = "unknown_score")]
    pub quality_score: String,
    /// `NONE` (default) unless rejected.
    #[serde(default = "no_reason")]
    pub rejected_reason: String,
    #[serde(default)]
    pub components: Vec<Value>,
    /// `POSITIONAL` or `NAMED`, as Meta's definitions carry it; listed when given. Sends tell
    /// the two apart by the placeholders themselves (`{{1}}` or `{{guest_name}}`).
    #[serde(default)]
    pub parameter_format: Option<String>,
    /// Numeric template id; generated at registration when absent (a replacement without one
    /// keeps the id it replaces).
    #[serde(default)]
    pub id: Option<String>,
}

impl MetaTemplate {
    /// An `APPROVED`, `UTILITY` template with quality `UNKNOWN` and no id yet.
    pub fn new(
        business_account_id: impl Into<String>,
        name: impl Into<String>,
        language: impl Into<String>,
        components: Vec<Value>,
    ) -> Self {
        Self {
            business_account_id: business_account_id.into(),
            name: name.into(),
            language: language.into(),
            status: approved_upper(),
            category: utility(),
            quality_score: unknown_score(),
            rejected_reason: no_reason(),
            components,
            parameter_format: None,
            id: None,
        }
    }

    /// Sets the review status (`PENDING`, `PAUSED`, ...), kept verbatim.
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }

    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = category.into();
        self
    }

    pub fn with_quality_score(mut self, score: impl Into<String>) -> Self {
        self.quality_score = score.into();
        self
    }

    pub fn with_rejected_reason(mut self, reason: impl Into<String>) -> Self {
        self.rejected_reason = reason.into();
        self
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// A Twilio Content API resource (a content template) and its WhatsApp approval state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioContent {
    /// The owning account.
    pub account_sid: String,
    /// `HX` and 32 lowercase hex digits; generated at registration when absent
    /// ([`TwilioContent::new`] generates one at once, so the caller knows it).
    #[serde(default)]
    pub sid: Option<String>,
    pub friendly_name: String,
    /// Default `en`.
    #[serde(default = "english")]
    pub language: String,
    /// Default (sample) values by variable key, e.g. `{"1": "Customer_Name"}`; a send that
    /// leaves a key out gets this value.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Keyed by content type, e.g. `{"twilio/text": {"body": "Hi {{1}}"}}`.
    #[serde(default)]
    pub types: Value,
    /// WhatsApp approval: `approved` (default), `pending`, `rejected`, `paused`, `disabled`, ...
    /// kept verbatim; a WhatsApp send of anything but `approved` fails with 63027.
    #[serde(default = "approved_lower")]
    pub approval_status: String,
    /// The WhatsApp template name; default `friendly_name`.
    #[serde(default)]
    pub approval_name: Option<String>,
    /// Default `UTILITY`.
    #[serde(default = "utility")]
    pub category: String,
    /// Default empty.
    #[serde(default)]
    pub rejection_reason: String,
}

impl TwilioContent {
    /// An approved `twilio/text` content with a freshly generated sid and no variables yet.
    pub fn new(
        account_sid: impl Into<String>,
        friendly_name: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            account_sid: account_sid.into(),
            sid: Some(ids::twilio_content_sid()),
            friendly_name: friendly_name.into(),
            language: english(),
            variables: BTreeMap::new(),
            types: serde_json::json!({ "twilio/text": { "body": body.into() } }),
            approval_status: approved_lower(),
            approval_name: None,
            category: utility(),
            rejection_reason: String::new(),
        }
    }

    /// The sid, once known (always, for contents made with [`TwilioContent::new`]).
    pub fn sid(&self) -> &str {
        self.sid.as_deref().unwrap_or_default()
    }

    /// Sets the default values of the variables.
    pub fn with_variables<K: Into<String>, V: Into<String>>(
        mut self,
        variables: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.variables = variables
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    pub fn with_sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }

    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = language.into();
        self
    }

    /// Replaces the content types (`{"twilio/text": {...}, ...}`).
    pub fn with_types(mut self, types: Value) -> Self {
        self.types = types;
        self
    }

    /// Sets the WhatsApp approval status (`pending`, `rejected`, ...), kept verbatim.
    pub fn with_approval_status(mut self, status: impl Into<String>) -> Self {
        self.approval_status = status.into();
        self
    }

    pub fn with_approval_name(mut self, name: impl Into<String>) -> Self {
        self.approval_name = Some(name.into());
        self
    }

    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = category.into();
        self
    }

    pub fn with_rejection_reason(mut self, reason: impl Into<String>) -> Self {
        self.rejection_reason = reason.into();
        self
    }

    /// The body of its first content type that has one (`twilio/text` first), if any.
    pub(crate) fn body(&self) -> Option<&str> {
        let types = self.types.as_object()?;
        types
            .get("twilio/text")
            .into_iter()
            .chain(types.values())
            .find_map(|t| t.get("body").and_then(Value::as_str))
    }
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
            .field("business_account_id", &self.business_account_id)
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
    /// By (business account, name, language), so a listing comes out in name order.
    meta_templates: BTreeMap<(String, String, String), MetaTemplate>,
    twilio_contents: HashMap<String, StoredContent>,
}

/// A registered Twilio content, with its (resolved) sid and when it was registered.
pub(crate) struct StoredContent {
    pub(crate) content: TwilioContent,
    pub(crate) sid: String,
    pub(crate) created: OffsetDateTime,
    pub(crate) updated: OffsetDateTime,
}

impl StoredContent {
    /// The WhatsApp template name: `approval_name`, else `friendly_name`.
    pub(crate) fn approval_name(&self) -> &str {
        self.content
            .approval_name
            .as_deref()
            .unwrap_or(&self.content.friendly_name)
    }
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
    pub(crate) business_account_id: Option<String>,
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
    /// Answers the ids of the templates and contents registered (generated ones included).
    pub(crate) fn register(&mut self, accounts: Accounts) -> Value {
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
                    business_account_id: None,
                });
            entry.tokens.insert(number.access_token);
            if let Some(display) = number.display_phone_number {
                entry.display_phone_number = display;
            }
            if let Some(name) = number.verified_name {
                entry.verified_name = name;
            }
            if let Some(waba) = number.business_account_id {
                entry.business_account_id = Some(waba);
            }
        }
        let mut templates = Vec::new();
        for mut template in accounts.meta_templates {
            let key = (
                template.business_account_id.clone(),
                template.name.clone(),
                template.language.clone(),
            );
            if template.id.is_none() {
                template.id = Some(
                    self.meta_templates
                        .get(&key)
                        .and_then(|old| old.id.clone())
                        .unwrap_or_else(ids::meta_template_id),
                );
            }
            templates.push(serde_json::json!({
                "id": template.id,
                "business_account_id": template.business_account_id,
                "name": template.name,
                "language": template.language,
            }));
            self.meta_templates.insert(key, template);
        }
        let mut contents = Vec::new();
        let now = OffsetDateTime::now_utc();
        for mut content in accounts.twilio_contents {
            let sid = content.sid.clone().unwrap_or_else(ids::twilio_content_sid);
            content.sid = Some(sid.clone());
            contents.push(serde_json::json!({
                "sid": sid,
                "account_sid": content.account_sid,
                "friendly_name": content.friendly_name,
            }));
            let created = self
                .twilio_contents
                .get(&sid)
                .map_or(now, |old| old.created);
            self.twilio_contents.insert(
                sid.clone(),
                StoredContent {
                    content,
                    sid,
                    created,
                    updated: now,
                },
            );
        }
        serde_json::json!({ "meta_templates": templates, "twilio_contents": contents })
    }

    /// The registered Twilio account `account_sid`.
    pub(crate) fn twilio_account(&self, account_sid: &str) -> Option<&TwilioAccount> {
        self.twilio.get(account_sid)
    }

    /// The registered WhatsApp phone number `phone_number_id`.
    pub(crate) fn meta_number(&self, phone_number_id: &str) -> Option<&MetaNumber> {
        self.meta.get(phone_number_id)
    }

    /// Whether `token` may read the business account `waba`: it is registered for one of the
    /// WABA's phone numbers.
    pub(crate) fn meta_waba_access(&self, waba: &str, token: &str) -> MetaAccess<'_> {
        if !self.meta_tokens.contains(token) {
            return MetaAccess::BadToken;
        }
        self.meta
            .values()
            .find(|n| n.business_account_id.as_deref() == Some(waba) && n.tokens.contains(token))
            .map_or(MetaAccess::NoSuchObject, MetaAccess::Granted)
    }

    /// The business account's templates, in name then language order.
    pub(crate) fn meta_templates_of<'a>(
        &'a self,
        waba: &'a str,
    ) -> impl Iterator<Item = &'a MetaTemplate> + 'a {
        self.meta_templates
            .iter()
            .filter(move |((owner, _, _), _)| owner == waba)
            .map(|(_, template)| template)
    }

    pub(crate) fn meta_template(
        &self,
        waba: &str,
        name: &str,
        language: &str,
    ) -> Option<&MetaTemplate> {
        self.meta_templates
            .get(&(waba.to_owned(), name.to_owned(), language.to_owned()))
    }

    pub(crate) fn twilio_content(&self, sid: &str) -> Option<&StoredContent> {
        self.twilio_contents.get(sid)
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
