//! The docker-archive format, what `docker save` writes and `docker load`
//! reads.
//!
//! ```text
//! manifest.json   [{"Config": "<path>", "RepoTags": ["busybox:latest"],
//!                   "Layers": ["<path>", ...], "Parent": "sha256:..."}]
//! repositories    {"busybox": {"latest": "<top layer id>"}}   (legacy)
//! ```
//!
//! Before Docker 25 the paths are `<config-hex>.json` and `<v1-id>/layer.tar`
//! (with `VERSION` and a v1 `json` beside each layer, and
//! `<id>/layer.tar -> ../<other>/layer.tar` symlinks for repeated layers).
//! From Docker 25 on the archive is an OCI image layout as well, and the
//! paths point into it: `blobs/sha256/<hex>`, where a layer is its
//! uncompressed tar, named by its diff ID.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Name of the manifest file.
pub(crate) const MANIFEST_FILE: &str = "manifest.json";
/// Name of the legacy repositories file.
pub(crate) const REPOSITORIES_FILE: &str = "repositories";

/// One image in `manifest.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ManifestItem {
    /// Path of the config in the archive.
    pub(crate) config: String,
    /// Familiar `name:tag` references; Docker writes `null` for none.
    #[serde(default)]
    pub(crate) repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars (plain or compressed), bottom first.
    #[serde(default)]
    pub(crate) layers: Vec<String>,
    /// The image's parent, when it is in the same archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<String>,
}

/// `repositories`: familiar name → tag → top layer ID (hex).
pub(crate) type Repositories = BTreeMap<String, BTreeMap<String, String>>;
