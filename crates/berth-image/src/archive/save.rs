//! `save`: images into one tar, in the layout Docker 25+ writes — a
//! docker-archive (`manifest.json`, `repositories`) that is also an OCI
//! image layout (`oci-layout`, `index.json`, `blobs/sha256/`):
//!
//! ```text
//! blobs/sha256/<config hex>     the config, verbatim (mtime: image created)
//! blobs/sha256/<diff ID hex>    each layer once, as an uncompressed tar
//! blobs/sha256/<manifest hex>   an OCI manifest per image
//! index.json                    a descriptor per image and tag
//! manifest.json                 [{"Config","RepoTags","Layers"}]
//! oci-layout
//! repositories                  {"busybox":{"latest":"<top diff ID hex>"}}
//! ```
//!
//! The tar is deterministic: sorted entries, uid/gid 0, fixed mtimes.
//! Layers are streamed from the blob store, decompressed on the fly when
//! stored compressed, and checked against the blob digest and the diff ID
//! as they go; a tar header needs the size first, so a compressed layer is
//! read once more beforehand to count it.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use berth_api::Reference;
use berth_store::{Digest, StoreError};

use super::docker_archive::{ManifestItem, Repositories, MANIFEST_FILE, REPOSITORIES_FILE};
use super::oci_layout::{self as oci, Descriptor, Index, Manifest, Platform, INDEX_FILE};
use super::SaveRequest;
use crate::compression::{self, Compression, HashingReader};
use crate::{ImageConfig, ImageError, ImageStore};

/// What the output errors name as their path.
const OUT: &str = "<save stream>";

/// One image, read from the store.
struct SaveImage {
    id: Digest,
    config: Vec<u8>,
    parsed: ImageConfig,
    refs: Vec<Reference>,
    /// Diff IDs, bottom first.
    layers: Vec<Digest>,
    /// Their chain IDs.
    chain_ids: Vec<String>,
    parent: Option<String>,
}

/// One layer to write: where its blob is and how long its tar is.
struct SaveLayer {
    blob: Digest,
    size: u64,
}

/// What a `blobs/sha256/<hex>` entry holds.
enum Blob<'a> {
    /// Bytes and mtime.
    Bytes(&'a [u8], u64),
    Layer(&'a Digest, &'a SaveLayer),
}

/// The archive's small documents.
struct Documents {
    /// Configs and manifests: hex, bytes, mtime.
    blobs: Vec<(String, Vec<u8>, u64)>,
    index: Index,
    manifest: Vec<ManifestItem>,
    repositories: Repositories,
}

/// Serialised with a newline, as Go's json.Encoder writes it.
fn json_line<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec(v).expect("serialises");
    b.push(b'\n');
    b
}

