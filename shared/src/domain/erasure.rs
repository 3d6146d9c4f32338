//! Data-subject erasure: what is left of a message and of a consent decision once the person
//! they concern asked to be forgotten. The facts of what was done stay (ids, status, times,
//! channel, category, providers and their message ids, cost: the tenant's and Herald's own
//! records); the address, the rendered content and any provider text quoting the address go.
//! Consent decisions keep proving that consent was given or withdrawn, but their free-text
//! evidence becomes its SHA-256 digest: whoever holds the original document can still show it
//! is the one recorded, and the ledger no longer says anything about the person.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::consent::ConsentRecord;
use super::message::{Attempt, AttemptOutcome, Message, MessageContent, MessageStatus};
use super::recipient::{ErasedAddress, Recipient};

/// What replaces erased text.
pub const ERASED: &str = ErasedAddress::MARKER;
/// The status reason of a message erased before it was dispatched (it never will be).
pub const ERASED_BEFORE_DISPATCH: &str = "recipient_erased";
/// How digested evidence starts.
const EVIDENCE_DIGEST: &str = "sha256:";

/// The record without its personal data — the address and the rendered content — as the
/// audit log's digests cover it: a digest of the whole record, kept past erasure, could be
/// matched by trying every number of a numbering plan against a fixed-text template.
pub fn impersonal(message: &Message) -> Message {
    let mut view = message.clone();
    view.recipient = Recipient::Erased(ErasedAddress);
    view.content = MessageContent {
        subject: message.content.subject.as_ref().map(|_| ERASED.to_owned()),
        html: message.content.html.as_ref().map(|_| ERASED.to_owned()),
        text: ERASED.to_owned(),
        segments: message.content.segments,
        whatsapp_template: None,
    };
    // The links' token names the recipient's key (not the address); gone with the rest.
    view.list_unsubscribe = None;
    view
}

/// The message with its recipient's personal data erased at `at`; `None` when it already was.
/// A message still waiting to be dispatched fails with [`ERASED_BEFORE_DISPATCH`] instead:
/// there is no longer anyone to send it to.
pub fn erase_message(message: &Message, at: OffsetDateTime) -> Option<Message> {
    if message.erased_at.is_some() {
        return None;
    }
    let forms = address_forms(&message.recipient);
    let scrub = |text: &str| redact(text, &forms);
    let mut erased = impersonal(message);
    erased.status_reason = message.status_reason.as_deref().map(scrub);
    erased.attempts = message
        .attempts
        .iter()
        .map(|a| Attempt {
            outcome: match &a.outcome {
                AttemptOutcome::Accepted {
                    provider_message_id,
                } => AttemptOutcome::Accepted {
                    provider_message_id: provider_message_id.clone(),
                },
                AttemptOutcome::Retryable { reason } => AttemptOutcome::Retryable {
                    reason: scrub(reason),
                },
                AttemptOutcome::ProviderRefused { code, reason } => {
                    AttemptOutcome::ProviderRefused {
                        code: scrub(code),
                        reason: scrub(reason),
                    }
                }
                AttemptOutcome::Rejected { code, reason } => AttemptOutcome::Rejected {
                    code: scrub(code),
                    reason: scrub(reason),
                },
                AttemptOutcome::Skipped { reason } => AttemptOutcome::Skipped {
                    reason: scrub(reason),
                },
            },
            ..a.clone()
        })
        .collect();
    if message.status == MessageStatus::Accepted {
        erased.status = MessageStatus::Failed;
        erased.status_reason = Some(ERASED_BEFORE_DISPATCH.to_owned());
    }
    erased.erased_at = Some(at);
    Some(erased)
}

/// The decision with its evidence replaced by `sha256:<hex>` of it; `None` when there is
/// nothing to change (no evidence, or already a digest).
pub fn erase_evidence(record: &ConsentRecord) -> Option<ConsentRecord> {
    let evidence = record.evidence.as_deref()?;
    if is_evidence_digest(evidence) {
        return None;
    }
    let mut erased = record.clone();
    erased.evidence = Some(evidence_digest(evidence));
    Some(erased)
}

/// `sha256:` and the hex SHA-256 of the evidence text.
pub fn evidence_digest(evidence: &str) -> String {
    format!("{EVIDENCE_DIGEST}{}", hex::encode(Sha256::digest(evidence)))
}

