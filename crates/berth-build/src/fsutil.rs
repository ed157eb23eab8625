//! File system helpers of COPY/ADD: paths resolved inside a root as if it
//! were `/` (symlinks included), tree copies with ownership and modes,
//! content hashes for the cache, and user/group names from a rootfs.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::context::ContextDigests;

/// Resolves `path` inside `root`, following symlinks with `root` standing
/// for `/`: the result is always under `root`, whatever the links say.
/// With `follow_last` false a symlink in the last component is kept.
pub(crate) fn scoped_join(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut todo: Vec<String> = path
        .split('/')
        .rev()
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let mut cand = root.to_path_buf();
        for p in &cur {
            cand.push(p);
        }
        cand.push(&c);
        let is_last = todo.is_empty();
        match fs::symlink_metadata(&cand) {
            Ok(md) if md.file_type().is_symlink() && (!is_last || follow_last) => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::other(format!("too many links in {path}")));
                }
                let target = fs::read_link(&cand)?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    cur.clear();
                }
                for part in t.split('/').rev().filter(|c| !c.is_empty() && *c != ".") {
                    todo.push(part.to_string());
                }
            }
            _ => cur.push(c),
        }
    }
    let mut out = root.to_path_buf();
    for p in cur {
        out.push(p);
    }
    Ok(out)
}

/// How copied entries are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CopyOpts {
    /// uid, gid (Docker's default is 0:0).
    pub(crate) owner: (u32, u32),
    /// `--chmod` for every entry copied.
    pub(crate) chmod: Option<u32>,
}

fn set_mtime(p: &Path, md: &fs::Metadata) {
    if let Ok(f) = File::open(p) {
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                md.mtime().max(0) as u64,
                md.mtime_nsec().clamp(0, 999_999_999) as u32,
            );
        let _ = f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t));
    }
}

/// Copies `src` (file, dir or symlink, not followed) to `dst`, merging into
/// an existing directory, replacing an existing non-directory.
pub(crate) fn copy_tree(src: &Path, dst: &Path, opts: CopyOpts) -> io::Result<()> {
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    let mode = opts.chmod.unwrap_or(md.mode() & 0o7777);
    if ft.is_dir() {
        match fs::symlink_metadata(dst) {
            Ok(d) if d.is_dir() => {}
            Ok(_) => {
                fs::remove_file(dst)?;
                fs::create_dir(dst)?;
            }
            Err(_) => fs::create_dir(dst)?,
        }
        let mut names: Vec<_> = fs::read_dir(src)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            copy_tree(&src.join(&n), &dst.join(&n), opts)?;
        }
        std::os::unix::fs::lchown(dst, Some(opts.owner.0), Some(opts.owner.1))?;
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))?;
        set_mtime(dst, &md);
    } else if ft.is_symlink() {
        remove_non_dir(dst)?;
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
        std::os::unix::fs::lchown(dst, Some(opts.owner.0), Some(opts.owner.1))?;
    } else if ft.is_file() {
        remove_non_dir(dst)?;
        let mut from = File::open(src)?;
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dst)?;
        io::copy(&mut from, &mut to)?;
        drop(to);
        std::os::unix::fs::lchown(dst, Some(opts.owner.0), Some(opts.owner.1))?;
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))?;
        set_mtime(dst, &md);
    }
    // Devices, fifos and sockets in a context are not copied (Docker
    // refuses most of them too).
    Ok(())
}

