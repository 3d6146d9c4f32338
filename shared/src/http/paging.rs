//! How every list route pages: query `limit` (1..=[`MAX_LIMIT`], [`DEFAULT_LIMIT`] when
//! absent) and `cursor`, answered with `{"items": [...], "next": "<cursor>" | null}`.
//!
//! A cursor is opaque to callers: base64url (no padding) of a 16-byte binding followed by the
//! store's position (the key of the last item read). The binding is a digest of the list it
//! belongs to (route, tenant, event, filters) and the position, so a cursor used on another
//! list, by another tenant or with other filters, or edited, is refused as 400 `cursor`. What
//! keeps tenants apart is not the cursor but the store: a position only says where to resume
//! inside the partition the caller's own token selects, and every position is parsed back into
//! the store's key shape before a query sees it, so no cursor can make a query fail (5xx) or
//! reach another tenant's items.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::Request;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{ApiError, ApiResult, query_param, respond};
use crate::domain::validation::FieldError;

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// Most items one page holds.
pub const MAX_LIMIT: usize = 100;
/// Longest cursor accepted (Herald's own are far shorter).
const MAX_CURSOR_CHARS: usize = 1024;
const BINDING_BYTES: usize = 16;

/// One list request's page: how many items, and where to resume (the store's position, as the
/// previous page's [`Paging::respond`] sealed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub limit: usize,
    pub after: Option<String>,
    list: String,
}

impl Paging {
    /// Reads `limit` and `cursor` from `request`. `list` names what is listed, for the caller
    /// who asks: the route, the tenant, the event and any filters, so that a cursor only
    /// continues the list it came from.
    pub fn from_request(request: &Request, list: &str) -> Result<Self, ApiError> {
        Self::parse(
            query_param(request, "limit").as_deref(),
            query_param(request, "cursor").as_deref(),
            list,
        )
    }

    pub fn parse(limit: Option<&str>, cursor: Option<&str>, list: &str) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    FieldError::new(
                        crate::domain::ErrorCode::Invalid,
                        "query.limit",
                        format!("limit is a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let after = cursor.map(|c| open(c, list)).transpose()?;
        Ok(Self {
            limit,
            after,
            list: list.to_owned(),
        })
    }

    /// The cursor that resumes this list after `position`.
    pub fn cursor(&self, position: &str) -> String {
        let mut sealed = binding(&self.list, position).to_vec();
        sealed.extend_from_slice(position.as_bytes());
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// `{"items": items, "next": cursor-or-null}` with status 200.
    pub fn respond<T: Serialize>(&self, items: &[T], next: Option<&str>) -> ApiResult {
        respond(200, &self.page(items, next))
    }

    pub fn page<'a, T: Serialize>(&self, items: &'a [T], next: Option<&str>) -> Page<'a, T> {
        Page {
            items,
            next: next.map(|p| self.cursor(p)),
        }
    }

    /// One page of a collection that is read whole (a handful of items from one item or one
    /// query of a partition): the items whose `key` sorts after the position, up to the limit,
    /// with the position to resume after (the last key given). Keyed, not counted, so items
    /// added or removed between pages neither repeat nor skip the others.
    pub fn slice<T, K: AsRef<str>>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> K,
    ) -> (Vec<T>, Option<String>) {
        let mut keyed: Vec<(K, T)> = items.into_iter().map(|i| (key(&i), i)).collect();
        keyed.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut page: Vec<(K, T)> = keyed
            .into_iter()
            .filter(|(k, _)| self.after.as_deref().is_none_or(|after| k.as_ref() > after))
            .collect();
        let more = page.len() > self.limit;
        page.truncate(self.limit);
        let next = more
            .then(|| page.last().map(|(k, _)| k.as_ref().to_owned()))
            .flatten();
        (page.into_iter().map(|(_, i)| i).collect(), next)
    }
}

#[derive(Debug, Serialize)]
pub struct Page<'a, T: Serialize> {
    pub items: &'a [T],
    pub next: Option<String>,
}

