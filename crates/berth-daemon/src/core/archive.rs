//! `cp`: stat, read (tar out) and extract (tar in) paths of a container,
//! running or stopped, through [`berth_image::rootpath`] so that nothing
//! outside the container's root (plus its volumes and binds) is ever read
//! or written, whatever its symlinks say.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use berth_image::mount::{is_mounted, unmount, RootfsDirs};
use berth_image::rootpath::{self, Resolved, Root};
use berth_image::unpack::{unpack_layer, UnpackOptions};
use serde::Serialize;

use super::container::Container;
use super::Daemon;
use crate::error::{DaemonError, Result};

/// Docker's `PathStat` (the `X-Docker-Container-Path-Stat` header).
#[derive(Debug, Clone, Serialize)]
pub struct PathStat {
    /// Base name of the path asked for.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go `os.FileMode` bits.
    pub mode: u32,
    /// RFC 3339 modification time.
    pub mtime: String,
    /// For a symlink: where it leads inside the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// The path as Docker keeps it: cleaned, absolute, with a trailing `/.`
/// kept (it means "the directory's content").
fn abs_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut p = format!("/{}", parts.join("/"));
    if path.ends_with("/.") || path == "." {
        p = if p == "/" {
            "/.".into()
        } else {
            format!("{p}/.")
        };
    }
    p
}

/// The last link is followed only when the path says "directory".
fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// The tar's top entry name: the base name of the path (`.` for `dir/.`).
fn base_name(abs: &str) -> String {
    match abs.rsplit('/').next() {
        Some("") | None => "/".into(),
        Some(b) => b.to_string(),
    }
}

fn not_found(path: &str, container: &str) -> DaemonError {
    DaemonError::NotFound(format!(
        "Could not find the file {path} in container {container}"
    ))
}

fn resolve_error(e: std::io::Error, path: &str, container: &str) -> DaemonError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => not_found(path, container),
        Some(libc::ENOTDIR) => not_found(path, container),
        Some(libc::ELOOP) => DaemonError::BadRequest(format!(
            "{path}: too many levels of symbolic links in container {container}"
        )),
        _ => DaemonError::Internal(format!("{path} in container {container}: {e}")),
    }
}

