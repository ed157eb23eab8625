//! What the daemon does to a running container's cgroup after the runtime
//! made it: change its limits (`docker update`), read its usage (`docker
//! stats`), list its processes (`docker top`), freeze and thaw it (`docker
//! pause`/`unpause`) and count its OOM kills.
//!
//! A container lives in the cgroup `cgroups_path` of its OCI spec (e.g.
//! `/berth/<id>`); the runtime creates and removes it. [`Hierarchy`] says how
//! that path maps onto files:
//!
//! - cgroup v1: one tree per controller, `<root>/<controller>/<path>`
//!   (`<root>` is `/sys/fs/cgroup`; `cpu` and `cpuacct` may be symlinks to a
//!   shared `cpu,cpuacct` mount, which is the same to us);
//! - cgroup v2: one tree, `<root>/<path>` (`<root>` is the cgroup2 mount).
//!
//! Everything is plain reads and writes of cgroup files, and every function
//! takes its root, so tests point it at a real cgroup2 mount in a temp dir or
//! at a tree of plain fixture files.
//!
//! ```no_run
//! use berth_runtime::cgroups::{Hierarchy, Resources};
//! let h = Hierarchy::detect();
//! h.update("/berth/0123abcd", &Resources { memory: Some(256 << 20), ..Default::default() })?;
//! let stats = h.stats("/berth/0123abcd")?;
//! println!("{} bytes", stats.memory.usage);
//! # Ok::<(), berth_runtime::cgroups::CgroupError>(())
//! ```

mod reader;
mod stats;
#[cfg(test)]
mod testing;
mod v1;
mod v2;

use std::io::{ErrorKind, Write as _};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub use reader::{read_afresh, HostReader, HostSample, StatsReader};
pub use stats::{
    machine_memory, online_cpus, parse_cpuset, system_cpu_usage, BlkioEntry, BlkioStats, CpuStats,
    KeyedValues, MemoryStats, PidsStats, Stats, Throttling,
};

/// Where the system's cgroups are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How long [`Hierarchy::freeze`] and [`Hierarchy::thaw`] wait for the
/// kernel to reach the asked state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The cgroup hierarchy containers live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v1 (also the "hybrid" layout): one mount per controller.
    V1 {
        /// The directory holding the controller mounts (`/sys/fs/cgroup`).
        root: PathBuf,
    },
    /// cgroup v2: one unified tree.
    V2 {
        /// The cgroup2 mount (`/sys/fs/cgroup`).
        root: PathBuf,
    },
}

/// Limits to change on a running container (`docker update`), in Docker's
/// units and conventions. `None` leaves a setting alone; so does `Some(0)`
/// wherever Docker's API uses 0 for "not set" (memory, memory_swap,
/// memory_reservation, nano_cpus… see each field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes (`--memory`); -1 removes the limit, 0 = unset.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes (`--memory-swap`, Docker's meaning: not swap
    /// alone); -1 = unlimited swap, 0 = unset. Must be ≥ the memory limit.
    pub memory_swap: Option<i64>,
    /// Soft limit in bytes (`--memory-reservation`); -1 removes it, 0 = unset.
    pub memory_reservation: Option<i64>,
    /// CPUs in billionths (`--cpus 1.5` = 1_500_000_000): quota over a
    /// 100 ms period. 0 = unset. Conflicts with `cpu_quota`/`cpu_period`.
    pub nano_cpus: Option<i64>,
    /// Relative CPU weight (`--cpu-shares`, 2..262144); 0 = unset.
    pub cpu_shares: Option<u64>,
    /// CFS quota in µs per period (`--cpu-quota`); -1 removes it, 0 = unset.
    pub cpu_quota: Option<i64>,
    /// CFS period in µs (`--cpu-period`); 0 = unset.
    pub cpu_period: Option<u64>,
    /// CPUs allowed (`--cpuset-cpus`, e.g. "0-2,4"); "" = unset.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed (`--cpuset-mems`); "" = unset.
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (`--pids-limit`); 0 or -1 = unlimited.
    pub pids_limit: Option<i64>,
    /// Block I/O weight (`--blkio-weight`, 10..1000); 0 = unset.
    pub blkio_weight: Option<u16>,
}

