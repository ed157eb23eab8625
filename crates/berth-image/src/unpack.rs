//! Unpacking an image layer tar into a directory that becomes an overlayfs
//! lower layer.
//!
//! [`unpack_layer`] streams the tar once: each entry is created as it is
//! read, OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) become overlayfs
//! whiteouts (a 0:0 character device, the `trusted.overlay.opaque` xattr),
//! and directory mtimes are set last, once nothing more is written into them.
//!
//! Layers are untrusted input. Every name is cleaned lexically and refused if
//! it is absolute or climbs out with `..`; then every parent directory is
//! opened one component at a time with `O_NOFOLLOW | O_DIRECTORY`, starting
//! from a handle on the layer root, and the entry is created relative to that
//! handle with calls that never follow a symlink in the last component
//! (`mkdirat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`, `O_EXCL`
//! creates, `AT_SYMLINK_NOFOLLOW`). So a symlink in the layer, wherever it
//! points, is never written through: nothing outside `dest` can be touched.
//!
//! The crate has no unsafe code, and std can open a file relative to a
//! directory handle only by path, so opens go through
//! `/proc/thread-self/fd/<dirfd>/<name>`: the kernel resolves the magic link
//! to the very directory the handle refers to, and `O_NOFOLLOW` (or
//! `O_EXCL`) guards `<name>`. [`unpack_layer`] checks at the start that this
//! path leads back to `dest`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use tracing::{debug, warn};
use xattr::FileExt as _;

/// What [`unpack_layer`] may create.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Create character and block device entries. Off by default: a device
    /// node in an image is a way into the host's hardware. (A 0:0 character
    /// device, which is an overlay whiteout and opens nothing, is always
    /// allowed.)
    pub allow_device_nodes: bool,
    /// Owner (uid, gid) given to every entry instead of the header's:
    /// `cp -a` into a container that runs as a user.
    pub chown: Option<(u32, u32)>,
}

/// What [`unpack_layer`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Archive members processed, whiteouts included (PAX and GNU extension
    /// headers are part of the member they describe).
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub bytes_written: u64,
}

/// Why a layer could not be unpacked. A failed unpack leaves `dest` partly
/// written: the caller unpacks into a fresh directory and removes it on
/// error.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The stream is not a tar archive, a header is corrupt, or the stream
    /// could not be read (a corrupt compressed stream shows here too).
    #[error("invalid layer tar{}: {source}", near_entry(.near))]
    Malformed {
        /// The last entry read before the fault, if any.
        near: Option<String>,
        /// What the tar reader or the stream reported.
        #[source]
        source: io::Error,
    },
    /// The stream ends inside an entry or before the end-of-archive marker.
    #[error("invalid layer tar: stream ends before the end of the archive{}", near_entry(.near))]
    Truncated {
        /// The last entry started before the end, if any.
        near: Option<String>,
    },
    /// An entry that must not be unpacked.
    #[error("invalid tar entry {path:?}: {problem}")]
    InvalidEntry {
        /// The entry's name as in the archive.
        path: String,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// A filesystem operation failed on a valid entry (disk full, ...).
    #[error("cannot unpack tar entry {path:?}: {op}: {source}")]
    Io {
        /// The entry's name as in the archive.
        path: String,
        /// The operation that failed.
        op: &'static str,
        /// The error from the system.
        #[source]
        source: io::Error,
    },
    /// The destination directory cannot be used.
    #[error("cannot unpack into {}: {source}", dest.display())]
    Dest {
        /// The destination given to [`unpack_layer`].
        dest: PathBuf,
        /// The error from the system.
        #[source]
        source: io::Error,
    },
}

fn near_entry(entry: &Option<String>) -> String {
    match entry {
        Some(p) => format!(" (near entry {p:?})"),
        None => String::new(),
    }
}

/// What is wrong with an entry ([`UnpackError::InvalidEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// `..` climbs above the layer root.
    #[error("path escapes the layer root")]
    EscapesRoot,
    /// The name starts with `/`.
    #[error("absolute paths are not allowed")]
    Absolute,
    /// The name holds a NUL byte (possible in PAX records).
    #[error("name contains a NUL byte")]
    NulByte,
    /// A parent component (named) is a symlink.
    #[error("parent {0:?} is a symlink; refusing to write through a symlink")]
    ThroughSymlink(String),
    /// A parent component (named) exists and is not a directory.
    #[error("parent {0:?} is not a directory")]
    ParentNotDirectory(String),
    /// A component (named) does not exist.
    #[error("{0:?} does not exist in the layer")]
    Missing(String),
    /// The entry names an existing directory where a file is needed.
    #[error("is a directory")]
    IsDirectory,
    /// A hardlink's target is invalid.
    #[error("hardlink target {target:?}: {problem}")]
    LinkTarget {
        /// The target as in the archive.
        target: String,
        /// What is wrong with it.
        problem: Box<EntryProblem>,
    },
    /// A hardlink or symlink entry without a target.
    #[error("link has no target")]
    NoLinkTarget,
    /// A character or block device while [`UnpackOptions::allow_device_nodes`]
    /// is off.
    #[error("device nodes are not allowed")]
    DeviceNode,
    /// An entry type berth does not unpack (tape volume headers, ...).
    #[error("unsupported entry type {}", .0.escape_ascii())]
    UnsupportedType(u8),
    /// The root entry (`./`) is not a directory.
    #[error("the layer root can only be a directory")]
    RootNotDirectory,
    /// `.wh.` followed by nothing, `.` or `..`.
    #[error("invalid whiteout name")]
    BadWhiteout,
    /// A uid or gid that does not fit 32 bits.
    #[error("{0} {1} is out of range")]
    IdOutOfRange(&'static str, u64),
    /// A numeric header field that cannot be parsed.
    #[error("bad header: {0}")]
    BadHeader(String),
}

/// Unpacks an *uncompressed* tar stream into `dest` (an existing, normally
/// empty directory), converting OCI whiteouts to overlayfs whiteouts.
///
/// Reads the stream to its very end (including padding after the
/// end-of-archive blocks), so a [`HashingReader`](crate::compression::HashingReader)
/// wrapped around it sees every byte. A stream that ends before the
/// end-of-archive marker is an error, as is any entry that would reach
/// outside `dest`.
pub fn unpack_layer<R: Read>(
    r: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let mut unpacker = Unpacker::new(dest, opts)?;
    let mut src = EofTracker {
        inner: BufReader::with_capacity(READ_BUF, r),
        eof: false,
    };
    let result = unpacker.unpack_all(&mut tar::Archive::new(&mut src));
    // The tar reader stops at the first zero block and never reads past it,
    // so end of stream seen before then means the archive is cut short.
    match result {
        Err(UnpackError::Malformed { near, .. }) if src.eof => {
            return Err(UnpackError::Truncated { near })
        }
        Err(e) => return Err(e),
        Ok(()) if src.eof => {
            return Err(UnpackError::Truncated {
                near: unpacker.last,
            })
        }
        Ok(()) => {}
    }
    // Drain what follows the end-of-archive marker: the second zero block,
    // record padding, and the end of a compressed stream (whose checksum is
    // verified only there).
    io::copy(&mut src, &mut io::sink())
        .map_err(|source| UnpackError::Malformed { near: None, source })?;
    unpacker.finish()?;
    Ok(unpacker.stats)
}

/// Buffer between the (decompressed) stream and the tar reader.
const READ_BUF: usize = 128 * 1024;
/// Chunk size when copying file data: few large writes, one allocation.
const COPY_BUF: usize = 256 * 1024;

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

/// The state of one unpack.
struct Unpacker<'o> {
    opts: &'o UnpackOptions,
    tree: Tree,
    /// Directory mtimes, set by [`Unpacker::finish`] because creating entries
    /// inside a directory changes its mtime. Keyed by cleaned path, so the
    /// last entry for a directory wins and the walk is depth-first.
    dir_times: BTreeMap<Vec<OsString>, TimeSpec>,
    buf: Vec<u8>,
    stats: UnpackStats,
    /// The name of the last entry started, for error messages.
    last: Option<String>,
}

impl<'o> Unpacker<'o> {
    fn new(dest: &Path, opts: &'o UnpackOptions) -> Result<Self, UnpackError> {
        let dest_err = |source| UnpackError::Dest {
            dest: dest.to_owned(),
            source,
        };
        let root = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(dest)
            .map_err(dest_err)?;
        // All opens below a directory handle go through
        // /proc/thread-self/fd: make sure that leads back to the directory.
        let via_proc = fs::metadata(fd_path(&root)).map_err(dest_err)?;
        let direct = root.metadata().map_err(dest_err)?;
        if (via_proc.dev(), via_proc.ino()) != (direct.dev(), direct.ino()) {
            return Err(dest_err(io::Error::other(
                "/proc/thread-self/fd does not lead back to the directory; is /proc mounted?",
            )));
        }
        Ok(Unpacker {
            opts,
            tree: Tree {
                root,
                stack: Vec::new(),
            },
            dir_times: BTreeMap::new(),
            buf: vec![0; COPY_BUF],
            stats: UnpackStats::default(),
            last: None,
        })
    }

