//! The registry's store on the filesystem, under `--root`:
//!
//! ```text
//! blobs/<algo>/<hex>                            content, shared by every repository
//! repositories/<name>/_layers/<algo>/<hex>      empty: blob <hex> was pushed to <name>
//! repositories/<name>/_manifests/revisions/<algo>/<hex>
//!                                               manifest <hex> is in <name>; holds its media type
//! repositories/<name>/_manifests/tags/<tag>     holds the digest the tag points to
//! repositories/<name>/_referrers/<salgo>/<shex>/<algo>/<hex>
//!                                               empty: manifest <hex> has subject <shex>
//! uploads/<uuid>/{repo,data}                    an upload in progress
//! gc.lock                                       pushes lock it shared, gc's sweep exclusive
//! ```
//!
//! Every file is written to a `.tmp-*` name in its own directory, fsynced,
//! renamed into place and the directory fsynced, so a kill -9 (or a power
//! cut) at any point leaves each file either whole or absent. Writes go
//! content first, links after: blob before layer link, manifest blob before
//! revision before tag. A crash between steps leaves only unreferenced
//! content, which gc removes. Blobs are renamed into `blobs/` only after
//! their digest was checked, so every file there hashes to its name.
//!
//! All functions here block; handlers call them through [`blocking`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::errors::ApiError;
use super::names::{Algo, Digest};
use crate::RegistryError;

type Result<T> = std::result::Result<T, RegistryError>;

/// The store rooted at one directory.
#[derive(Clone, Debug)]
pub(crate) struct Storage {
    root: Arc<Path>,
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> std::result::Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(format!("store task: {e}"))),
    }
}

