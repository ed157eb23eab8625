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
}
