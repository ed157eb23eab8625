//! `POST /containers/{id}/attach`: the hijacked, bidirectional stream.
//!
//! With `Upgrade: tcp` the answer is `101 UPGRADED` and the connection
//! becomes raw: container output goes out (8-byte frames without a TTY, raw
//! bytes with one), stdin comes in, and a half-close means end of stdin.
//! Without the upgrade headers the output is streamed as the body.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::stream::{frame, StreamKind};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use super::Query;
use crate::core::stdio::{AttachMsg, StdinMsg, StdioHub};
use crate::core::Daemon;
use crate::error::Result;

/// Which streams a client asked for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wanted {
    pub(super) stdout: bool,
    pub(super) stderr: bool,
    pub(super) tty: bool,
}

impl Wanted {
    /// The bytes to send for one chunk of output, if wanted.
    pub(super) fn encode(&self, stream: u8, data: &[u8]) -> Option<Bytes> {
        let want = if stream == 2 {
            self.stderr
        } else {
            self.stdout
        };
        if !want {
            return None;
        }
        Some(if self.tty {
            Bytes::copy_from_slice(data)
        } else {
            let kind = if stream == 2 {
                StreamKind::Stderr
            } else {
                StreamKind::Stdout
            };
            Bytes::from(frame(kind, data))
        })
    }
}

pub(super) fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

pub(super) async fn attach(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> Result<Response> {
    let c = d.container(&id)?;
    let (tty, open_stdin) = {
        let r = c.rec();
        (r.config.tty, r.config.open_stdin)
    };
    let wanted = Wanted {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        tty,
    };
    let want_stdin = q.flag("stdin") && open_stdin;
    // Subscribe before answering, so no output between the answer and the
    // start of the copy is lost.
    let output = q.flag_or("stream", true).then(|| c.stdio.subscribe());
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };

    if !is_upgrade(&req) {
        let body = match output {
            Some(rx) => {
                Body::from_stream(futures_util::stream::unfold(rx, move |mut rx| async move {
                    loop {
                        match rx.recv().await? {
                            AttachMsg::Output(s, data) => {
                                if let Some(b) = wanted.encode(s, &data) {
                                    return Some((Ok::<_, std::io::Error>(b), rx));
                                }
                            }
                            AttachMsg::End => return None,
                        }
                    }
                }))
            }
            None => Body::empty(),
        };
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, ctype)], body).into_response());
    }

    Ok(upgrade_and_serve(
        &mut req,
        c.stdio.clone(),
        output,
        wanted,
        want_stdin,
    ))
}

/// Answers `101 UPGRADED` and, once the connection is upgraded, serves it:
/// output from `output`, stdin into `hub`.
pub(super) fn upgrade_and_serve(
    req: &mut Request,
    hub: Arc<StdioHub>,
    output: Option<UnboundedReceiver<AttachMsg>>,
    wanted: Wanted,
    want_stdin: bool,
) -> Response {
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("upgrade failed: {e}");
                return;
            }
        };
        serve_attached(TokioIo::new(upgraded), hub, output, wanted, want_stdin).await;
    });
    let ctype = if wanted.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    resp
}

async fn serve_attached<IO>(
    io: IO,
    hub: Arc<StdioHub>,
    output: Option<UnboundedReceiver<AttachMsg>>,
    wanted: Wanted,
    want_stdin: bool,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    if want_stdin {
        let tx = hub.stdin_tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(StdinMsg::Eof);
                        return;
                    }
                    Ok(n) => {
                        if tx
                            .send(StdinMsg::Data(Bytes::copy_from_slice(&buf[..n])))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
    }
    if let Some(mut rx) = output {
        while let Some(msg) = rx.recv().await {
            match msg {
                AttachMsg::Output(s, data) => {
                    if let Some(b) = wanted.encode(s, &data) {
                        if wr.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                }
                AttachMsg::End => break,
            }
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}
