//! Health checks (`HEALTHCHECK`, `--health-*`): a per-container task runs
//! the probe as an exec on schedule and keeps `State.Health` as Docker does.

use std::sync::Arc;
use std::time::Duration;

use berth_api::container::{ContainerConfig, HealthConfig};
use serde::{Deserialize, Serialize};

use super::container::Container;
use super::exec::ExecConfig;
use super::{now_rfc3339, Daemon, Status};
use crate::error::{DaemonError, Result};

/// `State.Health.Status` values.
pub const STARTING: &str = "starting";
/// Last probes succeeded.
pub const HEALTHY: &str = "healthy";
/// `Retries` probes failed in a row (or the monitor stopped).
pub const UNHEALTHY: &str = "unhealthy";

/// Docker keeps this many probe results.
const MAX_LOG_ENTRIES: usize = 5;
/// Docker keeps this much of a probe's output.
const MAX_OUTPUT_LEN: usize = 4096;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;

/// `State.Health` of inspect (persisted with the record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// starting, healthy or unhealthy.
    pub status: String,
    /// Consecutive failures.
    pub failing_streak: i64,
    /// The last probes, oldest first.
    pub log: Vec<HealthLog>,
}

/// One probe result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLog {
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// 0 healthy, anything else unhealthy; -1 when the probe could not run
    /// or timed out.
    pub exit_code: i64,
    /// Output, at most 4096 bytes (then "...").
    pub output: String,
}

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

/// The check of a container, if it has one that is not `NONE`.
fn check_of(config: &ContainerConfig) -> Option<HealthConfig> {
    let hc = config.healthcheck.clone()?;
    match hc.test.first().map(String::as_str) {
        Some("CMD") | Some("CMD-SHELL") if hc.test.len() > 1 => Some(hc),
        _ => None,
    }
}

/// The probe's argv: `CMD-SHELL` goes through the container's shell.
fn probe_command(hc: &HealthConfig, config: &ContainerConfig) -> Vec<String> {
    let rest = hc.test[1..].to_vec();
    if hc.test[0] == "CMD-SHELL" {
        let mut cmd = match &config.shell {
            Some(s) if !s.0.is_empty() => s.0.clone(),
            _ => vec!["/bin/sh".to_string(), "-c".to_string()],
        };
        cmd.extend(rest);
        cmd
    } else {
        rest
    }
}