    fn unpack_all<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), UnpackError> {
        let entries = archive
            .entries()
            .map_err(|source| UnpackError::Malformed { near: None, source })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| UnpackError::Malformed {
                near: self.last.clone(),
                source,
            })?;
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            self.last = Some(shown.clone());
            self.stats.entries += 1;
            let consumed = self.entry(&mut entry, &raw, &shown)?;
            // Read what the entry did not (data of non-file entries) here
            // rather than in the tar reader, so a cut shows up as such.
            if consumed < entry.size() {
                let rest = io::copy(&mut entry, &mut io::sink()).map_err(|source| {
                    UnpackError::Malformed {
                        near: Some(shown.clone()),
                        source,
                    }
                })?;
                if consumed + rest != entry.size() {
                    return Err(UnpackError::Truncated { near: Some(shown) });
                }
            }
        }
        Ok(())
    }

    /// Unpacks one entry; returns how many bytes of its data it read.
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        shown: &str,
    ) -> Result<u64, UnpackError> {
        let invalid = |problem| UnpackError::InvalidEntry {
            path: shown.to_owned(),
            problem,
        };
        let flag = entry.header().as_old().linkflag[0];
        let kind = match flag {
            // PAX global headers hold defaults for the archive (comments, in
            // practice); like Docker, ignore them.
            b'g' => {
                debug!(entry = shown, "ignoring PAX global header");
                return Ok(0);
            }
            // Pre-POSIX tars mark directories with a trailing slash.
            b'\0' if raw.ends_with(b"/") => Kind::Dir,
            b'\0' | b'0' | b'7' | b'S' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' | b'4' => self.device(entry.header(), flag).map_err(invalid)?,
            b'5' => Kind::Dir,
            b'6' => Kind::Node(SFlag::S_IFIFO, 0),
            other => return Err(invalid(EntryProblem::UnsupportedType(other))),
        };
        let comps = clean(raw).map_err(invalid)?;
        let mut meta = Meta::read(entry).map_err(invalid)?;
        if let Some((uid, gid)) = self.opts.chown {
            meta.uid = uid;
            meta.gid = gid;
        }
        let io_err = |op| {
            move |source| UnpackError::Io {
                path: shown.to_owned(),
                op,
                source,
            }
        };

        let Some((name, parent)) = comps.split_last() else {
            if kind != Kind::Dir {
                return Err(invalid(EntryProblem::RootNotDirectory));
            }
            meta.apply_to_fd(&self.tree.root)
                .map_err(io_err("set metadata"))?;
            self.dir_times.insert(Vec::new(), meta.mtime);
            return Ok(0);
        };

        let name = name.as_os_str();
        if parent.iter().any(|c| is_aufs_meta(c)) || (is_aufs_meta(name) && name != OPAQUE) {
            debug!(entry = shown, "ignoring aufs metadata");
            return Ok(0);
        }
        if name == OPAQUE {
            let dir = self
                .tree
                .enter(parent, true)
                .map_err(|e| e.into_error(parent, shown, |p| p))?;
            dir.set_xattr(OPAQUE_XATTR, b"y")
                .map_err(io_err("mark directory opaque"))?;
            return Ok(0);
        }
        if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(invalid(EntryProblem::BadWhiteout));
            }
            let hidden = OsStr::from_bytes(hidden);
            let dir = self
                .tree
                .enter(parent, true)
                .map_err(|e| e.into_error(parent, shown, |p| p))?;
            replacing(dir, hidden, || {
                stat::mknodat(
                    Some(dir.as_raw_fd()),
                    hidden,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    0,
                )
            })
            .map_err(io_err("create whiteout"))?;
            return Ok(0);
        }

        if kind == Kind::HardLink {
            return self.hardlink(&*entry, &comps, shown).map(|()| 0);
        }

        let dir = self
            .tree
            .enter(parent, true)
            .map_err(|e| e.into_error(parent, shown, |p| p))?;
        let at = Some(dir.as_raw_fd());
        match kind {
            Kind::Dir => {
                let mkdir = || stat::mkdirat(at, name, Mode::from_bits_truncate(0o700));
                let mut opaque = false;
                match mkdir() {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        let existing = stat_at(dir, name).map_err(io_err("stat"))?;
                        // A directory over a directory keeps its contents.
                        if existing.map(file_type) != Some(SFlag::S_IFDIR) {
                            // A whiteout earlier in this layer hid the lower
                            // directory: the new one must keep hiding it.
                            opaque = existing.is_some_and(is_whiteout);
                            remove_any(dir, name).map_err(io_err("remove existing entry"))?;
                            mkdir().map_err(|e| io_err("create directory")(e.into()))?;
                        }
                    }
                    Err(e) => return Err(io_err("create directory")(e.into())),
                }
                let handle = open_dir(dir, name).map_err(io_err("open directory"))?;
                if opaque {
                    handle
                        .set_xattr(OPAQUE_XATTR, b"y")
                        .map_err(io_err("mark directory opaque"))?;
                }
                meta.apply_to_fd(&handle).map_err(io_err("set metadata"))?;
                self.dir_times.insert(comps.clone(), meta.mtime);
                Ok(0)
            }
            Kind::File => {
                // A new inode, never the old one truncated: another hardlink
                // may share it.
                let mut file = replacing(dir, name, || {
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(child_path(dir, name))
                })
                .map_err(io_err("create file"))?;
                let written = copy_data(entry, &mut file, &mut self.buf).map_err(|e| match e {
                    CopyError::Read(source) => UnpackError::Malformed {
                        near: Some(shown.to_owned()),
                        source,
                    },
                    CopyError::Write(source) => io_err("write file")(source),
                })?;
                if written != entry.size() {
                    return Err(UnpackError::Truncated {
                        near: Some(shown.to_owned()),
                    });
                }
                meta.apply_to_fd(&file).map_err(io_err("set metadata"))?;
                stat::futimens(file.as_raw_fd(), &meta.mtime, &meta.mtime)
                    .map_err(|e| io_err("set times")(e.into()))?;
                self.stats.bytes_written += written;
                Ok(written)
            }
            Kind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| invalid(EntryProblem::NoLinkTarget))?
                    .into_owned();
                if target.contains(&0) {
                    return Err(invalid(EntryProblem::NulByte));
                }
                replacing(dir, name, || {
                    unistd::symlinkat(OsStr::from_bytes(&target), at, name)
                })
                .map_err(io_err("create symlink"))?;
                meta.apply_at(dir, name, true)
                    .map_err(io_err("set metadata"))?;
                Ok(0)
            }
            Kind::Node(sflag, dev) => {
                replacing(dir, name, || {
                    stat::mknodat(at, name, sflag, Mode::from_bits_truncate(0o600), dev)
                })
                .map_err(io_err("create node"))?;
                meta.apply_at(dir, name, false)
                    .map_err(io_err("set metadata"))?;
                Ok(0)
            }
            Kind::HardLink => unreachable!("handled above"),
        }
    }

    /// Checks a device entry (`flag` `3` or `4`) against the options, before
    /// anything is created for it.
    fn device(&self, header: &tar::Header, flag: u8) -> Result<Kind, EntryProblem> {
        let bad = |e: io::Error| EntryProblem::BadHeader(e.to_string());
        let major = header.device_major().map_err(bad)?.unwrap_or(0);
        let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
        let char_dev = flag == b'3';
        // 0:0 is what overlayfs uses as a whiteout and opens nothing.
        let whiteout = char_dev && (major, minor) == (0, 0);
        if !self.opts.allow_device_nodes && !whiteout {
            return Err(EntryProblem::DeviceNode);
        }
        let sflag = if char_dev {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        Ok(Kind::Node(sflag, stat::makedev(major.into(), minor.into())))
    }

    /// A hardlink to an existing non-directory of this layer. The inode keeps
    /// its metadata: the link's header describes the same inode, and a chown
    /// would clear its setuid bits and file capabilities.
    fn hardlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        comps: &[OsString],
        shown: &str,
    ) -> Result<(), UnpackError> {
        let invalid = |problem| UnpackError::InvalidEntry {
            path: shown.to_owned(),
            problem,
        };
        let io_err = |op| {
            move |source| UnpackError::Io {
                path: shown.to_owned(),
                op,
                source,
            }
        };
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| invalid(EntryProblem::NoLinkTarget))?
            .into_owned();
        let link_target = |problem| EntryProblem::LinkTarget {
            target: String::from_utf8_lossy(&raw).into_owned(),
            problem: Box::new(problem),
        };
        let target_err = |problem| invalid(link_target(problem));
        let target = clean(&raw).map_err(target_err)?;
        let Some((target_name, target_parent)) = target.split_last() else {
            return Err(target_err(EntryProblem::IsDirectory));
        };
        let target_dir = self
            .tree
            .open_fresh(target_parent)
            .map_err(|e| e.into_error(target_parent, shown, link_target))?;
        match kind_of(&target_dir, target_name).map_err(io_err("stat link target"))? {
            None => return Err(target_err(EntryProblem::Missing(join(&target)))),
            Some(SFlag::S_IFDIR) => return Err(target_err(EntryProblem::IsDirectory)),
            Some(_) if target == comps => return Ok(()),
            Some(_) => {}
        }
        let (name, parent) = comps.split_last().expect("the root is not a hardlink");
        let name = name.as_os_str();
        let dir = self
            .tree
            .enter(parent, true)
            .map_err(|e| e.into_error(parent, shown, |p| p))?;
        replacing(dir, name, || {
            unistd::linkat(
                Some(target_dir.as_raw_fd()),
                target_name.as_os_str(),
                Some(dir.as_raw_fd()),
                name,
                AtFlags::empty(),
            )
        })
        .map_err(io_err("create hardlink"))
    }

    /// Sets the directory mtimes, now that nothing more is written into them.
    fn finish(&mut self) -> Result<(), UnpackError> {
        for (comps, mtime) in std::mem::take(&mut self.dir_times) {
            let io_err = |source| UnpackError::Io {
                path: join(&comps),
                op: "set directory times",
                source,
            };
            let Some((name, parent)) = comps.split_last() else {
                stat::futimens(self.tree.root.as_raw_fd(), &mtime, &mtime)
                    .map_err(|e| io_err(e.into()))?;
                continue;
            };
            // A later entry may have replaced the directory or a parent.
            let Ok(dir) = self.tree.enter(parent, false) else {
                continue;
            };
            if kind_of(dir, name).map_err(io_err)? == Some(SFlag::S_IFDIR) {
                stat::utimensat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    &mtime,
                    &mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| io_err(e.into()))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    /// A fifo or device node: its type and device number.
    Node(SFlag, libc::dev_t),
}

/// The name that marks its directory opaque.
const OPAQUE: &str = ".wh..wh..opq";
/// The xattr by which overlayfs knows an opaque directory.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// aufs keeps its own bookkeeping under `.wh..wh.` names (`.wh..wh.plnk/`,
/// `.wh..wh.aufs`); none of it belongs in an overlay layer.
fn is_aufs_meta(name: &OsStr) -> bool {
    name.as_bytes().starts_with(b".wh..wh.")
}

/// Cleans a tar name lexically: drops `.`, empty components and trailing
/// slashes, resolves `..` against earlier components. An empty result is the
/// layer root.
fn clean(raw: &[u8]) -> Result<Vec<OsString>, EntryProblem> {
    if raw.contains(&0) {
        return Err(EntryProblem::NulByte);
    }
    if raw.starts_with(b"/") {
        return Err(EntryProblem::Absolute);
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(EntryProblem::EscapesRoot);
                }
            }
            _ => out.push(OsStr::from_bytes(comp).to_owned()),
        }
    }
    Ok(out)
}

