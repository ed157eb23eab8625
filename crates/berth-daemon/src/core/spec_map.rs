//! From a container's record (config + host config) to the OCI runtime
//! spec's inputs: process identity, mounts, namespaces, security options
//! and resource limits; and the create-time checks of a host config, with
//! Docker's errors and warnings (dockerd's `verifyContainerSettings`).
//!
//! What the host supports (CPUs, cgroup files, capabilities, rlimits) is
//! read once into [`HostFacts`]; the checks themselves are pure functions
//! of the config and those facts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use berth_api::container::{ContainerConfig, HostConfig};
use berth_runtime::spec::{
    self, BindMount, ContainerSpec, DeviceMapping, Ipc, Namespace, Resources, Rlimit, Seccomp,
};
use berth_runtime::user::ExecUser;
use serde_json::Value;

use super::container::Record;
use crate::config::DaemonConfig;
use crate::error::{DaemonError, Result};

/// Docker's smallest memory limit and reservation (6 MiB).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Docker's rlimit names (go-units).
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The sysctls that are namespaced, as the docker CLI's `ValidateSysctl`
/// lists them; the runtime refuses the rest.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// What this host offers containers, as dockerd's `sysinfo` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostFacts {
    /// CPUs this process may run on (Go's `runtime.NumCPU`).
    pub ncpu: usize,
    /// CPUs and memory nodes of the root cpuset, e.g. `0-1`.
    pub cpus: String,
    pub mems: String,
    /// Which cgroup limits can be set.
    pub memory: bool,
    pub swap: bool,
    pub memory_reservation: bool,
    pub swappiness: bool,
    pub oom_kill_disable: bool,
    pub pids: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpuset: bool,
    pub blkio_weight: bool,
    /// cgroup v2 only.
    pub cgroup2: bool,
    /// The daemon's capability bounding set (what containers can get).
    pub bounding: u64,
}

impl HostFacts {
    /// This host's facts, read once.
    pub(super) fn get() -> &'static HostFacts {
        static FACTS: OnceLock<HostFacts> = OnceLock::new();
        FACTS.get_or_init(HostFacts::detect)
    }

    fn detect() -> HostFacts {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let ncpu = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .and_then(|l| parse_list(l.trim()).ok())
            .map(|s| s.len())
            .filter(|n| *n > 0)
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1);
        let mut f = HostFacts {
            ncpu,
            cpus: String::new(),
            mems: String::new(),
            memory: false,
            swap: false,
            memory_reservation: false,
            swappiness: false,
            oom_kill_disable: false,
            pids: false,
            cpu_shares: false,
            cpu_cfs: false,
            cpuset: false,
            blkio_weight: false,
            cgroup2: false,
            bounding: spec::bounding_set(),
        };
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            let controllers = read(&root.join("cgroup.controllers"));
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            f.cgroup2 = true;
            f.memory = has("memory");
            f.memory_reservation = f.memory;
            // The kernel offers memory.swap.max in non-root cgroups only.
            let own = std::fs::read_to_string("/proc/self/cgroup")
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
                .unwrap_or_default();
            f.swap = f.memory
                && root
                    .join(own.trim_start_matches('/'))
                    .join("memory.swap.max")
                    .exists();
            f.pids = has("pids");
            f.cpu_shares = has("cpu");
            f.cpu_cfs = has("cpu");
            f.cpuset = has("cpuset");
            f.blkio_weight = has("io");
            f.cpus = read(&root.join("cpuset.cpus.effective"));
            f.mems = read(&root.join("cpuset.mems.effective"));
        } else {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let mount_of = |c: &str| {
                mountinfo.lines().find_map(|l| {
                    let (left, right) = l.split_once(" - ")?;
                    let mut r = right.split(' ');
                    if r.next()? != "cgroup" {
                        return None;
                    }
                    let opts = r.nth(1)?;
                    opts.split(',')
                        .any(|o| o == c)
                        .then(|| left.split(' ').nth(4).map(std::path::PathBuf::from))?
                })
            };
            let file = |c: &str, name: &str| mount_of(c).is_some_and(|m| m.join(name).exists());
            f.memory = mount_of("memory").is_some();
            f.swap = file("memory", "memory.memsw.limit_in_bytes");
            f.memory_reservation = file("memory", "memory.soft_limit_in_bytes");
            f.oom_kill_disable = file("memory", "memory.oom_control");
            f.swappiness = file("memory", "memory.swappiness");
            f.pids = mount_of("pids").is_some();
            f.cpu_shares = file("cpu", "cpu.shares");
            f.cpu_cfs = file("cpu", "cpu.cfs_quota_us");
            // The runtimes write blkio.bfq.weight where blkio.weight is gone.
            f.blkio_weight = file("blkio", "blkio.weight") || file("blkio", "blkio.bfq.weight");
            if let Some(m) = mount_of("cpuset") {
                f.cpuset = true;
                f.cpus = read(&m.join("cpuset.cpus"));
                f.mems = read(&m.join("cpuset.mems"));
            }
        }
        f
    }
}

