//! Commit: a container's overlay upper directory becomes a layer, and an
//! image config on top of it becomes an image (`docker commit`, each build
//! step).
//!
//! The upper dir is walked in sorted order and written as an OCI layer tar:
//! overlay whiteouts (0:0 character devices) become `.wh.NAME` entries and
//! opaque directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq`
//! entry, so the layer holds exactly the container's changes, deletions
//! included. The tar is staged in the store's scratch space, then stored as
//! a blob and unpacked by chain ID in one pass, like an import.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_api::Reference;

use crate::compression::Compression;
use crate::unpack::UnpackOptions;
use crate::{layer_media_type, ImageConfig, ImageError, ImageStore};

/// What to commit.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    /// The upper dir to turn into a layer; `None` for a config-only image.
    pub upper: Option<&'a Path>,
    /// Paths (relative, no leading `/`) left out of the layer when found in
    /// the upper dir: mount points a runtime makes, like `etc/hosts`.
    pub skip: &'a [&'a str],
    /// The new image's config; its `rootfs.diff_ids` are the parent's, and
    /// the new layer's diff ID is appended.
    pub config: ImageConfig,
    /// The parent image ID (build steps record it).
    pub parent: Option<&'a str>,
    /// Tags for the new image.
    pub tags: &'a [Reference],
}

/// Writes an OCI layer tar of an overlay upper dir.
pub fn write_upper_tar<W: Write>(upper: &Path, skip: &[&str], w: W) -> Result<(), ImageError> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(upper, Path::new(""), skip, &mut b, &mut links)?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| ImageError::io("write layer tar of", upper, e))?;
    Ok(())
}

fn walk<W: Write>(
    root: &Path,
    rel: &Path,
    skip: &[&str],
    b: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ImageError> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| ImageError::io("read", &dir, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let rel_path = rel.join(&name);
        if is_skipped(skip, &rel_path) {
            continue;
        }
        let full = root.join(&rel_path);
        let md = fs::symlink_metadata(&full).map_err(|e| ImageError::io("stat", &full, e))?;
        let ft = md.file_type();
        let io = |e| ImageError::io("add to layer", &full, e);
        if ft.is_char_device() && md.rdev() == 0 {
            // An overlay whiteout: the file was deleted.
            let mut wh = name.clone();
            wh.clear();
            wh.push(".wh.");
            wh.push(&name);
            let mut h = marker_header(md.mtime());
            b.append_data(&mut h, rel.join(wh), std::io::empty())
                .map_err(io)?;
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        if ft.is_dir() {
            if only_skipped(root, &rel_path, skip) {
                // Copied up only for mount points (`etc` for `etc/hosts`).
                continue;
            }
            b.append_data(&mut h, &rel_path, std::io::empty())
                .map_err(io)?;
            let opaque = xattr::get(&full, "trusted.overlay.opaque")
                .ok()
                .flatten()
                .is_some_and(|v| v == b"y");
            if opaque {
                let mut oh = marker_header(md.mtime());
                b.append_data(&mut oh, rel_path.join(".wh..wh..opq"), std::io::empty())
                    .map_err(io)?;
            }
            walk(root, &rel_path, skip, b, links)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&full).map_err(io)?;
            h.set_size(0);
            b.append_link(&mut h, &rel_path, &target).map_err(io)?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &rel_path, first).map_err(io)?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), rel_path.clone());
            }
            let f = File::open(&full).map_err(io)?;
            b.append_data(&mut h, &rel_path, f).map_err(io)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            h.set_size(0);
            b.append_data(&mut h, &rel_path, std::io::empty())
                .map_err(io)?;
        }
        // Sockets are not part of a layer (Docker drops them too).
    }
    Ok(())
}

/// True when `rel` is one of the skipped paths.
pub(crate) fn is_skipped(skip: &[&str], rel: &Path) -> bool {
    skip.iter().any(|s| Path::new(s) == rel)
}

/// True when a directory holds skipped entries and nothing else.
pub(crate) fn only_skipped(root: &Path, rel: &Path, skip: &[&str]) -> bool {
    let Ok(rd) = fs::read_dir(root.join(rel)) else {
        return false;
    };
    let mut any = false;
    for e in rd.flatten() {
        let p = rel.join(e.file_name());
        let skipped = is_skipped(skip, &p)
            || (e.file_type().is_ok_and(|t| t.is_dir()) && only_skipped(root, &p, skip));
        if !skipped {
            return false;
        }
        any = true;
    }
    any && xattr::get(root.join(rel), "trusted.overlay.opaque")
        .ok()
        .flatten()
        .is_none()
}

