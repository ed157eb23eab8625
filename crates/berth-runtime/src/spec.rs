//! The OCI runtime spec (`config.json`) of a container, with Docker's
//! defaults: its capabilities, mounts, masked paths and device rules.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::RuntimeError;

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
const ALL_CAPS: &[&str] = &[
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

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path inside the container.
    pub destination: String,
    /// Mounted read-only.
    pub readonly: bool,
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
    /// UTS hostname.
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
    /// Size of /dev/shm in bytes.
    pub shm_size: u64,
    /// Network namespace.
    pub network: NetworkNs,
    /// Capabilities added on top of the default set.
    pub cap_add: Vec<String>,
    /// Capabilities removed from the default set.
    pub cap_drop: Vec<String>,
}

/// 64 MiB, Docker's default /dev/shm.
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// The capabilities this process may hand on (its bounding set): a
/// container cannot get more than its runtime has, so privileged means
/// "all that are available", as with Docker.
fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
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

fn wanted_caps(spec: &ContainerSpec) -> Vec<String> {
    if spec.privileged {
        return ALL_CAPS.iter().map(|s| s.to_string()).collect();
    }
    let norm = |c: &str| {
        let up = c.to_ascii_uppercase();
        if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let drop_all = spec.cap_drop.iter().any(|c| c.eq_ignore_ascii_case("all"));
    let add_all = spec.cap_add.iter().any(|c| c.eq_ignore_ascii_case("all"));
    let mut set: Vec<String> = if add_all {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else if drop_all {
        Vec::new()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if !drop_all {
        let dropped: Vec<String> = spec.cap_drop.iter().map(|c| norm(c)).collect();
        set.retain(|c| !dropped.contains(c));
    }
    for c in spec
        .cap_add
        .iter()
        .filter(|c| !c.eq_ignore_ascii_case("all"))
    {
        let c = norm(c);
        if !set.contains(&c) {
            set.push(c);
        }
    }
    set
}

/// Builds the spec as JSON, then parses it into oci-spec's typed [`Spec`],
/// which validates every field.
pub fn build(spec: &ContainerSpec) -> Result<Spec, RuntimeError> {
    let caps = caps(spec);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if spec.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", if spec.shm_size == 0 { DEFAULT_SHM_SIZE } else { spec.shm_size })]}),
    ];
    for b in &spec.binds {
        let mut opts = vec!["rbind", "rprivate"];
        if b.readonly {
            opts.push("ro");
        }
        mounts.push(json!({"destination": b.destination, "type": "bind", "source": b.source, "options": opts}));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &spec.network {
        NetworkNs::New => namespaces.push(json!({"type": "network"})),
        NetworkNs::Host => {}
        NetworkNs::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
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
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": spec.cgroups_path,
        "resources": {"devices": devices},
    });
    if !spec.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let mut env = spec.env.clone();
    if spec.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let v = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": spec.tty,
            "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": spec.additional_gids},
            "args": spec.args,
            "env": env,
            "cwd": if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false,
        },
        "root": {"path": spec.rootfs, "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": linux,
    });
    serde_json::from_value(v).map_err(|e| RuntimeError::Spec(e.to_string()))
}

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

    #[test]
    fn docker_defaults() {
        let s = ContainerSpec {
            id: "x".into(),
            rootfs: "/r".into(),
            args: vec!["echo".into(), "hi".into()],
            env: vec!["PATH=/bin".into()],
            hostname: "abc".into(),
            cgroups_path: "/berth/x".into(),
            cap_drop: vec!["net_raw".into()],
            cap_add: vec!["SYS_ADMIN".into()],
            binds: vec![BindMount {
                source: "/h".into(),
                destination: "/etc/hosts".into(),
                readonly: false,
            }],
            ..Default::default()
        };
        let spec = build(&s).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap(),
            &vec!["echo".to_string(), "hi".to_string()]
        );
        let v = serde_json::to_value(&spec).unwrap();
        let bounding: Vec<String> =
            serde_json::from_value(v["process"]["capabilities"]["bounding"].clone()).unwrap();
        assert!(bounding.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!bounding.contains(&"CAP_NET_RAW".to_string()));
        assert!(bounding.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/x");
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/kcore"));
        assert!(v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/etc/hosts"));
        assert_eq!(v["process"]["cwd"], "/");
    }

    #[test]
    fn privileged_has_everything() {
        let s = ContainerSpec {
            privileged: true,
            cgroups_path: "/b/x".into(),
            ..Default::default()
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
    }
}
