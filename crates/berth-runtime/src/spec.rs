//! The OCI runtime spec (`config.json`) of a container, with Docker's
//! defaults: its capabilities, seccomp profile, mounts, masked paths,
//! namespaces, device rules, rlimits and resource limits.
//!
//! [`ContainerSpec`] holds what the daemon decided (from the container's
//! config and host config, already validated); [`build`] adds what only the
//! host can tell (its cgroup layout, bounding set, rlimits, device numbers)
//! and returns oci-spec's typed [`Spec`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{seccomp, RuntimeError};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for `--privileged`, in kernel numbering order (the
/// index is the capability's number).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths (`/proc/interrupts` and the thermal-throttle
/// files since the 2025 advisories).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The masked paths of a default container on this host: Docker's list
/// plus each CPU's `thermal_throttle` directory that exists (read once).
pub fn default_masked_paths() -> Vec<String> {
    static PATHS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PATHS
        .get_or_init(|| {
            let mut paths: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
            let cpus = std::fs::read_dir("/sys/devices/system/cpu")
                .into_iter()
                .flatten();
            let mut thermal: Vec<String> = cpus
                .flatten()
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.strip_prefix("cpu")
                        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
                })
                .map(|e| e.path().join("thermal_throttle"))
                .filter(|p| p.exists())
                .map(|p| p.display().to_string())
                .collect();
            thermal.sort();
            paths.extend(thermal);
            paths
        })
        .clone()
}

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path inside the container.
    pub destination: String,
    /// Mounted read-only.
    pub readonly: bool,
    /// Propagation (`rshared`, `slave`…); `rprivate` when `None`.
    #[serde(default)]
    pub propagation: Option<String>,
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NetworkNs {
    /// A new, empty one (loopback only).
    #[default]
    New,
    /// The host's.
    Host,
    /// An existing one, by path (`/proc/<pid>/ns/net` or a bind-mounted file).
    Path(PathBuf),
}

/// A PID or UTS namespace: the container's own, the host's, or another's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Namespace {
    /// A new one.
    #[default]
    Private,
    /// The host's (`--pid host`, `--uts host`).
    Host,
    /// An existing one, by path (`/proc/<pid>/ns/<type>`).
    Path(PathBuf),
}

/// The IPC namespace and the `/dev/shm` that goes with it (`--ipc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Ipc {
    /// A new namespace with its own `/dev/shm` (`private`, `shareable`).
    #[default]
    Private,
    /// A new namespace and no `/dev/shm` at all (`none`).
    None,
    /// The host's namespace and the host's `/dev/shm` (`host`).
    Host,
    /// Another container's namespace (`container:<id>`), by path; its own
    /// `/dev/shm` (System V IPC is shared, POSIX shm is not).
    Path(PathBuf),
}

/// Which seccomp filter the process runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Seccomp {
    /// Docker's default profile (none for privileged containers).
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's JSON format (`seccomp=<profile text>`), applied
    /// even to privileged containers.
    Profile(String),
}

