//! Paths inside a container's root, resolved as the container would see
//! them but without ever leaving the root: for `cp` (`GET/PUT/HEAD
//! /containers/{id}/archive`).
//!
//! A container controls every symlink in its root, and may change them
//! while we look. So the kernel is never asked to follow a link that the
//! container made: each component is opened alone with `O_PATH |
//! O_NOFOLLOW` relative to the handle of its parent (through
//! `/proc/thread-self/fd/<fd>/<name>`, as in [`crate::unpack`]); a symlink
//! is read as text and its target resolved again, component by component,
//! from the root (absolute) or from its directory (relative); `..` never
//! climbs above the root. Magic links (`/proc/self/root`, `/proc/1/cwd`)
//! are read as text too, so they lead back into the root, not to the host.
//!
//! A stopped container's volumes and binds are not mounted anywhere the
//! daemon can see: [`Root`] takes them as a table (container path → host
//! directory) and switches to the host directory when the walk reaches
//! one. A running container is walked from `/proc/<pid>/root`, where the
//! kernel already shows its mounts.

use std::collections::VecDeque;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Symlinks followed in one resolution before giving up (Linux's limit).
const MAX_LINKS: usize = 40;

/// A container's root and the mounts to honour while walking it.
#[derive(Debug, Clone)]
pub struct Root {
    root: PathBuf,
    mounts: Vec<(String, PathBuf)>,
}

/// A resolved path: an `O_PATH` handle on it, and where it is in the
/// container.
#[derive(Debug)]
pub struct Resolved {
    /// `O_PATH` handle (never a followed link).
    pub file: File,
    /// The container path it was reached by, cleaned.
    pub path: String,
    /// Its own metadata (of the link itself when the last link was not
    /// followed).
    pub meta: Metadata,
    /// The link's target as written, when `meta` is a symlink.
    pub link_target: Option<String>,
}

fn fd_path(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/thread-self/fd/{}", f.as_raw_fd()))
}

fn open_path(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
}

/// A path the daemon chose (the root, a volume, a bind source):
/// followed, as `/proc/<pid>/root` is itself a (magic) link.
fn open_trusted_dir(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(p)
}

/// `name` in `dir`, the last component not followed.
fn open_child(dir: &File, name: &str) -> io::Result<File> {
    open_path(&fd_path(dir).join(name))
}

/// Components of a path, without empty ones and `.`.
fn components(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

fn join_virtual(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl Root {
    /// A root directory and its mount table (container path → host dir).
    pub fn new(root: impl Into<PathBuf>, mounts: Vec<(String, PathBuf)>) -> Root {
        let mounts = mounts
            .into_iter()
            .map(|(d, h)| {
                let c = components(&d);
                (format!("/{}", c.join("/")), h)
            })
            .collect();
        Root {
            root: root.into(),
            mounts,
        }
    }

    /// The root directory itself (for reading its `/etc/passwd`).
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn mount_at(&self, virt: &str) -> Option<&Path> {
        self.mounts
            .iter()
            .rev()
            .find(|(d, _)| d == virt)
            .map(|(_, h)| h.as_path())
    }

    /// Opens a child of `dir` (whose container path is `dir_virt`),
    /// switching to a mount's host directory where one is.
    fn child(&self, dir: &File, dir_virt: &str, name: &str) -> io::Result<(File, String)> {
        let virt = join_virtual(dir_virt, name);
        let f = match self.mount_at(&virt) {
            Some(host) => open_trusted_dir(host)?,
            None => open_child(dir, name)?,
        };
        Ok((f, virt))
    }

    /// Resolves `path` inside the root. Every symlink on the way is
    /// followed inside the root; the last one only when `follow_last`.
    pub fn resolve(&self, path: &str, follow_last: bool) -> io::Result<Resolved> {
        let root = open_trusted_dir(&self.root)?;
        let mut stack: Vec<(String, File)> = vec![("/".to_string(), root)];
        let mut pending: VecDeque<String> = components(path).into();
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let (dir_virt, dir) = stack.last().expect("root stays");
            let (f, virt) = self.child(dir, dir_virt, &c)?;
            let meta = f.metadata()?;
            if meta.file_type().is_symlink() && (follow_last || !pending.is_empty()) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(fd_path(dir).join(&c))?;
                let target = target.as_os_str().as_bytes();
                if target.starts_with(b"/") {
                    stack.truncate(1);
                }
                let t = String::from_utf8_lossy(target).into_owned();
                for comp in components(&t).into_iter().rev() {
                    pending.push_front(comp);
                }
                continue;
            }
            if !pending.is_empty() && !meta.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            stack.push((virt, f));
        }
        let (path, file) = stack.pop().expect("root stays");
        let meta = file.metadata()?;
        let link_target = match (meta.file_type().is_symlink(), stack.last()) {
            (true, Some((_, dir))) => {
                let name = path.rsplit('/').next().unwrap_or("");
                Some(
                    std::fs::read_link(fd_path(dir).join(name))?
                        .to_string_lossy()
                        .into_owned(),
                )
            }
            _ => None,
        };
        Ok(Resolved {
            file,
            path,
            meta,
            link_target,
        })
    }

    /// Writes `r` as a tar to `w`, its top entry named `name` (`etc`,
    /// `f.txt`, `.`); directories are walked without following links.
    pub fn write_tar<W: Write>(&self, r: &Resolved, name: &str, w: W) -> io::Result<()> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        self.append(
            &mut b,
            &r.file,
            &r.meta,
            &r.path,
            name,
            r.link_target.as_deref(),
        )?;
        b.into_inner()?.flush()
    }

    /// Writes what is under the root (not the root itself) as a tar whose
    /// names are relative to it: `bin/`, `bin/sh` (`docker export`).
    pub fn write_contents_tar<W: Write>(&self, w: W) -> io::Result<()> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        let top = open_trusted_dir(&self.root)?;
        self.append_children(&mut b, &top, "/", None)?;
        b.into_inner()?.flush()
    }

    /// Appends the entries of directory `f` (container path `virt`) under
    /// the tar name `prefix` (`None`: at the top), in name order.
    fn append_children<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        f: &File,
        virt: &str,
        prefix: Option<&str>,
    ) -> io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(fd_path(f))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for child in names {
            let (cf, cvirt) = match self.child(f, virt, &child) {
                Ok(x) => x,
                // Gone since the listing: the container changed it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let cmeta = cf.metadata()?;
            let target = if cmeta.file_type().is_symlink() {
                Some(
                    std::fs::read_link(fd_path(f).join(&child))?
                        .to_string_lossy()
                        .into_owned(),
                )
            } else {
                None
            };
            let cname = match prefix {
                None => child.clone(),
                Some(p) => format!("{p}/{child}"),
            };
            self.append(b, &cf, &cmeta, &cvirt, &cname, target.as_deref())?;
        }
        Ok(())
    }

    fn append<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        f: &File,
        meta: &Metadata,
        virt: &str,
        name: &str,
        link: Option<&str>,
    ) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_size(0);
            let dir_name = if name.ends_with('/') {
                name.to_string()
            } else {
                format!("{name}/")
            };
            b.append_data(&mut h, &dir_name, io::empty())?;
            self.append_children(b, f, virt, Some(dir_name.trim_end_matches('/')))?;
        } else if ft.is_symlink() {
            h.set_size(0);
            let target = match link {
                Some(t) => t.to_string(),
                None => String::new(),
            };
            b.append_link(&mut h, name, target)?;
        } else if ft.is_file() {
            // Reopen the very inode resolved (not a path the container
            // could swap), for reading.
            let mut data = File::open(fd_path(f))?;
            h.set_size(meta.len());
            let mut limited = (&mut data).take(meta.len());
            b.append_data(&mut h, name, &mut limited)?;
        } else if ft.is_socket() {
            // Sockets cannot be archived (as tar).
        } else {
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())?;
        }
        Ok(())
    }
}

