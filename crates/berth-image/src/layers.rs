//! Layers: each unpacked once into `layers/<n>`, where `n` is the short
//! numeric id of its database row (64-hex names would overflow overlay's
//! one-page `lowerdir=` option near 50 layers).
//!
//! A layer is unpacked into `layers/tmp-*`, then its row is added as
//! `unpacking`, the directory renamed to `layers/<n>`, and the row marked
//! `ready`. A crash at any point leaves a temp dir, an `unpacking` row or a
//! dir without a row, all of which [`Layers::open`] sweeps.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_store::{LayerRow, LayerState, Metadata};
use sha2::{Digest as _, Sha256};

use crate::compression::{self, Compression, HashingReader};
use crate::unpack::{self, UnpackOptions};
use crate::ImageError;

/// Chain IDs for a list of diff IDs, bottom first:
/// `chain[0] = diff[0]`, `chain[i] = sha256(chain[i-1] + " " + diff[i])`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// What unpacking a layer stream produced.
#[derive(Debug, Clone)]
pub(crate) struct UnpackedLayer {
    pub(crate) row: LayerRow,
    /// True when the layer existed already and the new copy was discarded.
    pub(crate) existed: bool,
}

/// The `layers/` directory and its rows.
#[derive(Debug)]
pub(crate) struct Layers {
    root: PathBuf,
    meta: Arc<Metadata>,
    /// Chain IDs that an operation in progress (a load, an import) has made
    /// or relies on before any image row refers to them: gc keeps them.
    leases: Arc<Mutex<HashMap<String, usize>>>,
}

/// Keeps layers from garbage collection until dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    chains: Vec<String>,
    leases: Arc<Mutex<HashMap<String, usize>>>,
}

impl Lease {
    /// Protects one more chain ID.
    pub(crate) fn add(&mut self, chain: &str) {
        let mut l = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        *l.entry(chain.to_string()).or_insert(0) += 1;
        self.chains.push(chain.to_string());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut l = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        for c in &self.chains {
            if let Some(n) = l.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    l.remove(c);
                }
            }
        }
    }
}

impl Layers {
    /// Opens `root`, dropping rows and directories a crash left behind.
    pub(crate) fn open(root: PathBuf, meta: Arc<Metadata>) -> Result<Layers, ImageError> {
        fs::create_dir_all(&root).map_err(|e| ImageError::io("create", &root, e))?;
        let layers = Layers {
            root,
            meta,
            leases: Arc::default(),
        };
        layers.meta.repair()?;
        let known: std::collections::HashSet<String> = layers
            .meta
            .layers()?
            .iter()
            .map(|l| l.id.to_string())
            .collect();
        for ent in fs::read_dir(&layers.root)
            .map_err(|e| ImageError::io("read", &layers.root, e))?
            .flatten()
        {
            let name = ent.file_name().to_string_lossy().into_owned();
            if name == "empty" || known.contains(&name) {
                continue;
            }
            tracing::info!(dir = %ent.path().display(), "removing layer directory left by an interrupted operation");
            remove_tree(&ent.path())?;
        }
        let empty = layers.root.join("empty");
        fs::create_dir_all(&empty).map_err(|e| ImageError::io("create", &empty, e))?;
        Ok(layers)
    }

    /// A new, empty lease.
    pub(crate) fn lease(&self) -> Lease {
        Lease {
            chains: Vec::new(),
            leases: self.leases.clone(),
        }
    }

    /// The directory of a layer.
    pub(crate) fn dir(&self, id: i64) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// An always-empty directory, the lower dir of images without layers.
    pub(crate) fn empty_dir(&self) -> PathBuf {
        self.root.join("empty")
    }

    /// Unpacks a layer stream (gzip, zstd or plain tar, detected) on top of
    /// `parent`. `raw` sees every byte of the stream as it arrives, so the
    /// caller can keep or hash the blob in the same pass. When `expected_diff`
    /// is given the uncompressed stream must hash to it. The new (or found)
    /// layer is added to `lease`, so gc leaves it alone until the caller's
    /// image row refers to it.
    pub(crate) fn unpack<R: Read>(
        &self,
        lease: &mut Lease,
        raw: R,
        parent: Option<&str>,
        expected_diff: Option<&str>,
        opts: &UnpackOptions,
    ) -> Result<(UnpackedLayer, Compression), ImageError> {
        let tmp = TempDir::new(&self.root)?;
        let (comp, plain) = compression::decompress(raw)
            .map_err(|e| ImageError::BadArchive(format!("reading layer: {e}")))?;
        let mut hashing = HashingReader::new(plain);
        let stats = unpack::unpack_layer(&mut hashing, tmp.path(), opts)?;
        let diff_id = hashing.digest();
        if let Some(exp) = expected_diff {
            if exp != diff_id {
                return Err(ImageError::BadArchive(format!(
                    "layer content does not match its digest: expected {exp}, got {diff_id}"
                )));
            }
        }
        let layer = self.commit(tmp, &diff_id, parent, stats.bytes_written as i64, lease)?;
        Ok((layer, comp))
    }

