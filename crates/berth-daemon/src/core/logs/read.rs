//! Reading a log's files in order — rotated ones (plain or gzipped) oldest
//! first, then the current one — one message at a time through a 64 KiB
//! buffer, with `--tail` and, when following, rotation handled as
//! [`berth_runtime::shim::log_files`] describes.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime::shim::log_files::{self, OpenedFile, RotationLock};
use berth_runtime::shim::log_local;

use super::json;

const BUF: usize = 64 * 1024;

/// How the files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker's json-file.
    Json,
    /// berth's local format.
    Local,
}

/// One message read back. `details` is the `--details` prefix (Docker's
/// `k=v,k2=v2`, query-escaped, sorted by key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
    /// The bytes.
    pub data: Vec<u8>,
    /// Attributes as `logs --details` prints them.
    pub details: Arc<str>,
}

/// What [`LogReader::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A message (in the caller's [`Message`]).
    Message,
    /// The current file has nothing more yet.
    Wait,
    /// No more files.
    End,
}

/// One file being read.
struct Source {
    /// Opened on the first read, so queued files cost only a descriptor.
    file: Option<OpenedFile>,
    reader: Option<Box<dyn Read + Send>>,
    /// The current file, which may still grow.
    live: bool,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Messages still to skip (`--tail`).
    skip: u64,
    /// Local format: header read, the decoder, the file's attributes.
    header: bool,
    local: log_local::Decoder,
    details: Arc<str>,
}

impl Source {
    fn new(f: OpenedFile, live: bool, skip: u64) -> Source {
        Source {
            file: Some(f),
            reader: None,
            live,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            skip,
            header: false,
            local: log_local::Decoder::new(),
            details: Arc::from(""),
        }
    }

