//! Restart policies: `no`, `on-failure[:N]`, `always`, `unless-stopped`,
//! with dockerd's back-off (100 ms doubling to 1 min, reset after a run of
//! 10 s or more).

use std::sync::Arc;
use std::time::Duration;

use super::container::{Container, Record, Status};
use super::Daemon;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
const STABLE_RUN: Duration = Duration::from_secs(10);

/// Whether the policy wants a restart after this exit (dockerd's
/// RestartManager.ShouldRestart, minus the back-off).
pub(super) fn wants_restart(rec: &Record, code: i64) -> bool {
    let p = &rec.host_config.restart_policy;
    if rec.state.manually_stopped || rec.host_config.auto_remove {
        return false;
    }
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0 && (p.maximum_retry_count <= 0 || rec.restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// What a daemon start does for a stopped container (dockerd's
/// Container.ShouldRestart at restore): `always` comes back even after a
/// manual stop, `unless-stopped` only if it was not stopped by hand.
pub(super) fn restart_at_daemon_start(rec: &Record) -> bool {
    let p = &rec.host_config.restart_policy;
    match p.name.as_str() {
        "always" => true,
        "unless-stopped" => !rec.state.manually_stopped,
        "on-failure" => {
            !rec.state.manually_stopped
                && rec.state.exit_code != 0
                && (p.maximum_retry_count <= 0 || rec.restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

fn ran_for(rec: &Record) -> Duration {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(&rec.state.started_at), parse(&rec.state.finished_at)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// Settles an exit under the record's lock: `restarting`, with the epoch
/// the restart belongs to, when the policy wants another run; `exited`
/// otherwise. Deciding and marking at once (dockerd does both under the
/// container's lock) means a concurrent `stop` or `kill` sees either the
/// pending restart, which it cancels, or none at all: never `exited` with a
/// restart still to be scheduled behind its back.
pub(super) fn settle_exit(c: &Container, r: &mut Record, code: i64) -> Option<u64> {
    if wants_restart(r, code) {
        r.state.status = Status::Restarting;
        Some(c.restart.lock().unwrap_or_else(|p| p.into_inner()).epoch)
    } else {
        r.state.status = Status::Exited;
        None
    }
}

impl Daemon {
    /// After an exit [`settle_exit`] marked `restarting`: starts the
    /// container again after the back-off, unless a stop, kill or rm (or the
    /// daemon's own start) has moved the epoch on since.
    pub(super) fn schedule_restart(self: &Arc<Self>, c: &Arc<Container>, epoch: u64) {
        let delay = {
            let rec = c.rec();
            let mut rs = c.restart.lock().unwrap_or_else(|p| p.into_inner());
            if ran_for(&rec) >= STABLE_RUN {
                rs.timeout = Duration::ZERO;
            }
            rs.timeout = if rs.timeout.is_zero() {
                FIRST_DELAY
            } else {
                (rs.timeout * 2).min(MAX_DELAY)
            };
            rs.timeout
        };
        let d = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let op = c.op.lock().await;
            let current = c.restart.lock().unwrap_or_else(|p| p.into_inner()).epoch;
            if current != epoch || c.status() != Status::Restarting || c.lifecycle.borrow().removed
            {
                return;
            }
            c.rec().restart_count += 1;
            tracing::info!(id = %c.id, ?delay, "restarting by policy");
            if let Err((code, e)) = d.start_locked(&c).await {
                tracing::warn!(id = %c.id, "restart failed: {e}");
                let again = {
                    let mut r = c.rec();
                    r.state.exit_code = code;
                    r.state.error = e.to_string();
                    settle_exit(&c, &mut r, code)
                };
                let _ = d.persist(&c);
                drop(op);
                if let Some(epoch) = again {
                    d.schedule_restart(&c, epoch);
                }
            }
        });
    }

    /// At daemon start: containers whose policy brings them back.
    pub(super) async fn resume_policies(self: &Arc<Self>) {
        for c in self.containers() {
            // Under the container's lock: a restart that an exit recorded by
            // reconnect() has just scheduled must not start it a second time.
            let _op = c.op.lock().await;
            let rec = c.snapshot();
            let stopped = matches!(rec.state.status, Status::Exited | Status::Restarting);
            if !stopped || !restart_at_daemon_start(&rec) {
                continue;
            }
            // As dockerd's containerStart with resetRestartManager, and a
            // fresh back-off.
            c.renew_restart_policy();
            c.restart.lock().unwrap_or_else(|p| p.into_inner()).timeout = Duration::ZERO;
            c.rec().state.status = Status::Exited;
            if let Err((code, e)) = self.start_locked(&c).await {
                tracing::warn!(id = %c.id, "restart policy at daemon start: {e}");
                {
                    let mut r = c.rec();
                    r.state.exit_code = code;
                    r.state.error = e.to_string();
                }
                let _ = self.persist(&c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::container::RestartPolicy;

    fn rec(policy: &str, max: i64, count: i64, manual: bool) -> Record {
        let mut r = Record::default();
        r.host_config.restart_policy = RestartPolicy {
            name: policy.into(),
            maximum_retry_count: max,
        };
        r.restart_count = count;
        r.state.manually_stopped = manual;
        r
    }

    #[test]
    fn policies() {
        assert!(!wants_restart(&rec("no", 0, 0, false), 1));
        assert!(wants_restart(&rec("always", 0, 0, false), 0));
        assert!(!wants_restart(&rec("always", 0, 0, true), 0));
        assert!(wants_restart(&rec("unless-stopped", 0, 5, false), 0));
        assert!(wants_restart(&rec("on-failure", 0, 99, false), 1));
        assert!(!wants_restart(&rec("on-failure", 0, 0, false), 0));
        assert!(wants_restart(&rec("on-failure", 3, 2, false), 1));
        assert!(!wants_restart(&rec("on-failure", 3, 3, false), 1));
        assert!(restart_at_daemon_start(&rec("always", 0, 0, true)));
        assert!(!restart_at_daemon_start(&rec("unless-stopped", 0, 0, true)));
        assert!(restart_at_daemon_start(&rec("unless-stopped", 0, 0, false)));
    }
}
