//! The build context: the tar the client sent, unpacked once into a
//! directory, and the sources of COPY/ADD found in it (or in a stage's
//! root): paths checked never to leave it, globs expanded. Each regular
//! file's content is hashed as it is unpacked (as dockerd's tarsum does),
//! so the cache check of a COPY reads no file again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::fsutil::scoped_join;
use crate::ignore::glob_regex;
use crate::BuildError;

/// The content digests of a context's regular files, taken while it was
/// unpacked, and of the files hashed since: no file is hashed twice in a
/// build. An entry counts only while the file on disk is the one hashed
/// (same inode, size and change time).
#[derive(Default)]
pub struct ContextDigests {
    files: Mutex<HashMap<PathBuf, FileDigest>>,
}

impl std::fmt::Debug for ContextDigests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.files.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("ContextDigests").field("files", &n).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(md: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct FileDigest {
    stamp: FileStamp,
    sha256: [u8; 32],
}

impl ContextDigests {
    /// The digest of `path` (whose metadata is `md`), if known and the
    /// file has not changed since.
    pub(crate) fn get(&self, path: &Path, md: &std::fs::Metadata) -> Option<[u8; 32]> {
        let m = self.files.lock().unwrap_or_else(|p| p.into_inner());
        m.get(path)
            .filter(|d| d.stamp == FileStamp::of(md))
            .map(|d| d.sha256)
    }

    /// Records the digest of `path` as it is now (`md`).
    pub(crate) fn put(&self, path: &Path, md: &std::fs::Metadata, sha256: [u8; 32]) {
        let mut m = self.files.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(
            path.to_path_buf(),
            FileDigest {
                stamp: FileStamp::of(md),
                sha256,
            },
        );
    }

    fn forget(&self, path: &Path) {
        let mut m = self.files.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(path);
    }

    /// How many files have a digest.
    pub fn len(&self) -> usize {
        self.files.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when no file has one.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A reader that hashes what passes through it while switched on: the
/// bytes of one file entry, between the tar headers it does not see.
struct Tap<R> {
    inner: R,
    on: Rc<RefCell<Option<(Sha256, u64)>>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some((h, count)) = self.on.borrow_mut().as_mut() {
            h.update(&buf[..n]);
            *count += n as u64;
        }
        Ok(n)
    }
}

/// Where `unpack_in` puts an entry: its normal components under `dest`
/// (`None` for one it skips).
fn entry_target(dest: &Path, path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = dest.to_path_buf();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    (out != dest).then_some(out)
}

/// Unpacks a (plain, gzip or zstd) tar context into `dest`, hashing each
/// regular file as it is written. Entries that would land outside `dest`
/// are refused by the tar reader. `dest` must exist and be canonical (no
/// symlink in it): digests are keyed by real paths under it, as a COPY
/// finds its sources.
pub fn unpack_context<R: Read>(r: R, dest: &Path) -> Result<ContextDigests, BuildError> {
    let bad = |e: std::io::Error| BuildError::Syntax(format!("unpacking the build context: {e}"));
    let (_, plain) = berth_image::compression::decompress(r)
        .map_err(|e| BuildError::Syntax(format!("reading the build context: {e}")))?;
    let on = Rc::new(RefCell::new(None));
    let mut ar = tar::Archive::new(Tap {
        inner: plain,
        on: on.clone(),
    });
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let digests = ContextDigests::default();
    let mut dirs = Vec::new();
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            // Directories last, as `Archive::unpack` does: writing their
            // files would change the times they were given.
            dirs.push(entry);
            continue;
        }
        // Sparse entries hold holes the tap never sees: those files are
        // hashed from disk when a COPY needs them.
        let hashed = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        let size = entry.size();
        let target = entry.path().ok().and_then(|p| entry_target(dest, &p));
        if hashed {
            *on.borrow_mut() = Some((Sha256::new(), 0));
        }
        let unpacked = entry.unpack_in(dest);
        let tapped = on.borrow_mut().take();
        if !unpacked.map_err(bad)? {
            continue;
        }
        let Some(t) = target else {
            continue;
        };
        // Where the bytes really went: an entry may name its file through
        // a symlink an earlier entry made. Whatever was known of that file
        // is stale now; only a file written under its own name is noted.
        let real = t
            .parent()
            .and_then(|p| std::fs::canonicalize(p).ok())
            .zip(t.file_name())
            .map(|(p, n)| p.join(n));
        digests.forget(&t);
        if let Some(r) = &real {
            digests.forget(r);
        }
        if let (Some((h, n)), Some(r)) = (tapped, real) {
            if n == size && r == t {
                if let Ok(md) = std::fs::symlink_metadata(&t) {
                    if md.is_file() {
                        digests.put(&t, &md, h.finalize().into());
                    }
                }
            }
        }
    }
    // Deepest first, as `Archive::unpack` does: a read-only parent set
    // first would refuse its children.
    dirs.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut d in dirs {
        d.unpack_in(dest).map_err(bad)?;
    }
    Ok(digests)
}

/// Where a source lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceRoot {
    /// The build context.
    Context,
    /// Another stage or image (`--from`).
    Stage,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Lexical check that `src` stays in the context (`..` may not climb out).
fn check_inside(src: &str) -> Result<(), BuildError> {
    let mut depth: i64 = 0;
    for c in src.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(BuildError::Syntax(format!(
                        "Forbidden path outside the build context: {src} ()"
                    )));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

fn walk(root: &Path, rel: &str, out: &mut Vec<String>) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let p = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let is_dir = std::fs::symlink_metadata(root.join(&p))
            .map(|m| m.is_dir())
            .unwrap_or(false);
        out.push(p.clone());
        if is_dir {
            walk(root, &p, out);
        }
    }
}

