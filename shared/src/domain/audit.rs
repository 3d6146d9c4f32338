//! Audit entries: who changed what, when, with digests of the state before and after. Entries
//! carry digests rather than the data itself, so they never hold secrets or personal data.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::identity::Caller;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// A ULID: time-ordered, unique.
    pub id: String,
    pub actor: String,
    pub actor_role: super::identity::Role,
    /// `tenant` or `platform`.
    pub scope: String,
    pub action: String,
    /// What changed, e.g. `event/gala-2026/provider/prv_...`.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub at: OffsetDateTime,
    pub request_id: String,
}

impl AuditEntry {
    pub fn new(
        caller: &Caller,
        request_id: &str,
        action: &str,
        target: String,
        before: Option<String>,
        after: Option<String>,
    ) -> Self {
        Self {
            id: ulid::Ulid::new().to_string(),
            actor: caller.subject.clone(),
            actor_role: caller.role,
            scope: caller
                .tenant
                .as_ref()
                .map_or("platform".to_owned(), |t| t.to_string()),
            action: action.to_owned(),
            target,
            before,
            after,
            at: OffsetDateTime::now_utc(),
            request_id: request_id.to_owned(),
        }
    }
}

impl AuditEntry {
    /// An entry for a change Herald made itself (dispatch, receipts), not a person.
    pub fn by_system(
        actor: &str,
        tenant: &super::ids::TenantId,
        request_id: &str,
        action: &str,
        target: String,
        before: Option<String>,
        after: Option<String>,
    ) -> Self {
        Self {
            id: ulid::Ulid::new().to_string(),
            actor: actor.to_owned(),
            actor_role: super::identity::Role::System,
            scope: tenant.to_string(),
            action: action.to_owned(),
            target,
            before,
            after,
            at: OffsetDateTime::now_utc(),
            request_id: request_id.to_owned(),
        }
    }
}

impl AuditEntry {
    /// An entry Herald itself (`actor`) makes about a message. A message's whole history has
    /// one target, [`Message::audit_target`], so it is one ordered chain.
    ///
    /// [`Message::audit_target`]: super::message::Message::audit_target
    pub fn by_system_on_message(
        actor: &str,
        message: &super::message::Message,
        request_id: &str,
        action: &str,
        before: Option<String>,
        after: Option<String>,
    ) -> Self {
        Self::by_system(
            actor,
            &message.tenant,
            request_id,
            action,
            message.audit_target(),
            before,
            after,
        )
    }
}

impl AuditEntry {
    /// The entry of a message's creation (`message.accepted`, `message.test_accepted` for a
    /// test send) by `actor` in `role`: its
    /// `after` is the digest of the record without its address and content
    /// ([`impersonal`](super::erasure::impersonal)), since a digest of the whole record, kept
    /// for years, could be matched by trying every number of a plan against a fixed text.
    pub fn message_accepted(
        actor: &str,
        role: super::identity::Role,
        message: &super::message::Message,
        request_id: &str,
    ) -> Self {
        let mut entry = Self::by_system_on_message(
            actor,
            message,
            request_id,
            if message.test {
                "message.test_accepted"
            } else {
                "message.accepted"
            },
            None,
            Some(digest(&super::erasure::impersonal(message))),
        );
        entry.actor_role = role;
        entry
    }
}

/// SHA-256 (hex) of a value's JSON. serde_json writes struct fields in declaration order and
/// maps as BTreeMaps in key order here, so equal values give equal digests.
pub fn digest<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------------
// Tamper evidence: per-partition hash chains
// ---------------------------------------------------------------------------------------------
//
// Each scope (a tenant, or the platform) has a fixed number of chains; an entry goes to the
// chain its target hashes to, so one target's history is one ordered chain and appends to
// different chains never wait for each other (no single hot item caps a tenant's append rate).
// Entry `n` of a chain stores `seq = n`, the previous entry's link and its own link:
// `link = SHA-256(prev_link "\n" seq "\n" canonical JSON of the entry)`. The chain's head holds
// the last `seq` and link. Verification recomputes every link, so an edited entry, a missing
// one, one inserted, two swapped, or a truncated tail each show as a named problem.

