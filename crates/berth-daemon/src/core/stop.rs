//! `stop`, `kill` and `restart`.

use std::sync::Arc;
use std::time::Duration;

use berth_runtime::protocol::Request;
use nix::sys::signal::Signal;

use super::container::Container;
use super::Daemon;
use crate::error::{DaemonError, Result};

/// Parses a signal as Docker accepts it: `9`, `KILL`, `SIGKILL`, `sigkill`.
pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if Signal::try_from(n).is_ok() {
            return Ok(n);
        }
    } else {
        let up = s.to_ascii_uppercase();
        let name = if up.starts_with("SIG") {
            up
        } else {
            format!("SIG{up}")
        };
        if let Ok(sig) = name.parse::<Signal>() {
            return Ok(sig as i32);
        }
    }
    Err(DaemonError::BadRequest(format!("Invalid signal: {s}")))
}

/// Marks a running, paused or restarting container as stopped by hand and
/// says which of those it was, in one go: an exit being recorded meanwhile
/// (which decides on a restart under the same lock) either sees the mark
/// or has already turned the status to `restarting` for the caller to
/// cancel. A running or paused one is marked only when it `can_be_signalled`.
fn mark_manually_stopped(c: &Container, can_be_signalled: bool) -> super::Status {
    let mut r = c.rec();
    let status = r.state.status;
    match status {
        super::Status::Restarting => r.state.manually_stopped = true,
        super::Status::Running | super::Status::Paused if can_be_signalled => {
            r.state.manually_stopped = true
        }
        _ => {}
    }
    status
}

impl Daemon {
    /// Sends a signal; 409 when the container is not running.
    pub async fn kill(&self, c: &Arc<Container>, signal: Option<&str>) -> Result<()> {
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        let client = c.shim_client();
        let status = mark_manually_stopped(c, client.is_some());
        if status == super::Status::Restarting {
            // Nothing runs: telling the policy to stop is the whole kill.
            self.cancel_pending_restart(c);
            return Ok(());
        }
        let client = client.filter(|_| status.is_active()).ok_or_else(|| {
            DaemonError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                c.name(),
                c.id
            ))
        })?;
        c.cancel_restart();
        // Subscribed before the signal, so the exit cannot be missed.
        let down = c.stopped();
        client.request(&Request::Kill { signal: sig }).await?;
        self.container_event(c, "kill", &[("signal", &sig.to_string())]);
        self.thaw_if_paused(c).await;
        if sig == libc::SIGKILL {
            // As dockerd: a SIGKILL answers once the container is down, so
            // `kill x && rm x` works.
            let _ = tokio::time::timeout(Duration::from_secs(10), down).await;
        }
        Ok(())
    }

    /// Sends the stop signal, waits up to `timeout` seconds (`None`: the
    /// container's StopTimeout or 10; negative: forever), then SIGKILL.
    pub async fn stop(
        &self,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let _op = c.op.lock().await;
        self.stop_locked(c, timeout, signal).await?;
        self.container_event(c, "stop", &[]);
        Ok(())
    }

    pub(super) async fn stop_locked(
        &self,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        c.cancel_restart();
        match mark_manually_stopped(c, true) {
            super::Status::Restarting => {
                self.cancel_pending_restart(c);
                return Ok(());
            }
            super::Status::Running | super::Status::Paused => {}
            _ => return Err(DaemonError::NotModified),
        }
        let (stop_signal, default_timeout) = {
            let r = c.rec();
            (
                r.config
                    .stop_signal
                    .clone()
                    .unwrap_or_else(|| "SIGTERM".into()),
                r.config.stop_timeout.unwrap_or(10),
            )
        };
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or(&stop_signal))?;
        let t = timeout.unwrap_or(default_timeout);
        let stopped = c.stopped();
        if let Some(client) = c.shim_client() {
            if client.request(&Request::Kill { signal: sig }).await.is_ok() {
                self.container_event(c, "kill", &[("signal", &sig.to_string())]);
            }
        }
        self.thaw_if_paused(c).await;
        if t < 0 {
            stopped.await;
            return Ok(());
        }
        if tokio::time::timeout(Duration::from_secs(t as u64), stopped)
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.kill_and_wait(c).await
    }

    /// SIGKILL, then wait for the exit to be recorded.
    pub(super) async fn kill_and_wait(&self, c: &Arc<Container>) -> Result<()> {
        let gone = c.stopped();
        if let Some(client) = c.shim_client() {
            let sent = client
                .request(&Request::Kill {
                    signal: libc::SIGKILL,
                })
                .await;
            if sent.is_ok() {
                self.container_event(c, "kill", &[("signal", "9")]);
            }
        }
        tokio::time::timeout(Duration::from_secs(30), gone)
            .await
            .map_err(|_| {
                DaemonError::Internal(format!("container {} did not exit after SIGKILL", c.id))
            })
    }

    /// A container waiting out its restart back-off: stays stopped.
    fn cancel_pending_restart(&self, c: &Arc<Container>) {
        c.cancel_restart();
        {
            let mut r = c.rec();
            r.state.status = super::Status::Exited;
            r.state.manually_stopped = true;
        }
        let _ = self.persist(c);
    }

    /// A paused container cannot act on a signal: thaw it after sending one.
    async fn thaw_if_paused(&self, c: &Arc<Container>) {
        if c.status() == super::Status::Paused {
            if let Err(e) = self.thaw(c).await {
                tracing::warn!(id = %c.id, "thawing to deliver a signal: {e}");
            }
            c.rec().state.status = super::Status::Running;
        }
    }

    /// Stops (if running) and starts again.
    pub async fn restart(
        self: &Arc<Self>,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        match self.stop(c, timeout, signal).await {
            Ok(()) | Err(DaemonError::NotModified) => {}
            Err(e) => return Err(e),
        }
        match self.start(c).await {
            Ok(()) | Err(DaemonError::NotModified) => {
                self.container_event(c, "restart", &[]);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert_eq!(
            parse_signal("NOPE").unwrap_err().to_string(),
            "Invalid signal: NOPE"
        );
        assert!(parse_signal("99").is_err());
    }
}
