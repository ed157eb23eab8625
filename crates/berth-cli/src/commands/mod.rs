//! One module per command group. Each command takes the parsed flags and a
//! [`Ctx`] (the negotiated client) and returns the process exit code, or an
//! error that `main` prints Docker-style.

pub(crate) mod attach;
pub(crate) mod build;
pub(crate) mod commit;
pub(crate) mod completion;
pub(crate) mod container_opts;
pub(crate) mod cp;
pub(crate) mod create;
pub(crate) mod df;
pub(crate) mod events;
pub(crate) mod exec;
pub(crate) mod export;
pub(crate) mod image_io;
pub(crate) mod images;
pub(crate) mod inspect;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod mount_opts;
pub(crate) mod network;
pub(crate) mod port;
pub(crate) mod prune;
pub(crate) mod ps;
pub(crate) mod registry;
pub(crate) mod run;
pub(crate) mod start;
pub(crate) mod stats;
pub(crate) mod stats_calc;
pub(crate) mod system;
pub(crate) mod top;
pub(crate) mod update;
pub(crate) mod volume;

#[cfg(test)]
mod socket_tests;

use std::io::{self, Write};
use std::sync::Arc;

use crate::client::Client;

/// What every command gets.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The client, after version negotiation.
    pub(crate) client: Arc<Client>,
    /// `-D/--debug`.
    pub(crate) debug: bool,
}

/// An error with the exit code it calls for (docker's `cli.StatusError`).
/// An empty message prints nothing.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct StatusError {
    /// What to print on stderr.
    pub(crate) message: String,
    /// The process exit code.
    pub(crate) code: i32,
}

impl StatusError {
    /// An error exiting with `code`.
    pub(crate) fn new(code: i32, message: impl Into<String>) -> StatusError {
        StatusError {
            message: message.into(),
            code,
        }
    }

    /// Exit with `code`, printing nothing (a container's exit status).
    pub(crate) fn silent(code: i32) -> StatusError {
        StatusError {
            message: String::new(),
            code,
        }
    }
}

/// The result of a command: the exit code.
pub(crate) type CmdResult = anyhow::Result<i32>;

/// Writes to standard output and flushes. Unlike `print!` this returns the
/// error (a closed pipe) instead of panicking.
pub(crate) fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Writes a line to standard output.
pub(crate) fn outln(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Several failures reported at the end, one per line, exit 1 (Go's
/// `errors.Join` as docker's multi-name commands return it).
pub(crate) fn joined(errors: Vec<String>) -> CmdResult {
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(StatusError::new(1, errors.join("\n")).into())
    }
}

/// `berth: 'berth X' requires at least N arguments` (docker's
/// `RequiresMinArgs`, exit 1).
pub(crate) fn requires_min(path: &str, usage: &str, got: usize, min: usize) -> anyhow::Result<()> {
    if got >= min {
        return Ok(());
    }
    Err(StatusError::new(
        1,
        format!(
            "berth: 'berth {path}' requires at least {min} {}\n\nUsage:  berth {path} {usage}\n\nSee 'berth {path} --help' for more information",
            plural(min)
        ),
    )
    .into())
}

/// docker's `ExactArgs`.
pub(crate) fn requires_exact(path: &str, usage: &str, got: usize, n: usize) -> anyhow::Result<()> {
    if got == n {
        return Ok(());
    }
    Err(StatusError::new(
        1,
        format!(
            "berth: 'berth {path}' requires {n} {}\n\nUsage:  berth {path} {usage}\n\nRun 'berth {path} --help' for more information",
            plural(n)
        ),
    )
    .into())
}

/// docker's `RequiresRangeArgs`.
pub(crate) fn requires_range(
    path: &str,
    usage: &str,
    got: usize,
    min: usize,
    max: usize,
) -> anyhow::Result<()> {
    if (min..=max).contains(&got) {
        return Ok(());
    }
    Err(StatusError::new(
        1,
        format!(
            "berth: 'berth {path}' requires at least {min} and at most {max} {}\n\nUsage:  berth {path} {usage}\n\nRun 'berth {path} --help' for more information",
            plural(max)
        ),
    )
    .into())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "argument"
    } else {
        "arguments"
    }
}

