//! Rendering user-written templates with minijinja: strict about undefined variables (a missing
//! value is an error, never an empty gap), bounded in steps and in what it builds (see
//! [`bounds`]: no template can loop forever or fill memory), and HTML-escaping values in email
//! bodies. For sending, an email body is wrapped in Herald's brand
//! layout with a plain-text alternative, and an SMS carries its segment count.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

pub mod bounds;
pub use bounds::PartLimit;

use crate::domain::Channel;
use crate::domain::sms::{self, SmsSegments};
use crate::domain::template::{Position, TemplateContent};
use crate::domain::validation::EmailAddress;

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

/// Renders templates. Each rendering gets its own environment so template sources can be
/// borrowed from the configuration without copying.
#[derive(Debug, Default, Clone, Copy)]
pub struct Renderer;

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
/// output bounded.
fn bounded_environment<'source>() -> Environment<'source> {
    // Built once: wrapping every filter costs more than a rendering; a clone shares them.
    static BOUNDED: LazyLock<Environment<'static>> = LazyLock::new(|| {
        let mut env = environment();
        env.set_formatter(bounds::emit);
        bounds::install(&mut env);
        env
    });
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
        variables: &BTreeMap<String, String>,
        brand: &BTreeMap<&str, &str>,
    ) -> Result<Rendered, RenderError> {
        let declared: BTreeSet<&str> = content.variables.iter().map(|v| v.name.as_str()).collect();
        let mut context: BTreeMap<&str, minijinja::Value> = variables
            .iter()
            .filter(|(k, _)| declared.contains(k.as_str()))
            .map(|(k, v)| (k.as_str(), minijinja::Value::from(v.as_str())))
            .collect();
        // Optional variables render empty when not given; required ones stay undefined, which
        // strict rendering turns into an error naming them.
        for v in content.variables.iter().filter(|v| !v.required) {
            context
                .entry(v.name.as_str())
                .or_insert_with(|| minijinja::Value::from(""));
        }
        context.insert("brand", minijinja::Value::from_serialize(brand));
        context.insert(
            "assets",
            minijinja::Value::from_serialize(&content.brand_assets),
        );
        context.insert(
            "design",
            minijinja::Value::from_serialize(&content.design_settings),
        );

        let subject = match &content.subject {
            Some(s) => Some(self.render_part(
                "subject",
                "subject.txt",
                s,
                limits::SUBJECT,
                &declared,
                &context,
            )?),
            None => None,
        };
        let body_name = if channel == Channel::Email {
            "body.html"
        } else {
            "body.txt"
        };
        let body = self.render_part(
            "body",
            body_name,
            &content.body,
            body_limit(channel),
            &declared,
            &context,
        )?;
        Ok(Rendered { subject, body })
    }

    fn render_part(
        self,
        part: &'static str,
        name: &'static str,
        source: &str,
        limit: PartLimit,
        declared: &BTreeSet<&str>,
        context: &BTreeMap<&str, minijinja::Value>,
    ) -> Result<String, RenderError> {
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
        let bounded =
            bounds::Bounded::compile(name, source, auto_escape, limit).map_err(|failure| {
                match failure {
                    bounds::RenderFailure::Template(e) => syntax(e),
                    bounds::RenderFailure::Exceeded(exceeded) => {
                        RenderError::TooLarge { part, exceeded }
                    }
                }
            })?;
        let env = bounded_environment();
        let template = env.template_from_named_str(name, source).map_err(syntax)?;
        let undeclared: BTreeSet<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| {
                !declared.contains(v.as_str())
                    && !crate::domain::template::RESERVED_VARIABLES.contains(&v.as_str())
                    && !env.globals().any(|(name, _)| name == v)
            })
            .collect();
        if !undeclared.is_empty() {
            return Err(RenderError::Undeclared {
                part,
                names: undeclared,
            });
        }
        let missing = || -> Vec<String> {
            template
                .undeclared_variables(true)
                .into_iter()
                .filter(|name| !resolves(name, context))
                .collect()
        };
        bounded
            .render(&env, minijinja::Value::from_serialize(context))
            .map_err(|failure| match failure {
                bounds::RenderFailure::Exceeded(exceeded) => {
                    RenderError::TooLarge { part, exceeded }
                }
                bounds::RenderFailure::Template(e) => {
                    let missing = missing();
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
                        at: position(&e, source),
                    }
                }
            })
    }
}