fn join(comps: &[OsString]) -> String {
    let parts: Vec<_> = comps.iter().map(|c| c.to_string_lossy()).collect();
    parts.join("/")
}

/// Handles on the directories of the layer.
struct Tree {
    root: File,
    /// Open handles from the root down to the directory last entered. Tars
    /// list a directory's entries together, so most entries reuse the top.
    /// Every change is made inside the top directory (after entering it),
    /// never to a directory on the stack, so the handles never go stale.
    stack: Vec<(OsString, File)>,
}

/// Why a parent path could not be opened: the component at `depth` is at
/// fault.
struct WalkError {
    depth: usize,
    kind: WalkErrorKind,
}

enum WalkErrorKind {
    Symlink,
    NotDirectory,
    Missing,
    Io(io::Error),
}

impl WalkError {
    /// The error for entry `shown` whose parent (or hardlink target's
    /// parent, with `wrap`) is `comps`.
    fn into_error(
        self,
        comps: &[OsString],
        shown: &str,
        wrap: impl FnOnce(EntryProblem) -> EntryProblem,
    ) -> UnpackError {
        let at = join(&comps[..(self.depth + 1).min(comps.len())]);
        let problem = match self.kind {
            WalkErrorKind::Symlink => EntryProblem::ThroughSymlink(at),
            WalkErrorKind::NotDirectory => EntryProblem::ParentNotDirectory(at),
            WalkErrorKind::Missing => EntryProblem::Missing(at),
            WalkErrorKind::Io(source) => {
                return UnpackError::Io {
                    path: shown.to_owned(),
                    op: "open parent directory",
                    source,
                }
            }
        };
        UnpackError::InvalidEntry {
            path: shown.to_owned(),
            problem: wrap(problem),
        }
    }
}

impl Tree {
    /// Opens the directory `comps` below the root, one component at a time
    /// and never through a symlink; with `create`, missing directories are
    /// made (0755, as Docker does).
    fn enter(&mut self, comps: &[OsString], create: bool) -> Result<&File, WalkError> {
        let keep = self
            .stack
            .iter()
            .zip(comps)
            .take_while(|((have, _), want)| have == *want)
            .count();
        self.stack.truncate(keep);
        for (depth, name) in comps.iter().enumerate().skip(keep) {
            let parent = self.stack.last().map_or(&self.root, |(_, f)| f);
            let child =
                open_child(parent, name, create).map_err(|kind| WalkError { depth, kind })?;
            self.stack.push((name.clone(), child));
        }
        Ok(self.stack.last().map_or(&self.root, |(_, f)| f))
    }

    /// Like [`Tree::enter`] without creating anything or moving the stack.
    fn open_fresh(&self, comps: &[OsString]) -> Result<File, WalkError> {
        let mut dir = self.root.try_clone().map_err(|e| WalkError {
            depth: 0,
            kind: WalkErrorKind::Io(e),
        })?;
        for (depth, name) in comps.iter().enumerate() {
            dir = open_child(&dir, name, false).map_err(|kind| WalkError { depth, kind })?;
        }
        Ok(dir)
    }
}

fn open_child(parent: &File, name: &OsStr, create: bool) -> Result<File, WalkErrorKind> {
    let err = match open_dir(parent, name) {
        Ok(dir) => return Ok(dir),
        Err(e) => e,
    };
    match err.raw_os_error() {
        Some(libc::ENOENT) if create => {
            stat::mkdirat(
                Some(parent.as_raw_fd()),
                name,
                Mode::from_bits_truncate(0o755),
            )
            .map_err(|e| WalkErrorKind::Io(e.into()))?;
            let dir = open_dir(parent, name).map_err(WalkErrorKind::Io)?;
            // mkdirat obeys the umask.
            dir.set_permissions(Permissions::from_mode(0o755))
                .map_err(WalkErrorKind::Io)?;
            Ok(dir)
        }
        Some(libc::ENOENT) => Err(WalkErrorKind::Missing),
        Some(libc::ELOOP | libc::ENOTDIR) => match kind_of(parent, name) {
            Ok(Some(SFlag::S_IFLNK)) => Err(WalkErrorKind::Symlink),
            Ok(_) => Err(WalkErrorKind::NotDirectory),
            Err(e) => Err(WalkErrorKind::Io(e)),
        },
        _ => Err(WalkErrorKind::Io(err)),
    }
}

/// `/proc/thread-self/fd/<fd>`: the directory `dir` refers to, as a path.
/// (`thread-self`, not `self`: a thread may have its own fd table.)
fn fd_path(dir: &File) -> PathBuf {
    PathBuf::from(format!("/proc/thread-self/fd/{}", dir.as_raw_fd()))
}

/// The path of `name` inside `dir`, for the calls std offers only by path.
/// Callers make sure the last component is not followed.
fn child_path(dir: &File, name: &OsStr) -> PathBuf {
    fd_path(dir).join(name)
}

/// Opens directory `name` in `dir`, refusing a symlink.
fn open_dir(dir: &File, name: &OsStr) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(child_path(dir, name))
}

