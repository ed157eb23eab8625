//! The container's log, as the shim writes it: Docker's json-file (one JSON
//! object per line, `{"log":"…\n","stream":"stdout","time":"RFC3339Nano"}`,
//! with `"attrs"` when `--log-opt labels/env/tag` ask for them) or berth's
//! `local` format ([`super::log_local`]), rotated by size and optionally
//! gzipped. Files, names and the rotation protocol: [`super::log_files`].
//!
//! Output is cut into messages at newlines and at 16 KiB, as Docker's
//! copier does; a message gets the time its bytes were read. Writes go
//! through a 64 KiB buffer that the monitor flushes after every read, so a
//! follower sees a line as soon as the container wrote it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::log_files::{
    format_time, now_ns, rotated_path, sibling, LogDriver, LogSettings, RotationLock, MAX_MESSAGE,
};
use super::log_local;

const BUFFER: usize = 64 * 1024;
/// How long the last flush waits for a compression in progress.
const COMPRESS_WAIT: Duration = Duration::from_secs(5);

/// Appends a container's output to its log file, rotating it.
pub struct ContainerLog {
    path: PathBuf,
    settings: LogSettings,
    out: BufWriter<File>,
    /// Bytes in the current file, buffered ones included.
    size: u64,
    partial: [Vec<u8>; 2],
    /// `{"k":"v",…}` for json-file, empty without attributes.
    attrs_json: Vec<u8>,
    local: log_local::Encoder,
    lock: RotationLock,
    rotations: u64,
    compressor: Option<Compressor>,
    record: Vec<u8>,
    time_ns: i64,
    time_text: Vec<u8>,
    /// An error was reported and nothing succeeded since: stay quiet.
    failing: bool,
}

