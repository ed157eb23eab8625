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

/// Counts a `next-exit` waiter while alive.
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
    let _registered = (cond == WaitCondition::NextExit).then(|| {
        c.lifecycle.send_modify(|l| {
            l.next_exit_waiters += 1;
            if !l.running && l.unclaimed_exit.is_some_and(|t| t.elapsed() < LATE_WAIT) {
                l.unclaimed_exit = None;
                late = Some(l.exit_code);
            }
        });
        Registered(c)
    });
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