/// A resource limit (`--ulimit name=soft[:hard]`); -1 is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// Docker's name: `nofile`, `nproc`, `core`, …
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A host device made available in the container (`--device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    /// The device (or a directory of devices) on the host.
    pub path_on_host: String,
    /// Where it appears in the container (empty: the same path).
    pub path_in_container: String,
    /// Device cgroup access: some of `r`, `w`, `m`.
    pub permissions: String,
}

/// Resource limits, with Docker's meaning: 0 (or `None`) is "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: i64,
    /// Memory plus swap in bytes; -1 is unlimited swap.
    pub memory_swap: i64,
    /// Soft limit in bytes.
    pub memory_reservation: i64,
    /// 0–100.
    pub memory_swappiness: Option<u64>,
    /// Do not OOM-kill the container's processes.
    pub oom_kill_disable: bool,
    /// CPUs in billionths (`--cpus`); becomes quota/period.
    pub nano_cpus: i64,
    /// Relative CPU weight.
    pub cpu_shares: u64,
    /// CFS period in µs.
    pub cpu_period: u64,
    /// CFS quota in µs.
    pub cpu_quota: i64,
    /// CPUs the container may use (`0-3`, `0,1`).
    pub cpuset_cpus: String,
    /// Memory nodes the container may use.
    pub cpuset_mems: String,
    /// Maximum number of processes; 0 is no limit.
    pub pids_limit: i64,
    /// Block I/O weight, 10–1000.
    pub blkio_weight: u16,
}

/// Everything the spec is made from; the daemon fills it from the
/// container's config and host config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container ID.
    pub id: String,
    /// The mounted root filesystem.
    pub rootfs: PathBuf,
    /// Command and arguments.
    pub args: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// UTS hostname (not set when the UTS namespace is the host's).
    pub hostname: String,
    /// Allocate a pseudo-TTY.
    pub tty: bool,
    /// Mount the root read-only.
    pub readonly_rootfs: bool,
    /// All capabilities and devices, no masked paths.
    pub privileged: bool,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// Extra bind mounts (hosts, hostname, resolv.conf, volumes).
    pub binds: Vec<BindMount>,
    /// tmpfs mounts: destination → options (`--tmpfs /run:size=64m`).
    pub tmpfs: BTreeMap<String, String>,
    /// Size of /dev/shm in bytes.
    pub shm_size: u64,
    /// Network namespace.
    pub network: NetworkNs,
    /// PID namespace.
    pub pid: Namespace,
    /// IPC namespace.
    pub ipc: Ipc,
    /// UTS namespace.
    pub uts: Namespace,
    /// Capabilities added on top of the default set.
    pub cap_add: Vec<String>,
    /// Capabilities removed from the default set.
    pub cap_drop: Vec<String>,
    /// `--init`: a minimal init is PID 1 (reaps zombies, forwards signals)
    /// and runs the command as its child.
    pub init: bool,
    /// Seccomp filter.
    pub seccomp: Seccomp,
    /// Set `no_new_privs` on the process.
    pub no_new_privileges: bool,
    /// Masked paths; `None` for Docker's defaults.
    pub masked_paths: Option<Vec<String>>,
    /// Read-only paths; `None` for Docker's defaults.
    pub readonly_paths: Option<Vec<String>>,
    /// Namespaced kernel parameters.
    pub sysctls: BTreeMap<String, String>,
    /// Process resource limits.
    pub rlimits: Vec<Rlimit>,
    /// Host devices to add.
    pub devices: Vec<DeviceMapping>,
    /// cgroup limits.
    pub resources: Resources,
    /// The process's OOM score adjustment (0: inherit).
    pub oom_score_adj: i32,
}

/// 64 MiB, Docker's default /dev/shm.
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Docker's default options of a `--tmpfs` mount, before the user's.
const TMPFS_DEFAULTS: &[&str] = &["noexec", "nosuid", "nodev", "rprivate"];

/// The capabilities this process may hand on (its bounding set): a
/// container cannot get more than its runtime has, so privileged means
/// "all that are available", as with Docker.
pub fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// `net_raw` → `CAP_NET_RAW`; `ALL` stays `ALL`.
pub fn normalize_cap(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn caps(spec: &ContainerSpec) -> Vec<String> {
    let bnd = bounding_set();
    let available = |c: &String| {
        ALL_CAPS
            .iter()
            .position(|x| x == c)
            .is_none_or(|i| bnd & (1 << i) != 0)
    };
    let mut set = wanted_caps(spec);
    set.retain(available);
    set
}

/// Docker's rules (`TweakCapabilities`): `--cap-add ALL` is everything but
/// the drops; `--cap-drop ALL` keeps only the adds; otherwise the default
/// set minus drops plus adds.
fn wanted_caps(spec: &ContainerSpec) -> Vec<String> {
    let all = || ALL_CAPS.iter().map(|s| s.to_string());
    if spec.privileged {
        return all().collect();
    }
    let drops: Vec<String> = spec.cap_drop.iter().map(|c| normalize_cap(c)).collect();
    let adds: Vec<String> = spec.cap_add.iter().map(|c| normalize_cap(c)).collect();
    let mut set: Vec<String> = if adds.iter().any(|c| c == "ALL") {
        all().filter(|c| !drops.contains(c)).collect()
    } else if drops.iter().any(|c| c == "ALL") {
        adds.into_iter().filter(|c| c != "ALL").collect()
    } else {
        let mut set: Vec<String> = DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect();
        set.extend(adds);
        set
    };
    let mut seen = std::collections::HashSet::new();
    set.retain(|c| seen.insert(c.clone()));
    set
}

/// Docker's `MergeTmpfsOptions`: the later of two options that set the same
/// flag (`exec` after `noexec`) or key (`size=`) wins; unknown options are
/// an error.
pub fn merge_tmpfs_options(user: &str) -> Result<Vec<String>, String> {
    const FLAGS: &[(&str, &str)] = &[
        ("ro", "ro"),
        ("rw", "ro"),
        ("suid", "suid"),
        ("nosuid", "suid"),
        ("dev", "dev"),
        ("nodev", "dev"),
        ("exec", "exec"),
        ("noexec", "exec"),
        ("sync", "sync"),
        ("async", "sync"),
        ("dirsync", "dirsync"),
        ("remount", "remount"),
        ("mand", "mand"),
        ("nomand", "mand"),
        ("atime", "atime"),
        ("noatime", "atime"),
        ("diratime", "diratime"),
        ("nodiratime", "diratime"),
        ("relatime", "relatime"),
        ("norelatime", "relatime"),
        ("strictatime", "strictatime"),
        ("nostrictatime", "strictatime"),
    ];
    const PROPAGATION: &[&str] = &[
        "bind",
        "rbind",
        "unbindable",
        "runbindable",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
    ];
    const DATA: &[&str] = &[
        "",
        "size",
        "mode",
        "uid",
        "gid",
        "nr_inodes",
        "nr_blocks",
        "mpol",
    ];
    let all: Vec<&str> = TMPFS_DEFAULTS
        .iter()
        .copied()
        .chain(user.split(',').filter(|o| !o.is_empty()))
        .collect();
    let mut keys = std::collections::HashSet::new();
    let mut out = Vec::new();
    for opt in all.into_iter().rev() {
        if opt == "defaults" {
            continue;
        }
        let key = if let Some((_, k)) = FLAGS.iter().find(|(o, _)| *o == opt) {
            format!("flag:{k}")
        } else if PROPAGATION.contains(&opt) {
            "propagation".to_string()
        } else {
            let (k, _) = opt.split_once('=').unwrap_or((opt, ""));
            if !opt.contains('=') || !DATA.contains(&k) {
                return Err(format!("invalid tmpfs option \"{k}\""));
            }
            format!("data:{k}")
        };
        if keys.insert(key) {
            out.push(opt.to_string());
        }
    }
    out.reverse();
    Ok(out)
}

/// How cgroups are mounted on this host, for the container's
/// `/sys/fs/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CgroupLayout {
    /// cgroup v1 (or hybrid): each hierarchy's mount point and controllers.
    V1(Vec<(String, Vec<String>)>),
    /// cgroup v2 only, at /sys/fs/cgroup.
    V2,
    /// Nothing usable.
    None,
}

/// The v1 controllers the runtimes (libcontainer, runc) place a container
/// in, so that its own directory exists in each of their hierarchies.
const V1_MANAGED: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_cls",
    "net_prio",
    "freezer",
];