/// True when [`write_upper_tar`] of `upper` would hold at least one entry:
/// a commit without changes adds no layer, as Docker's does not.
pub fn upper_has_changes(upper: &Path, skip: &[&str]) -> Result<bool, ImageError> {
    let rd = match fs::read_dir(upper) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ImageError::io("read", upper, e)),
    };
    for e in rd {
        let e = e.map_err(|e| ImageError::io("read", upper, e))?;
        let rel = PathBuf::from(e.file_name());
        if is_skipped(skip, &rel) {
            continue;
        }
        let ft = e
            .file_type()
            .map_err(|e| ImageError::io("stat", upper, e))?;
        if ft.is_socket() || (ft.is_dir() && only_skipped(upper, &rel, skip)) {
            continue;
        }
        return Ok(true);
    }
    Ok(false)
}

/// The header of a whiteout marker: an empty root-owned file.
fn marker_header(mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime.max(0) as u64);
    h
}

/// Copies everything read into a writer as well.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl ImageStore {
    /// Commits an upper dir (if any) as a new layer on top of the config's
    /// layers, stores the config and adds the image. Returns the image ID.
    /// Nothing is visible until the image row is added: a failure leaves at
    /// most an unreferenced layer that gc removes.
    pub fn commit(&self, req: CommitRequest<'_>) -> Result<String, ImageError> {
        let mut config = req.config;
        let mut lease = self.layers().lease();
        if let Some(upper) = req.upper {
            // The tar goes through a pipe straight into the unpacker and
            // the blob: no staging copy of a possibly large layer.
            let parent_chain = crate::chain_ids(&config.rootfs.diff_ids).pop();
            let (reader, writer) =
                std::io::pipe().map_err(|e| ImageError::io("make a pipe for", upper, e))?;
            let skip = req.skip;
            let mut blob = self.blobs().writer()?;
            let diff_id = std::thread::scope(|s| {
                let tar = s.spawn(move || {
                    write_upper_tar(
                        upper,
                        skip,
                        std::io::BufWriter::with_capacity(256 * 1024, writer),
                    )
                });
                let unpacked = {
                    let tee = Tee {
                        inner: reader,
                        copy: &mut blob,
                    };
                    self.layers().unpack(
                        &mut lease,
                        tee,
                        parent_chain.as_deref(),
                        None,
                        &UnpackOptions {
                            allow_device_nodes: true,
                            ..Default::default()
                        },
                    )
                };
                // The reader is gone by now, so a writer still busy fails
                // with a broken pipe instead of blocking this join.
                let written = tar.join().unwrap_or_else(|_| {
                    Err(ImageError::io(
                        "walk",
                        upper,
                        std::io::Error::other("tar writer panicked"),
                    ))
                });
                let (layer, _) = match (written, unpacked) {
                    (Ok(()), Ok(u)) => u,
                    // The writer only saw the unpacker give up.
                    (Err(ImageError::Io { source, .. }), Err(u))
                        if source.kind() == std::io::ErrorKind::BrokenPipe =>
                    {
                        return Err(u)
                    }
                    // The walk's own error says more than "truncated".
                    (Err(w), _) => return Err(w),
                    (Ok(()), Err(u)) => return Err(u),
                };
                if !layer.existed || layer.row.blob_digest.is_none() {
                    let (digest, _) = blob.commit(None)?;
                    self.meta().set_layer_blob(
                        &layer.row.chain_id,
                        digest.as_str(),
                        layer_media_type(Compression::None),
                    )?;
                }
                Ok::<_, ImageError>(layer.row.diff_id)
            })?;
            config.rootfs.diff_ids.push(diff_id);
        }
        if config.rootfs.kind.is_empty() {
            config.rootfs.kind = "layers".into();
        }
        let digest = self.blobs().put(&config.to_bytes())?;
        let id = self.add_image(&digest, req.parent, req.tags)?;
        drop(lease);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_tar_has_whiteouts_and_skips() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        fs::create_dir_all(up.join("a/b")).unwrap();
        fs::write(up.join("a/b/f"), b"hi").unwrap();
        fs::create_dir_all(up.join("etc")).unwrap();
        fs::write(up.join("etc/hosts"), b"").unwrap();
        fs::create_dir_all(up.join("e2")).unwrap();
        fs::write(up.join("e2/hosts"), b"").unwrap();
        fs::write(up.join("e2/kept"), b"").unwrap();
        std::os::unix::fs::symlink("/x", up.join("l")).unwrap();
        // A deleted file, as overlay records it (needs root, as the tests do).
        nix::sys::stat::mknod(
            &up.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        let mut out = Vec::new();
        write_upper_tar(up, &["etc/hosts", "e2/hosts"], &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec!["a", "a/b", "a/b/f", "e2", "e2/kept", ".wh.gone", "l"]
        );
        // Every header is complete enough for a strict reader.
        let dest = tempfile::tempdir().unwrap();
        crate::unpack::unpack_layer(&out[..], dest.path(), &Default::default()).unwrap();
    }
}