impl std::fmt::Debug for ContainerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerLog")
            .field("path", &self.path)
            .field("settings", &self.settings)
            .finish()
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl ContainerLog {
    /// Opens (creating it and its directory) the current file at `path` to
    /// append to, as `settings` says. A file left by an earlier run is
    /// continued; a record cut short by a crash is dropped first.
    pub fn open(path: &Path, settings: &LogSettings) -> io::Result<ContainerLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock = RotationLock::open(path, true)?;
        let mut file = open_append(path)?;
        repair_tail(&mut file, settings.driver)?;
        let size = file.metadata()?.len();
        let attrs_json = if settings.attrs.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&settings.attrs).map_err(io::Error::other)?
        };
        let mut log = ContainerLog {
            path: path.to_path_buf(),
            settings: settings.clone(),
            out: BufWriter::with_capacity(BUFFER, file),
            size,
            partial: [Vec::new(), Vec::new()],
            attrs_json,
            local: log_local::Encoder::new(),
            rotations: lock.rotations(),
            lock,
            compressor: None,
            record: Vec::new(),
            time_ns: 0,
            time_text: Vec::new(),
            failing: false,
        };
        if size == 0 {
            log.start_file()?;
        }
        // Left by a shim that ended while compressing: start over.
        let _ = std::fs::remove_file(sibling(path, "gz.tmp"));
        if log.settings.compress {
            for i in 1..log.settings.max_file {
                if let Ok(f) = File::open(rotated_path(path, i, false)) {
                    log.compress(f);
                }
            }
        }
        Ok(log)
    }

    /// Writes what a new file starts with (the local format's header).
    fn start_file(&mut self) -> io::Result<()> {
        self.local = log_local::Encoder::new();
        if self.settings.driver == LogDriver::Local {
            self.record.clear();
            log_local::encode_header(&self.attrs_json, &mut self.record);
            self.out.write_all(&self.record)?;
            self.size += self.record.len() as u64;
        }
        Ok(())
    }

    fn stamp(&mut self) {
        self.time_ns = now_ns();
        if self.settings.driver == LogDriver::JsonFile {
            self.time_text.clear();
            format_time(self.time_ns, false, &mut self.time_text);
        }
    }

    /// Adds output of stream 1 (stdout) or 2 (stderr): complete lines (and
    /// 16 KiB pieces of longer ones) are written, the rest waits.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        let idx = usize::from(stream == 2);
        self.stamp();
        if self.partial[idx].is_empty() {
            let used = self.split(idx, data);
            self.partial[idx].extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.partial[idx]);
            buf.extend_from_slice(data);
            let used = self.split(idx, &buf);
            buf.drain(..used);
            self.partial[idx] = buf;
        }
    }

    /// Emits the messages at the start of `buf`; returns the bytes used.
    fn split(&mut self, idx: usize, buf: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            let window = &rest[..rest.len().min(MAX_MESSAGE)];
            let cut = match memchr::memchr(b'\n', window) {
                Some(i) => i + 1,
                None if rest.len() >= MAX_MESSAGE => MAX_MESSAGE,
                None => return pos,
            };
            self.emit(idx, &rest[..cut]);
            pos += cut;
        }
    }

    fn emit(&mut self, idx: usize, msg: &[u8]) {
        if self.settings.max_size.is_some_and(|max| self.size >= max) {
            if let Err(e) = self.rotate() {
                self.report("rotating", &e);
                // Try again after another max-size of output.
                self.size = 0;
            }
        }
        self.record.clear();
        let stream = if idx == 1 { 2 } else { 1 };
        match self.settings.driver {
            LogDriver::Local => self
                .local
                .record(stream, self.time_ns, msg, &mut self.record),
            _ => encode_json(
                msg,
                stream,
                &self.attrs_json,
                &self.time_text,
                &mut self.record,
            ),
        }
        match self.out.write_all(&self.record) {
            Ok(()) => {
                self.size += self.record.len() as u64;
                self.failing = false;
            }
            Err(e) => self.report("writing", &e),
        }
    }

    fn report(&mut self, what: &str, e: &io::Error) {
        if !self.failing {
            tracing::warn!("{what} container log {}: {e}", self.path.display());
        }
        self.failing = true;
    }

    /// Writes what is buffered to the file. Partial lines stay buffered,
    /// unless `final_flush` (the process has exited): then they are written
    /// too, and a compression in progress is waited for (a few seconds).
    pub fn flush(&mut self, final_flush: bool) {
        if final_flush {
            self.stamp();
            for idx in 0..2 {
                if !self.partial[idx].is_empty() {
                    let rest = std::mem::take(&mut self.partial[idx]);
                    self.emit(idx, &rest);
                }
            }
        }
        if let Err(e) = self.out.flush() {
            self.report("flushing", &e);
        }
        if final_flush {
            if let Some(c) = self.compressor.take() {
                c.finish(Instant::now() + COMPRESS_WAIT);
            }
        }
    }

    /// Rotates: see the protocol in [`super::log_files`].
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let guard = self.lock.exclusive()?;
        let max = self.settings.max_file;
        let path = self.path.clone();
        let mut to_compress = None;
        if max >= 2 {
            for gz in [false, true] {
                ignore_missing(std::fs::remove_file(rotated_path(&path, max - 1, gz)))?;
            }
            for i in (1..max - 1).rev() {
                for gz in [false, true] {
                    ignore_missing(std::fs::rename(
                        rotated_path(&path, i, gz),
                        rotated_path(&path, i + 1, gz),
                    ))?;
                }
            }
            if self.settings.compress {
                to_compress = File::open(&path).ok();
            }
            std::fs::rename(&path, rotated_path(&path, 1, false))?;
        } else {
            std::fs::remove_file(&path)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o640)
            .open(&path)?;
        self.out = BufWriter::with_capacity(BUFFER, file);
        self.size = 0;
        self.rotations += 1;
        self.lock.set_rotations(self.rotations)?;
        self.start_file()?;
        self.out.flush()?;
        drop(guard);
        if let Some(f) = to_compress {
            self.compress(f);
        }
        Ok(())
    }

    fn compress(&mut self, f: File) {
        let c = self
            .compressor
            .get_or_insert_with(|| Compressor::start(self.path.clone(), self.settings.max_file));
        c.send(f, self.time_ns);
    }
}

