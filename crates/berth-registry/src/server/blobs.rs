//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.
//!
//! Over plain HTTP, blob bodies go from the file to the socket by
//! `sendfile` (sendfile.rs). Over TLS, where the bytes must pass through
//! user memory to be encrypted, they are read in 256 KiB positional reads
//! on the blocking pool, each straight into the buffer hyper sends (no copy
//! in between), the next one read while the last is sent; so memory stays
//! flat however many downloads run at once (two chunks each: 50 parallel
//! GETs hold ~25 MiB). The buffers come back to a small pool when hyper
//! drops them: fresh 256 KiB buffers would cost a page fault per 4 KiB,
//! more than the copy saved. A single `Range` (`bytes=a-b`, `a-`, `-n`) is
//! answered with 206 and `Content-Range`, an unsatisfiable one with 416. A
//! blob deleted by gc while it is being read stays readable to the end (the
//! open file keeps it). DELETE only unlinks the blob from the repository;
//! its content goes when gc finds nothing else uses it.

use std::fs::File;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use tokio::task::JoinHandle;

use super::errors::ApiError;
use super::names::{decimal, Digest};
use super::storage::blocking;
use super::Ctx;

/// Read size of blob downloads: large reads keep syscalls and wake-ups
/// few; it is also the memory each download holds.
const READ_CHUNK: usize = 256 * 1024;

pub(crate) const DIGEST_HEADER: &str = "docker-content-digest";

/// Parses a digest from a URL or query, 400 DIGEST_INVALID otherwise.
pub(crate) fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).ok_or_else(|| {
        ApiError::digest_invalid("invalid digest or unsupported algorithm (sha256, sha512)")
            .detail(serde_json::json!({ "digest": s }))
    })
}

pub(crate) async fn handle(ctx: &Ctx, name: &str, digest: &str) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    if ctx.method == Method::DELETE {
        return delete(ctx, name, d).await;
    }
    get(ctx, name, d).await
}

async fn get(ctx: &Ctx, name: &str, d: Digest) -> Result<Response, ApiError> {
    let store = ctx.st.store.clone();
    let (n, dd) = (name.to_owned(), d.clone());
    let touch = ctx.method == Method::HEAD && !ctx.st.read_only;
    let found = blocking(move || {
        let Some((path, _)) = store.repo_blob(&n, &dd)? else {
            return Ok(None);
        };
        // A push asks HEAD before it decides not to upload a blob: that
        // counts as a use, so gc's grace period covers the push's end.
        if touch {
            store.touch_blob(&dd)?;
        }
        match std::fs::File::open(&path) {
            Ok(f) => {
                let size = f
                    .metadata()
                    .map_err(|e| crate::RegistryError::io(&path, e))?
                    .len();
                Ok(Some((f, size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::RegistryError::io(path, e)),
        }
    })
    .await?;
    let Some((file, size)) = found else {
        return Err(ApiError::blob_unknown(&d));
    };
    let base = || {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(DIGEST_HEADER, d.to_string())
            .header(header::ETAG, format!("\"{d}\""))
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CACHE_CONTROL, "max-age=31536000")
    };
    let range = ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len) = match parse_range(range, size) {
        Range::Full => (StatusCode::OK, 0, size),
        Range::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Range::Unsatisfiable => {
            return Ok(Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .expect("response"));
        }
    };
    let mut resp = base().status(status).header(header::CONTENT_LENGTH, len);
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    if ctx.method == Method::HEAD {
        return Ok(resp.body(Body::empty()).expect("response"));
    }
    let body = match &ctx.sendfile {
        Some(slot) => Body::from_stream(slot.body(file, start, len)),
        None => Body::from_stream(file_stream(file, start, len)),
    };
    Ok(resp.body(body).expect("response"))
}

type Read = JoinHandle<std::io::Result<Bytes>>;

/// Read buffers kept for reuse (16 MiB at most).
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const POOL_MAX: usize = 64;

/// A read buffer lent to hyper; back to [`POOL`] when hyper drops it.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() == READ_CHUNK {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL_MAX {
                pool.push(v);
            }
        }
    }
}