/// Whether a (possibly dotted) variable name has a value in the rendering context.
fn resolves(name: &str, context: &BTreeMap<&str, minijinja::Value>) -> bool {
    let mut parts = name.split('.');
    let Some(mut value) = parts.next().and_then(|top| context.get(top)).cloned() else {
        return false;
    };
    for part in parts {
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
}

impl Renderer {
    /// Renders a message for sending. Same checks as [`Renderer::render`], then by channel:
    ///
    /// - email: `html` is the body in the brand layout (see [`brand_layout`]), `text` a
    ///   plain-text alternative of the body (see [`html_to_text`]) followed by the brand's footer
    ///   text, website and support address;
    /// - SMS: `text` is the body without surrounding whitespace (it would be billed), with its
    ///   `segments`;
    /// - WhatsApp and in-app: `text` is the body without surrounding whitespace. WhatsApp is
    ///   billed per message, not per segment, so it has no `segments`.
    pub fn render_message(
        self,
        channel: Channel,
        content: &TemplateContent,
        variables: &BTreeMap<String, String>,
        brand: &BTreeMap<&str, &str>,
    ) -> Result<RenderedMessage, RenderError> {
        let Rendered { subject, body } = self.render(channel, content, variables, brand)?;
        match channel {
            Channel::Email => {
                let html =
                    brand_layout(&body, subject.as_deref(), brand, &content.design_settings)?;
                let mut text = html_to_text(&body)?;
                let footer: Vec<&str> = ["footer_text", "website_url", "support_email"]
                    .iter()
                    .filter_map(|k| brand_value(brand, k))
                    .collect();
                if !footer.is_empty() {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(&footer.join("\n"));
                }
                Ok(RenderedMessage {
                    subject,
                    html: Some(html),
                    text,
                    segments: None,
                })
            }
            Channel::Sms => {
                let text = body.trim().to_owned();
                Ok(RenderedMessage {
                    subject: None,
                    html: None,
                    segments: Some(sms::segments(&text)),
                    text,
                })
            }
            Channel::Whatsapp | Channel::InApp => Ok(RenderedMessage {
                subject: None,
                html: None,
                text: body.trim().to_owned(),
                segments: None,
            }),
        }
    }
}

/// Herald's brand layout: a 600px, table-based, inline-styled document that email clients from
/// Outlook to Gmail render alike, narrowing to the screen on phones. Values are HTML-escaped
/// by autoescape; colours, fonts and URLs are checked in [`LayoutStyle::new`] before they reach
/// a `style` attribute or the `<style>` block, where escaping alone would not be enough.
const LAYOUT: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="x-apple-disable-message-reformatting">
<meta name="color-scheme" content="light">
{% if subject %}
<title>{{ subject }}</title>
{% endif %}
<style>
body { margin: 0; padding: 0; width: 100% !important; -webkit-text-size-adjust: 100%; -ms-text-size-adjust: 100%; }
table, td { border-collapse: collapse; mso-table-lspace: 0pt; mso-table-rspace: 0pt; }
img { border: 0; outline: none; text-decoration: none; -ms-interpolation-mode: bicubic; }
.herald-body a { color: {{ style.primary }}; }
.herald-body a.button, .herald-body .button a { display: inline-block; padding: 12px 24px; border-radius: 4px; background-color: {{ style.button }}; color: {{ style.button_text }} !important; font-weight: bold; text-decoration: none; }
@media only screen and (max-width: 620px) {
  .herald-card { width: 100% !important; }
  .herald-pad { padding-left: 16px !important; padding-right: 16px !important; }
}
</style>
</head>
<body style="margin:0;padding:0;background-color:{{ style.background }};">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:{{ style.background }};">
<tr>
<td align="center" style="padding:24px 8px;">
<!--[if mso]><table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0"><tr><td><![endif]-->
<table role="presentation" class="herald-card" width="100%" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background-color:#ffffff;border-top:4px solid {{ style.primary }};">
{% if brand.logo_url or brand.display_name %}
<tr>
<td class="herald-pad" align="{{ style.align }}" style="padding:24px 32px 8px 32px;font-family:{{ style.font }};text-align:{{ style.align }};">
{% if brand.website_url %}<a href="{{ brand.website_url }}" style="text-decoration:none;color:{{ style.primary }};">{% endif %}
{% if brand.logo_url %}<img src="{{ brand.logo_url }}" alt="{{ brand.display_name or '' }}" height="48" style="display:inline-block;height:48px;width:auto;max-width:240px;border:0;">{% else %}<span style="font-size:22px;font-weight:bold;color:{{ style.primary }};">{{ brand.display_name }}</span>{% endif %}
{% if brand.website_url %}</a>{% endif %}

</td>
</tr>
{% endif %}
<tr>
<td class="herald-pad herald-body" style="padding:16px 32px 32px 32px;font-family:{{ style.font }};font-size:16px;line-height:1.5;color:#1f2933;text-align:left;">
{{ body|safe }}
</td>
</tr>
{% if brand.footer_text or brand.website_url or brand.support_email %}
<tr>
<td class="herald-pad" align="{{ style.align }}" style="padding:16px 32px 24px 32px;border-top:2px solid {{ style.secondary }};font-family:{{ style.font }};font-size:12px;line-height:1.5;color:#52606d;text-align:{{ style.align }};">
{% if brand.footer_text %}
<p style="margin:0 0 8px 0;">{{ brand.footer_text }}</p>
{% endif %}
{% if brand.website_url or brand.support_email %}
<p style="margin:0;">
{% if brand.website_url %}<a href="{{ brand.website_url }}" style="color:{{ style.primary }};">{{ brand.website_label }}</a>{% endif %}
{% if brand.website_url and brand.support_email %} &middot; {% endif %}
{% if brand.support_email %}<a href="mailto:{{ brand.support_email }}" style="color:{{ style.primary }};">{{ brand.support_email }}</a>{% endif %}

</p>
{% endif %}
</td>
</tr>
{% endif %}
</table>
<!--[if mso]></td></tr></table><![endif]-->
</td>
</tr>
</table>
</body>
</html>
"##;

/// The layout, parsed once per process (the same for every tenant).
static LAYOUT_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = environment();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // A syntax error here fails every layout render (and the tests), never silently.
    let _ = env.add_template("layout.html", LAYOUT);
    env
});

