//! Audit entries: who changed what, when, with digests of the state before and after. Entries
//! carry digests rather than the data itself, so they never hold secrets or personal data.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::identity::Caller;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}
