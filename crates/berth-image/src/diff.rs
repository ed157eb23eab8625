//! `docker diff`: what a container changed, read from its overlay upper
//! dir alone (the lower layers are only looked at to tell an addition from
//! a modification), the way dockerd's overlay driver does it.
//!
//! Whiteouts are deletions; an opaque directory that hides one of the
//! image's is a deletion too (its new content shows as additions); a
//! directory copied up only because something below it changed is left
//! out, but the parent of every addition or deletion is listed as modified.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::commit::{is_skipped, only_skipped};
use crate::ImageError;

/// What happened to a path (Docker's `Kind`: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Changed (`C`).
    Modified = 0,
    /// Added (`A`).
    Added = 1,
    /// Deleted (`D`).
    Deleted = 2,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the container.
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// The changes recorded in `upper` over `lowers` (the image's layer dirs,
/// topmost first). `skip` lists relative paths the runtime makes (mount points
/// like `etc/hosts`), left out as in [`write_upper_tar`](crate::write_upper_tar).
pub fn upper_changes(
    upper: &Path,
    lowers: &[PathBuf],
    skip: &[&str],
) -> Result<Vec<Change>, ImageError> {
    let mut w = Walk {
        root: upper,
        lowers,
        skip,
        changed_dirs: HashSet::new(),
        out: Vec::new(),
    };
    if upper.is_dir() {
        w.dir(Path::new(""))?;
    }
    Ok(w.out)
}

struct Walk<'a> {
    root: &'a Path,
    lowers: &'a [PathBuf],
    skip: &'a [&'a str],
    changed_dirs: HashSet<PathBuf>,
    out: Vec<Change>,
}

fn shown(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// Go's `sameFsTime`: equal, or equal seconds when one side lost its
/// nanoseconds.
fn same_time(a: &Metadata, b: &Metadata) -> bool {
    a.mtime() == b.mtime()
        && (a.mtime_nsec() == b.mtime_nsec() || a.mtime_nsec() == 0 || b.mtime_nsec() == 0)
}

/// What one layer says of a path.
enum Lookup {
    /// It has it.
    Found(Metadata),
    /// It hides it from the layers below (whiteout, non-directory parent).
    Hidden,
    /// It says nothing of it.
    Absent,
    /// A parent is an opaque directory here.
    Opaque,
}

/// Looks `rel` up in one layer dir, component by component, following no
/// link; with `stop_at_opaque`, an opaque parent directory is reported.
fn in_layer(layer: &Path, rel: &Path, stop_at_opaque: bool) -> Lookup {
    let parts: Vec<_> = rel.components().collect();
    let mut path = layer.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let Ok(md) = fs::symlink_metadata(&path) else {
            return Lookup::Absent;
        };
        if md.file_type().is_char_device() && md.rdev() == 0 {
            return Lookup::Hidden;
        }
        if i + 1 == parts.len() {
            return Lookup::Found(md);
        }
        if !md.is_dir() {
            return Lookup::Hidden;
        }
        if stop_at_opaque && is_opaque(&path) {
            return Lookup::Opaque;
        }
    }
    Lookup::Absent
}

/// Whether overlayfs treats the directory as opaque.
fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, "trusted.overlay.opaque")
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}