/// The manifests, `index.json`, `manifest.json` and `repositories` for the
/// images.
fn describe(imgs: &[SaveImage], layers: &BTreeMap<Digest, SaveLayer>) -> Documents {
    let mut docs = Documents {
        blobs: Vec::new(),
        index: Index {
            schema_version: 2,
            media_type: Some(oci::MEDIA_OCI_INDEX.to_string()),
            manifests: Vec::new(),
        },
        manifest: Vec::new(),
        repositories: Repositories::new(),
    };
    let ids: HashSet<&str> = imgs.iter().map(|i| i.id.as_str()).collect();
    for img in imgs {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: oci::MEDIA_OCI_CONFIG.to_string(),
                digest: img.id.to_string(),
                size: img.config.len() as i64,
                ..Default::default()
            },
            layers: img
                .layers
                .iter()
                .map(|d| Descriptor {
                    media_type: oci::MEDIA_OCI_LAYER.to_string(),
                    digest: d.to_string(),
                    size: layers[d].size as i64,
                    ..Default::default()
                })
                .collect(),
        };
        let mbytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let desc = Descriptor {
            media_type: oci::MEDIA_OCI_MANIFEST.to_string(),
            digest: Digest::of(&mbytes).to_string(),
            size: mbytes.len() as i64,
            annotations: BTreeMap::new(),
            platform: (!img.parsed.os.is_empty() && !img.parsed.architecture.is_empty()).then(
                || Platform {
                    architecture: img.parsed.architecture.clone(),
                    os: img.parsed.os.clone(),
                    os_version: None,
                    variant: img.parsed.variant.clone(),
                },
            ),
        };
        // Docker lists only tagged images in index.json; an untagged one
        // gets an entry without names, so OCI readers see it too.
        if img.refs.is_empty() {
            docs.index.manifests.push(desc.clone());
        }
        for r in &img.refs {
            let tag = r.tag().unwrap_or("latest").to_string();
            let mut d = desc.clone();
            d.annotations
                .insert(oci::ANNOTATION_IMAGE_NAME.to_string(), r.to_string());
            d.annotations
                .insert(oci::ANNOTATION_REF_NAME.to_string(), tag.clone());
            docs.index.manifests.push(d);
            if let Some(top) = img.layers.last() {
                docs.repositories
                    .entry(r.familiar_name())
                    .or_default()
                    .insert(tag, top.hex().to_string());
            }
        }
        docs.manifest.push(ManifestItem {
            config: oci::blob_path(img.id.hex()),
            repo_tags: (!img.refs.is_empty())
                .then(|| img.refs.iter().map(|r| r.familiar_string()).collect()),
            layers: img.layers.iter().map(|d| oci::blob_path(d.hex())).collect(),
            parent: img
                .parent
                .clone()
                .filter(|p| ids.contains(p.as_str()) && p != img.id.as_str()),
        });
        let created = u64::try_from(img.parsed.created_unix()).unwrap_or(0);
        docs.blobs
            .push((img.id.hex().to_string(), img.config.clone(), created));
        docs.blobs
            .push((Digest::of(&mbytes).hex().to_string(), mbytes, 0));
    }
    docs
}

impl ImageStore {
    /// Writes one tar holding every requested image (layers shared between
    /// images written once), in the docker-archive layout that Docker 25+
    /// writes: `manifest.json` + `repositories` + an OCI layout with
    /// `index.json` and `blobs/sha256/`. A blob that fails verification
    /// aborts the save with an error (the output is then incomplete).
    pub fn save<W: Write>(&self, images: &[SaveRequest], w: W) -> Result<(), ImageError> {
        let mut lease = self.layers().lease();
        let imgs = self.collect(images, &mut lease)?;
        let layers = self.layer_sources(&imgs)?;
        let docs = describe(&imgs, &layers);

        // Every blob, sorted by name: configs and manifests from memory,
        // layers streamed.
        let mut blobs: BTreeMap<&str, Blob<'_>> = BTreeMap::new();
        for (hex, data, mtime) in &docs.blobs {
            blobs.insert(hex, Blob::Bytes(data, *mtime));
        }
        for (diff, l) in &layers {
            blobs.insert(diff.hex(), Blob::Layer(diff, l));
        }
        let mut out = TarOut { w, written: 0 };
        out.dir("blobs/")?;
        out.dir("blobs/sha256/")?;
        for (hex, b) in &blobs {
            let name = oci::blob_path(hex);
            match b {
                Blob::Bytes(data, mtime) => out.file(&name, data, *mtime)?,
                Blob::Layer(diff, l) => self.write_layer(&mut out, &name, diff, l)?,
            }
        }
        out.file(
            INDEX_FILE,
            &serde_json::to_vec(&docs.index).expect("index serialises"),
            0,
        )?;
        out.file(MANIFEST_FILE, &json_line(&docs.manifest), 0)?;
        out.file(oci::LAYOUT_FILE, oci::LAYOUT_CONTENT.as_bytes(), 0)?;
        if !docs.repositories.is_empty() {
            out.file(REPOSITORIES_FILE, &json_line(&docs.repositories), 0)?;
        }
        out.finish()?;
        drop(lease);
        Ok(())
    }