/// Reads `n` (at most [`READ_CHUNK`]) bytes at `offset` on the blocking
/// pool.
fn read_chunk(file: &Arc<File>, offset: u64, n: usize) -> Read {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        let reuse = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut v = reuse.unwrap_or_else(|| Vec::with_capacity(READ_CHUNK));
        v.clear();
        while v.len() < n {
            let at = offset + v.len() as u64;
            // Into the spare capacity: no zeroing, no second copy.
            let got = rustix::io::pread(&*file, rustix::buffer::spare_capacity(&mut v), at)?;
            if got == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        v.truncate(n);
        Ok(Bytes::from_owner(Pooled(v)))
    })
}

/// `len` bytes of `file` from `start`, a chunk read ahead of the one
/// being sent.
fn file_stream(
    file: File,
    start: u64,
    len: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    let file = Arc::new(file);
    let chunk = |left: u64| left.min(READ_CHUNK as u64) as usize;
    let first = (len > 0).then(|| read_chunk(&file, start, chunk(len)));
    futures_util::stream::unfold(
        (file, start, len, first),
        move |(file, offset, left, pending)| async move {
            let pending = pending?;
            let bytes = match pending.await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => return Some((Err(e), (file, offset, 0, None))),
                Err(e) => return Some((Err(std::io::Error::other(e)), (file, offset, 0, None))),
            };
            let (offset, left) = (offset + bytes.len() as u64, left - bytes.len() as u64);
            let next = (left > 0).then(|| read_chunk(&file, offset, chunk(left)));
            Some((Ok(bytes), (file, offset, left, next)))
        },
    )
}

async fn delete(ctx: &Ctx, name: &str, d: Digest) -> Result<Response, ApiError> {
    let store = ctx.st.store.clone();
    let (n, dd) = (name.to_owned(), d.clone());
    let (known, removed) =
        blocking(move || Ok((store.repo_exists(&n), store.unlink_layer(&n, &dd)?))).await?;
    if !known {
        return Err(ApiError::name_unknown(name));
    }
    if !removed {
        return Err(ApiError::blob_unknown(&d));
    }
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(DIGEST_HEADER, d.to_string())
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("response"))
}

#[derive(Debug, PartialEq)]
enum Range {
    Full,
    /// Inclusive first and last byte.
    Part(u64, u64),
    Unsatisfiable,
}

/// One byte range of RFC 9110; several ranges or other units are served
/// whole (allowed: a server may ignore `Range`). A reversed range is 416,
/// as the spec's conformance suite expects.
fn parse_range(h: Option<&str>, size: u64) -> Range {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Full;
    };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Full;
    };
    match (decimal(a), decimal(b), a.is_empty()) {
        // bytes=-n: the last n bytes.
        (None, Some(n), true) => {
            if n == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                Range::Part(size - n.min(size), size - 1)
            }
        }
        (Some(first), None, false) if b.is_empty() => {
            if first >= size {
                Range::Unsatisfiable
            } else {
                Range::Part(first, size - 1)
            }
        }
        (Some(first), Some(last), _) => {
            if first > last || first >= size {
                Range::Unsatisfiable
            } else {
                Range::Part(first, last.min(size - 1))
            }
        }
        _ => Range::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Range::Part(2, 4));
        assert_eq!(parse_range(Some("bytes=2-"), 10), Range::Part(2, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Range::Part(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Range::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=5-50"), 10), Range::Part(5, 9));
        assert_eq!(parse_range(Some("bytes=5-0"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=10-20"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=1-2,4-5"), 10), Range::Full);
        assert_eq!(parse_range(Some("items=1-2"), 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Range::Full);
    }
}
