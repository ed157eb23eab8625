//! Blob bodies over plain HTTP with `sendfile(2)`: the kernel moves the
//! file's pages to the socket, with no read into user memory, no copy out of
//! it, and no blocking-pool hop per chunk.
//!
//! hyper still writes every response (status, headers, keep-alive, the
//! access log's byte count): a blob GET hands it a body of *placeholder*
//! frames, slices of one never-read region ([`placeholder`]), as long as the
//! content, and records the file and offset in the connection's [`Slot`].
//! The connection's transport, [`SendfileIo`], writes other bytes as they
//! come and answers a write of placeholder bytes with a `sendfile` of as
//! many bytes from the slot's file. Placeholders are told apart by address,
//! which holds because the connection is built with `writev(true)`: hyper
//! then queues body buffers as they are and never copies them. Were that to
//! change, the digests the tests check would show it; a placeholder write
//! with no file in the slot fails the connection instead of sending zeros.
//!
//! HTTP/1 serves one request at a time per connection, so one slot per
//! connection is enough: a response's body is written in full before the
//! next request is read. TLS connections do not get a slot, and their blobs
//! go through user memory (blobs.rs).

use std::fs::File;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Size of the placeholder region, so the most one `sendfile` call moves:
/// large enough that a call's hop to the blocking pool costs little.
const PLACEHOLDER_LEN: usize = 1 << 20;

/// What placeholder frames are cut from. Only its address matters: it is
/// never read, so its zeroed pages (fresh from mmap) never become resident,
/// and it costs the binary nothing, unlike a static array.
fn placeholder() -> &'static [u8] {
    static REGION: OnceLock<&'static [u8]> = OnceLock::new();
    REGION.get_or_init(|| vec![0; PLACEHOLDER_LEN].leak())
}

fn is_placeholder(b: &[u8]) -> bool {
    !b.is_empty() && placeholder().as_ptr_range().contains(&b.as_ptr())
}

/// The file a connection's current response sends from.
struct Job {
    file: Arc<File>,
    offset: u64,
    left: u64,
}

/// One per plain-HTTP connection, in its requests' extensions.
#[derive(Clone, Default)]
pub(crate) struct Slot(Arc<Mutex<Option<Job>>>);

impl Slot {
    /// Makes the connection send `len` bytes of `file` from `start` in
    /// place of the placeholder frames returned, which are the body.
    pub(crate) fn body(
        &self,
        file: File,
        start: u64,
        len: u64,
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job {
            file: Arc::new(file),
            offset: start,
            left: len,
        });
        futures_util::stream::unfold(len, move |left| async move {
            (left > 0).then(|| {
                let n = left.min(PLACEHOLDER_LEN as u64) as usize;
                (Ok(Bytes::from_static(&placeholder()[..n])), left - n as u64)
            })
        })
    }

    /// Sends up to `n` bytes of the current job to `sock`.
    fn send(&self, sock: &TcpStream, n: usize) -> io::Result<usize> {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(job) = guard.as_mut().filter(|j| j.left > 0) else {
            return Err(io::Error::other("placeholder bytes with no file to send"));
        };
        let want = (n as u64).min(job.left) as usize;
        let mut offset = job.offset;
        let sent = rustix::fs::sendfile(sock, &*job.file, Some(&mut offset), want)?;
        if sent == 0 {
            // The file is shorter than its stat said: never pad.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        job.offset = offset;
        job.left -= sent as u64;
        if job.left == 0 {
            *guard = None;
        }
        Ok(sent)
    }
}

/// A TCP connection that turns placeholder bytes into `sendfile`.
///
/// The `sendfile` calls run on the blocking pool, like the store's other
/// file reads: one reads the file's pages from disk when they are not
/// cached, which must not hold up a worker thread and every connection on
/// it. The socket is shared with that call, so it stays open while the call
/// runs even if the connection is dropped meanwhile.
pub(crate) struct SendfileIo {
    tcp: Arc<TcpStream>,
    slot: Slot,
    sending: Option<JoinHandle<io::Result<usize>>>,
}

impl SendfileIo {
    pub(crate) fn new(tcp: TcpStream, slot: Slot) -> SendfileIo {
        SendfileIo {
            tcp: Arc::new(tcp),
            slot,
            sending: None,
        }
    }

    /// Sends up to `n` placeholder bytes' worth of the file. hyper calls
    /// again with the same placeholder slice while this is pending, so the
    /// count of a call that finishes later is the answer to that call.
    fn poll_sendfile(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<io::Result<usize>> {
        loop {
            if let Some(call) = &mut self.sending {
                let r = ready!(Pin::new(call).poll(cx));
                self.sending = None;
                match r {
                    Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Ok(r) => return Poll::Ready(r),
                    Err(e) => return Poll::Ready(Err(io::Error::other(e))),
                }
            }
            ready!(self.tcp.poll_write_ready(cx))?;
            let (tcp, slot) = (self.tcp.clone(), self.slot.clone());
            // try_io clears the readiness it saw on EAGAIN, and only that:
            // a wake-up that came during the call is kept.
            self.sending = Some(tokio::task::spawn_blocking(move || {
                tcp.try_io(Interest::WRITABLE, || slot.send(&tcp, n))
            }));
        }
    }
}

impl AsyncRead for SendfileIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.remaining();
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            let mut got = false;
            // Into the unfilled part as it is: zeroing it first would cost
            // uploads a pass over hyper's whole read buffer per read. A
            // short read drained the socket: the outer try_io then clears
            // the readiness, as tokio's own poll_read does, which saves the
            // read that would only say EAGAIN.
            let r = self.tcp.try_io(Interest::READABLE, || {
                let n = self.tcp.try_read_buf(buf)?;
                got = true;
                if n > 0 && n < room {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match r {
                _ if got => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

impl SendfileIo {
    fn poll_write_plain(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

impl AsyncWrite for SendfileIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Plain bytes up to the first placeholder go out as one writev; a
        // placeholder at the front goes by sendfile. A short count is fine:
        // hyper comes back with the rest.
        match bufs.iter().position(|b| is_placeholder(b)) {
            Some(0) => self.poll_sendfile(cx, bufs[0].len()),
            Some(k) => self.poll_write_plain(cx, &bufs[..k]),
            None => self.poll_write_plain(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(
            match rustix::net::shutdown(&*self.tcp, rustix::net::Shutdown::Write) {
                // Already gone: nothing left to shut.
                Err(rustix::io::Errno::NOTCONN) => Ok(()),
                r => r.map_err(io::Error::from),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_known_by_address() {
        assert!(is_placeholder(&placeholder()[5..10]));
        assert!(!is_placeholder(&placeholder()[..0]));
        let zeros = vec![0u8; 16];
        assert!(!is_placeholder(&zeros));
    }
}
