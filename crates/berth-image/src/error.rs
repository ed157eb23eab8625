//! Errors of image handling.

use berth_store::StoreError;

/// What can go wrong with images; each variant names the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image matches the name or ID.
    #[error("No such image: {0}")]
    NotFound(String),
    /// An image reference that does not parse.
    #[error("{0}")]
    InvalidReference(#[from] berth_api::ReferenceError),
    /// An ID prefix that matches several images.
    #[error("ambiguous image ID prefix {0}: it matches several images")]
    Ambiguous(String),
    /// The image is in use and cannot be removed.
    #[error("{0}")]
    Conflict(String),
    /// A layer tar that could not be unpacked.
    #[error("{0}")]
    Unpack(#[from] crate::unpack::UnpackError),
    /// A bad `--change` instruction.
    #[error("{0}")]
    BadChange(String),
    /// An archive (load) that is not what it claims.
    #[error("{0}")]
    BadArchive(String),
    /// A config blob that is not JSON of the right shape.
    #[error("invalid image config {digest}: {source}")]
    BadConfig {
        /// Which config.
        digest: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<std::path::PathBuf>,
        source: std::io::Error,
    ) -> ImageError {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
