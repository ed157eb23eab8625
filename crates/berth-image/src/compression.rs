//! Layer blob compression: detection by magic bytes, streaming decompression,
//! and a reader that hashes what passes through it.
//!
//! A registry blob is hashed as it is (its digest names it in the manifest)
//! while the uncompressed tar is hashed again for the config's `diff_ids`, so
//! a pull reads one stream through two [`HashingReader`]s:
//!
//! ```no_run
//! # fn f(blob: std::fs::File) -> std::io::Result<()> {
//! use berth_image::compression::{decompress, HashingReader};
//! let mut compressed = HashingReader::new(blob);
//! let (_kind, tar) = decompress(&mut compressed)?;
//! let mut tar = HashingReader::new(tar);
//! std::io::copy(&mut tar, &mut std::io::sink())?;
//! let diff_id = tar.digest();
//! drop(tar);
//! let blob_digest = compressed.digest();
//! # Ok(()) }
//! ```

use std::fmt;
use std::io::{self, Cursor, Read};

use sha2::{Digest as _, Sha256};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members, as `gzip -d` reads them).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

/// gzip member header: ID1 ID2 and CM=8 (deflate), the only method in use.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// zstd frame magic 0xFD2FB528, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// How many bytes [`Compression::detect`] needs to decide.
const MAGIC_LEN: usize = 4;

