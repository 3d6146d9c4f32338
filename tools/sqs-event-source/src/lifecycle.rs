//! When the event source stops: SIGTERM or Ctrl-C, the watched process going away, or no
//! message for a while.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The process whose exit ends ours.
#[derive(Debug, PartialEq, Eq)]
pub enum Watched {
    /// Whoever started us: gone once we are re-parented.
    Parent,
    /// A given process id (Linux: watched through `/proc`).
    Pid(u32),
}

/// Whether `pid` still runs (a zombie has exited; only its reaping is pending).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Resolves once the watched process is gone.
pub async fn watched_exit(watched: &Watched) {
    let parent = std::os::unix::process::parent_id();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let gone = match watched {
            Watched::Parent => std::os::unix::process::parent_id() != parent,
            Watched::Pid(pid) => !process_alive(*pid),
        };
        if gone {
            return;
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn terminated() -> anyhow::Result<&'static str> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = sigterm.recv() => Ok("SIGTERM"),
        result = tokio::signal::ctrl_c() => result.map(|()| "interrupt").map_err(Into::into),
    }
}

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

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}
