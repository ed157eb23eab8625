//! The daemon's end of a process's stdio: output fanned out to attached
//! clients, and stdin from them moved to the shim in order. Containers and
//! execs each have one.

use std::future::Future;
use std::sync::Mutex;

use berth_runtime::driver::ShimClient;
use berth_runtime::protocol::Request;
use tokio::sync::mpsc;

/// What attach connections receive.
#[derive(Debug, Clone)]
pub enum AttachMsg {
    /// Output on stream 1 or 2.
    Output(u8, bytes::Bytes),
    /// The process ended (or its container went away); close the stream.
    End,
}

/// stdin traffic from attach connections, in order.
#[derive(Debug)]
pub enum StdinMsg {
    /// Bytes.
    Data(bytes::Bytes),
    /// An attached client closed its stdin.
    Eof,
}

/// Output subscribers and the stdin queue of one process.
#[derive(Debug)]
pub struct StdioHub {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<AttachMsg>>>,
    /// Where attach connections put stdin; it waits here until a process
    /// runs (the docker CLI writes stdin before it calls start).
    pub stdin_tx: mpsc::UnboundedSender<StdinMsg>,
    /// The receiving end, held here while no pump moves it.
    stdin_rx: Mutex<Option<mpsc::UnboundedReceiver<StdinMsg>>>,
}

impl Default for StdioHub {
    fn default() -> Self {
        let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
        StdioHub {
            subscribers: Mutex::new(Vec::new()),
            stdin_tx,
            stdin_rx: Mutex::new(Some(stdin_rx)),
        }
    }
}

impl StdioHub {
    /// Sends to every subscriber, dropping closed ones; `End` also forgets them.
    pub fn publish(&self, msg: AttachMsg) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| s.send(msg.clone()).is_ok());
        if matches!(msg, AttachMsg::End) {
            subs.clear();
        }
    }

    /// A new output subscriber.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<AttachMsg> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// Moves stdin to the shim until `stop` resolves; then the queue goes
    /// back to the hub for the next run. With `stdin_once` a client's EOF
    /// closes the process's stdin.
    pub fn spawn_pump<S>(self: &std::sync::Arc<Self>, client: ShimClient, stdin_once: bool, stop: S)
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let Some(mut rx) = self
            .stdin_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
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
            *hub.stdin_rx.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
        });
    }
}
