//! A running container's cgroup from the daemon's side: `pause`,
//! `unpause`, `update` and `top` (`stats` is in [`super::stats`]).

use std::sync::Arc;

use berth_api::container::{HostConfig, RestartPolicy};
use berth_runtime::cgroups::{self, Hierarchy, Resources};
use serde::Deserialize;
use serde_json::{json, Value};

use super::container::{Container, Status};
use super::Daemon;
use crate::error::{DaemonError, Result};

fn not_running(c: &Container) -> DaemonError {
    DaemonError::Conflict(format!("Container {} is not running", c.id))
}

fn cgroup_err(c: &Container, what: &str, e: cgroups::CgroupError) -> DaemonError {
    DaemonError::Internal(format!("Cannot {what} container {}: {e}", c.id))
}

/// Body of `POST /containers/{id}/update`: the resources and the restart policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateBody {
    /// Bytes.
    pub memory: i64,
    /// Memory + swap, bytes (-1 unlimited).
    pub memory_swap: i64,
    /// Soft limit, bytes.
    pub memory_reservation: i64,
    /// CPUs × 1e9.
    pub nano_cpus: i64,
    /// Relative weight.
    pub cpu_shares: i64,
    /// CFS quota (µs).
    pub cpu_quota: i64,
    /// CFS period (µs).
    pub cpu_period: i64,
    /// CPUs allowed.
    pub cpuset_cpus: String,
    /// Memory nodes allowed.
    pub cpuset_mems: String,
    /// Max processes (0/-1 unlimited; null leaves it).
    pub pids_limit: Option<i64>,
    /// Block I/O weight.
    pub blkio_weight: u16,
    /// A new restart policy.
    pub restart_policy: Option<RestartPolicy>,
}

impl Daemon {
    /// The container's cgroup path (as written to `linux.cgroupsPath`).
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("/{}/{}", self.cfg.cgroup_parent, id)
    }

    /// `pause`: freezes every process of the container.
    pub async fn pause(&self, c: &Arc<Container>) -> Result<()> {
        let _op = c.op.lock().await;
        match c.status() {
            Status::Running => {}
            Status::Paused => {
                return Err(DaemonError::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            _ => return Err(not_running(c)),
        }
        self.pause_locked(c).await
    }

    /// Freezes a running container; the caller holds `c.op` (so `commit`
    /// can pause inside its own critical section).
    pub(super) async fn pause_locked(&self, c: &Arc<Container>) -> Result<()> {
        let path = self.cgroup_path(&c.id);
        tokio::task::spawn_blocking(move || Hierarchy::detect().freeze(&path))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))?
            .map_err(|e| cgroup_err(c, "pause", e))?;
        c.rec().state.status = Status::Paused;
        self.persist(c)?;
        self.container_event(c, "pause", &[]);
        Ok(())
    }

    /// `unpause`.
    pub async fn unpause(&self, c: &Arc<Container>) -> Result<()> {
        let _op = c.op.lock().await;
        if c.status() != Status::Paused {
            return Err(DaemonError::Internal(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.unpause_locked(c).await
    }

    /// Thaws a paused container; the caller holds `c.op`.
    pub(super) async fn unpause_locked(&self, c: &Arc<Container>) -> Result<()> {
        self.thaw(c).await?;
        c.rec().state.status = Status::Running;
        self.persist(c)?;
        self.container_event(c, "unpause", &[]);
        Ok(())
    }

    /// Thaws the container's cgroup (before it is stopped or killed: a
    /// frozen process cannot act on a signal).
    pub(super) async fn thaw(&self, c: &Container) -> Result<()> {
        let path = self.cgroup_path(&c.id);
        tokio::task::spawn_blocking(move || Hierarchy::detect().thaw(&path))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))?
            .map_err(|e| cgroup_err(c, "unpause", e))
    }

    /// `update`: new limits (applied at once to a running container) and
    /// restart policy; returns Docker's warnings.
    pub async fn update(&self, c: &Arc<Container>, u: UpdateBody) -> Result<Vec<String>> {
        let _op = c.op.lock().await;
        let (config, mut hc) = {
            let r = c.rec();
            (r.config.clone(), r.host_config.clone())
        };
        merge_update(&mut hc, &u);
        if let Some(p) = &u.restart_policy {
            if !p.name.is_empty() {
                if hc.auto_remove && p.name != "no" {
                    return Err(DaemonError::BadRequest(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                    ));
                }
                hc.restart_policy = p.clone();
            }
        }
        let warnings = super::spec_map::validate(&config, &hc)?;
        if c.status().is_active() {
            let res = Resources {
                memory: (u.memory != 0).then_some(u.memory),
                memory_swap: (u.memory_swap != 0).then_some(u.memory_swap).or(
                    // Docker: a new memory limit without swap keeps swap at twice it.
                    (u.memory > 0 && hc.memory_swap > 0).then_some(hc.memory_swap),
                ),
                memory_reservation: (u.memory_reservation != 0).then_some(u.memory_reservation),
                nano_cpus: (u.nano_cpus != 0).then_some(u.nano_cpus),
                cpu_shares: (u.cpu_shares > 0).then_some(u.cpu_shares as u64),
                cpu_quota: (u.cpu_quota != 0).then_some(u.cpu_quota),
                cpu_period: (u.cpu_period > 0).then_some(u.cpu_period as u64),
                cpuset_cpus: Some(u.cpuset_cpus.clone()).filter(|s| !s.is_empty()),
                cpuset_mems: Some(u.cpuset_mems.clone()).filter(|s| !s.is_empty()),
                pids_limit: u.pids_limit,
                blkio_weight: (u.blkio_weight > 0).then_some(u.blkio_weight),
            };
            let path = self.cgroup_path(&c.id);
            tokio::task::spawn_blocking(move || Hierarchy::detect().update(&path, &res))
                .await
                .map_err(|e| DaemonError::Internal(e.to_string()))?
                .map_err(|e| cgroup_err(c, "update", e))?;
        }
        c.rec().host_config = hc;
        self.persist(c)?;
        Ok(warnings)
    }

    /// `top`: `ps` on the host, rows of the container's processes only.
    pub async fn top(&self, c: &Arc<Container>, ps_args: &str) -> Result<Value> {
        if !c.status().is_active() {
            return Err(not_running(c));
        }
        let path = self.cgroup_path(&c.id);
        let pids = tokio::task::spawn_blocking(move || Hierarchy::detect().pids(&path))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))?
            .map_err(|e| cgroup_err(c, "top", e))?;
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| DaemonError::Internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(DaemonError::Internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (titles, processes) = ps_rows(&String::from_utf8_lossy(&out.stdout), &pids)?;
        Ok(json!({"Titles": titles, "Processes": processes}))
    }
}

