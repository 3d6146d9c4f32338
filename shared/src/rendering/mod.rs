//! Rendering user-written templates with minijinja: strict about undefined variables (a missing
//! value is an error, never an empty gap), bounded in steps and in what it builds (see
//! [`bounds`]: no template can loop forever or fill memory), and HTML-escaping values in email
//! bodies. For sending, an email body is wrapped in Herald's brand
//! layout with a plain-text alternative, and an SMS carries its segment count.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

pub mod bounds;
mod cache;
pub mod compliance;
pub mod formatting;
mod layout;
mod text;

use bounds::Bounded;
pub use bounds::PartLimit;
pub use cache::{TemplateCache, TemplateKey};
pub use compliance::Compliance;
pub use layout::brand_layout;
pub use text::html_to_text;

use crate::domain::Channel;
use crate::domain::sms::{self, SmsSegments};
use crate::domain::template::{Position, TemplateContent, VariableDecl};
use crate::domain::variable_type::{Kind, Shape, parse_money};
use crate::domain::whatsapp::{Currency, TemplateCall, WhatsappTemplates};

/// What each rendered part may hold. Email bodies stop where Gmail clips a message (102 KB);
/// SMS at Twilio's 1,600 characters (ten concatenated segments); WhatsApp at the 4,096 characters
/// of a Cloud API text body; in-app messages alike; subjects at RFC 5322's 998-character line.
pub mod limits {
    use super::PartLimit;

    pub const SUBJECT: PartLimit = PartLimit {
        name: "subject",
        max_chars: 998,
        max_bytes: 998 * 4,
    };
    pub const EMAIL_BODY: PartLimit = PartLimit {
        name: "email body",
        max_chars: 102_400,
        max_bytes: 102_400,
    };
    pub const SMS: PartLimit = PartLimit {
        name: "SMS",
        max_chars: 1_600,
        max_bytes: 1_600 * 4,
    };
    pub const WHATSAPP: PartLimit = PartLimit {
        name: "WhatsApp message",
        max_chars: 4_096,
        max_bytes: 4_096 * 4,
    };
    pub const IN_APP: PartLimit = PartLimit {
        name: "in-app message",
        max_chars: 4_096,
        max_bytes: 4_096 * 4,
    };
}

fn body_limit(channel: Channel) -> PartLimit {
    match channel {
        Channel::Email => limits::EMAIL_BODY,
        Channel::Sms => limits::SMS,
        Channel::Whatsapp => limits::WHATSAPP,
        Channel::InApp => limits::IN_APP,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{part} does not parse: {message}")]
    Syntax {
        part: &'static str,
        message: String,
        at: Option<Position>,
    },
    #[error("{part} uses undeclared variables: {}", names.iter().cloned().collect::<Vec<_>>().join(", "))]
    Undeclared {
        part: &'static str,
        names: BTreeSet<String>,
    },
    #[error("{part} failed to render: {message}")]
    Render {
        part: &'static str,
        message: String,
        at: Option<Position>,
    },
    /// The rendering would go past what its part may hold (or build on the way): whatever the
    /// variables, since a template can only be trusted as far as its limits.
    #[error("{part}: {exceeded}")]
    TooLarge {
        part: &'static str,
        exceeded: bounds::Exceeded,
    },
}

/// Where `e` is in `source`, when minijinja knows.
fn position(e: &minijinja::Error, source: &str) -> Option<Position> {
    let line = e.line()?;
    let column = e
        .range()
        .and_then(|r| source.get(..r.start))
        .map_or(1, |before| {
            before
                .rsplit_once('\n')
                .map_or(before, |(_, last)| last)
                .chars()
                .count()
                + 1
        });
    Some(Position { line, column })
}

impl RenderError {
    /// Where in the source the error is, when minijinja knows.
    pub fn position(&self) -> Option<Position> {
        match self {
            Self::Syntax { at, .. } | Self::Render { at, .. } => *at,
            _ => None,
        }
    }

    /// The part of the template at fault: `subject`, `body` or `layout`.
    pub fn part(&self) -> &'static str {
        match self {
            Self::Syntax { part, .. }
            | Self::Undeclared { part, .. }
            | Self::Render { part, .. }
            | Self::TooLarge { part, .. } => part,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
}

fn environment<'source>() -> Environment<'source> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(bounds::FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == AutoEscape::Html
            && !value.is_safe()
            && let Some(s) = value.as_str()
        {
            return write_html_escaped(out, s).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

/// The environment user templates render in: [`environment`] with every operator, filter and
/// output bounded, and the formatting filters. Built once: wrapping every filter costs more than
/// a rendering.
static BOUNDED: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = environment();
    env.set_formatter(bounds::emit);
    bounds::install(&mut env);
    formatting::install(&mut env);
    env
});

/// [`BOUNDED`] for compiling a template from a borrowed source (a clone shares its filters).
fn bounded_environment<'source>() -> Environment<'source> {
    BOUNDED.clone()
}

/// HTML escaping of text and attribute values. Unlike minijinja's default it leaves `/` alone:
/// escaping it adds no safety in these contexts and turns every URL into `https:&#x2f;&#x2f;`,
/// which link rewriters (click tracking) and people reading the source stumble over.
fn write_html_escaped(out: &mut (impl std::fmt::Write + ?Sized), s: &str) -> std::fmt::Result {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            _ => continue,
        };
        out.write_str(&s[last..i])?;
        out.write_str(entity)?;
        last = i + 1;
    }
    out.write_str(&s[last..])
}