fn stat_of(r: &Resolved, root: &Root, abs: &str) -> PathStat {
    let link_target = if r.meta.file_type().is_symlink() {
        root.resolve(&r.path, true)
            .map(|t| t.path)
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = r
        .meta
        .modified()
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
        .unwrap_or_default();
    PathStat {
        name: base_name(abs),
        size: r.meta.len() as i64,
        mode: rootpath::go_file_mode(&r.meta),
        mtime,
        link_target,
    }
}

impl PathStat {
    /// The header value: base64 of the JSON.
    pub fn header(&self) -> String {
        use base64::Engine as _;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }
}

impl Daemon {
    /// Runs `f` on the container's root: `/proc/<pid>/root` while it runs,
    /// else its overlay (mounted for the time of `f` if need be, the
    /// container's start held off meanwhile) with its volumes and binds.
    async fn with_root<T: Send + 'static>(
        self: &Arc<Self>,
        c: &Arc<Container>,
        f: impl FnOnce(&Root) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.with_root_as(c, true, f).await
    }

    /// [`Self::with_root`], or with `with_mounts` false the container's own
    /// filesystem alone (its overlay, even while it runs: no volumes, binds
    /// or `/proc`), as `docker export` sees it.
    async fn with_root_as<T: Send + 'static>(
        self: &Arc<Self>,
        c: &Arc<Container>,
        with_mounts: bool,
        f: impl FnOnce(&Root) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let join = |e: tokio::task::JoinError| DaemonError::Internal(format!("worker: {e}"));
        let rec = c.snapshot();
        if with_mounts && rec.state.status.is_active() && rec.state.pid > 0 {
            let root = Root::new(format!("/proc/{}/root", rec.state.pid), Vec::new());
            return tokio::task::spawn_blocking(move || f(&root))
                .await
                .map_err(join)?;
        }
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        let rootfs = self.rootfs(&c.id);
        let mounted_here = !is_mounted(&rootfs);
        if mounted_here {
            let dir = self.container_dir(&c.id);
            let dirs = RootfsDirs {
                lowers: self.images.lower_dirs_from(rec.top_chain.as_deref())?,
                upper: dir.join("upper"),
                work: dir.join("work"),
                target: rootfs.clone(),
            };
            dirs.mount()?;
        }
        let mounts: Vec<(String, PathBuf)> = rec
            .mounts
            .iter()
            .filter(|_| with_mounts)
            .filter_map(|m| match m.kind.as_str() {
                "volume" => Some((m.destination.clone(), self.volume_path(&m.name))),
                "bind" => Some((m.destination.clone(), PathBuf::from(&m.source))),
                _ => None,
            })
            .collect();
        let root = Root::new(rootfs.clone(), mounts);
        let res = tokio::task::spawn_blocking(move || f(&root))
            .await
            .map_err(join);
        if mounted_here {
            if let Err(e) = unmount(&rootfs) {
                tracing::warn!(id = %c.id, "unmounting rootfs after cp: {e}");
            }
        }
        res?
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn archive_stat(
        self: &Arc<Self>,
        c: &Arc<Container>,
        path: &str,
        shown: &str,
    ) -> Result<PathStat> {
        let abs = abs_path(path);
        let follow = follows_last(path);
        let (p, shown) = (path.to_string(), shown.to_string());
        self.with_root(c, move |root| {
            let r = root
                .resolve(&abs, follow)
                .map_err(|e| resolve_error(e, &p, &shown))?;
            Ok(stat_of(&r, root, &abs))
        })
        .await
    }

    /// `GET /containers/{id}/archive`: the stat, and the tar written to
    /// `w` by a task that runs on after this returns.
    pub async fn archive_get<W: Write + Send + 'static>(
        self: &Arc<Self>,
        c: &Arc<Container>,
        path: &str,
        shown: &str,
        w: W,
    ) -> Result<PathStat> {
        let stat = self.archive_stat(c, path, shown).await?;
        let abs = abs_path(path);
        let follow = follows_last(path);
        let d = self.clone();
        let c = c.clone();
        let name = base_name(&abs);
        tokio::spawn(async move {
            let r = d
                .with_root(&c, move |root| {
                    let r = root
                        .resolve(&abs, follow)
                        .map_err(|e| DaemonError::Internal(e.to_string()))?;
                    let w = std::io::BufWriter::with_capacity(256 * 1024, w);
                    root.write_tar(&r, &name, w)
                        .map_err(|e| DaemonError::Internal(e.to_string()))
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(id = %c.id, "cp from container: {e}");
            }
        });
        Ok(stat)
    }

    /// `GET /containers/{id}/export`: the container's filesystem as a tar,
    /// written to `w` by a task that runs on after this returns.
    pub fn export<W: Write + Send + 'static>(self: &Arc<Self>, c: &Arc<Container>, w: W) {
        let d = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let r = d
                .with_root_as(&c, false, move |root| {
                    let w = std::io::BufWriter::with_capacity(256 * 1024, w);
                    root.write_contents_tar(w)
                        .map_err(|e| DaemonError::Internal(e.to_string()))
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(id = %c.id, "export: {e}");
            }
        });
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into a directory.
    /// Entries keep the tar's owners, as dockerd's do; with `copy_uid_gid`
    /// (`cp -a`) a container that runs as a user gets them owned by that
    /// user, looked up in the container's own `/etc/passwd`.
    pub async fn archive_put<R: Read + Send + 'static>(
        self: &Arc<Self>,
        c: &Arc<Container>,
        path: &str,
        shown: &str,
        copy_uid_gid: bool,
        body: R,
    ) -> Result<()> {
        let rec = c.snapshot();
        let abs = abs_path(path);
        // Checked before the walk, answered after the body is read: an
        // answer while the client still uploads reaches it as a broken pipe.
        let mut refused = None;
        if rec.host_config.readonly_rootfs {
            let in_rw_mount = rec.mounts.iter().any(|m| {
                m.rw && m.kind != "tmpfs"
                    && (abs == m.destination || abs.starts_with(&format!("{}/", m.destination)))
            });
            if !in_rw_mount {
                refused = Some(DaemonError::Forbidden(
                    "container rootfs is marked read-only".into(),
                ));
            }
        }
        if let Some(m) = rec.mounts.iter().find(|m| {
            !m.rw && (abs == m.destination || abs.starts_with(&format!("{}/", m.destination)))
        }) {
            refused = Some(DaemonError::Forbidden(format!(
                "mounted volume is marked read-only: {}",
                m.destination
            )));
        }
        let (p, shown) = (path.to_string(), shown.to_string());
        let user = Some(rec.config.user.clone());
        self.with_root(c, move |root| {
            let mut body = body;
            if let Some(e) = refused {
                let _ = std::io::copy(&mut body, &mut std::io::sink());
                return Err(e);
            }
            let r = match root.resolve(&abs, true) {
                Ok(r) => r,
                Err(e) => {
                    let _ = std::io::copy(&mut body, &mut std::io::sink());
                    return Err(resolve_error(e, &p, &shown));
                }
            };
            if !r.meta.is_dir() {
                let _ = std::io::copy(&mut body, &mut std::io::sink());
                return Err(DaemonError::BadRequest(
                    "extraction point is not a directory".into(),
                ));
            }
            let chown = match user.filter(|u| copy_uid_gid && !u.is_empty()) {
                Some(u) => match berth_runtime::user::resolve(root.path(), &u, &[]) {
                    Ok(eu) => Some((eu.uid, eu.gid)),
                    Err(e) => {
                        let _ = std::io::copy(&mut body, &mut std::io::sink());
                        return Err(e.into());
                    }
                },
                None => None,
            };
            let opts = UnpackOptions {
                chown,
                ..Default::default()
            };
            let res = unpack_layer(&mut body, &rootpath::dir_path(&r), &opts);
            let _ = std::io::copy(&mut body, &mut std::io::sink());
            res.map(|_| ())
                .map_err(|e| DaemonError::BadRequest(e.to_string()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(abs_path("tmp/"), "/tmp");
        assert_eq!(abs_path("/etc/."), "/etc/.");
        assert_eq!(abs_path("/a/../b"), "/b");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/etc"), "etc");
        assert!(follows_last("/etc/"));
        assert!(!follows_last("/etc"));
    }
}
