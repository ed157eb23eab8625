//! A container's mounts: `--volumes-from`, `Binds` (`-v`), `Mounts`
//! (`--mount`) and anonymous volumes (`-v /path`, image `VOLUME`s), checked
//! with Docker's errors at create and set up (volumes mounted, image content
//! copied into new empty volumes) at each start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::container::{ContainerConfig, HostConfig};
use berth_runtime::spec::BindMount;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::volumes::{valid_name, VolumeCreate, ANONYMOUS_LABEL};
use super::Daemon;
use crate::error::{DaemonError, Result};

/// One mount of a container, persisted in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountPoint {
    /// `volume`, `bind` or `tmpfs`.
    pub kind: String,
    /// The volume's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host path of a bind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    /// The mode string as given to `-v` (`ro`, `z`…); empty for `--mount`.
    #[serde(default)]
    pub mode: String,
    /// Writable.
    pub rw: bool,
    /// Bind propagation (`rprivate` when not given).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    /// Do not copy the image's content into a new volume.
    #[serde(default)]
    pub nocopy: bool,
    /// tmpfs options (`size=…,mode=…`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tmpfs_options: String,
    /// Made for this container (removed by `rm -v` and `--rm`).
    #[serde(default)]
    pub anonymous: bool,
    /// Create a missing bind source (`-v`), or refuse it (`--mount`).
    #[serde(default)]
    pub create_source: bool,
    /// Driver options and labels for a named volume made at create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_spec: Option<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

