//! The plain-text alternative of an HTML email body, written word by word in one pass over the
//! rendered HTML: no document tree, no layout engine. Each message's body differs, so this runs
//! once per message; it costs a fraction of what the full HTML-to-text renderer it replaces did
//! (the README's Measured table; `cargo bench -p herald-shared --bench rendering`).
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

/// An open link: the address it shows after its text.
#[derive(Debug)]
struct Link {
    shown: Option<String>,
}

/// The text being written, word by word, straight into its lines: what is open (lists, quotes,
/// links, preformatted text), where the current line stands, and the break owed before the next
/// block's first word.
#[derive(Debug, Default)]
struct Text {
    out: String,
    /// Characters on the current line (prefix included).
    width: usize,
    /// Whether the current block has written a word yet.
    in_block: bool,
    /// Whitespace seen since the last word.
    space: bool,
    /// Line breaks (`<br>`) owed inside the current block.
    breaks: usize,
    /// The break owed before the next block.
    owed: Option<Break>,
    /// Text right after a block that separates itself by a blank line starts its own.
    after_block: bool,
    lists: Vec<List>,
    /// The bullet of the list item whose first line is not written yet, and the indent of each
    /// open item.
    bullet: Option<String>,
    indents: Vec<usize>,
    quotes: usize,
    pre: usize,
    /// Preformatted text, gathered until its block ends.
    pre_text: String,
    links: Vec<Link>,
    /// The words of the open links, to compare with their addresses.
    link_text: String,
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
            self.pre_text.push_str(&decoded);
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

    /// Decoded text (an attribute's), whitespace collapsed.
    fn text(&mut self, text: &str) {
        for word in text.split(|c: char| c.is_ascii_whitespace()) {
            if !word.is_empty() {
                self.word(word);
            }
            self.space = true;
        }
    }

    /// Writes one word: starting the block (its break and first-line prefix) or a new line when
    /// it would not fit, else after a space if whitespace came before it.
    fn word(&mut self, word: &str) {
        self.note_content();
        let len = width_of(word);
        if !self.in_block {
            self.start_block();
        } else if self.breaks > 0 {
            for _ in 1..self.breaks {
                let blank = self.prefix(false);
                self.out.push('\n');
                self.out.push_str(blank.trim_end());
            }
            self.new_line();
            self.breaks = 0;
        } else if self.space {
            if self.width + 1 + len > TEXT_WIDTH && self.width > self.prefix_width() {
                self.new_line();
            } else {
                self.out.push(' ');
                self.width += 1;
            }
        }
        if !self.links.is_empty() {
            if self.space && !self.link_text.is_empty() {
                self.link_text.push(' ');
            }
            self.link_text.push_str(word);
        }
        self.space = false;
        self.out.push_str(word);
        self.width += len;
    }

    /// The first word of a block: the break owed since the last one, then the first line's
    /// prefix (a list item's bullet).
    fn start_block(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
            if self.owed == Some(Break::Blank) {
                let quote = self.quote_prefix();
                self.out.push_str(quote.trim_end());
                self.out.push('\n');
            }
        }
        self.owed = None;
        let prefix = self.prefix(true);
        self.width = width_of(&prefix);
        self.out.push_str(&prefix);
        self.in_block = true;
        self.breaks = 0;
    }

    fn new_line(&mut self) {
        let prefix = self.prefix(false);
        self.out.push('\n');
        self.out.push_str(&prefix);
        self.width = width_of(&prefix);
    }

    /// The prefix of a line: quotes, then the indent of the open list items (a bullet in place
    /// of the innermost one's on its first line).
    fn prefix(&mut self, first: bool) -> String {
        let indent: usize = self.indents.iter().sum();
        let bullet = if first { self.bullet.take() } else { None };
        if indent == 0 && self.quotes == 0 && bullet.is_none() {
            return String::new();
        }
        let mut prefix = self.quote_prefix();
        match bullet {
            Some(b) => {
                prefix.push_str(&" ".repeat(indent.saturating_sub(width_of(&b))));
                prefix.push_str(&b);
            }
            None => prefix.push_str(&" ".repeat(indent)),
        }
        prefix
    }

    fn prefix_width(&self) -> usize {
        self.quotes * 2 + self.indents.iter().sum::<usize>()
    }

    /// Visible content is coming: text after a blank-line block starts a block of its own.
    fn note_content(&mut self) {
        if self.after_block {
            self.after_block = false;
            self.end_block();
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
                if self.in_block {
                    self.breaks += 1;
                }
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
                if self.links.is_empty() {
                    self.link_text.clear();
                }
                let shown = tag.href.as_deref().and_then(shown_address);
                self.links.push(Link { shown });
                return;
            }
            ("a", true) => {
                if let Some(link) = self.links.pop()
                    && let Some(address) = link.shown
                {
                    if self.link_text.is_empty() {
                        self.text(&address);
                    } else if self.link_text != address {
                        self.space = true;
                        self.word(&format!("({address})"));
                    }
                }
                return;
            }
            _ => {}
        }
        let Some(separation) = block(name) else {
            return;
        };
        self.end_block();
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
                self.indents.push(width_of(&bullet));
                self.bullet = Some(bullet);
            }
            "dd" => self.indents.push(2),
            "blockquote" => self.quotes += 1,
            "pre" => self.pre += 1,
            _ => {}
        }
    }

    /// Ends the current block: its preformatted text, if it was one, is written as it is.
    fn end_block(&mut self) {
        if !self.pre_text.is_empty() {
            let text = std::mem::take(&mut self.pre_text);
            let text = text.trim_matches('\n');
            if !text.is_empty() {
                self.start_block();
                let rest = self.prefix(false);
                for (i, line) in text.split('\n').enumerate() {
                    if i > 0 {
                        self.out.push('\n');
                        self.out.push_str(&rest);
                    }
                    self.out.push_str(line);
                }
            }
        }
        self.in_block = false;
        self.breaks = 0;
        self.space = false;
    }

    fn quote_prefix(&self) -> String {
        "> ".repeat(self.quotes)
    }

    fn finish(mut self) -> String {
        self.after_block = false;
        self.end_block();
        if self.out.contains(" \n") || self.out.ends_with(' ') {
            let lines: Vec<&str> = self.out.lines().map(str::trim_end).collect();
            return lines.join("\n").trim_matches('\n').to_owned();
        }
        self.out
    }
}

/// Characters in `s`.
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
