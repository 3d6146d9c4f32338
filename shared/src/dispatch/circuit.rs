//! A circuit breaker per provider, per dispatch container: after `threshold` consecutive
//! failures a provider is skipped for `cool_down`, then one trial message is let through
//! (half-open); a success closes the circuit, a failure opens it again. Containers learn
//! independently, which bounds the damage of a sick provider without a shared write per message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::ProviderId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    providers: Mutex<HashMap<ProviderId, Health>>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            providers: Mutex::new(HashMap::new()),
        }
    }

    pub fn state(&self, provider: &ProviderId, now: Instant) -> CircuitState {
        let providers = self
            .providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match providers.get(provider).and_then(|h| h.open_until) {
            None => CircuitState::Closed,
            Some(until) if now < until => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    /// Whether a message may be sent through `provider` now. In the half-open state only one
    /// trial at a time is allowed.
    pub fn allow(&self, provider: &ProviderId, now: Instant) -> bool {
        let mut providers = self
            .providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let health = providers.entry(provider.clone()).or_default();
        match health.open_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) if health.trial_in_flight => false,
            Some(_) => {
                health.trial_in_flight = true;
                true
            }
        }
    }

    pub fn record_success(&self, provider: &ProviderId) {
        let mut providers = self
            .providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        providers.insert(provider.clone(), Health::default());
    }

    /// A failure that says something about the provider (outage, timeout, throttling, refused
    /// credentials), not about the recipient.
    pub fn record_failure(&self, provider: &ProviderId, now: Instant) {
        let mut providers = self
            .providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let health = providers.entry(provider.clone()).or_default();
        health.consecutive_failures += 1;
        health.trial_in_flight = false;
        if health.open_until.is_some() || health.consecutive_failures >= self.threshold {
            health.open_until = Some(now + self.cool_down);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_and_retries_later() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(30));
        let p = ProviderId::generate();
        let t0 = Instant::now();
        for _ in 0..2 {
            breaker.record_failure(&p, t0);
            assert!(breaker.allow(&p, t0), "still closed below the threshold");
        }
        breaker.record_failure(&p, t0);
        assert_eq!(breaker.state(&p, t0), CircuitState::Open);
        assert!(!breaker.allow(&p, t0 + Duration::from_secs(29)));
        let later = t0 + Duration::from_secs(31);
        assert_eq!(breaker.state(&p, later), CircuitState::HalfOpen);
        assert!(breaker.allow(&p, later), "one trial");
        assert!(!breaker.allow(&p, later), "only one trial at a time");
        breaker.record_failure(&p, later);
        assert_eq!(
            breaker.state(&p, later),
            CircuitState::Open,
            "a failed trial opens it again"
        );
        let much_later = later + Duration::from_secs(31);
        assert!(breaker.allow(&p, much_later));
        breaker.record_success(&p);
        assert_eq!(breaker.state(&p, much_later), CircuitState::Closed);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(30));
        let p = ProviderId::generate();
        let now = Instant::now();
        breaker.record_failure(&p, now);
        breaker.record_success(&p);
        breaker.record_failure(&p, now);
        assert_eq!(breaker.state(&p, now), CircuitState::Closed);
    }
}
