//! The daemon's configuration: flags, `/etc/berth/daemon.json` (Docker's
//! keys), and everything derived from them.
//!
//! Several daemons must be able to run side by side (the tests do), so every
//! name a daemon uses on the host — run root, socket, cgroup parent — comes
//! from its own configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// Default socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// Default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
/// Default run root.
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";
/// Default configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
/// The name of berth's built-in runtime (libcontainer in the shim).
pub const BUILTIN_RUNTIME: &str = "berth";

/// `berth daemon` flags. A flag left out falls back to daemon.json, then to
/// the default; setting one both ways is an error, as with dockerd.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "berth daemon",
    about = "Run the berth daemon (Docker Engine API on a Unix socket)"
)]
pub struct DaemonArgs {
    /// Socket to listen on (unix:///path or a plain path) [default: unix:///run/berth/berth.sock].
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// Root of persistent state: images, containers, the database [default: /var/lib/berth].
    #[arg(long = "data-root")]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state: shim sockets, runtime state (default: /run/berth,
    /// or <data-root>/run when --data-root is not the default).
    #[arg(long = "exec-root")]
    pub exec_root: Option<PathBuf>,
    /// debug, info, warn or error [default: info].
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
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
    /// Runtime used when a container names none [default: berth, the built-in one].
    #[arg(long = "default-runtime")]
    pub default_runtime: Option<String>,
    /// Default log driver of containers [default: json-file].
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Default log driver options, KEY=VALUE (repeatable).
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Per-registry TLS files, Docker's certs.d layout:
    /// <dir>/<host[:port]>/{*.crt, client.cert, client.key} [default: /etc/berth/certs.d].
    #[arg(long = "certs-dir")]
    pub certs_dir: Option<PathBuf>,
    /// Daemon configuration file (Docker's daemon.json keys).
    #[arg(long = "config-file", default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,
}

/// A runtime entry of daemon.json.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEntry {
    /// The binary.
    pub path: String,
    /// Extra arguments (accepted; passed to the runtime later).
    #[serde(default)]
    pub runtime_args: Vec<String>,
}

/// The keys of daemon.json berth reads (Docker's names); others are
/// accepted and ignored, as they belong to features berth has elsewhere or
/// not yet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct FileConfig {
    /// `hosts` (the first unix:// one is served).
    pub hosts: Vec<String>,
    /// `data-root`.
    pub data_root: Option<PathBuf>,
    /// `exec-root`.
    pub exec_root: Option<PathBuf>,
    /// `log-level`.
    pub log_level: Option<String>,
    /// `group`.
    pub group: Option<String>,
    /// `cgroup-parent`.
    pub cgroup_parent: Option<String>,
    /// `runtimes`.
    pub runtimes: BTreeMap<String, RuntimeEntry>,
    /// `default-runtime`.
    pub default_runtime: Option<String>,
    /// `log-driver`.
    pub log_driver: Option<String>,
    /// `log-opts`.
    pub log_opts: BTreeMap<String, String>,
    /// `insecure-registries`.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors`.
    pub registry_mirrors: Vec<String>,
    /// `max-concurrent-downloads`.
    pub max_concurrent_downloads: Option<u32>,
    /// `max-concurrent-uploads`.
    pub max_concurrent_uploads: Option<u32>,
    /// `certs-dir` (berth's own key: dockerd's certs.d is fixed).
    pub certs_dir: Option<PathBuf>,
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
    /// Default log driver of containers.
    pub log_driver: String,
    /// Default log driver options.
    pub log_opts: BTreeMap<String, String>,
    /// Registries reached over plain HTTP (besides 127.0.0.0/8).
    pub insecure_registries: Vec<String>,
    /// Mirrors for Docker Hub (URLs, checked).
    pub registry_mirrors: Vec<String>,
    /// Per-registry TLS files (`<dir>/<host[:port]>/ca.crt`, `client.cert`…).
    pub certs_dir: PathBuf,
    /// Parallel layer downloads.
    pub max_concurrent_downloads: u32,
    /// Parallel layer uploads.
    pub max_concurrent_uploads: u32,
    /// Host-side names of this daemon's networking.
    pub net: NetNames,
}

/// What a daemon's networking is named on the host, so that several
/// daemons run side by side: the default daemon has Docker's shape
/// (`berth0`, table `berth`); others add a hash of their data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNames {
    /// The default bridge is `<prefix>0`.
    pub bridge_prefix: String,
    /// The nftables table (`inet` family).
    pub nft_table: String,
    /// Host ends of veth pairs start with this (at most 6 characters).
    pub veth_prefix: String,
}