    /// Each distinct layer of the images: its blob and its tar's length.
    fn layer_sources(&self, imgs: &[SaveImage]) -> Result<BTreeMap<Digest, SaveLayer>, ImageError> {
        let mut layers = BTreeMap::new();
        for img in imgs {
            for (diff, chain) in img.layers.iter().zip(&img.chain_ids) {
                if layers.contains_key(diff) {
                    continue;
                }
                let row = self
                    .meta()
                    .layer(chain)?
                    .ok_or_else(|| ImageError::NotFound(format!("layer {chain}")))?;
                let blob = row
                    .blob_digest
                    .as_deref()
                    .ok_or_else(|| ImageError::NotFound(format!("the stored blob of layer {diff}")))
                    .and_then(|b| Ok(Digest::parse(b)?))?;
                let size = self.layer_tar_size(&blob, diff)?;
                layers.insert(diff.clone(), SaveLayer { blob, size });
            }
        }
        Ok(layers)
    }

    /// The requested images (merged by ID, in request order), each with its
    /// layers leased so they outlive a concurrent delete.
    fn collect(
        &self,
        images: &[SaveRequest],
        lease: &mut crate::layers::Lease,
    ) -> Result<Vec<SaveImage>, ImageError> {
        let mut out: Vec<SaveImage> = Vec::new();
        for req in images {
            let refs: Vec<Reference> = req
                .refs
                .iter()
                .filter(|r| r.digest().is_none())
                .map(|r| {
                    if r.is_name_only() {
                        r.with_tag("latest")
                    } else {
                        Ok(r.clone())
                    }
                })
                .collect::<Result<_, _>>()?;
            // IDs come as `sha256:<hex>`; a bare hex is taken too.
            let full = match req.id.strip_prefix("sha256:") {
                Some(_) => req.id.clone(),
                None => format!("sha256:{}", req.id),
            };
            if let Some(img) = out.iter_mut().find(|i| i.id.as_str() == full) {
                for r in refs {
                    if !img.refs.contains(&r) {
                        img.refs.push(r);
                    }
                }
                continue;
            }
            let id = Digest::parse(&full).map_err(|_| ImageError::NotFound(req.id.clone()))?;
            let row = self
                .meta()
                .image(id.as_str())?
                .ok_or_else(|| ImageError::NotFound(req.id.clone()))?;
            for c in &row.chain_ids {
                lease.add(c);
            }
            let config = self.blobs().read(&id)?;
            let parsed: ImageConfig =
                serde_json::from_slice(&config).map_err(|source| ImageError::BadConfig {
                    digest: id.to_string(),
                    source,
                })?;
            let layers = parsed
                .rootfs
                .diff_ids
                .iter()
                .map(|d| Digest::parse(d))
                .collect::<Result<Vec<_>, _>>()?;
            if row.chain_ids.len() != layers.len() {
                return Err(ImageError::NotFound(format!("layers of image {id}")));
            }
            let mut unique = Vec::new();
            for r in refs {
                if !unique.contains(&r) {
                    unique.push(r);
                }
            }
            out.push(SaveImage {
                id,
                config,
                parsed,
                refs: unique,
                layers,
                chain_ids: row.chain_ids,
                parent: row.parent,
            });
        }
        Ok(out)
    }

    /// The length of a layer's uncompressed tar. A plain blob is its own
    /// size; a compressed one is read through (and its diff ID checked).
    fn layer_tar_size(&self, blob: &Digest, diff: &Digest) -> Result<u64, ImageError> {
        let mut raw = self.blobs().reader(blob)?;
        let (comp, plain) = compression::decompress(&mut raw).map_err(|e| read_err(blob, e))?;
        if comp == Compression::None {
            drop(plain);
            return Ok(self.blobs().size(blob)?);
        }
        let mut h = HashingReader::new(plain);
        io::copy(&mut h, &mut io::sink()).map_err(|e| read_err(blob, e))?;
        let size = HashingReader::bytes(&h);
        check_diff(diff, &h.digest())?;
        drop(h);
        io::copy(&mut raw, &mut io::sink()).map_err(|e| read_err(blob, e))?;
        Ok(size)
    }

