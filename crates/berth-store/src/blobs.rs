//! The content-addressed blob store: `<root>/sha256/<hex>`, written through
//! `<root>/ingest/` temp files that are verified before they are renamed in.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::{Digest, StoreError};

/// Blobs by sha256 under one root directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store at `root` and removes temp files
    /// that an earlier process left behind: an ingest that did not commit
    /// never happened.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, StoreError> {
        let root = root.into();
        let store = BlobStore { root };
        for d in [store.root.join("sha256"), store.ingest_dir()] {
            fs::create_dir_all(&d).map_err(|e| StoreError::io("create", &d, e))?;
        }
        store.sweep_ingest()?;
        Ok(store)
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    fn sweep_ingest(&self) -> Result<(), StoreError> {
        let dir = self.ingest_dir();
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("read", &dir, e))?;
        for ent in entries.flatten() {
            let _ = fs::remove_file(ent.path());
        }
        Ok(())
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("sha256").join(d.hex())
    }

    /// True when the blob is present.
    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Size in bytes of a present blob.
    pub fn size(&self, d: &Digest) -> Result<u64, StoreError> {
        let p = self.path(d);
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| not_found_or_io(e, d, &p))
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let mut name = [0u8; 8];
        // A unique temp name per writer; collisions only cost a retry.
        for attempt in 0..16u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            name.copy_from_slice(
                &(nanos as u64 ^ (std::process::id() as u64) << 32 ^ attempt as u64).to_be_bytes(),
            );
            let path = self.ingest_dir().join(hex::encode(name));
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(BlobWriter {
                        store: self.clone(),
                        file: Some(io::BufWriter::with_capacity(256 * 1024, file)),
                        path,
                        hasher: Sha256::new(),
                        size: 0,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io("create", &path, e)),
            }
        }
        Err(StoreError::io(
            "create",
            self.ingest_dir(),
            io::Error::new(io::ErrorKind::AlreadyExists, "no free temp name"),
        ))
    }

    /// Stores `data` and returns its digest.
    pub fn put(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let mut w = self.writer()?;
        w.write_all(data)
            .map_err(|e| StoreError::io("write", &w.path, e))?;
        Ok(w.commit(None)?.0)
    }

    /// Stores everything `r` yields; when `expected` is given, the content
    /// must hash to it or nothing is stored.
    pub fn put_reader(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let mut w = self.writer()?;
        io::copy(r, &mut w).map_err(|e| StoreError::io("write", &w.path, e))?;
        w.commit(expected)
    }

    /// Opens a blob for reading; the reader fails at its end if the bytes on
    /// disk no longer hash to `d` (a truncated or tampered blob is never used).
    pub fn reader(&self, d: &Digest) -> Result<VerifyingReader<BufReader<File>>, StoreError> {
        let p = self.path(d);
        let f = File::open(&p).map_err(|e| not_found_or_io(e, d, &p))?;
        Ok(VerifyingReader::new(
            BufReader::with_capacity(256 * 1024, f),
            d.clone(),
        ))
    }

    /// Reads a whole blob, verified.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut r = self.reader(d)?;
        let mut v = Vec::new();
        r.read_to_end(&mut v).map_err(|e| match e.into_inner() {
            Some(inner) => match inner.downcast::<StoreError>() {
                Ok(se) => *se,
                Err(other) => StoreError::io("read", self.path(d), io::Error::other(other)),
            },
            None => StoreError::io("read", self.path(d), io::Error::other("read failed")),
        })?;
        Ok(v)
    }

    /// Removes a blob; absent is fine.
    pub fn delete(&self, d: &Digest) -> Result<(), StoreError> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", &p, e)),
        }
    }

    /// All digests present.
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.root.join("sha256");
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir)
            .map_err(|e| StoreError::io("read", &dir, e))?
            .flatten()
        {
            if let Some(name) = ent.file_name().to_str() {
                if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

fn not_found_or_io(e: io::Error, d: &Digest, p: &Path) -> StoreError {
    if e.kind() == io::ErrorKind::NotFound {
        StoreError::BlobNotFound(d.to_string())
    } else {
        StoreError::io("open", p, e)
    }
}

/// A blob being written. Dropped without [`BlobWriter::commit`], it leaves
/// nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    file: Option<io::BufWriter<File>>,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    committed: bool,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer closed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    /// fsyncs, verifies against `expected`, and renames the blob into place
    /// (then fsyncs the directory). An existing blob with the same digest is
    /// kept: same digest, same bytes.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let file = self.file.take().expect("commit once");
        let file = file
            .into_inner()
            .map_err(|e| StoreError::io("write", &self.path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| StoreError::io("sync", &self.path, e))?;
        drop(file);
        let actual = Digest::from_hasher(self.hasher.clone());
        if let Some(exp) = expected {
            if *exp != actual {
                return Err(StoreError::DigestMismatch {
                    expected: exp.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let dest = self.store.path(&actual);
        fs::rename(&self.path, &dest).map_err(|e| StoreError::io("rename", &dest, e))?;
        self.committed = true;
        let dir = self.store.root.join("sha256");
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok((actual, self.size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A reader that hashes what passes and fails at EOF on a mismatch.
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: Digest,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which must yield content hashing to `expected`.
    pub fn new(inner: R, expected: Digest) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            expected,
            done: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.done {
            self.done = true;
            let actual = Digest::from_hasher(self.hasher.clone());
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    StoreError::DigestMismatch {
                        expected: self.expected.to_string(),
                        actual: actual.to_string(),
                    },
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlobStore::open(tmp.path().join("blobs")).unwrap();
        let d = s.put(b"hello").unwrap();
        assert!(s.exists(&d));
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert_eq!(s.size(&d).unwrap(), 5);
        // Tamper: the next read must fail, not hand out the wrong bytes.
        fs::write(s.path(&d), b"hellO").unwrap();
        assert!(matches!(s.read(&d), Err(StoreError::DigestMismatch { .. })));
        // Truncate.
        fs::write(s.path(&d), b"hel").unwrap();
        assert!(s.read(&d).is_err());
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlobStore::open(tmp.path()).unwrap();
        let wrong = Digest::of(b"other");
        let err = s.put_reader(&mut &b"data"[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_and_stale_temp_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlobStore::open(tmp.path()).unwrap();
        let mut w = s.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);
        fs::write(tmp.path().join("ingest/leftover"), b"x").unwrap();
        BlobStore::open(tmp.path()).unwrap();
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);
    }
}
