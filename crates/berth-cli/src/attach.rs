//! Everything around an attached container: copying the hijacked stream
//! (docker's `hijackedIOStreamer`), the wait request that yields the exit
//! code, window-size updates, and signal forwarding (`--sig-proxy`).

use std::io::{self, Write};
use std::sync::Arc;

use berth_api::container::WaitResponse;
use berth_api::stream::{Demuxer, StreamKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::client::{Client, ClientError, Hijacked, JsonStream, Query};
use crate::tty::{self, Escape, EscapeProxy, RawMode};

/// Which streams are attached and how.
#[derive(Debug, Clone)]
pub(crate) struct StreamOpts {
    /// The container has a TTY: raw bytes, no framing.
    pub(crate) tty: bool,
    /// Our stdin goes to the container.
    pub(crate) stdin: bool,
    /// The container's stdout is wanted.
    pub(crate) stdout: bool,
    /// The container's stderr is wanted.
    pub(crate) stderr: bool,
    /// The detach sequence (used with a TTY and stdin).
    pub(crate) detach_keys: Vec<u8>,
}

/// How the attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The daemon closed the stream (the process exited).
    Closed,
    /// The user typed the detach sequence.
    Detached,
}

/// Splits docker's multiplexed frames: stdout frames to one writer, stderr
/// frames to the other, each flushed as it comes (docker's `StdCopy`).
#[derive(Debug)]
pub(crate) struct Splitter<O: Write, E: Write> {
    demux: Demuxer,
    out: O,
    err: E,
}

impl<O: Write, E: Write> Splitter<O, E> {
    /// A splitter writing to `out` and `err`.
    pub(crate) fn new(out: O, err: E) -> Splitter<O, E> {
        Splitter {
            demux: Demuxer::default(),
            out,
            err,
        }
    }

    /// The two writers back.
    #[cfg(test)]
    pub(crate) fn into_parts(self) -> (O, E) {
        (self.out, self.err)
    }

