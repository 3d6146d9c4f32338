//! WhatsApp template messages. Outside the 24-hour customer-service window (opened by the
//! recipient's own message) Meta and Twilio deliver only templates registered and approved at
//! the provider. A WhatsApp template version says, per provider, which registered template it
//! is and which of its variables fill which parameter ([`WhatsappTemplates`]); each message
//! carries the parameters filled for its recipient ([`TemplateCall`]), and dispatch sends that
//! instead of the free-form text when the window is closed. Wire formats and sources:
//! `docs/whatsapp-templates.md`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::provider::ProviderKind;
use super::template::VariableDecl;
use super::validation::FieldError;
use super::variable_type::Kind;
use crate::domain::ErrorCode;

/// How long an inbound message keeps the customer-service window open.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);
/// Most parameters Herald maps into one template (Meta: body, header and buttons together;
/// Twilio: `ContentVariables` takes up to 100 keys).
pub const MAX_PARAMETERS: usize = 50;
/// Meta's buttons per template.
const MAX_BUTTONS: usize = 10;

/// Whether the window that an inbound message at `last_inbound` opened is open `now`.
pub fn window_open(last_inbound: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    last_inbound.is_some_and(|at| at <= now + Duration::minutes(5) && now - at < SERVICE_WINDOW)
}

/// A WhatsApp template version's registered forms, one per provider kind (an event may fail
/// over between Meta and Twilio).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatsappTemplates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio: Option<TwilioContent>,
}

/// A template registered in the tenant's WhatsApp Business Account, and which variable fills
/// each of its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaTemplate {
    /// The template's name at Meta (`rsvp_reminder`).
    pub name: String,
    /// The language it was approved in, in Meta's form (`en_US`, `fr`, `pt_BR`).
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<MetaHeader>,
    /// The body's parameters in `{{1}}`, `{{2}}`... order; with `name`, named parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<MetaParameter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<MetaButton>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaParameter {
    /// The declared variable that fills it.
    pub var: String,
    /// The parameter's name, for templates registered with named parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaHeader {
    pub var: String,
    /// `text`, or a media header whose variable holds an https URL.
    #[serde(rename = "as", default)]
    pub kind: HeaderKind,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HeaderKind {
    #[default]
    Text,
    Image,
    Document,
    Video,
}

/// A button that takes a value: the suffix of a URL button, a quick reply's payload, a
/// copy-code button's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaButton {
    /// The button's position in the template, from 0.
    pub index: u8,
    pub sub_type: ButtonKind,
    pub var: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    Url,
    QuickReply,
    CopyCode,
}

impl ButtonKind {
    fn as_str(self) -> &'static str {
        match self {
            ButtonKind::Url => "url",
            ButtonKind::QuickReply => "quick_reply",
            ButtonKind::CopyCode => "copy_code",
        }
    }
}

/// A Content API template (`HX...`) and which variable fills each of its keys (`"1"`, `"2"`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioContent {
    pub content_sid: String,
    /// Content variable key → declared variable. Herald always sends every key: Twilio would
    /// otherwise fill a missing one with the template's sample value.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

