//! The preference centre as a web page, for people rather than programs: what a browser gets at
//! `GET /preferences/{token}` (it asks for `text/html`), and the form it posts back to
//! `POST /preferences/{token}`. Server-rendered, no JavaScript, one form: whether the recipient
//! wants marketing on the link's channel, and which kinds of it. Accessible (a language, a main
//! landmark, a heading, fieldsets with legends, every control labelled, the saved state
//! announced as a status) and localised from the browser's `Accept-Language` (English, French,
//! Swahili; English otherwise).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use lambda_http::Request;
use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

use crate::domain::consent::{ConsentScope, ConsentStatus};
use crate::domain::preference_link::PreferenceLink;
use crate::domain::validation::FieldError;
use crate::domain::{Category, CategoryClass, Channel, ErrorCode};
use crate::http::{ApiError, ApiResult};
use crate::store::RecipientLedger;

/// Whether the request asks for the page rather than the JSON document.
pub fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The words of the page in one language.
#[derive(Debug, Serialize)]
struct Words {
    lang: &'static str,
    title: &'static str,
    intro: &'static str,
    marketing_legend: &'static str,
    yes: &'static str,
    no: &'static str,
    kinds_legend: &'static str,
    kinds_hint: &'static str,
    save: &'static str,
    saved: &'static str,
    transactional_note: &'static str,
    channels: [(&'static str, &'static str); 4],
    categories: [(&'static str, &'static str); 4],
}

const WORDS: [Words; 3] = [
    Words {
        lang: "en",
        title: "Your communication preferences",
        intro: "Choose what we may send you by {channel}.",
        marketing_legend: "Invitations and news by {channel}",
        yes: "Yes, send me invitations and news",
        no: "No, send me no invitations or news",
        kinds_legend: "Which of them",
        kinds_hint: "Untick what you do not want.",
        save: "Save my preferences",
        saved: "Your preferences are saved.",
        transactional_note: "Messages about events you are attending (confirmations, tickets, changes) still reach you.",
        channels: [
            ("email", "email"),
            ("sms", "SMS"),
            ("whatsapp", "WhatsApp"),
            ("in_app", "in-app messages"),
        ],
        categories: [
            ("save_the_date", "Save the dates"),
            ("invitation", "Invitations"),
            ("thank_you", "Thank-you messages"),
            ("feedback_request", "Requests for feedback"),
        ],
    },
    Words {
        lang: "fr",
        title: "Vos préférences de communication",
        intro: "Choisissez ce que nous pouvons vous envoyer par {channel}.",
        marketing_legend: "Invitations et nouvelles par {channel}",
        yes: "Oui, envoyez-moi des invitations et des nouvelles",
        no: "Non, ne m'envoyez ni invitations ni nouvelles",
        kinds_legend: "Lesquelles",
        kinds_hint: "Décochez ce que vous ne souhaitez pas recevoir.",
        save: "Enregistrer mes préférences",
        saved: "Vos préférences sont enregistrées.",
        transactional_note: "Les messages sur les événements auxquels vous participez (confirmations, billets, changements) vous parviennent toujours.",
        channels: [
            ("email", "e-mail"),
            ("sms", "SMS"),
            ("whatsapp", "WhatsApp"),
            ("in_app", "messages dans l'application"),
        ],
        categories: [
            ("save_the_date", "Réservez la date"),
            ("invitation", "Invitations"),
            ("thank_you", "Remerciements"),
            ("feedback_request", "Demandes d'avis"),
        ],
    },
    Words {
        lang: "sw",
        title: "Mapendeleo yako ya mawasiliano",
        intro: "Chagua tunachoweza kukutumia kwa {channel}.",
        marketing_legend: "Mialiko na habari kwa {channel}",
        yes: "Ndiyo, nitumie mialiko na habari",
        no: "Hapana, usinitumie mialiko wala habari",
        kinds_legend: "Zipi kati ya hizo",
        kinds_hint: "Ondoa alama kwenye usichotaka.",
        save: "Hifadhi mapendeleo yangu",
        saved: "Mapendeleo yako yamehifadhiwa.",
        transactional_note: "Ujumbe kuhusu matukio unayohudhuria (uthibitisho, tiketi, mabadiliko) bado utakufikia.",
        channels: [
            ("email", "barua pepe"),
            ("sms", "SMS"),
            ("whatsapp", "WhatsApp"),
            ("in_app", "ujumbe wa programu"),
        ],
        categories: [
            ("save_the_date", "Tarehe za kuhifadhi"),
            ("invitation", "Mialiko"),
            ("thank_you", "Ujumbe wa shukrani"),
            ("feedback_request", "Maombi ya maoni"),
        ],
    },
];

