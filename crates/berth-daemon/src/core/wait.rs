//! `wait`: until not running, the next exit, or removal.

use std::sync::Arc;

use super::container::Container;
use crate::error::{DaemonError, Result};

/// Docker's wait conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once if not running, else at exit.
    NotRunning,
    /// The next exit, even if not running now.
    NextExit,
    /// Removal.
    Removed,
}

impl WaitCondition {
    /// From the `condition` query parameter.
    pub fn parse(s: Option<&str>) -> Result<WaitCondition> {
        match s.unwrap_or("") {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(DaemonError::BadRequest(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

/// How recent an unclaimed exit may be for a late `next-exit` wait to take it.
const LATE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Counts a waiter while alive (`Lifecycle::next_exit_waiters` counts
/// waiters of every condition: an exit that any waiter saw is claimed).
struct Registered<'a>(&'a Container);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0
            .lifecycle
            .send_modify(|l| l.next_exit_waiters = l.next_exit_waiters.saturating_sub(1));
    }
}

/// Waits for the condition; the exit code of the last exit.
pub async fn wait(c: &Arc<Container>, cond: WaitCondition) -> i64 {
    let mut rx = c.lifecycle.subscribe();
    let mut late = None;
    // Only the exit of a run started moments ago can be the one a late
    // waiter's client started; an older one is a previous run's (`start
    // -a` again right after an exit waits for the new run).
    let recent_start = chrono::DateTime::parse_from_rfc3339(&c.rec().state.started_at)
        .ok()
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .is_some_and(|age| age < LATE_WAIT);
    let _registered = {
        c.lifecycle.send_modify(|l| {
            l.next_exit_waiters += 1;
            if cond == WaitCondition::NextExit
                && !l.running
                && recent_start
                && l.unclaimed_exit.is_some_and(|t| t.elapsed() < LATE_WAIT)
            {
                l.unclaimed_exit = None;
                late = Some(l.exit_code);
            }
        });
        Registered(c)
    };
    if let Some(code) = late {
        return code;
    }
    let start = *rx.borrow_and_update();
    loop {
        let now = *rx.borrow_and_update();
        let done = match cond {
            WaitCondition::NotRunning => !now.running,
            WaitCondition::NextExit => now.exits > start.exits || now.removed,
            WaitCondition::Removed => now.removed,
        };
        if done {
            return now.exit_code;
        }
        if rx.changed().await.is_err() {
            return now.exit_code;
        }
    }
}