/// At open: drops what a crash left of a last record, so new records
/// follow whole ones (json-file: ends the cut line; local: cuts it off).
fn repair_tail(file: &mut File, driver: LogDriver) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    match driver {
        LogDriver::Local => {
            let mut data = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut data)?;
            let good = local_valid_prefix(&data);
            if (good as u64) < len {
                tracing::warn!(
                    "container log: dropping {} damaged bytes at the end",
                    len - good as u64
                );
                file.set_len(good as u64)?;
            }
        }
        _ => {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// How many bytes at the start of a local-format file are whole.
fn local_valid_prefix(data: &[u8]) -> usize {
    let Ok(Some((_, mut pos))) = log_local::decode_header(data) else {
        return 0;
    };
    let mut d = log_local::Decoder::new();
    while let Ok(Some((_, n))) = d.record(&data[pos..]) {
        pos += n;
    }
    pos
}

/// Byte classes for JSON string escaping: 0 as is, 1 escaped, 2 UTF-8.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20
            || i == b'"' as usize
            || i == b'\\' as usize
            || i == b'<' as usize
            || i == b'>' as usize
            || i == b'&' as usize
        {
            1
        } else if i >= 0x80 {
            2
        } else {
            0
        };
        i += 1;
    }
    t
};

/// The length of the run of class-0 bytes (written as they are) at the
/// start of `s`, looked at eight bytes at a time: most output is plain
/// text, and a byte-by-byte look was the shim's main cost under a flood.
fn plain_run(s: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // High bit set in each byte of `x` that is zero. Borrows can mark bytes
    // above a zero byte too, never below: the lowest mark is exact.
    fn zeros(x: u64) -> u64 {
        x.wrapping_sub(LO) & !x & HI
    }
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let special = (x & HI) // 0x80 and above: UTF-8
            | zeros(x & (0xe0 * LO)) // below 0x20
            | zeros(x ^ (u64::from(b'"') * LO))
            | zeros(x ^ (u64::from(b'\\') * LO))
            | zeros(x ^ (u64::from(b'<') * LO))
            | zeros(x ^ (u64::from(b'>') * LO))
            | zeros(x ^ (u64::from(b'&') * LO));
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + s[i..]
        .iter()
        .position(|&b| CLASS[b as usize] != 0)
        .unwrap_or(s.len() - i)
}

/// Appends `s` as the inside of a JSON string, escaped as Docker's
/// json-file does (HTML characters as `\u00XX`, invalid UTF-8 as `\ufffd`).
pub fn escape_json(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        i += plain_run(&s[i..]);
        let Some(&b) = s.get(i) else {
            break;
        };
        match CLASS[b as usize] {
            0 => i += 1,
            1 => {
                out.extend_from_slice(&s[start..i]);
                match b {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 15) as usize],
                    ]),
                }
                i += 1;
                start = i;
            }
            _ => {
                let len = match b {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf4 => 4,
                    _ => 0,
                };
                let ok = len > 0
                    && s.get(i..i + len)
                        .is_some_and(|c| std::str::from_utf8(c).is_ok());
                if !ok {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(b"\\ufffd");
                    i += 1;
                    start = i;
                } else if b == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9) {
                    // U+2028, U+2029.
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(if s[i + 2] == 0xa8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                    start = i;
                } else {
                    i += len;
                }
            }
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// One json-file line, in Docker's key order.
fn encode_json(msg: &[u8], stream: u8, attrs: &[u8], time: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":\"");
    escape_json(msg, out);
    out.extend_from_slice(if stream == 2 {
        b"\",\"stream\":\"stderr\""
    } else {
        b"\",\"stream\":\"stdout\""
    });
    if !attrs.is_empty() {
        out.extend_from_slice(b",\"attrs\":");
        out.extend_from_slice(attrs);
    }
    out.extend_from_slice(b",\"time\":\"");
    out.extend_from_slice(time);
    out.extend_from_slice(b"\"}\n");
}

/// Gzips rotated files on a thread of its own, so the container's output
/// never waits for it.
struct Compressor {
    tx: mpsc::Sender<(File, i64)>,
    done: mpsc::Receiver<()>,
    pending: usize,
}