/// Errors of the cgroup layer; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The container's cgroup does not exist (the container is gone).
    #[error("cgroup {path} does not exist")]
    NotFound {
        /// The missing cgroup directory.
        path: PathBuf,
    },
    /// The kernel or the cgroup's controllers do not offer this file (e.g.
    /// `blkio.weight` without a proportional I/O scheduler, `memory.swap.max`
    /// without swap accounting). Nothing was written.
    #[error("{path}: not supported by this kernel or cgroup (file does not exist)")]
    Unsupported {
        /// The file that would be needed.
        path: PathBuf,
    },
    /// Writing a setting failed; `source` is the OS error (EBUSY or EINVAL
    /// when a memory limit is below current usage, …).
    #[error("failed to write {value:?} to {path}: {source}")]
    Write {
        /// The cgroup file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading a cgroup file failed.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A cgroup file held something we cannot parse.
    #[error("unexpected content in {path}: {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held (trimmed).
        content: String,
    },
    /// A requested setting is invalid on its own or with the others.
    /// Nothing was written.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The [`Resources`] field at fault.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The freezer did not reach the asked state in time (a process stuck in
    /// the kernel); a failed freeze is thawed again.
    #[error("{path} did not become {state} within {timeout:?}")]
    Timeout {
        /// The freezer file polled.
        path: PathBuf,
        /// The state waited for.
        state: &'static str,
        /// How long we waited.
        timeout: Duration,
    },
}

impl Hierarchy {
    /// The system's hierarchy: v2 when `/sys/fs/cgroup` is a cgroup2 mount,
    /// else v1 (including the hybrid layout, whose v2 part offers no
    /// controllers).
    pub fn detect() -> Hierarchy {
        Hierarchy::detect_at(Path::new(CGROUP_ROOT))
    }

    /// As [`Hierarchy::detect`] for a mount point other than `/sys/fs/cgroup`.
    pub fn detect_at(root: &Path) -> Hierarchy {
        use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
        match statfs(root) {
            Ok(fs) if fs.filesystem_type() == CGROUP2_SUPER_MAGIC => Hierarchy::V2 {
                root: root.to_path_buf(),
            },
            _ => Hierarchy::V1 {
                root: root.to_path_buf(),
            },
        }
    }

    /// 1 or 2.
    pub fn version(&self) -> u8 {
        match self {
            Hierarchy::V1 { .. } => 1,
            Hierarchy::V2 { .. } => 2,
        }
    }

    /// Applies `r` to the running container in `cgroup_path`, as `docker
    /// update` does. Every setting is checked and every file needed is
    /// looked for before the first write, so bad input and missing support
    /// change nothing; a write the kernel refuses (EBUSY/EINVAL for a memory
    /// limit below usage) stops the update there and is returned.
    pub fn update(&self, cgroup_path: &str, r: &Resources) -> Result<(), CgroupError> {
        let rel = relative(cgroup_path)?;
        let plan = match self {
            Hierarchy::V1 { root } => v1::plan_update(root, &rel, r)?,
            Hierarchy::V2 { root } => v2::plan_update(&root.join(&rel), r)?,
        };
        apply(&plan)
    }

    /// The container's resource usage, for `docker stats`. Controllers that
    /// are not there leave their part at its default; a missing cgroup is
    /// [`CgroupError::NotFound`].
    pub fn stats(&self, cgroup_path: &str) -> Result<Stats, CgroupError> {
        self.stats_reader(cgroup_path)?.read()
    }

    /// The container's stats files, opened for repeated samples (a
    /// streaming `docker stats`); errors as [`Hierarchy::stats`].
    pub fn stats_reader(&self, cgroup_path: &str) -> Result<StatsReader, CgroupError> {
        let rel = relative(cgroup_path)?;
        match self {
            Hierarchy::V1 { root } => StatsReader::open_v1(root, &rel),
            Hierarchy::V2 { root } => StatsReader::open_v2(&root.join(&rel)),
        }
    }