/// The link before a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain of a scope that entries about `target` go to, out of `chains`.
pub fn chain_of(target: &str, chains: u32) -> u32 {
    let digest = Sha256::digest(target.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    n % chains.max(1)
}

/// The link of entry `seq` following `prev`.
pub fn link(prev: &str, seq: u64, entry: &AuditEntry) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(seq.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(serde_json::to_vec(entry).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// An entry as stored in its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChainedEntry {
    pub chain: u32,
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

impl ChainedEntry {
    /// The next entry after `head` in `chain`.
    pub fn after(head: &ChainHead, entry: AuditEntry) -> Self {
        let seq = head.seq + 1;
        Self {
            chain: head.chain,
            seq,
            hash: link(&head.hash, seq, &entry),
            prev_hash: head.hash.clone(),
            entry,
        }
    }

    pub fn head(&self) -> ChainHead {
        ChainHead {
            chain: self.chain,
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// The last entry of a chain: its number and link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChainHead {
    pub chain: u32,
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    pub fn empty(chain: u32) -> Self {
        Self {
            chain,
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// One stored item of a chain, as read back: its storage position (`None` when the key is not
/// one Herald writes) and its content (`Err` when it is not an entry at all).
#[derive(Debug, Clone)]
pub struct StoredLink {
    pub key: String,
    pub position: Option<u64>,
    pub entry: Result<ChainedEntry, String>,
}

/// What verification found wrong, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Tamper {
    /// The entry's content no longer matches its link.
    Edited { chain: u32, seq: u64, id: String },
    /// Entries that the chain's links or head say exist are not there.
    Missing { chain: u32, from: u64, to: u64 },
    /// An entry whose link does not follow the previous entry's: put there by someone else.
    Inserted { chain: u32, seq: u64, id: String },
    /// An entry stored at another position than its own number: entries swapped or moved.
    Reordered {
        chain: u32,
        position: u64,
        seq: u64,
        id: String,
    },
    /// An item in the chain's partition that is not an entry Herald wrote.
    Foreign { chain: u32, key: String },
    /// The head does not match the last entry (the head or the tail was changed).
    HeadMismatch { chain: u32, head_seq: u64 },
    /// An entry a signed anchor vouches for is gone or differs: the chain was cut back or
    /// rewritten from before that point (head included), or deleted whole.
    UnlikeAnchor { chain: u32, seq: u64, anchor: u64 },
    /// An anchor's signature does not verify: it was forged or changed.
    AnchorForged { anchor: u64 },
    /// Anchors are missing from the sequence (deleted), or one does not follow the one before.
    AnchorsMissing { from: u64, to: u64 },
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tamper::Edited { chain, seq, id } => {
                write!(f, "chain {chain}: entry {seq} ({id}) was edited")
            }
            Tamper::Missing { chain, from, to } if from == to => {
                write!(f, "chain {chain}: entry {from} was deleted")
            }
            Tamper::Missing { chain, from, to } => {
                write!(f, "chain {chain}: entries {from}-{to} were deleted")
            }
            Tamper::Inserted { chain, seq, id } => {
                write!(f, "chain {chain}: entry {seq} ({id}) was inserted")
            }
            Tamper::Reordered {
                chain,
                position,
                seq,
                id,
            } => write!(
                f,
                "chain {chain}: entry {seq} ({id}) was moved to position {position}"
            ),
            Tamper::Foreign { chain, key } => {
                write!(f, "chain {chain}: item {key} is not an audit entry")
            }
            Tamper::HeadMismatch { chain, head_seq } => write!(
                f,
                "chain {chain}: the head (entry {head_seq}) does not match the stored entries"
            ),
            Tamper::UnlikeAnchor { chain, seq, anchor } => write!(
                f,
                "chain {chain}: entry {seq}, signed for by anchor {anchor}, is gone or changed"
            ),
            Tamper::AnchorForged { anchor } => {
                write!(f, "anchor {anchor}: the signature does not verify")
            }
            Tamper::AnchorsMissing { from, to } if from == to => {
                write!(f, "anchor {from} was deleted or replaced")
            }
            Tamper::AnchorsMissing { from, to } => {
                write!(f, "anchors {from}-{to} were deleted or replaced")
            }
        }
    }
}

/// Checks one chain: `links` in storage order, `head` as stored. `expired_before` lets a chain
/// start after entry 1 when its first stored entry is older than that time (earlier entries
/// expired with the retention period) — a gap anywhere else is a deletion.
pub fn verify_chain(
    chain: u32,
    links: &[StoredLink],
    head: &ChainHead,
    expired_before: Option<OffsetDateTime>,
) -> Vec<Tamper> {
    let mut problems = Vec::new();
    let mut by_seq: std::collections::BTreeMap<u64, &ChainedEntry> = Default::default();
    for stored in links {
        match (&stored.entry, stored.position) {
            (Ok(e), Some(position)) => {
                if e.seq != position {
                    problems.push(Tamper::Reordered {
                        chain,
                        position,
                        seq: e.seq,
                        id: e.entry.id.clone(),
                    });
                }
                if link(&e.prev_hash, e.seq, &e.entry) != e.hash {
                    problems.push(Tamper::Edited {
                        chain,
                        seq: e.seq,
                        id: e.entry.id.clone(),
                    });
                }
                by_seq.insert(e.seq, e);
            }
            _ => problems.push(Tamper::Foreign {
                chain,
                key: stored.key.clone(),
            }),
        }
    }
    let first = by_seq.keys().next().copied();
    let mut expected = 1;
    if let (Some(first), Some(cutoff)) = (first, expired_before)
        && first > 1
        && by_seq[&first].entry.at < cutoff
    {
        expected = first;
    }
    for (&seq, e) in &by_seq {
        if seq > expected {
            problems.push(Tamper::Missing {
                chain,
                from: expected,
                to: seq - 1,
            });
        } else if seq == expected {
            let prev = match seq.checked_sub(1).and_then(|p| by_seq.get(&p)) {
                Some(p) => p.hash.as_str(),
                None if seq == 1 => GENESIS,
                // The first entry left after expiry: its predecessor is gone by design.
                None => e.prev_hash.as_str(),
            };
            if e.prev_hash != prev {
                problems.push(Tamper::Inserted {
                    chain,
                    seq,
                    id: e.entry.id.clone(),
                });
            }
        }
        expected = seq + 1;
    }
    let last = by_seq.values().next_back();
    match last {
        Some(last) if last.seq > head.seq => {
            for (&seq, e) in by_seq.range(head.seq + 1..) {
                problems.push(Tamper::Inserted {
                    chain,
                    seq,
                    id: e.entry.id.clone(),
                });
            }
        }
        Some(last) if last.seq < head.seq => problems.push(Tamper::Missing {
            chain,
            from: last.seq + 1,
            to: head.seq,
        }),
        Some(last) if last.hash != head.hash => problems.push(Tamper::HeadMismatch {
            chain,
            head_seq: head.seq,
        }),
        None if head.seq > 0 => problems.push(Tamper::Missing {
            chain,
            from: 1,
            to: head.seq,
        }),
        _ => {}
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Signed anchors
// ---------------------------------------------------------------------------------------------
//
// Chains alone cannot show a chain cut back at its tail with its head rewound, or a chain
// deleted whole: what is left is a consistent chain. An anchor is a signed statement of where
// every chain of a scope stood at a moment (each head's number and link), made periodically
// with a key the table's writers cannot use (KMS, asymmetric: the log's writers have no
// kms:Sign on it). Anchors are chained too (`prev` is the previous anchor's digest), so a
// deleted or replaced anchor shows. Verification checks every anchor's signature and that every
// entry an anchor vouches for is still there, unchanged. What is appended after the latest
// anchor is protected by the chains alone until the next anchor.

/// Where every chain of a scope stood when the anchor was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Anchor {
    pub scope: String,
    /// 1, 2, 3...: anchors of a scope are numbered without gaps.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub at: OffsetDateTime,
    /// Every chain's head (empty chains included), in chain order.
    pub heads: Vec<ChainHead>,
    /// The previous anchor's digest ([`GENESIS`] for the first).
    pub prev: String,
}

impl Anchor {
    /// The bytes signed: the anchor's canonical JSON (fields in declaration order).
    pub fn signed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// What the next anchor names as `prev`.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.signed_bytes()))
    }

    /// The anchor after `previous` (or the first) over `heads`.
    pub fn next(
        scope: &str,
        previous: Option<&Anchor>,
        heads: Vec<ChainHead>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            scope: scope.to_owned(),
            seq: previous.map_or(1, |p| p.seq + 1),
            at,
            heads,
            prev: previous.map_or_else(|| GENESIS.to_owned(), Anchor::digest),
        }
    }
}

/// An anchor with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignedAnchor {
    pub anchor: Anchor,
    /// The key that signed it (a KMS key ARN) and how (`ECDSA_SHA_256`).
    pub key_id: String,
    pub algorithm: String,
    /// Base64 of the signature over [`Anchor::signed_bytes`].
    pub signature: String,
}

/// Checks a scope's chains against its anchors (in any order): `signed` says whether an
/// anchor's signature verifies; `entries` finds a chain's entry link by number as read back;
/// `expired_before` forgives what anchors older than that time vouch for (everything an anchor
/// vouches for is older than the anchor, so it may have gone with the retention period).
pub fn verify_anchors(
    anchors: &[SignedAnchor],
    signed: &dyn Fn(&SignedAnchor) -> bool,
    entries: &dyn Fn(u32, u64) -> Option<String>,
    expired_before: Option<OffsetDateTime>,
) -> Vec<Tamper> {
    let mut problems = Vec::new();
    let mut sorted: Vec<&SignedAnchor> = anchors.iter().collect();
    sorted.sort_by_key(|a| a.anchor.seq);
    let mut expected = 1;
    let mut previous: Option<&Anchor> = None;
    for signed_anchor in sorted {
        let anchor = &signed_anchor.anchor;
        if !signed(signed_anchor) {
            problems.push(Tamper::AnchorForged { anchor: anchor.seq });
            continue;
        }
        if anchor.seq > expected {
            problems.push(Tamper::AnchorsMissing {
                from: expected,
                to: anchor.seq - 1,
            });
        } else if previous.map_or(GENESIS.to_owned(), Anchor::digest) != anchor.prev {
            // Numbered right but not made after the one before it.
            problems.push(Tamper::AnchorsMissing {
                from: anchor.seq,
                to: anchor.seq,
            });
        }
        let expired = expired_before.is_some_and(|cutoff| anchor.at < cutoff);
        for head in anchor.heads.iter().filter(|h| h.seq > 0) {
            let intact = match entries(head.chain, head.seq) {
                Some(hash) => hash == head.hash,
                None => expired,
            };
            if !intact {
                problems.push(Tamper::UnlikeAnchor {
                    chain: head.chain,
                    seq: head.seq,
                    anchor: anchor.seq,
                });
            }
        }
        expected = anchor.seq + 1;
        previous = Some(anchor);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            id: format!("01J{n:023}"),
            actor: "ada".into(),
            actor_role: super::super::identity::Role::TenantAdmin,
            scope: "acme".into(),
            action: "brand.updated".into(),
            target: "tenant/brand".into(),
            before: Some(format!("{n}")),
            after: Some(format!("{}", n + 1)),
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::days(i64::try_from(n).unwrap_or(0)),
            request_id: format!("r{n}"),
        }
    }

    /// A chain of `n` entries as stored, and its head.
    fn chain(n: u64) -> (Vec<StoredLink>, ChainHead) {
        let mut head = ChainHead::empty(3);
        let mut links = Vec::new();
        for i in 1..=n {
            let e = ChainedEntry::after(&head, entry(i));
            head = e.head();
            links.push(StoredLink {
                key: format!("E#{i:012}"),
                position: Some(i),
                entry: Ok(e),
            });
        }
        (links, head)
    }

    fn verify(links: &[StoredLink], head: &ChainHead) -> Vec<Tamper> {
        verify_chain(3, links, head, None)
    }

    fn id(n: u64) -> String {
        entry(n).id
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (links, head) = chain(10);
        assert_eq!(verify(&links, &head), vec![]);
        assert_eq!(verify(&[], &ChainHead::empty(3)), vec![]);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (mut links, head) = chain(10);
        if let Ok(e) = &mut links[4].entry {
            e.entry.actor = "mallory".into();
        }
        assert_eq!(
            verify(&links, &head),
            vec![Tamper::Edited {
                chain: 3,
                seq: 5,
                id: id(5)
            }]
        );
    }

    #[test]
    fn an_edit_that_recomputes_its_own_link_breaks_the_next_one() {
        let (mut links, head) = chain(10);
        if let Ok(e) = &mut links[4].entry {
            e.entry.actor = "mallory".into();
            e.hash = link(&e.prev_hash, e.seq, &e.entry);
        }
        assert_eq!(
            verify(&links, &head),
            vec![Tamper::Inserted {
                chain: 3,
                seq: 6,
                id: id(6)
            }]
        );
    }

    #[test]
    fn deleted_entries_are_named_in_the_middle_and_at_the_tail() {
        let (mut links, head) = chain(10);
        links.remove(3);
        assert_eq!(
            verify(&links, &head),
            vec![Tamper::Missing {
                chain: 3,
                from: 4,
                to: 4
            }]
        );
        let (mut links, head) = chain(10);
        links.truncate(8);
        assert_eq!(
            verify(&links, &head),
            vec![Tamper::Missing {
                chain: 3,
                from: 9,
                to: 10
            }]
        );
    }

    #[test]
    fn an_inserted_entry_is_named() {
        // Appended after the head, even with a correct link to the last entry.
        let (mut links, head) = chain(5);
        let Ok(last) = links[4].entry.clone() else {
            unreachable!("built above")
        };
        let forged = ChainedEntry::after(&last.head(), entry(99));
        links.push(StoredLink {
            key: "E#000000000006".into(),
            position: Some(6),
            entry: Ok(forged),
        });
        assert_eq!(
            verify(&links, &head),
            vec![Tamper::Inserted {
                chain: 3,
                seq: 6,
                id: id(99)
            }]
        );
        // Or put in the place of a deleted entry, with a link of its own making.
        let (mut links, head) = chain(5);
        let forged = ChainedEntry {
            chain: 3,
            seq: 3,
            prev_hash: GENESIS.into(),
            hash: link(GENESIS, 3, &entry(77)),
            entry: entry(77),
        };
        links[2].entry = Ok(forged);
        let problems = verify(&links, &head);
        assert!(
            problems.contains(&Tamper::Inserted {
                chain: 3,
                seq: 3,
                id: id(77)
            }),
            "{problems:?}"
        );
        // And a foreign item in the partition.
        let (mut links, head) = chain(2);
        links.push(StoredLink {
            key: "NOTE".into(),
            position: None,
            entry: Err("not an entry".into()),
        });
        assert_eq!(
            verify(&links, &head),
            vec![Tamper::Foreign {
                chain: 3,
                key: "NOTE".into()
            }]
        );
    }

    #[test]
    fn swapped_entries_are_named_both() {
        let (mut links, head) = chain(10);
        let (a, b) = (links[2].entry.clone(), links[3].entry.clone());
        links[2].entry = b;
        links[3].entry = a;
        assert_eq!(
            verify(&links, &head),
            vec![
                Tamper::Reordered {
                    chain: 3,
                    position: 3,
                    seq: 4,
                    id: id(4)
                },
                Tamper::Reordered {
                    chain: 3,
                    position: 4,
                    seq: 3,
                    id: id(3)
                },
            ]
        );
    }

    #[test]
    fn a_moved_head_is_named() {
        let (links, mut head) = chain(4);
        head.hash = GENESIS.into();
        assert_eq!(
            verify(&links, &head),
            vec![Tamper::HeadMismatch {
                chain: 3,
                head_seq: 4
            }]
        );
    }

    #[test]
    fn a_prefix_lost_to_retention_is_not_a_deletion_but_a_recent_one_is() {
        let (mut links, head) = chain(10);
        links.drain(..3);
        // Entry 4 is dated 4 days after the epoch: older than the cut-off, so 1-3 expired.
        let cutoff = OffsetDateTime::UNIX_EPOCH + time::Duration::days(30);
        assert_eq!(verify_chain(3, &links, &head, Some(cutoff)), vec![]);
        let early = OffsetDateTime::UNIX_EPOCH + time::Duration::days(2);
        assert_eq!(
            verify_chain(3, &links, &head, Some(early)),
            vec![Tamper::Missing {
                chain: 3,
                from: 1,
                to: 3
            }]
        );
    }

    #[test]
    fn chains_spread_targets_and_keep_one_target_in_one_chain() {
        let mut used = std::collections::BTreeSet::new();
        for i in 0..1000 {
            used.insert(chain_of(&format!("message/msg_{i}"), 16));
        }
        assert_eq!(used.len(), 16);
        assert_eq!(chain_of("tenant/brand", 16), chain_of("tenant/brand", 16));
    }

    /// Anchors 1..=n over chain 3 at the given heads, "signed" (the test's signature check
    /// accepts anchors whose signature field is "ok").
    fn anchored(heads: &[ChainHead]) -> Vec<SignedAnchor> {
        let mut anchors: Vec<SignedAnchor> = Vec::new();
        for head in heads {
            // Made the day of the entry it vouches for last (entry n is dated day n).
            let at = OffsetDateTime::UNIX_EPOCH
                + time::Duration::days(i64::try_from(head.seq).unwrap_or(0));
            let anchor = Anchor::next(
                "acme",
                anchors.last().map(|a| &a.anchor),
                vec![ChainHead::empty(0), head.clone()],
                at,
            );
            anchors.push(SignedAnchor {
                anchor,
                key_id: "k".into(),
                algorithm: "test".into(),
                signature: "ok".into(),
            });
        }
        anchors
    }

    fn check(
        anchors: &[SignedAnchor],
        links: &[StoredLink],
        cutoff: Option<OffsetDateTime>,
    ) -> Vec<Tamper> {
        let entries: std::collections::BTreeMap<u64, String> = links
            .iter()
            .filter_map(|l| l.entry.as_ref().ok())
            .map(|e| (e.seq, e.hash.clone()))
            .collect();
        verify_anchors(
            anchors,
            &|a| a.signature == "ok",
            &|chain, seq| (chain == 3).then(|| entries.get(&seq).cloned()).flatten(),
            cutoff,
        )
    }

    /// The head a chain had after its first `n` entries.
    fn head_at(links: &[StoredLink], n: usize) -> ChainHead {
        links[n - 1]
            .entry
            .as_ref()
            .map(ChainedEntry::head)
            .unwrap_or_else(|_| ChainHead::empty(3))
    }

    #[test]
    fn anchors_vouch_for_what_they_signed() {
        let (links, head) = chain(12);
        let anchors = anchored(&[head_at(&links, 5), head_at(&links, 10)]);
        assert_eq!(check(&anchors, &links, None), vec![]);
        // Entries after the last anchor are the chains' alone to protect.
        assert_eq!(verify(&links, &head), vec![]);
    }

    #[test]
    fn a_tail_cut_back_with_its_head_rewound_shows_against_an_anchor() {
        let (mut links, _) = chain(12);
        let anchors = anchored(&[head_at(&links, 10)]);
        // Entries 9-12 deleted and the head set back to entry 8: a consistent chain.
        links.truncate(8);
        let rewound = head_at(&links, 8);
        assert_eq!(
            verify(&links, &rewound),
            vec![],
            "the chain alone cannot tell"
        );
        assert_eq!(
            check(&anchors, &links, None),
            vec![Tamper::UnlikeAnchor {
                chain: 3,
                seq: 10,
                anchor: 1
            }]
        );
    }

    #[test]
    fn a_chain_deleted_whole_or_rewritten_shows_against_an_anchor() {
        let (links, _) = chain(6);
        let anchors = anchored(&[head_at(&links, 6)]);
        assert_eq!(
            check(&anchors, &[], None),
            vec![Tamper::UnlikeAnchor {
                chain: 3,
                seq: 6,
                anchor: 1
            }]
        );
        // Rewritten from entry 2 on, head included: every link recomputed, entry 6 differs.
        let mut rewritten = links[..1].to_vec();
        let mut head = head_at(&links, 1);
        for n in 2..=6 {
            let mut e = entry(n);
            e.actor = "mallory".into();
            let chained = ChainedEntry::after(&head, e);
            head = chained.head();
            rewritten.push(StoredLink {
                key: format!("E#{n:012}"),
                position: Some(n),
                entry: Ok(chained),
            });
        }
        assert_eq!(verify(&rewritten, &head), vec![]);
        assert_eq!(
            check(&anchors, &rewritten, None),
            vec![Tamper::UnlikeAnchor {
                chain: 3,
                seq: 6,
                anchor: 1
            }]
        );
    }

    #[test]
    fn forged_and_deleted_anchors_are_named() {
        let (links, _) = chain(9);
        let mut anchors = anchored(&[head_at(&links, 3), head_at(&links, 6), head_at(&links, 9)]);
        anchors[2].signature = "forged".into();
        assert_eq!(
            check(&anchors, &links, None),
            vec![Tamper::AnchorForged { anchor: 3 }]
        );
        let mut gap = anchored(&[head_at(&links, 3), head_at(&links, 6), head_at(&links, 9)]);
        gap.remove(1);
        assert_eq!(
            check(&gap, &links, None),
            vec![Tamper::AnchorsMissing { from: 2, to: 2 }]
        );
        // An anchor replaced by another genuine one from elsewhere does not follow its
        // predecessor.
        let mut swapped = anchored(&[head_at(&links, 3), head_at(&links, 6)]);
        let other = anchored(&[head_at(&links, 4), head_at(&links, 6)]);
        swapped[1] = other[1].clone();
        assert_eq!(
            check(&swapped, &links, None),
            vec![Tamper::AnchorsMissing { from: 2, to: 2 }]
        );
    }

    #[test]
    fn entries_gone_with_the_retention_period_do_not_break_an_anchor() {
        let (mut links, _) = chain(10);
        let anchors = anchored(&[head_at(&links, 3), head_at(&links, 8)]);
        links.drain(..5);
        let cutoff = OffsetDateTime::UNIX_EPOCH + time::Duration::days(30);
        assert_eq!(check(&anchors, &links, Some(cutoff)), vec![]);
        let early = OffsetDateTime::UNIX_EPOCH + time::Duration::days(2);
        assert_eq!(
            check(&anchors, &links, Some(early)),
            vec![Tamper::UnlikeAnchor {
                chain: 3,
                seq: 3,
                anchor: 1
            }]
        );
    }
}
