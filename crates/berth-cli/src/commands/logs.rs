//! `logs`: reads `Config.Tty` from inspect first (as docker does), then
//! streams `GET /containers/{id}/logs`, demultiplexed unless the container
//! has a TTY.

use berth_api::container::ContainerInspect;
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::Args;

use super::{requires_exact, CmdResult, Ctx};
use crate::client::{next_chunk, Query};

/// `berth logs`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Fetch the logs of a container",
    override_usage = "berth logs [OPTIONS] CONTAINER"
)]
pub(crate) struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub(crate) details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) since: String,
    /// Number of lines to show from the end of the logs
    #[arg(
        short = 'n',
        long,
        value_name = "string",
        default_value = "all",
        allow_hyphen_values = true
    )]
    pub(crate) tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub(crate) timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) until: String,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub(crate) args: Vec<String>,
}

/// Go's `time.ParseDuration`, in seconds ("1h30m", "1.5s", "300ms").
pub(crate) fn parse_go_duration(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[unit_end..];
    }
    Some(if neg { -total } else { total })
}

/// docker's `timetypes.GetTimestamp`: a duration ("10m") becomes the unix
/// time that long before `now`; RFC 3339 and date forms become
/// `seconds.nanoseconds`; a unix timestamp passes through.
pub(crate) fn get_timestamp(value: &str, now: DateTime<Utc>) -> Result<String, String> {
    if value != "0" {
        if let Some(secs) = parse_go_duration(value) {
            let t = now - chrono::Duration::nanoseconds((secs * 1e9) as i64);
            return Ok(t.timestamp().to_string());
        }
    }
    let has_zone = value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3;
    let parsed: Option<DateTime<Utc>> = if has_zone {
        DateTime::parse_from_rfc3339(value)
            .or_else(|_| DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M%#z"))
            .or_else(|_| DateTime::parse_from_str(value, "%Y-%m-%dT%H%#z"))
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                let (date, _) = value.split_once(['Z', 'z', '+']).unwrap_or((value, ""));
                NaiveDate::parse_from_str(date, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|n| n.and_utc())
            })
    } else {
        let local = |n: NaiveDateTime| {
            Local
                .from_local_datetime(&n)
                .single()
                .map(|t| t.with_timezone(&Utc))
        };
        [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%dT%H")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .and_then(local)
    };
    if let Some(t) = parsed {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    if value.contains('-') {
        return Err(format!(
            "parsing time {value:?}: cannot parse as RFC 3339 time"
        ));
    }
    let (secs, nanos) = value.split_once('.').unwrap_or((value, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(secs) && digits(nanos) {
        return Ok(value.to_string());
    }
    Err(format!(
        "failed to parse value as time or duration: {value:?}"
    ))
}

/// `berth logs CONTAINER`.
pub(crate) async fn logs(ctx: &Ctx, args: &LogsArgs, path: &str) -> CmdResult {
    requires_exact(path, "[OPTIONS] CONTAINER", args.args.len(), 1)?;
    let name = &args.args[0];
    let c: ContainerInspect = ctx
        .client
        .get_json(&format!("/containers/{name}/json"), &Query::new())
        .await?;
    let now = Utc::now();
    let since = if args.since.is_empty() {
        String::new()
    } else {
        get_timestamp(&args.since, now).map_err(anyhow::Error::msg)?
    };
    let until = if args.until.is_empty() {
        String::new()
    } else {
        get_timestamp(&args.until, now).map_err(anyhow::Error::msg)?
    };
    let query = Query::new()
        .add("stdout", "1")
        .add("stderr", "1")
        .add_nonempty("since", &since)
        .add_nonempty("until", &until)
        .add_if(args.timestamps, "timestamps", "1")
        .add_if(args.details, "details", "1")
        .add_if(args.follow, "follow", "1")
        .add("tail", args.tail.as_str());
    let resp = ctx
        .client
        .get_stream(&format!("/containers/{}/logs", c.id), &query)
        .await?;
    let mut body = resp.into_body();
    if c.config.tty {
        while let Some(chunk) = next_chunk(&mut body).await? {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&chunk)?;
            stdout.flush()?;
        }
    } else {
        let mut out = FrameWriter::new(std::io::stdout(), std::io::stderr());
        while let Some(chunk) = next_chunk(&mut body).await? {
            out.feed(&chunk)?;
        }
        out.finish()?;
    }
    Ok(0)
}

/// Writes multiplexed frames to stdout and stderr, a chunk at a time: a
/// log holds one frame per line, and a write (and a flush) per frame would
/// cost more than everything else. Order between the two streams is kept:
/// one is flushed before the other is written to.
struct FrameWriter<O: std::io::Write, E: std::io::Write> {
    out: std::io::BufWriter<O>,
    err: std::io::BufWriter<E>,
    /// The stream last written to (1 or 2).
    last: u8,
    /// An incomplete frame from the previous chunk.
    rest: Vec<u8>,
}

impl<O: std::io::Write, E: std::io::Write> FrameWriter<O, E> {
    fn new(out: O, err: E) -> Self {
        FrameWriter {
            out: std::io::BufWriter::with_capacity(128 * 1024, out),
            err: std::io::BufWriter::with_capacity(16 * 1024, err),
            last: 1,
            rest: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let joined;
        let data: &[u8] = if self.rest.is_empty() {
            chunk
        } else {
            self.rest.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.rest);
            &joined
        };
        let mut pos = 0;
        while data.len() - pos >= 8 {
            let len =
                u32::from_be_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]])
                    as usize;
            if data.len() - pos - 8 < len {
                break;
            }
            let payload = &data[pos + 8..pos + 8 + len];
            let kind = data[pos];
            match kind {
                0..=2 => {
                    let stream = if kind == 2 { 2 } else { 1 };
                    if stream != self.last {
                        if self.last == 1 {
                            self.out.flush()?;
                        } else {
                            self.err.flush()?;
                        }
                        self.last = stream;
                    }
                    if stream == 2 {
                        self.err.write_all(payload)?;
                    } else {
                        self.out.write_all(payload)?;
                    }
                }
                3 => {
                    return Err(std::io::Error::other(format!(
                        "error from daemon in stream: {}",
                        String::from_utf8_lossy(payload)
                    )))
                }
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("Unrecognized input header: {other}"),
                    ))
                }
            }
            pos += 8 + len;
        }
        self.rest = data[pos..].to_vec();
        self.out.flush()?;
        self.err.flush()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.out.flush()?;
        self.err.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_chunks() {
        let mut body = Vec::new();
        for (k, t) in [(1u8, "out1\n"), (2, "err1\n"), (1, "out2\n")] {
            body.extend_from_slice(&[k, 0, 0, 0, 0, 0, 0, t.len() as u8]);
            body.extend_from_slice(t.as_bytes());
        }
        let mut w = FrameWriter::new(Vec::new(), Vec::new());
        for piece in body.chunks(5) {
            w.feed(piece).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(w.out.get_ref(), b"out1\nout2\n");
        assert_eq!(w.err.get_ref(), b"err1\n");
        let mut w = FrameWriter::new(Vec::new(), Vec::new());
        assert!(w.feed(&[3, 0, 0, 0, 0, 0, 0, 1, b'x']).is_err());
        assert!(w.feed(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("42m"), Some(2520.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("1.5s"), Some(1.5));
        assert_eq!(parse_go_duration("300ms"), Some(0.3));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("abc"), None);
    }

    #[test]
    fn timestamps() {
        let now = DateTime::parse_from_rfc3339("2024-01-02T13:23:37Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            get_timestamp("10m", now).unwrap(),
            (now.timestamp() - 600).to_string()
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37Z", now).unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37.5+01:00", now).unwrap(),
            "1357129417.500000000"
        );
        assert_eq!(get_timestamp("1357133017", now).unwrap(), "1357133017");
        assert_eq!(
            get_timestamp("1357133017.123", now).unwrap(),
            "1357133017.123"
        );
        assert_eq!(get_timestamp("0", now).unwrap(), "0");
        assert!(get_timestamp("junk", now).is_err());
        assert!(get_timestamp("2013-13-45", now).is_err());
    }
}
