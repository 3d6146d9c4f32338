//! WhatsApp's 24-hour customer service window: per business number and customer, the time of the
//! customer's latest inbound message. While it is less than 24 hours old any message may be sent;
//! after that only approved templates (Meta answers 131047, Twilio fails the message with 63016).
//!
//! Windows open only through the control API (`/_standin/meta/inbound`,
//! `/_standin/twilio/inbound`) or the matching Rust methods. Outbound messages never reopen one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::{Duration, OffsetDateTime};

/// How long a window stays open after the customer's latest message.
pub const CUSTOMER_SERVICE_WINDOW: Duration = Duration::hours(24);
/// Windows tracked at once; past this the one with the oldest inbound message goes.
pub(crate) const MAX_WINDOWS: usize = 100_000;

/// Whose window: Meta by phone number id and `wa_id` (digits), Twilio by account, business
/// number and customer number (both E.164, without the `whatsapp:` prefix).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum WindowKey {
    Meta {
        phone_number_id: String,
        wa_id: String,
    },
    Twilio {
        account_sid: String,
        business: String,
        customer: String,
    },
}

/// When a window opened by a message at `at` closes (saturating: an `at` at the end of the
/// representable range never closes rather than overflowing).
fn closes(at: OffsetDateTime) -> OffsetDateTime {
    at.checked_add(CUSTOMER_SERVICE_WINDOW).unwrap_or(at)
}

#[derive(Default)]
pub(crate) struct Windows {
    latest_inbound: Mutex<HashMap<WindowKey, OffsetDateTime>>,
}

impl Windows {
    fn latest(&self) -> MutexGuard<'_, HashMap<WindowKey, OffsetDateTime>> {
        self.latest_inbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an inbound message at `at`; answers when the window now closes (the latest
    /// inbound message counts, so an older `at` does not shorten it).
    pub(crate) fn record_inbound(&self, key: WindowKey, at: OffsetDateTime) -> OffsetDateTime {
        let mut latest = self.latest();
        if !latest.contains_key(&key)
            && latest.len() >= MAX_WINDOWS
            && let Some(oldest) = latest
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(key, _)| key.clone())
        {
            latest.remove(&oldest);
        }
        let entry = latest.entry(key).or_insert(at);
        if at > *entry {
            *entry = at;
        }
        closes(*entry)
    }

    /// Whether `key`'s window is open at `now`.
    pub(crate) fn is_open(&self, key: &WindowKey, now: OffsetDateTime) -> bool {
        self.latest().get(key).is_some_and(|at| now < closes(*at))
    }

    /// Whether any of the account's business numbers has an open window with `customer` (a
    /// Messaging Service picks the sender later, so any of its numbers may be the one).
    pub(crate) fn twilio_open_with_any_sender(
        &self,
        account: &str,
        customer_number: &str,
        now: OffsetDateTime,
    ) -> bool {
        self.latest().iter().any(|(key, at)| {
            matches!(key, WindowKey::Twilio { account_sid, customer, .. }
                if account_sid == account && customer == customer_number)
                && now < closes(*at)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(wa_id: &str) -> WindowKey {
        WindowKey::Meta {
            phone_number_id: "1".into(),
            wa_id: wa_id.into(),
        }
    }

    #[test]
    fn a_window_lasts_24_hours_from_the_latest_inbound_message() {
        let windows = Windows::default();
        let now = OffsetDateTime::now_utc();
        assert!(!windows.is_open(&meta("2547"), now));
        let until = windows.record_inbound(meta("2547"), now - Duration::hours(23));
        assert_eq!(until, now + Duration::hours(1));
        assert!(windows.is_open(&meta("2547"), now));
        assert!(!windows.is_open(&meta("2547"), now + Duration::hours(2)));
        assert!(!windows.is_open(&meta("2548"), now));
        // An older message does not move it back; a newer one moves it on.
        assert_eq!(
            windows.record_inbound(meta("2547"), now - Duration::hours(30)),
            until
        );
        assert_eq!(
            windows.record_inbound(meta("2547"), now),
            now + CUSTOMER_SERVICE_WINDOW
        );
        let old = windows.record_inbound(meta("2549"), now - Duration::hours(25));
        assert!(old < now && !windows.is_open(&meta("2549"), now));
    }

    #[test]
    fn the_end_of_time_does_not_overflow() {
        let windows = Windows::default();
        let last = time::macros::datetime!(9999-12-31 23:59:59 UTC);
        assert_eq!(windows.record_inbound(meta("1"), last), last);
        assert!(windows.is_open(&meta("1"), OffsetDateTime::now_utc()));
    }

    #[test]
    fn twilio_windows_match_any_sender_of_the_account() {
        let windows = Windows::default();
        let now = OffsetDateTime::now_utc();
        windows.record_inbound(
            WindowKey::Twilio {
                account_sid: "AC1".into(),
                business: "+14155238886".into(),
                customer: "+254711000001".into(),
            },
            now,
        );
        assert!(windows.twilio_open_with_any_sender("AC1", "+254711000001", now));
        assert!(!windows.twilio_open_with_any_sender("AC2", "+254711000001", now));
        assert!(!windows.twilio_open_with_any_sender("AC1", "+254711000002", now));
    }
}