/// One resolved source: where it is on disk and its name (for a file
/// copied into a directory).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    /// A local archive ADD unpacks (context files only).
    pub(crate) extract: bool,
}

/// Resolves the sources of COPY/ADD under `root`.
pub(crate) fn resolve_sources(
    root: &Path,
    srcs: &[String],
    kind: SourceRoot,
    cmd: &str,
) -> Result<Vec<Source>, BuildError> {
    let mut out = Vec::new();
    for src in srcs {
        if kind == SourceRoot::Context {
            check_inside(src)?;
        }
        let cleaned = crate::ignore::clean(src);
        if has_glob(&cleaned) {
            let re = glob_regex(&cleaned)
                .map_err(|e| BuildError::Syntax(format!("bad pattern {src}: {e}")))?;
            let mut all = Vec::new();
            walk(root, "", &mut all);
            let before = out.len();
            for p in all.into_iter().filter(|p| re.is_match(p)) {
                let path = scoped_join(root, &p, false)
                    .map_err(|e| BuildError::Internal(e.to_string()))?;
                let name = p.rsplit('/').next().unwrap_or(&p).to_string();
                out.push(Source {
                    path,
                    name,
                    extract: kind == SourceRoot::Context,
                });
            }
            if out.len() == before {
                return Err(BuildError::NotFound(format!(
                    "{cmd} failed: no source files were specified"
                )));
            }
            continue;
        }
        let path =
            scoped_join(root, &cleaned, true).map_err(|e| BuildError::Internal(e.to_string()))?;
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(BuildError::NotFound(match kind {
                SourceRoot::Context => format!(
                    "{cmd} failed: file not found in build context or excluded by .dockerignore: stat {cleaned}: file does not exist"
                ),
                SourceRoot::Stage => {
                    format!("{cmd} failed: stat {cleaned}: file does not exist")
                }
            }));
        }
        let name = cleaned.rsplit('/').next().unwrap_or("").to_string();
        out.push(Source {
            path,
            name,
            extract: kind == SourceRoot::Context,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_entry_type(kind);
        b.append_link(&mut h, name, target).unwrap();
    }

    #[test]
    fn digests_taken_while_unpacking_are_never_stale() {
        let mut b = tar::Builder::new(Vec::new());
        file(&mut b, "a", b"first");
        file(&mut b, "d/b", b"bee");
        file(&mut b, "d/c", b"sea");
        // The same name again: the later entry wins, on disk and here.
        file(&mut b, "a", b"second");
        link(&mut b, tar::EntryType::Link, "h", "a");
        // d/c rewritten through a symlink: its digest must go.
        link(&mut b, tar::EntryType::Symlink, "l", "d");
        file(&mut b, "l/c", b"changed");
        let tar = b.into_inner().unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(t.path()).unwrap();
        let digests = unpack_context(&tar[..], &root).unwrap();
        let sha = |p: &Path| -> [u8; 32] { Sha256::digest(std::fs::read(p).unwrap()).into() };
        for n in ["a", "d/b", "d/c", "h"] {
            let p = root.join(n);
            let md = std::fs::symlink_metadata(&p).unwrap();
            if let Some(d) = digests.get(&p, &md) {
                assert_eq!(d, sha(&p), "{n}");
            }
        }
        assert_eq!(std::fs::read(root.join("d/c")).unwrap(), b"changed");
        let bp = root.join("d/b");
        let md = std::fs::symlink_metadata(&bp).unwrap();
        assert_eq!(digests.get(&bp, &md), Some(sha(&bp)));
        // A file changed after the fact is not served from the record.
        std::fs::write(&bp, b"BEE").unwrap();
        let md = std::fs::symlink_metadata(&bp).unwrap();
        let _ = digests.get(&bp, &md).map(|d| assert_eq!(d, sha(&bp)));
        // Refused: an entry climbing out of the context.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.as_gnu_mut().unwrap().name[..8].copy_from_slice(b"../evil\0");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let t2 = tempfile::tempdir().unwrap();
        let inner = t2.path().join("ctx");
        std::fs::create_dir(&inner).unwrap();
        let _ = unpack_context(&b.into_inner().unwrap()[..], &inner);
        assert!(!t2.path().join("evil").exists());
    }

    #[test]
    fn sources() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("d/e")).unwrap();
        std::fs::write(r.join("a.txt"), "a").unwrap();
        std::fs::write(r.join("b.txt"), "b").unwrap();
        std::fs::write(r.join("d/e/c.txt"), "c").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("evil")).unwrap();
        let s = resolve_sources(r, &["*.txt".into()], SourceRoot::Context, "COPY").unwrap();
        assert_eq!(s.len(), 2);
        let s = resolve_sources(r, &["d".into()], SourceRoot::Context, "COPY").unwrap();
        assert_eq!(s[0].path, r.join("d"));
        assert!(
            resolve_sources(r, &["../x".into()], SourceRoot::Context, "COPY")
                .unwrap_err()
                .to_string()
                .contains("outside the build context")
        );
        let e = resolve_sources(r, &["nope".into()], SourceRoot::Context, "COPY").unwrap_err();
        assert!(e.to_string().contains("file not found in build context"));
        // A symlink to an absolute path resolves inside the context.
        let e = resolve_sources(r, &["evil".into()], SourceRoot::Context, "COPY").unwrap_err();
        assert!(e.to_string().contains("stat evil"));
    }
}
