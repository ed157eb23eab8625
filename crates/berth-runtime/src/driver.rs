//! The daemon's side of the shim: start one, connect to it, exchange
//! [`protocol`](crate::protocol) frames. Async (tokio); never touches
//! libcontainer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, Mutex};

use crate::protocol::{self, kind, Decoder, Event, Request};
use crate::shim::{files, Ready, ShimConfig};
use crate::RuntimeError;

/// What arrives from a shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShimMessage {
    /// Container output on stream 1 (stdout/TTY) or 2 (stderr).
    Output {
        /// 1 or 2.
        stream: u8,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A control event.
    Event(Event),
}

/// Writes `shim.json` and starts `exe shim STATE_DIR`; returns the PID of
/// the created container process once the shim reports ready.
pub async fn spawn(exe: &Path, state_dir: &Path, cfg: &ShimConfig) -> Result<i32, RuntimeError> {
    std::fs::create_dir_all(state_dir).map_err(|e| RuntimeError::io("create", state_dir, e))?;
    for stale in [files::EXIT, files::SOCKET] {
        let _ = std::fs::remove_file(state_dir.join(stale));
    }
    let cfg_path = state_dir.join(files::CONFIG);
    let data = serde_json::to_vec(cfg).map_err(|e| RuntimeError::Spec(e.to_string()))?;
    std::fs::write(&cfg_path, data).map_err(|e| RuntimeError::io("write", &cfg_path, e))?;
    let log_path = state_dir.join(files::LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| RuntimeError::io("open", &log_path, e))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("shim")
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        // Its own process group: a terminal's ^C to the daemon must not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| RuntimeError::io("start shim", exe, e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| RuntimeError::io("read shim", state_dir, e))?;
    // The shim lives on after this; tokio reaps it when it exits.
    drop(child);
    let ready: Ready = serde_json::from_str(line.trim()).map_err(|_| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        RuntimeError::Shim {
            id: cfg.id.clone(),
            message: format!(
                "shim did not start: {}",
                log.lines().last().unwrap_or("no output")
            ),
        }
    })?;
    match (ready.pid, ready.error) {
        (Some(pid), _) => Ok(pid),
        (None, Some(err)) => Err(RuntimeError::Create(err)),
        (None, None) => Err(RuntimeError::Shim {
            id: cfg.id.clone(),
            message: "empty ready line".into(),
        }),
    }
}

/// A connection to one shim.
#[derive(Debug, Clone)]
pub struct ShimClient {
    writer: Arc<Mutex<OwnedWriteHalf>>,
}

impl ShimClient {
    /// Sends a request.
    pub async fn request(&self, req: &Request) -> Result<(), RuntimeError> {
        self.write(&protocol::encode_control(req)).await
    }

    /// Sends bytes for the container's stdin.
    pub async fn stdin(&self, data: &[u8]) -> Result<(), RuntimeError> {
        for chunk in data.chunks(protocol::MAX_FRAME) {
            self.write(&protocol::encode(kind::STDIN, chunk)).await?;
        }
        Ok(())
    }

    async fn write(&self, frame: &[u8]) -> Result<(), RuntimeError> {
        let mut w = self.writer.lock().await;
        w.write_all(frame)
            .await
            .map_err(|e| RuntimeError::io("write to shim", "", e))
    }
}

/// The socket path to connect to; paths over the 108-byte limit go through
/// `/proc/self/fd` of an open handle on the directory.
fn socket_path(state_dir: &Path) -> Result<(PathBuf, Option<std::fs::File>), RuntimeError> {
    let full = state_dir.join(files::SOCKET);
    if full.as_os_str().len() < 100 {
        return Ok((full, None));
    }
    let dir = std::fs::File::open(state_dir).map_err(|e| RuntimeError::io("open", state_dir, e))?;
    use std::os::fd::AsRawFd;
    let p = PathBuf::from(format!(
        "/proc/self/fd/{}/{}",
        dir.as_raw_fd(),
        files::SOCKET
    ));
    Ok((p, Some(dir)))
}

/// Messages from a shim queued for the daemon before it stops reading the
/// shim's socket (each at most 64 KiB of output: at most 2 MiB). A daemon
/// that takes its time thereby slows the shim, which stops reading the
/// container's output: memory stays bounded whatever the container writes.
pub const SHIM_QUEUE: usize = 32;

/// Connects to the shim in `state_dir`. Messages arrive on the returned
/// channel, starting with [`Event::Hello`]; the channel closes when the
/// shim goes away. The channel is bounded ([`SHIM_QUEUE`]): while it is
/// full the socket is not read.
pub async fn connect(
    state_dir: &Path,
) -> Result<(ShimClient, mpsc::Receiver<ShimMessage>), RuntimeError> {
    let (path, _keep) = socket_path(state_dir)?;
    let stream = UnixStream::connect(&path)
        .await
        .map_err(|e| RuntimeError::io("connect", state_dir.join(files::SOCKET), e))?;
    drop(_keep);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(SHIM_QUEUE);
    tokio::spawn(async move {
        let mut dec = Decoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            dec.push(&buf[..n]);
            loop {
                match dec.next_frame() {
                    Ok(Some((kind::CONTROL, payload))) => {
                        match serde_json::from_slice::<Event>(&payload) {
                            Ok(ev) => {
                                if tx.send(ShimMessage::Event(ev)).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => tracing::warn!("bad event from shim: {e}"),
                        }
                    }
                    Ok(Some((stream, data))) => {
                        if tx.send(ShimMessage::Output { stream, data }).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("shim connection: {e}");
                        return;
                    }
                }
            }
        }
    });
    Ok((
        ShimClient {
            writer: Arc::new(Mutex::new(wr)),
        },
        rx,
    ))
}
