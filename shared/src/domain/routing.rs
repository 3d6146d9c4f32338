//! Provider routing for one message: the order in which a channel's providers are tried.
//! Priority groups come in priority order; inside a group, traffic is split by weight with a
//! pick that is stable per recipient (the same person always lands on the same provider at
//! given weights), which is what gradual provider migration needs.

use sha2::{Digest, Sha256};

use super::resolution::{ResolvedChannel, ResolvedProvider};

/// The active providers of `channel` in the order dispatch should try them for the recipient
/// with `recipient_key` (a stable, non-reversible key of the recipient).
pub fn provider_order<'a>(
    channel: &'a ResolvedChannel,
    recipient_key: &str,
) -> Vec<&'a ResolvedProvider> {
    let mut active: Vec<&ResolvedProvider> = channel.active().collect();
    active.sort_by(|a, b| (a.priority.value, &a.id).cmp(&(b.priority.value, &b.id)));
    let mut ordered = Vec::with_capacity(active.len());
    for group in active.chunk_by(|a, b| a.priority.value == b.priority.value) {
        ordered.extend(order_group(group, recipient_key));
    }
    ordered
}

/// One priority group: the weighted pick first, then the rest by weight (heaviest first).
fn order_group<'a>(
    group: &[&'a ResolvedProvider],
    recipient_key: &str,
) -> Vec<&'a ResolvedProvider> {
    let total: u64 = group.iter().map(|p| u64::from(p.weight.value)).sum();
    let mut rest: Vec<&ResolvedProvider> = group.to_vec();
    let first = if total == 0 {
        None
    } else {
        // Hash the recipient with the group's membership so unrelated groups split independently.
        let mut hasher = Sha256::new();
        hasher.update(recipient_key.as_bytes());
        for p in group {
            hasher.update(p.id.as_str().as_bytes());
        }
        let digest = hasher.finalize();
        let mut point_bytes = [0u8; 8];
        point_bytes.copy_from_slice(&digest[..8]);
        let point = u64::from_be_bytes(point_bytes) % total;
        let mut cumulative = 0u64;
        group.iter().position(|p| {
            cumulative += u64::from(p.weight.value);
            point < cumulative
        })
    };
    let picked = first.map(|i| rest.remove(i));
    rest.sort_by(|a, b| {
        b.weight
            .value
            .cmp(&a.weight.value)
            .then_with(|| a.id.cmp(&b.id))
    });
    picked.into_iter().chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::ProviderId;
    use crate::domain::provider::{ProviderKind, ProviderSettings, SmsType};
    use crate::domain::resolution::{Layer, Sourced};

    fn provider(priority: u32, weight: u32, active: bool) -> ResolvedProvider {
        let sourced = |value| Sourced {
            value,
            source: Layer::Tenant,
            overrides: None,
        };
        ResolvedProvider {
            id: ProviderId::generate(),
            kind: ProviderKind::Sns,
            name: "p".into(),
            source: Layer::Tenant,
            settings: ProviderSettings::Sns {
                sender_id: None,
                sms_type: SmsType::Transactional,
            },
            credentials: None,
            priority: sourced(priority),
            weight: sourced(weight),
            active: Sourced {
                value: active,
                source: Layer::Tenant,
                overrides: None,
            },
            rate_limit_per_second: None,
            receipt_token: None,
        }
    }

    fn channel(providers: Vec<ResolvedProvider>) -> ResolvedChannel {
        ResolvedChannel {
            customized: false,
            providers,
        }
    }

    #[test]
    fn priority_groups_come_in_order_and_inactive_providers_never() {
        let c = channel(vec![
            provider(2, 100, true),
            provider(1, 100, true),
            provider(1, 0, false),
        ]);
        let order = provider_order(&c, "someone");
        assert_eq!(order.len(), 2);
        assert_eq!(order[0].priority.value, 1);
        assert_eq!(order[1].priority.value, 2);
    }

    #[test]
    fn weighted_split_is_within_two_percent_over_ten_thousand_recipients_and_stable() {
        let c = channel(vec![
            provider(1, 30, true),
            provider(1, 70, true),
            provider(2, 100, true),
        ]);
        let mut counts: HashMap<ProviderId, usize> = HashMap::new();
        for i in 0..10_000 {
            let key = format!("recipient-{i}");
            let first = provider_order(&c, &key)[0].id.clone();
            assert_eq!(
                provider_order(&c, &key)[0].id,
                first,
                "stable per recipient"
            );
            *counts.entry(first).or_default() += 1;
        }
        let share =
            |i: usize| counts.get(&c.providers[i].id).copied().unwrap_or(0) as f64 / 10_000.0;
        assert!(
            (share(0) - 0.30).abs() <= 0.02,
            "30% provider got {}",
            share(0)
        );
        assert!(
            (share(1) - 0.70).abs() <= 0.02,
            "70% provider got {}",
            share(1)
        );
        assert_eq!(
            share(2),
            0.0,
            "the fallback group is never first while the primary group is active"
        );
    }

    #[test]
    fn zero_weight_providers_are_failover_only() {
        let c = channel(vec![provider(1, 100, true), provider(1, 0, true)]);
        for i in 0..200 {
            let order = provider_order(&c, &format!("r{i}"));
            assert_eq!(order[0].weight.value, 100);
            assert_eq!(order.len(), 2);
        }
    }
}