const DEFAULT_PRIMARY: &str = "#1f4e79";
const DEFAULT_SECONDARY: &str = "#e4e7eb";
const DEFAULT_BACKGROUND: &str = "#f4f5f7";
const FALLBACK_FONTS: &str = "Helvetica, Arial, sans-serif";

/// Brand values the layout shows; `None` when absent, blank or unsafe, so nothing empty is drawn.
#[derive(Debug, Serialize)]
struct LayoutBrand<'a> {
    display_name: Option<&'a str>,
    logo_url: Option<&'a str>,
    website_url: Option<&'a str>,
    website_label: Option<&'a str>,
    support_email: Option<&'a str>,
    footer_text: Option<&'a str>,
}

/// Presentation values, each checked to be a plain CSS value.
#[derive(Debug, Serialize)]
struct LayoutStyle {
    primary: String,
    secondary: String,
    button: String,
    button_text: &'static str,
    background: String,
    font: String,
    align: &'static str,
}

impl LayoutStyle {
    fn new(brand: &BTreeMap<&str, &str>, design: &BTreeMap<String, String>) -> Self {
        let brand_colour = |key, default: &str| {
            brand_value(brand, key)
                .and_then(colour)
                .unwrap_or(default)
                .to_owned()
        };
        let primary = brand_colour("primary_color", DEFAULT_PRIMARY);
        let design_colour = |key: &str| design.get(key).map(String::as_str).and_then(colour);
        let button = design_colour("button_color").unwrap_or(&primary).to_owned();
        let font = match brand_value(brand, "font_family").and_then(font_family) {
            Some(f) => format!("{f}, {FALLBACK_FONTS}"),
            None => FALLBACK_FONTS.to_owned(),
        };
        let align = match design.get("layout").map(String::as_str) {
            Some("left") => "left",
            _ => "center",
        };
        Self {
            secondary: brand_colour("secondary_color", DEFAULT_SECONDARY),
            button_text: if is_light(&button) {
                "#111111"
            } else {
                "#ffffff"
            },
            background: design_colour("background_color")
                .unwrap_or(DEFAULT_BACKGROUND)
                .to_owned(),
            primary,
            button,
            font,
            align,
        }
    }
}

