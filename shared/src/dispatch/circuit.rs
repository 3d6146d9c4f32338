//! A circuit breaker per provider, per dispatch container: after `threshold` consecutive
//! failures a provider is skipped for `cool_down`, then one trial message is let through
//! (half-open); a success closes the circuit, a failure opens it again. Containers learn
//! independently, which bounds the damage of a sick provider without a shared write per message.
//!
//! Sending through a provider takes a [`Permit`]; its outcome is recorded through the permit,
//! and a permit dropped without one (the send was not attempted: a rate-limit wait, an early
//! return) gives a half-open trial slot back, so no path can leave a trial in flight for good.
//!
//! Every change of state (opened, opened again, closed) starts a new generation, and a permit
//! speaks only for the generation it was given in: a slow send allowed while the circuit was
//! closed that ends after it opened can neither close it nor free the half-open trial's slot.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
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
    generation: u64,
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

    fn providers(&self) -> MutexGuard<'_, HashMap<ProviderId, Health>> {
        self.providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self, provider: &ProviderId, now: Instant) -> CircuitState {
        match self.providers().get(provider).and_then(|h| h.open_until) {
            None => CircuitState::Closed,
            Some(until) if now < until => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    /// A permit to send through `provider` now, or `None` while its circuit is open. In the
    /// half-open state only one trial at a time holds a permit.
    pub fn allow(&self, provider: &ProviderId, now: Instant) -> Option<Permit<'_>> {
        let mut providers = self.providers();
        let health = providers.entry(provider.clone()).or_default();
        let trial = match health.open_until {
            None => false,
            Some(until) if now < until => return None,
            Some(_) if health.trial_in_flight => return None,
            Some(_) => {
                health.trial_in_flight = true;
                true
            }
        };
        Some(Permit {
            breaker: self,
            provider: provider.clone(),
            generation: health.generation,
            trial,
            recorded: false,
        })
    }

    /// The health of `provider` if `permit`'s generation is still the current one.
    fn current<'g>(
        providers: &'g mut HashMap<ProviderId, Health>,
        permit: &Permit<'_>,
    ) -> Option<&'g mut Health> {
        providers
            .get_mut(&permit.provider)
            .filter(|h| h.generation == permit.generation)
    }

    /// The provider answered: the circuit closes and the count starts again.
    fn answered(&self, permit: &Permit<'_>) {
        let mut providers = self.providers();
        let Some(health) = Self::current(&mut providers, permit) else {
            return;
        };
        if health.open_until.take().is_some() {
            health.generation += 1;
        }
        health.consecutive_failures = 0;
        health.trial_in_flight = false;
    }

    fn failed(&self, permit: &Permit<'_>, now: Instant) {
        let mut providers = self.providers();
        let Some(health) = Self::current(&mut providers, permit) else {
            return;
        };
        health.consecutive_failures += 1;
        if permit.trial {
            health.trial_in_flight = false;
        }
        if health.open_until.is_some() || health.consecutive_failures >= self.threshold {
            health.open_until = Some(now + self.cool_down);
            health.generation += 1;
        }
    }

    /// A trial that ended without telling anything about the provider: the next message may
    /// try (the circuit stays half-open).
    fn release_trial(&self, permit: &Permit<'_>) {
        if let Some(health) = Self::current(&mut self.providers(), permit) {
            health.trial_in_flight = false;
        }
    }
}

