//! The `local` log driver's file format: compact, binary, read forward.
//!
//! Docker's `local` driver stores protobuf records; berth's has the same
//! purpose (a log much smaller than json-file, rotated and compressed by
//! default) with a format of its own:
//!
//! ```text
//! file    = header record*
//! header  = "BERTHLG1"  u32-le n  attrs[n]      attrs: a JSON object of
//!                                               strings (may be empty, n = 0)
//! record  = tag:u8  t:varint  len:varint  data[len]
//! ```
//!
//! - `tag` is the stream, 1 (stdout) or 2 (stderr), plus 0x80 when `t` is
//!   an absolute time; any other value means the file is damaged from there.
//! - `t` is a time in nanoseconds since the Unix epoch, zigzag-encoded:
//!   absolute in the first record a writer puts in a file, else the
//!   difference from the previous record's time. Messages read in one go
//!   share a time and so cost one byte for it.
//! - `len` and `dt` are LEB128 varints (7 bits a byte, low bits first).
//! - `data` is the message as json-file would store it in `log`: a line
//!   with its `\n`, or up to 16 KiB of a longer line without one.
//!
//! A message costs 3–6 bytes more than its text (json-file: about 70, plus
//! escapes). Every file, rotated or current, starts with a header, so it can
//! be read alone; rotated files are gzipped whole (`.N.gz`). Times need the
//! records before them, so files are read from their start — `--tail`
//! counts records first, then skips.

/// The first bytes of every file.
pub const MAGIC: &[u8; 8] = b"BERTHLG1";

/// Longest record body a reader accepts (a message is at most 16 KiB).
const MAX_LEN: u64 = 1 << 20;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint at the start of `buf`: `Ok(None)` when it is not all there yet.
fn get_varint(buf: &[u8]) -> Result<Option<(u64, usize)>, Damaged> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate() {
        if i == 10 {
            return Err(Damaged);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(Some((v, i + 1)));
        }
    }
    Ok(None)
}

/// The file is not in this format, or damaged at this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damaged;

/// Appends a header with these attributes (a JSON object, or empty).
pub fn encode_header(attrs_json: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(attrs_json.len() as u32).to_le_bytes());
    out.extend_from_slice(attrs_json);
}

/// Parses a header: the attributes' JSON and the bytes it took, or
/// `Ok(None)` when `buf` does not hold all of it yet.
pub fn decode_header(buf: &[u8]) -> Result<Option<(&[u8], usize)>, Damaged> {
    let have = buf.len().min(MAGIC.len());
    if buf[..have] != MAGIC[..have] {
        return Err(Damaged);
    }
    if buf.len() < 12 {
        return Ok(None);
    }
    let n = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
    if n as u64 > MAX_LEN {
        return Err(Damaged);
    }
    match buf.get(12..12 + n) {
        Some(attrs) => Ok(Some((attrs, 12 + n))),
        None => Ok(None),
    }
}

/// Writes records, keeping the time of the last one.
#[derive(Debug, Default)]
pub struct Encoder {
    last: Option<i64>,
}

impl Encoder {
    /// A fresh encoder: its first record carries an absolute time.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Appends one record.
    pub fn record(&mut self, stream: u8, time_ns: i64, data: &[u8], out: &mut Vec<u8>) {
        let (tag, t) = match self.last {
            Some(last) => (stream, time_ns.wrapping_sub(last)),
            None => (stream | 0x80, time_ns),
        };
        self.last = Some(time_ns);
        out.push(tag);
        put_varint(out, ((t << 1) ^ (t >> 63)) as u64);
        put_varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }
}

/// One decoded record; `data` borrows the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The message.
    pub data: &'a [u8],
}

/// Reads records, keeping the time of the last one.
#[derive(Debug, Default)]
pub struct Decoder {
    last: i64,
}

