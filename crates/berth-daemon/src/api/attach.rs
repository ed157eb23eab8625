//! `POST /containers/{id}/attach`: the hijacked, bidirectional stream, and
//! the attach session it shares with exec start and the websocket attach.
//!
//! With `Upgrade: tcp` the answer is `101 UPGRADED` and the connection
//! becomes raw: container output goes out (8-byte frames without a TTY, raw
//! bytes with one), stdin comes in. Without the upgrade headers the output
//! is streamed as the body (no stdin).
//!
//! What dockerd does, and so berth (moby `daemon/attach.go`,
//! `container/stream/attach.go`):
//! - a stopped container is attached to, not refused: the stream waits for
//!   the next start (`docker start -a` attaches first, then starts; the
//!   "You cannot attach to a stopped container" text is the CLI's own
//!   check). Paused and restarting containers are refused with 409.
//! - `logs=1` replays the log first; `stream` is off unless asked for.
//! - with a TTY, the client's stdin is scanned for the detach keys
//!   (`detachKeys`, default ctrl-p ctrl-q): they are not forwarded, and the
//!   attach ends while the container runs on. Without a TTY stdin is copied
//!   untouched (binary data must pass), so there is no detaching.
//! - when a client's stdin ends: without a TTY and with `StdinOnce` (always
//!   for exec) the process's stdin is closed and the output goes on;
//!   otherwise that client's attach ends.
//! - back-pressure: see [`crate::core::stdio`].

use std::io;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::detach::{parse_detach_keys, Escape, EscapeProxy, DEFAULT_DETACH_KEYS};
use berth_api::stream::{frame, StreamKind};
use berth_api::version::ApiVersion;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Query, RequestedVersion};
use crate::core::logs::LogReader;
use crate::core::stdio::{StdinMsg, StdioHub, Subscription};
use crate::core::{Container, Daemon, Status};
use crate::error::{DaemonError, Result};

/// Which output streams a client wants and how they are encoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wanted {
    pub(super) stdout: bool,
    pub(super) stderr: bool,
    /// Raw bytes (a TTY, or a websocket); otherwise Docker's 8-byte frames.
    pub(super) raw: bool,
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
        Some(if self.raw {
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

/// How one client's stdin is handled.
#[derive(Debug, Clone)]
pub(super) struct StdinMode {
    /// The process has a TTY: scan for `detach_keys`, and the end of the
    /// client's stdin ends its attach.
    pub(super) tty: bool,
    /// The detach sequence (used with a TTY).
    pub(super) detach_keys: Vec<u8>,
    /// Without a TTY, the end of the client's stdin closes the process's
    /// stdin (`StdinOnce`, or an exec) instead of ending the attach.
    pub(super) close_stdin: bool,
}

/// One attached client, whatever carries it.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) hub: Arc<StdioHub>,
    /// Output to follow (`None` with `stream=0`).
    pub(super) output: Option<Subscription>,
    /// Encoded bytes to send before any output (the log replay).
    pub(super) prelude: Vec<Bytes>,
    pub(super) wanted: Wanted,
    /// The client's stdin goes to the process.
    pub(super) stdin: Option<StdinMode>,
}

/// Where a session's input comes from.
pub(super) trait Source: Send + 'static {
    /// The next bytes from the client; `None` once it closed its side.
    fn next(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send;
}

/// Where a session's output goes.
pub(super) trait Sink: Send + 'static {
    /// Sends bytes; an error means the client is gone.
    fn send(&mut self, data: Bytes) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Ends the stream.
    fn close(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// The read half of a hijacked connection.
struct ReadSource<R>(R);

impl<R: AsyncRead + Unpin + Send + 'static> Source for ReadSource<R> {
    async fn next(&mut self) -> Option<Bytes> {
        let mut buf = vec![0u8; 32 * 1024];
        match self.0.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Bytes::from(buf))
            }
        }
    }
}

/// The write half of a hijacked connection.
struct WriteSink<W>(W);

