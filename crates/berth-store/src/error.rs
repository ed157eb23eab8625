//! Errors of the store.

use std::path::PathBuf;

/// Everything that can go wrong in the blob store or the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A digest string that is not `sha256:<64 hex>`.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    /// Content did not hash to the digest it was declared with.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the caller or manifest promised.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// No blob with that digest.
    #[error("blob {0} not found")]
    BlobNotFound(String),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database refused an operation.
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A row that must be unique already exists (a container name, a tag).
    #[error("{0} already exists")]
    Conflict(String),
    /// A row that was asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
}

impl StoreError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> StoreError {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