fn parse_cgroup_layout(mountinfo: &str) -> CgroupLayout {
    let mut v1 = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let (fstype, _source, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
        match fstype {
            Some("cgroup2") if mountpoint == "/sys/fs/cgroup" => return CgroupLayout::V2,
            Some("cgroup") if mountpoint.starts_with("/sys/fs/cgroup/") => {
                let controllers: Vec<String> = opts
                    .split(',')
                    .filter(|o| V1_MANAGED.contains(o))
                    .map(str::to_string)
                    .collect();
                if !controllers.is_empty() {
                    v1.push((mountpoint.to_string(), controllers));
                }
            }
            _ => {}
        }
    }
    if v1.is_empty() {
        CgroupLayout::None
    } else {
        CgroupLayout::V1(v1)
    }
}

/// The container's `/sys/fs/cgroup`, read-only unless `writable`, showing
/// its own cgroups as Docker does. On v2 the runtime mounts cgroup2 in the
/// container's cgroup namespace. On v1 a tmpfs holds one read-only bind
/// per hierarchy of the container's own directory (which the runtime has
/// made before it mounts anything): the runtimes' own v1 "cgroup" mount
/// type would leave those binds writable, letting root in the container
/// raise its own limits.
fn cgroup_mounts(layout: &CgroupLayout, cgroups_path: &str, writable: bool) -> Vec<Value> {
    let rel = cgroups_path.trim_start_matches('/');
    match layout {
        CgroupLayout::None => Vec::new(),
        _ if rel.is_empty() => Vec::new(),
        CgroupLayout::V2 => vec![json!({
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": [if writable { "rw" } else { "ro" }, "nosuid", "noexec", "nodev"],
        })],
        CgroupLayout::V1(hierarchies) => {
            let mut mounts = Vec::new();
            let mut opts = vec!["rbind", "nosuid", "noexec", "nodev"];
            if !writable {
                opts.push("ro");
            }
            let mut done = std::collections::HashSet::new();
            for (mountpoint, controllers) in hierarchies {
                let source = Path::new(mountpoint).join(rel);
                let dir = mountpoint.rsplit('/').next().unwrap_or_default();
                // Co-mounted controllers (`cpu,cpuacct`) appear under each
                // name too, where the host has symlinks.
                let names = std::iter::once(dir.to_string()).chain(controllers.iter().cloned());
                for name in names {
                    if done.insert(name.clone()) {
                        mounts.push(json!({
                            "destination": format!("/sys/fs/cgroup/{name}"), "type": "bind",
                            "source": source, "options": opts,
                        }));
                    }
                }
            }
            // The tmpfs cannot be read-only (the binds need their mount
            // points made in it), so unless writable it gets just enough
            // inodes for its root and those: nothing can be added.
            let mut tmpfs = vec!["nosuid", "noexec", "nodev", "mode=755", "size=64k"];
            let inodes = format!("nr_inodes={}", mounts.len() + 1);
            if !writable {
                tmpfs.push(&inodes);
            }
            mounts.insert(
                0,
                json!({"destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "tmpfs", "options": tmpfs}),
            );
            mounts
        }
    }
}

/// The host's hard limits, by Docker's rlimit name (from /proc/self/limits:
/// the runtime inherits them and cannot raise them without
/// CAP_SYS_RESOURCE).
pub fn host_hard_limits() -> BTreeMap<String, u64> {
    parse_limits(&std::fs::read_to_string("/proc/self/limits").unwrap_or_default())
}

fn parse_limits(text: &str) -> BTreeMap<String, u64> {
    const NAMES: &[(&str, &str)] = &[
        ("Max cpu time", "cpu"),
        ("Max file size", "fsize"),
        ("Max data size", "data"),
        ("Max stack size", "stack"),
        ("Max core file size", "core"),
        ("Max resident set", "rss"),
        ("Max processes", "nproc"),
        ("Max open files", "nofile"),
        ("Max locked memory", "memlock"),
        ("Max address space", "as"),
        ("Max file locks", "locks"),
        ("Max pending signals", "sigpending"),
        ("Max msgqueue size", "msgqueue"),
        ("Max nice priority", "nice"),
        ("Max realtime priority", "rtprio"),
        ("Max realtime timeout", "rttime"),
    ];
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((label, name)) = NAMES.iter().find(|(l, _)| line.starts_with(l)) else {
            continue;
        };
        let mut values = line[label.len()..].split_whitespace();
        let hard = values.nth(1).map(|h| {
            if h == "unlimited" {
                u64::MAX
            } else {
                h.parse().unwrap_or(u64::MAX)
            }
        });
        if let Some(h) = hard {
            out.insert(name.to_string(), h);
        }
    }
    out
}

/// Rlimits for the spec, never above the host's hard limits (clamped, as
/// Docker's defaults are when it inherits them).
fn rlimits(wanted: &[Rlimit], host_hard: &BTreeMap<String, u64>) -> Vec<Value> {
    let to_u64 = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    wanted
        .iter()
        .map(|r| {
            let max = host_hard.get(&r.name).copied().unwrap_or(u64::MAX);
            let hard = to_u64(r.hard).min(max);
            let soft = to_u64(r.soft).min(hard);
            json!({"type": format!("RLIMIT_{}", r.name.to_ascii_uppercase()), "soft": soft, "hard": hard})
        })
        .collect()
}

fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// A device node on the host as an OCI `linux.devices` entry at `path`;
/// `None` for anything that is not a character or block device.
fn device_entry(meta: &std::fs::Metadata, path: &str) -> Option<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return None;
    };
    Some(json!({
        "path": path, "type": kind, "major": major(meta.rdev()), "minor": minor(meta.rdev()),
        "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid(),
    }))
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// `--device` entries as Docker's `DevicesFromPath` makes them: a device
/// node, or every device under a directory; each also allowed in the device
/// cgroup with its permissions.
fn mapped_devices(maps: &[DeviceMapping]) -> Result<(Vec<Value>, Vec<Value>), RuntimeError> {
    let mut devices = Vec::new();
    let mut rules = Vec::new();
    for m in maps {
        let host = m.path_on_host.as_str();
        let dest = if m.path_in_container.is_empty() {
            host
        } else {
            m.path_in_container.as_str()
        };
        let fail = |why: String| {
            RuntimeError::Create(format!(
                "error gathering device information while adding custom device \"{host}\": {why}"
            ))
        };
        let meta = std::fs::metadata(host).map_err(|e| fail(io_text(&e)))?;
        let mut found = Vec::new();
        if meta.is_dir() {
            walk_devices(Path::new(host), Path::new(dest), &mut found);
        } else {
            found.push(device_entry(&meta, dest).ok_or_else(|| fail("not a device node".into()))?);
        }
        for d in found {
            rules.push(json!({
                "allow": true, "type": d["type"], "major": d["major"], "minor": d["minor"],
                "access": m.permissions,
            }));
            devices.push(d);
        }
    }
    Ok((devices, rules))
}