/// Renders templates: compiles then renders once (previews, validation, test sends). The send
/// path keeps compiled [`Template`]s instead (see [`TemplateCache`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Renderer;

impl Renderer {
    pub fn new() -> Self {
        Self
    }

    /// Renders `content` for `channel` with `variables`, the merged brand and the template's own
    /// assets and design settings. Every variable the template reads must be declared.
    pub fn render(
        self,
        channel: Channel,
        content: &TemplateContent,
        variables: &BTreeMap<String, serde_json::Value>,
        brand: &BTreeMap<&str, &str>,
    ) -> Result<Rendered, RenderError> {
        Template::compile(channel, Compliance::None, content, brand)?
            .render(variables, &Audience::default())
    }

    /// Renders a message for sending (see [`Template::render_message`]).
    pub fn render_message(
        self,
        channel: Channel,
        content: &TemplateContent,
        variables: &BTreeMap<String, serde_json::Value>,
        brand: &BTreeMap<&str, &str>,
    ) -> Result<RenderedMessage, RenderError> {
        Template::compile(channel, Compliance::None, content, brand)?
            .render_message(variables, &Audience::default())
    }
}

/// Whom a message is rendered for: the recipient's locale (BCP 47) and IANA time zone, as the
/// formatting filters and compliance lines need them, and the address of their preference page
/// (a marketing email's unsubscribe link).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub unsubscribe: Option<String>,
}

self_cell::self_cell!(
    /// A part's bounded program with the source it borrows from.
    struct Program {
        owner: String,
        #[covariant]
        dependent: Bounded,
    }
);

/// One part (subject or body) compiled.
struct Part {
    name: &'static str,
    program: Program,
    /// Every (dotted) name the part reads from its context, for naming what had no value.
    reads: Vec<String>,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part").field("name", &self.name).finish()
    }
}

/// A template compiled for one channel and brand: parsed, checked against its declarations,
/// made bounded and, for email, its brand layout laid out, once; then rendered for any number
/// of recipients. Holds no state between renderings.
#[derive(Debug)]
pub struct Template {
    channel: Channel,
    compliance: Compliance,
    subject: Option<Part>,
    body: Part,
    /// The declared variables (their types shape the values: optional fields left out of an
    /// object render empty), with their names as the context keeps them.
    declared: Vec<(Arc<str>, VariableDecl)>,
    brand: minijinja::Value,
    assets: minijinja::Value,
    design: minijinja::Value,
    /// Email only: the brand layout around the body, and the text alternative's footer.
    frame: Option<layout::Frame>,
    /// Whether a part may call a formatting filter (by name in its source: erring towards yes).
    formats: bool,
    /// WhatsApp with registered templates: their parameters' values, rendered as one part.
    whatsapp: Option<(Part, WhatsappTemplates)>,
}

/// Between two parameters in the rendered parameters part (a private-use character: a value
/// holding one is refused rather than shifting every later parameter).
const PARAMETER_SEPARATOR: char = '\u{F8FF}';

/// The parameters of registered WhatsApp templates as one template source: each variable
/// through its type's formatting filter in its default style (`datetime` is medium: `Dec 12,
/// 2026, 4:30 PM`), in the recipient's locale and time zone.
fn parameters_source(registered: &WhatsappTemplates, declared: &[VariableDecl]) -> String {
    let mut source = String::new();
    for (i, var) in registered.parameters().into_iter().enumerate() {
        if i > 0 {
            source.push(PARAMETER_SEPARATOR);
        }
        let filter = match declared.iter().find(|d| d.name == var).map(|d| d.kind) {
            Some(Kind::Number) => " | number",
            Some(Kind::Date) => " | date",
            Some(Kind::Datetime) => " | datetime",
            Some(Kind::Money) => " | money",
            _ => "",
        };
        source.push_str(&format!("{{{{ {var}{filter} }}}}"));
    }
    source
}

