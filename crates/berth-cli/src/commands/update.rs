//! `update`: `POST /containers/{name}/update` for each name in turn, with
//! the whole `UpdateConfig` docker sends (every `Resources` field, zero
//! when not given, plus `RestartPolicy`). Names are printed as they
//! succeed, then the daemon's warnings (on stdout, as docker does), then
//! the errors.

use berth_api::container::RestartPolicy;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::container_opts::{parse_cpus, parse_mem, parse_mem_swap, parse_restart};
use super::{outln, parse_go_int, parse_go_uint16, requires_min, CmdResult, Ctx, StatusError};
use crate::client::Query;

/// `berth update`.
#[derive(Debug, Clone, Default, Args)]
#[command(
    about = "Update configuration of one or more containers",
    override_usage = "berth update [OPTIONS] CONTAINER [CONTAINER...]"
)]
pub(crate) struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16", value_parser = parse_go_uint16)]
    pub(crate) blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", allow_hyphen_values = true, value_parser = parse_go_int)]
    pub(crate) cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true, value_parser = parse_go_int)]
    pub(crate) cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", allow_hyphen_values = true, value_parser = parse_go_int)]
    pub(crate) cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int", allow_hyphen_values = true, value_parser = parse_go_int)]
    pub(crate) cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", allow_hyphen_values = true, value_parser = parse_go_int)]
    pub(crate) cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = parse_cpus)]
    pub(crate) cpus: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub(crate) cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub(crate) cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated)
    #[arg(long = "kernel-memory", value_name = "bytes", hide = true, value_parser = parse_mem)]
    pub(crate) kernel_memory: Option<i64>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse_mem)]
    pub(crate) memory: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes", value_parser = parse_mem)]
    pub(crate) memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true, value_parser = parse_mem_swap)]
    pub(crate) memory_swap: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true, value_parser = parse_go_int)]
    pub(crate) pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub(crate) restart: Option<String>,
    /// CONTAINER [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

impl UpdateArgs {
    /// docker's `cmd.Flags().NFlag() == 0`: no flag given at all (a flag
    /// given its zero value counts).
    fn no_flags(&self) -> bool {
        self.blkio_weight.is_none()
            && self.cpu_period.is_none()
            && self.cpu_quota.is_none()
            && self.cpu_rt_period.is_none()
            && self.cpu_rt_runtime.is_none()
            && self.cpu_shares.is_none()
            && self.cpus.is_none()
            && self.cpuset_cpus.is_none()
            && self.cpuset_mems.is_none()
            && self.kernel_memory.is_none()
            && self.memory.is_none()
            && self.memory_reservation.is_none()
            && self.memory_swap.is_none()
            && self.pids_limit.is_none()
            && self.restart.is_none()
    }
}

/// A device list of `Resources` (always `null` from the CLI).
type Devices = Option<Vec<serde_json::Value>>;

/// Body of `POST /containers/{id}/update`: docker's `UpdateConfig`, i.e.
/// `container.Resources` (in its field order) and `RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateBody {
    pub(crate) cpu_shares: i64,
    pub(crate) memory: i64,
    pub(crate) nano_cpus: i64,
    pub(crate) cgroup_parent: String,
    pub(crate) blkio_weight: u16,
    pub(crate) blkio_weight_device: Devices,
    pub(crate) blkio_device_read_bps: Devices,
    pub(crate) blkio_device_write_bps: Devices,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub(crate) blkio_device_read_iops: Devices,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub(crate) blkio_device_write_iops: Devices,
    pub(crate) cpu_period: i64,
    pub(crate) cpu_quota: i64,
    pub(crate) cpu_realtime_period: i64,
    pub(crate) cpu_realtime_runtime: i64,
    pub(crate) cpuset_cpus: String,
    pub(crate) cpuset_mems: String,
    pub(crate) devices: Devices,
    pub(crate) device_cgroup_rules: Option<Vec<String>>,
    pub(crate) device_requests: Devices,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) kernel_memory: i64,
    #[serde(rename = "KernelMemoryTCP", skip_serializing_if = "is_zero")]
    pub(crate) kernel_memory_tcp: i64,
    pub(crate) memory_reservation: i64,
    pub(crate) memory_swap: i64,
    pub(crate) memory_swappiness: Option<i64>,
    pub(crate) oom_kill_disable: Option<bool>,
    pub(crate) pids_limit: Option<i64>,
    pub(crate) ulimits: Devices,
    pub(crate) cpu_count: i64,
    pub(crate) cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps")]
    pub(crate) io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub(crate) io_maximum_bandwidth: u64,
    pub(crate) restart_policy: RestartPolicy,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// docker's `runUpdate` up to the requests: the body, or the error.
