//! Volumes with Docker's `local` driver: a plain directory
//! `<data-root>/volumes/<name>/_data`, or, with `type`/`device`/`o`
//! options, whatever that mount gives, mounted there at first use and
//! unmounted when the last running container using it stops.
//!
//! Which containers use a volume is not stored twice: it is read from the
//! containers' records ([`super::mounts::MountPoint`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_store::VolumeRow;
use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{new_id, Daemon};
use crate::error::{DaemonError, Result};

/// The label Docker (≥ 23) puts on anonymous volumes; `volume prune`
/// removes only those unless `all=true`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Volume creation, removal and first mounts are serialised (coarse, but
/// they are rare and short).
static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A volume as stored (JSON in the volumes table).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Unique name.
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// User labels (plus [`ANONYMOUS_LABEL`] on anonymous volumes).
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o`).
    pub options: BTreeMap<String, String>,
    /// RFC 3339, seconds.
    pub created: String,
}

impl Volume {
    /// Made for `-v /path` or an image `VOLUME`.
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// A create request (`POST /volumes/create`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeCreate {
    /// Empty for a generated name.
    #[serde(default)]
    pub name: String,
    /// Empty means `local`.
    #[serde(default)]
    pub driver: String,
    /// Driver options.
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Docker's volume name rule.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// The `local` driver's options, checked as Docker checks them.
fn check_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !["type", "device", "o", "size"].contains(&k.as_str()) {
            return Err(DaemonError::BadRequest(format!(
                "create: invalid option key: {k:?}"
            )));
        }
    }
    if opts.contains_key("size") {
        return Err(DaemonError::BadRequest(
            "create: quota size requested but no quota support".into(),
        ));
    }
    let has_type = opts.get("type").is_some_and(|t| !t.is_empty());
    let has_device = opts.get("device").is_some_and(|t| !t.is_empty());
    if !opts.is_empty()
        && (!has_type || !has_device)
        && opts.get("type").map(String::as_str) != Some("tmpfs")
    {
        if !has_type {
            return Err(DaemonError::BadRequest(
                "create: missing required option: \"type\"".into(),
            ));
        }
        return Err(DaemonError::BadRequest(
            "create: missing required option: \"device\"".into(),
        ));
    }
    Ok(())
}

/// Splits `o=` into mount flags and the data string the filesystem gets.
fn mount_options(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let f = match opt {
            "ro" => MsFlags::MS_RDONLY,
            "rw" | "defaults" | "suid" | "dev" | "exec" | "async" | "atime" | "diratime" => {
                MsFlags::empty()
            }
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            "bind" => MsFlags::MS_BIND,
            "rbind" => MsFlags::MS_BIND | MsFlags::MS_REC,
            other => {
                data.push(other);
                continue;
            }
        };
        flags |= f;
    }
    (flags, data.join(","))
}

fn now_seconds() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn internal(what: &str, p: &Path, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Internal(format!("{what} {}: {e}", p.display()))
}

impl Daemon {
    /// `<data-root>/volumes/<name>`.
    fn volume_dir(&self, name: &str) -> PathBuf {
        self.cfg.data_root.join("volumes").join(name)
    }

    /// Where a volume's content is (its `Mountpoint`).
    pub fn volume_path(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    /// Creates a volume; an existing one with the same name is returned
    /// as is (Docker's create is idempotent) unless the options differ.
    /// Returns the volume and whether it was made now.
    pub fn volume_create(&self, req: VolumeCreate) -> Result<(Volume, bool)> {
        let driver = if req.driver.is_empty() {
            "local".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "local" {
            return Err(DaemonError::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let name = if req.name.is_empty() {
            new_id()
        } else {
            req.name.clone()
        };
        if !valid_name(&name) {
            return Err(DaemonError::BadRequest(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        let options = req.driver_opts.clone().unwrap_or_default();
        check_options(&options)?;
        let _g = lock();
        if let Some(v) = self.volume_get(&name)? {
            if !options.is_empty() && v.options != options {
                return Err(DaemonError::Conflict(format!(
                    "create {name}: volume already exists with different options"
                )));
            }
            return Ok((v, false));
        }
        let vol = Volume {
            name: name.clone(),
            driver,
            labels: req.labels.clone().unwrap_or_default(),
            options,
            created: now_seconds(),
        };
        // Directory first, then the row: a directory without a row is
        // swept at start.
        let data = self.volume_path(&name);
        std::fs::create_dir_all(&data).map_err(|e| internal("create", &data, e))?;
        let record =
            serde_json::to_string(&vol).map_err(|e| DaemonError::Internal(e.to_string()))?;
        if let Err(e) = self.meta.insert_volume(&VolumeRow {
            name: name.clone(),
            created_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
            record,
        }) {
            let _ = std::fs::remove_dir_all(self.volume_dir(&name));
            return Err(e.into());
        }
        tracing::debug!(%name, "volume created");
        self.events.emit(
            "volume",
            "create",
            &name,
            super::events::attrs([("driver", "local")]),
        );
        Ok((vol, true))
    }

    /// The volume with this name, if any.
    pub fn volume_get(&self, name: &str) -> Result<Option<Volume>> {
        let Some(row) = self.meta.volume(name)? else {
            return Ok(None);
        };
        Ok(serde_json::from_str(&row.record).ok())
    }

    /// The volume or Docker's 404.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.volume_get(name)?
            .ok_or_else(|| DaemonError::NotFound(format!("get {name}: no such volume")))
    }

    /// All volumes.
    pub fn volumes(&self) -> Result<Vec<Volume>> {
        Ok(self
            .meta
            .volumes()?
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.record).ok())
            .collect())
    }

    /// IDs of the containers whose mounts name the volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.containers()
            .iter()
            .filter(|c| {
                c.rec()
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// Removes a volume: 409 while a container uses it; `force` only
    /// ignores a missing volume (as Docker's does).
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _g = lock();
        if self.volume_get(name)?.is_none() {
            if force {
                return Ok(());
            }
            return Err(DaemonError::NotFound(format!("get {name}: no such volume")));
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(DaemonError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.volume_destroy(name)
    }

    /// Unmounts, deletes the row, then the directory (caller holds the lock
    /// and checked the users).
    fn volume_destroy(&self, name: &str) -> Result<()> {
        let data = self.volume_path(name);
        berth_image::mount::unmount(&data)?;
        self.meta.delete_volume(name)?;
        let dir = self.volume_dir(name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", dir.display());
            }
        }
        tracing::debug!(%name, "volume removed");
        self.events.emit(
            "volume",
            "destroy",
            name,
            super::events::attrs([("driver", "local")]),
        );
        Ok(())
    }

    /// Removes unused volumes (`all`: named ones too, not only anonymous)
    /// matching `keep`; returns the names and bytes freed.
    pub fn volumes_prune(
        &self,
        all: bool,
        keep: &dyn Fn(&Volume) -> bool,
    ) -> Result<(Vec<String>, u64)> {
        let _g = lock();
        let used: std::collections::HashSet<String> = self
            .containers()
            .iter()
            .flat_map(|c| {
                c.rec()
                    .mounts
                    .iter()
                    .filter(|m| m.kind == "volume")
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut names = Vec::new();
        let mut bytes = 0;
        for v in self.volumes()? {
            if used.contains(&v.name) || (!all && !v.anonymous()) || !keep(&v) {
                continue;
            }
            let size = dir_size(&self.volume_path(&v.name));
            self.volume_destroy(&v.name)?;
            bytes += size;
            names.push(v.name);
        }
        Ok((names, bytes))
    }

    /// Makes sure a volume with driver options is mounted (first use).
    pub(super) fn volume_mount(&self, name: &str) -> Result<PathBuf> {
        let _g = lock();
        let vol = self.volume(name)?;
        let data = self.volume_path(name);
        if vol.options.is_empty() || berth_image::mount::is_mounted(&data) {
            return Ok(data);
        }
        std::fs::create_dir_all(&data).map_err(|e| internal("create", &data, e))?;
        let kind = vol.options.get("type").cloned().unwrap_or_default();
        let device = vol.options.get("device").cloned().unwrap_or_default();
        let (mut flags, opts) = mount_options(vol.options.get("o").map_or("", String::as_str));
        let kind = if kind == "none" { String::new() } else { kind };
        if kind.is_empty() {
            flags |= MsFlags::MS_BIND;
        }
        let device = if device.is_empty() {
            kind.clone()
        } else {
            device
        };
        mount(
            Some(device.as_str()),
            &data,
            Some(kind.as_str()).filter(|k| !k.is_empty()),
            flags,
            Some(opts.as_str()).filter(|o| !o.is_empty()),
        )
        .map_err(|e| {
            DaemonError::Internal(format!(
                "error while mounting volume '{}': failed to mount local volume: mount {device}:{} , flags: {:#x}, data: {opts}: {}",
                data.display(),
                data.display(),
                flags.bits(),
                std::io::Error::from_raw_os_error(e as i32)
            ))
        })?;
        Ok(data)
    }

    /// Unmounts option volumes no running container uses any more.
    pub(super) fn volumes_release(&self, names: &[String]) {
        let _g = lock();
        for name in names {
            let Ok(Some(vol)) = self.volume_get(name) else {
                continue;
            };
            if vol.options.is_empty() {
                continue;
            }
            let running = self.containers().iter().any(|c| {
                let r = c.rec();
                r.state.status.is_active()
                    && r.mounts
                        .iter()
                        .any(|m| m.kind == "volume" && &m.name == name)
            });
            if !running {
                let _ = berth_image::mount::unmount(&self.volume_path(name));
            }
        }
    }

    /// Removes volume directories without a row (a crash between making
    /// the directory and the row, or during removal).
    pub(super) fn sweep_volume_dirs(&self) {
        let Ok(rd) = std::fs::read_dir(self.cfg.data_root.join("volumes")) else {
            return;
        };
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            if matches!(self.meta.volume(&name), Ok(None)) {
                let _ = berth_image::mount::unmount(&ent.path().join("_data"));
                let _ = std::fs::remove_dir_all(ent.path());
            }
        }
    }
}

/// Docker's JSON for a volume; `usage` adds `UsageData` (system df).
pub fn volume_json(d: &Daemon, v: &Volume, usage: Option<(i64, i64)>) -> Value {
    let mut j = json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Mountpoint": d.volume_path(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    });
    if let Some((size, refs)) = usage {
        j["UsageData"] = json!({"Size": size, "RefCount": refs});
    }
    j
}

/// Bytes used under a directory (allocated blocks, not following links or
/// crossing into other mounts).
pub fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for ent in rd.flatten() {
            let Ok(m) = ent.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.nlink() > 1 && !m.is_dir() && !seen.insert(m.ino()) {
                continue;
            }
            if m.is_dir() {
                stack.push(ent.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_options() {
        assert!(valid_name("data"));
        assert!(valid_name("a.b-c_d"));
        assert!(!valid_name("a"));
        assert!(!valid_name("-ab"));
        assert!(!valid_name("a/b"));
        let (f, d) = mount_options("size=10m,ro,uid=1000");
        assert_eq!(f, MsFlags::MS_RDONLY);
        assert_eq!(d, "size=10m,uid=1000");
        let o = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(check_options(&o(&[("type", "tmpfs"), ("device", "tmpfs")])).is_ok());
        assert!(check_options(&o(&[("type", "tmpfs")])).is_ok());
        assert!(check_options(&o(&[("foo", "1")])).is_err());
        assert!(check_options(&o(&[("type", "none")])).is_err());
    }
}
