//! A bounded pipe between two threads, so that the two halves of a stream's
//! work run on two cores: a pull inflates (and keeps the raw blob) on one
//! while the other hashes and unpacks what came out.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};

/// Bytes per chunk handed across.
const CHUNK: usize = 256 * 1024;

/// Chunks in flight; they are recycled, so this also bounds the memory.
const DEPTH: usize = 4;

/// The writing end, for [`pump`].
pub(crate) struct PipeWriter {
    full: SyncSender<io::Result<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
}

/// The reading end: reads what [`pump`] sent, in order, then an end of
/// stream when the writer finished or the writer's error.
pub(crate) struct PipeReader {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// A new pipe.
pub(crate) fn pipe() -> (PipeWriter, PipeReader) {
    let (full_tx, full_rx) = mpsc::sync_channel(DEPTH);
    let (empty_tx, empty_rx) = mpsc::sync_channel(DEPTH + 1);
    (
        PipeWriter {
            full: full_tx,
            empty: empty_rx,
        },
        PipeReader {
            full: full_rx,
            empty: empty_tx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

/// Copies all of `src` into the pipe; a read error is passed on to the
/// reader. Returns early (`Ok(false)`) when the reader has gone away,
/// `Ok(true)` when `src` was copied to its end.
pub(crate) fn pump(src: &mut impl Read, w: PipeWriter) -> bool {
    loop {
        let mut buf = w.empty.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        buf.resize(CHUNK, 0);
        let mut got = 0;
        let err = loop {
            match src.read(&mut buf[got..]) {
                Ok(0) => break None,
                Ok(n) => {
                    got += n;
                    if got == buf.len() {
                        break None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        buf.truncate(got);
        let end = got < CHUNK;
        if got > 0 && w.full.send(Ok(buf)).is_err() {
            return false;
        }
        if let Some(e) = err {
            let _ = w.full.send(Err(e));
            return false;
        }
        if end {
            return true;
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.full.recv() {
                Ok(Ok(next)) => {
                    let used = std::mem::replace(&mut self.cur, next);
                    self.pos = 0;
                    let _ = self.empty.try_send(used);
                }
                Ok(Err(e)) => return Err(e),
                // The writer is gone: the end.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_everything_in_order() {
        let data: Vec<u8> = (0..(3 * CHUNK + 123))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let (w, mut r) = pipe();
        std::thread::scope(|s| {
            let src = &data;
            let t = s.spawn(move || pump(&mut &src[..], w));
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert!(t.join().unwrap());
            assert_eq!(got, data);
        });
    }

    #[test]
    fn passes_the_error_on_after_the_data() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                let n = buf.len().min(self.0).min(1000);
                buf[..n].fill(1);
                self.0 -= n;
                Ok(n)
            }
        }
        let (w, mut r) = pipe();
        std::thread::scope(|s| {
            let t = s.spawn(move || pump(&mut Failing(5000), w));
            let mut got = Vec::new();
            let e = r.read_to_end(&mut got).unwrap_err();
            assert_eq!(e.to_string(), "connection reset");
            assert_eq!(got.len(), 5000);
            assert!(!t.join().unwrap());
        });
    }

    #[test]
    fn writer_stops_when_the_reader_goes() {
        let (w, r) = pipe();
        drop(r);
        assert!(!pump(&mut io::repeat(0), w));
    }
}
