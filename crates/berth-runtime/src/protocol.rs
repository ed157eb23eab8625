//! The daemon ⇄ shim protocol, over the shim's Unix socket.
//!
//! Every message is a frame `[kind u8][len u32 BE][payload]`. Output and
//! input travel as raw bytes; everything else is one JSON [`Request`] or
//! [`Event`]. One enum per direction, in this one file, so both ends always
//! agree.

use serde::{Deserialize, Serialize};

/// Frame kinds.
pub mod kind {
    /// Daemon → shim: bytes for the container's stdin.
    pub const STDIN: u8 = 0;
    /// Shim → daemon: bytes the container wrote to stdout (or the TTY).
    pub const STDOUT: u8 = 1;
    /// Shim → daemon: bytes the container wrote to stderr.
    pub const STDERR: u8 = 2;
    /// Either way: a JSON [`super::Request`] or [`super::Event`].
    pub const CONTROL: u8 = 3;
}

/// Largest payload accepted in one frame; a bigger length means a broken peer.
pub const MAX_FRAME: usize = 1 << 20;

/// Daemon → shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container's process.
    Start,
    /// Send a signal to the container's init process.
    Kill {
        /// Signal number.
        signal: i32,
    },
    /// Set the TTY's size.
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// No more stdin: close the container's end.
    CloseStdin,
    /// The daemon has recorded the exit; the shim may clean up and leave.
    Shutdown,
    /// Whether this connection receives the process's output (it does
    /// until told otherwise). A daemon with nobody attached turns it off,
    /// so a detached container's output goes only to its log.
    Output {
        /// Send output frames on this connection.
        on: bool,
    },
}

/// How the container's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Docker's exit code: the status, or 128 + signal.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// RFC 3339 (nanoseconds) time of exit.
    pub finished_at: String,
    /// The kernel's OOM killer ended it.
    pub oom_killed: bool,
}

/// Shim → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Sent on every new connection: the container's state right now.
    Hello {
        /// Host PID of the container's init process.
        pid: i32,
        /// True once `Start` has run.
        started: bool,
        /// Set when the process has already exited.
        exit: Option<ExitStatus>,
    },
    /// The process is running (answer to `Start`).
    Started {
        /// RFC 3339 start time.
        started_at: String,
    },
    /// `Start` failed.
    StartFailed {
        /// Why.
        message: String,
    },
    /// The process ended; all its output was sent before this.
    Exited(ExitStatus),
}

/// The header of a frame.
pub fn header(kind: u8, len: usize) -> [u8; 5] {
    let n = (len as u32).to_be_bytes();
    [kind, n[0], n[1], n[2], n[3]]
}

/// A whole frame.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.extend_from_slice(&header(kind, payload.len()));
    v.extend_from_slice(payload);
    v
}

/// A control frame carrying `msg` as JSON.
pub fn encode_control<T: Serialize>(msg: &T) -> Vec<u8> {
    encode(
        kind::CONTROL,
        &serde_json::to_vec(msg).expect("protocol messages serialise"),
    )
}

/// Incremental frame decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

/// A frame whose length is absurd: the peer is not speaking this protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frame of {0} bytes exceeds the protocol limit")]
pub struct FrameTooLarge(pub usize);

impl Decoder {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, FrameTooLarge> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameTooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip() {
        let mut wire = encode(kind::STDOUT, b"abc");
        wire.extend(encode_control(&Request::Kill { signal: 9 }));
        let mut d = Decoder::default();
        d.push(&wire[..4]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&wire[4..]);
        assert_eq!(
            d.next_frame().unwrap(),
            Some((kind::STDOUT, b"abc".to_vec()))
        );
        let (k, p) = d.next_frame().unwrap().unwrap();
        assert_eq!(k, kind::CONTROL);
        assert_eq!(
            serde_json::from_slice::<Request>(&p).unwrap(),
            Request::Kill { signal: 9 }
        );
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn absurd_length_is_refused() {
        let mut d = Decoder::default();
        d.push(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn event_json_shape() {
        let e = Event::Exited(ExitStatus {
            code: 3,
            signal: None,
            finished_at: "t".into(),
            oom_killed: false,
        });
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"type\":\"exited\""), "{s}");
    }
}
