//! Reading a container's json-file log back: filtering by stream, time and
//! tail, and following it as it grows.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One log message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl LogLine {
    /// Unix time in (fractional) seconds.
    pub fn unix(&self) -> f64 {
        chrono::DateTime::parse_from_rfc3339(&self.time)
            .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
            .unwrap_or(0.0)
    }

    /// Docker's fixed-width timestamp prefix.
    pub fn timestamp(&self) -> String {
        chrono::DateTime::parse_from_rfc3339(&self.time)
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                    .to_string()
            })
            .unwrap_or_else(|_| self.time.clone())
    }
}

#[derive(serde::Deserialize)]
struct Raw {
    log: String,
    stream: String,
    time: String,
}

/// Parses one json-file line.
pub fn parse_line(line: &str) -> Option<LogLine> {
    let r: Raw = serde_json::from_str(line).ok()?;
    Some(LogLine {
        stream: if r.stream == "stderr" { 2 } else { 1 },
        time: r.time,
        data: r.log.into_bytes(),
    })
}

/// Which lines a `logs` request wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only lines at or after (unix seconds).
    pub since: Option<f64>,
    /// Only lines before (unix seconds).
    pub until: Option<f64>,
}

impl LogFilter {
    /// True when the line passes.
    pub fn accepts(&self, l: &LogLine) -> bool {
        let stream_ok = (l.stream == 1 && self.stdout) || (l.stream == 2 && self.stderr);
        if !stream_ok {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let t = l.unix();
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// Reads a log file incrementally.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogReader {
    /// Starts at the beginning of `path`.
    pub fn new(path: &Path) -> LogReader {
        LogReader {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
        }
    }

    /// Complete lines appended since the last call.
    pub fn read_new(&mut self) -> Vec<LogLine> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // The file was replaced (rotation): start over on the new one.
            self.offset = 0;
            self.partial.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            if let Some(l) = parse_line(line.trim_end()) {
                out.push(l);
            }
        }
        out
    }
}

/// Keeps the last `n` lines.
pub fn tail(lines: Vec<LogLine>, n: Option<usize>) -> Vec<LogLine> {
    match n {
        Some(n) if n < lines.len() => lines[lines.len() - n..].to_vec(),
        _ => lines,
    }
}

/// Docker's `since`/`until` values: unix seconds with optional fraction
/// ("1700000000.5"), or RFC 3339.
pub fn parse_time(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_filter_tail() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.log");
        std::fs::write(
            &p,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00.1Z\"}\n{\"log\":\"b\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:01Z\"}\n{\"log\":\"c",
        )
        .unwrap();
        let mut r = LogReader::new(&p);
        let lines = r.read_new();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].timestamp(), "2024-01-01T00:00:00.100000000Z");
        let f = LogFilter {
            stdout: true,
            stderr: false,
            ..Default::default()
        };
        assert_eq!(lines.iter().filter(|l| f.accepts(l)).count(), 1);
        let f = LogFilter {
            stdout: true,
            stderr: true,
            since: Some(1704067200.5),
            until: None,
        };
        assert_eq!(lines.iter().filter(|l| f.accepts(l)).count(), 1);
        assert_eq!(tail(lines.clone(), Some(1))[0].data, b"b\n");
        let mut f2 = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(
            &mut f2,
            b"\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:02Z\"}\n",
        )
        .unwrap();
        let more = r.read_new();
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].data, b"c\n");
        assert_eq!(parse_time("1704067200"), Some(1704067200.0));
        assert_eq!(parse_time("2024-01-01T00:00:00Z"), Some(1704067200.0));
    }
}
