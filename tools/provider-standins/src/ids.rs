//! Identifiers in each provider's own format, random enough that tests never see a repeat.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use time::OffsetDateTime;

/// Twilio message sid: `SM` and 32 lowercase hex digits.
pub(crate) fn twilio_message_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// Twilio Content sid: `HX` and 32 lowercase hex digits.
pub(crate) fn twilio_content_sid() -> String {
    format!("HX{:032x}", rand::random::<u128>())
}

/// Meta message template id: a 16-digit number, as Graph object ids are.
pub(crate) fn meta_template_id() -> String {
    (1_000_000_000_000_000 + rand::random::<u64>() % 9_000_000_000_000_000).to_string()
}

/// Africa's Talking message id: `ATXid_` and 32 hex digits.
pub(crate) fn africastalking_message_id() -> String {
    format!("ATXid_{:032x}", rand::random::<u128>())
}

/// Brevo message id: an RFC 5322 Message-ID on Brevo's relay domain.
pub(crate) fn brevo_message_id(now: OffsetDateTime) -> String {
    format!(
        "<{:04}{:02}{:02}{:02}{:02}{:02}.{:012}@smtp-relay.mailin.fr>",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        rand::random::<u64>() % 1_000_000_000_000,
    )
}

/// WhatsApp message id: `wamid.` and base64 of an opaque blob naming the recipient, as Meta's do.
pub(crate) fn whatsapp_message_id(wa_id: &str) -> String {
    let mut blob = Vec::with_capacity(wa_id.len() + 24);
    blob.extend_from_slice(&[0x1c, 0x18, u8::try_from(wa_id.len()).unwrap_or(u8::MAX)]);
    blob.extend_from_slice(wa_id.as_bytes());
    blob.extend_from_slice(&[0x15, 0x02, 0x00, 0x11, 0x18, 0x12]);
    blob.extend_from_slice(format!("{:018X}", rand::random::<u128>() >> 56).as_bytes());
    blob.push(0);
    format!("wamid.{}", STANDARD.encode(blob))
}

/// Graph API `fbtrace_id`: a short opaque token.
pub(crate) fn fbtrace_id() -> String {
    let bytes: [u8; 16] = rand::random();
    format!("A{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_providers() {
        let sid = twilio_message_sid();
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM") && sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(sid, twilio_message_sid());

        assert!(africastalking_message_id().starts_with("ATXid_"));

        let content = twilio_content_sid();
        assert_eq!(content.len(), 34);
        assert!(content.starts_with("HX") && content[2..].chars().all(|c| c.is_ascii_hexdigit()));
        let template = meta_template_id();
        assert_eq!(template.len(), 16);
        assert!(template.bytes().all(|b| b.is_ascii_digit()));

        let now = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let id = brevo_message_id(now);
        assert!(id.starts_with("<20260102030405.") && id.ends_with("@smtp-relay.mailin.fr>"));

        let wamid = whatsapp_message_id("254711000000");
        assert!(wamid.starts_with("wamid.HBgM"), "{wamid}");
        assert!(!fbtrace_id().is_empty());
    }
}
