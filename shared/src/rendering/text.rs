//! The plain-text alternative of an HTML email body, made in one pass over the rendered HTML: no
//! document tree, no layout engine. Each message's body differs, so this runs once per message;
//! it costs a few microseconds for a 3 KB body where a full HTML-to-text renderer cost over a
//! hundred (see the rendering benchmark).
//!
//! The rules, which are Herald's (a text email, not a screen rendering):
//!
//! - paragraphs, headings, quotes, preformatted text and tables are blocks separated by a blank
//!   line; so is text that follows one;
//! - list items (`- `, `1. `, nested lists indented under their item), `div`s, table rows and
//!   cells, definition terms and descriptions start a new line;
//! - `<br>` breaks the line; whitespace collapses to one space except in `<pre>`;
//! - links read `text (https://address)`, just the address for `mailto:` and `tel:`, and only
//!   their text when it already is the address or the link is not `http(s)`, `mailto:` or
//!   `tel:`; images read as their alt text;
//! - quotes are prefixed `> `; styles, scripts, the head and comments (Outlook's conditional
//!   comments included) are dropped; entities are decoded;
//! - lines wrap at 78 columns on spaces (a longer word stays whole), under their list indent.

use std::borrow::Cow;

use super::RenderError;

/// Line width of plain-text alternatives, the customary limit for text email.
const TEXT_WIDTH: usize = 78;

/// A plain-text version of an HTML email body (see the module's rules).
pub fn html_to_text(html: &str) -> Result<String, RenderError> {
    let mut text = Text::default();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        text.chars(&rest[..lt]);
        rest = &rest[lt..];
        rest = match Tag::parse(rest) {
            Some((Markup::Tag(tag), after)) => {
                if !tag.closing && RAW_TEXT.contains(&&*tag.name) {
                    skip_raw_text(after, &tag.name)
                } else {
                    text.tag(&tag);
                    after
                }
            }
            Some((Markup::Comment, after)) => after,
            // A `<` that starts no tag is text.
            None => {
                text.chars("<");
                &rest[1..]
            }
        };
    }
    text.chars(rest);
    Ok(text.finish())
}

/// Elements whose content is not text to show.
const RAW_TEXT: [&str; 6] = ["script", "style", "head", "title", "template", "textarea"];

/// What follows the closing tag of the raw-text element `name` (or nothing, if it is unclosed).
fn skip_raw_text<'a>(html: &'a str, name: &str) -> &'a str {
    let mut at = 0;
    while let Some(i) = html[at..].find("</") {
        let start = at + i;
        let candidate = &html[start + 2..];
        if candidate
            .get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && candidate[name.len()..]
                .chars()
                .next()
                .is_none_or(|c| c == '>' || c.is_ascii_whitespace() || c == '/')
        {
            return candidate.find('>').map_or("", |end| &candidate[end + 1..]);
        }
        at = start + 2;
    }
    ""
}

enum Markup<'a> {
    Tag(Tag<'a>),
    Comment,
}

/// A start or end tag (its name in lower case), with the attributes the text needs.
#[derive(Debug, Default)]
struct Tag<'a> {
    name: Cow<'a, str>,
    closing: bool,
    href: Option<Cow<'a, str>>,
    alt: Option<Cow<'a, str>>,
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

impl<'a> Tag<'a> {
    /// The markup at the start of `html` (which starts with `<`) and what follows it; `None`
    /// when the `<` starts no markup.
    fn parse(html: &'a str) -> Option<(Markup<'a>, &'a str)> {
        let body = &html[1..];
        if let Some(comment) = body.strip_prefix("!--") {
            let end = comment.find("-->").map_or(comment.len(), |i| i + 3);
            return Some((Markup::Comment, &comment[end..]));
        }
        if body.starts_with(['!', '?']) {
            let end = body.find('>').map_or(body.len(), |i| i + 1);
            return Some((Markup::Comment, &body[end..]));
        }
        let (closing, body) = match body.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, body),
        };
        if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let name_end = body
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .unwrap_or(body.len());
        let mut tag = Tag {
            name: lower(&body[..name_end]),
            closing,
            ..Tag::default()
        };
        let mut rest = &body[name_end..];
        // Attributes, up to the `>` that ends the tag (quoted values may hold `>`).
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
            if rest.is_empty() {
                return Some((Markup::Tag(tag), rest));
            }
            if let Some(after) = rest.strip_prefix('>') {
                return Some((Markup::Tag(tag), after));
            }
            let name_end = rest
                .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
                .unwrap_or(rest.len())
                .max(1);
            let name = &rest[..name_end.min(rest.len())];
            rest = rest[name_end.min(rest.len())..].trim_start();
            let mut value = None;
            if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                let (v, next) = match after.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let inner = &after[1..];
                        match inner.find(q) {
                            Some(end) => (&inner[..end], &inner[end + 1..]),
                            None => (inner, ""),
                        }
                    }
                    _ => {
                        let end = after
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .unwrap_or(after.len());
                        (&after[..end], &after[end..])
                    }
                };
                value = Some(v);
                rest = next;
            }
            if name.eq_ignore_ascii_case("href") {
                tag.href = value.map(html_escape::decode_html_entities);
            } else if name.eq_ignore_ascii_case("alt") {
                tag.alt = value.map(html_escape::decode_html_entities);
            }
        }
    }
}

