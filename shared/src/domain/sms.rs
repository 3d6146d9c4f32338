//! SMS encoding and segments: which alphabet a text needs (GSM 03.38 7-bit or UCS-2) and how many
//! billed message parts it becomes, split the way handsets and providers split it.
//!
//! A text fits one message up to 160 GSM-7 septets or 70 UCS-2 code units. Longer texts are sent
//! as concatenated parts whose user-data header leaves 153 septets or 67 units each, and a part
//! never ends in the middle of a GSM-7 escape pair (`€`, `{`, ...) or a UTF-16 surrogate pair
//! (emoji and other characters outside the Basic Multilingual Plane); such a character moves
//! whole to the next part, so a part may carry less than its capacity.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Septets in a single GSM-7 message.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM-7 message (7 go to the user-data header).
pub const GSM7_PART: usize = 153;
/// UTF-16 code units in a single UCS-2 message.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a concatenated UCS-2 message.
pub const UCS2_PART: usize = 67;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// The GSM 03.38 default alphabet with its extension table.
    Gsm7,
    /// UTF-16 (UCS-2 on the wire, with surrogate pairs for characters outside the BMP).
    Ucs2,
}

impl SmsEncoding {
    /// Septets (GSM-7) or code units (UCS-2) that fit a message sent alone.
    pub fn single_capacity(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => GSM7_SINGLE,
            SmsEncoding::Ucs2 => UCS2_SINGLE,
        }
    }

    /// Septets or code units that fit one part of a concatenated message.
    pub fn part_capacity(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => GSM7_PART,
            SmsEncoding::Ucs2 => UCS2_PART,
        }
    }

    /// What `c` costs in this encoding, or `None` when the encoding cannot carry it.
    pub fn width(self, c: char) -> Option<usize> {
        match self {
            SmsEncoding::Gsm7 => gsm7_septets(c),
            SmsEncoding::Ucs2 => Some(c.len_utf16()),
        }
    }
}

/// How a text goes out as SMS: its encoding, its length in that encoding, and the parts billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SmsSegments {
    pub encoding: SmsEncoding,
    /// Length in septets (GSM-7, escape pairs counting 2) or UTF-16 code units (UCS-2).
    pub septets_or_units: usize,
    /// Parts the text is sent (and billed) as; at least 1.
    pub segments: u32,
    /// Unicode scalar values in the text, as a person would count characters.
    pub characters: usize,
}

/// Septets `c` takes in the GSM 03.38 default alphabet: 1 for the basic table, 2 for the
/// extension table (escape + character), `None` when it is not in the alphabet at all.
pub fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // Basic table, in table order (0x00-0x7F, 0x1B being the escape).
        '@'
        | '£'
        | '$'
        | '¥'
        | 'è'
        | 'é'
        | 'ù'
        | 'ì'
        | 'ò'
        | 'Ç'
        | '\n'
        | 'Ø'
        | 'ø'
        | '\r'
        | 'Å'
        | 'å'
        | 'Δ'
        | '_'
        | 'Φ'
        | 'Γ'
        | 'Λ'
        | 'Ω'
        | 'Π'
        | 'Ψ'
        | 'Σ'
        | 'Θ'
        | 'Ξ'
        | 'Æ'
        | 'æ'
        | 'ß'
        | 'É'
        | ' '
        | '!'
        | '"'
        | '#'
        | '¤'
        | '%'
        | '&'
        | '\''
        | '('
        | ')'
        | '*'
        | '+'
        | ','
        | '-'
        | '.'
        | '/'
        | '0'..='9'
        | ':'
        | ';'
        | '<'
        | '='
        | '>'
        | '?'
        | '¡'
        | 'A'..='Z'
        | 'Ä'
        | 'Ö'
        | 'Ñ'
        | 'Ü'
        | '§'
        | '¿'
        | 'a'..='z'
        | 'ä'
        | 'ö'
        | 'ñ'
        | 'ü'
        | 'à' => Some(1),
        // Extension table: form feed, ^ { } \ [ ~ ] | €.
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// The encoding `text` needs: GSM-7 when every character is in the GSM 03.38 alphabet (or its
/// extension table), UCS-2 otherwise.
pub fn encoding(text: &str) -> SmsEncoding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        SmsEncoding::Gsm7
    } else {
        SmsEncoding::Ucs2
    }
}