impl<W: AsyncWrite + Unpin + Send + 'static> Sink for WriteSink<W> {
    async fn send(&mut self, data: Bytes) -> io::Result<()> {
        self.0.write_all(&data).await
    }

    async fn close(&mut self) {
        let _ = self.0.flush().await;
        let _ = self.0.shutdown().await;
    }
}

/// How a client's input ended.
enum InputEnd {
    /// It typed the detach keys.
    Detached,
    /// Its stdin closed (or the connection did).
    Eof,
}

/// Copies a client's stdin into the hub, watching for the detach keys.
async fn pump_stdin<S: Source>(hub: &StdioHub, mode: &StdinMode, input: &mut S) -> InputEnd {
    let mut proxy = mode.tty.then(|| EscapeProxy::new(mode.detach_keys.clone()));
    while let Some(chunk) = input.next().await {
        let data = match proxy.as_mut().map(|p| p.feed(&chunk)) {
            None => chunk,
            Some(Escape::Forward(v)) => Bytes::from(v),
            Some(Escape::Detach(v)) => {
                if !v.is_empty() {
                    hub.stdin(StdinMsg::Data(Bytes::from(v))).await;
                }
                return InputEnd::Detached;
            }
        };
        if !data.is_empty() && !hub.stdin(StdinMsg::Data(data)).await {
            break;
        }
    }
    // A partial sequence held back was not the sequence after all.
    if let Some(p) = proxy.filter(|p| !p.pending().is_empty()) {
        hub.stdin(StdinMsg::Data(Bytes::copy_from_slice(p.pending())))
            .await;
    }
    InputEnd::Eof
}

/// Runs a session: replays the prelude, then copies output to `sink` and
/// the client's stdin into the process until the process ends, the client
/// detaches or goes away. With `half_close` (a hijacked socket) the end of
/// the client's input may leave the output running (see the module doc);
/// without it (a websocket) the end of input means the client is gone.
pub(super) async fn run_session<I: Source, O: Sink>(
    s: Session,
    mut input: I,
    mut sink: O,
    half_close: bool,
) {
    let Session {
        hub,
        output,
        prelude,
        wanted,
        stdin,
    } = s;
    // Tells the output side to stop early (detach, or end of stdin).
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = match (stdin, &output) {
        (Some(mode), Some(_)) => {
            let hub = hub.clone();
            Some(tokio::spawn(async move {
                let end = pump_stdin(&hub, &mode, &mut input).await;
                let closes_stdin = mode.close_stdin && !mode.tty;
                match end {
                    InputEnd::Detached => tracing::debug!("client detached"),
                    InputEnd::Eof if closes_stdin => {
                        hub.stdin(StdinMsg::Eof).await;
                        if half_close {
                            // The output goes on until the process ends.
                            std::future::pending::<()>().await;
                        }
                    }
                    InputEnd::Eof => {}
                }
                let _ = stop_tx.send(());
            }))
        }
        // Without stdin a hijacked socket is not read (the docker CLI
        // half-closes it at once); a websocket is, for its close frame.
        (None, Some(_)) if !half_close => Some(tokio::spawn(async move {
            while input.next().await.is_some() {}
            let _ = stop_tx.send(());
        })),
        _ => None,
    };

    let mut alive = true;
    for b in prelude {
        if sink.send(b).await.is_err() {
            alive = false;
            break;
        }
    }
    if let (Some(mut sub), true) = (output, alive) {
        let mut stop_armed = reader.is_some();
        loop {
            tokio::select! {
                biased;
                r = &mut stop_rx, if stop_armed => match r {
                    Ok(()) => break,
                    Err(_) => stop_armed = false,
                },
                m = sub.recv() => match m {
                    Some((stream, data)) => {
                        if let Some(b) = wanted.encode(stream, &data) {
                            if sink.send(b).await.is_err() {
                                break;
                            }
                        }
                    }
                    None => break,
                },
            }
        }
    }
    if let Some(r) = reader {
        r.abort();
    }
    sink.close().await;
}