    /// Streams one layer into the tar, checking it as it goes.
    fn write_layer<W: Write>(
        &self,
        out: &mut TarOut<W>,
        name: &str,
        diff: &Digest,
        l: &SaveLayer,
    ) -> Result<(), ImageError> {
        let mut raw = self.blobs().reader(&l.blob)?;
        let (_, plain) = compression::decompress(&mut raw).map_err(|e| read_err(&l.blob, e))?;
        let mut h = HashingReader::new(plain);
        out.stream(name, l.size, 0, &mut h, &l.blob)?;
        check_diff(diff, &h.digest())?;
        drop(h);
        // The rest of the blob: its digest is checked at its end.
        io::copy(&mut raw, &mut io::sink()).map_err(|e| read_err(&l.blob, e))?;
        Ok(())
    }
}

fn check_diff(diff: &Digest, got: &str) -> Result<(), ImageError> {
    if diff.as_str() != got {
        return Err(ImageError::Store(StoreError::DigestMismatch {
            expected: diff.to_string(),
            actual: got.to_string(),
        }));
    }
    Ok(())
}

/// A read error of a stored blob: a digest mismatch comes back as such.
fn read_err(blob: &Digest, e: io::Error) -> ImageError {
    if e.get_ref().is_some_and(|i| i.is::<StoreError>()) {
        if let Some(Ok(se)) = e.into_inner().map(|i| i.downcast::<StoreError>()) {
            return ImageError::Store(*se);
        }
        return ImageError::io(
            "read",
            PathBuf::from(blob.to_string()),
            io::Error::other("read failed"),
        );
    }
    ImageError::io("read", PathBuf::from(blob.to_string()), e)
}

/// A minimal tar writer: ustar headers, uid/gid 0, given mtimes, exact sizes.
struct TarOut<W> {
    w: W,
    written: u64,
}

impl<W: Write> TarOut<W> {
    fn put(&mut self, data: &[u8]) -> Result<(), ImageError> {
        self.w
            .write_all(data)
            .map_err(|e| ImageError::io("write", OUT, e))?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn header(
        &mut self,
        name: &str,
        size: u64,
        mode: u32,
        mtime: u64,
        kind: tar::EntryType,
    ) -> Result<(), ImageError> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)
            .map_err(|e| ImageError::io("write", OUT, e))?;
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_entry_type(kind);
        h.set_cksum();
        self.put(h.as_bytes())
    }

    fn pad(&mut self) -> Result<(), ImageError> {
        let rem = (self.written % 512) as usize;
        if rem != 0 {
            self.put(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    fn dir(&mut self, name: &str) -> Result<(), ImageError> {
        self.header(name, 0, 0o755, 0, tar::EntryType::Directory)
    }

    fn file(&mut self, name: &str, data: &[u8], mtime: u64) -> Result<(), ImageError> {
        self.header(
            name,
            data.len() as u64,
            0o644,
            mtime,
            tar::EntryType::Regular,
        )?;
        self.put(data)?;
        self.pad()
    }

    /// Writes exactly `size` bytes of `r` as a file; `r` must end there.
    fn stream(
        &mut self,
        name: &str,
        size: u64,
        mtime: u64,
        r: &mut dyn Read,
        blob: &Digest,
    ) -> Result<(), ImageError> {
        self.header(name, size, 0o644, mtime, tar::EntryType::Regular)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = size;
        loop {
            let want = buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX))
                .max(1);
            let n = match r.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(blob, e)),
            };
            if n == 0 {
                break;
            }
            if n as u64 > left {
                return Err(ImageError::io(
                    "read",
                    PathBuf::from(blob.to_string()),
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("layer is longer than {size} bytes"),
                    ),
                ));
            }
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        if left != 0 {
            return Err(ImageError::io(
                "read",
                PathBuf::from(blob.to_string()),
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("layer is shorter than {size} bytes"),
                ),
            ));
        }
        self.pad()
    }

    fn finish(mut self) -> Result<(), ImageError> {
        self.put(&[0u8; 1024])?;
        self.w.flush().map_err(|e| ImageError::io("write", OUT, e))
    }
}