/// Go's `os.FileMode` bits for a stat (Docker's `PathStat.mode`).
pub fn go_file_mode(meta: &Metadata) -> u32 {
    let mode = meta.mode();
    let mut m = mode & 0o777;
    let ft = meta.file_type();
    if ft.is_dir() {
        m |= 1 << 31;
    }
    if ft.is_symlink() {
        m |= 1 << 27;
    }
    if ft.is_block_device() {
        m |= 1 << 26;
    }
    if ft.is_char_device() {
        m |= (1 << 26) | (1 << 21);
    }
    if ft.is_fifo() {
        m |= 1 << 25;
    }
    if ft.is_socket() {
        m |= 1 << 24;
    }
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// The path of a resolved directory that [`crate::unpack::unpack_layer`]
/// can be given: the kernel leads it back to the very directory resolved.
pub fn dir_path(r: &Resolved) -> PathBuf {
    fd_path(&r.file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "container").unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        symlink("/", r.join("abs")).unwrap();
        symlink("../../../../..", r.join("dots")).unwrap();
        symlink(outside.path(), r.join("host")).unwrap();
        symlink("/proc/self/root/etc", r.join("procroot")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("etc/passwd", r.join("rel")).unwrap();
        (root, outside)
    }

    #[test]
    fn links_stay_inside() {
        let (root, outside) = setup();
        let r = Root::new(root.path(), vec![]);
        let read = |p: &str| {
            let res = r.resolve(p, true).unwrap();
            std::fs::read_to_string(fd_path(&res.file)).unwrap()
        };
        assert_eq!(read("/abs/etc/passwd"), "container");
        assert_eq!(read("/dots/etc/passwd"), "container");
        assert_eq!(read("../../etc/passwd"), "container");
        assert_eq!(read("/rel"), "container");
        // The host dir named by an absolute link is looked up in the root.
        assert!(r.resolve("/host/secret", true).is_err());
        let _ = outside;
        // /proc/self/root inside the root is just a path in the root.
        assert!(r.resolve("/procroot/passwd", true).is_err());
        let e = r.resolve("/loop1", true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        // Not following the last link gives the link.
        let l = r.resolve("/abs", false).unwrap();
        assert!(l.meta.file_type().is_symlink());
        assert_eq!(l.link_target.as_deref(), Some("/"));
    }

    #[test]
    fn mounts_and_tar() {
        let (root, outside) = setup();
        let r = Root::new(root.path(), vec![("/data".into(), outside.path().into())]);
        std::fs::create_dir(root.path().join("data")).unwrap();
        let res = r.resolve("/data/secret", true).unwrap();
        assert_eq!(std::fs::read_to_string(fd_path(&res.file)).unwrap(), "host");
        let top = r.resolve("/", true).unwrap();
        let mut out = Vec::new();
        r.write_tar(&top, ".", &mut out).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert!(names.contains(&"data/secret".to_string()), "{names:?}");
        assert!(names.contains(&"abs".to_string()));
        assert!(names.contains(&"etc/passwd".to_string()));
    }
}
