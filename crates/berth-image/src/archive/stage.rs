//! Staging an untrusted archive tar: one pass over the stream, regular
//! files written below a fresh directory in the store's `tmp/`, everything
//! else refused except directories and links that stay inside the archive.
//!
//! Names are cleaned lexically and refused when absolute or climbing with
//! `..`. Links are never created on disk: they are kept in a table and
//! resolved (lexically, within the archive) when a manifest path is looked
//! up, so no write and no lookup can leave the staging directory. Every
//! staged file is hashed as it is written; `blobs/sha256/<hex>` must hash to
//! its name.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_store::Digest;
use sha2::{Digest as _, Sha256};

use crate::compression;
use crate::layers::TempDir;
use crate::ImageError;

/// Most links followed while resolving one name.
const MAX_LINKS: usize = 40;
/// Largest JSON document (manifest, index, config) read into memory.
pub(crate) const MAX_JSON: u64 = 32 << 20;
/// Read buffer between the stream and the tar reader.
const READ_BUF: usize = 256 * 1024;

/// A regular file of the archive, on disk.
#[derive(Debug, Clone)]
pub(crate) struct StagedFile {
    /// Where it was written.
    pub(crate) path: PathBuf,
    /// sha256 of its content.
    pub(crate) digest: Digest,
    /// Its size.
    pub(crate) size: u64,
}

/// An archive unpacked into a temp dir (removed on drop).
#[derive(Debug)]
pub(crate) struct Staged {
    dir: TempDir,
    /// Regular files by cleaned name.
    files: HashMap<String, StagedFile>,
    /// Directories by cleaned name.
    dirs: HashSet<String>,
    /// Symlinks and hardlinks by cleaned name: the cleaned name they lead to.
    links: HashMap<String, String>,
}

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadArchive(msg.into())
}