impl Decoder {
    /// A fresh decoder, for the start of a file (after its header).
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// The record at the start of `buf` and its length, `Ok(None)` when it
    /// is not all there yet.
    pub fn record<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Record<'a>, usize)>, Damaged> {
        let Some(&tag) = buf.first() else {
            return Ok(None);
        };
        let stream = tag & 0x7f;
        if stream != 1 && stream != 2 {
            return Err(Damaged);
        }
        let Some((zz, a)) = get_varint(&buf[1..])? else {
            return Ok(None);
        };
        let Some((len, b)) = get_varint(&buf[1 + a..])? else {
            return Ok(None);
        };
        if len > MAX_LEN {
            return Err(Damaged);
        }
        let start = 1 + a + b;
        let end = start + len as usize;
        let Some(data) = buf.get(start..end) else {
            return Ok(None);
        };
        let t = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        self.last = if tag & 0x80 != 0 {
            t
        } else {
            self.last.wrapping_add(t)
        };
        Ok(Some((
            Record {
                stream,
                time_ns: self.last,
                data,
            },
            end,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        encode_header(br#"{"a":"b"}"#, &mut out);
        let mut e = Encoder::new();
        let t0 = 1_704_067_200_123_456_789i64;
        let msgs: Vec<(u8, i64, Vec<u8>)> = vec![
            (1, t0, b"hello\n".to_vec()),
            (2, t0, b"oops\n".to_vec()),
            (1, t0 + 50_000, vec![b'x'; 16 * 1024]),
            (1, t0 - 7, b"clock went back\n".to_vec()),
            (2, t0 + 1, Vec::new()),
        ];
        for (s, t, d) in &msgs {
            e.record(*s, *t, d, &mut out);
        }
        // A second writer (a new shim) appending to the same file.
        let mut e2 = Encoder::new();
        let more = vec![
            (1u8, t0 + 9_000_000_000, b"next run\n".to_vec()),
            (1, t0 + 9_000_000_001, b"x".to_vec()),
        ];
        for (s, t, d) in &more {
            e2.record(*s, *t, d, &mut out);
        }
        let msgs: Vec<_> = msgs.into_iter().chain(more).collect();
        let (attrs, mut pos) = decode_header(&out).unwrap().unwrap();
        assert_eq!(attrs, br#"{"a":"b"}"#);
        let mut d = Decoder::new();
        for (s, t, data) in &msgs {
            let (r, n) = d.record(&out[pos..]).unwrap().unwrap();
            assert_eq!((r.stream, r.time_ns, r.data), (*s, *t, &data[..]));
            pos += n;
        }
        assert_eq!(pos, out.len());
        assert_eq!(d.record(&out[pos..]), Ok(None));
    }

    #[test]
    fn partial_and_damaged() {
        let mut out = Vec::new();
        encode_header(b"", &mut out);
        assert_eq!(out.len(), 12);
        assert_eq!(decode_header(&out[..5]), Ok(None));
        assert_eq!(decode_header(b"NOTALOG!xxxx"), Err(Damaged));
        let start = out.len();
        Encoder::new().record(1, 1_700_000_000_000_000_000, b"abc\n", &mut out);
        // Every prefix of a record is "not yet".
        for cut in start..out.len() {
            assert_eq!(
                Decoder::new().record(&out[start..cut]),
                Ok(None),
                "cut {cut}"
            );
        }
        assert_eq!(Decoder::new().record(&[9, 0, 0]), Err(Damaged));
        // Small: a short line costs a few bytes more than its text.
        let mut small = Vec::new();
        let mut e = Encoder::new();
        e.record(1, 5, b"x", &mut small);
        small.clear();
        e.record(1, 5, b"0123456789abcdef\n", &mut small);
        assert_eq!(small.len(), 17 + 3);
        assert_eq!(
            Decoder::new()
                .record(&[0x81, 2, 1, b'z'])
                .unwrap()
                .unwrap()
                .0
                .time_ns,
            1
        );
    }
}