impl Compression {
    /// Detects the compression from the first bytes of a stream (4 suffice).
    /// Anything unrecognised is [`Compression::None`]: a plain tar starts with
    /// a file name, and a tar parser will reject what is not a tar.
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if magic.starts_with(&ZSTD_MAGIC) || is_zstd_skippable(magic) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The name Docker and the OCI media types use (`gzip`, `zstd`), or
    /// `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// zstd skippable frames (magic 0x184D2A50..=0x184D2A5F) may open a zstd
/// stream (seekable-format indexes do), so they count as zstd too.
fn is_zstd_skippable(magic: &[u8]) -> bool {
    magic.len() >= 4 && magic[0] & 0xf0 == 0x50 && magic[1..4] == [0x2a, 0x4d, 0x18]
}

/// Sniffs the first bytes of `r` (without losing them) and returns the
/// detected compression and a reader of the decompressed stream.
///
/// The decompressors read their input to its end (gzip members and zstd
/// frames may be concatenated), so a [`HashingReader`] under `r` sees the
/// whole blob once the returned reader has been drained.
pub fn decompress<'a, R: Read + 'a>(mut r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut magic = [0u8; MAGIC_LEN];
    let mut got = 0;
    // A single read may return fewer bytes than asked (pipes, sockets).
    while got < MAGIC_LEN {
        match r.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = Compression::detect(&magic[..got]);
    let whole = Cursor::new(magic[..got].to_vec()).chain(r);
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
    };
    Ok((kind, reader))
}

/// A [`Read`] adapter that computes the sha256 and counts the bytes of
/// everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `r`; nothing has been hashed yet.
    pub fn new(r: R) -> Self {
        HashingReader {
            inner: r,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// How many bytes have been read so far.
    ///
    /// With `std::io::Read` in scope, `r.bytes()` on an owned reader picks
    /// `Read::bytes` (by-value receivers are tried first) and fails to
    /// compile; write `HashingReader::bytes(&r)` or `(&r).bytes()`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `sha256:<hex>` of the bytes read so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Gives back the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<R> fmt::Debug for HashingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashingReader")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Uncompressed bytes per gzip member written by [`gzip_parallel`]: big
/// enough that the per-member cost (an 18-byte frame, a cold 32 KiB
/// window) is lost in the noise, small enough to spread one layer over
/// every core and keep little in flight.
pub const GZIP_BLOCK: usize = 1 << 20;

/// How many blocks may wait between the reader, the compressors and the
/// writer, per compressor: bounds the memory of a compression.
const BLOCKS_IN_FLIGHT: usize = 4;

/// gzip-compresses `src` into `dst` on `threads` threads: the input is cut
/// into [`GZIP_BLOCK`]-sized blocks, each compressed as its own gzip member
/// and written in order. Concatenated members are one valid gzip stream
/// (RFC 1952 §2.2; `gzip -d`, Go's `gzip.Reader` and [`decompress`] read
/// them whole), and the output depends only on the input and `level`, not on
/// the thread count. Each member is inflated again and compared with its
/// input before it is written, so a compressor fault cannot reach `dst`.
/// Returns the number of uncompressed bytes.
pub fn gzip_parallel<R: Read, W: io::Write + Send>(
    mut src: R,
    dst: W,
    level: flate2::Compression,
    threads: usize,
) -> io::Result<u64> {
    use std::collections::BTreeMap;
    use std::sync::{mpsc, Arc, Mutex};

    let threads = threads.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(threads * BLOCKS_IN_FLIGHT);
    // Owned by the compressors only: when they have all stopped (the writer
    // failed), the reader's next send fails instead of blocking forever.
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) =
        mpsc::sync_channel::<(usize, io::Result<Vec<u8>>)>(threads * BLOCKS_IN_FLIGHT);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let work_rx = work_rx.clone();
            s.spawn(move || loop {
                // The lock is held only to take one block.
                let next = work_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((i, block)) = next else { return };
                if done_tx.send((i, gzip_member(&block, level))).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        drop(work_rx);
        let writer = s.spawn(move || -> io::Result<()> {
            let mut dst = dst;
            let mut pending = BTreeMap::new();
            let mut next = 0;
            for (i, member) in done_rx {
                pending.insert(i, member?);
                while let Some(m) = pending.remove(&next) {
                    dst.write_all(&m)?;
                    next += 1;
                }
            }
            // A gap means a compressor died: never hand out a short stream.
            if !pending.is_empty() {
                return Err(io::Error::other("a gzip block was lost"));
            }
            dst.flush()
        });
        let mut total = 0u64;
        let mut i = 0;
        let read = loop {
            let mut block = vec![0u8; GZIP_BLOCK];
            let n = match read_full(&mut src, &mut block) {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            // An empty input still makes one (empty) member: a valid gzip.
            if n == 0 && i > 0 {
                break Ok(total);
            }
            block.truncate(n);
            total += n as u64;
            // A closed channel means the writer failed; its error wins.
            if work_tx.send((i, block)).is_err() {
                break Ok(total);
            }
            i += 1;
            // No stop at a short block: reading on to the end lets a
            // verifying `src` check its digest there.
        };
        drop(work_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("gzip writer panicked")));
        let total = read?;
        written?;
        Ok(total)
    })
}

/// One gzip member of `block`, checked by inflating it back. A block that
/// does not shrink (random or already compressed data) is stored instead:
/// the fast level would make it ~5% bigger, and inflating Huffman codes is
/// far slower than copying stored bytes, for every pull after.
fn gzip_member(block: &[u8], level: flate2::Compression) -> io::Result<Vec<u8>> {
    use io::Write as _;
    let deflate = |level| -> io::Result<Vec<u8>> {
        let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(block.len() / 2 + 64), level);
        e.write_all(block)?;
        e.finish()
    };
    let mut member = deflate(level)?;
    if member.len() >= block.len() && level != flate2::Compression::none() {
        member = deflate(flate2::Compression::none())?;
    }
    let mut back = Vec::with_capacity(block.len());
    flate2::read::GzDecoder::new(&member[..]).read_to_end(&mut back)?;
    if back != block {
        return Err(io::Error::other("gzip round trip changed a block"));
    }
    Ok(member)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A reader that hands out one byte per call, as a slow pipe might.
    struct Trickle<R>(R);
    impl<R: Read> Read for Trickle<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(mut r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn detect_by_magic() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(Compression::detect(&ZSTD_MAGIC), Compression::Zstd);
        assert_eq!(
            Compression::detect(&[0x5e, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
        assert_eq!(Compression::detect(&[0x1f]), Compression::None);
        assert_eq!(Compression::detect(&[]), Compression::None);
    }

    #[test]
    fn gzip_round_trip() {
        let data = sample();
        let (kind, r) = decompress(Cursor::new(gzip(&data))).unwrap();
        assert_eq!(kind, Compression::Gzip);
        assert_eq!(read_all(r), data);
    }

    #[test]
    fn concatenated_gzip_members_read_whole() {
        let mut blob = gzip(b"first ");
        blob.extend(gzip(b"second"));
        let (_, r) = decompress(Cursor::new(blob)).unwrap();
        assert_eq!(read_all(r), b"first second");
    }

    #[test]
    fn zstd_round_trip() {
        let data = sample();
        let blob = zstd::encode_all(Cursor::new(&data), 3).unwrap();
        let (kind, r) = decompress(Cursor::new(blob)).unwrap();
        assert_eq!(kind, Compression::Zstd);
        assert_eq!(read_all(r), data);
    }

    #[test]
    fn plain_passes_through_even_from_a_trickle() {
        let data = sample();
        let (kind, r) = decompress(Trickle(Cursor::new(data.clone()))).unwrap();
        assert_eq!(kind, Compression::None);
        assert_eq!(read_all(r), data);
    }

    #[test]
    fn gzip_sniffed_from_a_trickle() {
        let data = sample();
        let (kind, r) = decompress(Trickle(Cursor::new(gzip(&data)))).unwrap();
        assert_eq!(kind, Compression::Gzip);
        assert_eq!(read_all(r), data);
    }

    #[test]
    fn short_and_empty_inputs() {
        let (kind, r) = decompress(Cursor::new(vec![0x1f])).unwrap();
        assert_eq!(kind, Compression::None);
        assert_eq!(read_all(r), [0x1f]);
        let (kind, r) = decompress(Cursor::new(Vec::new())).unwrap();
        assert_eq!(kind, Compression::None);
        assert!(read_all(r).is_empty());
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut blob = gzip(&sample());
        let mid = blob.len() / 2;
        blob[mid] ^= 0xff;
        let (_, mut r) = decompress(Cursor::new(blob)).unwrap();
        assert!(io::copy(&mut r, &mut io::sink()).is_err());
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let data = sample();
        let mut r = HashingReader::new(Trickle(Cursor::new(&data[..])));
        let mut buf = [0u8; 1000];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(HashingReader::bytes(&r), 1000);
        assert_eq!(
            r.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(&data[..1000])))
        );
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(HashingReader::bytes(&r), data.len() as u64);
        assert_eq!(
            r.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(&data)))
        );
        assert_eq!(r.into_inner().0.position(), data.len() as u64);
    }