impl Walk<'_> {
    /// The path as the image has it, if it does: looked up layer by layer,
    /// topmost first, as overlayfs merges them. No link on the way is
    /// followed (a layer's `a -> /etc` must not make `a/passwd` the host's),
    /// and a whiteout, a non-directory or an opaque directory on the way
    /// hides what the layers below have.
    fn in_lower(&self, rel: &Path) -> Option<Metadata> {
        for layer in self.lowers {
            match in_layer(layer, rel, true) {
                Lookup::Found(md) => return Some(md),
                Lookup::Hidden => return None,
                Lookup::Absent => continue,
                // Below an opaque directory only this layer counts.
                Lookup::Opaque => match in_layer(layer, rel, false) {
                    Lookup::Found(md) => return Some(md),
                    _ => return None,
                },
            }
        }
        None
    }

    fn dir(&mut self, rel: &Path) -> Result<(), ImageError> {
        let dir = self.root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| ImageError::io("read", &dir, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let rel_path = rel.join(&name);
            if is_skipped(self.skip, &rel_path) {
                continue;
            }
            let full = self.root.join(&rel_path);
            let md = fs::symlink_metadata(&full).map_err(|e| ImageError::io("stat", &full, e))?;
            let is_dir = md.is_dir();
            if is_dir && only_skipped(self.root, &rel_path, self.skip) {
                continue;
            }
            self.entry(&rel_path, &full, &md)?;
            if is_dir {
                self.dir(&rel_path)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, full: &Path, md: &Metadata) -> Result<(), ImageError> {
        let whiteout = md.file_type().is_char_device() && md.rdev() == 0;
        let lower = self.in_lower(rel);
        let opaque = md.is_dir() && is_opaque(full);
        let kind = if whiteout || (opaque && lower.is_some()) {
            ChangeKind::Deleted
        } else if let Some(l) = lower {
            if md.is_dir()
                && l.is_dir()
                && md.len() == l.len()
                && md.mode() == l.mode()
                && same_time(md, &l)
            {
                // Copied up only because something below it changed.
                return Ok(());
            }
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        if md.is_dir() {
            self.changed_dirs.insert(rel.to_path_buf());
        }
        if kind != ChangeKind::Modified {
            if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                if self.changed_dirs.insert(parent.to_path_buf()) {
                    self.out.push(Change {
                        path: shown(parent),
                        kind: ChangeKind::Modified,
                    });
                }
            }
        }
        self.out.push(Change {
            path: shown(rel),
            kind,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(v: &[Change]) -> Vec<(String, u8)> {
        v.iter().map(|c| (c.path.clone(), c.kind as u8)).collect()
    }

    #[test]
    fn added_modified_deleted() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("l"), t.path().join("u"));
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::write(lower.join("etc/group"), "root").unwrap();
        fs::create_dir_all(lower.join("usr/bin")).unwrap();
        fs::write(lower.join("usr/bin/x"), "x").unwrap();
        // Copy-ups keep the lower dir's mode and times.
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/passwd"), "root\nnew").unwrap();
        fs::create_dir_all(upper.join("tmp/new")).unwrap();
        fs::write(upper.join("tmp/new/f"), "f").unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::create_dir_all(upper.join("usr/bin")).unwrap();
        nix::sys::stat::mknod(
            &upper.join("usr/bin/x"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        // The image's /etc is older than the container's copy.
        set_mtime(&lower.join("etc"), (1_000_000, 0));
        for d in ["usr", "usr/bin"] {
            let m = fs::metadata(lower.join(d)).unwrap();
            let mtime = filetime_of(&m);
            set_mtime(&upper.join(d), mtime);
        }
        let got = upper_changes(&upper, &[lower], &["etc/hosts"]).unwrap();
        assert_eq!(
            kinds(&got),
            vec![
                ("/etc".into(), 0),
                ("/etc/passwd".into(), 0),
                ("/tmp".into(), 1),
                ("/tmp/new".into(), 1),
                ("/tmp/new/f".into(), 1),
                ("/usr/bin".into(), 0),
                ("/usr/bin/x".into(), 2),
            ]
        );
        // Nothing recorded: nothing changed.
        let empty = t.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(upper_changes(&empty, &[], &[]).unwrap().is_empty());
        assert!(upper_changes(&t.path().join("none"), &[], &[])
            .unwrap()
            .is_empty());
    }

    fn filetime_of(m: &Metadata) -> (i64, i64) {
        (m.mtime(), m.mtime_nsec())
    }

    fn set_mtime(p: &Path, (s, ns): (i64, i64)) {
        let t = nix::sys::time::TimeSpec::new(s, ns);
        nix::sys::stat::utimensat(
            None,
            p,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    #[test]
    fn lower_lookup_follows_no_link_and_honours_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom, upper) = (
            t.path().join("top"),
            t.path().join("bot"),
            t.path().join("u"),
        );
        // The top layer links `a` to the host's /etc; the container adds
        // a/passwd (in its own directory a): an addition, not a change.
        fs::create_dir_all(&top).unwrap();
        std::os::unix::fs::symlink("/etc", top.join("a")).unwrap();
        // The bottom layer has gone/f, whited out by the top layer.
        fs::create_dir_all(bottom.join("gone")).unwrap();
        fs::write(bottom.join("gone/f"), "x").unwrap();
        nix::sys::stat::mknod(
            &top.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        fs::create_dir_all(upper.join("a")).unwrap();
        fs::write(upper.join("a/passwd"), "mine").unwrap();
        fs::create_dir_all(upper.join("gone")).unwrap();
        fs::write(upper.join("gone/f"), "new").unwrap();
        let w = Walk {
            root: &upper,
            lowers: &[top.clone(), bottom.clone()],
            skip: &[],
            changed_dirs: HashSet::new(),
            out: Vec::new(),
        };
        assert!(w
            .in_lower(Path::new("a"))
            .is_some_and(|m| m.file_type().is_symlink()));
        assert!(w.in_lower(Path::new("a/passwd")).is_none());
        assert!(w.in_lower(Path::new("gone/f")).is_none());
        // Without the top layer the bottom one shows through.
        let w2 = Walk {
            lowers: std::slice::from_ref(&bottom),
            ..w
        };
        assert!(w2.in_lower(Path::new("gone/f")).is_some());
    }
}
