//! `import`: a root filesystem tarball becomes a one-layer image.

use std::io::{Read, Write};

use berth_api::container::ContainerConfig;
use berth_api::Reference;

use crate::compression::Compression;
use crate::unpack::UnpackOptions;
use crate::{changes, History, ImageConfig, ImageError, ImageStore, RootFsConfig};

/// Options of `import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// `--message`; the history comment is "Imported from SOURCE" without it.
    pub message: Option<String>,
    /// Where the tarball came from ("-" for the request body).
    pub source: String,
    /// `REPOSITORY[:TAG]` to tag the image with.
    pub tag: Option<Reference>,
}

/// Media type of a layer blob in a given compression.
pub fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// The architecture name images use for this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Copies everything read into a writer as well (the blob being stored).
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
    /// Imports a tarball (plain, gzip or zstd) as a new image; returns its ID.
    pub fn import<R: Read>(&self, r: R, opts: &ImportOptions) -> Result<String, ImageError> {
        // Change instructions are checked before any byte is stored.
        let mut config = ContainerConfig::default();
        changes::apply_changes(&opts.changes, &mut config)?;

        let mut blob = self.blobs().writer()?;
        let mut lease = self.layers().lease();
        let (layer, comp) = {
            let tee = Tee {
                inner: r,
                copy: &mut blob,
            };
            // A rootfs tarball made by the user may carry device nodes, as
            // `docker import` allows; layers from registries may not.
            let uopts = UnpackOptions {
                allow_device_nodes: true,
                ..Default::default()
            };
            self.layers().unpack(&mut lease, tee, None, None, &uopts)?
        };
        if !layer.existed || layer.row.blob_digest.is_none() {
            let (digest, _) = blob.commit(None)?;
            self.meta().set_layer_blob(
                &layer.row.chain_id,
                digest.as_str(),
                layer_media_type(comp),
            )?;
        }

        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", opts.source));
        let mut image = ImageConfig {
            architecture: host_arch().to_string(),
            os: "linux".into(),
            created: Some(now.clone()),
            config: Some(config),
            rootfs: RootFsConfig {
                kind: "layers".into(),
                diff_ids: vec![layer.row.diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                comment: Some(comment.clone()),
                ..Default::default()
            }],
            ..Default::default()
        };
        image
            .extra
            .insert("comment".into(), serde_json::Value::String(comment));
        let digest = self.blobs().put(&image.to_bytes())?;
        let tags: Vec<Reference> = opts.tag.iter().cloned().collect();
        self.add_image(&digest, None, &tags)
    }
}