/// How a block element separates itself from what came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    Line,
    Blank,
}

fn block(name: &str) -> Option<Break> {
    match name {
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "pre" | "table" | "hr"
        | "dl" | "figure" | "address" => Some(Break::Blank),
        "div" | "ul" | "ol" | "li" | "tr" | "td" | "th" | "thead" | "tbody" | "tfoot"
        | "caption" | "dt" | "dd" | "section" | "article" | "header" | "footer" | "nav"
        | "main" | "aside" | "center" | "form" | "fieldset" | "figcaption" | "body" | "html" => {
            Some(Break::Line)
        }
        _ => None,
    }
}

/// An open list: ordered ones count their items.
#[derive(Debug)]
struct List {
    ordered: bool,
    next: u32,
}

/// An open link: where its text starts in the paragraph, and the address it shows.
#[derive(Debug)]
struct Link {
    start: usize,
    shown: Option<String>,
}

/// The text being made: finished lines, the paragraph being gathered, and what is open.
#[derive(Debug, Default)]
struct Text {
    out: String,
    /// Inline text of the current block, whitespace collapsed; `\n` where a `<br>` was.
    para: String,
    /// Whitespace seen since the last character of `para`.
    space: bool,
    /// The break owed before the next paragraph.
    owed: Option<Break>,
    /// Text right after a block that separates itself by a blank line starts its own.
    after_block: bool,
    lists: Vec<List>,
    /// The bullet of the list item whose first paragraph is not written yet, and the indent
    /// of each open item.
    bullet: Option<String>,
    indents: Vec<usize>,
    quotes: usize,
    pre: usize,
    links: Vec<Link>,
}