    #[test]
    fn hashing_reader_of_nothing() {
        let r = HashingReader::new(io::empty());
        assert_eq!(HashingReader::bytes(&r), 0);
        assert_eq!(
            r.digest(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hashing_under_decompress_sees_the_whole_blob() {
        let data = sample();
        let blob = gzip(&data);
        let mut compressed = HashingReader::new(Cursor::new(&blob[..]));
        let (_, tar) = decompress(&mut compressed).unwrap();
        let mut plain = HashingReader::new(tar);
        io::copy(&mut plain, &mut io::sink()).unwrap();
        drop(plain);
        assert_eq!(HashingReader::bytes(&compressed), blob.len() as u64);
        assert_eq!(
            compressed.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(&blob)))
        );
    }

    #[test]
    fn parallel_gzip_round_trips_and_ignores_thread_count() {
        // Several blocks and a ragged tail.
        let data: Vec<u8> = (0..(GZIP_BLOCK * 3 + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut one = Vec::new();
        let n = gzip_parallel(&data[..], &mut one, flate2::Compression::fast(), 1).unwrap();
        assert_eq!(n, data.len() as u64);
        let mut three = Vec::new();
        gzip_parallel(&data[..], &mut three, flate2::Compression::fast(), 3).unwrap();
        assert_eq!(one, three);
        let (kind, r) = decompress(Cursor::new(three)).unwrap();
        assert_eq!(kind, Compression::Gzip);
        assert_eq!(read_all(r), data);
    }

    #[test]
    fn incompressible_blocks_are_stored_not_grown() {
        let noise = crate::testdata::noise(GZIP_BLOCK + 5000, 0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::new();
        gzip_parallel(&noise[..], &mut out, flate2::Compression::fast(), 2).unwrap();
        // Stored blocks cost a few bytes each, a member 18: well under 0.1%
        // (the fast level grew it by 5%).
        let most = noise.len() + noise.len() / 1000;
        assert!(out.len() <= most, "{} > {most}", out.len());
        let (_, r) = decompress(Cursor::new(out)).unwrap();
        assert_eq!(read_all(r), noise);
        // Compressible input is still compressed.
        let text = b"the same line again and again\n".repeat(40_000);
        let mut out = Vec::new();
        gzip_parallel(&text[..], &mut out, flate2::Compression::fast(), 2).unwrap();
        assert!(out.len() < text.len() / 10);
    }

    #[test]
    fn parallel_gzip_of_nothing_and_of_one_exact_block() {
        let mut out = Vec::new();
        assert_eq!(
            gzip_parallel(io::empty(), &mut out, flate2::Compression::fast(), 2).unwrap(),
            0
        );
        let (kind, r) = decompress(Cursor::new(out)).unwrap();
        assert_eq!(kind, Compression::Gzip);
        assert!(read_all(r).is_empty());
        let data = vec![9u8; GZIP_BLOCK];
        let mut out = Vec::new();
        gzip_parallel(Trickle(&data[..]), &mut out, flate2::Compression::fast(), 2).unwrap();
        let (_, r) = decompress(Cursor::new(out)).unwrap();
        assert_eq!(read_all(r), data);
    }

    #[test]
    fn parallel_gzip_reports_a_read_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = gzip_parallel(Broken, Vec::new(), flate2::Compression::fast(), 2).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
    }

    #[test]
    fn parallel_gzip_stops_when_the_writer_fails() {
        struct Full;
        impl io::Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        // Far more blocks than fit in flight: the reader must not hang.
        let src = io::repeat(1).take((GZIP_BLOCK * 40) as u64);
        let err = gzip_parallel(src, Full, flate2::Compression::fast(), 2).unwrap_err();
        assert!(err.to_string().contains("disk full"));
    }
}