pub(crate) fn update_body(a: &UpdateArgs) -> Result<UpdateBody, String> {
    if a.no_flags() {
        return Err("you must provide one or more flags when using this command".into());
    }
    let restart_policy = match a.restart.as_deref() {
        Some(p) if !p.is_empty() => parse_restart(p)?,
        _ => RestartPolicy::default(),
    };
    Ok(UpdateBody {
        cpu_shares: a.cpu_shares.unwrap_or(0),
        memory: a.memory.unwrap_or(0),
        nano_cpus: a.cpus.unwrap_or(0),
        blkio_weight: a.blkio_weight.unwrap_or(0),
        cpu_period: a.cpu_period.unwrap_or(0),
        cpu_quota: a.cpu_quota.unwrap_or(0),
        cpu_realtime_period: a.cpu_rt_period.unwrap_or(0),
        cpu_realtime_runtime: a.cpu_rt_runtime.unwrap_or(0),
        cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: a.cpuset_mems.clone().unwrap_or_default(),
        kernel_memory: a.kernel_memory.unwrap_or(0),
        memory_reservation: a.memory_reservation.unwrap_or(0),
        memory_swap: a.memory_swap.unwrap_or(0),
        pids_limit: a.pids_limit.filter(|&n| n != 0),
        restart_policy,
        ..Default::default()
    })
}

/// `200` answer of update.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateResponse {
    warnings: Option<Vec<String>>,
}

/// `berth update [OPTIONS] CONTAINER...`.
pub(crate) async fn update(ctx: &Ctx, args: &UpdateArgs, path: &str) -> CmdResult {
    requires_min(
        path,
        "[OPTIONS] CONTAINER [CONTAINER...]",
        args.containers.len(),
        1,
    )?;
    let body = update_body(args).map_err(|e| StatusError::new(1, e))?;
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for name in &args.containers {
        let answer: Result<UpdateResponse, _> = ctx
            .client
            .post_json(&format!("/containers/{name}/update"), &Query::new(), &body)
            .await;
        match answer {
            Ok(r) => {
                outln(name)?;
                warnings.extend(r.warnings.unwrap_or_default());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !warnings.is_empty() {
        outln(&warnings.join("\n"))?;
    }
    super::joined(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: UpdateArgs,
    }

    fn body(args: &[&str]) -> Result<String, String> {
        let a = T::try_parse_from(std::iter::once("update").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .a;
        update_body(&a).map(|b| serde_json::to_string(&b).unwrap())
    }

    #[test]
    fn bodies_match_docker() {
        // Captured from docker CLI 28.2 against a fake daemon.
        assert_eq!(
            body(&["--memory", "64m", "--cpus", "1.5", "c"]).unwrap(),
            r#"{"CpuShares":0,"Memory":67108864,"NanoCpus":1500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}"#
        );
        assert_eq!(
            body(&[
                "--restart",
                "on-failure:3",
                "--pids-limit",
                "100",
                "--memory-swap",
                "-1",
                "--memory-reservation",
                "32m",
                "--cpu-shares",
                "512",
                "--cpu-quota",
                "50000",
                "--cpu-period",
                "100000",
                "--cpuset-cpus",
                "0-1",
                "--cpuset-mems",
                "0",
                "--blkio-weight",
                "300",
                "c",
            ])
            .unwrap(),
            r#"{"CpuShares":512,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":300,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":100000,"CpuQuota":50000,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"0-1","CpusetMems":"0","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":33554432,"MemorySwap":-1,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":100,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}"#
        );
        let k = body(&["--kernel-memory", "1m", "c"]).unwrap();
        assert!(k.contains(r#""DeviceRequests":null,"KernelMemory":1048576,"MemoryReservation":0"#));
    }

    #[test]
    fn flags_and_errors() {
        assert_eq!(
            body(&["c"]).unwrap_err(),
            "you must provide one or more flags when using this command"
        );
        // A flag given its zero value still counts; --pids-limit 0 is null.
        let zero = body(&["--cpu-shares", "0", "--pids-limit", "0", "c"]).unwrap();
        assert!(zero.contains(r#""CpuShares":0,"#) && zero.contains(r#""PidsLimit":null"#));
        assert_eq!(
            body(&["--restart", "bogus:x", "c"]).unwrap_err(),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        assert!(body(&["--blkio-weight", "70000", "c"])
            .unwrap_err()
            .contains("value out of range"));
    }
}
