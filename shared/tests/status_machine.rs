//! The message status machine over arbitrary receipts: any order of any receipts (duplicates
//! included) ends in the same status as the receipts in order, and no receipt moves a message
//! back.

use herald_shared::domain::message::MessageStatus;
use proptest::prelude::*;

const RECEIPT_STATUSES: [MessageStatus; 6] = [
    MessageStatus::Sent,
    MessageStatus::Delivered,
    MessageStatus::Read,
    MessageStatus::Failed,
    MessageStatus::Bounced,
    MessageStatus::Complained,
];

fn apply(start: MessageStatus, receipts: &[MessageStatus]) -> MessageStatus {
    receipts
        .iter()
        .fold(start, |status, r| status.advance(*r).unwrap_or(status))
}

proptest! {
    #[test]
    fn any_order_gives_the_in_order_result(
        receipts in prop::collection::vec(prop::sample::select(RECEIPT_STATUSES.to_vec()), 0..12),
        shuffle in any::<prop::sample::Index>(),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        // The in-order sequence: receipts sorted by when they would happen.
        let mut in_order = receipts.clone();
        in_order.sort_by_key(|s| s.rank());
        let expected = apply(MessageStatus::Accepted, &in_order);

        let mut shuffled = receipts.clone();
        if !shuffled.is_empty() {
            let n = shuffle.index(shuffled.len());
            shuffled.rotate_left(n);
            shuffled.reverse();
            for d in &duplicates {
                let dup = shuffled[d.index(shuffled.len())];
                shuffled.push(dup);
            }
        }
        prop_assert_eq!(apply(MessageStatus::Accepted, &shuffled), expected);
    }

    #[test]
    fn no_receipt_moves_a_message_back(
        receipts in prop::collection::vec(prop::sample::select(RECEIPT_STATUSES.to_vec()), 1..12),
    ) {
        let mut status = MessageStatus::Accepted;
        for r in receipts {
            let next = status.advance(r).unwrap_or(status);
            prop_assert!(next.rank() >= status.rank());
            status = next;
        }
    }
}
