//! What pulls and pushes need from the store: layers ingested straight from
//! a registry stream (blob kept, content unpacked and verified in the same
//! pass), configs stored against their digest, and layer blobs ready to
//! upload, compressed once and remembered.

use std::io::{self, Read, Write};

use berth_store::{Digest, LayerState, StoreError};

use crate::compression::{self, Compression};
use crate::layers::Lease;
use crate::pipe;
use crate::unpack::UnpackOptions;
use crate::{ImageError, ImageStore};

/// Threads compressing one layer for a push.
const MAX_COMPRESS_THREADS: usize = 4;

/// Keeps the layers of a pull or push in progress from garbage collection
/// until dropped (the image row that will refer to them does not exist
/// yet).
#[derive(Debug)]
pub struct LayerLease(Lease);

/// A layer blob as it will be uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its length.
    pub size: u64,
    /// How it is compressed.
    pub compression: Compression,
}

/// Copies everything read into the blob being written.
struct Tee<'a, R> {
    inner: R,
    blob: &'a mut berth_store::BlobWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.blob.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl ImageStore {
    /// A new lease for the layers of one pull or push.
    pub fn lease_layers(&self) -> LayerLease {
        LayerLease(self.layers().lease())
    }

    /// Whether layer `chain` is unpacked (and leased from now on). Layers
    /// present are never downloaded again.
    pub fn has_layer(&self, lease: &mut LayerLease, chain: &str) -> Result<bool, ImageError> {
        lease.0.add(chain);
        Ok(self
            .meta()
            .layer(chain)?
            .is_some_and(|r| r.state == LayerState::Ready))
    }

    /// Ingests one layer blob as it streams in: the raw bytes go to the blob
    /// store while they are decompressed, hashed and unpacked through the
    /// safe unpacker. The blob must hash to `blob_digest` and its content
    /// to `diff_id` (from the already-verified config), or nothing of it
    /// is kept. A registry layer may not carry device nodes.
    pub fn ingest_layer<R: Read + Send>(
        &self,
        lease: &mut LayerLease,
        raw: R,
        parent: Option<&str>,
        diff_id: &str,
        blob_digest: &str,
    ) -> Result<(), ImageError> {
        let expected = Digest::parse(blob_digest)?;
        let mut blob = self.blobs().writer()?;
        // Two threads: this one keeps the blob and inflates, the other
        // hashes and unpacks what comes out; one core each.
        let (w, plain) = pipe::pipe();
        let blob_ref = &mut blob;
        let (unpacked, raw_side) = std::thread::scope(|s| {
            let raw_side = s.spawn(move || -> io::Result<Compression> {
                let mut tee = Tee {
                    inner: raw,
                    blob: blob_ref,
                };
                let (comp, mut inflated) = compression::decompress(&mut tee)?;
                if pipe::pump(&mut inflated, w) {
                    // The blob may go on after the compressed stream's end
                    // (padding): the whole blob is kept and verified.
                    drop(inflated);
                    io::copy(&mut tee, &mut io::sink())?;
                }
                Ok(comp)
            });
            // A plain tar now: unpack detects no compression.
            let unpacked = self.layers().unpack(
                &mut lease.0,
                plain,
                parent,
                Some(diff_id),
                &UnpackOptions::default(),
            );
            (unpacked, raw_side.join())
        });
        let comp = raw_side
            .unwrap_or_else(|_| Err(io::Error::other("layer reader panicked")))
            .map_err(|e| ImageError::BadArchive(format!("reading layer {blob_digest}: {e}")));
        let (layer, _) = unpacked?;
        let comp = comp?;
        let (d, _) = blob.commit(Some(&expected))?;
        if !layer.existed || layer.row.blob_digest.is_none() {
            self.meta().set_layer_blob(
                &layer.row.chain_id,
                d.as_str(),
                crate::layer_media_type(comp),
            )?;
        }
        Ok(())
    }

    /// Stores an image config fetched from a registry; it must hash to
    /// `expected` and parse as a config.
    pub fn store_config(&self, data: &[u8], expected: &str) -> Result<Digest, ImageError> {
        let exp = Digest::parse(expected)?;
        let got = Digest::of(data);
        if got != exp {
            return Err(ImageError::Store(StoreError::DigestMismatch {
                expected: exp.to_string(),
                actual: got.to_string(),
            }));
        }
        serde_json::from_slice::<crate::ImageConfig>(data).map_err(|source| {
            ImageError::BadConfig {
                digest: expected.to_string(),
                source,
            }
        })?;
        Ok(self.blobs().put(data)?)
    }

    /// The blob to upload for layer `chain`. A layer stored uncompressed
    /// (loaded or imported from a plain tar) is gzip-compressed once and the
    /// compressed blob replaces the plain one, so the next push (and save)
    /// reuses it instead of compressing again.
    pub fn push_blob(&self, chain: &str) -> Result<PushBlob, ImageError> {
        let row = self
            .meta()
            .layer(chain)?
            .filter(|r| r.state == LayerState::Ready)
            .ok_or_else(|| ImageError::NotFound(format!("layer {chain}")))?;
        let blob = row
            .blob_digest
            .as_deref()
            .ok_or_else(|| ImageError::NotFound(format!("the stored blob of layer {chain}")))?;
        let d = Digest::parse(blob)?;
        let mut head = [0u8; 4];
        let n = {
            let mut f = std::fs::File::open(self.blobs().path(&d))
                .map_err(|e| ImageError::io("open", self.blobs().path(&d), e))?;
            crate::compression::read_full(&mut f, &mut head)
                .map_err(|e| ImageError::io("read", self.blobs().path(&d), e))?
        };
        let comp = Compression::detect(&head[..n]);
        if comp != Compression::None {
            let size = self.blobs().size(&d)?;
            return Ok(PushBlob {
                digest: d,
                size,
                compression: comp,
            });
        }
        // Compress while verifying the plain blob, on every core: a layer
        // is most of a first push, and one deflate stream runs on one core.
        // Level fast, as before: near a registry deflate is the bottleneck,
        // and Docker's default level 6 takes ~3.5x the time to be ~20%
        // smaller (zlib-rs on a tar of shared libraries).
        // At most a few per layer: several layers are pushed at once, and
        // each thread holds a few MiB of blocks.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_COMPRESS_THREADS);
        let mut out = self.blobs().writer()?;
        {
            let src = self.blobs().reader(&d)?;
            compression::gzip_parallel(src, &mut out, flate2::Compression::fast(), threads)
                .map_err(|e| ImageError::io("compress", self.blobs().path(&d), e))?;
        }
        let (gzd, size) = out.commit(None)?;
        // The plain blob was verified as it was read and every gzip member
        // inflated back to its input, so when the plain blob is the diff
        // ID itself the compressed one unpacks to it: no second pass.
        let check = if d.as_str() == row.diff_id {
            Ok(row.diff_id.clone())
        } else {
            (|| -> io::Result<String> {
                let f = self.blobs().reader(&gzd).map_err(io::Error::other)?;
                let (_, plain) = compression::decompress(f)?;
                let mut h = compression::HashingReader::new(plain);
                io::copy(&mut h, &mut io::sink())?;
                Ok(h.digest())
            })()
        };
        match check {
            Ok(got) if got == row.diff_id => {}
            other => {
                let _ = self.blobs().delete(&gzd);
                return Err(ImageError::BadArchive(format!(
                    "layer {chain}: compressed copy does not match its diff ID ({other:?})"
                )));
            }
        }
        self.meta().set_layer_blob(
            chain,
            gzd.as_str(),
            crate::layer_media_type(Compression::Gzip),
        )?;
        if !self.meta().blob_referenced(d.as_str())? {
            self.blobs().delete(&d)?;
        }
        Ok(PushBlob {
            digest: gzd,
            size,
            compression: Compression::Gzip,
        })
    }
}
