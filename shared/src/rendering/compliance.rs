//! What marketing messages carry whatever their template says: the opt-out line of an SMS and
//! the unsubscribe link at the foot of an email (with the sender's legal name and postal
//! address, which the brand holds and completion insists on), in the recipient's language.
//! Transactional messages carry none of it.

use crate::domain::CategoryClass;

/// Whether a template's messages carry the compliance blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compliance {
    /// Transactional and regulatory messages (and renderings that are not messages).
    #[default]
    None,
    /// Marketing: opt-out line (SMS), unsubscribe link (email).
    Marketing,
}

impl From<CategoryClass> for Compliance {
    fn from(class: CategoryClass) -> Self {
        match class {
            CategoryClass::Marketing => Compliance::Marketing,
            CategoryClass::Transactional => Compliance::None,
        }
    }
}

/// The lines in one language.
struct Lines {
    language: &'static str,
    stop: &'static str,
    unsubscribe: &'static str,
}

/// English first: the fallback for languages not listed.
const LINES: [Lines; 6] = [
    Lines {
        language: "en",
        stop: "Reply STOP to opt out.",
        unsubscribe: "Unsubscribe or manage your preferences",
    },
    Lines {
        language: "fr",
        stop: "Répondez STOP pour vous désabonner.",
        unsubscribe: "Se désabonner ou gérer vos préférences",
    },
    Lines {
        language: "sw",
        stop: "Jibu STOP kujiondoa.",
        unsubscribe: "Jiondoe au dhibiti mapendeleo yako",
    },
    Lines {
        language: "pt",
        stop: "Responda STOP para cancelar.",
        unsubscribe: "Cancelar a subscrição ou gerir as suas preferências",
    },
    Lines {
        language: "es",
        stop: "Responde STOP para darte de baja.",
        unsubscribe: "Darte de baja o gestionar tus preferencias",
    },
    Lines {
        language: "de",
        stop: "Antworten Sie STOP, um sich abzumelden.",
        unsubscribe: "Abmelden oder Einstellungen verwalten",
    },
];

fn lines(locale: Option<&str>) -> &'static Lines {
    let language = locale
        .and_then(|l| l.split(['-', '_']).next())
        .unwrap_or("en");
    LINES
        .iter()
        .find(|l| l.language.eq_ignore_ascii_case(language))
        .unwrap_or(&LINES[0])
}

/// The opt-out line a marketing SMS ends with, in `locale`'s language (English otherwise).
pub fn stop_line(locale: Option<&str>) -> &'static str {
    lines(locale).stop
}

/// The label of a marketing email's unsubscribe link, in `locale`'s language.
pub fn unsubscribe_label(locale: Option<&str>) -> &'static str {
    lines(locale).unsubscribe
}

/// `text` ending with the opt-out line, unless it already tells the recipient to reply STOP.
pub fn with_stop_line(text: String, locale: Option<&str>) -> String {
    if text
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| word == "STOP")
    {
        return text;
    }
    let line = stop_line(locale);
    if text.is_empty() {
        return line.to_owned();
    }
    format!("{text}\n{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_language_with_english_otherwise() {
        assert_eq!(
            stop_line(Some("fr-CA")),
            "Répondez STOP pour vous désabonner."
        );
        assert_eq!(stop_line(Some("sw")), "Jibu STOP kujiondoa.");
        assert_eq!(stop_line(Some("zu")), "Reply STOP to opt out.");
        assert_eq!(stop_line(None), "Reply STOP to opt out.");
        assert_eq!(
            unsubscribe_label(Some("pt-BR")),
            "Cancelar a subscrição ou gerir as suas preferências"
        );
    }

    #[test]
    fn the_stop_line_is_added_once() {
        assert_eq!(
            with_stop_line("Hi Ada".into(), Some("en")),
            "Hi Ada\nReply STOP to opt out."
        );
        let own = "Hi Ada. Text STOP to 12345 to opt out".to_owned();
        assert_eq!(with_stop_line(own.clone(), Some("fr")), own);
        // A word containing STOP is not the keyword.
        assert!(with_stop_line("NONSTOP party".into(), None).ends_with("opt out."));
    }
}