/// Docker's create-time checks of `Config.Healthcheck` (400 errors).
pub(super) fn validate(config: &ContainerConfig) -> Result<()> {
    let Some(hc) = config.healthcheck.as_ref() else {
        return Ok(());
    };
    const MIN: i64 = 1_000_000; // 1ms
    for (name, ns) in [
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        ("StartInterval", hc.start_interval),
    ] {
        if ns != 0 && ns < MIN {
            return Err(DaemonError::BadRequest(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if hc.retries < 0 {
        return Err(DaemonError::BadRequest(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// Docker's merge: the image's check fills what the user left unset.
pub(super) fn merge(user: &mut Option<HealthConfig>, image: Option<&HealthConfig>) {
    let Some(i) = image else { return };
    let Some(u) = user.as_mut() else {
        *user = Some(i.clone());
        return;
    };
    if u.test.is_empty() {
        u.test = i.test.clone();
    }
    for (mine, theirs) in [
        (&mut u.interval, i.interval),
        (&mut u.timeout, i.timeout),
        (&mut u.start_period, i.start_period),
        (&mut u.start_interval, i.start_interval),
        (&mut u.retries, i.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
}

/// Go's `time.Duration.String()` ("200ms", "1s", "1m30s"), for messages.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns as f64 / 1e6));
    }
    let secs = d.as_secs_f64();
    let h = (secs / 3600.0).floor();
    let m = ((secs - h * 3600.0) / 60.0).floor();
    let s = secs - h * 3600.0 - m * 60.0;
    let mut out = String::new();
    if h > 0.0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0.0 || m > 0.0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_frac(s)));
    out
}

fn trim_frac(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Output kept as Docker's `limitedBuffer` does: the first 4096 bytes, then
/// "..." if there was more.
#[derive(Default)]
struct Limited {
    buf: Vec<u8>,
    truncated: bool,
}

impl Limited {
    fn write(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN
            .saturating_sub(self.buf.len())
            .min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Removes a probe's exec from the daemon's table when the probe ends
/// (also when its task is aborted), so probes never pile up in `ExecIDs`.
struct Discard<'a>(&'a Daemon, String);

impl Drop for Discard<'_> {
    fn drop(&mut self) {
        self.0.exec_discard(&self.1);
    }
}

impl Daemon {
    /// Starts (or restarts) the health monitor of a container that just
    /// started: status `starting`, streak 0, the log kept.
    pub(super) fn health_start(self: &Arc<Self>, c: &Arc<Container>) {
        self.health_stop(c);
        let Some(cfg) = check_of(&c.rec().config) else {
            return;
        };
        {
            let mut r = c.rec();
            let h = r.state.health.get_or_insert_with(Health::default);
            h.status = STARTING.into();
            h.failing_streak = 0;
        }
        if let Err(e) = self.persist(c) {
            tracing::warn!(id = %c.id, "recording health: {e}");
        }
        let d = self.clone();
        let cc = c.clone();
        let task = tokio::spawn(async move { d.health_loop(cc, cfg).await });
        *c.health_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    }

    /// Stops the monitor; as in Docker, a stopped monitor leaves the
    /// status `unhealthy`.
    pub(super) fn health_stop(&self, c: &Container) {
        let task = c
            .health_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
            if let Some(h) = c.rec().state.health.as_mut() {
                h.status = UNHEALTHY.into();
            }
        }
    }

    async fn health_loop(self: Arc<Self>, c: Arc<Container>, cfg: HealthConfig) {
        let interval = dur(cfg.interval, DEFAULT_INTERVAL);
        let start_interval = dur(cfg.start_interval, DEFAULT_START_INTERVAL);
        let start_period = dur(cfg.start_period, Duration::ZERO);
        let started = std::time::Instant::now();
        loop {
            let starting = c
                .rec()
                .state
                .health
                .as_ref()
                .is_some_and(|h| h.status == STARTING);
            let wait = if started.elapsed() < start_period && starting {
                start_interval
            } else {
                interval
            };
            tokio::time::sleep(wait).await;
            match c.status() {
                Status::Running => {}
                s if s.is_active() => continue,
                _ => return,
            }
            let log = self.probe(&c, &cfg).await;
            let in_start_period = started.elapsed() < start_period;
            self.health_result(&c, &cfg, log, in_start_period);
        }
    }

    /// Runs one probe as an exec; kills it at its timeout.
    async fn probe(self: &Arc<Self>, c: &Arc<Container>, cfg: &HealthConfig) -> HealthLog {
        let start = now_rfc3339();
        let failed = |output: String| HealthLog {
            start: start.clone(),
            end: now_rfc3339(),
            exit_code: -1,
            output,
        };
        let exec_cfg = {
            let r = c.rec();
            ExecConfig {
                cmd: probe_command(cfg, &r.config),
                user: r.config.user.clone(),
                working_dir: r.config.working_dir.clone(),
                attach_stdout: true,
                attach_stderr: true,
                ..Default::default()
            }
        };
        let id = match self.exec_create(c, exec_cfg) {
            Ok(id) => id,
            Err(e) => return failed(e.to_string()),
        };
        let _discard = Discard(self, id.clone());
        let e = match self.exec(&id) {
            Ok(e) => e,
            Err(err) => return failed(err.to_string()),
        };
        let mut sub = e.stdio.subscribe();
        if let Err(err) = self.exec_start(&e).await {
            return failed(err.to_string());
        }
        let mut out = Limited::default();
        let timeout = dur(cfg.timeout, DEFAULT_TIMEOUT);
        let drained = tokio::time::timeout(timeout, async {
            while let Some((_, data)) = sub.recv().await {
                out.write(&data);
            }
        })
        .await;
        if drained.is_err() {
            self.exec_kill(&e, libc_sigkill()).await;
            // Wait for the killed probe so dying probes never pile up.
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while sub.recv().await.is_some() {}
            })
            .await;
            let text = out.text();
            let msg = if text.is_empty() {
                format!("Health check exceeded timeout ({})", go_duration(timeout))
            } else {
                format!(
                    "Health check exceeded timeout ({}): {text}",
                    go_duration(timeout)
                )
            };
            return failed(msg);
        }
        HealthLog {
            start: start.clone(),
            end: now_rfc3339(),
            exit_code: e.exit_code().unwrap_or(-1),
            output: out.text(),
        }
    }

    /// Docker's `handleProbeResult`: streak, status, log, event.
    fn health_result(
        &self,
        c: &Container,
        cfg: &HealthConfig,
        log: HealthLog,
        in_start_period: bool,
    ) {
        let retries = if cfg.retries > 0 {
            cfg.retries
        } else {
            DEFAULT_RETRIES
        };
        let (old, new) = {
            let mut r = c.rec();
            if r.state.status != Status::Running {
                return;
            }
            let h = r.state.health.get_or_insert_with(Health::default);
            let old = h.status.clone();
            if log.exit_code == 0 {
                h.failing_streak = 0;
                h.status = HEALTHY.into();
            } else if !(h.status == STARTING && in_start_period) {
                // Failures in the start period while starting do not count.
                h.failing_streak += 1;
                if h.failing_streak >= retries {
                    h.status = UNHEALTHY.into();
                }
            }
            h.log.push(log);
            let excess = h.log.len().saturating_sub(MAX_LOG_ENTRIES);
            h.log.drain(..excess);
            (old, h.status.clone())
        };
        if let Err(e) = self.persist(c) {
            tracing::warn!(id = %c.id, "recording health: {e}");
        }
        if old != new {
            self.container_event(c, &format!("health_status: {new}"), &[]);
        }
    }
}

fn libc_sigkill() -> i32 {
    nix::sys::signal::Signal::SIGKILL as i32
}

/// The `ps` Status suffix: "health: starting", "healthy", "unhealthy".
pub fn status_suffix(h: &Health) -> String {
    if h.status == STARTING {
        "health: starting".into()
    } else {
        h.status.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn output_is_truncated_like_docker() {
        let mut l = Limited::default();
        l.write(&[b'a'; 4000]);
        l.write(&[b'b'; 200]);
        let t = l.text();
        assert_eq!(t.len(), 4096 + 3);
        assert!(t.ends_with("bbb..."));
    }

    #[test]
    fn merge_fills_unset_fields() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 5,
            retries: 2,
            ..Default::default()
        };
        let mut user = Some(HealthConfig {
            interval: 7,
            ..Default::default()
        });
        merge(&mut user, Some(&image));
        let u = user.unwrap();
        assert_eq!(u.test, vec!["CMD", "true"]);
        assert_eq!(u.interval, 7);
        assert_eq!(u.retries, 2);
    }
}