impl Compressor {
    fn start(current: PathBuf, max_file: u32) -> Compressor {
        let (tx, rx) = mpsc::channel::<(File, i64)>();
        let (done_tx, done) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("log-compress".into())
            .spawn(move || {
                for (f, last) in rx {
                    if let Err(e) = compress_rotated(&current, max_file, f, last) {
                        tracing::warn!("compressing a rotated log of {}: {e}", current.display());
                    }
                    let _ = done_tx.send(());
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("log compression thread: {e}");
        }
        Compressor {
            tx,
            done,
            pending: 0,
        }
    }

    fn send(&mut self, f: File, last_ns: i64) {
        if self.tx.send((f, last_ns)).is_ok() {
            self.pending += 1;
        }
    }

    /// Waits until the queue is done or `deadline`.
    fn finish(mut self, deadline: Instant) {
        while self.pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                return;
            }
            self.pending -= 1;
        }
    }
}

/// Where the rotated file with inode `ino` is now: its index.
fn find_rotated(current: &Path, max_file: u32, ino: u64) -> Option<u32> {
    (1..max_file)
        .find(|&j| std::fs::metadata(rotated_path(current, j, false)).is_ok_and(|m| m.ino() == ino))
}

/// Gzips the rotated file `src` (Docker's gzip header extra
/// `{"lastTime":…}` included) and puts it in place of the plain one.
fn compress_rotated(current: &Path, max_file: u32, mut src: File, last_ns: i64) -> io::Result<()> {
    let ino = src.metadata()?.ino();
    if find_rotated(current, max_file, ino).is_none() {
        return Ok(()); // already rotated away
    }
    let tmp = sibling(current, "gz.tmp");
    let out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)?;
    let mut extra = b"{\"lastTime\":\"".to_vec();
    format_time(last_ns, false, &mut extra);
    extra.extend_from_slice(b"\"}");
    let mut gz = flate2::GzBuilder::new().extra(extra).write(
        BufWriter::with_capacity(BUFFER, out),
        flate2::Compression::default(),
    );
    let copied = io::copy(&mut src, &mut gz)
        .and_then(|_| gz.finish())
        .and_then(|mut w| w.flush());
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let lock = RotationLock::open(current, false)?;
    let _guard = lock.exclusive()?;
    match find_rotated(current, max_file, ino) {
        Some(j) => {
            std::fs::rename(&tmp, rotated_path(current, j, true))?;
            std::fs::remove_file(rotated_path(current, j, false))
        }
        None => std::fs::remove_file(&tmp),
    }
}

/// The monitor's handle on the log.
///
/// Interim, until the monitor's handoff carries [`super::ShimConfig::log`]
/// itself: `open` reads the settings from this shim's `STATE_DIR/shim.json`
/// (`STATE_DIR` is the last argument of both `berth shim` and `berth-shim`).
pub(super) struct JsonLog(ContainerLog);