impl Template {
    /// Compiles `content` for `channel` within `brand`; fails as rendering would on syntax,
    /// undeclared variables or constants past a part's limit.
    pub fn compile(
        channel: Channel,
        compliance: Compliance,
        content: &TemplateContent,
        brand: &BTreeMap<&str, &str>,
    ) -> Result<Self, RenderError> {
        let declared: BTreeSet<&str> = content.variables.iter().map(|v| v.name.as_str()).collect();
        let subject = match &content.subject {
            Some(s) => Some(Part::compile(
                "subject",
                "subject.txt",
                s,
                limits::SUBJECT,
                &declared,
            )?),
            None => None,
        };
        let body_name = if channel == Channel::Email {
            "body.html"
        } else {
            "body.txt"
        };
        let body = Part::compile(
            "body",
            body_name,
            &content.body,
            body_limit(channel),
            &declared,
        )?;
        let whatsapp = match (&content.whatsapp, channel) {
            (Some(registered), Channel::Whatsapp) => {
                let source = parameters_source(registered, &content.variables);
                let part = Part::compile(
                    "whatsapp",
                    "whatsapp.txt",
                    &source,
                    limits::WHATSAPP,
                    &declared,
                )?;
                Some((part, registered.clone()))
            }
            _ => None,
        };
        Ok(Self {
            channel,
            compliance,
            subject,
            body,
            declared: content
                .variables
                .iter()
                .map(|v| (Arc::from(v.name.as_str()), v.clone()))
                .collect(),
            brand: minijinja::Value::from_serialize(brand),
            assets: minijinja::Value::from_serialize(&content.brand_assets),
            design: minijinja::Value::from_serialize(&content.design_settings),
            frame: (channel == Channel::Email).then(|| {
                layout::Frame::new(
                    brand,
                    &content.design_settings,
                    compliance == Compliance::Marketing,
                )
            }),
            formats: content.whatsapp.is_some()
                || std::iter::once(content.body.as_str())
                    .chain(content.subject.as_deref())
                    .any(|source| formatting::FILTERS.iter().any(|f| source.contains(f))),
            whatsapp,
        })
    }

    /// The rendering context: the variables (only those given), the optional ones' defaults,
    /// the brand, assets and design settings, and whom it is for.
    fn context(
        &self,
        variables: &BTreeMap<String, serde_json::Value>,
        audience: &Audience,
    ) -> minijinja::Value {
        // Declared variables only. Optional ones render empty when not given (an empty list
        // for lists); required ones stay undefined, which strict rendering turns into an error
        // naming them.
        let mut entries: Vec<(Arc<str>, minijinja::Value)> = self
            .declared
            .iter()
            .filter_map(|(name, v)| {
                let value = match variables.get(&v.name) {
                    Some(value) => shaped(value, Some(v.shape())),
                    None if v.required => return None,
                    None => empty(v.kind),
                };
                Some((name.clone(), value))
            })
            .collect();
        entries.extend([
            (names::BRAND.clone(), self.brand.clone()),
            (names::ASSETS.clone(), self.assets.clone()),
            (names::DESIGN.clone(), self.design.clone()),
        ]);
        // Only templates that format something need to know whom for (the filters fall back to
        // English and UTC without it, which no template that uses them sees).
        if self.formats {
            entries.push((
                names::AUDIENCE.clone(),
                minijinja::Value::from_object(formatting::Lazy::from(audience)),
            ));
        }
        minijinja::Value::from_object(Context { entries })
    }

    /// Renders subject and body with `variables` for `audience`.
    pub fn render(
        &self,
        variables: &BTreeMap<String, serde_json::Value>,
        audience: &Audience,
    ) -> Result<Rendered, RenderError> {
        let context = self.context(variables, audience);
        let subject = match &self.subject {
            Some(part) => Some(part.render(&context)?),
            None => None,
        };
        let body = self.body.render(&context)?;
        Ok(Rendered { subject, body })
    }

