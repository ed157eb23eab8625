//! The OCI image layout (image-spec `image-layout.md`) and the JSON documents
//! found in it: `oci-layout`, `index.json`, image indexes and manifests.
//!
//! ```text
//! oci-layout                {"imageLayoutVersion":"1.0.0"}
//! index.json                an image index: descriptors of manifests (or of
//!                           nested indexes), named by annotations
//! blobs/sha256/<hex>        every blob (configs, layers, manifests, indexes),
//!                           named by the sha256 of its bytes
//! ```
//!
//! Docker's own manifest and manifest-list media types are read as their OCI
//! twins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Name of the layout marker file.
pub(crate) const LAYOUT_FILE: &str = "oci-layout";
/// Its content (what Docker writes, byte for byte).
pub(crate) const LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion": "1.0.0"}"#;
/// Name of the top-level index.
pub(crate) const INDEX_FILE: &str = "index.json";

/// OCI image index.
pub(crate) const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub(crate) const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub(crate) const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer.
pub(crate) const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker manifest list.
pub(crate) const MEDIA_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub(crate) const MEDIA_DOCKER_MANIFEST: &str =
    "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub(crate) const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// containerd's annotation: the full image reference.
pub(crate) const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI's annotation: the reference name, by the spec a tag only.
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// BuildKit marks attestation manifests in an index with this annotation.
pub(crate) const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// True for the media types of an index (OCI or Docker manifest list).
pub(crate) fn is_index_type(m: &str) -> bool {
    m == MEDIA_OCI_INDEX || m == MEDIA_DOCKER_LIST
}

/// True for the media types of an image manifest (OCI or Docker schema 2).
pub(crate) fn is_manifest_type(m: &str) -> bool {
    m == MEDIA_OCI_MANIFEST || m == MEDIA_DOCKER_MANIFEST
}

/// True for the media types of an image config.
pub(crate) fn is_config_type(m: &str) -> bool {
    m == MEDIA_OCI_CONFIG || m == MEDIA_DOCKER_CONFIG
}

/// True for the media types of a layer tar (plain, gzip or zstd; OCI,
/// non-distributable or Docker).
pub(crate) fn is_layer_type(m: &str) -> bool {
    matches!(
        m,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// A content descriptor. Field order is Go's, so what berth writes looks
/// like what Docker writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<Platform>,
}

/// The platform an index entry is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) variant: Option<String>,
}

/// An image index (`index.json`, or a nested index blob).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Index {
    #[serde(rename = "schemaVersion", default)]
    pub(crate) schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    #[serde(default)]
    pub(crate) manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    pub(crate) schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    pub(crate) config: Descriptor,
    #[serde(default)]
    pub(crate) layers: Vec<Descriptor>,
}

/// Enough of a blob to tell an index from a manifest when the descriptor
/// that points at it has no media type.
#[derive(Debug, Deserialize)]
pub(crate) struct Sniff {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: Option<String>,
    #[serde(default)]
    pub(crate) manifests: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) config: Option<serde_json::Value>,
}

/// The blob path of a digest inside a layout: `blobs/sha256/<hex>`.
pub(crate) fn blob_path(hex: &str) -> String {
    format!("blobs/sha256/{hex}")
}
