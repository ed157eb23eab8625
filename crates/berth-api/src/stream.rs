//! Docker's multiplexed stream framing (`stdcopy`): an 8-byte header
//! `[stream, 0, 0, 0, len u32 BE]` before each payload. Used by attach, logs
//! and exec when the container has no TTY.

/// Stream ids in the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamKind {
    /// Standard input (only seen in logs of `--details`, kept for completeness).
    Stdin = 0,
    /// Standard output.
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
    /// System errors (daemon messages inside the stream).
    System = 3,
}

impl StreamKind {
    /// From the header byte.
    pub fn from_byte(b: u8) -> Option<StreamKind> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            3 => Some(StreamKind::System),
            _ => None,
        }
    }
}

/// The 8-byte header for a payload of `len` bytes.
pub fn frame_header(kind: StreamKind, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [kind as u8, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Header plus payload in one buffer.
pub fn frame(kind: StreamKind, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&frame_header(kind, payload.len()));
    v.extend_from_slice(payload);
    v
}

/// Incremental decoder: feed bytes, take complete frames.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

impl Demuxer {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is buffered. An unknown stream byte is
    /// reported as `Err` with that byte.
    pub fn next_frame(&mut self) -> Option<Result<(StreamKind, Vec<u8>), u8>> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let kind = self.buf[0];
        let payload = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Some(
            StreamKind::from_byte(kind)
                .map(|k| (k, payload))
                .ok_or(kind),
        )
    }

    /// Bytes left that do not form a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_in_pieces() {
        let mut wire = frame(StreamKind::Stdout, b"hi\n");
        wire.extend(frame(StreamKind::Stderr, b"err"));
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
        let mut d = Demuxer::default();
        let mut got = vec![];
        for b in wire.chunks(3) {
            d.push(b);
            while let Some(f) = d.next_frame() {
                got.push(f.unwrap());
            }
        }
        assert_eq!(
            got,
            vec![
                (StreamKind::Stdout, b"hi\n".to_vec()),
                (StreamKind::Stderr, b"err".to_vec())
            ]
        );
        assert_eq!(d.pending(), 0);
    }
}
