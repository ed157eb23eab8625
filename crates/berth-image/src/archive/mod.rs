//! Image archives: [`ImageStore::load`] and [`ImageStore::save`].
//!
//! Two formats come in, one goes out:
//!
//! - docker-archive ([`docker_archive`]): what `docker save` writes,
//!   `manifest.json` + `repositories` + configs and layer tars, in the old
//!   `<id>/layer.tar` layout or the Docker 25+ one where every path is a
//!   `blobs/sha256/<hex>` of an OCI layout;
//! - OCI image layout ([`oci_layout`]): `oci-layout` + `index.json` +
//!   `blobs/sha256/`, with nested indexes, OCI or Docker manifests and
//!   plain, gzip or zstd layers.
//!
//! `save` writes the Docker 25+ layout, which is both. `load` treats the
//! archive as untrusted: see [`stage`] for how the tar is read and
//! [`load`] for what is checked before anything is added.

mod docker_archive;
mod load;
mod oci_layout;
mod save;
mod stage;

#[cfg(test)]
mod tests;

use berth_api::Reference;

/// One image to write into an archive: its ID and the references to record
/// (empty when the user named it by ID).
#[derive(Debug, Clone)]
pub struct SaveRequest {
    /// `sha256:<hex>`.
    pub id: String,
    /// Tags to record (`busybox` means `busybox:latest`; digest references
    /// are not recorded, as in Docker).
    pub refs: Vec<Reference>,
}

/// What `load` added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// `sha256:<hex>`.
    pub id: String,
    /// The references it was tagged with (full form).
    pub refs: Vec<Reference>,
}