/// Every device node under `dir` (symlinks not followed), placed under
/// `dest`.
fn walk_devices(dir: &Path, dest: &Path, out: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        let target = dest.join(e.file_name());
        if meta.is_dir() {
            walk_devices(&e.path(), &target, out);
        } else if let Some(d) = device_entry(&meta, &target.to_string_lossy()) {
            out.push(d);
        }
    }
}

/// All of the host's devices, for `--privileged` (as containerd's
/// `HostDevices`: /dev without the pseudo-filesystems the spec mounts).
fn host_devices() -> Vec<Value> {
    const SKIP: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if SKIP.contains(&name.as_str()) || name == "console" {
            continue;
        }
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            walk_devices(&e.path(), &e.path(), &mut out);
        } else if let Some(d) = device_entry(&meta, &e.path().to_string_lossy()) {
            out.push(d);
        }
    }
    out
}

fn resources_json(r: &Resources) -> Value {
    let mut out = json!({});
    let mut memory = json!({});
    if r.memory > 0 {
        memory["limit"] = json!(r.memory);
    }
    if r.memory_reservation > 0 {
        memory["reservation"] = json!(r.memory_reservation);
    }
    // As Docker: -1 (unlimited) is the runtimes' default, so only a limit
    // is written.
    if r.memory_swap > 0 {
        memory["swap"] = json!(r.memory_swap);
    }
    if let Some(s) = r.memory_swappiness {
        memory["swappiness"] = json!(s);
    }
    if r.oom_kill_disable {
        memory["disableOOMKiller"] = json!(true);
    }
    if memory != json!({}) {
        out["memory"] = memory;
    }
    let mut cpu = json!({});
    if r.cpu_shares > 0 {
        cpu["shares"] = json!(r.cpu_shares);
    }
    if r.nano_cpus > 0 {
        // Docker's conversion: a 100 ms period and the share of it.
        let period: u64 = 100_000;
        cpu["period"] = json!(period);
        cpu["quota"] = json!(r.nano_cpus * period as i64 / 1_000_000_000);
    }
    if r.cpu_period > 0 {
        cpu["period"] = json!(r.cpu_period);
    }
    if r.cpu_quota != 0 {
        cpu["quota"] = json!(r.cpu_quota);
    }
    if !r.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(r.cpuset_cpus);
    }
    if !r.cpuset_mems.is_empty() {
        cpu["mems"] = json!(r.cpuset_mems);
    }
    if cpu != json!({}) {
        out["cpu"] = cpu;
    }
    if r.pids_limit > 0 {
        out["pids"] = json!({"limit": r.pids_limit});
    }
    if r.blkio_weight > 0 {
        out["blockIO"] = json!({"weight": r.blkio_weight});
    }
    out
}

fn namespace(kind: &str, ns: &Namespace) -> Option<Value> {
    match ns {
        Namespace::Private => Some(json!({"type": kind})),
        Namespace::Host => None,
        Namespace::Path(p) => Some(json!({"type": kind, "path": p})),
    }
}

/// The seccomp filter of `spec` for a process with bounding set `caps`.
fn seccomp_filter(spec: &ContainerSpec, caps: &[String]) -> Result<Option<Value>, RuntimeError> {
    let profile = match &spec.seccomp {
        Seccomp::Unconfined => return Ok(None),
        Seccomp::Default if spec.privileged => return Ok(None),
        Seccomp::Default => seccomp::default_profile(),
        Seccomp::Profile(p) => p.as_str(),
    };
    seccomp::resolve(profile, caps, &seccomp::Target::host()).map_err(RuntimeError::Spec)
}

/// Builds the spec as JSON, then parses it into oci-spec's typed [`Spec`],
/// which validates every field.
pub fn build(spec: &ContainerSpec) -> Result<Spec, RuntimeError> {
    let caps = caps(spec);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let layout = parse_cgroup_layout(&mountinfo);
    let mut v = build_with(spec, &caps, &layout, &host_hard_limits())?;
    if let Some(filter) = seccomp_filter(spec, &caps)? {
        v["linux"]["seccomp"] = filter;
    }
    let (mut devices, mut rules) = mapped_devices(&spec.devices)?;
    if spec.privileged {
        // Docker: every host device, plus the mappings at other paths.
        let mut all = host_devices();
        devices.retain(|d| !all.iter().any(|h| h["path"] == d["path"]));
        all.append(&mut devices);
        devices = all;
        rules.clear();
    }
    if !devices.is_empty() {
        v["linux"]["devices"] = json!(devices);
    }
    if let Some(list) = v["linux"]["resources"]["devices"].as_array_mut() {
        list.append(&mut rules);
    }
    serde_json::from_value(v).map_err(|e| RuntimeError::Spec(e.to_string()))
}