fn is_evidence_digest(evidence: &str) -> bool {
    evidence
        .strip_prefix(EVIDENCE_DIGEST)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The ways an address can appear in a provider's text: a phone number with and without its
/// `+`, and its national number; an email address (matched without regard to ASCII case).
fn address_forms(recipient: &Recipient) -> Vec<String> {
    let mut forms = match recipient {
        Recipient::Phone(p) => {
            let e164 = p.as_str().to_owned();
            let mut forms = vec![e164.trim_start_matches('+').to_owned(), e164.clone()];
            if let Ok(number) = phonenumber::parse(None, &e164) {
                forms.push(number.national().value().to_string());
            }
            forms
        }
        Recipient::Email(e) => vec![e.as_str().to_ascii_lowercase()],
        Recipient::Erased(_) => Vec::new(),
    };
    // Longest first, so `+2609...` is replaced whole rather than leaving its `+`.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.retain(|f| f.len() >= 6);
    forms
}

/// `text` with every occurrence of each form replaced by [`ERASED`]. ASCII lowercasing keeps
/// byte offsets, so matches found in the lowered text cut the original at the same places.
fn redact(text: &str, forms: &[String]) -> String {
    let mut out = text.to_owned();
    for form in forms {
        // Each replacement shortens or keeps the rest; at most one pass per occurrence.
        let mut from = 0;
        while let Some(found) = out[from..].to_ascii_lowercase().find(form.as_str()) {
            let start = from + found;
            out.replace_range(start..start + form.len(), ERASED);
            from = start + ERASED.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::{ConsentSource, ConsentStatus, LegalBasis};
    use crate::domain::message::MessageId;
    use crate::domain::provider::ProviderKind;
    use crate::domain::{Category, Channel, EventId, ProviderId, TenantId};

    fn message(channel: Channel, to: &str, status: MessageStatus) -> Message {
        let tenant = TenantId::parse("acme").expect("tenant");
        let recipient = Recipient::parse(channel, to).expect("recipient");
        Message {
            id: MessageId::derive(&tenant, "send", "k", 0),
            tenant: tenant.clone(),
            event: EventId::parse("gala-2026").expect("event"),
            snapshot_version: 1,
            category: Category::Invitation,
            channel,
            recipient_key: recipient.key(
                &crate::domain::recipient::RecipientKeyring::new(vec![1; 32]).expect("key"),
                tenant.as_str(),
            ),
            recipient,
            content: MessageContent {
                subject: Some("Dear Ada".into()),
                html: Some("<p>Dear Ada</p>".into()),
                text: "Dear Ada, see you".into(),
                segments: Some(1),
                whatsapp_template: None,
            },
            status,
            status_reason: Some("21211: The 'To' number +260971234567 is not valid".into()),
            trigger: None,
            list_unsubscribe: None,
            estimated_cost: None,
            cost: None,
            provider: Some(ProviderId::generate()),
            provider_kind: Some(ProviderKind::Twilio),
            provider_message_id: Some("SM123".into()),
            attempts: vec![Attempt {
                provider: ProviderId::generate(),
                kind: ProviderKind::Twilio,
                delivery: 1,
                outcome: AttemptOutcome::Rejected {
                    code: "21211".into(),
                    reason: "Invalid 'To' Phone Number: 260971234567 (national 0971234567)".into(),
                },
                at: OffsetDateTime::UNIX_EPOCH,
                duration_ms: 5,
            }],
            created_at: OffsetDateTime::UNIX_EPOCH,
            sent_at: Some(OffsetDateTime::UNIX_EPOCH),
            request_id: "r".into(),
            expires_at: None,
            not_before: None,
            erased_at: None,
            test: false,
            status_at: None,
        }
    }

    #[test]
    fn erasure_keeps_the_facts_and_drops_the_person() {
        let sent = message(Channel::Sms, "+260971234567", MessageStatus::Sent);
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let erased = erase_message(&sent, at).expect("erased");
        let json = serde_json::to_string(&erased).expect("json");
        for personal in ["260971234567", "971234567", "Dear Ada"] {
            assert!(!json.contains(personal), "{personal} left in {json}");
        }
        assert_eq!(erased.recipient.as_str(), ERASED);
        assert_eq!(erased.content.text, ERASED);
        assert_eq!(erased.content.segments, Some(1));
        assert_eq!(
            (erased.id, erased.status, erased.recipient_key),
            (
                sent.id.clone(),
                MessageStatus::Sent,
                sent.recipient_key.clone()
            )
        );
        assert_eq!(erased.provider_message_id.as_deref(), Some("SM123"));
        assert_eq!(
            erased.status_reason.as_deref(),
            Some("21211: The 'To' number [erased] is not valid")
        );
        assert_eq!(erased.erased_at, Some(at));
        let back: Message = serde_json::from_str(&json).expect("reads back");
        assert_eq!(
            erase_message(&back, at),
            None,
            "erasing twice changes nothing"
        );
    }

    #[test]
    fn a_message_not_yet_dispatched_fails_instead_of_going_out() {
        let waiting = message(
            Channel::Email,
            "Ada@Guests.example",
            MessageStatus::Accepted,
        );
        let erased = erase_message(&waiting, OffsetDateTime::UNIX_EPOCH).expect("erased");
        assert_eq!(erased.status, MessageStatus::Failed);
        assert_eq!(
            erased.status_reason.as_deref(),
            Some(ERASED_BEFORE_DISPATCH)
        );
        assert_eq!(erased.content.subject.as_deref(), Some(ERASED));
        assert!(
            !serde_json::to_string(&erased)
                .expect("json")
                .to_lowercase()
                .contains("ada@guests.example")
        );
    }

    #[test]
    fn evidence_becomes_its_digest_once() {
        let record = ConsentRecord {
            id: "cns_01".into(),
            channel: Channel::Email,
            scope: "marketing".parse().expect("scope"),
            status: ConsentStatus::Granted,
            legal_basis: LegalBasis::Consent,
            source: ConsentSource::parse("signup_form").expect("source"),
            evidence: Some("form v3 signed by Ada Lovelace".into()),
            at: OffsetDateTime::UNIX_EPOCH,
            recorded_by: "u".into(),
            request_id: "r".into(),
        };
        let erased = erase_evidence(&record).expect("changed");
        assert_eq!(
            erased.evidence,
            Some(evidence_digest("form v3 signed by Ada Lovelace"))
        );
        assert_eq!(erased.evidence.as_deref().map(str::len), Some(7 + 64));
        assert_eq!(erase_evidence(&erased), None);
        let without = ConsentRecord {
            evidence: None,
            ..record
        };
        assert_eq!(erase_evidence(&without), None);
    }

    #[test]
    fn redaction_finds_every_occurrence_in_any_case() {
        let forms =
            address_forms(&Recipient::parse(Channel::Email, "ada@guests.example").expect("r"));
        assert_eq!(
            redact(
                "ADA@guests.EXAMPLE bounced; ada@guests.example again",
                &forms
            ),
            "[erased] bounced; [erased] again"
        );
    }
}