impl WhatsappTemplates {
    /// Checks names and identifiers, and that every parameter is filled by a declared variable
    /// of a type a parameter can show (not a list or an object). Fields are named under
    /// `whatsapp`.
    pub fn check(&self, declared: &[VariableDecl]) -> Result<(), FieldError> {
        if self.meta.is_none() && self.twilio.is_none() {
            return Err(FieldError::required("whatsapp.meta"));
        }
        let kind_of = |field: &str, var: &str| -> Result<Kind, FieldError> {
            let decl = declared.iter().find(|d| d.name == var).ok_or_else(|| {
                FieldError::new(
                    ErrorCode::UnknownVariable,
                    field,
                    format!("{var} is not a declared variable"),
                )
            })?;
            match decl.kind {
                Kind::List | Kind::Object => Err(FieldError::invalid(
                    field,
                    format!(
                        "{var} is a {}: a parameter shows one value",
                        kind_name(decl.kind)
                    ),
                )),
                kind => Ok(kind),
            }
        };
        if let Some(meta) = &self.meta {
            if meta.name.is_empty()
                || meta.name.len() > 512
                || !meta
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(FieldError::invalid(
                    "whatsapp.meta.name",
                    "Meta template names are lowercase letters, digits and '_', at most 512",
                ));
            }
            if !is_meta_language(&meta.language) {
                return Err(FieldError::invalid(
                    "whatsapp.meta.language",
                    "a Meta language code such as en, en_US or pt_BR",
                ));
            }
            let count = meta.body.len() + meta.buttons.len() + usize::from(meta.header.is_some());
            if count > MAX_PARAMETERS {
                return Err(FieldError::new(
                    ErrorCode::TooMany,
                    "whatsapp.meta.body",
                    format!("at most {MAX_PARAMETERS} parameters"),
                ));
            }
            if let Some(header) = &meta.header {
                let kind = kind_of("whatsapp.meta.header.var", &header.var)?;
                if header.kind != HeaderKind::Text && kind != Kind::String {
                    return Err(FieldError::invalid(
                        "whatsapp.meta.header.var",
                        "a media header's variable is a string holding an https URL",
                    ));
                }
            }
            let named = meta.body.iter().filter(|p| p.name.is_some()).count();
            if named != 0 && named != meta.body.len() {
                return Err(FieldError::invalid(
                    "whatsapp.meta.body",
                    "either every body parameter has a name or none has",
                ));
            }
            let mut names = BTreeSet::new();
            for (i, p) in meta.body.iter().enumerate() {
                kind_of(&format!("whatsapp.meta.body[{i}].var"), &p.var)?;
                if let Some(name) = &p.name {
                    let field = format!("whatsapp.meta.body[{i}].name");
                    if name.is_empty()
                        || name.len() > 20
                        || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    {
                        return Err(FieldError::invalid(
                            field,
                            "parameter names are lowercase letters and '_', at most 20",
                        ));
                    }
                    if !names.insert(name.as_str()) {
                        return Err(FieldError::new(
                            ErrorCode::Duplicate,
                            field,
                            format!("{name} is named twice"),
                        ));
                    }
                }
            }
            if meta.buttons.len() > MAX_BUTTONS {
                return Err(FieldError::new(
                    ErrorCode::TooMany,
                    "whatsapp.meta.buttons",
                    format!("at most {MAX_BUTTONS} buttons"),
                ));
            }
            let mut indexes = BTreeSet::new();
            for (i, b) in meta.buttons.iter().enumerate() {
                kind_of(&format!("whatsapp.meta.buttons[{i}].var"), &b.var)?;
                if usize::from(b.index) >= MAX_BUTTONS || !indexes.insert(b.index) {
                    return Err(FieldError::invalid(
                        format!("whatsapp.meta.buttons[{i}].index"),
                        "button indexes are distinct, from 0 to 9",
                    ));
                }
            }
        }
        if let Some(twilio) = &self.twilio {
            let sid = &twilio.content_sid;
            if sid.len() != 34
                || !sid.starts_with("HX")
                || !sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(FieldError::invalid(
                    "whatsapp.twilio.content_sid",
                    "a Content SID: HX and 32 hexadecimal digits",
                ));
            }
            if twilio.variables.len() > MAX_PARAMETERS {
                return Err(FieldError::new(
                    ErrorCode::TooMany,
                    "whatsapp.twilio.variables",
                    format!("at most {MAX_PARAMETERS} variables"),
                ));
            }
            for (key, var) in &twilio.variables {
                let field = format!("whatsapp.twilio.variables.{key}");
                if key.is_empty()
                    || key.len() > 16
                    || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(FieldError::invalid(
                        "whatsapp.twilio.variables",
                        "keys are letters, digits and '_', at most 16",
                    ));
                }
                kind_of(&field, var)?;
            }
        }
        Ok(())
    }

    /// Every variable a parameter reads, in a fixed order: header, body, buttons, then Twilio's
    /// keys in key order. [`TemplateCall`]s are built from values in this order.
    pub fn parameters(&self) -> Vec<&str> {
        let mut vars = Vec::new();
        if let Some(meta) = &self.meta {
            vars.extend(meta.header.iter().map(|h| h.var.as_str()));
            vars.extend(meta.body.iter().map(|p| p.var.as_str()));
            vars.extend(meta.buttons.iter().map(|b| b.var.as_str()));
        }
        if let Some(twilio) = &self.twilio {
            vars.extend(twilio.variables.values().map(String::as_str));
        }
        vars
    }

    /// How many values [`Self::parameters`] lists, without listing them (per message).
    pub fn parameter_count(&self) -> usize {
        self.meta.as_ref().map_or(0, |m| {
            usize::from(m.header.is_some()) + m.body.len() + m.buttons.len()
        }) + self.twilio.as_ref().map_or(0, |t| t.variables.len())
    }

    /// The calls for one recipient: `values[i]` is the text of [`Self::parameters`]`[i]`
    /// (formatted in their locale and time zone), `money` the amount of a variable of type
    /// money, by name, for Meta's currency parameter.
    pub fn call(
        &self,
        values: &[String],
        money: &dyn Fn(&str) -> Option<Currency>,
    ) -> TemplateCall {
        let mut values = values.iter().map(|v| one_line(v));
        let mut next = move || values.next().unwrap_or_default();
        let meta = self.meta.as_ref().map(|meta| {
            let mut components = Vec::new();
            if let Some(header) = &meta.header {
                let value = next();
                let link = Media {
                    link: value.clone(),
                };
                let parameter = match header.kind {
                    HeaderKind::Text => Parameter::Text {
                        text: value,
                        parameter_name: None,
                    },
                    HeaderKind::Image => Parameter::Image { image: link },
                    HeaderKind::Document => Parameter::Document { document: link },
                    HeaderKind::Video => Parameter::Video { video: link },
                };
                components.push(Component {
                    kind: "header".into(),
                    sub_type: None,
                    index: None,
                    parameters: vec![parameter],
                });
            }
            if !meta.body.is_empty() {
                let parameters = meta
                    .body
                    .iter()
                    .map(|p| {
                        let text = next();
                        match money(&p.var) {
                            Some(currency) => Parameter::Currency {
                                currency: CurrencyValue {
                                    fallback_value: text,
                                    code: currency.code,
                                    amount_1000: currency.amount_1000,
                                },
                            },
                            None => Parameter::Text {
                                text,
                                parameter_name: p.name.clone(),
                            },
                        }
                    })
                    .collect();
                components.push(Component {
                    kind: "body".into(),
                    sub_type: None,
                    index: None,
                    parameters,
                });
            }
            for button in &meta.buttons {
                let value = next();
                let parameter = match button.sub_type {
                    ButtonKind::Url => Parameter::Text {
                        text: value,
                        parameter_name: None,
                    },
                    ButtonKind::QuickReply => Parameter::Payload { payload: value },
                    ButtonKind::CopyCode => Parameter::CouponCode { coupon_code: value },
                };
                components.push(Component {
                    kind: "button".into(),
                    sub_type: Some(button.sub_type.as_str().into()),
                    index: Some(button.index.to_string()),
                    parameters: vec![parameter],
                });
            }
            MetaCall {
                name: meta.name.clone(),
                language: meta.language.clone(),
                components,
            }
        });
        let twilio = self.twilio.as_ref().map(|twilio| TwilioCall {
            content_sid: twilio.content_sid.clone(),
            variables: twilio
                .variables
                .keys()
                .map(|k| (k.clone(), next()))
                .collect(),
        });
        TemplateCall { meta, twilio }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::List => "list",
        Kind::Object => "object",
        _ => "value",
    }
}