    /// Renders a message for sending. Same checks as [`Template::render`], then by channel:
    ///
    /// - email: `html` is the body in the brand layout (see [`brand_layout`]), `text` a
    ///   plain-text alternative of the body (see [`html_to_text`]) followed by the brand's footer
    ///   text, website, support address and legal identity; marketing email ends with the
    ///   recipient's unsubscribe link;
    /// - SMS: `text` is the body without surrounding whitespace (it would be billed), marketing
    ///   SMS with the opt-out line in the recipient's language, with its `segments`;
    /// - WhatsApp and in-app: `text` is the body without surrounding whitespace. WhatsApp is
    ///   billed per message, not per segment, so it has no `segments`.
    pub fn render_message(
        &self,
        variables: &BTreeMap<String, serde_json::Value>,
        audience: &Audience,
    ) -> Result<RenderedMessage, RenderError> {
        let Rendered { subject, body } = self.render(variables, audience)?;
        let locale = audience.locale.as_deref();
        match (self.channel, &self.frame) {
            (Channel::Email, Some(frame)) => {
                let link = audience
                    .unsubscribe
                    .as_deref()
                    .map(|url| layout::UnsubscribeLink {
                        url,
                        label: compliance::unsubscribe_label(locale),
                    });
                let html = frame.wrap(&body, subject.as_deref(), link)?;
                let text = frame.text(html_to_text(&body)?, link);
                Ok(RenderedMessage {
                    subject,
                    html: Some(html),
                    text,
                    segments: None,
                    whatsapp_template: None,
                })
            }
            (Channel::Sms, _) => {
                let text = match self.compliance {
                    Compliance::Marketing => compliance::with_stop_line(trimmed(body), locale),
                    Compliance::None => trimmed(body),
                };
                Ok(RenderedMessage {
                    subject: None,
                    html: None,
                    segments: Some(sms::segments(&text)),
                    text,
                    whatsapp_template: None,
                })
            }
            (Channel::Whatsapp, _) => Ok(RenderedMessage {
                subject: None,
                html: None,
                text: trimmed(body),
                segments: None,
                whatsapp_template: self.template_call(variables, audience)?,
            }),
            _ => Ok(RenderedMessage {
                subject: None,
                html: None,
                text: trimmed(body),
                segments: None,
                whatsapp_template: None,
            }),
        }
    }

    /// The registered templates' parameters filled for this recipient, when there are any.
    fn template_call(
        &self,
        variables: &BTreeMap<String, serde_json::Value>,
        audience: &Audience,
    ) -> Result<Option<TemplateCall>, RenderError> {
        let Some((part, registered)) = &self.whatsapp else {
            return Ok(None);
        };
        let rendered = part.render(&self.context(variables, audience))?;
        let values: Vec<String> = if rendered.is_empty() {
            Vec::new()
        } else {
            rendered
                .split(PARAMETER_SEPARATOR)
                .map(str::to_owned)
                .collect()
        };
        if values.len() != registered.parameter_count() {
            return Err(RenderError::Render {
                part: "whatsapp",
                message: "a parameter's value holds a reserved character (U+F8FF)".into(),
                at: None,
            });
        }
        let money = |var: &str| {
            let declared = self
                .declared
                .iter()
                .any(|(_, d)| d.name == var && d.kind == Kind::Money);
            let amount = parse_money(variables.get(var)?, var)
                .ok()
                .filter(|_| declared)?;
            // Meta takes the amount times 1000 as an integer: exact, or shown as text only.
            (amount.micros % 1000 == 0)
                .then(|| i64::try_from(amount.micros / 1000).ok())
                .flatten()
                .map(|amount_1000| Currency {
                    code: amount.currency.to_string(),
                    amount_1000,
                })
        };
        Ok(Some(registered.call(&values, &money)))
    }
}

impl Part {
    fn compile(
        part: &'static str,
        name: &'static str,
        source: &str,
        limit: PartLimit,
        declared: &BTreeSet<&str>,
    ) -> Result<Self, RenderError> {
        let auto_escape = if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        };
        let syntax = |e: minijinja::Error| RenderError::Syntax {
            part,
            message: describe(&e),
            at: position(&e, source),
        };
        let program = Program::try_new(source.to_owned(), |source| {
            bounds::Bounded::compile(name, source, auto_escape, limit)
        })
        .map_err(|failure| match failure {
            bounds::RenderFailure::Template(e) => syntax(e),
            bounds::RenderFailure::Exceeded(exceeded) => RenderError::TooLarge { part, exceeded },
        })?;
        let env = bounded_environment();
        let template = env.template_from_named_str(name, source).map_err(syntax)?;
        let is_known = |v: &str| {
            crate::domain::template::RESERVED_VARIABLES.contains(&v)
                || v == formatting::AUDIENCE
                || env.globals().any(|(name, _)| name == v)
        };
        let undeclared: BTreeSet<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !declared.contains(v.as_str()) && !is_known(v))
            .collect();
        if !undeclared.is_empty() {
            return Err(RenderError::Undeclared {
                part,
                names: undeclared,
            });
        }
        Ok(Self {
            name: part,
            program,
            reads: template.undeclared_variables(true).into_iter().collect(),
        })
    }

    fn render(&self, context: &minijinja::Value) -> Result<String, RenderError> {
        let part = self.name;
        self.program
            .borrow_dependent()
            .render(&BOUNDED, context.clone())
            .map_err(|failure| match failure {
                bounds::RenderFailure::Exceeded(exceeded) => {
                    RenderError::TooLarge { part, exceeded }
                }
                bounds::RenderFailure::Template(e) => {
                    let missing: Vec<&str> = self
                        .reads
                        .iter()
                        .filter(|name| !resolves(name, context))
                        .map(String::as_str)
                        .collect();
                    let message = if e.kind() == minijinja::ErrorKind::UndefinedError
                        && !missing.is_empty()
                    {
                        format!("uses {} without a value", missing.join(", "))
                    } else {
                        describe(&e)
                    };
                    RenderError::Render {
                        part,
                        message,
                        at: position(&e, self.program.borrow_owner()),
                    }
                }
            })
    }
}

