//! The daemon's end of a process's stdio: output fanned out to attached
//! clients, and stdin from them moved to the shim in order. Containers and
//! execs each have one.
//!
//! # A slow client slows the container (back-pressure), as in Docker
//!
//! dockerd gives every attached client a `BytesPipe` that buffers about
//! 1 MB; past that, the broadcaster's write blocks, which blocks the copy
//! out of the container's stdout FIFO, which blocks the container's writes
//! (moby `container/stream/streams.go` `StdoutPipe`,
//! `bytespipe.blockThreshold`). Output is never dropped for a slow reader;
//! only an exit lets dockerd stop waiting, after 2 s
//! (`daemon/monitor.go`: `StreamConfig.Wait` with a 2 s timeout, then
//! `Reset` closes the attach pipes).
//!
//! berth does the same: each subscriber has a bounded queue
//! ([`CLIENT_QUEUE`] chunks of at most 64 KiB, so ≤ 1 MiB). [`StdioHub::output`]
//! waits for room in every queue, which stops the monitor task that reads
//! the shim's socket; the shim stops reading the container's output once
//! 4 MiB are unsent to the daemon, and the container blocks in `write`. So
//! the daemon's memory stays bounded whatever a container writes, and
//! nothing is lost for a slow reader. The log is written by the shim before
//! anything reaches the daemon, so with no client attached the container
//! runs at the speed of its log. A client that reads nothing at all is cut
//! off only once the process has exited (its exit file exists) and it has
//! held the output up for [`EXITED_GRACE`] more, so an exit is always
//! recorded.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_runtime::driver::ShimClient;
use berth_runtime::protocol::Request;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Output chunks queued for one attached client before the process waits
/// for it (chunks are at most 64 KiB: at most 1 MiB, Docker's 1 MB).
pub const CLIENT_QUEUE: usize = 16;
/// stdin chunks (at most 32 KiB each) queued before attached clients wait.
pub const STDIN_QUEUE: usize = 64;
/// How long a client that reads nothing may still hold up the output of a
/// process that has exited (dockerd waits 2 s for its stream copiers).
pub const EXITED_GRACE: Duration = Duration::from_secs(2);
/// How often a blocked delivery looks whether the process has exited.
const STALL_CHECK: Duration = Duration::from_millis(250);

/// What attach connections receive (kept for callers that publish
/// synchronously; prefer [`StdioHub::output`] and [`StdioHub::end`]).
#[derive(Debug, Clone)]
pub enum AttachMsg {
    /// Output on stream 1 or 2. Published synchronously, a client whose
    /// queue is full loses its subscription instead of slowing the process.
    Output(u8, Bytes),
    /// The process ended (or its container went away); close the stream.
    End,
}

/// stdin traffic from attach connections, in order.
#[derive(Debug)]
pub enum StdinMsg {
    /// Bytes.
    Data(Bytes),
    /// An attached client closed its stdin: close the process's stdin.
    Eof,
}

/// One attached client's view of the output: chunks in order, then `None`
/// once the process has ended and everything queued has been taken.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<(u8, Bytes)>,
}

impl Subscription {
    /// The next chunk (stream 1 or 2, bytes), or `None` at the end.
    pub async fn recv(&mut self) -> Option<(u8, Bytes)> {
        self.rx.recv().await
    }
}

/// Output subscribers and the stdin queue of one process.
#[derive(Debug)]
pub struct StdioHub {
    subscribers: Mutex<Vec<mpsc::Sender<(u8, Bytes)>>>,
    /// Where attach connections put stdin; it waits here until a process
    /// runs (the docker CLI writes stdin before it calls start).
    stdin_tx: mpsc::Sender<StdinMsg>,
    /// The receiving end, held here while no pump moves it.
    stdin_rx: Mutex<Option<mpsc::Receiver<StdinMsg>>>,
    /// The shim's exit file of the current process: once it exists, a
    /// client that reads nothing no longer holds the output up for long.
    exit_file: Mutex<Option<PathBuf>>,
    /// The current process's shim, when output is switched on and off
    /// with the subscribers (containers; an exec's output always flows).
    shim: tokio::sync::Mutex<ShimLink>,
}

/// See [`StdioHub::link_shim`]. Held across the request to the shim, so
/// that "off" and "on" reach it in the order they were decided.
#[derive(Debug, Default)]
struct ShimLink {
    client: Option<ShimClient>,
    /// The shim was told to send no output.
    muted: bool,
}