/// Docker's `parseUintList`: `0-2,4` → {0,1,2,4}.
fn parse_list(val: &str) -> std::result::Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    if val.is_empty() {
        return Ok(out);
    }
    let bad = || format!("invalid format: {val}");
    for part in val.split(',') {
        match part.split_once('-') {
            None => {
                out.insert(part.parse::<u32>().map_err(|_| bad())?);
            }
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if b < a || b - a > 65536 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
        }
    }
    Ok(out)
}

/// A host config's `SecurityOpt`, parsed as dockerd does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SecurityOpts {
    seccomp: Seccomp,
    no_new_privileges: bool,
    /// `systempaths=unconfined` (the docker CLI turns it into empty
    /// MaskedPaths/ReadonlyPaths itself; other clients may send it).
    systempaths_unconfined: bool,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_security_opts(opts: &[String]) -> std::result::Result<SecurityOpts, String> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        match opt.as_str() {
            "no-new-privileges" => {
                out.no_new_privileges = true;
                continue;
            }
            "disable" | "writable-cgroups" => continue,
            _ => {}
        }
        let (k, v) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| format!("invalid --security-opt 1: {opt:?}"))?;
        match k {
            // Neither AppArmor nor SELinux is used: accepted, as on a
            // host without them.
            "label" | "apparmor" => {}
            "seccomp" => {
                out.seccomp = match v {
                    "unconfined" => Seccomp::Unconfined,
                    "builtin" | "" => Seccomp::Default,
                    profile => Seccomp::Profile(profile.to_string()),
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges =
                    parse_bool(v).ok_or_else(|| format!("invalid --security-opt 2: {opt:?}"))?
            }
            "writable-cgroups" => {
                parse_bool(v).ok_or_else(|| format!("invalid --security-opt 2: {opt:?}"))?;
            }
            "systempaths" if v == "unconfined" => out.systempaths_unconfined = true,
            _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
        }
    }
    Ok(out)
}

/// Fills in what Docker stores at create (`adaptContainerSettings`), so
/// that inspect shows what the container really gets: swap twice the
/// memory when only memory is set, the default /dev/shm size and IPC mode,
/// the masked and read-only paths, the cgroup namespace mode.
pub(super) fn adapt(hc: &mut HostConfig, facts: &HostFacts) {
    if hc.memory > 0 && hc.memory_swap == 0 {
        hc.memory_swap = hc.memory * 2;
    }
    if hc.shm_size == 0 {
        hc.shm_size = spec::DEFAULT_SHM_SIZE as i64;
    }
    if hc.ipc_mode.is_empty() {
        hc.ipc_mode = "private".into();
    }
    if hc.memory_swappiness == Some(-1) {
        hc.memory_swappiness = None;
    }
    if hc.oom_kill_disable.is_none() {
        hc.oom_kill_disable = Some(false);
    }
    let cgroupns = hc.extra.get("CgroupnsMode").and_then(Value::as_str);
    if cgroupns.is_none_or(str::is_empty) {
        // Docker's defaults: the container's own cgroup namespace on v2.
        let mode = if facts.cgroup2 { "private" } else { "host" };
        hc.extra.insert("CgroupnsMode".into(), Value::from(mode));
    }
    if !hc.privileged {
        if hc.masked_paths.is_none() {
            hc.masked_paths = Some(spec::default_masked_paths());
        }
        if hc.readonly_paths.is_none() {
            hc.readonly_paths = Some(spec::READONLY_PATHS.iter().map(|s| s.to_string()).collect());
        }
    }
}