/// Leave to send one message through a provider. Record how it went with
/// [`accepted`](Permit::accepted), [`recipient_refused`](Permit::recipient_refused) or
/// [`provider_failed`](Permit::provider_failed); dropped without an outcome, it only gives its
/// half-open trial slot back.
#[derive(Debug)]
#[must_use = "a permit records the outcome of the send it allows"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    provider: ProviderId,
    generation: u64,
    trial: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// Whether this permit is the half-open circuit's one trial.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// The provider took the message: the circuit closes.
    pub fn accepted(mut self) {
        self.recorded = true;
        self.breaker.answered(&self);
    }

    /// The provider refused the recipient (a permanent error about the address or content): it
    /// answered, so it works and the circuit closes.
    pub fn recipient_refused(mut self) {
        self.recorded = true;
        self.breaker.answered(&self);
    }

    /// A failure that says something about the provider (outage, timeout, throttling, refused
    /// credentials), not about the recipient: counted, and a trial's failure opens it again.
    pub fn provider_failed(mut self, now: Instant) {
        self.recorded = true;
        self.breaker.failed(&self, now);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            self.breaker.release_trial(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(30);

    /// A breaker whose circuit for the returned provider is half-open at the returned time.
    fn half_open() -> (CircuitBreaker, ProviderId, Instant) {
        let breaker = CircuitBreaker::new(1, COOL_DOWN);
        let p = ProviderId::generate();
        let t0 = Instant::now();
        breaker.allow(&p, t0).expect("closed").provider_failed(t0);
        let later = t0 + COOL_DOWN + Duration::from_secs(1);
        assert_eq!(breaker.state(&p, later), CircuitState::HalfOpen);
        (breaker, p, later)
    }

    #[test]
    fn opens_after_repeated_failures_and_retries_later() {
        let breaker = CircuitBreaker::new(3, COOL_DOWN);
        let p = ProviderId::generate();
        let t0 = Instant::now();
        for _ in 0..2 {
            breaker.allow(&p, t0).expect("closed").provider_failed(t0);
            assert!(
                breaker.allow(&p, t0).is_some(),
                "still closed below the threshold"
            );
        }
        breaker.allow(&p, t0).expect("closed").provider_failed(t0);
        assert_eq!(breaker.state(&p, t0), CircuitState::Open);
        assert!(breaker.allow(&p, t0 + Duration::from_secs(29)).is_none());
        let later = t0 + Duration::from_secs(31);
        assert_eq!(breaker.state(&p, later), CircuitState::HalfOpen);
        let trial = breaker.allow(&p, later).expect("one trial");
        assert!(trial.is_trial());
        assert!(
            breaker.allow(&p, later).is_none(),
            "only one trial at a time"
        );
        trial.provider_failed(later);
        assert_eq!(
            breaker.state(&p, later),
            CircuitState::Open,
            "a failed trial opens it again"
        );
        let much_later = later + Duration::from_secs(31);
        breaker.allow(&p, much_later).expect("trial").accepted();
        assert_eq!(breaker.state(&p, much_later), CircuitState::Closed);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = CircuitBreaker::new(2, COOL_DOWN);
        let p = ProviderId::generate();
        let now = Instant::now();
        breaker.allow(&p, now).expect("closed").provider_failed(now);
        breaker.allow(&p, now).expect("closed").accepted();
        breaker.allow(&p, now).expect("closed").provider_failed(now);
        assert_eq!(breaker.state(&p, now), CircuitState::Closed);
    }

    #[test]
    fn an_accepted_trial_closes_the_circuit() {
        let (breaker, p, now) = half_open();
        breaker.allow(&p, now).expect("trial").accepted();
        assert_eq!(breaker.state(&p, now), CircuitState::Closed);
        assert!(!breaker.allow(&p, now).expect("closed").is_trial());
    }

    #[test]
    fn a_trial_refusing_the_recipient_closes_the_circuit() {
        let (breaker, p, now) = half_open();
        breaker.allow(&p, now).expect("trial").recipient_refused();
        assert_eq!(
            breaker.state(&p, now),
            CircuitState::Closed,
            "the provider answered"
        );
        let (first, second) = (breaker.allow(&p, now), breaker.allow(&p, now));
        assert!(
            first.is_some() && second.is_some(),
            "no trial limit once closed"
        );
    }

    #[test]
    fn a_trial_the_provider_failed_opens_the_circuit_again() {
        let (breaker, p, now) = half_open();
        breaker.allow(&p, now).expect("trial").provider_failed(now);
        assert_eq!(breaker.state(&p, now), CircuitState::Open);
        assert!(breaker.allow(&p, now + COOL_DOWN / 2).is_none());
        let after = now + COOL_DOWN + Duration::from_secs(1);
        assert!(
            breaker.allow(&p, after).expect("next trial").is_trial(),
            "after another cool-down, another trial"
        );
    }

    #[test]
    fn a_trial_dropped_without_an_outcome_frees_the_slot() {
        let (breaker, p, now) = half_open();
        let trial = breaker.allow(&p, now).expect("trial");
        assert!(breaker.allow(&p, now).is_none(), "one trial at a time");
        // Not attempted (a rate-limit wait, an early return): nothing learnt about the provider.
        drop(trial);
        assert_eq!(breaker.state(&p, now), CircuitState::HalfOpen);
        let next = breaker
            .allow(&p, now)
            .expect("the next message is the trial");
        assert!(next.is_trial());
    }

    #[test]
    fn a_closed_permit_dropped_without_an_outcome_changes_nothing() {
        let breaker = CircuitBreaker::new(2, COOL_DOWN);
        let p = ProviderId::generate();
        let now = Instant::now();
        breaker.allow(&p, now).expect("closed").provider_failed(now);
        drop(breaker.allow(&p, now).expect("closed"));
        breaker.allow(&p, now).expect("closed").provider_failed(now);
        assert_eq!(
            breaker.state(&p, now),
            CircuitState::Open,
            "the dropped permit neither reset nor added to the count"
        );
    }

    #[test]
    fn a_send_allowed_before_the_circuit_opened_cannot_close_it() {
        let breaker = CircuitBreaker::new(2, COOL_DOWN);
        let p = ProviderId::generate();
        let now = Instant::now();
        let slow = breaker.allow(&p, now).expect("closed");
        breaker.allow(&p, now).expect("closed").provider_failed(now);
        breaker.allow(&p, now).expect("closed").provider_failed(now);
        assert_eq!(breaker.state(&p, now), CircuitState::Open);
        slow.accepted();
        assert_eq!(
            breaker.state(&p, now),
            CircuitState::Open,
            "only the half-open trial decides"
        );
    }

    #[test]
    fn a_stale_failure_neither_frees_the_trial_slot_nor_reopens() {
        let breaker = CircuitBreaker::new(1, COOL_DOWN);
        let p = ProviderId::generate();
        let t0 = Instant::now();
        let slow = breaker.allow(&p, t0).expect("closed");
        breaker.allow(&p, t0).expect("closed").provider_failed(t0);
        let later = t0 + COOL_DOWN + Duration::from_secs(1);
        let trial = breaker.allow(&p, later).expect("trial");
        slow.provider_failed(later);
        assert_eq!(breaker.state(&p, later), CircuitState::HalfOpen);
        assert!(
            breaker.allow(&p, later).is_none(),
            "the trial still holds the only slot"
        );
        trial.accepted();
        assert_eq!(breaker.state(&p, later), CircuitState::Closed);
    }

    #[test]
    fn each_trial_in_turn_holds_and_gives_back_the_one_slot() {
        let (breaker, p, now) = half_open();
        let first = breaker.allow(&p, now).expect("trial");
        first.provider_failed(now);
        let after = now + COOL_DOWN + Duration::from_secs(1);
        let second = breaker.allow(&p, after).expect("next trial");
        assert!(breaker.allow(&p, after).is_none());
        drop(second);
        assert!(
            breaker
                .allow(&p, after)
                .expect("slot given back")
                .is_trial()
        );
    }
}