impl Text {
    fn chars(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = if raw.contains('&') {
            html_escape::decode_html_entities(raw)
        } else {
            Cow::Borrowed(raw)
        };
        if self.pre > 0 {
            self.note_content();
            self.para.push_str(&decoded);
            return;
        }
        // Words, and whether whitespace came before each. Whitespace is ASCII, so splitting the
        // bytes on it keeps every character whole.
        let bytes = decoded.as_bytes();
        let mut start = None;
        for (i, &b) in bytes.iter().enumerate() {
            if b.is_ascii_whitespace() {
                if let Some(s) = start.take() {
                    self.word(&decoded[s..i]);
                }
                self.space = true;
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            self.word(&decoded[s..]);
        }
    }

    fn word(&mut self, word: &str) {
        self.note_content();
        if self.space && !self.para.is_empty() && !self.para.ends_with('\n') {
            self.para.push(' ');
        }
        self.space = false;
        self.para.push_str(word);
    }

    /// Decoded text (an attribute's), whitespace collapsed.
    fn text(&mut self, text: &str) {
        for word in text.split(|c: char| c.is_ascii_whitespace()) {
            if !word.is_empty() {
                self.word(word);
            }
            self.space = true;
        }
    }

    /// Visible content is coming: text after a blank-line block starts a paragraph of its own.
    fn note_content(&mut self) {
        if self.after_block {
            self.after_block = false;
            self.flush();
            self.owe(Break::Blank);
        }
    }

    fn owe(&mut self, b: Break) {
        self.owed = Some(self.owed.map_or(b, |o| o.max(b)));
    }

    fn tag(&mut self, tag: &Tag) {
        let name: &str = &tag.name;
        match (name, tag.closing) {
            ("br", _) => {
                self.note_content();
                self.para.push('\n');
                self.space = false;
                return;
            }
            ("img", false) => {
                if let Some(alt) = tag.alt.as_deref().filter(|a| !a.trim().is_empty()) {
                    self.text(alt);
                }
                return;
            }
            ("a", false) => {
                let shown = tag.href.as_deref().and_then(shown_address);
                self.links.push(Link {
                    start: self.para.len(),
                    shown,
                });
                return;
            }
            ("a", true) => {
                if let Some(link) = self.links.pop()
                    && let Some(address) = link.shown
                {
                    let text = self.para.get(link.start..).unwrap_or_default().trim();
                    if !text.is_empty() && text != address {
                        self.para.push_str(" (");
                        self.para.push_str(&address);
                        self.para.push(')');
                    } else if text.is_empty() {
                        self.text(&address);
                    }
                }
                return;
            }
            _ => {}
        }
        let Some(separation) = block(name) else {
            return;
        };
        self.flush();
        self.after_block = false;
        self.space = false;
        if tag.closing {
            match name {
                "ul" | "ol" => {
                    self.lists.pop();
                }
                "li" | "dd" => {
                    self.indents.pop();
                    self.bullet = None;
                }
                "blockquote" => self.quotes = self.quotes.saturating_sub(1),
                "pre" => self.pre = self.pre.saturating_sub(1),
                _ => {}
            }
            self.owe(Break::Line);
            self.after_block = separation == Break::Blank;
            return;
        }
        self.owe(separation);
        match name {
            "ul" | "ol" => self.lists.push(List {
                ordered: name == "ol",
                next: 1,
            }),
            "li" => {
                let bullet = match self.lists.last_mut() {
                    Some(list) if list.ordered => {
                        let b = format!("{}. ", list.next);
                        list.next += 1;
                        b
                    }
                    _ => "- ".to_owned(),
                };
                self.indents.push(bullet.chars().count());
                self.bullet = Some(bullet);
            }
            "dd" => self.indents.push(2),
            "blockquote" => self.quotes += 1,
            "pre" => self.pre += 1,
            _ => {}
        }
    }

    /// Writes the gathered paragraph, wrapped under the open indents and quotes.
    fn flush(&mut self) {
        let mut para = std::mem::take(&mut self.para);
        let kept = if self.pre > 0 {
            para.trim_matches('\n')
        } else {
            para.trim()
        };
        if kept.len() != para.len() {
            para = kept.to_owned();
        }
        self.space = false;
        if para.is_empty() {
            return;
        }
        if !self.out.is_empty() {
            match self.owed.unwrap_or(Break::Line) {
                Break::Blank => {
                    self.out.push('\n');
                    self.out.push_str(self.quote_prefix().trim_end());
                    self.out.push('\n');
                }
                _ => self.out.push('\n'),
            }
        }
        self.owed = None;
        let indent: usize = self.indents.iter().sum();
        let bullet = self.bullet.take();
        let (first, rest) = if indent == 0 && self.quotes == 0 && bullet.is_none() {
            (String::new(), String::new())
        } else {
            let quote = self.quote_prefix();
            let first = match &bullet {
                Some(b) => format!(
                    "{quote}{}{b}",
                    " ".repeat(indent.saturating_sub(b.chars().count()))
                ),
                None => format!("{quote}{}", " ".repeat(indent)),
            };
            (first, format!("{quote}{}", " ".repeat(indent)))
        };
        let mut prefix = first.as_str();
        let mut first_line = true;
        for segment in para.split('\n') {
            if !first_line {
                self.out.push('\n');
            }
            if self.pre > 0 {
                self.out.push_str(prefix);
                self.out.push_str(segment);
            } else {
                wrap(&mut self.out, segment.trim(), prefix, &rest);
            }
            prefix = &rest;
            first_line = false;
        }
    }

    fn quote_prefix(&self) -> String {
        "> ".repeat(self.quotes)
    }

    fn finish(mut self) -> String {
        self.after_block = false;
        self.flush();
        let lines: Vec<&str> = self.out.lines().map(str::trim_end).collect();
        lines.join("\n").trim_matches('\n').to_owned()
    }
}

/// Writes `text` as lines of at most [`TEXT_WIDTH`] characters (a longer word stays whole), the
/// first after `first`, the others after `rest`.
fn wrap(out: &mut String, text: &str, first: &str, rest: &str) {
    out.push_str(first);
    let rest_width = width_of(rest);
    let start = width_of(first);
    let mut width = start;
    let mut from = 0;
    let bytes = text.as_bytes();
    // One pass: a word ends at a space (or the end); its width is its characters (bytes that
    // do not continue a UTF-8 sequence).
    let mut word_width = 0;
    for i in 0..=bytes.len() {
        match bytes.get(i) {
            Some(b' ') | None => {
                if i > from {
                    if width > start && width + 1 + word_width > TEXT_WIDTH {
                        out.push('\n');
                        out.push_str(rest);
                        width = rest_width;
                    } else if width > start {
                        out.push(' ');
                        width += 1;
                    }
                    out.push_str(&text[from..i]);
                    width += word_width;
                }
                from = i + 1;
                word_width = 0;
            }
            Some(&b) => {
                if b & 0xC0 != 0x80 {
                    word_width += 1;
                }
            }
        }
    }
}

/// Characters in `s` (prefixes: spaces, `> `, bullets).
fn width_of(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// What a link shows after its text: an `http(s)` address whole, a `mailto:` or `tel:` one
/// without its scheme and parameters; nothing for other links (`#top`, `javascript:`).
fn shown_address(href: &str) -> Option<String> {
    let url = href.trim();
    if url.starts_with("https://") || url.starts_with("http://") {
        return (!url.chars().any(char::is_whitespace)).then(|| url.to_owned());
    }
    url.strip_prefix("mailto:")
        .or_else(|| url.strip_prefix("tel:"))
        .map(|a| a.split('?').next().unwrap_or_default().trim())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        html_to_text(html).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn text_alternatives_wrap_and_survive_odd_html() {
        let long = "word ".repeat(40);
        let wrapped = text(&format!("<p>{long}</p>"));
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= TEXT_WIDTH),
            "{wrapped}"
        );
        assert_eq!(text(""), "");
        assert_eq!(
            text("<p>unclosed <b>tags &copy; &#8364;<div>"),
            "unclosed tags © €"
        );
        // Nesting costs nothing: no tree is built.
        let deep = "<div>".repeat(20_000) + "deep";
        assert_eq!(text(&deep), "deep");
        let deep = "<b>a".repeat(300) + &"</b>".repeat(300) + "<p>after</p>";
        let t = text(&deep);
        assert_eq!(t.replace('\n', "").matches('a').count(), 301, "{t}");
        assert!(t.ends_with("a\n\nafter"), "{t}");
        for odd in [
            "<",
            "<<>>",
            "a < b > c",
            "<p",
            "<a href=",
            "<a href=\"x",
            "<!--",
            "<!-- x",
            "<script>alert(1)",
            "</p></ul></li></blockquote>",
            "<li>x",
            "<pre>",
            "<a href=https://x.example>x</a></a></a>",
        ] {
            let _ = text(odd);
        }
        assert_eq!(text("a < b > c"), "a < b > c");
        assert_eq!(text("x<script>alert('</p>')</script>y"), "xy");
    }