/// The spec without what needs the host's devices and kernel (seccomp,
/// device nodes): everything else is decided from its arguments.
fn build_with(
    spec: &ContainerSpec,
    caps: &[String],
    layout: &CgroupLayout,
    host_hard: &BTreeMap<String, u64>,
) -> Result<Value, RuntimeError> {
    let shm_size = if spec.shm_size == 0 {
        DEFAULT_SHM_SIZE
    } else {
        spec.shm_size
    };
    let mut defaults = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if spec.privileged { "rw" } else { "ro" }]}),
    ];
    defaults.extend(cgroup_mounts(layout, &spec.cgroups_path, spec.privileged));
    defaults.push(json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}));
    match &spec.ipc {
        Ipc::None => {}
        Ipc::Host => defaults.push(json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]})),
        Ipc::Private | Ipc::Path(_) => defaults.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]})),
    }

    let mut user = Vec::new();
    for b in &spec.binds {
        let mut opts = vec!["rbind", b.propagation.as_deref().unwrap_or("rprivate")];
        if b.readonly {
            opts.push("ro");
        }
        user.push(json!({"destination": b.destination, "type": "bind", "source": b.source, "options": opts}));
    }
    for (dest, opts) in &spec.tmpfs {
        let opts = merge_tmpfs_options(opts).map_err(RuntimeError::Spec)?;
        user.push(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}),
        );
    }
    // A user mount replaces the default at the same place (all of /dev's
    // when it is /dev); --read-only makes the remaining defaults read-only
    // except the kernel's and /dev's.
    let user_dests: Vec<&str> = user
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    let user_dev = user_dests.contains(&"/dev");
    defaults.retain(|m| {
        let d = m["destination"].as_str().unwrap_or_default();
        let replaced = user_dests.contains(&d) || (user_dev && d.starts_with("/dev/"));
        !replaced
    });
    if spec.readonly_rootfs {
        for m in &mut defaults {
            let d = m["destination"].as_str().unwrap_or_default();
            let keep_rw = ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"].contains(&d)
                || (d == "/sys/fs/cgroup" && m["type"] == "tmpfs")
                || (spec.privileged && (d == "/sys" || d.starts_with("/sys/fs/cgroup")));
            if let Some(opts) = m["options"].as_array_mut() {
                if !keep_rw && !opts.iter().any(|o| o == "ro") {
                    opts.retain(|o| o != "rw");
                    opts.push(json!("ro"));
                }
            }
        }
    }
    let mut mounts = defaults;
    mounts.extend(user);

    let mut namespaces: Vec<Value> = [
        namespace("pid", &spec.pid),
        match &spec.ipc {
            Ipc::Host => None,
            Ipc::Path(p) => Some(json!({"type": "ipc", "path": p})),
            Ipc::Private | Ipc::None => Some(json!({"type": "ipc"})),
        },
        namespace("uts", &spec.uts),
        Some(json!({"type": "mount"})),
    ]
    .into_iter()
    .flatten()
    .collect();
    match &spec.network {
        NetworkNs::New => namespaces.push(json!({"type": "network"})),
        NetworkNs::Host => {}
        NetworkNs::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    if *layout == CgroupLayout::V2 {
        // Docker's default on v2: the container sees its own cgroup as root.
        namespaces.push(json!({"type": "cgroup"}));
    }

    let devices: Value = if spec.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        ])
    };
    let mut resources = resources_json(&spec.resources);
    resources["devices"] = devices;

    // Docker's defaults for a private network namespace: unprivileged ping
    // (ICMP datagram sockets, no NET_RAW needed) and low ports for all.
    let mut sysctls = BTreeMap::new();
    if spec.network != NetworkNs::Host {
        if Path::new("/proc/sys/net/ipv4/ping_group_range").exists() {
            sysctls.insert(
                "net.ipv4.ping_group_range".to_string(),
                "0 2147483647".to_string(),
            );
        }
        if Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start").exists() {
            sysctls.insert(
                "net.ipv4.ip_unprivileged_port_start".to_string(),
                "0".to_string(),
            );
        }
    }
    sysctls.extend(spec.sysctls.clone());

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": spec.cgroups_path,
        "resources": resources,
    });
    if !sysctls.is_empty() {
        linux["sysctl"] = json!(sysctls);
    }
    if !spec.privileged {
        linux["maskedPaths"] = json!(spec
            .masked_paths
            .clone()
            .unwrap_or_else(default_masked_paths));
        linux["readonlyPaths"] = json!(spec
            .readonly_paths
            .clone()
            .unwrap_or_else(|| READONLY_PATHS.iter().map(|s| s.to_string()).collect()));
    }

    let mut env = spec.env.clone();
    if spec.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let mut process = json!({
        "terminal": spec.tty,
        "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": spec.additional_gids},
        "args": spec.args,
        "env": env,
        "cwd": if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
    });
    // Only ever `true` or absent: libcontainer reads a present `false` as
    // "set", loads the seccomp filter after dropping CAP_SYS_ADMIN and the
    // kernel refuses it (no_new_privs unset, no capability).
    if spec.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !spec.rlimits.is_empty() {
        process["rlimits"] = json!(rlimits(&spec.rlimits, host_hard));
    }
    if spec.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(spec.oom_score_adj);
    }
    let mut v = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": spec.rootfs, "readonly": spec.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if spec.uts != Namespace::Host {
        v["hostname"] = json!(spec.hostname);
    }
    if spec.init {
        v["annotations"] = json!({INIT_ANNOTATION: "true"});
    }
    Ok(v)
}

/// Marks a spec whose process runs under berth's built-in init (`--init`).
pub const INIT_ANNOTATION: &str = "org.berth.init";

