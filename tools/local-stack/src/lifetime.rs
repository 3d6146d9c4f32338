//! Tying a local helper process's life to another's (`--exit-with-parent[=PID]`) and to the
//! usual stop signals, so nothing a test or the local run started outlives it.

use std::time::Duration;

use anyhow::{Context as _, bail};

/// The process whose exit ends ours.
#[derive(Debug, PartialEq, Eq)]
pub enum Watched {
    /// Whoever started us: gone once we are re-parented.
    Parent,
    /// A given process id (Linux: watched through `/proc`).
    Pid(u32),
}

impl Watched {
    /// Reads `--exit-with-parent` (no value: the parent) or `--exit-with-parent=PID`.
    pub fn from_flag(value: Option<&str>) -> anyhow::Result<Watched> {
        let Some(pid) = value else {
            return Ok(Watched::Parent);
        };
        let pid: u32 = pid
            .parse()
            .context("--exit-with-parent=PID expects a process id")?;
        if !std::path::Path::new("/proc/self").exists() {
            bail!("--exit-with-parent=PID needs /proc; use --exit-with-parent");
        }
        if !process_alive(pid) {
            bail!("--exit-with-parent={pid}: no such process");
        }
        Ok(Watched::Pid(pid))
    }
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

/// Resolves on SIGTERM or Ctrl-C, naming which.
pub async fn terminated() -> anyhow::Result<&'static str> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = sigterm.recv() => Ok("SIGTERM"),
        result = tokio::signal::ctrl_c() => result.map(|()| "interrupt").map_err(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_the_watched_process() {
        assert_eq!(Watched::from_flag(None).ok(), Some(Watched::Parent));
        let me = std::process::id();
        assert_eq!(
            Watched::from_flag(Some(&me.to_string())).ok(),
            Some(Watched::Pid(me))
        );
        assert!(Watched::from_flag(Some("not-a-pid")).is_err());
        assert!(process_alive(me));
        assert!(!process_alive(u32::MAX));
    }
}