impl Default for StdioHub {
    fn default() -> Self {
        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
        StdioHub {
            subscribers: Mutex::new(Vec::new()),
            stdin_tx,
            stdin_rx: Mutex::new(Some(stdin_rx)),
            exit_file: Mutex::new(None),
            shim: tokio::sync::Mutex::new(ShimLink::default()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StdioHub {
    /// A new output subscriber: it sees everything output from now on.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        lock(&self.subscribers).push(tx);
        Subscription { rx }
    }

    /// Like [`StdioHub::subscribe`], and makes sure the shim linked with
    /// [`StdioHub::link_shim`] sends output again.
    pub async fn subscribe_live(&self) -> Subscription {
        let mut link = self.shim.lock().await;
        let sub = self.subscribe();
        if link.muted {
            if let Some(client) = &link.client {
                let _ = client.request(&Request::Output { on: true }).await;
            }
            link.muted = false;
        }
        sub
    }

    /// Links the hub to a started (or reconnected) container's shim, before
    /// the process starts. With nobody attached the shim is told to keep
    /// the output to the log: a detached container's output then never
    /// crosses to the daemon (a 200 MB writer runs about a third faster).
    /// Attaching later ([`StdioHub::subscribe_live`]) turns it back on.
    pub async fn link_shim(&self, client: &ShimClient) {
        let mut link = self.shim.lock().await;
        link.muted =
            self.subscribers() == 0 && client.request(&Request::Output { on: false }).await.is_ok();
        link.client = Some(client.clone());
    }

    /// Number of attached output subscribers (tests, diagnostics).
    pub fn subscribers(&self) -> usize {
        let mut subs = lock(&self.subscribers);
        subs.retain(|s| !s.is_closed());
        subs.len()
    }

    /// Names the shim's exit file of the process now running (see the
    /// module doc: it bounds how long a stalled client can delay an exit).
    pub fn set_exit_file(&self, path: PathBuf) {
        *lock(&self.exit_file) = Some(path);
    }

    fn process_exited(&self) -> bool {
        lock(&self.exit_file).as_ref().is_some_and(|p| p.exists())
    }

    /// Delivers one chunk of output to every subscriber, waiting while a
    /// subscriber's queue is full (back-pressure, see the module doc).
    pub async fn output(&self, stream: u8, data: Bytes) {
        let subs: Vec<_> = lock(&self.subscribers).clone();
        let mut gone = Vec::new();
        for tx in subs {
            let delivered = match tx.try_send((stream, data.clone())) {
                Ok(()) => true,
                Err(TrySendError::Closed(_)) => false,
                Err(TrySendError::Full(msg)) => self.wait_for_room(&tx, msg).await,
            };
            if !delivered {
                gone.push(tx);
            }
        }
        if !gone.is_empty() {
            lock(&self.subscribers).retain(|s| !gone.iter().any(|g| g.same_channel(s)));
        }
    }

    /// Waits until `tx` takes `msg`; false when its client went away or was
    /// cut off for stalling past an exit.
    async fn wait_for_room(&self, tx: &mpsc::Sender<(u8, Bytes)>, msg: (u8, Bytes)) -> bool {
        let mut stalled_after_exit: Option<Instant> = None;
        loop {
            match tokio::time::timeout(STALL_CHECK, tx.reserve()).await {
                Ok(Ok(permit)) => {
                    permit.send(msg);
                    return true;
                }
                Ok(Err(_)) => return false,
                Err(_) if self.process_exited() => {
                    let since = *stalled_after_exit.get_or_insert_with(Instant::now);
                    if since.elapsed() >= EXITED_GRACE {
                        tracing::debug!(
                            "an attached client reads nothing after the exit: detaching it"
                        );
                        return false;
                    }
                }
                Err(_) => {}
            }
        }
    }

    /// The process ended: every subscriber gets what is queued, then the
    /// end of the stream.
    pub fn end(&self) {
        lock(&self.subscribers).clear();
    }

    /// Synchronous publishing, for callers outside an async context or
    /// with nothing to wait for: `End` is [`StdioHub::end`]; `Output` goes
    /// to every subscriber with room, and a subscriber without room is cut
    /// off (use [`StdioHub::output`] to wait instead).
    pub fn publish(&self, msg: AttachMsg) {
        match msg {
            AttachMsg::End => self.end(),
            AttachMsg::Output(stream, data) => {
                let mut subs = lock(&self.subscribers);
                subs.retain(|s| s.try_send((stream, data.clone())).is_ok());
            }
        }
    }

    /// Queues stdin from an attached client, waiting while the queue is
    /// full; false once nothing can take it any more.
    pub async fn stdin(&self, msg: StdinMsg) -> bool {
        self.stdin_tx.send(msg).await.is_ok()
    }

    /// Takes one queued stdin message, if any (tests).
    #[cfg(test)]
    pub(crate) fn try_stdin(&self) -> Option<StdinMsg> {
        lock(&self.stdin_rx).as_mut()?.try_recv().ok()
    }

    /// Moves stdin to the shim until `stop` resolves; then the queue goes
    /// back to the hub for the next run. With `stdin_once` a client's EOF
    /// closes the process's stdin.
    pub fn spawn_pump<S>(self: &std::sync::Arc<Self>, client: ShimClient, stdin_once: bool, stop: S)
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let Some(mut rx) = lock(&self.stdin_rx).take() else {
            return;
        };
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(StdinMsg::Data(b)) => {
                            if client.stdin(&b).await.is_err() {
                                break;
                            }
                        }
                        Some(StdinMsg::Eof) => {
                            if stdin_once {
                                let _ = client.request(&Request::CloseStdin).await;
                            }
                        }
                        None => break,
                    },
                    _ = &mut stop => break,
                }
            }
            *lock(&hub.stdin_rx) = Some(rx);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[tokio::test]
    async fn subscribers_get_output_in_order_then_the_end() {
        let hub = StdioHub::default();
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        hub.output(1, Bytes::from_static(b"one")).await;
        hub.output(2, Bytes::from_static(b"two")).await;
        hub.end();
        for s in [&mut a, &mut b] {
            assert_eq!(s.recv().await, Some((1, Bytes::from_static(b"one"))));
            assert_eq!(s.recv().await, Some((2, Bytes::from_static(b"two"))));
            assert_eq!(s.recv().await, None);
        }
        assert_eq!(hub.subscribers(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_makes_output_wait_instead_of_growing() {
        let hub = std::sync::Arc::new(StdioHub::default());
        let mut slow = hub.subscribe();
        for _ in 0..CLIENT_QUEUE {
            hub.output(1, chunk(64 << 10)).await;
        }
        // The queue is full: the next chunk waits for the reader.
        let h2 = hub.clone();
        let mut pending = tokio::spawn(async move { h2.output(1, chunk(1)).await });
        let waited = tokio::time::timeout(Duration::from_millis(300), &mut pending).await;
        assert!(waited.is_err(), "output should wait for a full subscriber");
        assert_eq!(slow.recv().await.map(|(_, b)| b.len()), Some(64 << 10));
        tokio::time::timeout(Duration::from_secs(2), pending)
            .await
            .expect("room made")
            .unwrap();
        for _ in 0..CLIENT_QUEUE - 1 {
            slow.recv().await.unwrap();
        }
        assert_eq!(slow.recv().await.map(|(_, b)| b.len()), Some(1));
    }

    #[tokio::test]
    async fn a_client_that_goes_away_stops_holding_output_up() {
        let hub = StdioHub::default();
        let gone = hub.subscribe();
        let mut live = hub.subscribe();
        for _ in 0..CLIENT_QUEUE {
            hub.output(1, chunk(10)).await;
        }
        drop(gone);
        for _ in 0..CLIENT_QUEUE {
            live.recv().await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(1), hub.output(1, chunk(10)))
            .await
            .expect("a closed subscriber is skipped");
        assert_eq!(hub.subscribers(), 1);
    }

    #[tokio::test]
    async fn a_stalled_client_is_cut_off_only_after_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let exit = dir.path().join("exit.json");
        let hub = std::sync::Arc::new(StdioHub::default());
        hub.set_exit_file(exit.clone());
        let _stalled = hub.subscribe();
        for _ in 0..CLIENT_QUEUE {
            hub.output(1, chunk(10)).await;
        }
        let h2 = hub.clone();
        let mut pending = tokio::spawn(async move { h2.output(1, chunk(10)).await });
        assert!(
            tokio::time::timeout(Duration::from_secs(1), &mut pending)
                .await
                .is_err(),
            "a running process waits for its clients"
        );
        std::fs::write(&exit, "{}").unwrap();
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("cut off after the grace period")
            .unwrap();
        assert!(started.elapsed() >= EXITED_GRACE);
        assert_eq!(hub.subscribers(), 0);
    }

    #[tokio::test]
    async fn synchronous_publish_never_waits() {
        let hub = StdioHub::default();
        let mut s = hub.subscribe();
        for _ in 0..CLIENT_QUEUE + 1 {
            hub.publish(AttachMsg::Output(1, chunk(1)));
        }
        assert_eq!(
            hub.subscribers(),
            0,
            "the overflowing subscriber was cut off"
        );
        for _ in 0..CLIENT_QUEUE {
            assert!(s.recv().await.is_some());
        }
        assert_eq!(s.recv().await, None);
    }
}