/// Whether a request asks to become a raw stream.
pub(super) fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

/// The API version of a request (the newest when it named none).
pub(super) fn api_version(v: Option<&RequestedVersion>) -> ApiVersion {
    v.and_then(|v| v.0.as_deref())
        .and_then(ApiVersion::parse)
        .unwrap_or_else(|| {
            ApiVersion::parse(berth_api::version::MAX_API_VERSION).expect("valid constant")
        })
}

/// The detach sequence of a request: Docker's default when none is given.
pub(super) fn detach_keys(given: &str, what: &str) -> Result<Vec<u8>> {
    if given.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    parse_detach_keys(given)
        .map_err(|_| DaemonError::BadRequest(format!("Invalid {what} keys ({given}) provided")))
}

/// dockerd's refusals: a paused or restarting container cannot be attached.
pub(super) fn check_attachable(c: &Container, name: &str) -> Result<()> {
    match c.status() {
        Status::Paused => Err(DaemonError::Conflict(format!(
            "container {name} is paused, unpause the container before attach"
        ))),
        Status::Restarting => Err(DaemonError::Conflict(format!(
            "container {name} is restarting, wait until the container is running"
        ))),
        _ => Ok(()),
    }
}

/// The log replay of `logs=1`: every line of the wanted streams, encoded.
pub(super) async fn log_prelude(d: &Arc<Daemon>, c: &Container, wanted: Wanted) -> Vec<Bytes> {
    let driver = c.rec().host_config.log_config.kind.clone();
    if driver == "none" {
        // dockerd reports it in the stream and goes on.
        let text = "Error attaching: configured logging driver does not support reading\n";
        return wanted.encode(1, text.as_bytes()).into_iter().collect();
    }
    let path = d.log_path(&c.id);
    let lines = tokio::task::spawn_blocking(move || LogReader::new(&path).read_new())
        .await
        .unwrap_or_default();
    lines
        .iter()
        .filter_map(|l| wanted.encode(l.stream, &l.data))
        .collect()
}

/// Everything an attach request asks for, checked.
pub(super) struct AttachRequest {
    pub(super) session: Session,
    /// dockerd's `multiplexed-stream` content type applies (no TTY, API ≥ 1.42).
    pub(super) multiplexed_type: bool,
}

/// Builds the session of an attach request (HTTP or websocket): checks
/// the container, subscribes to its output before anything is answered
/// (so nothing between the answer and the copy is lost), and replays the
/// log when asked.
pub(super) async fn prepare(
    d: &Arc<Daemon>,
    name: &str,
    q: &Query,
    streams: (bool, bool, bool),
    raw_output: bool,
    version: ApiVersion,
) -> Result<AttachRequest> {
    let keys = detach_keys(q.get("detachKeys").unwrap_or(""), "detach")?;
    let c = d.container(name)?;
    check_attachable(&c, name)?;
    let (tty, open_stdin, stdin_once) = {
        let r = c.rec();
        (r.config.tty, r.config.open_stdin, r.config.stdin_once)
    };
    let (want_stdin, stdout, stderr) = streams;
    let wanted = Wanted {
        stdout,
        stderr,
        raw: tty || raw_output,
    };
    let stream = q.flag("stream");
    let output = match stream {
        true => Some(c.stdio.subscribe_live().await),
        false => None,
    };
    let prelude = if q.flag("logs") {
        log_prelude(d, &c, wanted).await
    } else {
        Vec::new()
    };
    let stdin = (stream && want_stdin && open_stdin).then_some(StdinMode {
        tty,
        detach_keys: keys,
        close_stdin: stdin_once,
    });
    Ok(AttachRequest {
        session: Session {
            hub: c.stdio.clone(),
            output,
            prelude,
            wanted,
            stdin,
        },
        multiplexed_type: !tty && version >= ApiVersion(1, 42),
    })
}