/// Cleans an archive name: `.` components and repeated slashes go, `..`
/// and absolute names are refused. `Ok(None)` for the root itself.
pub(crate) fn clean_name(raw: &str) -> Result<Option<String>, ImageError> {
    if raw.starts_with('/') {
        return Err(bad(format!(
            "invalid archive entry {raw:?}: absolute paths are not allowed"
        )));
    }
    if raw.contains('\0') {
        return Err(bad(format!(
            "invalid archive entry {raw:?}: name contains a NUL byte"
        )));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(bad(format!(
                    "invalid archive entry {raw:?}: \"..\" is not allowed"
                )));
            }
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Where a symlink at `name` pointing at `target` leads, as a cleaned name;
/// refused when it leaves the archive.
fn link_target(name: &str, target: &str) -> Result<String, ImageError> {
    let outside = || {
        bad(format!(
            "invalid archive entry {name:?}: symlink target {target:?} points outside the archive"
        ))
    };
    if target.starts_with('/') || target.contains('\0') {
        return Err(outside());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(outside());
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(outside());
    }
    Ok(parts.join("/"))
}

/// An error of the tar reader, made fit to show: it may quote header bytes
/// of a file that is not a tar at all.
fn printable(e: &io::Error) -> String {
    e.to_string()
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Notes whether the stream has ended.
struct EofTracker<R> {
    inner: R,
    eof: bool,
}

impl<R: Read> Read for EofTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

/// Why staging stopped: the tar stream itself (judged once it is known
/// whether the stream ended), or anything else.
enum Fault {
    Tar(io::Error),
    Archive(ImageError),
}

impl From<ImageError> for Fault {
    fn from(e: ImageError) -> Fault {
        Fault::Archive(e)
    }
}

/// Hashes and counts what is written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Staged {
    /// Reads the whole archive stream (plain, gzip or zstd) into a new
    /// directory under `tmp`.
    pub(crate) fn stage<R: Read>(r: R, tmp: &Path) -> Result<Staged, ImageError> {
        let dir = TempDir::new(tmp)?;
        let mut staged = Staged {
            dir,
            files: HashMap::new(),
            dirs: HashSet::new(),
            links: HashMap::new(),
        };
        let (_, plain) =
            compression::decompress(r).map_err(|e| bad(format!("reading archive: {e}")))?;
        let mut src = EofTracker {
            inner: BufReader::with_capacity(READ_BUF, plain),
            eof: false,
        };
        let mut last: Option<String> = None;
        let mut count = 0u64;
        let result = staged.read_entries(&mut tar::Archive::new(&mut src), &mut last, &mut count);
        let near = || {
            last.as_ref()
                .map(|l| format!(" (after entry {l:?})"))
                .unwrap_or_default()
        };
        match result {
            Err(Fault::Archive(e)) => return Err(e),
            Err(Fault::Tar(_)) if src.eof && count > 0 => {
                return Err(bad(format!("archive is truncated{}", near())))
            }
            Err(Fault::Tar(e)) if count == 0 => {
                return Err(bad(format!("not a tar archive: {}", printable(&e))))
            }
            Err(Fault::Tar(e)) => {
                return Err(bad(format!("invalid archive{}: {}", near(), printable(&e))))
            }
            // The tar reader stops at the first zero block without reading
            // past it, so an ended stream means the end marker is missing.
            Ok(()) if src.eof && count == 0 => {
                return Err(bad("archive is empty or not a tar archive"))
            }
            Ok(()) if src.eof => return Err(bad(format!("archive is truncated{}", near()))),
            Ok(()) => {}
        }
        // The rest: the second zero block, padding, a compressed stream's
        // trailer (whose checksum is verified only there).
        io::copy(&mut src, &mut io::sink()).map_err(|e| bad(format!("reading archive: {e}")))?;
        Ok(staged)
    }

    fn read_entries<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
        last: &mut Option<String>,
        count: &mut u64,
    ) -> Result<(), Fault> {
        for entry in archive.entries().map_err(Fault::Tar)? {
            let mut entry = entry.map_err(Fault::Tar)?;
            *count += 1;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            *last = Some(raw.clone());
            self.entry(&mut entry, &raw)?;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, raw: &str) -> Result<(), Fault> {
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        // PAX global headers (git archive writes one) carry no file.
        if matches!(kind, T::XGlobalHeader) {
            return Ok(());
        }
        let Some(name) = clean_name(raw)? else {
            return match kind {
                T::Directory => Ok(()),
                _ => Err(bad(format!(
                    "invalid archive entry {raw:?}: the archive root must be a directory"
                ))
                .into()),
            };
        };
        self.check_parents(&name, raw)?;
        match kind {
            T::Regular | T::Continuous => self.file(entry, &name, raw),
            _ => Ok(self.other_entry(entry, kind, name, raw)?),
        }
    }

    /// Directories and links; any other type is refused.
    fn other_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        name: String,
        raw: &str,
    ) -> Result<(), ImageError> {
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                if self.files.contains_key(&name) || self.links.contains_key(&name) {
                    return Err(bad(format!(
                        "invalid archive entry {raw:?}: directory replaces a file or link"
                    )));
                }
                let p = self.dir.path().join(&name);
                fs::create_dir_all(&p).map_err(|e| ImageError::io("create", &p, e))?;
                self.mark_dirs(&name);
                Ok(())
            }
            T::Symlink | T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        bad(format!("invalid archive entry {raw:?}: link has no target"))
                    })?;
                let dest = if kind == T::Symlink {
                    link_target(&name, &target)?
                } else {
                    // A hardlink names its target from the archive root.
                    clean_name(&target)?.ok_or_else(|| {
                        bad(format!(
                            "invalid archive entry {raw:?}: hardlink to the archive root"
                        ))
                    })?
                };
                if self.dirs.contains(&name) {
                    return Err(bad(format!(
                        "invalid archive entry {raw:?}: link replaces a directory"
                    )));
                }
                if let Some(old) = self.files.remove(&name) {
                    fs::remove_file(&old.path)
                        .map_err(|e| ImageError::io("remove", &old.path, e))?;
                }
                self.links.insert(name, dest);
                Ok(())
            }
            other => {
                let what = match other {
                    T::Char => "character device".to_string(),
                    T::Block => "block device".to_string(),
                    T::Fifo => "fifo".to_string(),
                    other => format!("entry type {:?}", other.as_byte() as char),
                };
                Err(bad(format!(
                    "invalid archive entry {raw:?}: a {what} is not allowed in an image archive"
                )))
            }
        }
    }

    /// Refuses an entry below something that is not a directory.
    fn check_parents(&self, name: &str, raw: &str) -> Result<(), ImageError> {
        let mut end = 0;
        while let Some(i) = name[end..].find('/') {
            let prefix = &name[..end + i];
            if self.links.contains_key(prefix) {
                return Err(bad(format!(
                    "invalid archive entry {raw:?}: parent {prefix:?} is a link"
                )));
            }
            if self.files.contains_key(prefix) {
                return Err(bad(format!(
                    "invalid archive entry {raw:?}: parent {prefix:?} is a file"
                )));
            }
            end += i + 1;
        }
        Ok(())
    }

    fn mark_dirs(&mut self, name: &str) {
        let mut end = 0;
        while let Some(i) = name[end..].find('/') {
            self.dirs.insert(name[..end + i].to_string());
            end += i + 1;
        }
        self.dirs.insert(name.to_string());
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
        raw: &str,
    ) -> Result<(), Fault> {
        if self.dirs.contains(name) {
            return Err(bad(format!(
                "invalid archive entry {raw:?}: file replaces a directory"
            ))
            .into());
        }
        self.links.remove(name);
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| ImageError::io("create", parent, e))?;
        }
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.mark_dirs(parent);
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| ImageError::io("create", &path, e))?;
        let mut w = HashingWriter {
            inner: io::BufWriter::with_capacity(READ_BUF, file),
            hasher: Sha256::new(),
            size: 0,
        };
        let want = entry.size();
        // Read errors (including a cut stream) are the archive's; write
        // errors are the disk's.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fault::Tar(e)),
            };
            w.write_all(&buf[..n])
                .map_err(|e| ImageError::io("write", &path, e))?;
        }
        w.flush().map_err(|e| ImageError::io("write", &path, e))?;
        if w.size != want {
            return Err(bad(format!("archive is truncated (inside entry {raw:?})")).into());
        }
        let digest = Digest::from_hasher(w.hasher);
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            if let Ok(expected) = Digest::parse(&format!("sha256:{hex}")) {
                if expected != digest {
                    return Err(bad(format!(
                        "blob {name} does not match its name: expected {expected}, got {digest}"
                    ))
                    .into());
                }
            }
        }
        self.files.insert(
            name.to_string(),
            StagedFile {
                path,
                digest,
                size: want,
            },
        );
        Ok(())
    }

    /// The staged file a path of a manifest names, following links.
    pub(crate) fn file_for(&self, name: &str) -> Result<&StagedFile, ImageError> {
        let missing = || bad(format!("archive has no file {name:?}"));
        let mut cur = clean_name(name)
            .map_err(|_| bad(format!("invalid path {name:?} in the archive's manifest")))?
            .ok_or_else(missing)?;
        for _ in 0..MAX_LINKS {
            if let Some(f) = self.files.get(&cur) {
                return Ok(f);
            }
            // The longest prefix that is a link is replaced by its target.
            let mut next = None;
            let mut end = cur.len();
            loop {
                let prefix = &cur[..end];
                if let Some(t) = self.links.get(prefix) {
                    next = Some(format!("{t}{}", &cur[end..]));
                    break;
                }
                match prefix.rfind('/') {
                    Some(i) => end = i,
                    None => break,
                }
            }
            match next {
                Some(n) => cur = n,
                None => return Err(missing()),
            }
        }
        Err(bad(format!(
            "too many levels of links resolving {name:?} in the archive"
        )))
    }

    /// True when the archive has this file (following links).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.file_for(name).is_ok()
    }

    /// Reads a small (JSON) file whole.
    pub(crate) fn read_small(&self, name: &str) -> Result<(Vec<u8>, Digest), ImageError> {
        let f = self.file_for(name)?;
        if f.size > MAX_JSON {
            return Err(bad(format!("{name} is too large ({} bytes)", f.size)));
        }
        let mut v = Vec::with_capacity(f.size as usize);
        File::open(&f.path)
            .and_then(|mut file| file.read_to_end(&mut v))
            .map_err(|e| ImageError::io("read", &f.path, e))?;
        Ok((v, f.digest.clone()))
    }
}
