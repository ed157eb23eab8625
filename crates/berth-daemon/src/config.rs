//! The daemon's configuration: flags, and everything derived from them.
//!
//! Several daemons must be able to run side by side (the tests do), so every
//! name a daemon uses on the host — run root, socket, cgroup parent — comes
//! from its own configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

/// Default socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// Default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
/// Default run root.
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";

/// `berth daemon` flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "berth daemon",
    about = "Run the berth daemon (Docker Engine API on a Unix socket)"
)]
pub struct DaemonArgs {
    /// Socket to listen on (unix:///path or a plain path).
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    pub host: String,
    /// Root of persistent state: images, containers, the database.
    #[arg(long = "data-root", default_value = DEFAULT_DATA_ROOT)]
    pub data_root: PathBuf,
    /// Root of runtime state: shim sockets, runtime state (default: /run/berth,
    /// or <data-root>/run when --data-root is not the default).
    #[arg(long = "exec-root")]
    pub exec_root: Option<PathBuf>,
    /// debug, info, warn or error.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Group that may use the socket (socket mode 0660).
    #[arg(short = 'G', long = "group")]
    pub group: Option<String>,
    /// Parent cgroup of containers (default: "berth", or "berth-<hash>" for
    /// a non-default data root).
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// An extra OCI runtime as NAME=PATH (repeatable); "runc" is known.
    #[arg(long = "add-runtime")]
    pub add_runtime: Vec<String>,
    /// Runtime used when a container names none ("berth" = built in).
    #[arg(long = "default-runtime", default_value = "berth")]
    pub default_runtime: String,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Socket path.
    pub socket: PathBuf,
    /// Persistent state.
    pub data_root: PathBuf,
    /// Runtime state.
    pub exec_root: PathBuf,
    /// Socket group.
    pub group: Option<String>,
    /// cgroup parent name.
    pub cgroup_parent: String,
    /// Known runtimes: name → binary (`None` for the built-in one).
    pub runtimes: BTreeMap<String, Option<PathBuf>>,
    /// Default runtime name.
    pub default_runtime: String,
    /// Log level.
    pub log_level: String,
}

/// The name of berth's built-in runtime (libcontainer in the shim).
pub const BUILTIN_RUNTIME: &str = "berth";

impl DaemonConfig {
    /// Resolves flags.
    pub fn from_args(a: &DaemonArgs) -> Result<DaemonConfig, String> {
        let socket = PathBuf::from(a.host.strip_prefix("unix://").unwrap_or(&a.host));
        if a.host.contains("://") && !a.host.starts_with("unix://") {
            return Err(format!(
                "unsupported host {}: only unix:// sockets are served",
                a.host
            ));
        }
        let data_root = absolute(&a.data_root);
        let default_root = data_root == std::path::Path::new(DEFAULT_DATA_ROOT);
        let exec_root = a
            .exec_root
            .as_ref()
            .map(|p| absolute(p))
            .unwrap_or_else(|| {
                if default_root {
                    PathBuf::from(DEFAULT_EXEC_ROOT)
                } else {
                    data_root.join("run")
                }
            });
        let cgroup_parent = a.cgroup_parent.clone().unwrap_or_else(|| {
            if default_root {
                "berth".into()
            } else {
                format!("berth-{}", short_hash(&data_root.display().to_string()))
            }
        });
        let mut runtimes = BTreeMap::new();
        runtimes.insert(BUILTIN_RUNTIME.to_string(), None);
        for candidate in [
            "/usr/sbin/runc",
            "/usr/bin/runc",
            "/usr/local/bin/runc",
            "/usr/local/sbin/runc",
        ] {
            if std::path::Path::new(candidate).exists() {
                runtimes.insert("runc".to_string(), Some(PathBuf::from(candidate)));
                break;
            }
        }
        for r in &a.add_runtime {
            let (name, path) = r
                .split_once('=')
                .ok_or_else(|| format!("--add-runtime {r}: expected NAME=PATH"))?;
            runtimes.insert(name.to_string(), Some(PathBuf::from(path)));
        }
        if !runtimes.contains_key(&a.default_runtime) {
            return Err(format!(
                "default runtime {} is not a known runtime",
                a.default_runtime
            ));
        }
        Ok(DaemonConfig {
            socket,
            data_root,
            exec_root,
            group: a.group.clone(),
            cgroup_parent,
            runtimes,
            default_runtime: a.default_runtime.clone(),
            log_level: a.log_level.clone(),
        })
    }

    /// A config for tests: everything under `root`.
    pub fn for_root(root: &std::path::Path) -> DaemonConfig {
        let args = DaemonArgs::parse_from([
            "berth-daemon".to_string(),
            "--data-root".into(),
            root.join("data").display().to_string(),
            "--exec-root".into(),
            root.join("run").display().to_string(),
            "--host".into(),
            root.join("berth.sock").display().to_string(),
        ]);
        DaemonConfig::from_args(&args).expect("valid test config")
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// 8 hex chars of a stable hash (FNV-1a): names derived from a path.
fn short_hash(s: &str) -> String {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    format!("{h:08x}")
}