fn remove_non_dir(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Err(io::Error::other(format!(
            "cannot overwrite directory {} with a non-directory",
            p.display()
        ))),
        Ok(_) => fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

/// Creates `dir` and its missing parents, owned by `owner`.
pub(crate) fn mkdir_all(dir: &Path, owner: (u32, u32)) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(p) = dir.parent() {
        mkdir_all(p, owner)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
            std::os::unix::fs::lchown(dir, Some(owner.0), Some(owner.1))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Feeds a tree's names, types, modes and contents into a hash (what the
/// cache keys COPY/ADD on; times are left out, as Docker does). A file's
/// content goes in as its sha256: the one `digests` knows, else read now
/// and remembered there, so no file is read twice for the cache.
pub(crate) fn hash_tree(
    p: &Path,
    rel: &str,
    h: &mut Sha256,
    digests: &ContextDigests,
) -> io::Result<()> {
    let md = fs::symlink_metadata(p)?;
    let ft = md.file_type();
    h.update(rel.as_bytes());
    h.update(b"\0");
    h.update(format!("{:o} {} {}\0", md.mode(), md.uid(), md.gid()).as_bytes());
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        for n in names {
            hash_tree(&p.join(&n), &format!("{rel}/{n}"), h, digests)?;
        }
    } else if ft.is_symlink() {
        h.update(fs::read_link(p)?.to_string_lossy().as_bytes());
    } else if ft.is_file() {
        h.update(md.len().to_le_bytes());
        let sha = match digests.get(p, &md) {
            Some(d) => d,
            None => {
                let d = file_sha256(p)?;
                digests.put(p, &md, d);
                d
            }
        };
        h.update(sha);
    }
    h.update(b"\n");
    Ok(())
}

/// The sha256 of a file's bytes.
fn file_sha256(p: &Path) -> io::Result<[u8; 32]> {
    let mut f = File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// A name or number from `/etc/passwd` or `/etc/group` in a rootfs.
fn lookup_id(root: &Path, file: &str, name: &str) -> Option<(u32, Option<u32>)> {
    if let Ok(n) = name.parse::<u32>() {
        return Some((n, None));
    }
    let text = fs::read_to_string(scoped_join(root, file, true).ok()?).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name)
            .then(|| (f[2].parse().ok(), f[3].parse().ok()))
            .and_then(|(a, b)| a.map(|a| (a, b)))
    })
}

/// `--chown=user[:group]` against the destination rootfs.
pub(crate) fn parse_chown(root: &Path, spec: &str) -> Result<(u32, u32), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, _) = lookup_id(root, "/etc/passwd", u)
        .ok_or_else(|| format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {u}: no such user: {u}"))?;
    let gid = match g {
        Some(g) => {
            lookup_id(root, "/etc/group", g)
                .ok_or_else(|| format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"))?
                .0
        }
        // Docker: a user alone means the same number for the group.
        None => uid,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_join_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("a/up")).unwrap();
        assert_eq!(
            scoped_join(r, "/a/abs/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(scoped_join(r, "a/up/x", true).unwrap(), r.join("x"));
        assert_eq!(scoped_join(r, "../../x", true).unwrap(), r.join("x"));
        assert_eq!(scoped_join(r, "a/abs", false).unwrap(), r.join("a/abs"));
    }

    #[test]
    fn hash_tree_hashes_each_file_once() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("d")).unwrap();
        fs::write(r.join("d/f"), b"content").unwrap();
        let key = |digests: &ContextDigests| {
            let mut h = Sha256::new();
            hash_tree(&r.join("d"), "d", &mut h, digests).unwrap();
            hex::encode(h.finalize())
        };
        let digests = ContextDigests::default();
        let first = key(&digests);
        assert_eq!(digests.len(), 1);
        assert_eq!(key(&digests), first);
        // A known digest stands for the bytes: the file is not read.
        let md = fs::symlink_metadata(r.join("d/f")).unwrap();
        digests.put(&r.join("d/f"), &md, [7; 32]);
        assert_ne!(key(&digests), first);
        // Without a record the bytes are read: the same key as at first.
        fs::remove_file(r.join("d/f")).unwrap();
        fs::write(r.join("d/f"), b"content").unwrap();
        let fresh = ContextDigests::default();
        assert_eq!(key(&fresh), first);
    }

    #[test]
    fn chown_names() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nbob:x:1000:1001::/home/bob:/bin/sh\n",
        )
        .unwrap();
        fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(parse_chown(t.path(), "bob").unwrap(), (1000, 1000));
        assert_eq!(parse_chown(t.path(), "bob:staff").unwrap(), (1000, 50));
        assert_eq!(parse_chown(t.path(), "7:8").unwrap(), (7, 8));
        assert!(parse_chown(t.path(), "nobody").is_err());
    }
}