/// Writes `config.json` into `bundle` (atomically: temp file, then rename).
pub fn write_bundle(bundle: &Path, spec: &Spec) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(bundle).map_err(|e| RuntimeError::io("create", bundle, e))?;
    let tmp = bundle.join(".config.json.tmp");
    let data = serde_json::to_vec(spec).map_err(|e| RuntimeError::Spec(e.to_string()))?;
    std::fs::write(&tmp, data).map_err(|e| RuntimeError::io("write", &tmp, e))?;
    let dest = bundle.join("config.json");
    std::fs::rename(&tmp, &dest).map_err(|e| RuntimeError::io("rename", &dest, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw shared:8 - tmpfs tmpfs rw,mode=755
27 26 0:24 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw
28 26 0:25 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd
29 26 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct
30 26 0:27 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory
31 26 0:28 / /sys/fs/cgroup/rdma rw shared:13 - cgroup cgroup rw,rdma
";

    fn base() -> ContainerSpec {
        ContainerSpec {
            id: "x".into(),
            rootfs: "/r".into(),
            args: vec!["sh".into()],
            cgroups_path: "/berth/x".into(),
            hostname: "abc".into(),
            ..Default::default()
        }
    }

    /// The spec JSON without host devices and seccomp, on a v1 host.
    fn json_of(s: &ContainerSpec) -> Value {
        let caps = wanted_caps(s);
        let layout = parse_cgroup_layout(MOUNTINFO_V1);
        let limits = BTreeMap::from([("nofile".to_string(), 20000u64)]);
        let v = build_with(s, &caps, &layout, &limits).unwrap();
        // Whatever we write, the runtime's parser must accept.
        serde_json::from_value::<Spec>(v.clone()).unwrap();
        v
    }

    fn mount<'a>(v: &'a Value, dest: &str) -> Option<&'a Value> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
    }

    fn ns_types(v: &Value) -> Vec<String> {
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn docker_defaults() {
        let s = ContainerSpec {
            args: vec!["echo".into(), "hi".into()],
            env: vec!["PATH=/bin".into()],
            cap_drop: vec!["net_raw".into()],
            cap_add: vec!["SYS_ADMIN".into()],
            binds: vec![BindMount {
                source: "/h".into(),
                destination: "/etc/hosts".into(),
                readonly: false,
                propagation: None,
            }],
            ..base()
        };
        let spec = build(&s).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap(),
            &vec!["echo".to_string(), "hi".to_string()]
        );
        // Absent, not false: see build_with.
        assert_eq!(p.no_new_privileges(), None);
        let v = serde_json::to_value(&spec).unwrap();
        let bounding: Vec<String> =
            serde_json::from_value(v["process"]["capabilities"]["bounding"].clone()).unwrap();
        assert!(bounding.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!bounding.contains(&"CAP_NET_RAW".to_string()));
        assert!(bounding.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/x");
        let masked = v["linux"]["maskedPaths"].as_array().unwrap();
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/proc/interrupts",
        ] {
            assert!(masked.iter().any(|m| m == p), "{p} not masked");
        }
        assert!(v["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/sysrq-trigger"));
        assert!(mount(&v, "/etc/hosts").is_some());
        assert_eq!(v["process"]["cwd"], "/");
        assert_eq!(v["hostname"], "abc");
        // Docker's seccomp profile, for the capabilities given: SYS_ADMIN
        // opens mount and unshare, nothing opens keyctl.
        let sc = &v["linux"]["seccomp"];
        assert_eq!(sc["defaultAction"], "SCMP_ACT_ERRNO");
        let allowed = |name: &str| {
            sc["syscalls"].as_array().unwrap().iter().any(|r| {
                r["action"] == "SCMP_ACT_ALLOW"
                    && r["names"].as_array().unwrap().iter().any(|n| n == name)
            })
        };
        assert!(allowed("mount") && allowed("unshare") && allowed("read"));
        assert!(!allowed("keyctl"));
        assert_eq!(
            ns_types(&v),
            ["pid", "ipc", "uts", "mount", "network"].map(String::from)
        );
        // A private network namespace gets Docker's sysctls.
        assert_eq!(
            v["linux"]["sysctl"]["net.ipv4.ping_group_range"],
            "0 2147483647"
        );
    }

    #[test]
    fn seccomp_choices() {
        let unconfined = ContainerSpec {
            seccomp: Seccomp::Unconfined,
            ..base()
        };
        assert!(build(&unconfined)
            .unwrap()
            .linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .is_none());
        let privileged = ContainerSpec {
            privileged: true,
            ..base()
        };
        assert!(build(&privileged)
            .unwrap()
            .linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .is_none());
        // An explicit profile applies even to privileged containers.
        let custom = ContainerSpec {
            privileged: true,
            seccomp: Seccomp::Profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#
                    .into(),
            ),
            no_new_privileges: true,
            ..base()
        };
        let spec = build(&custom).unwrap();
        let sc = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
        assert_eq!(
            sc.syscalls().as_ref().unwrap()[0].names(),
            &["mkdir".to_string()]
        );
        assert_eq!(
            spec.process().as_ref().unwrap().no_new_privileges(),
            Some(true)
        );
        let bad = ContainerSpec {
            seccomp: Seccomp::Profile("{".into()),
            ..base()
        };
        assert!(build(&bad).is_err());
    }

    #[test]
    fn privileged_has_everything() {
        let s = ContainerSpec {
            privileged: true,
            ..base()
        };
        let v = serde_json::to_value(build(&s).unwrap()).unwrap();
        assert!(v["linux"].get("maskedPaths").is_none());
        let n = v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(
            n as u32,
            bounding_set().count_ones().min(ALL_CAPS.len() as u32)
        );
        // The host's devices, all allowed.
        let devices = v["linux"]["devices"].as_array().unwrap();
        assert!(devices.iter().any(|d| d["path"] == "/dev/null"));
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
        // Writable cgroups and /sys.
        assert!(!mount(&v, "/sys/fs/cgroup/memory")
            .map(|m| m["options"].as_array().unwrap().iter().any(|o| o == "ro"))
            .unwrap_or(false));
    }

    #[test]
    fn capability_rules() {
        let caps = |add: &[&str], drop: &[&str]| {
            wanted_caps(&ContainerSpec {
                cap_add: add.iter().map(|s| s.to_string()).collect(),
                cap_drop: drop.iter().map(|s| s.to_string()).collect(),
                ..base()
            })
        };
        assert_eq!(caps(&[], &["ALL"]), Vec::<String>::new());
        assert_eq!(caps(&["NET_ADMIN"], &["all"]), ["CAP_NET_ADMIN"]);
        let all = caps(&["ALL"], &["CAP_SYS_ADMIN"]);
        assert_eq!(all.len(), ALL_CAPS.len() - 1);
        assert!(!all.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(caps(&["ALL"], &["ALL"]).len(), ALL_CAPS.len());
        let d = caps(&["chown"], &["kill"]);
        assert_eq!(d.len(), DEFAULT_CAPS.len() - 1);
        assert!(!d.contains(&"CAP_KILL".to_string()));
    }

    #[test]
    fn v1_cgroups_are_read_only_binds_of_the_container_own() {
        let v = json_of(&base());
        let tmpfs = mount(&v, "/sys/fs/cgroup").unwrap();
        assert_eq!(tmpfs["type"], "tmpfs");
        // Root + 4 mount points (memory, cpu,cpuacct, cpu, cpuacct).
        assert!(tmpfs["options"]
            .as_array()
            .unwrap()
            .contains(&json!("nr_inodes=5")));
        let mem = mount(&v, "/sys/fs/cgroup/memory").unwrap();
        assert_eq!(mem["source"], "/sys/fs/cgroup/memory/berth/x");
        assert!(mem["options"].as_array().unwrap().iter().any(|o| o == "ro"));
        for name in ["cpu,cpuacct", "cpu", "cpuacct"] {
            let m = mount(&v, &format!("/sys/fs/cgroup/{name}")).unwrap();
            assert_eq!(m["source"], "/sys/fs/cgroup/cpu,cpuacct/berth/x");
        }
        // Hierarchies the runtime does not place containers in are left out.
        assert!(mount(&v, "/sys/fs/cgroup/systemd").is_none());
        assert!(mount(&v, "/sys/fs/cgroup/rdma").is_none());
        // The tmpfs comes before what is mounted on it, after /sys.
        let pos = |d: &str| {
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .position(|m| m["destination"] == d)
                .unwrap()
        };
        assert!(pos("/sys") < pos("/sys/fs/cgroup"));
        assert!(pos("/sys/fs/cgroup") < pos("/sys/fs/cgroup/memory"));
        assert!(!ns_types(&v).contains(&"cgroup".to_string()));
    }

    #[test]
    fn v2_cgroups_get_a_namespace_and_the_cgroup2_mount() {
        let mi = "30 26 0:27 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let layout = parse_cgroup_layout(mi);
        assert_eq!(layout, CgroupLayout::V2);
        let s = ContainerSpec {
            resources: Resources {
                memory: 64 << 20,
                memory_swap: 128 << 20,
                cpu_shares: 512,
                nano_cpus: 500_000_000,
                pids_limit: 20,
                ..Default::default()
            },
            ..base()
        };
        let v = build_with(&s, &wanted_caps(&s), &layout, &BTreeMap::new()).unwrap();
        let m = mount(&v, "/sys/fs/cgroup").unwrap();
        assert_eq!(m["type"], "cgroup");
        assert!(m["options"].as_array().unwrap().iter().any(|o| o == "ro"));
        assert!(ns_types(&v).contains(&"cgroup".to_string()));
        // The runtime converts OCI's v1-style values for v2 (swap is
        // memory+swap, shares become a weight): parse them as it will.
        let spec: Spec = serde_json::from_value(v).unwrap();
        let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let mem = r.memory().as_ref().unwrap();
        assert_eq!(mem.limit(), Some(64 << 20));
        assert_eq!(mem.swap(), Some(128 << 20));
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
    }

    #[test]
    fn resource_limits() {
        let s = ContainerSpec {
            resources: Resources {
                memory: 32 << 20,
                memory_swap: -1,
                memory_reservation: 16 << 20,
                memory_swappiness: Some(0),
                oom_kill_disable: true,
                cpu_period: 50_000,
                cpu_quota: 25_000,
                cpuset_cpus: "0".into(),
                cpuset_mems: "0".into(),
                blkio_weight: 300,
                ..Default::default()
            },
            ..base()
        };
        let r = &json_of(&s)["linux"]["resources"];
        assert_eq!(
            r["memory"],
            json!({"limit": 32 << 20, "reservation": 16 << 20, "swappiness": 0, "disableOOMKiller": true})
        );
        assert_eq!(
            r["cpu"],
            json!({"period": 50_000, "quota": 25_000, "cpus": "0", "mems": "0"})
        );
        assert_eq!(r["blockIO"], json!({"weight": 300}));
        assert!(r.get("pids").is_none());
        // Nothing set, nothing written but the device rules.
        let r = &json_of(&base())["linux"]["resources"];
        assert_eq!(
            r.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["devices"]
        );
    }

    #[test]
    fn namespaces_shared_with_the_host() {
        let s = ContainerSpec {
            pid: Namespace::Host,
            ipc: Ipc::Host,
            uts: Namespace::Host,
            network: NetworkNs::Host,
            ..base()
        };
        let v = json_of(&s);
        assert_eq!(ns_types(&v), ["mount"]);
        assert!(v.get("hostname").is_none());
        assert!(v["linux"].get("sysctl").is_none());
        let shm = mount(&v, "/dev/shm").unwrap();
        assert_eq!(
            (&shm["type"], &shm["source"]),
            (&json!("bind"), &json!("/dev/shm"))
        );
        let none = json_of(&ContainerSpec {
            ipc: Ipc::None,
            ..base()
        });
        assert!(ns_types(&none).contains(&"ipc".to_string()));
        assert!(mount(&none, "/dev/shm").is_none());
        let joined = json_of(&ContainerSpec {
            ipc: Ipc::Path("/proc/42/ns/ipc".into()),
            pid: Namespace::Path("/proc/42/ns/pid".into()),
            ..base()
        });
        let nss = joined["linux"]["namespaces"].as_array().unwrap();
        assert!(nss.contains(&json!({"type": "ipc", "path": "/proc/42/ns/ipc"})));
        assert!(nss.contains(&json!({"type": "pid", "path": "/proc/42/ns/pid"})));
    }

    #[test]
    fn read_only_root_tmpfs_and_shm() {
        let s = ContainerSpec {
            readonly_rootfs: true,
            shm_size: 1 << 20,
            tmpfs: BTreeMap::from([
                ("/tmp".to_string(), String::new()),
                ("/run".to_string(), "exec,size=1m,mode=700".to_string()),
            ]),
            ..base()
        };
        let v = json_of(&s);
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(
            mount(&v, "/tmp").unwrap()["options"],
            json!(["noexec", "nosuid", "nodev", "rprivate"])
        );
        assert_eq!(
            mount(&v, "/run").unwrap()["options"],
            json!(["nosuid", "nodev", "rprivate", "exec", "size=1m", "mode=700"])
        );
        let shm = mount(&v, "/dev/shm").unwrap()["options"].clone();
        assert!(shm.as_array().unwrap().contains(&json!("size=1048576")));
        assert!(!shm.as_array().unwrap().contains(&json!("ro")));
        // /sys and the cgroup binds stay read-only; the kernel's own mounts
        // stay writable.
        let opts = |d: &str| mount(&v, d).unwrap()["options"].clone();
        assert!(opts("/sys").as_array().unwrap().contains(&json!("ro")));
        assert!(!opts("/proc").as_array().unwrap().contains(&json!("ro")));
        assert!(!opts("/dev").as_array().unwrap().contains(&json!("ro")));
        // A user mount replaces the default at the same place.
        let over = json_of(&ContainerSpec {
            tmpfs: BTreeMap::from([("/dev/shm".to_string(), "size=2m".to_string())]),
            ..base()
        });
        let shms: Vec<_> = over["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shms.len(), 1);
        assert_eq!(shms[0]["source"], "tmpfs");
    }

    #[test]
    fn tmpfs_option_merge() {
        assert_eq!(
            merge_tmpfs_options("rw,size=1m,size=2m,suid").unwrap(),
            ["noexec", "nodev", "rprivate", "rw", "size=2m", "suid"]
        );
        assert_eq!(
            merge_tmpfs_options("defaults,shared").unwrap(),
            ["noexec", "nosuid", "nodev", "shared"]
        );
        assert_eq!(
            merge_tmpfs_options("bogus").unwrap_err(),
            "invalid tmpfs option \"bogus\""
        );
        assert!(merge_tmpfs_options("size").is_err());
    }

    #[test]
    fn rlimits_are_clamped_to_the_host() {
        let s = ContainerSpec {
            rlimits: vec![
                Rlimit {
                    name: "nofile".into(),
                    soft: 100,
                    hard: 200,
                },
                Rlimit {
                    name: "nofile".into(),
                    soft: 50_000,
                    hard: -1,
                },
                Rlimit {
                    name: "core".into(),
                    soft: -1,
                    hard: -1,
                },
            ],
            ..base()
        };
        let v = json_of(&s);
        assert_eq!(
            v["process"]["rlimits"],
            json!([
                {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                {"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000},
                {"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX},
            ])
        );
        let limits = parse_limits(
            "Limit                     Soft Limit           Hard Limit           Units     \n\
             Max cpu time              unlimited            unlimited            seconds   \n\
             Max open files            1024                 20000                files     \n\
             Max locked memory         8388608              8388608              bytes     \n",
        );
        assert_eq!(limits["nofile"], 20000);
        assert_eq!(limits["cpu"], u64::MAX);
        assert_eq!(limits["memlock"], 8388608);
    }

    #[test]
    fn devices_from_the_host() {
        let maps = vec![DeviceMapping {
            path_on_host: "/dev/null".into(),
            path_in_container: "/dev/mynull".into(),
            permissions: "rw".into(),
        }];
        let (devices, rules) = mapped_devices(&maps).unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0]["path"], "/dev/mynull");
        assert_eq!(
            (&devices[0]["major"], &devices[0]["minor"]),
            (&json!(1), &json!(3))
        );
        assert_eq!(devices[0]["type"], "c");
        assert_eq!(
            rules,
            [json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})]
        );
        let spec = build(&ContainerSpec {
            devices: maps,
            ..base()
        })
        .unwrap();
        let v = serde_json::to_value(spec).unwrap();
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/mynull");
        assert!(v["linux"]["resources"]["devices"]
            .as_array()
            .unwrap()
            .contains(
                &json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
            ));
        let err = |host: &str| {
            mapped_devices(&[DeviceMapping {
                path_on_host: host.into(),
                path_in_container: String::new(),
                permissions: "rwm".into(),
            }])
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err("/dev/nope"),
            "error gathering device information while adding custom device \"/dev/nope\": no such file or directory"
        );
        assert_eq!(
            err("/etc/hostname"),
            "error gathering device information while adding custom device \"/etc/hostname\": not a device node"
        );
        assert_eq!((major(0x0103), minor(0x0103)), (1, 3));
        // glibc's encoding of majors above 0xfff and minors above 0xff.
        assert_eq!((major(0x1000_0000_0000), minor(0x10_0000)), (0x1000, 0x100));
    }

    #[test]
    fn security_options() {
        let s = ContainerSpec {
            no_new_privileges: true,
            masked_paths: Some(Vec::new()),
            readonly_paths: Some(Vec::new()),
            sysctls: BTreeMap::from([("net.ipv4.ip_forward".to_string(), "1".to_string())]),
            oom_score_adj: 500,
            ..base()
        };
        let v = json_of(&s);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["process"]["oomScoreAdj"], 500);
        assert_eq!(v["linux"]["maskedPaths"], json!([]));
        assert_eq!(v["linux"]["readonlyPaths"], json!([]));
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert!(json_of(&base())["process"].get("noNewPrivileges").is_none());
    }
}