impl JsonLog {
    pub(super) fn open(path: &Path) -> io::Result<JsonLog> {
        let settings = std::env::args_os()
            .last()
            .map(|dir| PathBuf::from(dir).join(super::files::CONFIG))
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|d| serde_json::from_slice::<super::ShimConfig>(&d).ok())
            .map(|c| c.log)
            .unwrap_or_default();
        ContainerLog::open(path, &settings).map(JsonLog)
    }

    pub(super) fn write(&mut self, stream: u8, data: &[u8]) {
        self.0.write(stream, data);
    }

    pub(super) fn flush(&mut self, final_flush: bool) {
        self.0.flush(final_flush);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_lines(p: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|x| serde_json::from_str(x).unwrap())
            .collect()
    }

    #[test]
    fn lines_and_partials() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.log");
        let mut l = ContainerLog::open(&p, &LogSettings::default()).unwrap();
        l.write(1, b"hel");
        l.write(2, b"oops\n");
        l.write(1, b"lo\nwor");
        l.flush(true);
        let recs = json_lines(&p);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0]["log"], "oops\n");
        assert_eq!(recs[0]["stream"], "stderr");
        assert_eq!(recs[1]["log"], "hello\n");
        assert_eq!(recs[2]["log"], "wor");
        assert!(recs[2]["time"].as_str().unwrap().ends_with('Z'));
        assert!(recs[2].get("attrs").is_none());
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.log");
        let mut l = ContainerLog::open(&p, &LogSettings::default()).unwrap();
        let mut line = vec![b'a'; 40 * 1024];
        line.push(b'\n');
        l.write(1, &line[..1000]);
        l.write(1, &line[1000..]);
        l.flush(true);
        let lens: Vec<usize> = json_lines(&p)
            .iter()
            .map(|r| r["log"].as_str().unwrap().len())
            .collect();
        assert_eq!(lens, vec![16384, 16384, 40 * 1024 - 32768 + 1]);
    }

    #[test]
    fn plain_run_agrees_with_the_byte_table() {
        // Every byte value at every offset of a 0..=24-byte window, and
        // runs of mixed text: the word-at-a-time look must find the first
        // byte the table escapes.
        let slow = |s: &[u8]| {
            s.iter()
                .position(|&b| CLASS[b as usize] != 0)
                .unwrap_or(s.len())
        };
        for len in 0..=24 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    assert_eq!(plain_run(&v), slow(&v), "byte {b:#x} at {at} of {len}");
                }
            }
        }
        let mut seed = 7u64;
        for _ in 0..2000 {
            let v: Vec<u8> = (0..(seed % 40))
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Mostly plain, now and then anything.
                    let r = (seed >> 33) as u8;
                    if r.is_multiple_of(5) {
                        r
                    } else {
                        b' ' + r % 90
                    }
                })
                .collect();
            assert_eq!(plain_run(&v), slow(&v), "{v:?}");
        }
    }

    #[test]
    fn escapes_as_docker() {
        let mut out = Vec::new();
        escape_json("a\"b\\c\n\r\t<&>é\u{2028}😀".as_bytes(), &mut out);
        out.extend_from_slice(b"|");
        escape_json(b"x\xffy\xe2\x82", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\\"b\\\\c\\n\\r\\u0009\\u003c\\u0026\\u003eé\\u2028😀|x\\ufffdy\\ufffd\\ufffd"
        );
        // What serde reads back is the text (invalid bytes replaced).
        let mut line = b"\"".to_vec();
        escape_json("tab\there <b> ü".as_bytes(), &mut line);
        line.push(b'"');
        assert_eq!(
            serde_json::from_slice::<String>(&line).unwrap(),
            "tab\there <b> ü"
        );
    }

    #[test]
    fn attrs_in_docker_order() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.log");
        let mut s = LogSettings::default();
        s.attrs.insert("b".into(), "2".into());
        s.attrs.insert("a".into(), "1".into());
        let mut l = ContainerLog::open(&p, &s).unwrap();
        l.write(1, b"x\n");
        l.flush(true);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with(
                r#"{"log":"x\n","stream":"stdout","attrs":{"a":"1","b":"2"},"time":""#
            ),
            "{text}"
        );
    }

    fn numbered(l: &mut ContainerLog, from: usize, to: usize) {
        for i in from..to {
            l.write(1, format!("line {i:05}\n").as_bytes());
        }
        l.flush(false);
    }

    #[test]
    fn rotation_keeps_max_file_and_counts() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let s = LogSettings {
            max_size: Some(1000),
            max_file: 3,
            ..Default::default()
        };
        let mut l = ContainerLog::open(&p, &s).unwrap();
        numbered(&mut l, 0, 100);
        l.flush(true);
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).ok();
        // Each full file holds max-size plus at most one record.
        for i in 1..3 {
            let n = size(rotated_path(&p, i, false)).unwrap();
            assert!((1000..1100).contains(&n), "file {i}: {n}");
        }
        assert_eq!(size(rotated_path(&p, 3, false)), None);
        assert!(size(p.clone()).unwrap() <= 1100);
        let lock = RotationLock::open(&p, false).unwrap();
        let lines_per_file =
            1000 / json_lines(&rotated_path(&p, 1, false))[0].to_string().len() + 1;
        assert_eq!(lock.rotations() as usize, 99 / lines_per_file);
        // The newest lines are in the current file, in order, none twice.
        let mut all: Vec<String> = Vec::new();
        for f in [
            rotated_path(&p, 2, false),
            rotated_path(&p, 1, false),
            p.clone(),
        ] {
            all.extend(
                json_lines(&f)
                    .iter()
                    .map(|r| r["log"].as_str().unwrap().to_string()),
            );
        }
        let first: usize = all[0][5..10].parse().unwrap();
        let want: Vec<String> = (first..100).map(|i| format!("line {i:05}\n")).collect();
        assert_eq!(all, want);
        // A new run appends and continues counting.
        drop(l);
        let mut l = ContainerLog::open(&p, &s).unwrap();
        let before = RotationLock::open(&p, false).unwrap().rotations();
        numbered(&mut l, 100, 200);
        assert!(RotationLock::open(&p, false).unwrap().rotations() > before);
    }

    #[test]
    fn max_file_one_starts_over() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let s = LogSettings {
            max_size: Some(500),
            max_file: 1,
            ..Default::default()
        };
        let mut l = ContainerLog::open(&p, &s).unwrap();
        numbered(&mut l, 0, 50);
        assert!(std::fs::metadata(&p).unwrap().len() < 600);
        assert!(!rotated_path(&p, 1, false).exists());
        let last = json_lines(&p).last().unwrap()["log"].clone();
        assert_eq!(last, "line 00049\n");
    }

    #[test]
    fn compressed_rotation_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let s = LogSettings {
            max_size: Some(2000),
            max_file: 4,
            compress: true,
            ..Default::default()
        };
        let mut l = ContainerLog::open(&p, &s).unwrap();
        numbered(&mut l, 0, 300);
        l.flush(true);
        let mut all = Vec::new();
        for i in (1..4).rev() {
            assert!(!rotated_path(&p, i, false).exists(), "{i} left plain");
            let gz = File::open(rotated_path(&p, i, true)).unwrap();
            let mut d = flate2::read::GzDecoder::new(gz);
            let mut text = String::new();
            d.read_to_string(&mut text).unwrap();
            let extra = d.header().unwrap().extra().unwrap().to_vec();
            assert!(String::from_utf8(extra)
                .unwrap()
                .starts_with("{\"lastTime\":\""));
            all.extend(text.lines().map(str::to_string));
        }
        all.extend(
            std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
        let logs: Vec<String> = all
            .iter()
            .map(|x| {
                serde_json::from_str::<serde_json::Value>(x).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let first: usize = logs[0][5..10].parse().unwrap();
        assert_eq!(
            logs,
            (first..300)
                .map(|i| format!("line {i:05}\n"))
                .collect::<Vec<_>>()
        );
        assert!(!sibling(&p, "gz.tmp").exists());
    }

    #[test]
    fn local_format_is_small_and_decodes() {
        let t = tempfile::tempdir().unwrap();
        let pj = t.path().join("c-json.log");
        let pl = t.path().join("local-logs/container.log");
        let mut s = LogSettings::default();
        let mut j = ContainerLog::open(&pj, &s).unwrap();
        s.driver = LogDriver::Local;
        s.attrs.insert("k".into(), "v".into());
        let mut l = ContainerLog::open(&pl, &s).unwrap();
        let line =
            b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n";
        for _ in 0..1000 {
            j.write(1, line);
            l.write(1, line);
        }
        l.write(2, b"no newline");
        j.flush(true);
        l.flush(true);
        let (js, ls) = (
            std::fs::metadata(&pj).unwrap().len(),
            std::fs::metadata(&pl).unwrap().len(),
        );
        assert!(ls * 10 < js * 6, "local {ls} vs json {js}");
        let data = std::fs::read(&pl).unwrap();
        let (attrs, mut pos) = log_local::decode_header(&data).unwrap().unwrap();
        assert_eq!(attrs, br#"{"k":"v"}"#);
        let mut d = log_local::Decoder::new();
        let mut n = 0;
        let now = now_ns();
        while let Some((r, used)) = d.record(&data[pos..]).unwrap() {
            assert!((now - r.time_ns).abs() < 60_000_000_000);
            pos += used;
            n += 1;
            if n == 1001 {
                assert_eq!((r.stream, r.data), (2, &b"no newline"[..]));
            }
        }
        assert_eq!((n, pos), (1001, data.len()));
        // Reopened after a crash that cut a record: the cut part goes.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&pl)
            .unwrap()
            .write_all(&[1, 0x80])
            .unwrap();
        let mut l = ContainerLog::open(&pl, &s).unwrap();
        assert_eq!(std::fs::metadata(&pl).unwrap().len(), data.len() as u64);
        l.write(1, b"after\n");
        l.flush(true);
        assert_eq!(
            local_valid_prefix(&std::fs::read(&pl).unwrap()),
            std::fs::metadata(&pl).unwrap().len() as usize
        );
    }
}