    #[test]
    fn blocks_lists_and_quotes() {
        assert_eq!(text("<p>a</p><ul><li>b</li></ul><p>c</p>"), "a\n- b\n\nc");
        assert_eq!(text("<h1>A</h1>text<h2>B</h2>"), "A\n\ntext\n\nB");
        assert_eq!(text("a<div>b</div>c"), "a\nb\nc");
        assert_eq!(
            text("<ul><li>a<ul><li>nested</li></ul></li><li>b</li></ul>"),
            "- a\n  - nested\n- b"
        );
        assert_eq!(
            text("<blockquote><p>quoted</p><p>two</p></blockquote><p>after</p>"),
            "> quoted\n>\n> two\n\nafter"
        );
        assert_eq!(
            text(
                "<ol><li>one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen</li></ol>"
            ),
            "1. one two three four five six seven eight nine ten eleven twelve thirteen\n   fourteen fifteen sixteen"
        );
        assert_eq!(
            text(
                "<table><tr><td><strong>Date</strong></td><td>Sat</td></tr><tr><td>Venue</td><td>Hall</td></tr></table><p>x</p>"
            ),
            "Date\nSat\nVenue\nHall\n\nx"
        );
        assert_eq!(
            text("<pre>  keep\n   this</pre><p>x</p>"),
            "  keep\n   this\n\nx"
        );
        assert_eq!(text("<dl><dt>term</dt><dd>def</dd></dl>"), "term\n  def");
        assert_eq!(text("<p>x<br><br>y</p>"), "x\n\ny");
        assert_eq!(text("<p>a&nbsp;b\u{202f}c</p>"), "a\u{a0}b\u{202f}c");
    }

    #[test]
    fn links_show_their_address_once() {
        assert_eq!(
            text("<p><a href=\"https://x.example/a?b=1&amp;c=2\">Open</a></p>"),
            "Open (https://x.example/a?b=1&c=2)"
        );
        assert_eq!(
            text(
                "<a href=\"https://x.example\">https://x.example</a>, <a href=\"mailto:ada@x.example?subject=Hi\">ada@x.example</a>"
            ),
            "https://x.example, ada@x.example"
        );
        assert_eq!(
            text(
                "<a href=\"tel:+260971234567\">Call us</a> <a href=\"#top\">top</a> <a href=\"javascript:x()\">js</a>"
            ),
            "Call us (+260971234567) top js"
        );
        assert_eq!(
            text("<a href=\"https://x.example\"></a>"),
            "https://x.example"
        );
        assert_eq!(
            text("<p>a <img src=\"x\" alt=\"A &amp; B\"> b <img src=\"y\"></p>"),
            "a A & B b"
        );
    }
}