    fn commit(
        &self,
        tmp: TempDir,
        diff_id: &str,
        parent: Option<&str>,
        size: i64,
        lease: &mut Lease,
    ) -> Result<UnpackedLayer, ImageError> {
        let chain = match parent {
            None => diff_id.to_string(),
            Some(p) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{p} {diff_id}").as_bytes()))
            ),
        };
        lease.add(&chain);
        if let Some(row) = self.meta.layer(&chain)? {
            if row.state == LayerState::Ready {
                return Ok(UnpackedLayer { row, existed: true });
            }
        }
        let id = match self.meta.begin_layer(&chain, diff_id, parent, None) {
            Ok(id) => id,
            // Another unpack of the same layer won the race: use it.
            Err(berth_store::StoreError::Conflict(_)) => {
                let row = self
                    .meta
                    .layer(&chain)?
                    .ok_or_else(|| ImageError::NotFound(chain.clone()))?;
                return Ok(UnpackedLayer { row, existed: true });
            }
            Err(e) => return Err(e.into()),
        };
        // The layer's files must be on disk before a row calls it ready.
        if let Ok(d) = fs::File::open(tmp.path()) {
            let _ = nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d));
        }
        let dest = self.dir(id);
        if let Err(e) = fs::rename(tmp.path(), &dest) {
            let _ = self.meta.delete_layer(&chain);
            return Err(ImageError::io("rename", &dest, e));
        }
        tmp.disarm();
        self.meta.finish_layer(&chain, size)?;
        let row = self
            .meta
            .layer(&chain)?
            .ok_or_else(|| ImageError::NotFound(chain.clone()))?;
        Ok(UnpackedLayer {
            row,
            existed: false,
        })
    }

    /// Lower directories for overlay, topmost first, for a chain (bottom first).
    pub(crate) fn lower_dirs(&self, chain_ids: &[String]) -> Result<Vec<PathBuf>, ImageError> {
        let mut dirs = Vec::with_capacity(chain_ids.len());
        for c in chain_ids.iter().rev() {
            let row = self
                .meta
                .layer(c)?
                .filter(|r| r.state == LayerState::Ready)
                .ok_or_else(|| ImageError::NotFound(format!("layer {c}")))?;
            dirs.push(self.dir(row.id));
        }
        if dirs.is_empty() {
            dirs.push(self.empty_dir());
        }
        Ok(dirs)
    }

    /// Removes every layer no image or container uses; returns their rows.
    pub(crate) fn gc(&self) -> Result<Vec<LayerRow>, ImageError> {
        let mut live = self.meta.live_chain_ids()?;
        live.extend(
            self.leases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .cloned(),
        );
        // A leased layer keeps its parents too.
        for row in self.meta.layers()?.iter().rev() {
            if live.contains(&row.chain_id) {
                if let Some(p) = &row.parent {
                    live.insert(p.clone());
                }
            }
        }
        let mut removed = Vec::new();
        // Children before parents, so a failure never leaves a child without its parent.
        let mut rows = self.meta.layers()?;
        rows.reverse();
        for row in rows {
            if row.state == LayerState::Ready && !live.contains(&row.chain_id) {
                // Row first: a crash after this leaves only a dir without a row, which open() sweeps.
                self.meta.delete_layer(&row.chain_id)?;
                remove_tree(&self.dir(row.id))?;
                removed.push(row);
            }
        }
        Ok(removed)
    }
}

/// Removes a directory tree, absent is fine.
pub(crate) fn remove_tree(p: &Path) -> Result<(), ImageError> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io("remove", p, e)),
    }
}

/// A `tmp-*` directory removed on drop unless disarmed.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl TempDir {
    pub(crate) fn new(parent: &Path) -> Result<TempDir, ImageError> {
        for attempt in 0u32..64 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = parent.join(format!("tmp-{}-{nanos:x}-{attempt}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path, armed: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ImageError::io("create", &path, e)),
            }
        }
        Err(ImageError::io(
            "create",
            parent,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free temp dir name"),
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_rule() {
        let a = "sha256:aaaa".to_string();
        let b = "sha256:bbbb".to_string();
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(
            c[1],
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(b"sha256:aaaa sha256:bbbb"))
            )
        );
        assert!(chain_ids(&[]).is_empty());
    }
}
