//! Docker's json-file log format: one JSON object per line,
//! `{"log":"…\n","stream":"stdout","time":"RFC3339Nano"}`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Longest message before a partial line is written out (Docker's 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// Appends a container's output to its json-file log.
pub(super) struct JsonLog {
    out: BufWriter<File>,
    partial: [Vec<u8>; 2],
}

/// One log record, as the daemon's `logs` reads it back.
#[derive(serde::Serialize)]
struct Record<'a> {
    log: &'a str,
    stream: &'a str,
    time: String,
}

impl JsonLog {
    pub(super) fn open(path: &Path) -> std::io::Result<JsonLog> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLog {
            out: BufWriter::with_capacity(64 * 1024, f),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output of stream 1 (stdout) or 2 (stderr); complete lines are
    /// written, the rest waits for its newline.
    pub(super) fn write(&mut self, stream: u8, data: &[u8]) {
        let idx = if stream == 2 { 1 } else { 0 };
        self.partial[idx].extend_from_slice(data);
        loop {
            let buf = &self.partial[idx];
            let cut = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if buf.len() >= MAX_LINE => MAX_LINE,
                None => break,
            };
            let line: Vec<u8> = self.partial[idx].drain(..cut).collect();
            self.emit(idx, &line);
        }
    }

    fn emit(&mut self, idx: usize, line: &[u8]) {
        let rec = Record {
            log: &String::from_utf8_lossy(line),
            stream: if idx == 1 { "stderr" } else { "stdout" },
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        if let Ok(mut bytes) = serde_json::to_vec(&rec) {
            bytes.push(b'\n');
            if let Err(e) = self.out.write_all(&bytes) {
                tracing::warn!("writing container log: {e}");
            }
        }
    }

    /// Writes what is buffered to the file (partial lines stay buffered
    /// unless `final_flush`).
    pub(super) fn flush(&mut self, final_flush: bool) {
        if final_flush {
            for idx in 0..2 {
                if !self.partial[idx].is_empty() {
                    let rest = std::mem::take(&mut self.partial[idx]);
                    self.emit(idx, &rest);
                }
            }
        }
        if let Err(e) = self.out.flush() {
            tracing::warn!("flushing container log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_partials() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.log");
        let mut l = JsonLog::open(&p).unwrap();
        l.write(1, b"hel");
        l.write(2, b"oops\n");
        l.write(1, b"lo\nwor");
        l.flush(true);
        let text = std::fs::read_to_string(&p).unwrap();
        let recs: Vec<serde_json::Value> = text
            .lines()
            .map(|x| serde_json::from_str(x).unwrap())
            .collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0]["log"], "oops\n");
        assert_eq!(recs[0]["stream"], "stderr");
        assert_eq!(recs[1]["log"], "hello\n");
        assert_eq!(recs[2]["log"], "wor");
        assert!(recs[2]["time"].as_str().unwrap().ends_with('Z'));
    }
}