/// `en`, `en_US`, `pt_BR`, `zh_Hant_HK`...: Meta's language codes.
fn is_meta_language(code: &str) -> bool {
    let mut parts = code.split('_');
    let first = parts.next().unwrap_or_default();
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && code.len() <= 15
        && parts.all(|p| (2..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Meta refuses parameters with new lines, tabs or more than four spaces in a row: those
/// become single spaces (no-break spaces, which formatted numbers and money hold, stay).
fn one_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut spaces = 0;
    for c in value.trim().chars() {
        if c.is_whitespace() && c != '\u{a0}' && c != '\u{202f}' {
            spaces += 1;
            if spaces == 1 {
                out.push(' ');
            }
        } else {
            spaces = 0;
            out.push(c);
        }
    }
    out
}

/// What a provider says of a template registered with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegistrationState {
    /// As the provider writes it (`APPROVED`, `PAUSED`, `approved`, `pending`...), or
    /// `not_found` when it has no such template.
    pub status: String,
    /// Whether messages may be sent with it now.
    pub approved: bool,
    /// Meta's quality rating (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Why it was rejected, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RegistrationState {
    /// From the provider's own status word: only `approved` (any case) may be sent.
    pub fn from_status(status: &str, quality: Option<String>, reason: Option<String>) -> Self {
        let reason = reason.filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("NONE"));
        Self {
            status: status.to_owned(),
            approved: status.eq_ignore_ascii_case("approved"),
            quality,
            reason,
        }
    }

    pub fn not_found() -> Self {
        Self::from_status("not_found", None, None)
    }
}

