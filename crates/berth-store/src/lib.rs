//! berth's storage: a content-addressed blob store ([`BlobStore`]) and the
//! metadata database ([`Metadata`]) that is the truth about images, tags,
//! layers and containers.
//!
//! Blobs are written to a temp file, fsynced, verified against their sha256
//! and renamed into `blobs/sha256/<hex>`, so a blob exists whole and verified
//! or not at all. The database (SQLite, WAL) is changed in transactions; files
//! are created before the rows that name them and removed after, so at start
//! [`Metadata::repair`] plus a sweep of what has no row restores a clean state
//! after a crash at any point.

mod blobs;
mod db;
mod digest;
mod error;

pub use blobs::{BlobStore, BlobWriter, VerifyingReader};
pub use db::{
    ContainerRow, EndpointRow, ImageRow, LayerRow, LayerState, Metadata, NetworkRow, VolumeRow,
};
pub use digest::Digest;
pub use error::StoreError;
