//! When the event source stops: SIGTERM or Ctrl-C, the watched process going away, or no
//! message for a while.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use local_stack::lifetime::{Watched, terminated, watched_exit};

/// When the pollers last had messages, and how many batches are in flight.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<(Instant, usize)>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            state: Mutex::new((Instant::now(), 0)),
        }
    }
}

/// A batch in flight; its end counts as activity.
#[derive(Debug)]
pub struct Busy<'a>(&'a Activity);

impl Activity {
    pub fn busy(&self) -> Busy<'_> {
        self.update(|state| state.1 += 1);
        Busy(self)
    }

    fn update(&self, change: impl FnOnce(&mut (Instant, usize))) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut state);
        state.0 = Instant::now();
    }

    /// How long nothing has happened (zero while a batch is in flight).
    fn idle_for(&self) -> Duration {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.1 > 0 {
            Duration::ZERO
        } else {
            state.0.elapsed()
        }
    }

    /// Resolves once no message has been received for `limit`.
    pub async fn idle(&self, limit: Duration) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            if self.idle_for() >= limit {
                return;
            }
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.update(|state| state.1 = state.1.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_in_flight_is_never_idle() {
        let activity = Activity::default();
        let busy = activity.busy();
        assert_eq!(activity.idle_for(), Duration::ZERO);
        drop(busy);
        assert!(activity.idle_for() < Duration::from_secs(1));
    }
}