/// One registered template of one slot at one of the event's providers, as completion found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Registration {
    pub category: crate::domain::Category,
    pub provider: crate::domain::ProviderId,
    pub kind: ProviderKind,
    /// Meta's template name, or Twilio's Content SID.
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(flatten)]
    pub state: RegistrationState,
}

/// A money value as Meta's currency parameter takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    pub code: String,
    /// The amount times 1000.
    pub amount_1000: i64,
}

/// One message's template form for each provider that has one: what dispatch sends when the
/// window is closed. Holds the recipient's values, like the rendered text does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio: Option<TwilioCall>,
}

impl TemplateCall {
    /// Only the form `kind` sends, when it has one.
    pub fn for_kind(&self, kind: ProviderKind) -> Option<TemplateCall> {
        match kind {
            ProviderKind::MetaWhatsapp => self.meta.clone().map(|meta| TemplateCall {
                meta: Some(meta),
                twilio: None,
            }),
            ProviderKind::Twilio => self.twilio.clone().map(|twilio| TemplateCall {
                meta: None,
                twilio: Some(twilio),
            }),
            _ => None,
        }
    }
}

/// Meta's `template` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetaCall {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub components: Vec<Component>,
}

/// One of Meta's `components`: `header`, `body`, or a `button` with its sub-type and index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Component {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    pub parameters: Vec<Parameter>,
}