/// What callers are told of any cursor Herald cannot take, whatever is wrong with it.
pub fn invalid_cursor() -> ApiError {
    FieldError::new(
        crate::domain::ErrorCode::Invalid,
        "query.cursor",
        "the cursor is not one this list gave; start again without it",
    )
    .into()
}

fn binding(list: &str, position: &str) -> [u8; BINDING_BYTES] {
    let digest = Sha256::new()
        .chain_update(b"herald-page-v1\n")
        .chain_update((list.len() as u64).to_be_bytes())
        .chain_update(list.as_bytes())
        .chain_update(position.as_bytes())
        .finalize();
    let mut out = [0u8; BINDING_BYTES];
    out.copy_from_slice(&digest[..BINDING_BYTES]);
    out
}

fn open(cursor: &str, list: &str) -> Result<String, ApiError> {
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_CHARS {
        return Err(invalid_cursor());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid_cursor())?;
    if bytes.len() <= BINDING_BYTES {
        return Err(invalid_cursor());
    }
    let (tag, position) = bytes.split_at(BINDING_BYTES);
    let position = std::str::from_utf8(position).map_err(|_| invalid_cursor())?;
    // Not a secret: a plain comparison is fine.
    if tag != binding(list, position) {
        return Err(invalid_cursor());
    }
    Ok(position.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::BadRequest(f) => f.field,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(
            Paging::parse(None, None, "l").map(|p| p.limit).ok(),
            Some(DEFAULT_LIMIT)
        );
        assert_eq!(
            Paging::parse(Some("100"), None, "l").map(|p| p.limit).ok(),
            Some(100)
        );
        for bad in [
            "0",
            "101",
            "-1",
            "ten",
            "",
            "1e2",
            "99999999999999999999999",
        ] {
            let e = Paging::parse(Some(bad), None, "l").expect_err(bad);
            assert_eq!(field(e), "query.limit", "{bad}");
        }
    }

    #[test]
    fn a_cursor_continues_only_its_own_list() {
        let first = Paging::parse(None, None, "messages#acme#gala").expect("paging");
        let cursor = first.cursor("2026-12-07T10:00:00.000000Z#msg_x");
        let again = Paging::parse(None, Some(&cursor), "messages#acme#gala").expect("paging");
        assert_eq!(
            again.after.as_deref(),
            Some("2026-12-07T10:00:00.000000Z#msg_x")
        );
        let other = Paging::parse(None, Some(&cursor), "messages#globex#gala").expect_err("tenant");
        assert_eq!(field(other), "query.cursor");
    }

    #[test]
    fn malformed_or_edited_cursors_are_refused() {
        let paging = Paging::parse(None, None, "l").expect("paging");
        let good = paging.cursor("12");
        let mut edited = URL_SAFE_NO_PAD.decode(&good).expect("base64");
        let last = edited.len() - 1;
        edited[last] ^= 1;
        let edited = URL_SAFE_NO_PAD.encode(edited);
        let long = "A".repeat(MAX_CURSOR_CHARS + 1);
        for bad in ["", "!!!", "AAAA", "a+b/c==", edited.as_str(), long.as_str()] {
            let e = Paging::parse(None, Some(bad), "l").expect_err(bad);
            assert_eq!(field(e), "query.cursor", "{bad}");
        }
    }

    #[test]
    fn slices_page_through_a_whole_collection_by_key() {
        let items: Vec<u32> = (0..7).rev().collect();
        let key = |i: &u32| format!("{i:04}");
        let mut paging = Paging::parse(Some("3"), None, "l").expect("paging");
        let mut seen = Vec::new();
        for _ in 0..10 {
            let (page, next) = paging.slice(items.clone(), key);
            seen.extend(page);
            match next {
                Some(n) => paging.after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        // An item removed between pages moves nothing else.
        paging.after = Some("0002".into());
        let (page, _) = paging.slice(vec![0, 1, 4, 5], key);
        assert_eq!(page, vec![4, 5]);
    }
}