/// Wraps an already rendered (and escaped) email body in the brand layout.
///
/// Brand values used: `logo_url`, `display_name` (header; the logo's alt text), `primary_color`
/// (accent bar, links, buttons), `secondary_color` (footer rule), `font_family`, `footer_text`,
/// `website_url`, `support_email`. Design settings: `layout` (`centered`, the default, or
/// `left`: alignment of header and footer), `button_color` (links with class `button`; defaults
/// to the primary colour), `background_color`. Colours must be `#rrggbb`, URLs `https://`,
/// fonts plain family names; anything else falls back to the default as if absent.
pub fn brand_layout(
    body: &str,
    subject: Option<&str>,
    brand: &BTreeMap<&str, &str>,
    design: &BTreeMap<String, String>,
) -> Result<String, RenderError> {
    let website_url = brand_value(brand, "website_url").filter(|u| is_https(u));
    let layout_brand = LayoutBrand {
        display_name: brand_value(brand, "display_name"),
        logo_url: brand_value(brand, "logo_url").filter(|u| is_https(u)),
        website_label: website_url.map(|u| {
            let host = u.trim_start_matches("https://");
            host.strip_suffix('/').unwrap_or(host)
        }),
        website_url,
        support_email: brand_value(brand, "support_email")
            .filter(|e| EmailAddress::parse(e).is_ok_and(|p| p.as_str() == *e)),
        footer_text: brand_value(brand, "footer_text"),
    };
    let context = minijinja::context! {
        subject => subject,
        body => body,
        brand => minijinja::Value::from_serialize(&layout_brand),
        style => minijinja::Value::from_serialize(LayoutStyle::new(brand, design)),
    };
    let failed = |e: minijinja::Error| RenderError::Render {
        part: "layout",
        at: None,
        message: describe(&e),
    };
    LAYOUT_ENV
        .get_template("layout.html")
        .map_err(failed)?
        .render(context)
        .map_err(failed)
}

/// A brand value worth showing: present and not blank.
fn brand_value<'a>(brand: &BTreeMap<&str, &'a str>, key: &str) -> Option<&'a str> {
    brand.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn is_https(url: &str) -> bool {
    url.len() > "https://".len()
        && url.starts_with("https://")
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `#rrggbb` (what brand checks accept), or `None`.
fn colour(value: &str) -> Option<&str> {
    let value = value.trim();
    (value.len() == 7
        && value.starts_with('#')
        && value[1..].chars().all(|c| c.is_ascii_hexdigit()))
    .then_some(value)
}

/// A font-family list made only of names, spaces, commas, hyphens and single quotes, so it
/// cannot end the CSS declaration it is put in.
fn font_family(value: &str) -> Option<&str> {
    let value = value.trim().trim_end_matches(',').trim();
    (!value.is_empty()
        && value.len() <= 200
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | ',' | '-' | '\'')))
    .then_some(value)
}