    /// Reads more; false when nothing came.
    fn fill(&mut self) -> io::Result<bool> {
        if let Some(f) = self.file.take() {
            self.reader = Some(if f.gz {
                Box::new(flate2::read::MultiGzDecoder::new(
                    io::BufReader::with_capacity(BUF, f.file),
                ))
            } else {
                Box::new(f.file)
            });
            self.buf.resize(BUF, 0);
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(false);
        };
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        loop {
            match reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    self.eof = false;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads a container's log.
pub struct LogReader {
    current: PathBuf,
    format: Format,
    sources: VecDeque<Source>,
    follow: bool,
    /// Rotations seen: the count when the current source was opened.
    rotations: u64,
    /// The current file is among `sources`.
    has_current: bool,
    attrs: json::AttrsCache,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("current", &self.current)
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl LogReader {
    /// Opens the log whose current file is `current`: all of it, or its
    /// last `tail` messages. With `follow`, [`LogReader::next`] answers
    /// [`Step::Wait`] at the end of the current file instead of
    /// [`Step::End`], and [`LogReader::check_rotation`] moves on to new files.
    pub fn open(
        current: &Path,
        format: Format,
        tail: Option<u64>,
        follow: bool,
    ) -> io::Result<LogReader> {
        let set = log_files::open_log_files(current)?;
        let mut files = set.files;
        let has_current = set.has_current;
        let mut skips = vec![0u64; files.len()];
        if let Some(n) = tail {
            let (first, skip) = tail_start(&mut files, format, n)?;
            files.drain(..first);
            skips.drain(..first);
            if let Some(s) = skips.first_mut() {
                *s = skip.skip;
            }
            if let (Some(offset), Some(f)) = (skip.offset, files.first_mut()) {
                f.file.seek(SeekFrom::Start(offset))?;
            }
        }
        let count = files.len();
        let sources = files
            .into_iter()
            .zip(skips)
            .enumerate()
            .map(|(i, (f, skip))| Source::new(f, follow && has_current && i + 1 == count, skip))
            .collect();
        Ok(LogReader {
            current: current.to_path_buf(),
            format,
            sources,
            follow,
            rotations: set.rotations,
            has_current,
            attrs: json::AttrsCache::default(),
        })
    }

    /// A json-file log read with [`LogReader::read_new`]: for callers that
    /// want small logs whole (attach's `logs=1` replay). A log that cannot
    /// be opened reads as empty.
    pub fn new(current: &Path) -> LogReader {
        LogReader::open(current, Format::Json, None, true).unwrap_or_else(|e| {
            tracing::warn!("reading log {}: {e}", current.display());
            LogReader {
                current: current.to_path_buf(),
                format: Format::Json,
                sources: VecDeque::new(),
                follow: true,
                rotations: 0,
                has_current: true,
                attrs: json::AttrsCache::default(),
            }
        })
    }

    /// Every message written since the last call, in memory. Streaming
    /// callers use [`LogReader::next`] instead.
    pub fn read_new(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let mut m = Message::default();
        loop {
            match self.next(&mut m) {
                Ok(Step::Message) => out.push(m.clone()),
                Ok(Step::Wait) if self.check_rotation().unwrap_or(false) => {}
                _ => return out,
            }
        }
    }

    /// The directory the files are in (followers watch it).
    pub fn dir(&self) -> PathBuf {
        self.current
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The next message into `msg`.
    pub fn next(&mut self, msg: &mut Message) -> io::Result<Step> {
        loop {
            let Some(src) = self.sources.front_mut() else {
                return Ok(if self.follow { Step::Wait } else { Step::End });
            };
            match decode(src, self.format, &mut self.attrs, msg) {
                Ok(true) => {
                    if src.skip > 0 {
                        src.skip -= 1;
                        continue;
                    }
                    return Ok(Step::Message);
                }
                Ok(false) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::warn!(
                        "log {}: {e}; skipping the rest of a file",
                        self.current.display()
                    );
                    src.start = src.end;
                    src.eof = true;
                    if src.live {
                        return Ok(Step::Wait);
                    }
                    self.sources.pop_front();
                    continue;
                }
                Err(e) => return Err(e),
            }
            // Nothing whole in the buffer: read more.
            if src.fill()? {
                continue;
            }
            if src.live {
                return Ok(Step::Wait);
            }
            self.sources.pop_front();
        }
    }

    /// When following and at the end of the current file: if the shim
    /// rotated since, queues what was written after (the rotated files the
    /// reader has not seen, then the new current file) and returns true.
    pub fn check_rotation(&mut self) -> io::Result<bool> {
        if !self.has_current {
            // The log did not exist yet.
            let set = log_files::open_log_files(&self.current)?;
            if !set.has_current {
                return Ok(false);
            }
            self.has_current = true;
            self.rotations = set.rotations;
            let n = set.files.len();
            for (i, f) in set.files.into_iter().enumerate() {
                self.sources.push_back(Source::new(f, i + 1 == n, 0));
            }
            return Ok(true);
        }
        let lock = match RotationLock::open(&self.current, false) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if lock.rotations() == self.rotations {
            return Ok(false);
        }
        let _guard = lock.shared()?;
        let now = lock.rotations();
        let missed = now.saturating_sub(self.rotations).min(u64::from(u32::MAX)) as u32;
        // The file being read became `.missed`: it is complete now; then
        // come `.missed-1` … `.1`, then the new current file.
        if let Some(src) = self.sources.back_mut() {
            src.live = false;
        }
        for i in (1..missed).rev() {
            if let Some(f) = log_files::open_rotated(&self.current, i)? {
                self.sources.push_back(Source::new(f, false, 0));
            }
        }
        match File::open(&self.current) {
            Ok(file) => self.sources.push_back(Source::new(
                OpenedFile {
                    path: self.current.clone(),
                    file,
                    gz: false,
                },
                true,
                0,
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.has_current = false,
            Err(e) => return Err(e),
        }
        self.rotations = now;
        Ok(true)
    }
}

/// Decodes the next whole message in `src`'s buffer into `msg`; false when
/// the buffer holds none. Damage is `InvalidData`.
fn decode(
    src: &mut Source,
    format: Format,
    attrs: &mut json::AttrsCache,
    msg: &mut Message,
) -> io::Result<bool> {
    match format {
        Format::Json => loop {
            let avail = &src.buf[src.start..src.end];
            let line = match memchr::memchr(b'\n', avail) {
                Some(i) => &avail[..i],
                // A rotated file's last line may lack its newline.
                None if src.eof && !src.live && !avail.is_empty() => avail,
                None => return Ok(false),
            };
            let used = (line.len() + 1).min(avail.len());
            let ok = json::parse_line(line, msg, attrs);
            src.start += used;
            if ok {
                return Ok(true);
            }
            // Not a log line (a line cut by a crash): skipped, but counted
            // by --tail like any line, as Docker does.
            if src.skip > 0 {
                src.skip -= 1;
            }
        },
        Format::Local => {
            let damaged = |what: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("damaged local log ({what})"),
                )
            };
            if !src.header {
                match log_local::decode_header(&src.buf[src.start..src.end]) {
                    Ok(Some((a, n))) => {
                        src.details = json::details_of(a);
                        src.start += n;
                        src.header = true;
                    }
                    Ok(None) => return Ok(false),
                    Err(_) => return Err(damaged("header")),
                }
            }
            match src.local.record(&src.buf[src.start..src.end]) {
                Ok(Some((r, n))) => {
                    msg.stream = r.stream;
                    msg.time_ns = r.time_ns;
                    msg.data.clear();
                    msg.data.extend_from_slice(r.data);
                    msg.details = src.details.clone();
                    src.start += n;
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(_) => Err(damaged("record")),
            }
        }
    }
}

/// Where `--tail` starts: in `files[first]`, after skipping.
#[derive(Debug, Default)]
struct TailSkip {
    /// Seek a plain json-file file here first.
    offset: Option<u64>,
    /// Then skip this many messages.
    skip: u64,
}

/// Finds the first file and position of the last `n` messages, newest file
/// first: plain json-file files are scanned backwards, others counted.
fn tail_start(files: &mut [OpenedFile], format: Format, n: u64) -> io::Result<(usize, TailSkip)> {
    let mut want = n;
    for i in (0..files.len()).rev() {
        let f = &mut files[i];
        if format == Format::Json && !f.gz {
            let (offset, found) = json_tail_offset(&f.file, want)?;
            if found >= want {
                return Ok((
                    i,
                    TailSkip {
                        offset: Some(offset),
                        skip: 0,
                    },
                ));
            }
            want -= found;
        } else {
            let count = count_messages(f, format)?;
            if count >= want {
                return Ok((
                    i,
                    TailSkip {
                        offset: None,
                        skip: count - want,
                    },
                ));
            }
            want -= count;
        }
    }
    Ok((0, TailSkip::default()))
}

/// Scanning a plain json-file file backwards: the offset where its last
/// `n` complete lines start, and how many it has (up to `n`).
fn json_tail_offset(f: &File, n: u64) -> io::Result<(u64, u64)> {
    let len = f.metadata()?.len();
    let mut buf = vec![0u8; BUF];
    let mut pos = len;
    // Newlines seen from the end; the first ends the last complete line.
    let mut newlines = 0u64;
    while pos > 0 {
        let take = (pos.min(BUF as u64)) as usize;
        pos -= take as u64;
        f.read_exact_at(&mut buf[..take], pos)?;
        for i in memchr::memrchr_iter(b'\n', &buf[..take]) {
            newlines += 1;
            if newlines == n + 1 {
                return Ok((pos + i as u64 + 1, n));
            }
        }
    }
    Ok((0, newlines))
}

/// How many messages a file holds (reading it), then back to its start.
fn count_messages(f: &mut OpenedFile, format: Format) -> io::Result<u64> {
    let mut src = Source::new(
        OpenedFile {
            path: f.path.clone(),
            file: f.file.try_clone()?,
            gz: f.gz,
        },
        false,
        0,
    );
    let mut count = 0u64;
    match format {
        Format::Json => {
            let mut last = b'\n';
            while src.fill()? {
                count += memchr::memchr_iter(b'\n', &src.buf[..src.end]).count() as u64;
                last = src.buf[src.end - 1];
                src.end = 0;
            }
            if last != b'\n' {
                count += 1;
            }
        }
        Format::Local => {
            let mut attrs = json::AttrsCache::default();
            let mut msg = Message::default();
            loop {
                match decode(&mut src, format, &mut attrs, &mut msg) {
                    Ok(true) => count += 1,
                    Ok(false) => {
                        if !src.fill()? {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    f.file.seek(SeekFrom::Start(0))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::shim::log::ContainerLog;
    use berth_runtime::shim::log_files::{LogDriver, LogSettings};

    fn read_all(r: &mut LogReader) -> Vec<Message> {
        let mut out = Vec::new();
        let mut m = Message::default();
        while r.next(&mut m).unwrap() == Step::Message {
            out.push(m.clone());
        }
        out
    }

    fn texts(v: &[Message]) -> Vec<String> {
        v.iter()
            .map(|m| String::from_utf8_lossy(&m.data).into_owned())
            .collect()
    }

    fn write_numbered(l: &mut ContainerLog, from: usize, to: usize) {
        for i in from..to {
            l.write(
                if i % 7 == 0 { 2 } else { 1 },
                format!("line {i:05}\n").as_bytes(),
            );
            l.flush(false);
        }
    }

    fn lines(from: usize, to: usize) -> Vec<String> {
        (from..to).map(|i| format!("line {i:05}\n")).collect()
    }

    #[test]
    fn reads_old_style_file_with_partial_tail() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x-json.log");
        std::fs::write(
            &p,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00.1Z\"}\n{\"log\":\"b\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:01.000000000Z\"}\n{\"log\":\"c",
        )
        .unwrap();
        let mut r = LogReader::open(&p, Format::Json, None, true).unwrap();
        let mut m = Message::default();
        assert_eq!(r.next(&mut m).unwrap(), Step::Message);
        assert_eq!(
            (m.stream, m.time_ns, &m.data[..]),
            (1, 1_704_067_200_100_000_000, &b"a\n"[..])
        );
        assert_eq!(r.next(&mut m).unwrap(), Step::Message);
        assert_eq!((m.stream, &m.data[..]), (2, &b"b\n"[..]));
        assert_eq!(r.next(&mut m).unwrap(), Step::Wait);
        std::io::Write::write_all(
            &mut std::fs::OpenOptions::new().append(true).open(&p).unwrap(),
            b"\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:02Z\"}\n",
        )
        .unwrap();
        assert_eq!(r.next(&mut m).unwrap(), Step::Message);
        assert_eq!(m.data, b"c\n");
        assert_eq!(r.next(&mut m).unwrap(), Step::Wait);
        assert!(!r.check_rotation().unwrap());
        // Not following: the end is the end.
        let mut r = LogReader::open(&p, Format::Json, Some(1), false).unwrap();
        assert_eq!(texts(&read_all(&mut r)), ["c\n"]);
        assert_eq!(r.next(&mut m).unwrap(), Step::End);
    }

    #[test]
    fn plain_and_gzipped_files_in_order_with_tail() {
        for (driver, compress) in [
            (LogDriver::JsonFile, false),
            (LogDriver::JsonFile, true),
            (LogDriver::Local, true),
            (LogDriver::Local, false),
        ] {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().join("c.log");
            let s = LogSettings {
                driver,
                max_size: Some(3000),
                max_file: 4,
                compress,
                ..Default::default()
            };
            let mut l = ContainerLog::open(&p, &s).unwrap();
            write_numbered(&mut l, 0, 1500);
            l.flush(true);
            let format = if driver == LogDriver::Local {
                Format::Local
            } else {
                Format::Json
            };
            let all = texts(&read_all(
                &mut LogReader::open(&p, format, None, false).unwrap(),
            ));
            let first: usize = all[0][5..10].parse().unwrap();
            assert!(first > 0, "{driver:?}: rotation dropped the oldest");
            assert_eq!(all, lines(first, 1500), "{driver:?} compress={compress}");
            if compress {
                assert!(log_files::rotated_path(&p, 3, true).exists());
            }
            for n in [0u64, 1, 5, 120, 250, (1500 - first) as u64, 100_000] {
                let got = texts(&read_all(
                    &mut LogReader::open(&p, format, Some(n), false).unwrap(),
                ));
                let want = lines(1500 - (n as usize).min(1500 - first), 1500);
                assert_eq!(got, want, "{driver:?} compress={compress} tail {n}");
            }
            let streams: Vec<u8> =
                read_all(&mut LogReader::open(&p, format, Some(14), false).unwrap())
                    .iter()
                    .map(|m| m.stream)
                    .collect();
            assert_eq!(streams.iter().filter(|&&s| s == 2).count(), 2);
        }
    }

    #[test]
    fn a_mix_of_plain_and_gzipped_files() {
        // As while the shim compresses: .3.gz .2 .1.gz and the current file.
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let line = |i: usize| {
            format!("{{\"log\":\"m{i}\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:{i:02}Z\"}}\n")
        };
        let gz = |path: PathBuf, text: String| {
            let mut e = flate2::write::GzEncoder::new(
                File::create(path).unwrap(),
                flate2::Compression::fast(),
            );
            std::io::Write::write_all(&mut e, text.as_bytes()).unwrap();
            e.finish().unwrap();
        };
        gz(log_files::rotated_path(&p, 3, true), line(0) + &line(1));
        std::fs::write(log_files::rotated_path(&p, 2, false), line(2)).unwrap();
        gz(log_files::rotated_path(&p, 1, true), line(3) + &line(4));
        std::fs::write(&p, line(5)).unwrap();
        let got = texts(&read_all(
            &mut LogReader::open(&p, Format::Json, None, false).unwrap(),
        ));
        assert_eq!(got, (0..6).map(|i| format!("m{i}\n")).collect::<Vec<_>>());
        let got = texts(&read_all(
            &mut LogReader::open(&p, Format::Json, Some(4), false).unwrap(),
        ));
        assert_eq!(got, (2..6).map(|i| format!("m{i}\n")).collect::<Vec<_>>());
        let times: Vec<i64> =
            read_all(&mut LogReader::open(&p, Format::Json, None, false).unwrap())
                .iter()
                .map(|m| m.time_ns)
                .collect();
        assert_eq!(times[5] - times[0], 5_000_000_000);
    }

    #[test]
    fn following_across_rotations_loses_nothing() {
        for (driver, compress, max_file) in [
            (LogDriver::JsonFile, false, 50),
            (LogDriver::JsonFile, true, 50),
            (LogDriver::Local, true, 50),
            (LogDriver::JsonFile, false, 1),
        ] {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().join("c.log");
            let s = LogSettings {
                driver,
                max_size: Some(700),
                max_file,
                compress,
                ..Default::default()
            };
            let mut l = ContainerLog::open(&p, &s).unwrap();
            write_numbered(&mut l, 0, 10);
            let format = if driver == LogDriver::Local {
                Format::Local
            } else {
                Format::Json
            };
            let mut r = LogReader::open(&p, format, None, true).unwrap();
            let mut got = Vec::new();
            let mut m = Message::default();
            let mut written = 10;
            let mut read_until_wait = |r: &mut LogReader, got: &mut Vec<String>| loop {
                match r.next(&mut m).unwrap() {
                    Step::Message => got.push(String::from_utf8_lossy(&m.data).into_owned()),
                    Step::Wait => {
                        if !r.check_rotation().unwrap() {
                            return;
                        }
                    }
                    Step::End => unreachable!(),
                }
            };
            if max_file == 1 {
                // No rotated file is kept: only what is read before the
                // next rotation is there to read. Read after every line.
                for _ in 0..300 {
                    read_until_wait(&mut r, &mut got);
                    write_numbered(&mut l, written, written + 1);
                    written += 1;
                }
            } else {
                // Bursts of several rotations between reads.
                for burst in [1usize, 3, 60, 7, 200, 2] {
                    read_until_wait(&mut r, &mut got);
                    write_numbered(&mut l, written, written + burst);
                    written += burst;
                }
            }
            read_until_wait(&mut r, &mut got);
            l.flush(true);
            let first: usize = got[0][5..10].parse().unwrap();
            assert!(max_file == 1 || first == 0);
            assert_eq!(
                got,
                lines(first, written),
                "{driver:?} compress={compress} max-file={max_file}"
            );
            assert!(RotationLock::open(&p, false).unwrap().rotations() > 5);
        }
    }
}
