//! Whether Herald may send a message to its recipient now, and if not now, when: the receipts'
//! opt-outs and suppressions, the consent ledger, preferences and quiet hours, read together in
//! one batched request and judged by [`Standing::verdict`]. The send path asks before anything
//! is written; dispatch asks again right before the provider call, so an opt-out, bounce,
//! withdrawal or new quiet hours that arrive while a message waits in its queue (a backoff, a
//! quiet-hours hold) still stop or hold it.

use time::OffsetDateTime;

use crate::domain::preferences::{Standing, Verdict};
use crate::domain::{Category, Channel, TenantId};
use crate::store::{ConsentStore, StoreResult};

/// One message to judge: its channel, category, recipient key and when it would go out.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub channel: Channel,
    pub category: Category,
    pub recipient_key: &'a str,
    pub at: OffsetDateTime,
}

/// The verdict on each of `asked`, in order.
pub async fn verdicts(
    store: &dyn ConsentStore,
    tenant: &TenantId,
    asked: &[Asked<'_>],
) -> StoreResult<Vec<Verdict>> {
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<(Channel, Category, String)> = asked
        .iter()
        .map(|a| (a.channel, a.category, a.recipient_key.to_owned()))
        .collect();
    let standings = store.standings(tenant, &keys).await?;
    let nothing = Standing::default();
    Ok(asked
        .iter()
        .map(|a| {
            standings
                .get(a.recipient_key)
                .unwrap_or(&nothing)
                .verdict(a.channel, a.category, a.at)
        })
        .collect())
}