/// Counts the encoding, length and parts of `text`.
///
/// An empty text counts as one GSM-7 part of zero septets: providers bill an empty SMS as one
/// message. Herald's send path refuses empty bodies before it gets here.
pub fn segments(text: &str) -> SmsSegments {
    let encoding = encoding(text);
    let mut characters = 0;
    let mut length = 0;
    let mut parts: u32 = 1;
    let mut in_part = 0;
    for c in text.chars() {
        let w = width(encoding, c);
        characters += 1;
        length += w;
        // Counted as if concatenated from the start; whether that applies is settled below.
        if in_part + w > encoding.part_capacity() {
            parts = parts.saturating_add(1);
            in_part = 0;
        }
        in_part += w;
    }
    let segments = if length <= encoding.single_capacity() {
        1
    } else {
        parts
    };
    SmsSegments {
        encoding,
        septets_or_units: length,
        segments,
        characters,
    }
}

/// Splits `text` into the parts it is sent as, as byte ranges of `text` (one empty range for an
/// empty text). Joined, the parts are the text; none exceeds its encoding's capacity.
pub fn split(text: &str) -> Vec<Range<usize>> {
    let encoding = encoding(text);
    let total: usize = text.chars().map(|c| width(encoding, c)).sum();
    if total <= encoding.single_capacity() {
        return std::iter::once(0..text.len()).collect();
    }
    let mut parts = Vec::with_capacity(total / encoding.part_capacity() + 1);
    let mut start = 0;
    let mut in_part = 0;
    for (at, c) in text.char_indices() {
        let w = width(encoding, c);
        if in_part + w > encoding.part_capacity() {
            parts.push(start..at);
            start = at;
            in_part = 0;
        }
        in_part += w;
    }
    parts.push(start..text.len());
    parts
}