/// `text` without surrounding whitespace, copied only when there is some.
fn trimmed(text: String) -> String {
    if text.trim().len() == text.len() {
        text
    } else {
        text.trim().to_owned()
    }
}

/// The names Herald puts into every context, made once.
mod names {
    use std::sync::{Arc, LazyLock};

    pub static BRAND: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("brand"));
    pub static ASSETS: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("assets"));
    pub static DESIGN: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("design"));
    pub static AUDIENCE: LazyLock<Arc<str>> =
        LazyLock::new(|| Arc::from(super::formatting::AUDIENCE));
}

/// A rendering's context: a handful of names, looked up without building a map.
#[derive(Debug)]
struct Context {
    entries: Vec<(Arc<str>, minijinja::Value)>,
}

impl minijinja::value::Object for Context {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let key = key.as_str()?;
        self.entries
            .iter()
            .find(|(name, _)| &**name == key)
            .map(|(_, value)| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(
            self.entries
                .iter()
                .map(|(name, _)| minijinja::Value::from(name.clone()))
                .collect(),
        )
    }
}

/// `value` for the template, shaped by its declared type where it has one: an object's optional
/// fields left out render empty, like optional variables.
fn shaped(value: &serde_json::Value, shape: Option<Shape<'_>>) -> minijinja::Value {
    use serde_json::Value as Json;
    match value {
        Json::String(s) => minijinja::Value::from(s.as_str()),
        Json::Array(items) => {
            let item = shape.and_then(|s| s.items).map(Shape::from);
            minijinja::Value::from(items.iter().map(|v| shaped(v, item)).collect::<Vec<_>>())
        }
        Json::Object(fields) => match shape.filter(|s| s.kind == Kind::Object) {
            Some(shape) => minijinja::Value::from_iter(
                shape
                    .fields
                    .iter()
                    .filter_map(|f| match fields.get(&f.name) {
                        Some(v) => Some((f.name.as_str(), shaped(v, Some(Shape::from(f))))),
                        None if f.required => None,
                        None => Some((f.name.as_str(), empty(f.kind))),
                    })
                    .collect::<Vec<_>>(),
            ),
            None => minijinja::Value::from_serialize(value),
        },
        other => minijinja::Value::from_serialize(other),
    }
}

/// What a declared value left out renders as.
fn empty(kind: Kind) -> minijinja::Value {
    match kind {
        Kind::List => minijinja::Value::from(Vec::<minijinja::Value>::new()),
        _ => minijinja::Value::from(""),
    }
}

/// Whether a (possibly dotted) variable name has a value in the rendering context.
fn resolves(name: &str, context: &minijinja::Value) -> bool {
    let mut value = context.clone();
    for part in name.split('.') {
        match value.get_attr(part) {
            Ok(v) if !v.is_undefined() => value = v,
            _ => return false,
        }
    }
    true
}

/// The error's own message and line, without the template source (which may hold personal data).
fn describe(e: &minijinja::Error) -> String {
    match (e.detail(), e.line()) {
        (Some(detail), Some(line)) => format!("{} (line {line}): {detail}", e.kind()),
        (Some(detail), None) => format!("{}: {detail}", e.kind()),
        (None, Some(line)) => format!("{} (line {line})", e.kind()),
        (None, None) => e.kind().to_string(),
    }
}

