//! Errors of the runtime layer.

use std::path::PathBuf;

/// What can go wrong starting or talking to a container's shim.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The container process could not be created; the text is the runtime's.
    #[error("{0}")]
    Create(String),
    /// A user or group in `--user` that the image does not define.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    /// A group name that the image does not define.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    /// The shim stopped talking or talked nonsense.
    #[error("shim of container {id}: {message}")]
    Shim {
        /// The container.
        id: String,
        /// What happened.
        message: String,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The generated OCI spec did not validate.
    #[error("invalid OCI spec: {0}")]
    Spec(String),
}

impl RuntimeError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> RuntimeError {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
