//! The daemon's one error type and its mapping to Docker's HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::system::ErrorResponse;
use berth_image::ImageError;
use berth_runtime::RuntimeError;
use berth_store::StoreError;

/// Every error a request can end in. User errors carry Docker's text;
/// internal ones are logged and reported as 500.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 304 (already started / already stopped).
    #[error("not modified")]
    NotModified,
    /// 500 with a message the user should see.
    #[error("{0}")]
    Internal(String),
    /// 501.
    #[error("{0}")]
    NotImplemented(String),
    /// Image layer failures.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Runtime failures.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Store failures.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DaemonError {
    /// Docker's status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            DaemonError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DaemonError::NotFound(_) => StatusCode::NOT_FOUND,
            DaemonError::Conflict(_) => StatusCode::CONFLICT,
            DaemonError::Forbidden(_) => StatusCode::FORBIDDEN,
            DaemonError::NotModified => StatusCode::NOT_MODIFIED,
            DaemonError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DaemonError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            DaemonError::Image(e) => match e {
                ImageError::NotFound(_) => StatusCode::NOT_FOUND,
                ImageError::InvalidReference(_)
                | ImageError::Ambiguous(_)
                | ImageError::BadChange(_)
                | ImageError::BadArchive(_)
                | ImageError::Unpack(_) => StatusCode::BAD_REQUEST,
                ImageError::Conflict(_) => StatusCode::CONFLICT,
                ImageError::Store(StoreError::DigestMismatch { .. }) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            DaemonError::Runtime(e) => match e {
                RuntimeError::NoSuchUser(_) | RuntimeError::NoSuchGroup(_) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            DaemonError::Store(e) => match e {
                StoreError::Conflict(_) => StatusCode::CONFLICT,
                StoreError::NotFound(_) | StoreError::BlobNotFound(_) => StatusCode::NOT_FOUND,
                StoreError::InvalidDigest(_) | StoreError::DigestMismatch { .. } => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for DaemonError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        let message = self.to_string();
        if status.is_server_error() {
            tracing::error!("{message}");
        } else {
            tracing::debug!(status = status.as_u16(), "{message}");
        }
        (status, axum::Json(ErrorResponse { message })).into_response()
    }
}

/// Result of a handler or core operation.
pub(crate) type Result<T, E = DaemonError> = std::result::Result<T, E>;