    /// Feeds received bytes; complete frames are written at once.
    pub(crate) fn feed(&mut self, data: &[u8]) -> io::Result<()> {
        self.demux.push(data);
        while let Some(frame) = self.demux.next_frame() {
            match frame {
                Ok((StreamKind::Stdout | StreamKind::Stdin, payload)) => {
                    self.out.write_all(&payload)?;
                    self.out.flush()?;
                }
                Ok((StreamKind::Stderr, payload)) => {
                    self.err.write_all(&payload)?;
                    self.err.flush()?;
                }
                Ok((StreamKind::System, payload)) => {
                    let text = String::from_utf8_lossy(&payload).into_owned();
                    return Err(io::Error::other(format!(
                        "error from daemon in stream: {text}"
                    )));
                }
                Err(byte) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("Unrecognized input header: {byte}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Writes to our stdout/stderr, or discards when the stream is not wanted.
struct Sink {
    stderr: bool,
    enabled: bool,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.enabled {
            return Ok(buf.len());
        }
        if self.stderr {
            io::stderr().lock().write(buf)
        } else {
            io::stdout().lock().write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.stderr {
            io::stderr().flush()
        } else {
            io::stdout().flush()
        }
    }
}

/// Copies a hijacked attach stream: our stdin into it (then a half-close),
/// its output to our stdout/stderr, until the daemon closes it or the user
/// detaches. With a TTY and stdin, the terminal is raw meanwhile.
pub(crate) async fn stream(conn: Hijacked, opts: StreamOpts) -> io::Result<StreamEnd> {
    let raw = if opts.stdin && opts.tty {
        RawMode::enable()?
    } else {
        None
    };
    let (mut rd, mut wr) = tokio::io::split(conn);

    let want_output = opts.stdout || opts.stderr;
    let mut output = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        if opts.tty {
            let mut sink = Sink {
                stderr: false,
                enabled: want_output,
            };
            loop {
                let n = rd.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return Ok(());
                }
                sink.write_all(&buf[..n])?;
                sink.flush()?;
            }
        } else {
            let mut split = Splitter::new(
                Sink {
                    stderr: false,
                    enabled: opts.stdout,
                },
                Sink {
                    stderr: true,
                    enabled: opts.stderr,
                },
            );
            loop {
                let n = rd.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return Ok(());
                }
                split.feed(&buf[..n])?;
            }
        }
    });

    let stdin = opts.stdin;
    let keys = if opts.tty && opts.stdin {
        opts.detach_keys.clone()
    } else {
        Vec::new()
    };
    let mut input = tokio::spawn(async move {
        if stdin {
            let mut proxy = EscapeProxy::new(keys);
            let mut ours = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match ours.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                match proxy.feed(&buf[..n]) {
                    Escape::Forward(bytes) => {
                        if wr.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Escape::Detach(bytes) => {
                        let _ = wr.write_all(&bytes).await;
                        return StreamEnd::Detached;
                    }
                }
            }
            // A partial detach sequence held back was not one after all.
            let _ = wr.write_all(proxy.pending()).await;
        }
        // Half-close: the daemon sees EOF on stdin, the output goes on.
        let _ = wr.shutdown().await;
        StreamEnd::Closed
    });

    let result = tokio::select! {
        out = &mut output => {
            input.abort();
            out.unwrap_or(Ok(())).map(|()| StreamEnd::Closed)
        }
        end = &mut input => match end.unwrap_or(StreamEnd::Closed) {
            StreamEnd::Detached => {
                output.abort();
                Ok(StreamEnd::Detached)
            }
            StreamEnd::Closed if want_output => output.await.unwrap_or(Ok(())).map(|()| StreamEnd::Closed),
            StreamEnd::Closed => {
                output.abort();
                Ok(StreamEnd::Closed)
            }
        },
    };
    drop(raw);
    result
}

/// The query of `POST /containers/{id}/attach` as docker's
/// `ContainerAttach` builds it (`detachKeys` only when given).
pub(crate) fn attach_query(stdin: bool, stdout: bool, stderr: bool, detach_keys: &str) -> Query {
    Query::new()
        .add("stream", "1")
        .add_if(stdin, "stdin", "1")
        .add_if(stdout, "stdout", "1")
        .add_if(stderr, "stderr", "1")
        .add_nonempty("detachKeys", detach_keys)
}

/// How long a wait request waits for the answer's headers before going on
/// anyway (a daemon should send them at once).
const WAIT_HEADERS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends `POST /containers/{id}/wait[?condition=…]` on its own connection
/// and waits for the answer headers (so the daemon is watching before what
/// comes next, at most a second), as docker's `ContainerWait` does; the
/// returned task yields `map` of the daemon's answer.
async fn spawn_wait<T, F>(client: &Arc<Client>, id: &str, condition: &str, map: F) -> JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce(Result<WaitResponse, ClientError>) -> T + Send + 'static,
{
    let query = Query::new().add_nonempty("condition", condition);
    let path = format!("/containers/{id}/wait");
    let client = Arc::clone(client);
    let (headers_tx, headers_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let resp = client.post(&path, &query).await;
        let _ = headers_tx.send(());
        let answer = match resp {
            Ok(r) => match JsonStream::new(r).next::<WaitResponse>().await {
                Some(w) => w,
                None => Err(ClientError::Stream("unexpected EOF".into())),
            },
            Err(e) => Err(e),
        };
        map(answer)
    });
    let _ = tokio::time::timeout(WAIT_HEADERS_TIMEOUT, headers_rx).await;
    task
}

/// The wait request of `attach` (no condition): the daemon's answer as is.
pub(crate) async fn wait_request(
    client: &Arc<Client>,
    id: &str,
    condition: &str,
) -> JoinHandle<Result<WaitResponse, ClientError>> {
    spawn_wait(client, id, condition, |answer| answer).await
}

/// The wait request of `run` and `start -a`: the task yields the exit code
/// (125 when waiting failed, as docker, after printing why).
pub(crate) async fn wait_exit(client: &Arc<Client>, id: &str, condition: &str) -> JoinHandle<i32> {
    spawn_wait(client, id, condition, |answer| match answer {
        Ok(w) => match w.error {
            Some(err) if !err.message.is_empty() => {
                eprintln!("Error waiting for container: {}", err.message);
                125
            }
            _ => w.status_code as i32,
        },
        Err(e) => {
            eprintln!("error waiting for container: {e}");
            125
        }
    })
    .await
}

/// The resize endpoint of a container (`/containers/{id}`) or of an exec
/// (`/exec/{id}`): `{base}/resize?h=…&w=…`.
pub(crate) fn container_base(id: &str) -> String {
    format!("/containers/{id}")
}

/// `POST {base}/resize?h=&w=`; nothing is sent for a 0×0 size (no
/// terminal), as docker's `resizeTtyTo`.
pub(crate) async fn resize_to(
    client: &Client,
    base: &str,
    h: u16,
    w: u16,
) -> Result<(), ClientError> {
    if h == 0 && w == 0 {
        return Ok(());
    }
    let q = Query::new().add("h", h.to_string()).add("w", w.to_string());
    client.post_ok(&format!("{base}/resize"), &q).await
}

