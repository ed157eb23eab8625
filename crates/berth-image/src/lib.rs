//! Images on disk: the image config format, layers unpacked once per chain ID
//! into short-named directories, overlay mounts for containers, and the ways
//! images come in and go out (import, load, save).
//!
//! The main type is [`ImageStore`]: it owns the blob store, the metadata
//! database's image/layer/tag tables and the `layers/` directory.

mod archive;
pub mod changes;
mod commit;
pub mod compression;
pub mod config;
pub mod diff;
mod distribution;
mod error;
mod import;
mod layers;
pub mod mount;
mod pipe;
pub mod rootpath;
mod store;
pub mod unpack;

pub use archive::{LoadedImage, SaveRequest};
pub use commit::{upper_has_changes, write_upper_tar, CommitRequest};
pub use config::{History, ImageConfig, RootFsConfig};
pub use distribution::{LayerLease, PushBlob};
pub use error::ImageError;
pub use import::{host_arch, layer_media_type, ImportOptions};
pub use layers::chain_ids;
pub use store::{DeleteOutcome, ImageStore, ImageUser, ResolvedImage};

/// Test data shared by the modules' tests.
#[cfg(test)]
pub(crate) mod testdata {
    /// `len` bytes of xorshift noise from `seed` (not 0): no compressor
    /// shrinks it, no format parses it.
    pub(crate) fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }
}