impl MountPoint {
    /// Docker's `Mounts` entry in inspect and list.
    pub fn to_json(&self, d: &Daemon) -> Value {
        match self.kind.as_str() {
            "volume" => json!({
                "Type": "volume", "Name": self.name,
                "Source": d.volume_path(&self.name), "Destination": self.destination,
                "Driver": "local", "Mode": self.mode, "RW": self.rw, "Propagation": "",
            }),
            "bind" => json!({
                "Type": "bind", "Source": self.source, "Destination": self.destination,
                "Mode": self.mode, "RW": self.rw,
                "Propagation": if self.propagation.is_empty() { "rprivate" } else { &self.propagation },
            }),
            _ => json!({
                "Type": self.kind, "Source": "", "Destination": self.destination,
                "Mode": self.mode, "RW": self.rw, "Propagation": "",
            }),
        }
    }
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn bad(msg: String) -> DaemonError {
    DaemonError::BadRequest(msg)
}

/// Lexically cleaned absolute path (`/a/./b/` → `/a/b`).
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn check_target(kind: &str, target: &str, spec: Option<&str>) -> Result<()> {
    let wrap = |m: String| match spec {
        Some(s) => bad(format!("invalid volume specification: '{s}': {m}")),
        None => bad(m),
    };
    if target.is_empty() {
        return Err(wrap(format!(
            "invalid mount config for type \"{kind}\": field Target must not be empty"
        )));
    }
    if !target.starts_with('/') {
        return Err(wrap(format!(
            "invalid mount config for type \"{kind}\": invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    if clean(target) == "/" {
        return Err(wrap(format!(
            "invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'"
        )));
    }
    Ok(())
}

fn check_volume_name(name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(bad(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

/// Parses one `-v` entry: `[src:]dst[:mode]`.
pub(super) fn parse_bind(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad(format!("invalid volume specification: '{spec}'"))),
    };
    if dst.is_empty() && !src.is_empty() {
        return Err(bad(format!("invalid volume specification: '{spec}'")));
    }
    let kind = if src.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    check_target(kind, dst, Some(spec))?;
    let mut m = MountPoint {
        kind: kind.into(),
        destination: clean(dst),
        mode: mode.into(),
        rw: true,
        create_source: true,
        ..Default::default()
    };
    let mut rw_given = 0;
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => {
                m.rw = false;
                rw_given += 1;
            }
            "rw" => rw_given += 1,
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            "nocopy" if kind == "volume" => m.nocopy = true,
            p if PROPAGATIONS.contains(&p) && kind == "bind" => m.propagation = p.into(),
            _ => return Err(bad(format!("invalid mode: {mode}"))),
        }
    }
    if rw_given > 1 {
        return Err(bad(format!("invalid mode: {mode}")));
    }
    match kind {
        "bind" => m.source = clean(src),
        _ if src.is_empty() => m.anonymous = true,
        _ => {
            check_volume_name(src)?;
            m.name = src.into();
        }
    }
    if kind == "volume" && mode.is_empty() {
        m.mode = "z".into();
    }
    Ok(m)
}

fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a serde_json::Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses one `HostConfig.Mounts` entry (`--mount`), with Docker's checks.
pub(super) fn parse_mount(v: &Value) -> Result<MountPoint> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let kind = s("Type");
    let source = s("Source");
    let target = s("Target");
    let readonly = v.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
    let err = |m: &str| bad(format!("invalid mount config for type \"{kind}\": {m}"));
    if !["bind", "volume", "tmpfs"].contains(&kind) {
        return Err(bad(format!(
            "invalid mount config for type \"{kind}\": mount type unknown"
        )));
    }
    check_target(kind, target, None)?;
    let mut m = MountPoint {
        kind: kind.into(),
        destination: clean(target),
        rw: !readonly,
        ..Default::default()
    };
    match kind {
        "bind" => {
            if obj(v, "VolumeOptions").is_some() {
                return Err(err("field VolumeOptions must not be specified"));
            }
            if obj(v, "TmpfsOptions").is_some() {
                return Err(err("field TmpfsOptions must not be specified"));
            }
            if source.is_empty() {
                return Err(err("field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(err(&format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            let bo = v.get("BindOptions");
            let create = bo
                .and_then(|b| b.get("CreateMountpoint"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !create && !Path::new(source).exists() {
                return Err(err(&format!("bind source path does not exist: {source}")));
            }
            m.create_source = create;
            m.source = clean(source);
            let prop = bo
                .and_then(|b| b.get("Propagation"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !prop.is_empty() && !PROPAGATIONS.contains(&prop) {
                return Err(err(&format!("invalid propagation mode: {prop}")));
            }
            m.propagation = prop.into();
        }
        "volume" => {
            if obj(v, "BindOptions").is_some() {
                return Err(err("field BindOptions must not be specified"));
            }
            if obj(v, "TmpfsOptions").is_some() {
                return Err(err("field TmpfsOptions must not be specified"));
            }
            let vo = v.get("VolumeOptions");
            m.nocopy = vo
                .and_then(|o| o.get("NoCopy"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if source.is_empty() {
                m.anonymous = true;
            } else {
                check_volume_name(source)?;
                m.name = source.into();
            }
            let dc = vo.and_then(|o| o.get("DriverConfig"));
            let driver = dc
                .and_then(|d| d.get("Name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !driver.is_empty() && driver != "local" {
                return Err(DaemonError::NotFound(format!(
                    "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
                )));
            }
            let opts = str_map(dc.and_then(|d| d.get("Options")));
            let labels = str_map(vo.and_then(|o| o.get("Labels")));
            if !opts.is_empty() || !labels.is_empty() {
                m.volume_spec = Some((opts, labels));
            }
        }
        _ => {
            if !source.is_empty() {
                return Err(err("field Source must not be specified"));
            }
            if obj(v, "BindOptions").is_some() || obj(v, "VolumeOptions").is_some() {
                return Err(err("field BindOptions must not be specified"));
            }
            let to = v.get("TmpfsOptions");
            let mut opts = Vec::new();
            if let Some(size) = to.and_then(|t| t.get("SizeBytes")).and_then(Value::as_i64) {
                if size < 0 {
                    return Err(err(&format!("invalid tmpfs size: {size}")));
                }
                if size > 0 {
                    opts.push(format!("size={size}"));
                }
            }
            if let Some(mode) = to.and_then(|t| t.get("Mode")).and_then(Value::as_u64) {
                if mode > 0 {
                    opts.push(format!("mode={:o}", mode & 0o7777));
                }
            }
            if readonly {
                opts.push("ro".into());
            }
            m.tmpfs_options = opts.join(",");
        }
    }
    Ok(m)
}

impl Daemon {
    /// The mounts a new container gets, checked; creates nothing.
    pub(super) fn plan_mounts(
        &self,
        config: &ContainerConfig,
        hc: &HostConfig,
    ) -> Result<Vec<MountPoint>> {
        let mut out: Vec<MountPoint> = Vec::new();
        let mut from_others: Vec<MountPoint> = Vec::new();
        for spec in hc.volumes_from.iter().flatten() {
            let (name, mode) = match spec.split_once(':') {
                Some((n, m)) => (n, m),
                None => (spec.as_str(), ""),
            };
            let rw = match mode {
                "" => None,
                "rw" => Some(true),
                "ro" => Some(false),
                m => return Err(bad(format!("invalid mode: {m}"))),
            };
            let other = self.container(name)?;
            for mut m in other.rec().mounts.clone() {
                if m.kind == "tmpfs" {
                    continue;
                }
                if let Some(rw) = rw {
                    m.rw = rw;
                }
                // Theirs: `rm -v` of this container leaves them alone.
                m.anonymous = false;
                m.create_source = false;
                m.volume_spec = None;
                from_others.retain(|o| o.destination != m.destination);
                from_others.push(m);
            }
        }
        let mut mine: Vec<MountPoint> = Vec::new();
        for b in hc.binds.iter().flatten() {
            let m = parse_bind(b)?;
            if mine.iter().any(|o| o.destination == m.destination) {
                return Err(bad(format!("Duplicate mount point: {}", m.destination)));
            }
            mine.push(m);
        }
        for v in hc.mounts.iter().flatten() {
            let m = parse_mount(v)?;
            if mine.iter().any(|o| o.destination == m.destination) {
                return Err(bad(format!("Duplicate mount point: {}", m.destination)));
            }
            mine.push(m);
        }
        for (dest, _) in hc.tmpfs.iter().flatten() {
            if mine.iter().any(|o| o.destination == clean(dest)) {
                return Err(bad(format!("Duplicate mount point: {}", clean(dest))));
            }
        }
        // The user's own mounts win over the other container's.
        from_others.retain(|o| !mine.iter().any(|m| m.destination == o.destination));
        out.extend(from_others);
        out.extend(mine);
        for dest in config.volumes.iter().flat_map(|v| v.keys()) {
            check_target("volume", dest, None)?;
            let dest = clean(dest);
            let covered = out.iter().any(|m| m.destination == dest)
                || hc.tmpfs.iter().flatten().any(|(d, _)| clean(d) == dest);
            if !covered {
                out.push(MountPoint {
                    kind: "volume".into(),
                    destination: dest,
                    rw: true,
                    anonymous: true,
                    ..Default::default()
                });
            }
        }
        Ok(out)
    }

    /// Makes what the planned mounts need: anonymous and missing named
    /// volumes, missing `-v` bind sources. Returns the volumes made, for
    /// [`Daemon::undo_volumes`] should the create fail later.
    pub(super) fn make_mounts(&self, mounts: &mut [MountPoint]) -> Result<Vec<String>> {
        let mut made = Vec::new();
        let res = (|| {
            for m in mounts.iter_mut() {
                match m.kind.as_str() {
                    "volume" => {
                        let (opts, mut labels) = m.volume_spec.take().unwrap_or_default();
                        if m.anonymous {
                            labels.insert(ANONYMOUS_LABEL.into(), String::new());
                        }
                        let (v, new) = self.volume_create(VolumeCreate {
                            name: m.name.clone(),
                            driver: String::new(),
                            driver_opts: Some(opts),
                            labels: Some(labels),
                        })?;
                        m.name = v.name.clone();
                        if new {
                            made.push(v.name);
                        }
                    }
                    "bind" if m.create_source && !Path::new(&m.source).exists() => {
                        std::fs::create_dir_all(&m.source).map_err(|e| {
                            bad(format!(
                                "error while creating mount source path '{}': {e}",
                                m.source
                            ))
                        })?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })();
        match res {
            Ok(()) => Ok(made),
            Err(e) => {
                self.undo_volumes(&made);
                Err(e)
            }
        }
    }

    /// Removes volumes a failed create made.
    pub(super) fn undo_volumes(&self, names: &[String]) {
        for n in names {
            if let Err(e) = self.volume_remove(n, true) {
                tracing::warn!(volume = %n, "undoing volume: {e}");
            }
        }
    }

    /// Removes a removed container's anonymous volumes that no other
    /// container uses (`rm -v`, `--rm`).
    pub fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.kind == "volume" && m.anonymous) {
            if let Err(e) = self.volume_remove(&m.name, true) {
                tracing::debug!(volume = %m.name, "keeping volume: {e}");
            }
        }
    }

    /// Before a start, with the root mounted: mounts option volumes, copies
    /// the image's content into empty volumes, and returns the binds and
    /// tmpfs mounts for the spec.
    pub(super) fn setup_mounts(
        &self,
        mounts: &[MountPoint],
        rootfs: &Path,
    ) -> Result<(Vec<BindMount>, BTreeMap<String, String>)> {
        let mut binds = Vec::new();
        let mut tmpfs = BTreeMap::new();
        for m in mounts {
            match m.kind.as_str() {
                "volume" => {
                    let data = self.volume_mount(&m.name)?;
                    if !m.nocopy {
                        copy_up(rootfs, &m.destination, &data)?;
                    }
                    binds.push(BindMount {
                        source: data,
                        destination: m.destination.clone(),
                        readonly: !m.rw,
                        propagation: None,
                    });
                }
                "bind" => {
                    let src = PathBuf::from(&m.source);
                    if !src.exists() {
                        if m.create_source {
                            std::fs::create_dir_all(&src).map_err(|e| {
                                bad(format!(
                                    "error while creating mount source path '{}': {e}",
                                    m.source
                                ))
                            })?;
                        } else {
                            return Err(bad(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                m.source
                            )));
                        }
                    }
                    binds.push(BindMount {
                        source: src,
                        destination: m.destination.clone(),
                        readonly: !m.rw,
                        propagation: Some(m.propagation.clone()).filter(|p| !p.is_empty()),
                    });
                }
                _ => {
                    tmpfs.insert(m.destination.clone(), m.tmpfs_options.clone());
                }
            }
        }
        Ok((binds, tmpfs))
    }

    /// Volume names a container mounts.
    pub(super) fn volume_names(mounts: &[MountPoint]) -> Vec<String> {
        mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.name.clone())
            .collect()
    }
}

/// Docker's copy-up: when the volume is empty and the image has a
/// directory with content at the mount path, that content (owners, modes,
/// links) is copied in, along with the directory's owner and mode.
fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<()> {
    let src = berth_runtime::user::secure_join(rootfs, dest);
    let Ok(meta) = std::fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    let empty = std::fs::read_dir(data)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let io = |p: &Path, e: std::io::Error| {
        DaemonError::Internal(format!(
            "copying image content to volume {}: {e}",
            p.display()
        ))
    };
    copy_tree(&src, data).map_err(|e| io(data, e))?;
    copy_owner_mode(&meta, data).map_err(|e| io(data, e))?;
    Ok(())
}

fn copy_owner_mode(meta: &std::fs::Metadata, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

/// Copies a tree without following symlinks (the container has not run
/// yet, so nothing changes it under us).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for ent in std::fs::read_dir(from)? {
        let ent = ent?;
        let src = ent.path();
        let dst = to.join(ent.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            // Devices, fifos and sockets are not copied (as Docker).
            continue;
        }
        copy_owner_mode(&meta, &dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        let m = parse_bind("data:/d:ro").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.name.as_str(), m.rw),
            ("volume", "data", false)
        );
        let m = parse_bind("/host:/c:rshared,Z").unwrap();
        assert_eq!(m.kind, "bind");
        assert_eq!(m.propagation, "rshared");
        assert!(m.rw);
        let m = parse_bind("/anon").unwrap();
        assert!(m.anonymous);
        assert_eq!(
            parse_bind("data:rel").unwrap_err().to_string(),
            "invalid volume specification: 'data:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            parse_bind("/h:/c:bogus").unwrap_err().to_string(),
            "invalid mode: bogus"
        );
        assert!(parse_bind("a:/b:ro:x").is_err());
    }

    #[test]
    fn mounts() {
        let m = parse_mount(&json!({"Type":"bind","Source":"/nonexistent-berth","Target":"/x"}))
            .unwrap_err();
        assert_eq!(
            m.to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"
        );
        let m = parse_mount(
            &json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":448}}),
        )
        .unwrap();
        assert_eq!(m.tmpfs_options, "size=1048576,mode=700");
        let m = parse_mount(&json!({"Type":"volume","Source":"v1","Target":"/v","ReadOnly":true,"VolumeOptions":{"NoCopy":true}})).unwrap();
        assert!(m.nocopy && !m.rw);
        assert!(parse_mount(&json!({"Type":"volume","Target":""})).is_err());
        assert!(parse_mount(&json!({"Type":"tmpfs","Source":"x","Target":"/t"})).is_err());
    }
}