/// Resizes to our terminal's size.
async fn resize(client: &Client, base: &str) -> Result<(), ClientError> {
    let (h, w) = tty::size();
    resize_to(client, base, h, w).await
}

/// docker's `MonitorTtySize`: resizes now (retrying up to 10 times, 10 ms
/// more each time, while the process may not have started yet; then
/// "failed to resize tty, using default size"), and on every SIGWINCH
/// until the task is dropped. Later errors are ignored.
pub(crate) fn monitor_size(client: Arc<Client>, base: String) -> JoinHandle<()> {
    // Listening before the first resize: a SIGWINCH while it (and its
    // retries) runs would otherwise be lost, SIGWINCH being ignored by
    // default, and the container would keep the old size.
    let winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change());
    tokio::spawn(async move {
        if resize(&client, &base).await.is_err() {
            let mut ok = false;
            for retry in 0..10u64 {
                tokio::time::sleep(std::time::Duration::from_millis((retry + 1) * 10)).await;
                if resize(&client, &base).await.is_ok() {
                    ok = true;
                    break;
                }
            }
            if !ok {
                eprintln!("failed to resize tty, using default size");
            }
        }
        let Ok(mut winch) = winch else {
            return;
        };
        while winch.recv().await.is_some() {
            let _ = resize(&client, &base).await;
        }
    })
}

/// Aborts a helper task (signal proxy, resize watcher) when the session
/// that needs it ends.
#[derive(Debug)]
pub(crate) struct TaskGuard(pub(crate) JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Signals forwarded to the container by `--sig-proxy`. docker catches
/// every signal and skips SIGCHLD, SIGPIPE and SIGURG; berth leaves out
/// SIGWINCH too (the TTY's size follows it through `resize` instead) and
/// the ones a process cannot catch or that mean a crash of the CLI itself
/// (SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL).
const PROXIED: [(libc::c_int, &str); 20] = [
    (libc::SIGINT, "INT"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGHUP, "HUP"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGIO, "IO"),
    (libc::SIGPWR, "PWR"),
    (libc::SIGSYS, "SYS"),
];

/// Forwards the signals we receive to the container with
/// `POST /containers/{id}/kill?signal=NAME` until the task is dropped.
pub(crate) fn proxy_signals(client: Arc<Client>, id: String) -> JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    for (num, name) in PROXIED {
        if let Ok(mut s) = signal(SignalKind::from_raw(num)) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
        }
    }
    drop(tx);
    tokio::spawn(async move {
        while let Some(name) = rx.recv().await {
            let q = Query::new().add("signal", name);
            if let Err(e) = client.post_ok(&format!("/containers/{id}/kill"), &q).await {
                if !matches!(e, ClientError::Daemon { .. }) {
                    eprintln!("error sending signal: {e}");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::stream::frame;

    #[test]
    fn frames_go_to_stdout_and_stderr_apart() {
        let mut wire = frame(StreamKind::Stdout, b"out1\n");
        wire.extend(frame(StreamKind::Stderr, b"err1\n"));
        wire.extend(frame(StreamKind::Stdout, b"out2\n"));
        let mut split = Splitter::new(Vec::new(), Vec::new());
        for piece in wire.chunks(5) {
            split.feed(piece).unwrap();
        }
        assert_eq!(split.out, b"out1\nout2\n");
        assert_eq!(split.err, b"err1\n");
    }

    #[test]
    fn attach_queries_like_docker() {
        assert_eq!(
            attach_query(true, true, true, "").encode(),
            "stderr=1&stdin=1&stdout=1&stream=1"
        );
        assert_eq!(
            attach_query(false, true, true, "ctrl-x,y").encode(),
            "detachKeys=ctrl-x%2Cy&stderr=1&stdout=1&stream=1"
        );
    }

    #[test]
    fn system_frames_and_bad_headers_are_errors() {
        let mut split = Splitter::new(Vec::new(), Vec::new());
        let e = split.feed(&frame(StreamKind::System, b"boom")).unwrap_err();
        assert_eq!(e.to_string(), "error from daemon in stream: boom");
        let mut split = Splitter::new(Vec::new(), Vec::new());
        let e = split.feed(&[9, 0, 0, 0, 0, 0, 0, 1, b'x']).unwrap_err();
        assert_eq!(e.to_string(), "Unrecognized input header: 9");
    }
}