/// Width of a character already known to be encodable (GSM-7 was chosen only if all are).
fn width(encoding: SmsEncoding, c: char) -> usize {
    encoding.width(c).unwrap_or(c.len_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(text: &str) -> (SmsEncoding, usize, u32) {
        let s = segments(text);
        (s.encoding, s.septets_or_units, s.segments)
    }

    #[test]
    fn gsm7_lengths_at_the_limits() {
        use SmsEncoding::Gsm7;
        assert_eq!(seg(&"a".repeat(160)), (Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (Gsm7, 161, 2));
        assert_eq!(seg(&"a".repeat(306)), (Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (Gsm7, 307, 3));
        assert_eq!(seg(&"a".repeat(459)), (Gsm7, 459, 3));
        assert_eq!(seg(&"a".repeat(460)), (Gsm7, 460, 4));
    }

    #[test]
    fn extension_characters_take_two_septets() {
        let s = segments("Price: 10€ [approx]");
        assert_eq!(s.encoding, SmsEncoding::Gsm7);
        assert_eq!(s.characters, 19);
        assert_eq!(s.septets_or_units, 22);
        // 79 euro signs are 158 septets: one message; 81 are 162: two.
        assert_eq!(seg(&"€".repeat(80)), (SmsEncoding::Gsm7, 160, 1));
        assert_eq!(seg(&"€".repeat(81)), (SmsEncoding::Gsm7, 162, 2));
    }

    #[test]
    fn an_escape_pair_is_never_split() {
        // 152 septets, then '€' would need septets 153 and 154: it moves whole to part 2.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let parts = split(&text);
        assert_eq!(parts.len(), 2);
        assert_eq!(&text[parts[0].clone()], "a".repeat(152));
        assert!(text[parts[1].clone()].starts_with('€'));
        // Plain division would say 164 septets fit 2 parts; this one fits just as well...
        assert_eq!(segments(&text).segments, 2);
        // ...but 152 + '€' + 152 = 306 septets needs 3 parts, not the 2 division gives.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(152));
        assert_eq!(seg(&text), (SmsEncoding::Gsm7, 306, 3));
        // With the pair landing inside the part, 306 septets stay 2 parts.
        let text = format!("{}€{}", "a".repeat(151), "b".repeat(153));
        assert_eq!(seg(&text), (SmsEncoding::Gsm7, 306, 2));
    }

    #[test]
    fn any_other_character_means_ucs2() {
        use SmsEncoding::Ucs2;
        assert_eq!(seg(&"ж".repeat(70)), (Ucs2, 70, 1));
        assert_eq!(seg(&"ж".repeat(71)), (Ucs2, 71, 2));
        assert_eq!(seg(&"ж".repeat(134)), (Ucs2, 134, 2));
        assert_eq!(seg(&"ж".repeat(135)), (Ucs2, 135, 3));
        // One character outside the alphabet turns the whole text into UCS-2.
        let s = segments(&format!("{}ç", "a".repeat(69)));
        assert_eq!((s.encoding, s.segments), (Ucs2, 1));
        let s = segments(&format!("{}ç", "a".repeat(70)));
        assert_eq!((s.encoding, s.segments), (Ucs2, 2));
        // Curly quotes are a classic accidental switch to UCS-2.
        assert_eq!(encoding("it’s"), Ucs2);
        assert_eq!(encoding("it's"), SmsEncoding::Gsm7);
    }

    #[test]
    fn emoji_take_two_units_and_are_never_split() {
        let s = segments("See you there 🎉");
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        assert_eq!((s.characters, s.septets_or_units, s.segments), (15, 16, 1));
        assert_eq!(seg(&"🎉".repeat(35)), (SmsEncoding::Ucs2, 70, 1));
        assert_eq!(seg(&"🎉".repeat(36)), (SmsEncoding::Ucs2, 72, 2));
        // 66 units, then an emoji would need units 67 and 68: it starts part 2.
        let text = format!("{}🎉{}", "ж".repeat(66), "ж".repeat(10));
        let parts = split(&text);
        assert_eq!(parts.len(), 2);
        assert_eq!(&text[parts[0].clone()], "ж".repeat(66));
        assert!(text[parts[1].clone()].starts_with('🎉'));
    }

    #[test]
    fn empty_text_is_one_part() {
        assert_eq!(
            segments(""),
            SmsSegments {
                encoding: SmsEncoding::Gsm7,
                septets_or_units: 0,
                segments: 1,
                characters: 0
            }
        );
        let parts = split("");
        assert_eq!(
            (parts.len(), parts.first().map(|p| p.is_empty())),
            (1, Some(true))
        );
    }

    #[test]
    fn serialises_in_snake_case() {
        assert_eq!(
            serde_json::to_value(segments("hi")).ok(),
            Some(serde_json::json!({
                "encoding": "gsm7", "septets_or_units": 2, "segments": 1, "characters": 2
            }))
        );
    }

    /// Characters from every class: basic GSM, extension GSM, BMP non-GSM, outside the BMP.
    fn sms_text() -> impl Strategy<Value = String> {
        let chars = prop::sample::select(vec!['a', 'Z', ' ', '@', 'é', '€', '{', 'ж', 'ç', '🎉']);
        let gsm_only = prop::sample::select(vec!['a', ' ', '€', '^', '\n']);
        prop_oneof![
            prop::collection::vec(chars, 0..420),
            prop::collection::vec(gsm_only, 0..480),
        ]
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn parts_never_exceed_capacity_and_rejoin(text in sms_text()) {
            let s = segments(&text);
            let parts = split(&text);
            prop_assert_eq!(parts.len(), s.segments as usize);
            let capacity = if parts.len() == 1 {
                s.encoding.single_capacity()
            } else {
                s.encoding.part_capacity()
            };
            let mut rejoined = String::new();
            for part in &parts {
                let part = &text[part.clone()];
                let used: usize = part.chars().map(|c| width(s.encoding, c)).sum();
                prop_assert!(used <= capacity, "{used} > {capacity}");
                rejoined.push_str(part);
            }
            prop_assert_eq!(rejoined, text);
        }

        #[test]
        fn segments_grow_with_the_text(text in sms_text(), cut in 0usize..480) {
            // Every prefix of a text needs no more parts than the text, and each character added
            // never takes away a part, even when it switches the text to UCS-2 (a GSM-7 part
            // holds at least 76 characters, a UCS-2 part at most 67).
            let mut boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            boundaries.push(text.len());
            let cut = boundaries[cut.min(boundaries.len() - 1)];
            let prefix = &text[..cut];
            let (a, b) = (segments(prefix), segments(&text));
            prop_assert!(a.segments <= b.segments);
            if a.encoding == b.encoding {
                prop_assert!(a.septets_or_units <= b.septets_or_units);
            }
            prop_assert!(a.characters <= b.characters);
            let mut grown = String::new();
            let mut last = segments("");
            for c in text.chars() {
                grown.push(c);
                let now = segments(&grown);
                prop_assert!(now.segments >= last.segments, "{grown:?}");
                last = now;
            }
        }
    }
}