/// A message ready for the send path: what the provider sends and, for SMS, what it is billed as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedMessage {
    /// Email only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Email only: the body inside Herald's brand layout, a complete HTML document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The plain-text alternative of an email, or the whole SMS, WhatsApp or in-app message.
    pub text: String,
    /// SMS only: encoding and parts of `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<SmsSegments>,
    /// WhatsApp only: the registered templates' form, sent outside the service window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_template: Option<TemplateCall>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::VariableDecl;

    fn content(subject: Option<&str>, body: &str, vars: &[&str]) -> TemplateContent {
        TemplateContent {
            subject: subject.map(str::to_owned),
            body: body.to_owned(),
            variables: vars
                .iter()
                .map(|n| VariableDecl::text(n, &format!("<{n}>")))
                .collect(),
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
            whatsapp: None,
        }
    }

    #[test]
    fn email_bodies_are_escaped_subjects_are_not() {
        let c = content(
            Some("Hi {{ name }}"),
            "<p>Hello {{ name }} from {{ brand.display_name }}</p>",
            &["name"],
        );
        let brand = BTreeMap::from([("display_name", "Acme & Co")]);
        let out = Renderer::new()
            .render(Channel::Email, &c, &c.samples(), &brand)
            .expect("renders");
        assert_eq!(out.subject.as_deref(), Some("Hi <name>"));
        assert_eq!(out.body, "<p>Hello &lt;name&gt; from Acme &amp; Co</p>");
    }

    #[test]
    fn undeclared_and_missing_variables_fail() {
        let r = Renderer::new();
        let c = content(None, "Hi {{ name }} {{ seat }}", &["name"]);
        assert!(matches!(
            r.render(Channel::Sms, &c, &c.samples(), &BTreeMap::new()),
            Err(RenderError::Undeclared { .. })
        ));
        let c = content(None, "Hi {{ name }}", &["name"]);
        assert!(matches!(
            r.render(Channel::Sms, &c, &BTreeMap::new(), &BTreeMap::new()),
            Err(RenderError::Render { .. })
        ));
        let c = content(None, "Hi {{ brand.display_name }}", &[]);
        let err = r
            .render(Channel::Sms, &c, &BTreeMap::new(), &BTreeMap::new())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("body failed to render: uses brand.display_name without a value".to_owned())
        );
    }

    #[test]
    fn optional_variables_render_empty() {
        let mut c = content(None, "Hi {{ name }}{{ seat }}", &["name", "seat"]);
        c.variables[1].required = false;
        let vars = BTreeMap::from([("name".to_owned(), "Ada".into())]);
        let out = Renderer::new()
            .render(Channel::Sms, &c, &vars, &BTreeMap::new())
            .expect("renders");
        assert_eq!(out.body, "Hi Ada");
        c.variables[1].required = true;
        let err = Renderer::new()
            .render(Channel::Sms, &c, &vars, &BTreeMap::new())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("body failed to render: uses seat without a value".to_owned())
        );
    }

    #[test]
    fn endless_templates_run_out_of_fuel() {
        let c = content(
            None,
            "{% for i in range(5000) %}{% for j in range(5000) %}x{% endfor %}{% endfor %}",
            &[],
        );
        let err = Renderer::new().render(Channel::Sms, &c, &BTreeMap::new(), &BTreeMap::new());
        assert!(
            matches!(
                err,
                Err(RenderError::TooLarge {
                    exceeded: bounds::Exceeded {
                        what: bounds::Bound::Steps(bounds::FUEL),
                        ..
                    },
                    ..
                })
            ),
            "{err:?}"
        );
    }

    fn email(body: &str) -> TemplateContent {
        let mut c = content(
            Some("Your ticket for {{ event }}"),
            body,
            &["name", "event"],
        );
        c.variables[0].sample = "Ada".into();
        c.variables[1].sample = "Winter Gala".into();
        c
    }

    fn send(
        channel: Channel,
        c: &TemplateContent,
        brand: &BTreeMap<&str, &str>,
    ) -> RenderedMessage {
        Renderer::new()
            .render_message(channel, c, &c.samples(), brand)
            .expect("renders")
    }

    #[test]
    fn brand_values_are_escaped_in_the_layout() {
        let brand = BTreeMap::from([
            ("display_name", "<script>alert(1)</script> & Co"),
            ("footer_text", "\"><img src=x onerror=alert(1)>"),
            ("website_url", "https://acme.example/?a=1&b=\"x\""),
            ("support_email", "help@acme.example"),
            ("logo_url", "https://cdn.acme.example/logo.png"),
        ]);
        let out = send(Channel::Email, &email("<p>Hi {{ name }}</p>"), &brand);
        let html = out.html.expect("email has html");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));
        assert!(html.contains("href=\"https://acme.example/?a=1&amp;b=&quot;x&quot;\""));
        assert!(!html.contains("<img src=x"));
        assert!(!html.contains("b=\"x"));
        assert!(html.contains("mailto:help@acme.example"));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("max-width:600px"));
        assert!(html.contains("<title>Your ticket for Winter Gala</title>"));
        assert_eq!(out.subject.as_deref(), Some("Your ticket for Winter Gala"));
    }

    #[test]
    fn unsafe_style_values_fall_back_to_defaults() {
        let brand = BTreeMap::from([
            ("primary_color", "red;background:url(https://evil.example/)"),
            ("secondary_color", "#12345"),
            ("font_family", "Inter;}</style><script>"),
            ("logo_url", "javascript:alert(1)"),
            ("website_url", "http://plain.example"),
            ("support_email", "a@b.example?bcc=c@d.example"),
        ]);
        let html = send(Channel::Email, &email("<p>Hi</p>"), &brand)
            .html
            .expect("html");
        for bad in [
            "evil.example",
            "#12345;",
            "Inter;",
            "javascript:",
            "plain.example",
            "bcc",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains(layout::DEFAULT_PRIMARY));
        assert!(html.contains(layout::FALLBACK_FONTS));
    }

    #[test]
    fn missing_brand_values_leave_nothing_empty() {
        let out = send(
            Channel::Email,
            &email("<p>Hi {{ name }}</p>"),
            &BTreeMap::new(),
        );
        let html = out.html.expect("html");
        for artefact in [
            "<img",
            "src=\"\"",
            "href=\"\"",
            "mailto:",
            "&middot;",
            "<span",
            "<p style",
        ] {
            assert!(!html.contains(artefact), "{artefact} in {html}");
        }
        assert_eq!(out.text, "Hi Ada");
        // Blank values count as absent: what the configuration API's placeholder brand holds.
        let blank = BTreeMap::from([("logo_url", ""), ("display_name", " "), ("footer_text", "")]);
        let html = send(Channel::Email, &email("<p>Hi</p>"), &blank)
            .html
            .expect("html");
        assert!(
            !html.contains("<img") && !html.contains("<p style"),
            "{html}"
        );
    }

    #[test]
    fn brand_and_design_settings_shape_the_layout() {
        let brand = BTreeMap::from([
            ("display_name", "Acme Events"),
            ("primary_color", "#0a3d62"),
            ("secondary_color", "#e58e26"),
            ("font_family", "Inter, 'Segoe UI'"),
            ("website_url", "https://events.acme.example/"),
        ]);
        let mut c = email("<p>Hi</p>");
        c.design_settings = BTreeMap::from([
            ("layout".into(), "left".into()),
            ("button_color".into(), "#ffd32a".into()),
        ]);
        let html = send(Channel::Email, &c, &brand).html.expect("html");
        assert!(html.contains("border-top:4px solid #0a3d62"));
        assert!(html.contains("border-top:2px solid #e58e26"));
        assert!(html.contains("font-family:Inter, &#x27;Segoe UI&#x27;, Helvetica"));
        assert!(html.contains("align=\"left\""));
        // A light button gets dark text, a dark one white.
        assert!(html.contains("background-color: #ffd32a; color: #111111"));
        assert!(html.contains(">events.acme.example<"));
        // No logo: the display name is the header.
        assert!(html.contains(">Acme Events</span>"));
        c.design_settings.clear();
        let html = send(Channel::Email, &c, &brand).html.expect("html");
        assert!(html.contains("align=\"center\""));
        assert!(html.contains("background-color: #0a3d62; color: #ffffff"));
    }

    #[test]
    fn emails_get_a_plain_text_alternative() {
        let body = "<table><tr><td><img src=\"https://cdn.example/x.png\" alt=\"Winter Gala\">\
            <h1>Your ticket, {{ name }}</h1>\
            <p>See you at <strong>{{ event }}</strong> on 12&nbsp;Dec &amp; bring this.</p>\
            <ul><li>Doors 18:30</li><li>Dinner 19:30</li></ul>\
            <ol><li>Show the QR code</li><li>Enjoy</li></ol>\
            <p>Line one<br>Line two</p>\
            <p><a class=\"button\" href=\"https://acme.example/t?id=1&amp;k=2\">Open your ticket</a> \
            or write to <a href=\"mailto:help@acme.example?subject=Hi\">help@acme.example</a>, \
            visit <a href=\"https://acme.example\">https://acme.example</a>, \
            <a href=\"#top\">back to top</a>.</p>\
            <style>p { color: red }</style><script>alert(1)</script></td></tr></table>";
        let brand = BTreeMap::from([
            ("footer_text", "Acme Events Ltd, Lusaka"),
            ("support_email", "help@acme.example"),
        ]);
        let out = send(Channel::Email, &email(body), &brand);
        assert_eq!(
            out.text,
            "Winter Gala\n\
             \n\
             Your ticket, Ada\n\
             \n\
             See you at Winter Gala on 12\u{a0}Dec & bring this.\n\
             - Doors 18:30\n\
             - Dinner 19:30\n\
             1. Show the QR code\n\
             2. Enjoy\n\
             \n\
             Line one\n\
             Line two\n\
             \n\
             Open your ticket (https://acme.example/t?id=1&k=2) or write to\n\
             help@acme.example, visit https://acme.example, back to top.\n\
             \n\
             Acme Events Ltd, Lusaka\n\
             help@acme.example"
        );
        assert!(out.segments.is_none());
    }
    #[test]
    fn sms_carries_its_segments() {
        let c = content(
            None,
            "  Hi {{ name }}, your seat is confirmed €5 \n",
            &["name"],
        );
        let out = send(Channel::Sms, &c, &BTreeMap::new());
        assert_eq!(out.text, "Hi <name>, your seat is confirmed €5");
        let segments = out.segments.expect("SMS has segments");
        assert_eq!(segments.encoding, sms::SmsEncoding::Gsm7);
        assert_eq!((segments.characters, segments.septets_or_units), (36, 37));
        assert_eq!(segments.segments, 1);
        assert!(out.html.is_none() && out.subject.is_none());

        let mut c = content(None, "{{ name }} 🎉 {{ name }}", &["name"]);
        c.variables[0].sample = "x".repeat(40).into();
        let segments = send(Channel::Sms, &c, &BTreeMap::new()).segments;
        assert_eq!(
            segments.map(|s| (s.encoding, s.segments)),
            Some((sms::SmsEncoding::Ucs2, 2))
        );

        let out = send(
            Channel::Whatsapp,
            &content(None, "Hi *{{ name }}*", &["name"]),
            &BTreeMap::new(),
        );
        assert_eq!((out.text.as_str(), out.segments), ("Hi *<name>*", None));
    }

    #[test]
    fn render_message_keeps_the_render_checks() {
        let c = content(Some("Hi"), "Hi {{ name }} {{ seat }}", &["name"]);
        assert!(matches!(
            Renderer::new().render_message(Channel::Email, &c, &c.samples(), &BTreeMap::new()),
            Err(RenderError::Undeclared { part: "body", .. })
        ));
    }

    #[test]
    fn syntax_errors_are_reported() {
        let c = content(None, "Hi {{ name ", &["name"]);
        assert!(matches!(
            Renderer::new().render(Channel::Sms, &c, &c.samples(), &BTreeMap::new()),
            Err(RenderError::Syntax { .. })
        ));
    }

    #[test]
    fn whatsapp_parameters_are_shown_as_the_text_would_show_them() {
        let mut c = content(
            None,
            "Hi {{ guest }}, doors open {{ opens | datetime }}",
            &["guest"],
        );
        let mut opens = VariableDecl::text("opens", "");
        opens.kind = Kind::Datetime;
        let mut price = VariableDecl::text("price", "");
        price.kind = Kind::Money;
        c.variables.extend([opens, price]);
        c.whatsapp = Some(
            serde_json::from_value(serde_json::json!({
                "meta": {"name": "doors_open", "language": "fr",
                         "body": [{"var": "guest"}, {"var": "opens"}, {"var": "price"}]},
                "twilio": {"content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e",
                           "variables": {"1": "guest", "2": "opens"}}
            }))
            .expect("mapping"),
        );
        let template = Template::compile(Channel::Whatsapp, Compliance::None, &c, &BTreeMap::new())
            .expect("compiles");
        let variables = BTreeMap::from([
            ("guest".to_owned(), serde_json::json!("Ada")),
            (
                "opens".to_owned(),
                serde_json::json!("2026-12-12T18:30:00Z"),
            ),
            (
                "price".to_owned(),
                serde_json::json!({"amount": "1250.5", "currency": "ZMW"}),
            ),
        ]);
        let audience = Audience {
            locale: Some("fr".into()),
            time_zone: Some("Africa/Lusaka".into()),
            unsubscribe: None,
        };
        let message = template
            .render_message(&variables, &audience)
            .expect("renders");
        let call = message.whatsapp_template.expect("a template call");
        let body = serde_json::to_value(&call.meta.expect("meta").components[0]).expect("json");
        let opens = body["parameters"][1]["text"].as_str().expect("text");
        assert!(opens.contains("20:30"), "{opens}");
        assert_eq!(message.text, format!("Hi Ada, doors open {opens}"));
        assert_eq!(body["parameters"][2]["currency"]["amount_1000"], 1_250_500);
        assert_eq!(body["parameters"][2]["currency"]["code"], "ZMW");
        assert_eq!(call.twilio.expect("twilio").variables["2"], opens);

        // A value holding the separator is refused, not shifted into the next parameter.
        let mut shifted = variables.clone();
        shifted.insert("guest".into(), serde_json::json!("Ada\u{F8FF}Byron"));
        assert!(template.render_message(&shifted, &audience).is_err());
    }
}
