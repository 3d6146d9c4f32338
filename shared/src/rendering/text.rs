//! The plain-text alternative of an HTML email body.

use super::RenderError;

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
}

#[cfg(test)]
mod probe {
    #[test]
    #[ignore]
    fn probe() {
        let path = std::env::var("H2T").unwrap_or_default();
        let snippets = std::fs::read_to_string(path).unwrap_or_default();
        for s in snippets.lines() {
            println!(
                "=== {s}\n{}\n",
                super::html_to_text(s)
                    .unwrap_or_default()
                    .replace('\u{a0}', "~")
            );
        }
    }
}
