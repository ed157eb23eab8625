//! Display of the daemon's JSON message streams (pull, import, load), as
//! docker's `jsonmessage.DisplayJSONMessagesStream` does: plain lines when
//! the output is not a terminal (progress bars dropped), and on a terminal
//! one line per layer ID, rewritten in place.

use std::collections::HashMap;
use std::io::{self, Write};

use berth_api::image::JsonMessage;

/// Turns a stream of [`JsonMessage`]s into docker's output.
#[derive(Debug)]
pub(crate) struct ProgressDisplay {
    terminal: bool,
    ids: HashMap<String, usize>,
}

/// What a message asked for besides printing.
#[derive(Debug, PartialEq)]
pub(crate) enum Shown {
    /// Printed (or skipped) normally.
    Ok,
    /// An `aux` message, not printed: the caller may use it.
    Aux(serde_json::Value),
}

impl ProgressDisplay {
    /// A display for a terminal (`true`) or a pipe/file.
    pub(crate) fn new(terminal: bool) -> ProgressDisplay {
        ProgressDisplay {
            terminal,
            ids: HashMap::new(),
        }
    }

    /// Prints one message. An in-band error (`errorDetail`/`error`) is
    /// returned as `Err(message)` without printing.
    pub(crate) fn show(
        &mut self,
        msg: &JsonMessage,
        out: &mut dyn Write,
    ) -> Result<Shown, ShowError> {
        if let Some(detail) = &msg.error_detail {
            return Err(ShowError::Daemon(detail.message.clone()));
        }
        if let Some(e) = &msg.error {
            return Err(ShowError::Daemon(e.clone()));
        }
        if let Some(aux) = &msg.aux {
            return Ok(Shown::Aux(aux.clone()));
        }
        let has_progress = msg.progress_detail.is_some() || msg.progress.is_some();
        let mut diff = 0;
        let id = msg.id.as_deref().unwrap_or("");
        if !id.is_empty() && has_progress {
            let line = match self.ids.get(id) {
                Some(&l) => l,
                None => {
                    let l = self.ids.len();
                    self.ids.insert(id.to_string(), l);
                    if self.terminal {
                        out.write_all(b"\n")?;
                    }
                    l
                }
            };
            diff = self.ids.len() - line;
            if self.terminal && diff > 0 {
                write!(out, "\x1b[{diff}A")?;
            }
        } else {
            self.ids.clear();
        }
        self.display(msg, out)?;
        if !id.is_empty() && self.terminal && diff > 0 {
            write!(out, "\x1b[{diff}B")?;
        }
        out.flush()?;
        Ok(Shown::Ok)
    }

    fn display(&self, msg: &JsonMessage, out: &mut dyn Write) -> io::Result<()> {
        let progress_text = progress_text(msg);
        let has_progress = msg.progress_detail.is_some() || msg.progress.is_some();
        let mut endl = "";
        if self.terminal && msg.stream.is_none() && has_progress {
            out.write_all(b"\x1b[2K\r")?;
            endl = "\r";
        } else if has_progress && !progress_text.is_empty() {
            // No progress bars outside a terminal.
            return Ok(());
        }
        if let Some(id) = msg.id.as_deref().filter(|s| !s.is_empty()) {
            write!(out, "{id}: ")?;
        }
        let status = msg.status.as_deref().unwrap_or("");
        if has_progress && self.terminal {
            write!(out, "{status} {progress_text}{endl}")
        } else if let Some(stream) = &msg.stream {
            write!(out, "{stream}{endl}")
        } else {
            writeln!(out, "{status}{endl}")
        }
    }
}

/// The progress bar text: the daemon's rendering when it sent one, else
/// `current/total` from `progressDetail`; empty when there is no progress.
fn progress_text(msg: &JsonMessage) -> String {
    if let Some(p) = msg.progress.as_deref().filter(|p| !p.is_empty()) {
        return p.to_string();
    }
    let Some(detail) = &msg.progress_detail else {
        return String::new();
    };
    let current = detail.get("current").and_then(|v| v.as_i64()).unwrap_or(0);
    let total = detail.get("total").and_then(|v| v.as_i64()).unwrap_or(0);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    let cur = super::units::human_size(current as f64);
    if total <= 0 {
        return format!("{cur:>8}");
    }
    format!("{cur}/{}", super::units::human_size(total as f64))
}

/// Why a message could not be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShowError {
    /// The daemon reported an error inside the stream; printed bare.
    #[error("{0}")]
    Daemon(String),
    /// Writing the output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> JsonMessage {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plain_output_drops_progress_bars() {
        let mut d = ProgressDisplay::new(false);
        let mut out = Vec::new();
        for m in [
            r#"{"status":"Pulling from flow-b","id":"latest"}"#,
            r#"{"status":"Already exists","progressDetail":{},"id":"c3309bd23030"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":115,"total":115},"progress":"[==>]  115B/115B","id":"c3309bd23030"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"c3309bd23030"}"#,
            r#"{"stream":"Loaded image: busybox:latest\n"}"#,
            r#"{"status":"sha256:abc"}"#,
        ] {
            assert_eq!(d.show(&msg(m), &mut out).unwrap(), Shown::Ok);
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "latest: Pulling from flow-b\nc3309bd23030: Already exists\nc3309bd23030: Pull complete\nLoaded image: busybox:latest\nsha256:abc\n"
        );
    }

    #[test]
    fn errors_and_aux() {
        let mut d = ProgressDisplay::new(false);
        let mut out = Vec::new();
        let e = d
            .show(
                &msg(r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#),
                &mut out,
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "boom");
        let a = d
            .show(&msg(r#"{"aux":{"ID":"sha256:1"}}"#), &mut out)
            .unwrap();
        assert_eq!(a, Shown::Aux(serde_json::json!({"ID":"sha256:1"})));
        assert!(out.is_empty());
    }

    #[test]
    fn terminal_rewrites_lines_per_id() {
        let mut d = ProgressDisplay::new(true);
        let mut out = Vec::new();
        d.show(&msg(r#"{"status":"Downloading","progressDetail":{"current":1,"total":2},"progress":"[=> ] 1B/2B","id":"aaa"}"#), &mut out).unwrap();
        d.show(
            &msg(r#"{"status":"Download complete","progressDetail":{},"id":"aaa"}"#),
            &mut out,
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\n\x1b[1A\x1b[2K\raaa: Downloading [=> ] 1B/2B\r\x1b[1B\x1b[1A\x1b[2K\raaa: Download complete \r\x1b[1B");
    }
}