/// Whether dark text reads better than white on `#rrggbb` (WCAG relative luminance above the
/// point where both contrast ratios are equal).
fn is_light(hex: &str) -> bool {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0))
            / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5) > 0.179
}

/// Line width of plain-text alternatives, the customary limit for text email.
const TEXT_WIDTH: usize = 78;

/// A plain-text version of an HTML email body: paragraphs and headings as blocks separated by
/// blank lines, `<br>` as line breaks, list items as `- ` and `1. `, quotes as `> `, tables cell
/// by cell, links as `text (url)` (just the address for `mailto:`; links that are not
/// `http(s)`, `mailto:` or `tel:` keep only their text), images by their alt text; tags,
/// styles and scripts removed, entities decoded, wrapped at 78 columns.
pub fn html_to_text(html: &str) -> Result<String, RenderError> {
    let html = cap_nesting(html);
    let text = html2text::config::with_decorator(TextEmail::default())
        .raw_mode(true)
        .no_link_wrapping()
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), TEXT_WIDTH)
        .map_err(|e| RenderError::Render {
            part: "text",
            at: None,
            message: e.to_string(),
        })?;
    let text = collapse_self_links(&text);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    Ok(lines.join("\n").trim().to_owned())
}

/// Deeper element nesting than any real email has. The text conversion's cost grows with the
/// square of the depth: a 100 KB body of nested `<div>`s would take over a second per message.
const MAX_TEXT_DEPTH: usize = 200;

/// `html` with the tags of elements nested deeper than [`MAX_TEXT_DEPTH`] removed (their text
/// stays); unchanged, and not copied, when it is not that deep. The depth is estimated from the
/// tags alone, counting unclosed elements as open: it can only err towards flattening.
fn cap_nesting(html: &str) -> std::borrow::Cow<'_, str> {
    const VOID: [&str; 13] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr",
    ];
    let mut depth = 0usize;
    let mut flattened: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while let Some(start) = html[at..].find('<').map(|i| at + i) {
        let Some(end) = html[start..].find('>').map(|i| start + i + 1) else {
            break;
        };
        at = end;
        let tag = &html[start + 1..end - 1];
        let closing = tag.starts_with('/');
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_ascii_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        if !name.starts_with(|c: char| c.is_ascii_alphabetic())
            || VOID.iter().any(|v| v.eq_ignore_ascii_case(name))
            || (!closing && tag.ends_with('/'))
        {
            continue;
        }
        let too_deep = if closing {
            let too_deep = depth > MAX_TEXT_DEPTH;
            depth = depth.saturating_sub(1);
            too_deep
        } else {
            depth += 1;
            depth > MAX_TEXT_DEPTH
        };
        if too_deep {
            let out = flattened.get_or_insert_with(|| String::with_capacity(html.len()));
            out.push_str(&html[copied..start]);
            copied = end;
        }
    }
    match flattened {
        None => std::borrow::Cow::Borrowed(html),
        Some(mut out) => {
            out.push_str(&html[copied..]);
            std::borrow::Cow::Owned(out)
        }
    }
}