/// One of Meta's parameter objects, as the Cloud API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Parameter {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    Currency {
        currency: CurrencyValue,
    },
    Payload {
        payload: String,
    },
    CouponCode {
        coupon_code: String,
    },
    Image {
        image: Media,
    },
    Document {
        document: Media,
    },
    Video {
        video: Media,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CurrencyValue {
    pub fallback_value: String,
    pub code: String,
    pub amount_1000: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Media {
    pub link: String,
}

/// Twilio's `ContentSid` and `ContentVariables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TwilioCall {
    pub content_sid: String,
    pub variables: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::template::VariableDecl;

    fn declared() -> Vec<VariableDecl> {
        let mut price = VariableDecl::text("price", "");
        price.kind = Kind::Money;
        let mut agenda = VariableDecl::text("agenda", "");
        agenda.kind = Kind::List;
        vec![
            VariableDecl::text("guest_name", "Ada"),
            VariableDecl::text("token", "tok"),
            price,
            agenda,
        ]
    }

    fn registered() -> WhatsappTemplates {
        serde_json::from_value(json!({
            "meta": {
                "name": "rsvp_reminder", "language": "en_US",
                "header": {"var": "guest_name"},
                "body": [{"var": "guest_name"}, {"var": "price"}],
                "buttons": [{"index": 0, "sub_type": "url", "var": "token"}]
            },
            "twilio": {
                "content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e",
                "variables": {"1": "guest_name", "2": "price"}
            }
        }))
        .expect("valid mapping")
    }

    #[test]
    fn parameters_are_declared_variables_of_a_showable_type() {
        assert_eq!(registered().check(&declared()), Ok(()));
        let mut unknown = registered();
        unknown.meta.as_mut().expect("meta").body[1].var = "seat".into();
        let e = unknown.check(&declared()).expect_err("undeclared");
        assert_eq!(
            (e.code, e.field.as_str()),
            (ErrorCode::UnknownVariable, "whatsapp.meta.body[1].var")
        );
        let mut list = registered();
        list.twilio
            .as_mut()
            .expect("twilio")
            .variables
            .insert("3".into(), "agenda".into());
        let e = list.check(&declared()).expect_err("a list");
        assert_eq!(e.field, "whatsapp.twilio.variables.3");
        let mut sid = registered();
        sid.twilio.as_mut().expect("twilio").content_sid = "HX123".into();
        assert_eq!(
            sid.check(&declared()).expect_err("sid").field,
            "whatsapp.twilio.content_sid"
        );
        let mut name = registered();
        name.meta.as_mut().expect("meta").name = "RSVP Reminder".into();
        assert_eq!(
            name.check(&declared()).expect_err("name").field,
            "whatsapp.meta.name"
        );
        assert_eq!(
            WhatsappTemplates::default()
                .check(&declared())
                .expect_err("empty")
                .field,
            "whatsapp.meta"
        );
    }

    #[test]
    fn a_call_is_metas_template_object_and_twilios_content_variables() {
        let values: Vec<String> = [
            "Ada",
            "Ada\n Lovelace",
            "ZMW\u{a0}1,250.50",
            "tok_8f2c",
            "Ada",
            "ZMW 1,250.50",
        ]
        .map(str::to_owned)
        .to_vec();
        let money = |var: &str| {
            (var == "price").then(|| Currency {
                code: "ZMW".into(),
                amount_1000: 1_250_500,
            })
        };
        assert_eq!(
            registered().parameter_count(),
            registered().parameters().len()
        );
        let call = registered().call(&values, &money);
        assert_eq!(
            serde_json::to_value(call.meta.expect("meta")).expect("json"),
            json!({
                "name": "rsvp_reminder", "language": "en_US",
                "components": [
                    {"type": "header", "parameters": [{"type": "text", "text": "Ada"}]},
                    {"type": "body", "parameters": [
                        {"type": "text", "text": "Ada Lovelace"},
                        {"type": "currency", "currency": {
                            "fallback_value": "ZMW\u{a0}1,250.50", "code": "ZMW", "amount_1000": 1_250_500}}
                    ]},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": [{"type": "text", "text": "tok_8f2c"}]}
                ]
            })
        );
        let twilio = call.twilio.expect("twilio");
        assert_eq!(twilio.variables["1"], "Ada");
        assert_eq!(twilio.variables["2"], "ZMW 1,250.50");
    }

    #[test]
    fn the_window_is_open_for_24_hours_after_the_last_inbound_message() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        assert!(!window_open(None, now));
        assert!(window_open(Some(now - Duration::hours(23)), now));
        assert!(!window_open(Some(now - Duration::hours(24)), now));
        // A clock a little ahead at the provider is not a window in the future.
        assert!(window_open(Some(now + Duration::minutes(1)), now));
        assert!(!window_open(Some(now + Duration::hours(1)), now));
    }
}
