//! The message status machine over arbitrary receipts, through the message store: any order of
//! any receipts (duplicates included) ends in the same state — status, reason and time — as the
//! receipts in the order they happened, and no receipt moves a message back.

use herald_shared::domain::TenantId;
use herald_shared::domain::audit::AuditEntry;
use herald_shared::domain::message::{
    Message, MessageContent, MessageId, MessageStatus, StatusMark, StatusReport,
};
use herald_shared::domain::recipient::Recipient;
use herald_shared::domain::{Category, Channel, EventId};
use herald_shared::store::MessageStore as _;
use herald_shared::store::memory::MemoryStore;
use proptest::prelude::*;
use time::OffsetDateTime;

const RECEIPT_STATUSES: [MessageStatus; 6] = [
    MessageStatus::Sent,
    MessageStatus::Delivered,
    MessageStatus::Read,
    MessageStatus::Failed,
    MessageStatus::Bounced,
    MessageStatus::Complained,
];

/// A report as providers send them: any status, a reason or none (same-rank reports differ by
/// it), a time or none (Twilio's callbacks carry none).
fn report() -> impl Strategy<Value = StatusReport> {
    (
        prop::sample::select(RECEIPT_STATUSES.to_vec()),
        prop::option::of(prop::sample::select(vec!["30003", "30008", "550 5.1.1"])),
        prop::option::of(0i64..5),
    )
        .prop_map(|(status, reason, second)| StatusReport {
            status,
            reason: reason.map(str::to_owned),
            at: second
                .map(|s| OffsetDateTime::from_unix_timestamp(1_795_341_600 + s).expect("a time")),
            cost: None,
        })
}

/// A message dispatch has just handed to a provider.
fn sent_message() -> Message {
    let tenant = TenantId::parse("acme-events").expect("tenant");
    let recipient = Recipient::parse(Channel::Sms, "+260971234567").expect("recipient");
    Message {
        id: MessageId::derive(&tenant, "status", "machine", 0),
        recipient_key: recipient.key(
            &herald_shared::domain::recipient::RecipientKeyring::new(vec![1; 32]).expect("key"),
            tenant.as_str(),
        ),
        tenant,
        event: EventId::parse("gala-2026").expect("event"),
        snapshot_version: 1,
        category: Category::Invitation,
        channel: Channel::Sms,
        recipient,
        content: MessageContent {
            subject: None,
            html: None,
            text: "Hi".into(),
            segments: Some(1),
            whatsapp_template: None,
        },
        status: MessageStatus::Sent,
        status_reason: None,
        status_at: None,
        trigger: None,
        estimated_cost: None,
        cost: None,
        provider: None,
        provider_kind: None,
        provider_message_id: None,
        attempts: Vec::new(),
        created_at: OffsetDateTime::from_unix_timestamp(1_795_341_500).expect("a time"),
        sent_at: None,
        request_id: "req".into(),
        expires_at: None,
        not_before: None,
        erased_at: None,
        test: false,
        list_unsubscribe: None,
    }
}

/// The state a message ends in after `reports`, applied in that order through the store.
fn through_the_store(reports: &[StatusReport]) -> (MessageStatus, Option<String>, StatusMark) {
    let store = MemoryStore::default();
    let message = sent_message();
    let audit = |action: &str| {
        AuditEntry::by_system(
            "test",
            &message.tenant,
            "req",
            action,
            format!("message/{}", message.id),
            None,
            None,
        )
    };
    futures::executor::block_on(async {
        assert!(
            store
                .create(&message, &audit("message.accepted"))
                .await
                .expect("created")
        );
        for report in reports {
            let before = store
                .message(&message.id)
                .await
                .expect("read")
                .expect("stored")
                .message;
            let moved = store
                .advance(&message.id, report, &audit("message.receipt"))
                .await
                .expect("advance");
            let after = store
                .message(&message.id)
                .await
                .expect("read")
                .expect("stored")
                .message;
            // Never back: the mark only rises, and only a move changes anything.
            assert!(StatusMark::of_message(&after) >= StatusMark::of_message(&before));
            assert_eq!(moved, after != before, "{report:?}");
        }
        let last = store
            .message(&message.id)
            .await
            .expect("read")
            .expect("stored")
            .message;
        let mark = StatusMark::of_message(&last);
        (last.status, last.status_reason, mark)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_order_gives_the_in_order_result(
        (reports, shuffled) in prop::collection::vec(report(), 1..10).prop_flat_map(|reports| {
            let n = reports.len();
            (
                Just(reports.clone()),
                // A random order of the reports, then some of them again (providers retry).
                (Just(reports).prop_shuffle(), prop::collection::vec(0..n, 0..4)).prop_map(
                    |(mut order, repeats)| {
                        let again: Vec<StatusReport> =
                            repeats.iter().map(|&i| order[i].clone()).collect();
                        order.extend(again);
                        order
                    },
                ),
            )
        }),
    ) {
        // The in-order sequence: reports in the order they happened (those without a time,
        // which providers send first, first).
        let mut in_order = reports.clone();
        in_order.sort_by_key(|r| r.at);
        let expected = through_the_store(&in_order);
        prop_assert_eq!(through_the_store(&shuffled), expected);
    }

    #[test]
    fn the_highest_report_is_where_a_message_ends(
        reports in prop::collection::vec(report(), 1..10),
    ) {
        let (status, reason, mark) = through_the_store(&reports);
        let highest = reports
            .iter()
            .map(StatusReport::mark)
            .chain([StatusMark::of_message(&sent_message())])
            .max()
            .expect("at least the message's own");
        prop_assert_eq!(&mark, &highest);
        let winner = reports.iter().find(|r| r.mark() == highest);
        if let Some(winner) = winner {
            prop_assert_eq!((status, reason), (winner.status, winner.reason.clone()));
        }
    }
}