    /// Every process in the cgroup and the cgroups below it (for `docker
    /// top`), sorted.
    pub fn pids(&self, cgroup_path: &str) -> Result<Vec<i32>, CgroupError> {
        let rel = relative(cgroup_path)?;
        let dir = match self {
            Hierarchy::V1 { root } => v1::pids_dir(root, &rel)?,
            Hierarchy::V2 { root } => existing_dir(root.join(&rel))?,
        };
        let mut pids = Vec::new();
        collect_pids(&dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Freezes every process in the cgroup (`docker pause`) and returns once
    /// the kernel reports the cgroup frozen.
    pub fn freeze(&self, cgroup_path: &str) -> Result<(), CgroupError> {
        let rel = relative(cgroup_path)?;
        match self {
            Hierarchy::V1 { root } => v1::set_frozen(root, &rel, true, FREEZE_TIMEOUT),
            Hierarchy::V2 { root } => v2::set_frozen(&root.join(&rel), true, FREEZE_TIMEOUT),
        }
    }

    /// Thaws the cgroup (`docker unpause`) and returns once it runs again.
    pub fn thaw(&self, cgroup_path: &str) -> Result<(), CgroupError> {
        let rel = relative(cgroup_path)?;
        match self {
            Hierarchy::V1 { root } => v1::set_frozen(root, &rel, false, FREEZE_TIMEOUT),
            Hierarchy::V2 { root } => v2::set_frozen(&root.join(&rel), false, FREEZE_TIMEOUT),
        }
    }

    /// Whether the cgroup is frozen (fully: a cgroup still freezing is not).
    pub fn is_frozen(&self, cgroup_path: &str) -> Result<bool, CgroupError> {
        let rel = relative(cgroup_path)?;
        match self {
            Hierarchy::V1 { root } => v1::is_frozen(root, &rel),
            Hierarchy::V2 { root } => v2::is_frozen(&root.join(&rel)),
        }
    }

    /// How many processes the kernel's OOM killer killed in this cgroup
    /// (`oom_kill` of v1 `memory.oom_control`, kernels ≥ 4.13, or of v2
    /// `memory.events`); `None` when that cannot be read (cgroup gone, no
    /// memory controller, old kernel).
    pub fn oom_kills(&self, cgroup_path: &str) -> Option<u64> {
        let rel = relative(cgroup_path).ok()?;
        let file = match self {
            Hierarchy::V1 { root } => root.join("memory").join(rel).join("memory.oom_control"),
            Hierarchy::V2 { root } => root.join(rel).join("memory.events"),
        };
        let text = std::fs::read_to_string(file).ok()?;
        stats::parse_flat_keyed(&text).get("oom_kill").copied()
    }
}

impl Hierarchy {
    /// Removes a container's cgroup (every v1 hierarchy's copy), killing
    /// what is left in it first. Absent is fine. What libcontainer's delete
    /// does, for a monitor that does not link libcontainer.
    pub fn remove(&self, cgroup_path: &str) -> Result<(), CgroupError> {
        let rel = relative(cgroup_path)?;
        let dirs: Vec<PathBuf> = match self {
            Hierarchy::V1 { root } => std::fs::read_dir(root)
                .map(|rd| rd.flatten().map(|e| e.path().join(&rel)).collect())
                .unwrap_or_default(),
            Hierarchy::V2 { root } => vec![root.join(&rel)],
        };
        for d in &dirs {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for d in &dirs {
            // A cgroup whose last process just died can be busy for a moment.
            for attempt in 0..50 {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(source) => {
                        return Err(CgroupError::Write {
                            path: d.clone(),
                            value: "rmdir".into(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes a cgroup directory (every v1 hierarchy's copy) only where
    /// it is empty: a daemon that stops tidies its parent cgroup away, but
    /// one still holding running containers stays (rmdir refuses it).
    pub fn remove_if_empty(&self, cgroup_path: &str) {
        let Ok(rel) = relative(cgroup_path) else {
            return;
        };
        let dirs: Vec<PathBuf> = match self {
            Hierarchy::V1 { root } => std::fs::read_dir(root)
                .map(|rd| rd.flatten().map(|e| e.path().join(&rel)).collect())
                .unwrap_or_default(),
            Hierarchy::V2 { root } => vec![root.join(&rel)],
        };
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
    }

    /// `--oom-kill-disable`: on v1, memory.oom_control = 1 (libcontainer
    /// ignores the spec's disableOOMKiller). v2 has no such switch: Docker
    /// warns and ignores it there, and so does this.
    pub fn disable_oom_killer(&self, cgroup_path: &str) -> Result<(), CgroupError> {
        let Hierarchy::V1 { root } = self else {
            return Ok(());
        };
        let file = root
            .join("memory")
            .join(relative(cgroup_path)?)
            .join("memory.oom_control");
        std::fs::write(&file, "1").map_err(|source| CgroupError::Write {
            path: file,
            value: "1".into(),
            source,
        })
    }
}

/// `cgroup_path` as a path relative to a hierarchy's root. Refuses `..`,
/// which would leave the hierarchy, and the root itself.
fn relative(cgroup_path: &str) -> Result<PathBuf, CgroupError> {
    let mut rel = PathBuf::new();
    for c in Path::new(cgroup_path).components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CgroupError::Invalid {
                    field: "cgroup path",
                    value: cgroup_path.to_string(),
                    reason: "must not contain ..",
                })
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(CgroupError::Invalid {
            field: "cgroup path",
            value: cgroup_path.to_string(),
            reason: "must name a cgroup below the root",
        });
    }
    Ok(rel)
}

/// One write of an update, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Write {
    path: PathBuf,
    value: String,
    /// On EINVAL, try again after the next write (runc's rule for a v1
    /// `cpu.cfs_period_us` that the old quota makes invalid until the new
    /// quota is written).
    retry_after_next: bool,
}

impl Write {
    fn new(path: PathBuf, value: impl Into<String>) -> Write {
        Write {
            path,
            value: value.into(),
            retry_after_next: false,
        }
    }
}

/// Checks that every file of the plan exists, then writes them in order.
fn apply(plan: &[Write]) -> Result<(), CgroupError> {
    for w in plan {
        if !w.path.exists() {
            return Err(CgroupError::Unsupported {
                path: w.path.clone(),
            });
        }
    }
    let mut deferred: Option<&Write> = None;
    for w in plan {
        match write(&w.path, &w.value) {
            Err(CgroupError::Write { source, .. })
                if w.retry_after_next
                    && deferred.is_none()
                    && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                deferred = Some(w);
                continue;
            }
            result => result?,
        }
        if let Some(d) = deferred.take() {
            write(&d.path, &d.value)?;
        }
    }
    match deferred {
        Some(d) => write(&d.path, &d.value),
        None => Ok(()),
    }
}

/// Writes `value` to a cgroup file in one `write(2)`, without creating it.
fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    tracing::debug!(path = %path.display(), value, "cgroup write");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

/// Reads a cgroup file.
fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a cgroup file that may be missing (controller not there).
fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parses a file holding one number.
fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| parse_error(path, text))
}

fn parse_error(path: &Path, text: &str) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.trim().to_string(),
    }
}

/// `dir` if it is a directory, else [`CgroupError::NotFound`].
fn existing_dir(dir: PathBuf) -> Result<PathBuf, CgroupError> {
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(CgroupError::NotFound { path: dir })
    }
}

/// Appends the pids of `dir/cgroup.procs` and of every cgroup below.
fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    for line in read(&procs)?.lines().filter(|l| !l.trim().is_empty()) {
        out.push(line.trim().parse().map_err(|_| parse_error(&procs, line))?);
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            match collect_pids(&entry.path(), out) {
                // A child cgroup removed while we walk: its processes are gone.
                Err(CgroupError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// Checks the settings that need no file to check: ranges, combinations and
/// cpuset syntax (what Docker's daemon also refuses up front).
fn validate(r: &Resources) -> Result<(), CgroupError> {
    let invalid = |field, value: String, reason| CgroupError::Invalid {
        field,
        value,
        reason,
    };
    for (field, v) in [
        ("memory", r.memory),
        ("memory_swap", r.memory_swap),
        ("memory_reservation", r.memory_reservation),
    ] {
        if let Some(v) = v.filter(|&v| v < -1) {
            return Err(invalid(field, v.to_string(), "must be -1, 0 or positive"));
        }
    }
    if let (Some(m), Some(s)) = (set(r.memory), set(r.memory_swap)) {
        if m > 0 && s > 0 && s < m {
            return Err(invalid(
                "memory_swap",
                s.to_string(),
                "memory+swap limit must be at least the memory limit",
            ));
        }
        if m == -1 && s > 0 {
            return Err(invalid(
                "memory_swap",
                s.to_string(),
                "a swap limit needs a memory limit",
            ));
        }
    }
    if let Some(n) = r.nano_cpus {
        if n < 0 {
            return Err(invalid("nano_cpus", n.to_string(), "must not be negative"));
        }
        if n > 0 && (set(r.cpu_quota).is_some() || r.cpu_period.is_some_and(|p| p != 0)) {
            return Err(invalid(
                "nano_cpus",
                n.to_string(),
                "conflicts with cpu_quota and cpu_period",
            ));
        }
    }
    if let Some(q) = r.cpu_quota.filter(|&q| q < -1) {
        return Err(invalid(
            "cpu_quota",
            q.to_string(),
            "must be -1, 0 or positive",
        ));
    }
    for (field, v) in [
        ("cpuset_cpus", &r.cpuset_cpus),
        ("cpuset_mems", &r.cpuset_mems),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            if parse_cpuset(v).is_none() {
                return Err(invalid(
                    field,
                    v.to_string(),
                    "not a list of numbers and ranges",
                ));
            }
        }
    }
    if let Some(w) = r.blkio_weight.filter(|&w| w != 0) {
        if !(10..=1000).contains(&w) {
            return Err(invalid("blkio_weight", w.to_string(), "must be 10 to 1000"));
        }
    }
    Ok(())
}

/// A Docker "0 means unset" value: `Some` only when set and not 0.
fn set(v: Option<i64>) -> Option<i64> {
    v.filter(|&v| v != 0)
}

/// A cpuset string to write, when set and not empty.
fn cpuset(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The CFS quota and period for `--cpus` (Docker: 100 ms period).
fn nano_cpus_to_quota(nano: i64) -> (i64, u64) {
    const PERIOD: u64 = 100_000;
    (nano * PERIOD as i64 / 1_000_000_000, PERIOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative("/berth/abc").unwrap(), PathBuf::from("berth/abc"));
        assert_eq!(relative("berth/abc/").unwrap(), PathBuf::from("berth/abc"));
        assert!(matches!(
            relative("/berth/../../etc"),
            Err(CgroupError::Invalid { .. })
        ));
        assert!(matches!(relative("/"), Err(CgroupError::Invalid { .. })));
    }

    #[test]
    fn validate_refuses_bad_combinations() {
        let ok = Resources {
            memory: Some(100 << 20),
            memory_swap: Some(200 << 20),
            nano_cpus: Some(1_500_000_000),
            cpuset_cpus: Some("0-1".into()),
            blkio_weight: Some(500),
            ..Default::default()
        };
        validate(&ok).unwrap();
        let cases = [
            Resources {
                memory: Some(200 << 20),
                memory_swap: Some(100 << 20),
                ..Default::default()
            },
            Resources {
                memory: Some(-1),
                memory_swap: Some(100 << 20),
                ..Default::default()
            },
            Resources {
                memory: Some(-5),
                ..Default::default()
            },
            Resources {
                nano_cpus: Some(1_000_000_000),
                cpu_quota: Some(50_000),
                ..Default::default()
            },
            Resources {
                cpuset_cpus: Some("0-a".into()),
                ..Default::default()
            },
            Resources {
                blkio_weight: Some(5),
                ..Default::default()
            },
        ];
        for r in cases {
            assert!(
                matches!(validate(&r), Err(CgroupError::Invalid { .. })),
                "{r:?}"
            );
        }
        // 0 is Docker's "unset": no conflict.
        validate(&Resources {
            nano_cpus: Some(1_000_000_000),
            cpu_quota: Some(0),
            cpu_period: Some(0),
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn nano_cpus_become_quota_over_100ms() {
        assert_eq!(nano_cpus_to_quota(1_500_000_000), (150_000, 100_000));
        assert_eq!(nano_cpus_to_quota(10_000_000), (1_000, 100_000));
    }

    #[test]
    fn apply_checks_every_file_before_writing() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::write(&a, "old").unwrap();
        let plan = [
            Write::new(a.clone(), "new"),
            Write::new(t.path().join("missing"), "1"),
        ];
        match apply(&plan) {
            Err(CgroupError::Unsupported { path }) => assert_eq!(path, t.path().join("missing")),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
    }

    #[test]
    fn detect_on_this_machine_and_on_a_plain_dir() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(Hierarchy::detect_at(t.path()).version(), 1);
        let h = Hierarchy::detect();
        let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok();
        assert_eq!(h.version(), if v2 { 2 } else { 1 });
    }
}
