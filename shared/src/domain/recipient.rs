//! Recipients, parsed at the edge: an E.164 phone number (checked against the numbering plan
//! of its country) for SMS and WhatsApp, an email address for email. A bad recipient is refused
//! when the request arrives, never discovered as a failed message later.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::catalogue::Channel;
use super::validation::EmailAddress;

/// A valid phone number in E.164 form (`+` and digits).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Longest phone number accepted as written, separators included.
    pub const MAX_INPUT_CHARS: usize = 32;
    /// Most digits of a number, country code included (E.164).
    pub const MAX_DIGITS: usize = 15;

    /// Accepts international numbers (`+260 97 1234567`, `+1 (415) 555-2671`) and normalises
    /// them. Only a leading `+`, digits and the separators people write (single spaces, `-`,
    /// `.`, one pair of parentheses) are taken, and the number must be valid (not merely
    /// possible) in its country's numbering plan: the phonenumber crate alone skips trailing
    /// letters and NUL bytes (`+26097123456a`) as libphonenumber does.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim_matches(' ');
        if s.chars().count() > Self::MAX_INPUT_CHARS {
            return Err(format!(
                "phone numbers are at most {} characters",
                Self::MAX_INPUT_CHARS
            ));
        }
        let Some(rest) = s.strip_prefix('+') else {
            return Err(
                "phone numbers must be international, starting with + and the country code".into(),
            );
        };
        let digits = written_digits(rest)?;
        let number = phonenumber::parse(None, format!("+{digits}"))
            .map_err(|_| "not a phone number".to_owned())?;
        if !phonenumber::is_valid(&number) {
            return Err("not a valid number in its country's numbering plan".into());
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The digits of a number as written after its `+`: digits, separated by at most one of
/// ` `, `-`, `.` at a time, with at most one pair of parentheses around digits only.
fn written_digits(written: &str) -> Result<String, String> {
    const SHAPE: &str = "phone numbers are digits after the +, with single spaces, '-' or '.' \
                         between them and at most one pair of parentheses";
    let mut digits = String::with_capacity(PhoneNumber::MAX_DIGITS);
    let mut parens = 0;
    let mut open = false;
    // Whether the previous character was a separator (or the `+`): two in a row are refused.
    let mut after_separator = true;
    for c in written.chars() {
        match c {
            '0'..='9' => {
                digits.push(c);
                after_separator = false;
            }
            ' ' | '-' | '.' if !after_separator => after_separator = true,
            '(' if !open && parens == 0 => {
                open = true;
                parens += 1;
                after_separator = true;
            }
            // A closing parenthesis may be followed by one separator: `(415) 555`.
            ')' if open && !after_separator => {
                open = false;
                after_separator = false;
            }
            _ => return Err(SHAPE.into()),
        }
        if digits.len() > PhoneNumber::MAX_DIGITS {
            return Err(format!(
                "phone numbers have at most {} digits",
                PhoneNumber::MAX_DIGITS
            ));
        }
    }
    if open || after_separator || digits.is_empty() {
        return Err(SHAPE.into());
    }
    Ok(digits)
}

impl TryFrom<String> for PhoneNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

/// What stands where an address was once its person had it erased: `[erased]` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ErasedAddress;

impl ErasedAddress {
    pub const MARKER: &'static str = "[erased]";
}

impl TryFrom<String> for ErasedAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s == Self::MARKER {
            Ok(Self)
        } else {
            Err("not the erased marker".into())
        }
    }
}

impl From<ErasedAddress> for String {
    fn from(_: ErasedAddress) -> String {
        ErasedAddress::MARKER.to_owned()
    }
}

/// Where a message goes (or went: `Erased` once its person had the address erased; never
/// parsed from a request, so nothing is ever sent to it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Recipient {
    Phone(PhoneNumber),
    Email(EmailAddress),
    Erased(ErasedAddress),
}