impl Storage {
    /// Opens (creating when needed) the store under `root`.
    pub(crate) fn open(root: &Path) -> Result<Storage> {
        for d in ["blobs", "repositories", "uploads"] {
            ensure_dir(&root.join(d))?;
        }
        let lock = root.join("gc.lock");
        if !lock.exists() {
            File::create(&lock).map_err(|e| RegistryError::io(&lock, e))?;
        }
        Ok(Storage { root: root.into() })
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algo().name()).join(d.hex())
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers")
            .join(d.algo().name())
            .join(d.hex())
    }

    fn revision_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions")
            .join(d.algo().name())
            .join(d.hex())
    }

    fn tags_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags")
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_referrers")
            .join(subject.algo().name())
            .join(subject.hex())
    }

    /// Whether anything was ever pushed to `name`.
    pub(crate) fn repo_exists(&self, name: &str) -> bool {
        holds_anything(&self.repo_dir(name))
    }

    /// Path and size of blob `d` when it is present in the store (in any
    /// repository).
    pub(crate) fn blob_stat(&self, d: &Digest) -> Result<Option<(PathBuf, u64)>> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some((p, m.len()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::io(p, e)),
        }
    }

    /// Path and size of blob `d` when repository `name` may serve it: pushed
    /// or mounted there as a blob, or one of its manifests.
    pub(crate) fn repo_blob(&self, name: &str, d: &Digest) -> Result<Option<(PathBuf, u64)>> {
        if !self.layer_link(name, d).exists() && !self.revision_link(name, d).exists() {
            return Ok(None);
        }
        self.blob_stat(d)
    }

    /// Marks blob `d` as just used, so gc's grace period protects it while a
    /// push that relies on it finishes. False when the blob is absent.
    pub(crate) fn touch_blob(&self, d: &Digest) -> Result<bool> {
        let p = self.blob_path(d);
        match File::open(&p) {
            Ok(f) => {
                f.set_modified(SystemTime::now())
                    .map_err(|e| RegistryError::io(&p, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(RegistryError::io(p, e)),
        }
    }

    /// Moves a verified upload (`tmp`, on the same filesystem) into place as
    /// blob `d`. A blob already there is kept (same content) and `tmp`
    /// dropped, so concurrent uploads of one blob store it once.
    pub(crate) fn commit_blob(&self, tmp: &Path, d: &Digest) -> Result<()> {
        let dst = self.blob_path(d);
        let dir = parent(&dst);
        ensure_dir(dir)?;
        if self.touch_blob(d)? {
            return remove_file_if_exists(tmp).map(|_| ());
        }
        set_read_only(tmp)?;
        fs::rename(tmp, &dst).map_err(|e| RegistryError::io(&dst, e))?;
        sync_dir(dir)?;
        // The upload's mtime is its last write; the grace period counts
        // from the commit.
        self.touch_blob(d)?;
        Ok(())
    }

    /// Stores `data` (already known to hash to `d`) as a blob.
    pub(crate) fn write_blob(&self, d: &Digest, data: &[u8]) -> Result<()> {
        if self.touch_blob(d)? {
            return Ok(());
        }
        let dst = self.blob_path(d);
        write_atomic(&dst, data)?;
        set_read_only(&dst)
    }

    /// The whole content of blob `d`, if present.
    pub(crate) fn read_blob(&self, d: &Digest) -> Result<Option<Vec<u8>>> {
        let p = self.blob_path(d);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::io(p, e)),
        }
    }

    /// Removes blob `d` from the store (gc only).
    pub(crate) fn remove_blob(&self, d: &Digest) -> Result<bool> {
        remove_file_if_exists(&self.blob_path(d))
    }

    /// Every blob in the store with its size and modification time.
    pub(crate) fn all_blobs(&self) -> Result<Vec<(Digest, u64, SystemTime)>> {
        let mut out = Vec::new();
        for algo in Algo::ALL {
            let dir = self.root.join("blobs").join(algo.name());
            for hex in list_dir(&dir)? {
                let Some(d) = Digest::from_hex(algo, &hex) else {
                    continue;
                };
                let p = dir.join(&hex);
                match fs::metadata(&p) {
                    Ok(m) => out.push((d, m.len(), m.modified().unwrap_or(SystemTime::now()))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RegistryError::io(p, e)),
                }
            }
        }
        Ok(out)
    }

    /// Links blob `d` into repository `name`.
    pub(crate) fn link_layer(&self, name: &str, d: &Digest) -> Result<()> {
        let p = self.layer_link(name, d);
        if p.exists() {
            return Ok(());
        }
        write_atomic(&p, b"")
    }

    pub(crate) fn unlink_layer(&self, name: &str, d: &Digest) -> Result<bool> {
        remove_file_if_exists(&self.layer_link(name, d))
    }

    #[cfg(test)]
    pub(crate) fn has_layer(&self, name: &str, d: &Digest) -> bool {
        self.layer_link(name, d).exists()
    }

    /// The blobs linked into repository `name`.
    pub(crate) fn layers(&self, name: &str) -> Result<Vec<Digest>> {
        digests_under(&self.repo_dir(name).join("_layers"))
    }

    /// Records manifest `d` (its blob already stored) in repository `name`.
    pub(crate) fn put_revision(&self, name: &str, d: &Digest, media_type: &str) -> Result<()> {
        write_atomic(&self.revision_link(name, d), media_type.as_bytes())
    }

    /// The media type manifest `d` was pushed with, if it is in `name`.
    pub(crate) fn revision(&self, name: &str, d: &Digest) -> Result<Option<String>> {
        read_text(&self.revision_link(name, d))
    }

    pub(crate) fn delete_revision(&self, name: &str, d: &Digest) -> Result<bool> {
        remove_file_if_exists(&self.revision_link(name, d))
    }

    /// Every manifest of repository `name`.
    pub(crate) fn revisions(&self, name: &str) -> Result<Vec<Digest>> {
        digests_under(&self.repo_dir(name).join("_manifests/revisions"))
    }

    /// The manifest tag `tag` of `name` points to.
    pub(crate) fn tag(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        Ok(read_text(&self.tags_dir(name).join(tag))?.and_then(|s| Digest::parse(s.trim())))
    }

    pub(crate) fn put_tag(&self, name: &str, tag: &str, d: &Digest) -> Result<()> {
        write_atomic(&self.tags_dir(name).join(tag), d.to_string().as_bytes())
    }

    pub(crate) fn delete_tag(&self, name: &str, tag: &str) -> Result<bool> {
        remove_file_if_exists(&self.tags_dir(name).join(tag))
    }

    /// The tags of `name`, in byte order.
    pub(crate) fn tags(&self, name: &str) -> Result<Vec<String>> {
        let mut t = list_dir(&self.tags_dir(name))?;
        t.sort();
        Ok(t)
    }

    pub(crate) fn add_referrer(&self, name: &str, subject: &Digest, d: &Digest) -> Result<()> {
        let p = self
            .referrers_dir(name, subject)
            .join(d.algo().name())
            .join(d.hex());
        if p.exists() {
            return Ok(());
        }
        write_atomic(&p, b"")
    }

    pub(crate) fn remove_referrer(&self, name: &str, subject: &Digest, d: &Digest) -> Result<()> {
        let p = self
            .referrers_dir(name, subject)
            .join(d.algo().name())
            .join(d.hex());
        remove_file_if_exists(&p).map(|_| ())
    }

    /// The manifests of `name` recorded with subject `subject`.
    pub(crate) fn referrers(&self, name: &str, subject: &Digest) -> Result<Vec<Digest>> {
        digests_under(&self.referrers_dir(name, subject))
    }

    /// Every repository that holds manifests, in byte order.
    pub(crate) fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let has_manifests = |p: &Path| p.join("_manifests").is_dir();
        walk_repos(&self.root.join("repositories"), "", has_manifests, &mut out)?;
        out.sort();
        Ok(out)
    }

    /// Every repository with anything in it (manifests or blobs), for gc.
    pub(crate) fn all_repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        walk_repos(
            &self.root.join("repositories"),
            "",
            holds_anything,
            &mut out,
        )?;
        out.sort();
        Ok(out)
    }

    pub(crate) fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Creates upload `id` for repository `name`, with an empty data file.
    pub(crate) fn new_upload(&self, id: &str, name: &str) -> Result<PathBuf> {
        let dir = self.upload_dir(id);
        ensure_dir(&dir)?;
        let data = dir.join("data");
        File::create(&data).map_err(|e| RegistryError::io(&data, e))?;
        write_atomic(&dir.join("repo"), name.as_bytes())?;
        Ok(data)
    }

    /// The repository of upload `id` and the size of its data so far, if
    /// the upload exists on disk (e.g. after a restart).
    pub(crate) fn upload_state(&self, id: &str) -> Result<Option<(String, u64)>> {
        let dir = self.upload_dir(id);
        let Some(repo) = read_text(&dir.join("repo"))? else {
            return Ok(None);
        };
        let data = dir.join("data");
        match fs::metadata(&data) {
            Ok(m) => Ok(Some((repo, m.len()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::io(data, e)),
        }
    }

    pub(crate) fn remove_upload(&self, id: &str) -> Result<()> {
        let dir = self.upload_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RegistryError::io(dir, e)),
        }
    }

    /// Every upload directory with the time of its last write.
    pub(crate) fn uploads(&self) -> Result<Vec<(String, SystemTime)>> {
        let dir = self.root.join("uploads");
        let mut out = Vec::new();
        for id in list_dir(&dir)? {
            let p = dir.join(&id);
            let data = p.join("data");
            let m = fs::metadata(&data).or_else(|_| fs::metadata(&p));
            if let Ok(m) = m {
                out.push((id, m.modified().unwrap_or(SystemTime::now())));
            }
        }
        Ok(out)
    }

    /// Holds gc's sweep off while a push commits blobs or manifests. Each
    /// holder opens its own file description: flock locks belong to it,
    /// and sharing one would let one holder's unlock free the others.
    pub(crate) fn lock_shared(&self) -> Result<File> {
        let p = self.root.join("gc.lock");
        let f = File::open(&p).map_err(|e| RegistryError::io(&p, e))?;
        f.lock_shared().map_err(|e| RegistryError::io(&p, e))?;
        Ok(f)
    }

    /// Waits until no push is committing, and keeps new ones waiting.
    pub(crate) fn lock_exclusive(&self) -> Result<File> {
        let p = self.root.join("gc.lock");
        let f = File::open(&p).map_err(|e| RegistryError::io(&p, e))?;
        f.lock().map_err(|e| RegistryError::io(&p, e))?;
        Ok(f)
    }

    /// Removes leftover `.tmp-*` files older than `before` (gc).
    pub(crate) fn stale_temp_files(&self, before: SystemTime) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        collect_temp(&self.root.join("blobs"), before, &mut out)?;
        collect_temp(&self.root.join("repositories"), before, &mut out)?;
        Ok(out)
    }
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

