//! Per-provider send-rate limits. A provider's account rate (`rate_limit_per_second`) is shared
//! by every dispatch container, so each container keeps a GCRA limiter at the rate divided by
//! the function's reserved concurrency (`DISPATCH_MAX_CONCURRENCY`): together they never exceed
//! the account's rate. No bursts: sends are spaced evenly, as providers meter them.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::domain::ProviderId;

#[derive(Debug)]
pub struct RateLimits {
    containers: u32,
    limiters: Mutex<HashMap<(ProviderId, u32), Arc<DefaultDirectRateLimiter>>>,
}

impl RateLimits {
    /// `containers`: how many dispatch containers may run at once for a channel.
    pub fn new(containers: u32) -> Self {
        Self {
            containers: containers.max(1),
            limiters: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_env() -> Self {
        Self::new(
            std::env::var("DISPATCH_MAX_CONCURRENCY")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
        )
    }

    /// Waits for a send slot of `provider` (account rate `per_second`) for at most `max_wait`;
    /// `false` when none comes in time (the message then goes elsewhere or back to the queue).
    pub async fn acquire(
        &self,
        provider: &ProviderId,
        per_second: u32,
        max_wait: Duration,
    ) -> bool {
        let share =
            NonZeroU32::new((per_second / self.containers).max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter = {
            let mut limiters = self
                .limiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            limiters
                .entry((provider.clone(), per_second))
                .or_insert_with(|| {
                    Arc::new(RateLimiter::direct(
                        Quota::per_second(share).allow_burst(NonZeroU32::MIN),
                    ))
                })
                .clone()
        };
        let clock = DefaultClock::default();
        let mut waited = Duration::ZERO;
        loop {
            match limiter.check() {
                Ok(()) => return true,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(clock.now());
                    if waited + wait > max_wait {
                        return false;
                    }
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn sends_are_spaced_to_the_containers_share_of_the_rate() {
        let limits = RateLimits::new(2);
        let p = ProviderId::generate();
        let started = Instant::now();
        // 20/s across 2 containers = 10/s here: 11 sends take at least ~1 s.
        for _ in 0..11 {
            assert!(limits.acquire(&p, 20, Duration::from_secs(5)).await);
        }
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn gives_up_when_no_slot_comes_in_time() {
        let limits = RateLimits::new(1);
        let p = ProviderId::generate();
        assert!(limits.acquire(&p, 1, Duration::ZERO).await);
        assert!(!limits.acquire(&p, 1, Duration::from_millis(10)).await);
    }
}
