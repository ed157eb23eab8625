//! The spec's error responses: a status, a code from the spec's table and
//! a JSON body `{"errors":[{"code","message","detail"}]}`. User errors go
//! back as they are; internal ones are logged and answered with a bare 500
//! so that no path or OS error leaks to clients.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::names::Digest;

/// One error response of the distribution API.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// Boxed: errors are rare, results that carry them are everywhere.
    extra: Box<Extra>,
}

#[derive(Debug, Default)]
struct Extra {
    detail: Option<Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Further errors of the same response (one per missing blob, say).
    more: Vec<Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: Box::default(),
        }
    }

    pub(crate) fn detail(mut self, detail: Value) -> Self {
        self.extra.detail = Some(detail);
        self
    }

    /// Adds a response header; values that are not valid header text are
    /// dropped (they come from our own formatting, never from clients).
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.extra.headers.push((name, v));
        }
        self
    }

    pub(crate) fn blob_unknown(d: &Digest) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .detail(json!({ "digest": d.to_string() }))
    }

    pub(crate) fn upload_unknown(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        )
        .detail(json!({ "uuid": id }))
    }

    pub(crate) fn upload_invalid(status: StatusCode, why: impl Into<String>) -> Self {
        Self::new(status, "BLOB_UPLOAD_INVALID", why)
    }

    pub(crate) fn digest_invalid(why: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", why)
    }

    pub(crate) fn manifest_invalid(why: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", why)
    }

    /// One MANIFEST_BLOB_UNKNOWN error per digest (at least one).
    pub(crate) fn manifest_blob_unknown(missing: &[Digest]) -> Self {
        let message = "manifest references a manifest or blob unknown to registry";
        let mut e = Self::new(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", message);
        for (i, d) in missing.iter().enumerate() {
            let detail = json!({ "digest": d.to_string() });
            if i == 0 {
                e.extra.detail = Some(detail);
            } else {
                e.extra
                    .more
                    .push(json!({ "code": e.code, "message": message, "detail": detail }));
            }
        }
        e
    }

    pub(crate) fn manifest_unknown(reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown to registry",
        )
        .detail(json!({ "reference": reference }))
    }

    pub(crate) fn name_invalid(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
        )
        .detail(json!({ "name": name }))
    }

    pub(crate) fn name_unknown(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        )
        .detail(json!({ "name": name }))
    }

    pub(crate) fn tag_invalid(tag: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "TAG_INVALID", "invalid tag")
            .detail(json!({ "tag": tag }))
    }

    pub(crate) fn size_invalid(why: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SIZE_INVALID", why)
    }

    pub(crate) fn denied(why: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "DENIED", why)
    }

    pub(crate) fn unsupported(status: StatusCode, why: impl Into<String>) -> Self {
        Self::new(status, "UNSUPPORTED", why)
    }

    /// A failure of ours: logged here with its cause, answered as a bare 500.
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal server error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = json!({ "code": self.code, "message": self.message });
        let extra = *self.extra;
        if let Some(d) = extra.detail {
            err["detail"] = d;
        }
        let mut errors = vec![err];
        errors.extend(extra.more);
        let body = json!({ "errors": errors }).to_string();
        let mut resp = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        for (k, v) in extra.headers {
            resp.headers_mut().append(k, v);
        }
        resp
    }
}

impl From<crate::RegistryError> for ApiError {
    fn from(e: crate::RegistryError) -> Self {
        ApiError::internal(e)
    }
}