impl Recipient {
    /// Parses `raw` as the kind of address `channel` needs. In-app recipients are user ids and
    /// are not handled here.
    pub fn parse(channel: Channel, raw: &str) -> Result<Self, String> {
        match channel {
            Channel::Email => EmailAddress::parse(raw).map(Recipient::Email),
            Channel::Sms | Channel::Whatsapp => PhoneNumber::parse(raw).map(Recipient::Phone),
            Channel::InApp => Err("in-app recipients are user ids, not addresses".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Recipient::Phone(p) => p.as_str(),
            Recipient::Email(e) => e.as_str(),
            Recipient::Erased(_) => ErasedAddress::MARKER,
        }
    }

    /// The address as lists show it to operators, never whole: an email's first character and
    /// its domain (`a***@acme.example`), a phone number's country prefix and last two digits
    /// (`+260*******67`), `[erased]` once erased.
    pub fn masked(&self) -> String {
        match self {
            Recipient::Email(e) => {
                let (local, domain) = e.as_str().rsplit_once('@').unwrap_or(("", e.as_str()));
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            Recipient::Phone(p) => {
                let digits = &p.as_str()[1..];
                let shown_head = digits.len().saturating_sub(2).min(3);
                let hidden = digits.len().saturating_sub(shown_head + 2);
                format!(
                    "+{}{}{}",
                    &digits[..shown_head],
                    "*".repeat(hidden),
                    &digits[shown_head + hidden..]
                )
            }
            Recipient::Erased(_) => ErasedAddress::MARKER.to_owned(),
        }
    }

    /// The recipient's stable key within a tenant, under `keyring`: what records, logs, metrics
    /// and routing use instead of the address itself.
    pub fn key(&self, keyring: &RecipientKeyring, tenant: &str) -> String {
        keyring.key(tenant, self.as_str())
    }
}

/// The secret that turns addresses into recipient keys: HMAC-SHA256 over the tenant and the
/// address (lower-cased), cut to 128 bits. A plain digest of a phone number can be reversed by
/// trying every number of the country's plan; a keyed one cannot without the key, so the keys
/// Herald keeps after an erasure (opt-outs, the consent ledger's partition, audit targets) do
/// not identify the person to anyone holding only the data. The key must never change: every
/// ledger, block and message index is filed under keys made with it.
pub struct RecipientKeyring(secrecy::SecretSlice<u8>);

impl RecipientKeyring {
    /// Shortest key accepted: HMAC-SHA256 wants at least its output size.
    pub const MIN_BYTES: usize = 32;

    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        if key.len() < Self::MIN_BYTES {
            return Err(format!(
                "the recipient key is shorter than {} bytes",
                Self::MIN_BYTES
            ));
        }
        Ok(Self(key.into()))
    }

    fn key(&self, tenant: &str, address: &str) -> String {
        use hmac::Mac as _;
        use secrecy::ExposeSecret as _;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(tenant.as_bytes());
        mac.update(b"\n");
        mac.update(address.to_lowercase().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

impl fmt::Debug for RecipientKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecipientKeyring([redacted])")
    }
}

impl fmt::Display for Recipient {
    /// Never the address: recipients are personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Phone(_) => f.write_str("phone:[redacted]"),
            Recipient::Email(_) => f.write_str("email:[redacted]"),
            Recipient::Erased(_) => f.write_str(ErasedAddress::MARKER),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_addresses_never_show_the_whole_address() {
        let phone = Recipient::parse(Channel::Sms, "+260971234567").expect("phone");
        assert_eq!(phone.masked(), "+260*******67");
        let email = Recipient::parse(Channel::Email, "ada.lovelace@acme.example").expect("email");
        assert_eq!(email.masked(), "a***@acme.example");
        assert_eq!(Recipient::Erased(ErasedAddress).masked(), "[erased]");
    }

    #[test]
    fn phone_numbers_are_normalised_and_checked() {
        assert_eq!(
            PhoneNumber::parse("+260 97 1234567").map(|p| p.0),
            Ok("+260971234567".into())
        );
        assert_eq!(
            PhoneNumber::parse("+1 (415) 555-2671").map(|p| p.0),
            Ok("+14155552671".into())
        );
        assert_eq!(
            PhoneNumber::parse("+254 711 123456").map(|p| p.0),
            Ok("+254711123456".into())
        );
        for bad in [
            "0971234567",
            "+260",
            "+1 555",
            "hello",
            "+999 123456789",
            "",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// The numbers the issue found accepted and sent, and their kin.
    const HOSTILE: [&str; 12] = [
        "+26097123456a",
        "+260971234567\0",
        "                                        ",
        "+1(((((((((((((((((((((((((4155552671",
        "+1 (415) 555-2671 ext. 12",
        "+1 (415) 555-2671;ext=12",
        "+1\u{200b}4155552671",
        "+14155552671\n",
        "+1--4155552671",
        "+1 () 4155552671",
        "+1 (415 555-2671",
        "++14155552671",
    ];

    #[test]
    fn only_digits_and_common_separators_are_taken() {
        for bad in HOSTILE {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?}");
            assert!(Recipient::parse(Channel::Sms, bad).is_err(), "{bad:?}");
            assert!(Recipient::parse(Channel::Whatsapp, bad).is_err(), "{bad:?}");
        }
        let long = format!("+1{}", "4".repeat(150_000));
        assert!(PhoneNumber::parse(&long).is_err());
        for (written, e164) in [
            ("+1 (415) 555-2671", "+14155552671"),
            ("+1.415.555.2671", "+14155552671"),
            ("+1-415-555-2671", "+14155552671"),
            (" +260 97 1234567 ", "+260971234567"),
            ("+44 (0)20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(
                PhoneNumber::parse(written).map(|p| p.0),
                Ok(e164.to_owned()),
                "{written}"
            );
        }
    }

    #[test]
    fn possible_but_invalid_numbers_are_refused() {
        // Possible by length in the plan (+1 and ten digits), but no such area code.
        assert!(phonenumber::is_viable("+1 099 555 2671"));
        assert!(PhoneNumber::parse("+1 099 555 2671").is_err());
        assert!(PhoneNumber::parse("+260 11 1234567").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..Default::default()
        })]

        #[test]
        fn anything_accepted_is_e164(s in "\\PC{0,40}|[+0-9 ().a-z\\-]{0,40}") {
            if let Ok(p) = PhoneNumber::parse(&s) {
                let digits = p.as_str().strip_prefix('+').unwrap_or_default();
                proptest::prop_assert!(!digits.is_empty() && digits.len() <= 15);
                proptest::prop_assert!(digits.chars().all(|c| c.is_ascii_digit()));
            }
        }

        #[test]
        fn a_stray_character_anywhere_is_refused(
            at in 0usize..17,
            stray in "[^0-9 ().+\\-]",
        ) {
            let mut s = "+14155552671".to_owned();
            let at = at.min(s.len());
            s.insert_str(at, &stray);
            proptest::prop_assert!(PhoneNumber::parse(&s).is_err(), "{:?}", s);
        }

        #[test]
        fn single_separators_between_digits_are_read_through(
            seps in proptest::collection::vec(proptest::sample::select(vec!["", " ", "-", "."]), 11),
        ) {
            let digits = "14155552671";
            let written: String = digits
                .chars()
                .zip(seps.iter())
                .map(|(d, sep)| format!("{d}{sep}"))
                .collect();
            let written = format!("+{}", written.trim_end_matches([' ', '-', '.']));
            proptest::prop_assert_eq!(
                PhoneNumber::parse(&written).map(|p| p.0),
                Ok("+14155552671".to_owned())
            );
        }
    }

    #[test]
    fn recipients_match_their_channel() {
        assert!(matches!(
            Recipient::parse(Channel::Sms, "+260971234567"),
            Ok(Recipient::Phone(_))
        ));
        assert!(matches!(
            Recipient::parse(Channel::Email, "ada@acme.example"),
            Ok(Recipient::Email(_))
        ));
        assert!(Recipient::parse(Channel::Email, "+260971234567").is_err());
        assert!(Recipient::parse(Channel::Whatsapp, "ada@acme.example").is_err());
    }

    #[test]
    fn recipients_never_print_their_address() {
        let r = Recipient::parse(Channel::Sms, "+260971234567").expect("valid");
        assert!(!r.to_string().contains("97123"));
        let keyring = RecipientKeyring::new(vec![7; 32]).expect("key");
        let key = r.key(&keyring, "acme");
        assert_eq!(
            key,
            Recipient::parse(Channel::Sms, "+260 97 1234567")
                .expect("valid")
                .key(&keyring, "acme")
        );
        assert_ne!(key, r.key(&keyring, "globex"));
        // Keyed: the same number under another deployment's key is another key, and the key
        // is not the plain digest anyone could compute from the number.
        let other = RecipientKeyring::new(vec![8; 32]).expect("key");
        assert_ne!(key, r.key(&other, "acme"));
        use sha2::Digest as _;
        let plain = hex::encode(&Sha256::digest("acme\n+260971234567")[..16]);
        assert_ne!(key, plain);
        assert_eq!(key.len(), 32);
        assert!(RecipientKeyring::new(vec![1; 31]).is_err());
        assert!(!format!("{keyring:?}").contains('7'));
    }

    #[test]
    fn the_erased_marker_round_trips_and_is_never_parsed_from_requests() {
        let erased = Recipient::Erased(ErasedAddress);
        let json = serde_json::to_string(&erased).expect("json");
        assert_eq!(json, "\"[erased]\"");
        assert_eq!(serde_json::from_str::<Recipient>(&json).ok(), Some(erased));
        assert!(Recipient::parse(Channel::Sms, "[erased]").is_err());
        assert!(Recipient::parse(Channel::Email, "[erased]").is_err());
    }
}