/// Go's `strconv.ParseBool`, for flags written `--sig-proxy=false`.
pub(crate) fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` for integer flags, with its error text.
pub(crate) fn parse_go_int(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (digits, radix) = if let Some(d) = lower.strip_prefix("0x") {
        (d.to_string(), 16)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (d.to_string(), 8)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (d.to_string(), 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (lower[1..].to_string(), 8)
    } else {
        (lower.clone(), 10)
    };
    let digits = digits.replace('_', "");
    match i64::from_str_radix(&format!("{}{digits}", if neg { "-" } else { "" }), radix) {
        Ok(n) if !digits.is_empty() => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
            ) =>
        {
            Err(format!(
                "strconv.ParseInt: parsing {s:?}: value out of range"
            ))
        }
        _ => Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `strconv.ParseUint(s, 0, 16)` for `uint16` flags, with its error
/// text (no sign allowed).
pub(crate) fn parse_go_uint16(s: &str) -> Result<u16, String> {
    let syntax = || format!("strconv.ParseUint: parsing {s:?}: invalid syntax");
    let range = || format!("strconv.ParseUint: parsing {s:?}: value out of range");
    if s.starts_with(['-', '+']) {
        return Err(syntax());
    }
    match parse_go_int(s) {
        Ok(n) => u16::try_from(n).map_err(|_| range()),
        Err(e) if e.ends_with("value out of range") => Err(range()),
        Err(_) => Err(syntax()),
    }
}

/// A `--filter key=value` flag (docker's `filters.ParseFlag`: the key is
/// trimmed and lower-cased, the value trimmed).
pub(crate) fn parse_filter(s: &str) -> Result<(String, String), String> {
    let Some((k, v)) = s.split_once('=') else {
        return Err("bad format of filter (expected name=value)".into());
    };
    Ok((k.trim().to_lowercase(), v.trim().to_string()))
}

/// The `filters` query value as docker CLI 28 sends it: the old
/// `{"key":{"value":true}}` form.
pub(crate) fn filters_json(filters: &[(String, String)]) -> String {
    let mut map: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, bool>> =
        Default::default();
    for (k, v) in filters {
        map.entry(k).or_default().insert(v, true);
    }
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// Go's error text for a failed `os.Open`: `open PATH: no such file or
/// directory`.
pub(crate) fn open_error(path: &str, e: &io::Error) -> String {
    format!("open {path}: {}", go_errno_text(e))
}

/// The lower-case strerror text Go prints for an OS error.
pub(crate) fn go_errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let desc = nix::errno::Errno::from_raw(n).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter(" Status = exited "),
            Ok(("status".into(), "exited".into()))
        );
        assert!(parse_filter("nope").is_err());
        let f = vec![
            ("status".to_string(), "exited".to_string()),
            ("label".into(), "a=b".into()),
        ];
        assert_eq!(
            filters_json(&f),
            r#"{"label":{"a=b":true},"status":{"exited":true}}"#
        );
    }

    #[test]
    fn arg_count_messages() {
        let e = requires_min("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", 0, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information"
        );
        assert!(requires_exact("tag", "SOURCE TARGET", 2, 2).is_ok());
    }

    #[test]
    fn go_ints() {
        assert_eq!(parse_go_int("42"), Ok(42));
        assert_eq!(parse_go_int("-1"), Ok(-1));
        assert_eq!(parse_go_int("0x10"), Ok(16));
        assert_eq!(parse_go_int("010"), Ok(8));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert_eq!(
            parse_go_int("x"),
            Err("strconv.ParseInt: parsing \"x\": invalid syntax".into())
        );
        assert!(parse_go_int("99999999999999999999")
            .unwrap_err()
            .ends_with("value out of range"));
    }

    #[test]
    fn go_uints() {
        assert_eq!(parse_go_uint16("300"), Ok(300));
        assert_eq!(parse_go_uint16("0x10"), Ok(16));
        assert_eq!(
            parse_go_uint16("70000"),
            Err("strconv.ParseUint: parsing \"70000\": value out of range".into())
        );
        assert_eq!(
            parse_go_uint16("-1"),
            Err("strconv.ParseUint: parsing \"-1\": invalid syntax".into())
        );
    }

    #[test]
    fn go_texts() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(open_error("/x", &e), "open /x: no such file or directory");
        assert_eq!(parse_go_bool("False"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
    }
}