/// `lstat` of `name` in `dir`, or `None` if there is nothing.
fn stat_at(dir: &File, name: &OsStr) -> io::Result<Option<stat::FileStat>> {
    match stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The file type of `name` in `dir` (not following a symlink), or `None`.
fn kind_of(dir: &File, name: &OsStr) -> io::Result<Option<SFlag>> {
    Ok(stat_at(dir, name)?.map(file_type))
}

fn file_type(st: stat::FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// An overlayfs whiteout: a 0:0 character device.
fn is_whiteout(st: stat::FileStat) -> bool {
    file_type(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// Runs `create` for `name` in `dir`; if the name is taken, removes what is
/// there and runs it again. (Trying first saves a stat per entry: layers
/// rarely repeat a name.)
fn replacing<T, E: Into<io::Error>>(
    dir: &File,
    name: &OsStr,
    mut create: impl FnMut() -> Result<T, E>,
) -> io::Result<T> {
    match create().map_err(Into::into) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            remove_any(dir, name)?;
            create().map_err(Into::into)
        }
        r => r,
    }
}

/// Removes whatever `name` in `dir` is (a directory with its contents).
fn remove_any(dir: &File, name: &OsStr) -> io::Result<()> {
    match kind_of(dir, name)? {
        None => Ok(()),
        // std's remove_dir_all does not follow symlinks inside the tree.
        Some(SFlag::S_IFDIR) => fs::remove_dir_all(child_path(dir, name)),
        Some(_) => unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
            .map_err(io::Error::from),
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies the entry's data into `file` in large chunks; returns the byte
/// count. Like `io::copy`, with a bigger buffer reused across files.
fn copy_data(src: &mut impl Read, file: &mut File, buf: &mut [u8]) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let n = match src.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        file.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// An entry's ownership, mode, mtime and extended attributes.
struct Meta {
    uid: u32,
    gid: u32,
    /// Permission bits with setuid, setgid and sticky.
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, EntryProblem> {
        let bad = |e: io::Error| EntryProblem::BadHeader(e.to_string());
        let header = entry.header();
        let uid = header.uid().map_err(bad)?;
        let uid = u32::try_from(uid).map_err(|_| EntryProblem::IdOutOfRange("uid", uid))?;
        let gid = header.gid().map_err(bad)?;
        let gid = u32::try_from(gid).map_err(|_| EntryProblem::IdOutOfRange("gid", gid))?;
        let mode = header.mode().map_err(bad)? & 0o7777;
        let secs = header.mtime().map_err(bad)?;
        let mut meta = Meta {
            uid,
            gid,
            mode,
            mtime: TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0),
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(bad)? {
            for record in pax {
                let record = record.map_err(bad)?;
                let key = record.key_bytes();
                if key == b"mtime" {
                    // PAX carries sub-second mtimes the header cannot.
                    if let Some(t) = parse_pax_time(record.value_bytes()) {
                        meta.mtime = t;
                    }
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if xattr_allowed(name) {
                        let name = OsStr::from_bytes(name).to_owned();
                        meta.xattrs.push((name, record.value_bytes().to_vec()));
                    } else {
                        debug!(xattr = %name.escape_ascii(), "skipping xattr from layer");
                    }
                }
            }
        }
        Ok(meta)
    }

    /// Owner, mode and xattrs of an open file or directory, in that order:
    /// chown clears setuid/setgid bits and file capabilities.
    fn apply_to_fd(&self, file: &File) -> io::Result<()> {
        std::os::unix::fs::fchown(file, Some(self.uid), Some(self.gid))?;
        file.set_permissions(Permissions::from_mode(self.mode))?;
        for (name, value) in &self.xattrs {
            tolerate_xattr_error(file.set_xattr(name, value), name, false)?;
        }
        Ok(())
    }

    /// Owner, mode, xattrs and mtime of `name` in `dir` (a symlink, fifo or
    /// device node), never following a symlink.
    fn apply_at(&self, dir: &File, name: &OsStr, symlink: bool) -> io::Result<()> {
        let at = Some(dir.as_raw_fd());
        unistd::fchownat(
            at,
            name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if !symlink {
            // Not a symlink (just created in this directory), so following
            // is moot; fchmodat cannot refuse to follow before Linux 6.6.
            stat::fchmodat(
                at,
                name,
                Mode::from_bits_truncate(self.mode),
                FchmodatFlags::FollowSymlink,
            )?;
        }
        for (xname, value) in &self.xattrs {
            // xattr::set is lsetxattr: it does not follow the last component.
            tolerate_xattr_error(xattr::set(child_path(dir, name), xname, value), xname, true)?;
        }
        stat::utimensat(
            at,
            name,
            &self.mtime,
            &self.mtime,
            UtimensatFlags::NoFollowSymlink,
        )?;
        Ok(())
    }
}

/// Which xattrs from a layer are applied. `user.*` is the image's own
/// business; `security.capability` holds file capabilities (`ping`), no more
/// dangerous than the setuid bits kept anyway; ACLs are plain permissions.
/// Skipped: other `security.*` (host LSM labels are the host's to set) and
/// `trusted.*` (overlayfs reads its own metadata there: opaque, redirect).
fn xattr_allowed(name: &[u8]) -> bool {
    name.starts_with(b"user.")
        || name == b"security.capability"
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default"
}

/// A filesystem without xattr support loses the attribute with a warning
/// rather than the layer; so does a special file (`special`), on which Linux
/// refuses `user.*` xattrs.
fn tolerate_xattr_error(r: io::Result<()>, name: &OsStr, special: bool) -> io::Result<()> {
    match r {
        Err(e)
            if e.raw_os_error() == Some(libc::EOPNOTSUPP)
                || (special && e.raw_os_error() == Some(libc::EPERM)) =>
        {
            warn!(xattr = %name.to_string_lossy(), error = %e, "cannot set xattr from layer");
            Ok(())
        }
        r => r,
    }
}

/// Parses a PAX time, `<secs>[.<fraction>]`, possibly negative.
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let digits = &frac[..frac.len().min(9)];
    let nanos: i64 = format!("{digits:0<9}").parse().ok()?;
    Some(match (negative, nanos) {
        (false, _) => TimeSpec::new(secs, nanos),
        (true, 0) => TimeSpec::new(-secs, 0),
        (true, _) => TimeSpec::new(-secs - 1, 1_000_000_000 - nanos),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::{decompress, Compression, HashingReader};
    use crate::testdata::noise;
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};
    use std::collections::BTreeSet;
    use std::os::unix::fs::FileTypeExt;
    use tar::{EntryType, Header};
    use tempfile::TempDir;

    const MTIME: u64 = 1_600_000_000;

    /// A tar built in memory, with tar::Builder where it will and raw
    /// headers where it refuses (hostile names).
    struct Tar(tar::Builder<Vec<u8>>);

    fn header(kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    impl Tar {
        fn new() -> Self {
            Tar(tar::Builder::new(Vec::new()))
        }

        fn file(self, path: &str, data: &[u8]) -> Self {
            let h = header(EntryType::Regular, 0o644, data.len() as u64);
            self.with(h, path, data)
        }

        fn dir(self, path: &str) -> Self {
            self.with(header(EntryType::Directory, 0o755, 0), path, b"")
        }

        fn fifo(self, path: &str) -> Self {
            self.with(header(EntryType::Fifo, 0o644, 0), path, b"")
        }

        fn symlink(mut self, path: &str, target: &str) -> Self {
            let mut h = header(EntryType::Symlink, 0o777, 0);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }

        fn hardlink(mut self, path: &str, target: &str) -> Self {
            let mut h = header(EntryType::Link, 0o644, 0);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }

        fn with(mut self, mut h: Header, path: &str, data: &[u8]) -> Self {
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }

        fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
            self.0
                .append_pax_extensions(records.iter().copied())
                .unwrap();
            self
        }

        /// An entry with a name and link name written verbatim.
        fn raw(mut self, name: &str, kind: EntryType, link: &str, data: &[u8]) -> Self {
            self.0
                .get_mut()
                .extend(raw_entry(name.as_bytes(), kind, link.as_bytes(), data));
            self
        }

        /// A pre-POSIX entry: type flag NUL rather than `0`.
        fn raw_v7(mut self, name: &str, data: &[u8]) -> Self {
            let mut entry = raw_entry(name.as_bytes(), EntryType::Regular, b"", data);
            let mut h = Header::new_old();
            h.as_mut_bytes().copy_from_slice(&entry[..512]);
            h.as_old_mut().linkflag = [0];
            h.set_cksum();
            entry[..512].copy_from_slice(h.as_bytes());
            self.0.get_mut().extend(entry);
            self
        }

        fn bytes(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn raw_entry(name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mode = if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        };
        let mut h = header(kind, mode, data.len() as u64);
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    /// A scratch area: `root` to unpack into, and `outside` holding a file
    /// that must never change.
    struct Scratch {
        tmp: TempDir,
        root: PathBuf,
    }

    impl Scratch {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("root");
            fs::create_dir(&root).unwrap();
            fs::create_dir(tmp.path().join("outside")).unwrap();
            fs::write(tmp.path().join("outside/file"), "secret").unwrap();
            Scratch { tmp, root }
        }

        fn outside(&self) -> PathBuf {
            self.tmp.path().join("outside")
        }

        fn unpack(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
            unpack_layer(tar, &self.root, &UnpackOptions::default())
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.root.join(rel)
        }

        fn lstat(&self, rel: &str) -> fs::Metadata {
            fs::symlink_metadata(self.path(rel)).unwrap()
        }

        fn exists(&self, rel: &str) -> bool {
            fs::symlink_metadata(self.path(rel)).is_ok()
        }

        fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.path(rel)).unwrap()
        }

        fn assert_outside_untouched(&self) {
            let names: Vec<_> = fs::read_dir(self.outside())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["file"]);
            let meta = fs::symlink_metadata(self.outside().join("file")).unwrap();
            assert_eq!(meta.nlink(), 1);
            assert_eq!(
                fs::read_to_string(self.outside().join("file")).unwrap(),
                "secret"
            );
            assert!(xattr::get(self.outside(), "trusted.overlay.opaque")
                .unwrap()
                .is_none());
        }
    }

    fn invalid_entry(r: Result<UnpackStats, UnpackError>) -> (String, EntryProblem) {
        match r {
            Err(UnpackError::InvalidEntry { path, problem }) => (path, problem),
            other => panic!("expected an invalid entry, got {other:?}"),
        }
    }

    fn link_problem(r: Result<UnpackStats, UnpackError>) -> EntryProblem {
        match invalid_entry(r).1 {
            EntryProblem::LinkTarget { problem, .. } => *problem,
            other => panic!("expected a hardlink target problem, got {other:?}"),
        }
    }

    /// Every name under `dir`, relative, depth first.
    fn names(dir: &Path) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                if e.file_type().unwrap().is_dir() {
                    todo.push(p);
                }
            }
        }
        out
    }

    #[test]
    fn unpacks_every_kind_of_entry() {
        let s = Scratch::new();
        let tar = Tar::new()
            .dir("etc")
            .file("etc/hosts", b"127.0.0.1 localhost\n")
            .symlink("etc/link", "hosts")
            .hardlink("etc/hard", "etc/hosts")
            .fifo("run/fifo")
            .file("a/b/c/d.txt", b"deep")
            .file("empty", b"")
            .bytes();
        let stats = s.unpack(&tar).unwrap();
        assert_eq!(
            stats,
            UnpackStats {
                entries: 7,
                bytes_written: 24
            }
        );
        assert_eq!(s.read("etc/hosts"), "127.0.0.1 localhost\n");
        assert_eq!(
            fs::read_link(s.path("etc/link")).unwrap(),
            Path::new("hosts")
        );
        assert_eq!(s.lstat("etc/hard").ino(), s.lstat("etc/hosts").ino());
        assert_eq!(s.lstat("etc/hosts").nlink(), 2);
        assert!(s.lstat("run/fifo").file_type().is_fifo());
        assert_eq!(s.read("a/b/c/d.txt"), "deep");
        assert_eq!(s.read("empty"), "");
        // Parents missing from the tar are made 0755.
        for dir in ["run", "a", "a/b", "a/b/c"] {
            assert!(s.lstat(dir).is_dir());
            assert_eq!(s.lstat(dir).mode() & 0o7777, 0o755, "{dir}");
        }
    }

    #[test]
    fn keeps_owner_mode_and_mtime() {
        let s = Scratch::new();
        let mut su = header(EntryType::Regular, 0o4755, 4);
        su.set_uid(1000);
        su.set_gid(2000);
        su.set_mtime(1_500_000_000);
        let mut tmp = header(EntryType::Directory, 0o1777, 0);
        tmp.set_mtime(1_234_567_890);
        let mut shared = header(EntryType::Directory, 0o2770, 0);
        shared.set_uid(5);
        shared.set_gid(6);
        let mut lnk = header(EntryType::Symlink, 0o777, 0);
        lnk.set_uid(7);
        lnk.set_gid(8);
        lnk.set_mtime(1_400_000_000);
        let mut fifo = header(EntryType::Fifo, 0o640, 0);
        fifo.set_uid(9);
        let mut tar = Tar::new()
            .with(su, "bin/su", b"#!su")
            .with(tmp, "tmp", b"")
            // Written after "tmp": its mtime must survive them.
            .file("tmp/a", b"a")
            .dir("tmp/sub")
            .file("tmp/sub/b", b"b")
            .with(shared, "shared", b"")
            .with(fifo, "fifo", b"");
        tar.0.append_link(&mut lnk, "lnk", "bin/su").unwrap();
        s.unpack(&tar.bytes()).unwrap();

        let m = s.lstat("bin/su");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 2000, 0o4755));
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 0));
        let m = s.lstat("tmp");
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o1777, 1_234_567_890));
        assert_eq!(s.lstat("tmp/sub").mtime(), MTIME as i64);
        let m = s.lstat("shared");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (5, 6, 0o2770));
        let m = s.lstat("lnk");
        assert!(m.file_type().is_symlink());
        assert_eq!((m.uid(), m.gid(), m.mtime()), (7, 8, 1_400_000_000));
        // The link's target kept its own owner.
        assert_eq!(s.lstat("bin/su").uid(), 1000);
        let m = s.lstat("fifo");
        assert_eq!((m.uid(), m.mode() & 0o7777), (9, 0o640));
    }

    #[test]
    fn applies_allowed_xattrs_and_pax_times() {
        let s = Scratch::new();
        // struct vfs_cap_data, revision 2, effective: cap_net_raw (13).
        let mut cap = Vec::new();
        for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            cap.extend(word.to_le_bytes());
        }
        let tar = Tar::new()
            .pax(&[
                ("SCHILY.xattr.user.greeting", b"hello"),
                ("SCHILY.xattr.security.capability", &cap),
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.trusted.evil", b"1"),
                (
                    "SCHILY.xattr.security.selinux",
                    b"system_u:object_r:bin_t:s0",
                ),
                ("mtime", b"1600000000.25"),
            ])
            .file("ping", b"ping")
            .pax(&[("SCHILY.xattr.user.dir", b"d"), ("mtime", b"1500000000.5")])
            .dir("d")
            // Linux refuses user.* xattrs on special files: not fatal.
            .pax(&[("SCHILY.xattr.user.x", b"x")])
            .fifo("fifo")
            .pax(&[("SCHILY.xattr.user.x", b"x")])
            .symlink("sym", "ping")
            .bytes();
        s.unpack(&tar).unwrap();
        let ping = s.path("ping");
        assert_eq!(
            xattr::get(&ping, "user.greeting").unwrap().unwrap(),
            b"hello"
        );
        assert_eq!(
            xattr::get(&ping, "security.capability").unwrap().unwrap(),
            cap
        );
        assert!(xattr::get(&ping, "trusted.overlay.opaque")
            .unwrap()
            .is_none());
        assert!(xattr::get(&ping, "trusted.evil").unwrap().is_none());
        let m = s.lstat("ping");
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 250_000_000));
        assert_eq!(xattr::get(s.path("d"), "user.dir").unwrap().unwrap(), b"d");
        let m = s.lstat("d");
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 500_000_000));
    }

    #[test]
    fn pax_time_parsing() {
        let t = |v: &str| parse_pax_time(v.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t("12"), Some((12, 0)));
        assert_eq!(t("12.5"), Some((12, 500_000_000)));
        assert_eq!(t("12.0000000019"), Some((12, 1)));
        assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t("-3"), Some((-3, 0)));
        assert_eq!(t(""), None);
        assert_eq!(t("1e9"), None);
        assert_eq!(t(".5"), None);
    }

    #[test]
    fn long_names_and_link_targets() {
        let s = Scratch::new();
        let long_dir = format!("{}/{}/{}", "a".repeat(60), "b".repeat(60), "c".repeat(60));
        let long_file = format!("{long_dir}/{}", "f".repeat(120));
        let long_target = format!("../../../{}", "t".repeat(150));
        let pax_name = format!("{}/pax-named", "p".repeat(110));
        let tar = Tar::new()
            .file(&long_file, b"gnu long name")
            .symlink("sym", &long_target)
            .hardlink("hard", &long_file)
            .pax(&[("path", pax_name.as_bytes())])
            .raw("ignored-ustar-name", EntryType::Regular, "", b"pax name")
            .bytes();
        s.unpack(&tar).unwrap();
        assert_eq!(s.read(&long_file), "gnu long name");
        assert_eq!(
            fs::read_link(s.path("sym")).unwrap(),
            Path::new(&long_target)
        );
        assert_eq!(s.lstat("hard").ino(), s.lstat(&long_file).ino());
        assert_eq!(s.read(&pax_name), "pax name");
        assert!(!s.exists("ignored-ustar-name"));
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let s = Scratch::new();
        let mut private = header(EntryType::Directory, 0o700, 0);
        private.set_uid(3);
        let tar = Tar::new()
            .file("x", b"old")
            .file("x", b"new")
            // Replacing a file must not truncate it in place: another link
            // to the old inode keeps the old data.
            .file("y", b"old y")
            .hardlink("y2", "y")
            .file("y", b"new y")
            .dir("d")
            .file("d/inner", b"")
            .file("d", b"d is a file now")
            .file("e", b"")
            .dir("e")
            .file("e/f", b"f")
            .dir("k")
            .file("k/keep", b"kept")
            .with(private, "k", b"")
            // A symlink replaced by a file or a directory is not followed.
            .symlink("s", &s.outside().join("file").to_string_lossy())
            .file("s", b"plain")
            .symlink("t", &s.outside().to_string_lossy())
            .dir("t")
            .file("t/file", b"inside")
            .fifo("p")
            .symlink("p", "x")
            .bytes();
        s.unpack(&tar).unwrap();
        assert_eq!(s.read("x"), "new");
        assert_eq!(s.read("y"), "new y");
        assert_eq!(s.read("y2"), "old y");
        assert_eq!(s.read("d"), "d is a file now");
        assert_eq!(s.read("e/f"), "f");
        assert_eq!(s.read("k/keep"), "kept");
        let m = s.lstat("k");
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o700, 3));
        assert!(s.lstat("s").is_file());
        assert_eq!(s.read("s"), "plain");
        assert!(s.lstat("t").is_dir());
        assert_eq!(s.read("t/file"), "inside");
        assert!(s.lstat("p").file_type().is_symlink());
        s.assert_outside_untouched();
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let s = Scratch::new();
        let tar = Tar::new()
            .file("a/file", b"shadowed")
            .file(".wh.gone", b"")
            .file("a/.wh.file", b"")
            .file("dir/sub/x", b"")
            .file(".wh.dir", b"")
            .file("new/.wh.x", b"")
            // Deleted and made anew in one layer: the new directory must hide
            // the lower one's contents, as the whiteout did.
            .file(".wh.re", b"")
            .dir("re")
            .file("re/new", b"")
            .bytes();
        let stats = s.unpack(&tar).unwrap();
        assert_eq!(
            stats,
            UnpackStats {
                entries: 9,
                bytes_written: 8
            }
        );
        assert_eq!(
            xattr::get(s.path("re"), OPAQUE_XATTR).unwrap().as_deref(),
            Some(&b"y"[..])
        );
        assert!(xattr::get(s.path("new"), OPAQUE_XATTR).unwrap().is_none());
        for path in ["gone", "a/file", "dir", "new/x"] {
            let m = s.lstat(path);
            assert!(m.file_type().is_char_device(), "{path}");
            assert_eq!(m.rdev(), 0, "{path}");
        }
        assert_eq!(
            names(&s.root),
            ["a", "a/file", "dir", "gone", "new", "new/x", "re", "re/new"]
                .map(String::from)
                .into()
        );
    }

    #[test]
    fn opaque_marker_sets_the_xattr() {
        let s = Scratch::new();
        let tar = Tar::new()
            .dir("o")
            .file("o/.wh..wh..opq", b"")
            .file("o/kept", b"k")
            .file("p/.wh..wh..opq", b"")
            .bytes();
        s.unpack(&tar).unwrap();
        for dir in ["o", "p"] {
            assert_eq!(
                xattr::get(s.path(dir), "trusted.overlay.opaque")
                    .unwrap()
                    .as_deref(),
                Some(&b"y"[..]),
                "{dir}"
            );
        }
        assert_eq!(
            names(&s.root),
            ["o", "o/kept", "p"].map(String::from).into()
        );
    }

    #[test]
    fn aufs_metadata_is_ignored() {
        let s = Scratch::new();
        let tar = Tar::new()
            .dir(".wh..wh.plnk")
            .file(".wh..wh.plnk/1234.5678", b"aufs hardlink store")
            .file(".wh..wh.aufs", b"")
            .dir(".wh..wh.orph")
            .file("d/.wh..wh.something", b"")
            .file("kept", b"")
            .bytes();
        s.unpack(&tar).unwrap();
        assert_eq!(names(&s.root), ["kept"].map(String::from).into());
    }

    #[test]
    fn bad_whiteout_names_are_refused() {
        for name in [".wh.", "a/.wh.", ".wh..", ".wh..."] {
            let s = Scratch::new();
            let tar = Tar::new().raw(name, EntryType::Regular, "", b"").bytes();
            assert_eq!(
                invalid_entry(s.unpack(&tar)).1,
                EntryProblem::BadWhiteout,
                "{name}"
            );
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let cases = [
            ("../escape", EntryProblem::EscapesRoot),
            ("/abs", EntryProblem::Absolute),
            ("/", EntryProblem::Absolute),
            ("a/../../b", EntryProblem::EscapesRoot),
            ("./../c", EntryProblem::EscapesRoot),
            ("a/b/../../../d", EntryProblem::EscapesRoot),
            ("../.wh.outside", EntryProblem::EscapesRoot),
            ("..", EntryProblem::EscapesRoot),
        ];
        for kind in [
            EntryType::Regular,
            EntryType::Directory,
            EntryType::Symlink,
            EntryType::Fifo,
        ] {
            for (name, problem) in &cases {
                let s = Scratch::new();
                let tar = Tar::new().raw(name, kind, "x", b"").bytes();
                assert_eq!(
                    invalid_entry(s.unpack(&tar)),
                    (name.to_string(), problem.clone())
                );
                assert!(names(&s.root).is_empty(), "{name}");
                assert_eq!(
                    names(s.tmp.path()),
                    ["outside", "outside/file", "root"].map(String::from).into()
                );
                s.assert_outside_untouched();
            }
        }
        let s = Scratch::new();
        let err = s
            .unpack(&Tar::new().raw("../x", EntryType::Regular, "", b"").bytes())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid tar entry "../x": path escapes the layer root"#
        );
    }

    #[test]
    fn names_are_normalised() {
        let s = Scratch::new();
        let tar = Tar::new()
            .raw("./a", EntryType::Regular, "", b"a")
            .raw("b/", EntryType::Directory, "", b"")
            .raw("c//d", EntryType::Regular, "", b"d")
            .raw("c/./e/", EntryType::Directory, "", b"")
            .raw("f/../g", EntryType::Regular, "", b"g")
            // A pre-POSIX directory: type NUL and a trailing slash.
            .raw_v7("h/", b"")
            .raw_v7("i", b"i")
            .bytes();
        s.unpack(&tar).unwrap();
        assert_eq!(s.read("a"), "a");
        assert!(s.lstat("b").is_dir());
        assert_eq!(s.read("c/d"), "d");
        assert!(s.lstat("c/e").is_dir());
        // Cleaned lexically: "f" is never created, let alone entered.
        assert_eq!(s.read("g"), "g");
        assert!(!s.exists("f"));
        assert!(s.lstat("h").is_dir());
        assert_eq!(s.read("i"), "i");
    }

    #[test]
    fn root_entry_sets_root_metadata() {
        for name in ["./", ".", ""] {
            let s = Scratch::new();
            let mut h = header(EntryType::Directory, 0o750, 0);
            h.set_uid(10);
            h.set_gid(20);
            h.set_mtime(1_111_111_111);
            h.as_old_mut().name = [0; 100];
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            let mut tar = Tar::new();
            tar.0.append(&h, io::empty()).unwrap();
            s.unpack(&tar.file("f", b"").bytes()).unwrap();
            let m = fs::metadata(&s.root).unwrap();
            assert_eq!(
                (m.uid(), m.gid(), m.mode() & 0o7777),
                (10, 20, 0o750),
                "{name:?}"
            );
            assert_eq!(m.mtime(), 1_111_111_111, "{name:?}");
        }
        let s = Scratch::new();
        let tar = Tar::new().raw("./", EntryType::Regular, "", b"").bytes();
        assert_eq!(
            invalid_entry(s.unpack(&tar)).1,
            EntryProblem::RootNotDirectory
        );
    }

    #[test]
    fn symlinked_parents_are_never_followed() {
        /// Should a regression write through `etc -> /etc`, clean up anyway.
        struct RemoveOnDrop(PathBuf);
        impl Drop for RemoveOnDrop {
            fn drop(&mut self) {
                if fs::remove_file(&self.0).is_ok() {
                    eprintln!("removed {} written through a symlink", self.0.display());
                }
            }
        }
        let etc_probe =
            Path::new("/etc").join(format!("berth-unpack-probe-{}", std::process::id()));
        let _cleanup = RemoveOnDrop(etc_probe.clone());
        // What is tried, the tar that tries it, and the symlink at fault.
        type Case = (&'static str, Box<dyn Fn(&Scratch) -> Tar>, &'static str);
        let cases: Vec<Case> = vec![
            (
                "absolute symlink to a directory outside",
                Box::new(|s| {
                    Tar::new()
                        .symlink("lnk", &s.outside().to_string_lossy())
                        .file("lnk/passwd", b"owned")
                }),
                "lnk",
            ),
            (
                "relative symlink climbing out",
                Box::new(|_| Tar::new().symlink("up", "../../..").file("up/x", b"owned")),
                "up",
            ),
            (
                "/etc",
                Box::new(|_| {
                    Tar::new().symlink("etc", "/etc").file(
                        &format!("etc/berth-unpack-probe-{}", std::process::id()),
                        b"owned",
                    )
                }),
                "etc",
            ),
            (
                "symlink pointing inside the layer",
                Box::new(|_| {
                    Tar::new()
                        .dir("a")
                        .symlink("a/self", "..")
                        .file("a/self/x", b"")
                }),
                "a/self",
            ),
            (
                "directory under a symlink",
                Box::new(|s| {
                    Tar::new()
                        .symlink("lnk", &s.outside().to_string_lossy())
                        .dir("lnk/sub")
                }),
                "lnk",
            ),
            (
                "whiteout under a symlink",
                Box::new(|s| {
                    Tar::new()
                        .symlink("lnk", &s.outside().to_string_lossy())
                        .file("lnk/.wh.file", b"")
                }),
                "lnk",
            ),
            (
                "opaque marker under a symlink",
                Box::new(|s| {
                    Tar::new()
                        .symlink("lnk", &s.outside().to_string_lossy())
                        .file("lnk/.wh..wh..opq", b"")
                }),
                "lnk",
            ),
            (
                "symlink under a symlink",
                Box::new(|s| {
                    Tar::new()
                        .symlink("lnk", &s.outside().to_string_lossy())
                        .symlink("lnk/file", "/")
                }),
                "lnk",
            ),
            (
                "hardlink under a symlink",
                Box::new(|s| {
                    Tar::new()
                        .file("f", b"")
                        .symlink("lnk", &s.outside().to_string_lossy())
                        .hardlink("lnk/h", "f")
                }),
                "lnk",
            ),
            (
                "deep symlink",
                Box::new(|s| {
                    Tar::new()
                        .symlink("a/b/lnk", &s.outside().to_string_lossy())
                        .file("a/b/lnk/c/d", b"")
                }),
                "a/b/lnk",
            ),
        ];
        for (what, tar, at) in cases {
            let s = Scratch::new();
            let err = s.unpack(&tar(&s).bytes()).unwrap_err();
            assert!(
                err.to_string().ends_with("through a symlink"),
                "{what}: {err}"
            );
            match err {
                UnpackError::InvalidEntry {
                    problem: EntryProblem::ThroughSymlink(p),
                    ..
                } => {
                    assert_eq!(p, at, "{what}")
                }
                other => panic!("{what}: {other:?}"),
            }
            s.assert_outside_untouched();
        }
        assert!(!etc_probe.exists());
    }

    #[test]
    fn parent_that_is_a_file_is_refused() {
        let s = Scratch::new();
        let tar = Tar::new().file("f", b"").file("f/x", b"").bytes();
        assert_eq!(
            invalid_entry(s.unpack(&tar)).1,
            EntryProblem::ParentNotDirectory("f".into())
        );
    }

    #[test]
    fn hardlinks_stay_inside_the_layer() {
        let s = Scratch::new();
        let tar = Tar::new()
            .raw("h", EntryType::Link, "../outside/file", b"")
            .bytes();
        assert_eq!(link_problem(s.unpack(&tar)), EntryProblem::EscapesRoot);

        let s = Scratch::new();
        let passwd_links = fs::symlink_metadata("/etc/passwd").unwrap().nlink();
        let tar = Tar::new()
            .raw("h", EntryType::Link, "/etc/passwd", b"")
            .bytes();
        assert_eq!(link_problem(s.unpack(&tar)), EntryProblem::Absolute);
        assert_eq!(
            fs::symlink_metadata("/etc/passwd").unwrap().nlink(),
            passwd_links
        );
        assert!(!s.exists("h"));

        let s = Scratch::new();
        let tar = Tar::new()
            .symlink("lnk", &s.outside().to_string_lossy())
            .hardlink("h", "lnk/file")
            .bytes();
        assert_eq!(
            link_problem(s.unpack(&tar)),
            EntryProblem::ThroughSymlink("lnk".into())
        );
        s.assert_outside_untouched();

        let s = Scratch::new();
        let tar = Tar::new().hardlink("h", "missing").bytes();
        assert_eq!(
            link_problem(s.unpack(&tar)),
            EntryProblem::Missing("missing".into())
        );

        let s = Scratch::new();
        let tar = Tar::new().dir("d").hardlink("h", "d").bytes();
        assert_eq!(link_problem(s.unpack(&tar)), EntryProblem::IsDirectory);

        let s = Scratch::new();
        let tar = Tar::new().raw("h", EntryType::Link, "./", b"").bytes();
        assert_eq!(link_problem(s.unpack(&tar)), EntryProblem::IsDirectory);

        // A hardlink to a symlink links the symlink itself.
        let s = Scratch::new();
        let tar = Tar::new()
            .symlink("s", &s.outside().join("file").to_string_lossy())
            .hardlink("h", "s")
            .hardlink("s", "s")
            .bytes();
        s.unpack(&tar).unwrap();
        assert!(s.lstat("h").file_type().is_symlink());
        assert_eq!(s.lstat("h").ino(), s.lstat("s").ino());
        s.assert_outside_untouched();
    }

    #[test]
    fn device_nodes_need_permission() {
        let char_dev = |path: &str, major, minor| {
            let mut h = header(EntryType::Char, 0o666, 0);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            (h, path.to_string())
        };
        let (null, _) = char_dev("dev/null", 1, 3);
        let mut block = header(EntryType::Block, 0o660, 0);
        block.set_device_major(7).unwrap();
        block.set_device_minor(9).unwrap();
        block.set_gid(6);

        let s = Scratch::new();
        let tar = Tar::new().with(null.clone(), "dev/null", b"").bytes();
        assert_eq!(
            invalid_entry(s.unpack(&tar)),
            ("dev/null".into(), EntryProblem::DeviceNode)
        );
        assert!(names(&s.root).is_empty());
        let s = Scratch::new();
        let tar = Tar::new().with(block.clone(), "loop9", b"").bytes();
        assert_eq!(invalid_entry(s.unpack(&tar)).1, EntryProblem::DeviceNode);

        // 0:0 is a whiteout and always allowed.
        let (whiteout, _) = char_dev("w", 0, 0);
        let s = Scratch::new();
        s.unpack(&Tar::new().with(whiteout, "w", b"").bytes())
            .unwrap();
        assert!(s.lstat("w").file_type().is_char_device());

        let s = Scratch::new();
        let tar = Tar::new()
            .with(null, "dev/null", b"")
            .with(block, "loop9", b"")
            .bytes();
        let opts = UnpackOptions {
            allow_device_nodes: true,
            ..Default::default()
        };
        unpack_layer(&tar[..], &s.root, &opts).unwrap();
        let m = s.lstat("dev/null");
        assert!(m.file_type().is_char_device());
        assert_eq!((m.rdev(), m.mode() & 0o7777), (stat::makedev(1, 3), 0o666));
        let m = s.lstat("loop9");
        assert!(m.file_type().is_block_device());
        assert_eq!((m.rdev(), m.gid()), (stat::makedev(7, 9), 6));
    }

    #[test]
    fn unsupported_entry_types_are_refused() {
        let s = Scratch::new();
        let tar = Tar::new().raw("vol", EntryType::new(b'V'), "", b"").bytes();
        let err = s.unpack(&tar).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid tar entry "vol": unsupported entry type V"#
        );
    }

    #[test]
    fn pax_global_headers_are_skipped() {
        let s = Scratch::new();
        let tar = Tar::new()
            .raw(
                "pax_global_header",
                EntryType::XGlobalHeader,
                "",
                b"20 comment=berthy\n",
            )
            .file("f", b"f")
            .bytes();
        s.unpack(&tar).unwrap();
        assert_eq!(names(&s.root), ["f"].map(String::from).into());
    }

    #[test]
    fn large_files_stream_through() {
        let s = Scratch::new();
        let data = noise(5 * 1024 * 1024 + 123, 7);
        let tar = Tar::new().file("big", &data).file("small", b"s").bytes();
        let stats = s.unpack(&tar).unwrap();
        assert_eq!(stats.bytes_written, data.len() as u64 + 1);
        assert!(fs::read(s.path("big")).unwrap() == data);
    }

    #[test]
    fn empty_layer() {
        let s = Scratch::new();
        let err = unpack_layer(
            &[0; 1024][..],
            &s.root.join("missing"),
            &UnpackOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot unpack into {}/missing: No such file or directory (os error 2)",
                s.root.display()
            )
        );
        assert_eq!(s.unpack(&[0; 1024]).unwrap(), UnpackStats::default());
        assert_eq!(
            s.unpack(&Tar::new().bytes()).unwrap(),
            UnpackStats::default()
        );
    }

    #[test]
    fn not_a_tar_is_an_error() {
        let s = Scratch::new();
        let err = s.unpack(&noise(64 * 1024, 3)).unwrap_err();
        assert!(matches!(err, UnpackError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().starts_with("invalid layer tar"), "{err}");

        let err = s.unpack(b"hello world\n").unwrap_err();
        assert!(
            matches!(err, UnpackError::Truncated { near: None }),
            "{err:?}"
        );

        let err = s.unpack(b"").unwrap_err();
        assert!(
            matches!(err, UnpackError::Truncated { near: None }),
            "{err:?}"
        );

        // A compressed layer handed over without decompress().
        let tar = Tar::new().file("f", b"f").bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        assert!(s.unpack(&gz.finish().unwrap()).is_err());
        assert!(names(&s.root).is_empty());
    }

    #[test]
    fn truncated_tar_is_an_error() {
        let tar = Tar::new()
            .dir("d")
            .file("d/big", &noise(3000, 1))
            .symlink("d/l", "big")
            .file("d/small", b"0123456789")
            .bytes();
        let end_of_entries = tar.len() - 1024;
        let mut cuts: Vec<usize> = (0..tar.len() - 512).step_by(61).collect();
        cuts.extend([
            512,
            1024,
            1024 + 3000,
            end_of_entries,
            end_of_entries + 100,
            tar.len() - 513,
        ]);
        for cut in cuts {
            let s = Scratch::new();
            match s.unpack(&tar[..cut]) {
                Err(UnpackError::Truncated { .. }) => {}
                other => panic!("cut at {cut} of {}: {other:?}", tar.len()),
            }
        }
        // Like GNU tar, a lone zero block ends the archive.
        let s = Scratch::new();
        s.unpack(&tar[..tar.len() - 512]).unwrap();
        assert_eq!(s.read("d/small"), "0123456789");
    }

    #[test]
    fn truncation_inside_a_file_names_it() {
        let tar = Tar::new().file("data", &noise(2000, 2)).bytes();
        let s = Scratch::new();
        let err = s.unpack(&tar[..1500]).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Truncated { near: Some(p) } if p == "data"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            r#"invalid layer tar: stream ends before the end of the archive (near entry "data")"#
        );
    }

    fn sha256(data: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(data)))
    }

    #[test]
    fn hashing_reader_sees_the_padding_after_the_archive() {
        let mut tar = Tar::new().file("f", b"data").bytes();
        // Record padding, as tar(1) writes to a 10240-byte record.
        tar.resize(tar.len().div_ceil(10240) * 10240 + 10240, 0);
        let s = Scratch::new();
        let mut hashing = HashingReader::new(&tar[..]);
        s.unpack_with(&mut hashing);
        assert_eq!(HashingReader::bytes(&hashing), tar.len() as u64);
        assert_eq!(hashing.digest(), sha256(&tar));

        // Junk after the end-of-archive marker is read (and hashed) too.
        let mut junk = Tar::new().file("f", b"data").bytes();
        junk.extend(b"trailing junk");
        let s = Scratch::new();
        let mut hashing = HashingReader::new(&junk[..]);
        s.unpack_with(&mut hashing);
        assert_eq!(hashing.digest(), sha256(&junk));
    }

    impl Scratch {
        fn unpack_with(&self, r: impl Read) -> UnpackStats {
            unpack_layer(r, &self.root, &UnpackOptions::default()).unwrap()
        }
    }

    #[test]
    fn compressed_layers_round_trip() {
        let tar = Tar::new()
            .dir("etc")
            .file("etc/os-release", b"NAME=berth\n")
            .file("bin/data", &noise(300_000, 9))
            .bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        for (blob, expected) in [
            (gz, Compression::Gzip),
            (zst, Compression::Zstd),
            (tar.clone(), Compression::None),
        ] {
            let s = Scratch::new();
            let mut raw = HashingReader::new(&blob[..]);
            let (kind, plain) = decompress(&mut raw).unwrap();
            assert_eq!(kind, expected);
            let mut plain = HashingReader::new(plain);
            let stats = s.unpack_with(&mut plain);
            assert_eq!(stats.entries, 3);
            assert_eq!(plain.digest(), sha256(&tar), "{kind:?} diff id");
            drop(plain);
            assert_eq!(HashingReader::bytes(&raw), blob.len() as u64, "{kind:?}");
            assert_eq!(raw.digest(), sha256(&blob), "{kind:?} blob digest");
            assert_eq!(s.read("etc/os-release"), "NAME=berth\n");
        }
    }

    #[test]
    fn corrupt_gzip_layer_is_an_error() {
        let tar = Tar::new().file("bin/data", &noise(300_000, 4)).bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let mut gz = gz.finish().unwrap();
        // Break the CRC in the trailer: only a full read notices.
        let crc = gz.len() - 8;
        gz[crc] ^= 0xff;
        let s = Scratch::new();
        let (_, plain) = decompress(&gz[..]).unwrap();
        let err = unpack_layer(plain, &s.root, &UnpackOptions::default()).unwrap_err();
        assert!(matches!(err, UnpackError::Malformed { .. }), "{err:?}");
    }

    /// Unmounts on drop, so a failed assertion does not leave a mount.
    struct Mounted(PathBuf);
    impl Drop for Mounted {
        fn drop(&mut self) {
            nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH).unwrap();
        }
    }

    #[test]
    fn overlayfs_honours_the_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let (base, layer, merged) = (
            tmp.path().join("base"),
            tmp.path().join("layer"),
            tmp.path().join("merged"),
        );
        for d in [&base, &layer, &merged] {
            fs::create_dir(d).unwrap();
        }
        fs::write(base.join("hidden.txt"), "lower").unwrap();
        fs::write(base.join("kept.txt"), "lower").unwrap();
        fs::create_dir_all(base.join("opq")).unwrap();
        fs::write(base.join("opq/old.txt"), "lower").unwrap();
        fs::create_dir_all(base.join("dir/sub")).unwrap();
        fs::write(base.join("dir/sub/x"), "lower").unwrap();
        fs::write(base.join("dir/y"), "lower").unwrap();
        fs::create_dir_all(base.join("re")).unwrap();
        fs::write(base.join("re/old"), "lower").unwrap();

        let tar = Tar::new()
            .file(".wh.hidden.txt", b"")
            .dir("opq")
            .file("opq/.wh..wh..opq", b"")
            .file("opq/new.txt", b"upper")
            .file("added.txt", b"upper")
            .file("dir/.wh.sub", b"")
            .file(".wh.re", b"")
            .dir("re")
            .file("re/new", b"upper")
            .bytes();
        unpack_layer(&tar[..], &layer, &UnpackOptions::default()).unwrap();

        let opts = format!("lowerdir={}:{}", layer.display(), base.display());
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(opts.as_str()),
        )
        .unwrap();
        let _mounted = Mounted(merged.clone());
        assert_eq!(
            names(&merged),
            [
                "added.txt",
                "dir",
                "dir/y",
                "kept.txt",
                "opq",
                "opq/new.txt",
                "re",
                "re/new"
            ]
            .map(String::from)
            .into()
        );
        assert!(fs::symlink_metadata(merged.join("hidden.txt")).is_err());
        assert_eq!(
            fs::read_to_string(merged.join("opq/new.txt")).unwrap(),
            "upper"
        );
    }

    /// Everything about the files under `dir` except those under `skip`.
    fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            let m = fs::symlink_metadata(&d).unwrap();
            let mut attrs: Vec<_> = xattr::list(&d).unwrap().collect();
            attrs.sort();
            let mut desc = format!(
                "mode {:o} uid {} gid {} nlink {} size {} mtime {}.{} xattrs {attrs:?}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.nlink(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            );
            if m.is_file() {
                desc += &format!(" data {}", sha256(&fs::read(&d).unwrap()));
            } else if m.file_type().is_symlink() {
                desc += &format!(" -> {:?}", fs::read_link(&d).unwrap());
            } else if m.is_dir() {
                for e in fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    desc += &format!(" {:?}", p.file_name().unwrap());
                    if p != skip {
                        todo.push(p);
                    }
                }
            }
            out.insert(d.strip_prefix(dir).unwrap().to_owned(), desc);
        }
        out
    }

    #[derive(Debug, Clone)]
    enum Op {
        File(String, Vec<u8>),
        Dir(String),
        Symlink(String, String),
        Hardlink(String, String),
        Fifo(String),
    }

    fn name() -> impl Strategy<Value = String> {
        // Mostly names that unpack, so that sequences get far; the hostile
        // ones are rarer because the first of them ends the unpack.
        let comp = prop_oneof![
            8 => prop::sample::select(vec!["a", "b", "lnk", "up"]),
            2 => prop::sample::select(vec![".wh.a", ".wh.lnk", ".wh..wh..opq", "."]),
            1 => prop::sample::select(vec!["..", ""]),
        ];
        (
            prop::bool::weighted(0.02),
            prop::collection::vec(comp, 1..4),
        )
            .prop_map(|(abs, comps)| {
                let joined = comps.join("/");
                if abs {
                    format!("/{joined}")
                } else {
                    joined
                }
            })
    }

    fn op() -> impl Strategy<Value = Op> {
        // "@out" becomes the absolute path of the directory beside the root.
        let target = prop::sample::select(vec![
            "..",
            "../..",
            "../../..",
            "/",
            "@out",
            "@out/file",
            "a",
            "lnk",
            ".",
            "a/..",
            "up/x",
        ]);
        prop_oneof![
            3 => (name(), prop::collection::vec(any::<u8>(), 0..16))
                .prop_map(|(n, d)| Op::File(n, d)),
            2 => name().prop_map(Op::Dir),
            3 => (name(), target).prop_map(|(n, t)| Op::Symlink(n, t.to_string())),
            1 => (name(), name()).prop_map(|(n, t)| Op::Hardlink(n, t)),
            1 => name().prop_map(Op::Fifo),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever a layer holds, nothing outside the root changes. The root
        /// sits three levels down so that every `..` the names and targets
        /// can climb stays inside the watched area.
        #[test]
        fn nothing_outside_the_root_changes(ops in prop::collection::vec(op(), 1..12)) {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("x/y/root");
            fs::create_dir_all(&root).unwrap();
            let out = tmp.path().join("x/y/out");
            fs::create_dir_all(out.join("dir")).unwrap();
            fs::write(out.join("file"), "secret").unwrap();
            fs::write(tmp.path().join("x/sibling"), "secret").unwrap();
            let out_str = out.to_string_lossy().into_owned();

            let mut tar = Tar::new();
            for op in &ops {
                tar = match op {
                    Op::File(n, d) => tar.raw(n, EntryType::Regular, "", d),
                    Op::Dir(n) => tar.raw(n, EntryType::Directory, "", b""),
                    Op::Symlink(n, t) => {
                        let t = t.replace("@out", &out_str);
                        tar.raw(n, EntryType::Symlink, &t, b"")
                    }
                    Op::Hardlink(n, t) => tar.raw(n, EntryType::Link, t, b""),
                    Op::Fifo(n) => tar.raw(n, EntryType::Fifo, "", b""),
                };
            }
            let before = snapshot(tmp.path(), &root);
            let _ = unpack_layer(&tar.bytes()[..], &root, &UnpackOptions::default());
            let after = snapshot(tmp.path(), &root);
            // The listing of root's parent may not change either (root's own
            // metadata is the layer's to set).
            prop_assert_eq!(before, after);
        }
    }
}