/// The language of the page: the first of the browser's languages Herald has words for.
fn words(request: &Request) -> &'static Words {
    let accepted = request
        .headers()
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    accepted
        .split(',')
        .filter_map(|part| part.split(';').next())
        .filter_map(|tag| tag.trim().split('-').next())
        .find_map(|language| WORDS.iter().find(|w| w.lang.eq_ignore_ascii_case(language)))
        .unwrap_or(&WORDS[0])
}

/// The marketing categories, in the wizard's order.
fn marketing_categories() -> impl Iterator<Item = Category> {
    Category::ALL
        .into_iter()
        .filter(|c| c.class() == CategoryClass::Marketing)
}

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="{{ w.lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ w.title }}</title>
<style>
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; line-height: 1.5; color: #1f2933; background: #f4f5f7; }
main { max-width: 36rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
form, .status { background: #fff; border-radius: 6px; padding: 1rem 1.25rem; margin: 1rem 0; }
.status { border-left: 4px solid #1e7b34; }
fieldset { border: 1px solid #cbd2d9; border-radius: 4px; margin: 0 0 1rem; padding: 0.75rem 1rem; }
legend { font-weight: 600; padding: 0 0.25rem; }
label { display: block; padding: 0.35rem 0; }
input { width: 1.1rem; height: 1.1rem; margin-right: 0.5rem; vertical-align: -0.15rem; }
button { font: inherit; font-weight: 600; color: #fff; background: #1f4e79; border: 0; border-radius: 4px; padding: 0.6rem 1.2rem; cursor: pointer; }
button:focus, input:focus { outline: 3px solid #e58e26; outline-offset: 2px; }
.hint, .note { color: #52606d; font-size: 0.95rem; }
</style>
</head>
<body>
<main>
<h1>{{ w.title }}</h1>
{% if saved %}<p class="status" role="status">{{ w.saved }}</p>{% endif %}
<p>{{ intro }}</p>
<form method="post">
<fieldset>
<legend>{{ marketing_legend }}</legend>
<label><input type="radio" name="marketing" value="yes"{% if marketing %} checked{% endif %}> {{ w.yes }}</label>
<label><input type="radio" name="marketing" value="no"{% if not marketing %} checked{% endif %}> {{ w.no }}</label>
</fieldset>
<fieldset>
<legend>{{ w.kinds_legend }}</legend>
<p class="hint" id="kinds-hint">{{ w.kinds_hint }}</p>
{% for kind in kinds %}
<label><input type="checkbox" name="category" value="{{ kind.value }}" aria-describedby="kinds-hint"{% if kind.wanted %} checked{% endif %}> {{ kind.label }}</label>
{% endfor %}
</fieldset>
<button type="submit">{{ w.save }}</button>
</form>
<p class="note">{{ w.transactional_note }}</p>
</main>
</body>
</html>
"##;

static PAGE_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // A syntax error here fails every page (and the tests), never silently.
    let _ = env.add_template("preferences.html", PAGE);
    env
});

#[derive(Serialize)]
struct Kind {
    value: &'static str,
    label: &'static str,
    wanted: bool,
}

/// Whether marketing on `channel` is wanted: no withdrawal of marketing (as a class) in force.
fn wants_marketing(ledger: &RecipientLedger, channel: Channel) -> bool {
    ledger
        .consents
        .iter()
        .find(|c| c.channel == channel && c.scope == ConsentScope::Class(CategoryClass::Marketing))
        .is_none_or(|c| c.status != ConsentStatus::Withdrawn)
}

/// The page for `link`, showing `ledger`.
pub fn page(
    request: &Request,
    link: &PreferenceLink,
    ledger: &RecipientLedger,
    saved: bool,
) -> ApiResult {
    let w = words(request);
    let channel = w
        .channels
        .iter()
        .find(|(c, _)| *c == link.channel.as_str())
        .map_or(link.channel.as_str(), |(_, name)| name);
    let opted_out = ledger
        .preferences
        .as_ref()
        .map(|p| p.preferences.category_opt_outs.clone())
        .unwrap_or_default();
    let kinds: Vec<Kind> = marketing_categories()
        .map(|c| Kind {
            value: c.as_str(),
            label: w
                .categories
                .iter()
                .find(|(v, _)| *v == c.as_str())
                .map_or(c.as_str(), |(_, l)| l),
            wanted: !opted_out.contains(&c),
        })
        .collect();
    let html = PAGE_ENV
        .get_template("preferences.html")
        .and_then(|t| {
            t.render(context! {
                w => w,
                saved => saved,
                intro => w.intro.replace("{channel}", channel),
                marketing_legend => w.marketing_legend.replace("{channel}", channel),
                marketing => wants_marketing(ledger, link.channel),
                kinds => kinds,
            })
        })
        .map_err(|e| ApiError::Internal(e.into()))?;
    lambda_http::Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("content-language", w.lang)
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .header("referrer-policy", "no-referrer")
        .body(lambda_http::Body::Text(html))
        .map_err(|e| ApiError::Internal(e.into()))
}

/// What the page's form says: marketing on the link's channel or not, and the marketing
/// categories wanted.
#[derive(Debug, PartialEq, Eq)]
pub struct FormChoice {
    pub marketing: bool,
    pub wanted: BTreeSet<Category>,
}

impl FormChoice {
    /// Parses `application/x-www-form-urlencoded`: `marketing=yes|no` once, `category=<a
    /// marketing category>` for each wanted; nothing else.
    pub fn parse(body: &[u8]) -> Result<Self, FieldError> {
        let mut marketing = None;
        let mut wanted = BTreeSet::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            match name.as_ref() {
                "marketing" => {
                    if marketing.is_some() {
                        return Err(FieldError::invalid("marketing", "give marketing once"));
                    }
                    marketing = Some(match value.as_ref() {
                        "yes" => true,
                        "no" => false,
                        _ => return Err(FieldError::invalid("marketing", "yes or no")),
                    });
                }
                "category" => {
                    let category = marketing_categories()
                        .find(|c| c.as_str() == value)
                        .ok_or_else(|| {
                            FieldError::invalid("category", "must be a marketing category")
                        })?;
                    wanted.insert(category);
                }
                _ => {
                    return Err(FieldError::new(
                        ErrorCode::NotAllowed,
                        "form",
                        "the form takes marketing and category only",
                    ));
                }
            }
        }
        Ok(Self {
            marketing: marketing.ok_or_else(|| FieldError::required("marketing"))?,
            wanted,
        })
    }

    /// The marketing categories the recipient does not want.
    pub fn opted_out(&self) -> BTreeSet<Category> {
        marketing_categories()
            .filter(|c| !self.wanted.contains(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_read_strictly() {
        let choice = FormChoice::parse(b"marketing=no&category=invitation&category=thank_you")
            .expect("valid");
        assert!(!choice.marketing);
        assert_eq!(
            choice.opted_out(),
            BTreeSet::from([Category::SaveTheDate, Category::FeedbackRequest])
        );
        for (bad, field) in [
            (&b"category=invitation"[..], "marketing"),
            (b"marketing=maybe", "marketing"),
            (b"marketing=yes&marketing=no", "marketing"),
            (b"marketing=yes&category=check_in", "category"),
            (b"marketing=yes&admin=1", "form"),
        ] {
            assert_eq!(
                FormChoice::parse(bad).map_err(|e| e.field),
                Err(field.to_owned())
            );
        }
    }
}