/// Applies the fields an update sets (0 / "" / null leave a field alone).
fn merge_update(hc: &mut HostConfig, u: &UpdateBody) {
    let set = |dst: &mut i64, v: i64| {
        if v != 0 {
            *dst = v;
        }
    };
    set(&mut hc.memory, u.memory);
    set(&mut hc.memory_swap, u.memory_swap);
    set(&mut hc.memory_reservation, u.memory_reservation);
    set(&mut hc.nano_cpus, u.nano_cpus);
    set(&mut hc.cpu_shares, u.cpu_shares);
    set(&mut hc.cpu_quota, u.cpu_quota);
    set(&mut hc.cpu_period, u.cpu_period);
    if !u.cpuset_cpus.is_empty() {
        hc.cpuset_cpus = u.cpuset_cpus.clone();
    }
    if !u.cpuset_mems.is_empty() {
        hc.cpuset_mems = u.cpuset_mems.clone();
    }
    if let Some(p) = u.pids_limit {
        hc.pids_limit = Some(p);
    }
    if u.blkio_weight != 0 {
        hc.extra.insert("BlkioWeight".into(), json!(u.blkio_weight));
    }
    if u.memory > 0 && u.memory_swap == 0 && hc.memory_swap > 0 && hc.memory_swap < u.memory {
        // Swap that no longer covers memory follows it, as Docker does.
        hc.memory_swap = u.memory * 2;
    }
}

/// The header and the rows of `ps` output whose PID is one of `pids`
/// (dockerd's parsePSOutput: the last column takes the rest of the line).
fn ps_rows(output: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| DaemonError::Internal("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_string());
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            return Err(DaemonError::Internal(format!(
                "Unexpected pid '{}'",
                fields.get(pid_col).cloned().unwrap_or_default()
            )));
        };
        if pids.contains(&pid) {
            rows.push(fields);
        }
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_parsing() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n\
                   root         42       1  0 10:01 ?        00:00:00 sleep 300 seconds\n";
        let (titles, rows) = ps_rows(out, &[42]).unwrap();
        assert_eq!(
            titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(
            rows,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 300 seconds"
            ]]
        );
        assert!(ps_rows("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn update_merges_only_set_fields() {
        let mut hc = HostConfig {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            cpu_shares: 512,
            ..Default::default()
        };
        merge_update(
            &mut hc,
            &UpdateBody {
                memory: 256 << 20,
                ..Default::default()
            },
        );
        assert_eq!(
            (hc.memory, hc.memory_swap, hc.cpu_shares),
            (256 << 20, 512 << 20, 512)
        );
        merge_update(
            &mut hc,
            &UpdateBody {
                pids_limit: Some(50),
                cpuset_cpus: "0".into(),
                ..Default::default()
            },
        );
        assert_eq!((hc.pids_limit, hc.cpuset_cpus.as_str()), (Some(50), "0"));
    }
}
