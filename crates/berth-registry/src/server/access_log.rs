//! One log line per request, written when its response body has been sent
//! (so the duration and byte count cover the whole transfer):
//!
//! ```text
//! INFO access: 127.0.0.1:50312 alice "GET /v2/a/blobs/sha256:…" 200 1048576B in=0B 12.3ms
//! ```
//!
//! A body cut short by the client is logged with `aborted`. This layer
//! also stamps every response with `Docker-Distribution-API-Version`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};

use super::api_version_header;

/// The client's address, set on each request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// The authenticated account, set on the response by the handlers.
#[derive(Clone, Debug)]
struct LogUser(String);

/// Records `account` on `resp` for the log line.
pub(crate) fn with_user(mut resp: Response, account: Option<String>) -> Response {
    if let Some(a) = account {
        resp.extensions_mut().insert(LogUser(a));
    }
    resp
}

struct Line {
    peer: String,
    user: String,
    method: Method,
    path: String,
    status: StatusCode,
    received: u64,
    start: Instant,
}

/// The middleware.
pub(crate) async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<Peer>()
        .map(|p| p.0.to_string())
        .unwrap_or_else(|| "-".into());
    let received = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut resp = next.run(req).await;
    api_version_header(&mut resp);
    let user = resp
        .extensions()
        .get::<LogUser>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| "-".into());
    let line = Line {
        peer,
        user,
        method,
        path,
        status: resp.status(),
        received,
        start,
    };
    let head = line.method == Method::HEAD;
    let (parts, body) = resp.into_parts();
    // hyper stops polling once it sent an exact Content-Length, and never
    // polls the body of a HEAD response: both are complete then.
    let expected = if head {
        Some(0)
    } else {
        parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or(body.size_hint().exact())
    };
    Response::from_parts(
        parts,
        Body::new(LoggedBody {
            inner: body,
            sent: 0,
            expected,
            line: Some(line),
        }),
    )
}

/// The response body, counting what goes out and logging at its end.
struct LoggedBody {
    inner: Body,
    sent: u64,
    expected: Option<u64>,
    line: Option<Line>,
}

impl LoggedBody {
    fn finish(&mut self, complete: bool) {
        if let Some(l) = self.line.take() {
            tracing::info!(
                target: "access",
                "{} {} \"{} {}\" {} {}B in={}B {:.1}ms{}",
                l.peer,
                l.user,
                l.method,
                l.path,
                l.status.as_u16(),
                self.sent,
                l.received,
                l.start.elapsed().as_secs_f64() * 1000.0,
                if complete { "" } else { " aborted" },
            );
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.sent += d.len() as u64;
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // Empty bodies (202, 204) are never polled.
        let done = self.inner.is_end_stream() || self.expected.is_some_and(|n| self.sent >= n);
        self.finish(done);
    }
}
