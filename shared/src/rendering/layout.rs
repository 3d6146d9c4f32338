//! Herald's brand layout around an email body, and [`Frame`]: the layout laid out once per
//! template and brand, so that each message only fills in its subject and body.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;

use super::{RenderError, describe, environment, write_html_escaped};
use crate::domain::validation::EmailAddress;

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
{% if brand.footer_text or brand.website_url or brand.support_email or brand.identity or unsubscribe %}
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
{% if brand.identity %}
<p style="margin:8px 0 0 0;">{{ brand.identity }}</p>
{% endif %}
{% if unsubscribe %}
<p style="margin:8px 0 0 0;"><a href="{{ unsubscribe.url }}" style="color:{{ style.primary }};">{{ unsubscribe.label }}</a></p>
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

pub(super) const DEFAULT_PRIMARY: &str = "#1f4e79";
const DEFAULT_SECONDARY: &str = "#e4e7eb";
const DEFAULT_BACKGROUND: &str = "#f4f5f7";
pub(super) const FALLBACK_FONTS: &str = "Helvetica, Arial, sans-serif";

/// Brand values the layout shows; `None` when absent, blank or unsafe, so nothing empty is drawn.
#[derive(Debug, Serialize)]
struct LayoutBrand<'a> {
    display_name: Option<&'a str>,
    logo_url: Option<&'a str>,
    website_url: Option<&'a str>,
    website_label: Option<&'a str>,
    support_email: Option<&'a str>,
    footer_text: Option<&'a str>,
    /// The sender's legal name and postal address, as one line.
    identity: Option<String>,
}

/// A marketing email's unsubscribe link (the recipient's preference page) and its label.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UnsubscribeLink<'a> {
    pub url: &'a str,
    pub label: &'a str,
}

/// The sender's legal name and postal address, as the footer shows them.
fn identity(brand: &BTreeMap<&str, &str>) -> Option<String> {
    let parts: Vec<&str> = ["legal_name", "postal_address"]
        .iter()
        .filter_map(|k| brand_value(brand, k))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
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
/// `website_url`, `support_email`, `legal_name` and `postal_address`; a marketing email's
/// `unsubscribe` link goes last. Design settings: `layout` (`centered`, the default, or
/// `left`: alignment of header and footer), `button_color` (links with class `button`; defaults
/// to the primary colour), `background_color`. Colours must be `#rrggbb`, URLs `https://`,
/// fonts plain family names; anything else falls back to the default as if absent.
pub fn brand_layout(
    body: &str,
    subject: Option<&str>,
    brand: &BTreeMap<&str, &str>,
    design: &BTreeMap<String, String>,
    unsubscribe: Option<UnsubscribeLink<'_>>,
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
        identity: identity(brand),
    };
    let context = minijinja::context! {
        subject => subject,
        body => body,
        unsubscribe => unsubscribe.map(minijinja::Value::from_serialize),
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

/// Stand-ins for what each message fills in while the layout is laid out once: private-use
/// characters, which escaping leaves alone and no brand value can hold (they would be split on).
const SUBJECT_MARK: &str = "\u{f8ff}herald-subject\u{f8ff}";
const BODY_MARK: &str = "\u{f8ff}herald-body\u{f8ff}";
const URL_MARK: &str = "\u{f8ff}herald-unsubscribe-url\u{f8ff}";
const LABEL_MARK: &str = "\u{f8ff}herald-unsubscribe-label\u{f8ff}";

/// The brand layout of one template and brand, split around what each message fills in; and
/// the plain-text footer that follows the text alternative.
#[derive(Debug)]
pub struct Frame {
    brand: BTreeMap<String, String>,
    design: BTreeMap<String, String>,
    /// Whether messages carry an unsubscribe link (marketing).
    unsubscribe: bool,
    /// The layout between the marks (subject, body, then the link's URL and label for
    /// marketing); `None` when a brand value held a mark (then every message is laid out whole).
    pieces: Option<Vec<String>>,
    footer: String,
}

impl Frame {
    pub fn new(
        brand: &BTreeMap<&str, &str>,
        design: &BTreeMap<String, String>,
        unsubscribe: bool,
    ) -> Self {
        let marks: &[&str] = if unsubscribe {
            &[SUBJECT_MARK, BODY_MARK, URL_MARK, LABEL_MARK]
        } else {
            &[SUBJECT_MARK, BODY_MARK]
        };
        let link = unsubscribe.then_some(UnsubscribeLink {
            url: URL_MARK,
            label: LABEL_MARK,
        });
        let pieces = brand_layout(BODY_MARK, Some(SUBJECT_MARK), brand, design, link)
            .ok()
            .and_then(|html| {
                let mut pieces = Vec::with_capacity(marks.len() + 1);
                let mut rest = html.as_str();
                for mark in marks {
                    let (before, after) = rest.split_once(mark)?;
                    pieces.push(before.to_owned());
                    rest = after;
                }
                pieces.push(rest.to_owned());
                (!pieces.iter().any(|p| p.contains('\u{f8ff}'))).then_some(pieces)
            });
        let footer = ["footer_text", "website_url", "support_email"]
            .iter()
            .filter_map(|k| brand_value(brand, k).map(str::to_owned))
            .chain(identity(brand))
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            brand: brand
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            design: design.clone(),
            unsubscribe,
            pieces,
            footer,
        }
    }

    /// `body` (rendered, escaped) in the layout, titled `subject`, with the unsubscribe link
    /// (marketing; a placeholder address when a rendering has none, as a preview).
    pub fn wrap(
        &self,
        body: &str,
        subject: Option<&str>,
        link: Option<UnsubscribeLink<'_>>,
    ) -> Result<String, RenderError> {
        let link = self.unsubscribe.then(|| {
            link.unwrap_or(UnsubscribeLink {
                url: "#unsubscribe",
                label: super::compliance::unsubscribe_label(None),
            })
        });
        let subject = subject.filter(|s| !s.is_empty());
        let (Some(pieces), Some(subject)) = (&self.pieces, subject) else {
            let brand = self
                .brand
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            return brand_layout(body, subject, &brand, &self.design, link);
        };
        let escaped = |text: &str, out: &mut String| {
            write_html_escaped(out, text).map_err(|e| RenderError::Render {
                part: "layout",
                at: None,
                message: e.to_string(),
            })
        };
        let mut html = String::with_capacity(
            pieces.iter().map(String::len).sum::<usize>() + body.len() + subject.len() * 2 + 256,
        );
        html.push_str(&pieces[0]);
        escaped(subject, &mut html)?;
        html.push_str(&pieces[1]);
        html.push_str(body);
        html.push_str(&pieces[2]);
        if let Some(link) = link {
            escaped(link.url, &mut html)?;
            html.push_str(&pieces[3]);
            escaped(link.label, &mut html)?;
            html.push_str(&pieces[4]);
        }
        Ok(html)
    }

    /// The text alternative: `text` then the brand's footer text, website, support address and
    /// legal identity, and a marketing email's unsubscribe link.
    pub fn text(&self, mut text: String, link: Option<UnsubscribeLink<'_>>) -> String {
        let mut footer = self.footer.clone();
        if self.unsubscribe
            && let Some(link) = link
        {
            if !footer.is_empty() {
                footer.push('\n');
            }
            footer.push_str(link.label);
            footer.push_str(": ");
            footer.push_str(link.url);
        }
        if !footer.is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&footer);
        }
        text
    }
}