/// `https://x (https://x)` and `ada@x (ada@x)`, where a link's text is its own address, once.
fn collapse_self_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let (before, after) = (&rest[..open], &rest[open + 1..]);
        let address = after
            .find(')')
            .map(|close| &after[..close])
            .filter(|a| a.contains([':', '@', '.', '+']) && !a.contains(char::is_whitespace));
        let shown_before = address.and_then(|a| {
            before
                .strip_suffix([' ', '\n'])
                .filter(|b| b.ends_with(a))
                .map(|b| (b, a.len()))
        });
        match shown_before {
            Some((b, len)) => {
                out.push_str(b);
                rest = &after[len + 1..];
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// How [`html_to_text`] writes inline markup: no emphasis marks, links followed by their
/// address. A stack, because a link's address is known at its start and written at its end.
#[derive(Debug, Clone, Default)]
struct TextEmail {
    links: Vec<Option<String>>,
}

impl html2text::render::TextDecorator for TextEmail {
    type Annotation = ();

    fn decorate_link_start(&mut self, url: &str) -> (String, ()) {
        let url = url.trim();
        let shown = if url.starts_with("https://") || url.starts_with("http://") {
            Some(url.to_owned())
        } else if let Some(address) = url
            .strip_prefix("mailto:")
            .or_else(|| url.strip_prefix("tel:"))
        {
            let address = address.split('?').next().unwrap_or_default();
            (!address.is_empty()).then(|| address.to_owned())
        } else {
            None
        };
        self.links.push(shown);
        (String::new(), ())
    }

    fn decorate_link_end(&mut self) -> String {
        match self.links.pop().flatten() {
            Some(url) => format!(" ({url})"),
            None => String::new(),
        }
    }

    fn decorate_em_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_em_end(&self) -> String {
        String::new()
    }

    fn decorate_strong_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_strong_end(&self) -> String {
        String::new()
    }

    fn decorate_strikeout_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }

    fn decorate_code_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_code_end(&self) -> String {
        String::new()
    }

    fn decorate_preformat_first(&self) {}

    fn decorate_preformat_cont(&self) {}

    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, ()) {
        (title.to_owned(), ())
    }

    fn header_prefix(&self, _level: usize) -> String {
        String::new()
    }

    fn quote_prefix(&self) -> String {
        "> ".to_owned()
    }

    fn unordered_item_prefix(&self) -> String {
        "- ".to_owned()
    }

    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }

    fn make_subblock_decorator(&self) -> Self {
        Self::default()
    }

    fn finalise(&mut self, _urls: Vec<String>) -> Vec<html2text::render::TaggedLine<()>> {
        Vec::new()
    }
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
                .map(|n| VariableDecl {
                    name: (*n).into(),
                    required: true,
                    sample: format!("<{n}>"),
                    description: None,
                })
                .collect(),
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
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
        let vars = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
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
        assert!(html.contains(DEFAULT_PRIMARY));
        assert!(html.contains(FALLBACK_FONTS));
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
    fn text_alternatives_wrap_and_survive_odd_html() {
        let long = "word ".repeat(40);
        let text = html_to_text(&format!("<p>{long}</p>")).expect("converts");
        assert!(
            text.lines().all(|l| l.chars().count() <= TEXT_WIDTH),
            "{text}"
        );
        assert_eq!(html_to_text("").ok(), Some(String::new()));
        assert_eq!(
            html_to_text("<p>unclosed <b>tags &copy; &#8364;<div>").ok(),
            Some("unclosed tags © €".to_owned())
        );
        // Pathological nesting is flattened (html2text's cost grows with depth squared).
        let deep = "<div>".repeat(20_000) + "deep";
        assert_eq!(html_to_text(&deep).ok(), Some("deep".to_owned()));
        let deep = "<b>a".repeat(300) + &"</b>".repeat(300) + "<p>after</p>";
        assert!(matches!(cap_nesting(&deep), std::borrow::Cow::Owned(_)));
        let text = html_to_text(&deep).unwrap_or_default();
        assert_eq!(text.replace('\n', "").matches('a').count(), 301, "{text}");
        assert!(text.ends_with("a\n\nafter"), "{text}");
        let normal = "<table><tr><td><p>x<br/><img src=\"y\"></p></td></tr></table>".repeat(500);
        assert!(matches!(
            cap_nesting(&normal),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn self_links_are_shown_once() {
        assert_eq!(
            collapse_self_links("a https://x.example (https://x.example) b"),
            "a https://x.example b"
        );
        assert_eq!(
            collapse_self_links("mail ada@x.example\n(ada@x.example)."),
            "mail ada@x.example."
        );
        assert_eq!(
            collapse_self_links("RSVP (https://x.example) (5) room 5 (5) (unclosed"),
            "RSVP (https://x.example) (5) room 5 (5) (unclosed"
        );
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
        c.variables[0].sample = "x".repeat(40);
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
}