/// Writes `data` to `path` atomically and durably: temp file in the same
/// directory, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = parent(path);
    ensure_dir(dir)?;
    let tmp = dir.join(format!(".tmp-{}", random_hex(8)));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(RegistryError::io(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(RegistryError::io(path, e));
    }
    sync_dir(dir)
}

/// Creates `dir` and its missing parents, fsyncing each new entry's parent.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(p) = dir.parent() {
        ensure_dir(p)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent(dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(RegistryError::io(dir, e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| RegistryError::io(dir, e))
}

fn set_read_only(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o444)).map_err(|e| RegistryError::io(p, e))
}

/// Removes a file; false when it was not there.
pub(crate) fn remove_file_if_exists(p: &Path) -> Result<bool> {
    match fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RegistryError::io(p, e)),
    }
}

fn read_text(p: &Path) -> Result<Option<String>> {
    match fs::read_to_string(p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::io(p, e)),
    }
}

/// Names in `dir`, without dot files (temp files); empty when `dir` is
/// missing.
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RegistryError::io(dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| RegistryError::io(dir, e))?;
        if let Some(n) = ent.file_name().to_str() {
            if !n.starts_with('.') {
                out.push(n.to_owned());
            }
        }
    }
    Ok(out)
}

/// Digests stored as `<dir>/<algo>/<hex>`.
fn digests_under(dir: &Path) -> Result<Vec<Digest>> {
    let mut out = Vec::new();
    for algo in Algo::ALL {
        for hex in list_dir(&dir.join(algo.name()))? {
            if let Some(d) = Digest::from_hex(algo, &hex) {
                out.push(d);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a repository directory has manifests or blobs.
fn holds_anything(dir: &Path) -> bool {
    dir.join("_manifests").is_dir() || dir.join("_layers").is_dir()
}

/// Collects the repositories under `dir`: directories that `is_repo`
/// accepts. `_`-prefixed directories are ours and never names (the
/// grammar forbids them).
fn walk_repos(
    dir: &Path,
    prefix: &str,
    is_repo: fn(&Path) -> bool,
    out: &mut Vec<String>,
) -> Result<()> {
    for n in list_dir(dir)? {
        if n.starts_with('_') {
            continue;
        }
        let p = dir.join(&n);
        if !p.is_dir() {
            continue;
        }
        let name = if prefix.is_empty() {
            n
        } else {
            format!("{prefix}/{n}")
        };
        if is_repo(&p) {
            out.push(name.clone());
        }
        walk_repos(&p, &name, is_repo, out)?;
    }
    Ok(())
}

fn collect_temp(dir: &Path, before: SystemTime, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RegistryError::io(dir, e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| RegistryError::io(dir, e))?;
        let p = ent.path();
        let Ok(m) = ent.metadata() else { continue };
        if m.is_dir() {
            collect_temp(&p, before, out)?;
        } else if ent.file_name().to_string_lossy().starts_with(".tmp-")
            && m.modified().map(|t| t < before).unwrap_or(false)
        {
            out.push(p);
        }
    }
    Ok(())
}

/// `n` random bytes as hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS random source");
    hex::encode(b)
}

/// A random (version 4) UUID, the id of an upload session.
pub(crate) fn new_uuid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether `id` has the shape of [`new_uuid`]'s output (and so is safe as a
/// path component).
pub(crate) fn valid_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Storage::open(tmp.path()).unwrap();
        let d = Digest::of(Algo::Sha256, b"hello");
        s.write_blob(&d, b"hello").unwrap();
        assert!(s.repo_blob("a/b", &d).unwrap().is_none());
        s.link_layer("a/b", &d).unwrap();
        assert_eq!(s.repo_blob("a/b", &d).unwrap().unwrap().1, 5);
        s.put_revision("a/b", &d, "application/x").unwrap();
        s.put_tag("a/b", "v1", &d).unwrap();
        assert_eq!(s.tag("a/b", "v1").unwrap(), Some(d.clone()));
        assert_eq!(s.repositories().unwrap(), vec!["a/b".to_string()]);
        assert!(!s.repo_exists("a"));
        assert_eq!(s.revisions("a/b").unwrap(), vec![d.clone()]);
        assert_eq!(s.all_blobs().unwrap().len(), 1);
    }

    #[test]
    fn uuids_are_valid_path_components() {
        let id = new_uuid();
        assert!(valid_uuid(&id), "{id}");
        assert!(!valid_uuid("../../../../etc/passwd-aaaaaaaaaaaaaaa"));
    }
}