/// The limits the container gets on `facts`' host, and Docker's warnings
/// for those it cannot have.
pub(super) fn effective_resources(hc: &HostConfig, facts: &HostFacts) -> (Resources, Vec<String>) {
    let mut w = Vec::new();
    let mut r = Resources {
        memory: hc.memory,
        memory_swap: if hc.memory > 0 && hc.memory_swap == 0 {
            hc.memory * 2
        } else {
            hc.memory_swap
        },
        memory_reservation: hc.memory_reservation,
        memory_swappiness: hc
            .memory_swappiness
            .filter(|s| *s != -1)
            .map(|s| s.clamp(0, 100) as u64),
        oom_kill_disable: hc.oom_kill_disable.unwrap_or(false),
        nano_cpus: hc.nano_cpus,
        cpu_shares: hc.cpu_shares.max(0) as u64,
        cpu_period: hc.cpu_period.max(0) as u64,
        cpu_quota: hc.cpu_quota,
        cpuset_cpus: hc.cpuset_cpus.clone(),
        cpuset_mems: hc.cpuset_mems.clone(),
        pids_limit: hc.pids_limit.unwrap_or(0).max(0),
        blkio_weight: blkio_weight(hc).clamp(0, u16::MAX as i64) as u16,
    };
    if r.memory > 0 && !facts.memory {
        w.push("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        r.memory = 0;
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap != -1 && !facts.swap {
        w.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        r.memory_swap = -1;
    }
    if r.memory_swappiness.is_some() && !facts.swappiness {
        w.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
        r.memory_swappiness = None;
    }
    if r.memory_reservation > 0 && !facts.memory_reservation {
        w.push("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        r.memory_reservation = 0;
    }
    if r.oom_kill_disable && !facts.oom_kill_disable {
        w.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
        r.oom_kill_disable = false;
    }
    if r.oom_kill_disable && r.memory == 0 {
        w.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    if r.pids_limit > 0 && !facts.pids {
        w.push("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.".into());
        r.pids_limit = 0;
    }
    if r.cpu_shares > 0 && !facts.cpu_shares {
        w.push(
            "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."
                .into(),
        );
        r.cpu_shares = 0;
    }
    if (r.cpu_period != 0 || r.cpu_quota != 0) && !facts.cpu_cfs {
        w.push(
            "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.".into(),
        );
        r.cpu_period = 0;
        r.cpu_quota = 0;
    }
    if (!r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()) && !facts.cpuset {
        w.push(
            "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
                .into(),
        );
        r.cpuset_cpus.clear();
        r.cpuset_mems.clear();
    }
    if r.blkio_weight > 0 && !facts.blkio_weight {
        w.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into());
        r.blkio_weight = 0;
    }
    (r, w)
}

fn blkio_weight(hc: &HostConfig) -> i64 {
    hc.extra
        .get("BlkioWeight")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn sysctls(hc: &HostConfig) -> BTreeMap<String, String> {
    hc.extra
        .get("Sysctls")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn devices(hc: &HostConfig) -> Vec<DeviceMapping> {
    let s = |d: &Value, k: &str| {
        d.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    hc.extra
        .get("Devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| {
            let permissions = s(d, "CgroupPermissions");
            DeviceMapping {
                path_on_host: s(d, "PathOnHost"),
                path_in_container: s(d, "PathInContainer"),
                permissions: if permissions.is_empty() {
                    "rwm".into()
                } else {
                    permissions
                },
            }
        })
        .collect()
}

/// `HostConfig.Ulimits` entries: `{"Name": "nofile", "Soft": 1, "Hard": 2}`.
fn ulimits(hc: &HostConfig) -> std::result::Result<Vec<Rlimit>, String> {
    hc.ulimits
        .iter()
        .flatten()
        .map(|u| {
            let name = u.get("Name").and_then(Value::as_str).unwrap_or_default();
            let num = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0);
            if !ULIMIT_NAMES.contains(&name) {
                return Err(format!("invalid ulimit type: {name}"));
            }
            let (soft, hard) = (num("Soft"), num("Hard"));
            if hard != -1 {
                if soft == -1 {
                    return Err(format!("ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"));
                }
                if soft > hard {
                    return Err(format!(
                        "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
                    ));
                }
            }
            Ok(Rlimit {
                name: name.to_string(),
                soft,
                hard,
            })
        })
        .collect()
}

fn namespace_mode(mode: &str) -> Namespace {
    if mode == "host" {
        Namespace::Host
    } else {
        Namespace::Private
    }
}

/// The spec inputs for one start of `rec`, whose root is mounted at
/// `rootfs` and whose files (hosts, hostname, resolv.conf) are in `dir`.
/// The record passed [`validate`] at create.
pub(super) fn container_spec(
    cfg: &DaemonConfig,
    rec: &Record,
    rootfs: &Path,
    dir: &Path,
    user: ExecUser,
    env: Vec<String>,
    cwd: String,
) -> ContainerSpec {
    let config = &rec.config;
    let mut hc = rec.host_config.clone();
    let facts = HostFacts::get();
    adapt(&mut hc, facts);
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    // Docker mounts these read-only with a read-only root.
    let binds = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .map(|f| BindMount {
            source: dir.join(f),
            destination: format!("/etc/{f}"),
            readonly: hc.readonly_rootfs,
            propagation: None,
        })
        .collect();
    let sec =
        parse_security_opts(hc.security_opt.as_deref().unwrap_or_default()).unwrap_or_default();
    let (resources, _) = effective_resources(&hc, facts);
    let ipc = match hc.ipc_mode.as_str() {
        "host" => Ipc::Host,
        "none" => Ipc::None,
        _ => Ipc::Private,
    };
    ContainerSpec {
        id: rec.id.clone(),
        rootfs: rootfs.to_path_buf(),
        args,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        hostname: config.hostname.clone(),
        tty: config.tty,
        readonly_rootfs: hc.readonly_rootfs,
        privileged: hc.privileged,
        cgroups_path: format!("/{}/{}", cfg.cgroup_parent, rec.id),
        binds,
        tmpfs: hc.tmpfs.clone().unwrap_or_default(),
        shm_size: hc.shm_size.max(0) as u64,
        network: if hc.network_mode == "host" {
            spec::NetworkNs::Host
        } else {
            spec::NetworkNs::New
        },
        pid: namespace_mode(&hc.pid_mode),
        ipc,
        uts: namespace_mode(&hc.uts_mode),
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        init: hc.init.unwrap_or(false),
        seccomp: sec.seccomp,
        no_new_privileges: sec.no_new_privileges,
        masked_paths: if sec.systempaths_unconfined {
            Some(Vec::new())
        } else {
            hc.masked_paths.clone()
        },
        readonly_paths: if sec.systempaths_unconfined {
            Some(Vec::new())
        } else {
            hc.readonly_paths.clone()
        },
        sysctls: sysctls(&hc),
        rlimits: ulimits(&hc).unwrap_or_default(),
        devices: devices(&hc),
        resources,
        oom_score_adj: hc.oom_score_adj.clamp(-1000, 1000) as i32,
    }
}

/// Checks a host config at create time; Docker's errors for what can never
/// run (impossible limits, unknown capabilities, bad ulimits…), and its
/// warnings for what will run with less than asked. Creates nothing.
pub(super) fn validate(config: &ContainerConfig, hc: &HostConfig) -> Result<Vec<String>> {
    validate_with(config, hc, HostFacts::get(), &spec::host_hard_limits())
        .map_err(DaemonError::BadRequest)
}

fn validate_with(
    config: &ContainerConfig,
    hc: &HostConfig,
    facts: &HostFacts,
    hard_limits: &BTreeMap<String, u64>,
) -> std::result::Result<Vec<String>, String> {
    if config.hostname.len() > 64 {
        return Err(format!(
            "hostname {:?} is too long (maximum 64 bytes)",
            config.hostname
        ));
    }
    let sec = parse_security_opts(hc.security_opt.as_deref().unwrap_or_default())?;
    for (field, list) in [("CapAdd", &hc.cap_add), ("CapDrop", &hc.cap_drop)] {
        for c in list.iter().flatten() {
            let c = spec::normalize_cap(c);
            if c == "ALL" {
                continue;
            }
            let Some(bit) = spec::ALL_CAPS.iter().position(|x| *x == c) else {
                return Err(format!("invalid {field}: unknown capability: {c:?}"));
            };
            // Dropping what the daemon lacks anyway is harmless; adding it
            // cannot be done.
            if field == "CapAdd" && facts.bounding & (1 << bit) == 0 {
                return Err(format!("invalid {field}: capability not supported by your kernel or not available in the current environment: {c:?}"));
            }
        }
    }
    if let Seccomp::Profile(p) = &sec.seccomp {
        berth_runtime::seccomp::resolve(p, &[], &berth_runtime::seccomp::Target::host())?;
    }

    let (r, mut warnings) = effective_resources(hc, facts);
    if hc.memory != 0 && hc.memory < MIN_MEMORY {
        return Err("Minimum memory limit allowed is 6MB".into());
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    if hc.memory == 0 && hc.memory_swap > 0 {
        return Err(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if let Some(s) = hc.memory_swappiness.filter(|s| *s != -1) {
        if r.memory_swappiness.is_some() && !(0..=100).contains(&s) {
            return Err(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            ));
        }
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return Err("Minimum memory reservation allowed is 6MB".into());
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    if hc.nano_cpus > 0 && hc.cpu_period > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if hc.nano_cpus > 0 && hc.cpu_quota > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
    }
    if hc.nano_cpus > 0 && !facts.cpu_cfs {
        return Err("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted".into());
    }
    if hc.nano_cpus != 0 {
        let n = facts.ncpu;
        if hc.nano_cpus < 0 || hc.nano_cpus > n as i64 * 1_000_000_000 {
            return Err(format!(
                "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
            ));
        }
    }
    if hc.cpu_shares < 0 {
        return Err(format!(
            "invalid CPU shares ({}): value must be a positive integer",
            hc.cpu_shares
        ));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        );
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
    }
    for (kind, wanted, available, what) in [
        ("cpus", &r.cpuset_cpus, &facts.cpus, "CPUs"),
        ("mems", &r.cpuset_mems, &facts.mems, "memory nodes"),
    ] {
        let want = parse_list(wanted)
            .map_err(|e| format!("Invalid value {wanted} for cpuset {kind}: {e}"))?;
        let have = parse_list(available).unwrap_or_default();
        if !want.is_subset(&have) {
            return Err(format!(
                "Requested {what} are not available - requested {wanted}, available: {available}"
            ));
        }
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err("Range of blkio weight is from 10 to 1000".into());
    }

    let valid_container = |m: &str| m.strip_prefix("container:").is_some_and(|c| !c.is_empty());
    let ipc = hc.ipc_mode.as_str();
    if !(["", "host", "private", "shareable", "none"].contains(&ipc) || valid_container(ipc)) {
        return Err(format!("invalid IPC mode: {ipc}"));
    }
    let pid = hc.pid_mode.as_str();
    if !(["", "host"].contains(&pid) || valid_container(pid)) {
        return Err(format!("invalid PID mode: {pid}"));
    }
    // Joining another container needs its PID, which this check cannot
    // see yet.
    for (flag, mode) in [("ipc", ipc), ("pid", pid)] {
        if valid_container(mode) {
            return Err(format!(
                "--{flag} {mode}: joining another container's {} namespace is not supported yet",
                flag.to_uppercase()
            ));
        }
    }
    if hc.shm_size < 0 {
        return Err("SHM size can not be less than 0".into());
    }
    if !["", "host"].contains(&hc.uts_mode.as_str()) {
        return Err(format!("invalid UTS mode: {}", hc.uts_mode));
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        ));
    }
    let cgroupns = hc
        .extra
        .get("CgroupnsMode")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !["", "host", "private"].contains(&cgroupns) {
        return Err(format!("invalid cgroup namespace mode: {cgroupns}"));
    }
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        if dest.trim_end_matches('/').is_empty() {
            return Err("invalid specification: destination can't be '/'".into());
        }
        if !dest.starts_with('/') {
            return Err(format!(
                "invalid mount path: '{dest}' mount path must be absolute"
            ));
        }
        spec::merge_tmpfs_options(opts)?;
    }

    for u in ulimits(hc)? {
        let max = hard_limits.get(&u.name).copied().unwrap_or(u64::MAX);
        if u.hard < 0 && max != u64::MAX || u.hard > 0 && u.hard as u64 > max {
            warnings.push(format!(
                "Ulimit {} hard limit {} is above the daemon's hard limit {max}: clamped to {max}.",
                u.name,
                if u.hard < 0 {
                    "unlimited".to_string()
                } else {
                    u.hard.to_string()
                },
            ));
        }
    }

    let host_net = hc.network_mode == "host";
    for (k, v) in sysctls(hc) {
        let ipc_one = IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.");
        if !ipc_one && !k.starts_with("net.") {
            return Err(format!("sysctl '{k}={v}' is not allowed"));
        }
        if ipc_one && ipc == "host" {
            return Err(format!(
                "sysctl {k:?} is not allowed in the hosts ipc namespace"
            ));
        }
        if k.starts_with("net.") && host_net {
            return Err(format!(
                "sysctl {k:?} not allowed in host network namespace"
            ));
        }
    }

    for d in devices(hc) {
        let mode = &d.permissions;
        let mut seen = BTreeSet::new();
        if mode.len() > 3 || !mode.chars().all(|c| "rwm".contains(c) && seen.insert(c)) {
            return Err(format!("invalid device mode: {mode}"));
        }
        if !d.path_in_container.is_empty() && !d.path_in_container.starts_with('/') {
            return Err(format!("{} is not an absolute path", d.path_in_container));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> HostFacts {
        HostFacts {
            ncpu: 2,
            cpus: "0-1".into(),
            mems: "0".into(),
            memory: true,
            swap: true,
            memory_reservation: true,
            swappiness: true,
            oom_kill_disable: true,
            pids: true,
            cpu_shares: true,
            cpu_cfs: true,
            cpuset: true,
            blkio_weight: false,
            cgroup2: false,
            bounding: (1u64 << 41) - 1 - (1 << 24), // no CAP_SYS_RESOURCE
        }
    }

    fn check(hc: HostConfig) -> std::result::Result<Vec<String>, String> {
        let limits = BTreeMap::from([("nofile".to_string(), 20000u64)]);
        validate_with(&ContainerConfig::default(), &hc, &facts(), &limits)
    }

    fn err(hc: HostConfig) -> String {
        check(hc).unwrap_err()
    }

    #[test]
    fn memory_rules() {
        assert_eq!(
            err(HostConfig {
                memory: 1024,
                ..Default::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(HostConfig {
                memory: 64 << 20,
                memory_swap: 32 << 20,
                ..Default::default()
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            err(HostConfig {
                memory_swap: 32 << 20,
                ..Default::default()
            }),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            err(HostConfig {
                memory: 64 << 20,
                memory_reservation: 128 << 20,
                ..Default::default()
            }),
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        );
        assert_eq!(
            err(HostConfig {
                memory_reservation: 1 << 20,
                ..Default::default()
            }),
            "Minimum memory reservation allowed is 6MB"
        );
        assert_eq!(
            err(HostConfig {
                memory_swappiness: Some(101),
                ..Default::default()
            }),
            "Invalid value: 101, valid memory swappiness range is 0-100"
        );
        // Fine: -1 swap, -1 swappiness (the CLI's "unset").
        let ok = HostConfig {
            memory: 64 << 20,
            memory_swap: -1,
            memory_swappiness: Some(-1),
            ..Default::default()
        };
        assert_eq!(check(ok.clone()), Ok(vec![]));
        let (r, _) = effective_resources(&ok, &facts());
        assert_eq!(
            (r.memory, r.memory_swap, r.memory_swappiness),
            (64 << 20, -1, None)
        );
        // Docker's rule: swap twice the memory when only memory is set.
        let (r, _) = effective_resources(
            &HostConfig {
                memory: 64 << 20,
                ..Default::default()
            },
            &facts(),
        );
        assert_eq!(r.memory_swap, 128 << 20);
    }

    #[test]
    fn cpu_rules() {
        assert_eq!(
            err(HostConfig {
                nano_cpus: 99_000_000_000,
                ..Default::default()
            }),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert_eq!(
            err(HostConfig {
                nano_cpus: 500_000_000,
                cpu_period: 100_000,
                ..Default::default()
            }),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        assert_eq!(
            err(HostConfig {
                nano_cpus: 500_000_000,
                cpu_quota: 50_000,
                ..Default::default()
            }),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        );
        assert_eq!(
            err(HostConfig {
                cpu_period: 999,
                ..Default::default()
            }),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        );
        assert_eq!(
            err(HostConfig {
                cpu_quota: 999,
                ..Default::default()
            }),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)"
        );
        assert_eq!(
            err(HostConfig {
                cpuset_cpus: "0-7".into(),
                ..Default::default()
            }),
            "Requested CPUs are not available - requested 0-7, available: 0-1"
        );
        assert_eq!(
            err(HostConfig {
                cpuset_cpus: "1-x".into(),
                ..Default::default()
            }),
            "Invalid value 1-x for cpuset cpus: invalid format: 1-x"
        );
        assert_eq!(
            err(HostConfig {
                cpuset_mems: "1".into(),
                ..Default::default()
            }),
            "Requested memory nodes are not available - requested 1, available: 0"
        );
        let fine = HostConfig {
            nano_cpus: 1_500_000_000,
            cpuset_cpus: "0,1".into(),
            cpu_shares: 512,
            ..Default::default()
        };
        assert_eq!(check(fine), Ok(vec![]));
    }

    #[test]
    fn unsupported_limits_warn_and_are_dropped() {
        let mut hc = HostConfig {
            pids_limit: Some(20),
            oom_kill_disable: Some(true),
            ..Default::default()
        };
        hc.extra.insert("BlkioWeight".into(), json!(300));
        let w = check(hc.clone()).unwrap();
        assert_eq!(
            w,
            [
                "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.",
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
            ]
        );
        let (r, _) = effective_resources(&hc, &facts());
        assert_eq!((r.blkio_weight, r.pids_limit), (0, 20));
        let no_swap = HostFacts {
            swap: false,
            ..facts()
        };
        let (r, w) = effective_resources(
            &HostConfig {
                memory: 64 << 20,
                ..Default::default()
            },
            &no_swap,
        );
        assert_eq!(r.memory_swap, -1);
        assert_eq!(w, ["Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."]);
        let mut weighted = HostConfig::default();
        weighted.extra.insert("BlkioWeight".into(), json!(5));
        let with_blkio = HostFacts {
            blkio_weight: true,
            ..facts()
        };
        assert_eq!(
            validate_with(
                &ContainerConfig::default(),
                &weighted,
                &with_blkio,
                &BTreeMap::new()
            ),
            Err("Range of blkio weight is from 10 to 1000".into())
        );
    }

    #[test]
    fn capabilities() {
        let caps = |add: &[&str], drop: &[&str]| HostConfig {
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            err(caps(&["FOO"], &[])),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        assert_eq!(
            err(caps(&[], &["cap_bar"])),
            "invalid CapDrop: unknown capability: \"CAP_BAR\""
        );
        assert_eq!(
            err(caps(&["SYS_RESOURCE"], &[])),
            "invalid CapAdd: capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\""
        );
        assert_eq!(
            check(caps(&["ALL", "net_admin"], &["all", "SYS_RESOURCE"])),
            Ok(vec![])
        );
    }

    #[test]
    fn ulimits_sysctls_devices() {
        let ul = |v: Value| HostConfig {
            ulimits: Some(vec![v]),
            ..Default::default()
        };
        assert_eq!(
            err(ul(json!({"Name": "foo", "Soft": 1, "Hard": 1}))),
            "invalid ulimit type: foo"
        );
        assert_eq!(
            err(ul(json!({"Name": "nofile", "Soft": 200, "Hard": 100}))),
            "ulimit soft limit must be less than or equal to hard limit: 200 > 100"
        );
        assert_eq!(
            err(ul(json!({"Name": "nofile", "Soft": -1, "Hard": 100}))),
            "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 100"
        );
        assert_eq!(
            check(ul(json!({"Name": "nofile", "Soft": 100, "Hard": 200}))),
            Ok(vec![])
        );
        assert_eq!(
            check(ul(json!({"Name": "nofile", "Soft": 1024, "Hard": 65536}))).unwrap(),
            ["Ulimit nofile hard limit 65536 is above the daemon's hard limit 20000: clamped to 20000."]
        );
        let sc = |k: &str, net: &str, ipc: &str| {
            let mut hc = HostConfig {
                network_mode: net.into(),
                ipc_mode: ipc.into(),
                ..Default::default()
            };
            hc.extra.insert("Sysctls".into(), json!({k: "1"}));
            check(hc)
        };
        assert_eq!(sc("net.ipv4.ip_forward", "default", ""), Ok(vec![]));
        assert_eq!(sc("kernel.shmmax", "default", "private"), Ok(vec![]));
        assert_eq!(sc("fs.mqueue.msg_max", "default", ""), Ok(vec![]));
        assert_eq!(
            sc("kernel.printk", "default", ""),
            Err("sysctl 'kernel.printk=1' is not allowed".into())
        );
        assert_eq!(
            sc("net.ipv4.ip_forward", "host", ""),
            Err("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace".into())
        );
        assert_eq!(
            sc("kernel.sem", "default", "host"),
            Err("sysctl \"kernel.sem\" is not allowed in the hosts ipc namespace".into())
        );
        let dev = |mode: &str, inside: &str| {
            let mut hc = HostConfig::default();
            hc.extra.insert(
                "Devices".into(),
                json!([{"PathOnHost": "/dev/null", "PathInContainer": inside, "CgroupPermissions": mode}]),
            );
            check(hc)
        };
        assert_eq!(dev("rwm", "/dev/x"), Ok(vec![]));
        assert_eq!(dev("rwx", "/dev/x"), Err("invalid device mode: rwx".into()));
        assert_eq!(dev("rr", "/dev/x"), Err("invalid device mode: rr".into()));
        assert_eq!(
            dev("r", "dev/x"),
            Err("dev/x is not an absolute path".into())
        );
    }

    #[test]
    fn modes_and_security_options() {
        let so = |o: &[&str]| HostConfig {
            security_opt: Some(o.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            check(so(&[
                "no-new-privileges",
                "apparmor=unconfined",
                "label=disable",
                "seccomp=unconfined"
            ])),
            Ok(vec![])
        );
        assert_eq!(err(so(&["bogus"])), "invalid --security-opt 1: \"bogus\"");
        assert_eq!(
            err(so(&["foo=bar"])),
            "invalid --security-opt 2: \"foo=bar\""
        );
        assert_eq!(
            err(so(&["no-new-privileges=maybe"])),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert!(err(so(&["seccomp={not json"])).starts_with("Decoding seccomp profile failed"));
        let parsed = parse_security_opts(&[
            "no-new-privileges:false".into(),
            "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}".into(),
            "systempaths=unconfined".into(),
        ])
        .unwrap();
        assert!(!parsed.no_new_privileges && parsed.systempaths_unconfined);
        assert!(matches!(parsed.seccomp, Seccomp::Profile(_)));

        let mode = |ipc: &str, pid: &str, uts: &str| {
            check(HostConfig {
                ipc_mode: ipc.into(),
                pid_mode: pid.into(),
                uts_mode: uts.into(),
                ..Default::default()
            })
        };
        assert_eq!(mode("shareable", "host", "host"), Ok(vec![]));
        assert_eq!(mode("none", "", ""), Ok(vec![]));
        assert_eq!(mode("bogus", "", ""), Err("invalid IPC mode: bogus".into()));
        assert_eq!(mode("", "bogus", ""), Err("invalid PID mode: bogus".into()));
        assert_eq!(
            mode("", "", "private"),
            Err("invalid UTS mode: private".into())
        );
        assert!(mode("container:abc", "", "")
            .unwrap_err()
            .contains("not supported yet"));
        assert_eq!(
            err(HostConfig {
                shm_size: -1,
                ..Default::default()
            }),
            "SHM size can not be less than 0"
        );
        assert_eq!(
            err(HostConfig {
                oom_score_adj: 1001,
                ..Default::default()
            }),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
        let tmpfs = |dest: &str, opts: &str| {
            check(HostConfig {
                tmpfs: Some(BTreeMap::from([(dest.to_string(), opts.to_string())])),
                ..Default::default()
            })
        };
        assert_eq!(tmpfs("/run", "size=1m,exec"), Ok(vec![]));
        assert_eq!(
            tmpfs("/", ""),
            Err("invalid specification: destination can't be '/'".into())
        );
        assert_eq!(
            tmpfs("run", ""),
            Err("invalid mount path: 'run' mount path must be absolute".into())
        );
        assert_eq!(
            tmpfs("/run", "foo"),
            Err("invalid tmpfs option \"foo\"".into())
        );
        let long = ContainerConfig {
            hostname: "h".repeat(65),
            ..Default::default()
        };
        assert!(
            validate_with(&long, &HostConfig::default(), &facts(), &BTreeMap::new())
                .unwrap_err()
                .contains("is too long (maximum 64 bytes)")
        );
    }

    #[test]
    fn adapt_fills_docker_defaults() {
        let mut hc = HostConfig {
            memory: 64 << 20,
            memory_swappiness: Some(-1),
            ..Default::default()
        };
        adapt(&mut hc, &facts());
        assert_eq!(hc.extra["CgroupnsMode"], "host");
        assert_eq!(hc.memory_swap, 128 << 20);
        assert_eq!(hc.shm_size, 64 << 20);
        assert_eq!(hc.ipc_mode, "private");
        assert_eq!(hc.memory_swappiness, None);
        assert_eq!(hc.oom_kill_disable, Some(false));
        assert!(hc
            .masked_paths
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        let mut p = HostConfig {
            privileged: true,
            ..Default::default()
        };
        adapt(&mut p, &facts());
        assert_eq!(p.masked_paths, None);
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-2,4").unwrap(), BTreeSet::from([0, 1, 2, 4]));
        assert_eq!(parse_list("").unwrap(), BTreeSet::new());
        assert!(parse_list("2-1").is_err());
        assert!(parse_list("a").is_err());
    }

    #[test]
    fn this_host() {
        // The facts of a real host are consistent with themselves.
        let f = HostFacts::detect();
        assert!(f.ncpu >= 1);
        if f.cpuset {
            assert!(!parse_list(&f.cpus).unwrap().is_empty());
        }
    }
}