impl NetNames {
    fn derive(default_root: bool, data_root: &Path) -> NetNames {
        if default_root {
            return NetNames {
                bridge_prefix: "berth".into(),
                nft_table: "berth".into(),
                veth_prefix: "vb".into(),
            };
        }
        let h = short_hash(&data_root.display().to_string());
        NetNames {
            bridge_prefix: format!("bt{h}"),
            nft_table: format!("berth-{h}"),
            veth_prefix: format!("v{}", &h[..5]),
        }
    }

    /// The default bridge's interface.
    pub fn default_bridge(&self) -> String {
        format!("{}0", self.bridge_prefix)
    }
}

/// Picks the flag, else the file's value; both set is dockerd's error.
fn pick<T: Clone>(
    name: &str,
    flag: &Option<T>,
    file: &Option<T>,
    conflicts: &mut Vec<String>,
) -> Option<T> {
    if flag.is_some() && file.is_some() {
        conflicts.push(name.to_string());
    }
    flag.clone().or_else(|| file.clone())
}

impl DaemonConfig {
    /// Resolves flags and the configuration file.
    pub fn from_args(a: &DaemonArgs) -> Result<DaemonConfig, String> {
        let file = match std::fs::read(&a.config_file) {
            Ok(bytes) => serde_json::from_slice::<FileConfig>(&bytes).map_err(|e| {
                format!(
                    "unable to configure the daemon from {}: {e}",
                    a.config_file.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileConfig::default(),
            Err(e) => return Err(format!("reading {}: {e}", a.config_file.display())),
        };
        Self::resolve(a, &file)
    }

    fn resolve(a: &DaemonArgs, f: &FileConfig) -> Result<DaemonConfig, String> {
        let mut conflicts = Vec::new();
        let file_host = f
            .hosts
            .iter()
            .find(|h| h.starts_with("unix://") || h.starts_with('/'))
            .cloned();
        if a.host.is_some() && !f.hosts.is_empty() {
            conflicts.push("hosts".into());
        }
        let host = a
            .host
            .clone()
            .or(file_host)
            .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
        let data_root = pick("data-root", &a.data_root, &f.data_root, &mut conflicts);
        let exec_root = pick("exec-root", &a.exec_root, &f.exec_root, &mut conflicts);
        let log_level = pick("log-level", &a.log_level, &f.log_level, &mut conflicts);
        let group = pick("group", &a.group, &f.group, &mut conflicts);
        let cgroup_parent = pick(
            "cgroup-parent",
            &a.cgroup_parent,
            &f.cgroup_parent,
            &mut conflicts,
        );
        let default_runtime = pick(
            "default-runtime",
            &a.default_runtime,
            &f.default_runtime,
            &mut conflicts,
        );
        let log_driver = pick("log-driver", &a.log_driver, &f.log_driver, &mut conflicts);
        let certs_dir = pick("certs-dir", &a.certs_dir, &f.certs_dir, &mut conflicts);
        if !a.log_opt.is_empty() && !f.log_opts.is_empty() {
            conflicts.push("log-opts".into());
        }
        if !conflicts.is_empty() {
            return Err(format!(
                "the following directives are specified both as a flag and in the configuration file: {}",
                conflicts.join(", ")
            ));
        }
        if host.contains("://") && !host.starts_with("unix://") {
            return Err(format!(
                "unsupported host {host}: only unix:// sockets are served"
            ));
        }
        let socket = PathBuf::from(host.strip_prefix("unix://").unwrap_or(&host));
        let data_root = absolute(&data_root.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT)));
        let default_root = data_root == Path::new(DEFAULT_DATA_ROOT);
        let exec_root = exec_root.map(|p| absolute(&p)).unwrap_or_else(|| {
            if default_root {
                PathBuf::from(DEFAULT_EXEC_ROOT)
            } else {
                data_root.join("run")
            }
        });
        let cgroup_parent = cgroup_parent.unwrap_or_else(|| {
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
            if Path::new(candidate).exists() {
                runtimes.insert("runc".to_string(), Some(PathBuf::from(candidate)));
                break;
            }
        }
        for (name, entry) in &f.runtimes {
            if name == BUILTIN_RUNTIME {
                return Err(format!("runtime name '{name}' is reserved"));
            }
            runtimes.insert(name.clone(), Some(PathBuf::from(&entry.path)));
        }
        for r in &a.add_runtime {
            let (name, path) = r
                .split_once('=')
                .ok_or_else(|| format!("--add-runtime {r}: expected NAME=PATH"))?;
            runtimes.insert(name.to_string(), Some(PathBuf::from(path)));
        }
        let default_runtime = default_runtime.unwrap_or_else(|| BUILTIN_RUNTIME.into());
        if !runtimes.contains_key(&default_runtime) {
            return Err(format!(
                "default runtime {default_runtime} is not a known runtime"
            ));
        }
        let mut log_opts = f.log_opts.clone();
        for o in &a.log_opt {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| format!("--log-opt {o}: expected KEY=VALUE"))?;
            log_opts.insert(k.to_string(), v.to_string());
        }
        for m in &f.registry_mirrors {
            berth_registry::client::endpoint::parse_mirror(m)?;
        }
        let net = NetNames::derive(default_root, &data_root);
        Ok(DaemonConfig {
            socket,
            data_root,
            exec_root,
            group,
            cgroup_parent,
            runtimes,
            default_runtime,
            log_level: log_level.unwrap_or_else(|| "info".into()),
            log_driver: log_driver.unwrap_or_else(|| "json-file".into()),
            log_opts,
            insecure_registries: f.insecure_registries.clone(),
            registry_mirrors: f.registry_mirrors.clone(),
            certs_dir: absolute(
                &certs_dir
                    .unwrap_or_else(|| PathBuf::from(berth_registry::client::DEFAULT_CERTS_DIR)),
            ),
            max_concurrent_downloads: f.max_concurrent_downloads.unwrap_or(3),
            max_concurrent_uploads: f.max_concurrent_uploads.unwrap_or(5),
            net,
        })
    }

    /// A config for tests: everything under `root`, no configuration file.
    pub fn for_root(root: &Path) -> DaemonConfig {
        let args = DaemonArgs {
            data_root: Some(root.join("data")),
            exec_root: Some(root.join("run")),
            host: Some(root.join("berth.sock").display().to_string()),
            config_file: root.join("no-daemon.json"),
            ..Default::default()
        };
        DaemonConfig::from_args(&args).expect("valid test config")
    }
}

fn absolute(p: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> FileConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn file_and_flags() {
        let f = file(
            r#"{"data-root": "/srv/berth", "log-level": "debug", "runtimes": {"myrunc": {"path": "/opt/runc"}},
                "default-runtime": "myrunc", "log-opts": {"max-size": "10m"}, "unknown-key": 1}"#,
        );
        let c = DaemonConfig::resolve(&DaemonArgs::default(), &f).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/srv/berth"));
        assert_eq!(c.exec_root, PathBuf::from("/srv/berth/run"));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.runtimes["myrunc"], Some(PathBuf::from("/opt/runc")));
        assert_eq!(c.default_runtime, "myrunc");
        assert_eq!(c.log_opts["max-size"], "10m");
        assert!(c.cgroup_parent.starts_with("berth-"));
        let both = DaemonArgs {
            log_level: Some("warn".into()),
            ..Default::default()
        };
        let err = DaemonConfig::resolve(&both, &f).unwrap_err();
        assert!(
            err.contains("both as a flag and in the configuration file: log-level"),
            "{err}"
        );
        let d = DaemonConfig::resolve(&DaemonArgs::default(), &FileConfig::default()).unwrap();
        assert_eq!(d.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(d.cgroup_parent, "berth");
        assert_eq!(d.net.default_bridge(), "berth0");
        assert_eq!(d.net.nft_table, "berth");
        let n = NetNames::derive(false, Path::new("/tmp/x"));
        assert!(n.default_bridge().len() <= 15 && n.veth_prefix.len() <= 6);
        assert_ne!(n, NetNames::derive(false, Path::new("/tmp/y")));
        assert_eq!(d.log_driver, "json-file");
        assert!(DaemonConfig::resolve(
            &DaemonArgs::default(),
            &file(r#"{"runtimes": {"berth": {"path": "/x"}}}"#)
        )
        .is_err());
        assert_eq!(d.certs_dir, PathBuf::from("/etc/berth/certs.d"));
        let c = DaemonConfig::resolve(
            &DaemonArgs::default(),
            &file(r#"{"certs-dir": "/tmp/certs", "registry-mirrors": ["http://127.0.0.1:5000/"]}"#),
        )
        .unwrap();
        assert_eq!(c.certs_dir, PathBuf::from("/tmp/certs"));
        let err = DaemonConfig::resolve(
            &DaemonArgs::default(),
            &file(r#"{"registry-mirrors": ["mirror.example:5000"]}"#),
        )
        .unwrap_err();
        assert!(err.contains("invalid mirror"), "{err}");
    }
}