pub(super) async fn attach(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> Result<Response> {
    let version = api_version(req.extensions().get::<RequestedVersion>());
    let streams = (q.flag("stdin"), q.flag("stdout"), q.flag("stderr"));
    let AttachRequest {
        session,
        multiplexed_type,
    } = prepare(&d, &id, &q, streams, false, version).await?;
    let ctype = if multiplexed_type {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };

    if !is_upgrade(&req) {
        // No hijack: output only, as the response body.
        let Session {
            output,
            prelude,
            wanted,
            ..
        } = session;
        let live = futures_util::stream::unfold(output, move |out| async move {
            let mut sub = out?;
            loop {
                let (stream, data) = sub.recv().await?;
                if let Some(b) = wanted.encode(stream, &data) {
                    return Some((Ok::<_, io::Error>(b), Some(sub)));
                }
            }
        });
        let body = futures_util::StreamExt::chain(
            futures_util::stream::iter(prelude.into_iter().map(Ok)),
            live,
        );
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, ctype)],
            Body::from_stream(body),
        )
            .into_response());
    }
    Ok(upgrade_and_serve(&mut req, session, ctype))
}

/// Answers `101 UPGRADED` and, once the connection is upgraded, runs the
/// session on it.
pub(super) fn upgrade_and_serve(
    req: &mut Request,
    session: Session,
    ctype: &'static str,
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
        let (rd, wr) = tokio::io::split(TokioIo::new(upgraded));
        run_session(session, ReadSource(rd), WriteSink(wr), true).await;
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    struct Script(VecDeque<Bytes>);

    impl Source for Script {
        async fn next(&mut self) -> Option<Bytes> {
            self.0.pop_front()
        }
    }

    fn script(chunks: &[&[u8]]) -> Script {
        Script(chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect())
    }

    fn queued(hub: &StdioHub) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(m) = hub.try_stdin() {
            match m {
                StdinMsg::Data(b) => all.extend_from_slice(&b),
                StdinMsg::Eof => all.extend_from_slice(b"<EOF>"),
            }
        }
        all
    }

    #[tokio::test]
    async fn detach_keys_are_not_forwarded_and_partial_ones_are() {
        let hub = StdioHub::default();
        let mode = StdinMode {
            tty: true,
            detach_keys: vec![16, 17],
            close_stdin: false,
        };
        let chunks: [&[u8]; 3] = [b"ab\x10", b"c\x10", b"\x11ignored"];
        let end = pump_stdin(&hub, &mode, &mut script(&chunks)).await;
        assert!(matches!(end, InputEnd::Detached));
        assert_eq!(queued(&hub), b"ab\x10c");
        // Without a TTY the same bytes pass untouched.
        let raw = StdinMode {
            tty: false,
            ..mode.clone()
        };
        let end = pump_stdin(&hub, &raw, &mut script(&chunks)).await;
        assert!(matches!(end, InputEnd::Eof));
        assert_eq!(queued(&hub), b"ab\x10c\x10\x11ignored");
        // A partial sequence at the end of input is forwarded.
        let end = pump_stdin(&hub, &mode, &mut script(&[b"x\x10"])).await;
        assert!(matches!(end, InputEnd::Eof));
        assert_eq!(queued(&hub), b"x\x10");
    }

    #[test]
    fn invalid_detach_keys_are_dockerds_400() {
        let e = detach_keys("ctrl-1", "detach").unwrap_err();
        assert_eq!(e.to_string(), "Invalid detach keys (ctrl-1) provided");
        assert_eq!(detach_keys("", "detach").unwrap(), vec![16, 17]);
        assert_eq!(detach_keys("a,b", "escape").unwrap(), b"ab".to_vec());
    }

    #[test]
    fn frames_and_raw_output() {
        let w = Wanted {
            stdout: true,
            stderr: false,
            raw: false,
        };
        assert_eq!(
            w.encode(1, b"hi").unwrap().as_ref(),
            &[1, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']
        );
        assert!(w.encode(2, b"err").is_none());
        let raw = Wanted { raw: true, ..w };
        assert_eq!(raw.encode(1, b"hi").unwrap().as_ref(), b"hi");
    }
}
