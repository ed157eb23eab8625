//! Container logs, the daemon's side: the log configuration a container
//! gets at create (Docker's merge of daemon-wide defaults, berth's default
//! rotation, Docker's validation), the settings its shim writes with, and
//! `logs` — reading the files back (across rotated and gzipped ones),
//! filtered, tailed and followed, streamed without holding more than a few
//! chunks in memory.
//!
//! The shim writes the files; [`berth_runtime::shim::log_files`] describes
//! them and the rotation protocol that readers follow.

mod json;
mod read;
mod wait;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::container::LogConfig;
use berth_runtime::shim::log_files::{
    self, LogDriver, LogSettings, DEFAULT_MAX_FILE, DEFAULT_MAX_SIZE,
};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::container::{Container, Record, Status};
use super::Daemon;
use crate::config::DaemonConfig;
use crate::error::{DaemonError, Result};

pub use read::{Format, LogReader, Message, Step};

/// Docker's answer to `logs` for a driver that keeps nothing.
pub const NOT_READABLE: &str = "configured logging driver does not support reading";

/// Docker's merge at create (`mergeAndVerifyLogConfig`): the daemon's
/// driver when none is given, the daemon's `log-opts` under the container's
/// own when the drivers match, then berth's default rotation for json-file
/// (`max-size=20m`, `max-file=5`), then Docker's checks. What results is
/// what `inspect` shows and what every start uses.
pub fn merge_log_config(cfg: &DaemonConfig, lc: &mut LogConfig) -> Result<()> {
    if lc.kind.is_empty() {
        lc.kind = cfg.log_driver.clone();
    }
    let mut opts = lc.config.take().unwrap_or_default();
    if lc.kind == cfg.log_driver {
        for (k, v) in &cfg.log_opts {
            opts.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    add_default_rotation(&lc.kind, &mut opts);
    LogSettings::from_opts(&lc.kind, &opts).map_err(DaemonError::BadRequest)?;
    if lc.kind == "none" {
        opts.clear();
    }
    lc.config = Some(opts);
    Ok(())
}

/// Checks the daemon-wide `log-driver` and `log-opts` (dockerd refuses to
/// start with bad ones).
pub fn validate_daemon_defaults(
    driver: &str,
    opts: &BTreeMap<String, String>,
) -> std::result::Result<(), String> {
    let mut opts = opts.clone();
    add_default_rotation(driver, &mut opts);
    LogSettings::from_opts(driver, &opts).map(|_| ())
}

fn add_default_rotation(driver: &str, opts: &mut BTreeMap<String, String>) {
    if driver == "json-file" || driver.is_empty() {
        opts.entry("max-size".into())
            .or_insert_with(|| DEFAULT_MAX_SIZE.into());
        opts.entry("max-file".into())
            .or_insert_with(|| DEFAULT_MAX_FILE.into());
    }
}

/// The extra attributes Docker stores with each message
/// (`logger.Info.ExtraAttributes` and `tag`): `labels`/`labels-regex` pick
/// container labels, `env`/`env-regex` environment variables.
pub fn attributes(
    rec: &Record,
    opts: &BTreeMap<String, String>,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let labels = rec.config.labels.clone().unwrap_or_default();
    let env: BTreeMap<&str, &str> = rec
        .config
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let mut out = BTreeMap::new();
    if let Some(list) = opts.get("labels").filter(|s| !s.is_empty()) {
        for l in list.split(',') {
            if let Some(v) = labels.get(l) {
                out.insert(l.to_string(), v.clone());
            }
        }
    }
    if let Some(re) = opts.get("labels-regex").filter(|s| !s.is_empty()) {
        let re = regex::Regex::new(re).map_err(|e| e.to_string())?;
        for (k, v) in &labels {
            if re.is_match(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(list) = opts.get("env").filter(|s| !s.is_empty()) {
        for l in list.split(',') {
            if let Some(v) = env.get(l) {
                out.insert(l.to_string(), v.to_string());
            }
        }
    }
    if let Some(re) = opts.get("env-regex").filter(|s| !s.is_empty()) {
        let re = regex::Regex::new(re).map_err(|e| e.to_string())?;
        for (k, v) in &env {
            if re.is_match(k) {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    if let Some(tag) = opts.get("tag").filter(|s| !s.is_empty()) {
        out.insert("tag".into(), expand_tag(tag, rec));
    }
    Ok(out)
}

/// Docker's log tag template, for the fields it documents.
fn expand_tag(tag: &str, rec: &Record) -> String {
    let short = |s: &str| {
        s.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>()
    };
    let fields = [
        ("ID", short(&rec.id)),
        ("FullID", rec.id.clone()),
        ("Name", rec.name.trim_start_matches('/').to_string()),
        ("ImageID", short(&rec.image_id)),
        ("ImageFullID", rec.image_id.clone()),
        ("ImageName", rec.config.image.clone()),
        ("DaemonName", "berth".to_string()),
    ];
    let mut out = tag.to_string();
    for (k, v) in fields {
        for form in [format!("{{{{.{k}}}}}"), format!("{{{{ .{k} }}}}")] {
            out = out.replace(&form, &v);
        }
    }
    out
}

impl Daemon {
    /// A container's log driver and the path of its current log file
    /// (`None` for `--log-driver none`).
    pub fn log_file(&self, rec: &Record) -> (LogDriver, Option<PathBuf>) {
        let dir = self.container_dir(&rec.id);
        match rec.host_config.log_config.kind.as_str() {
            "none" => (LogDriver::None, None),
            "local" => (
                LogDriver::Local,
                Some(dir.join("local-logs").join("container.log")),
            ),
            _ => (LogDriver::JsonFile, Some(self.log_path(&rec.id))),
        }
    }

    /// What the shim needs to write a container's log: the current file
    /// and the settings (from the config merged at create; containers made
    /// before berth rotated logs get the default rotation now).
    pub fn shim_log(&self, rec: &Record) -> Result<(Option<PathBuf>, LogSettings)> {
        let lc = &rec.host_config.log_config;
        let mut opts = lc.config.clone().unwrap_or_default();
        add_default_rotation(&lc.kind, &mut opts);
        let mut settings =
            LogSettings::from_opts(&lc.kind, &opts).map_err(DaemonError::BadRequest)?;
        settings.attrs = attributes(rec, &opts).map_err(DaemonError::BadRequest)?;
        let (_, path) = self.log_file(rec);
        Ok((path, settings))
    }

    /// Starts streaming a container's log as `req` asks: chunks of framed
    /// (or, with a TTY, raw) output arrive on the returned channel, which
    /// closes at the end (or, when following, when the container stops).
    /// Dropping the receiver stops the reader.
    pub fn logs(
        self: &Arc<Self>,
        c: &Arc<Container>,
        req: LogsRequest,
    ) -> Result<(bool, mpsc::Receiver<Bytes>)> {
        let rec = c.snapshot();
        let (driver, path) = self.log_file(&rec);
        let Some(path) = path else {
            return Err(DaemonError::NotImplemented(NOT_READABLE.into()));
        };
        if !req.stdout && !req.stderr {
            return Err(DaemonError::BadRequest(
                "Bad parameters: you must choose at least one stream".into(),
            ));
        }
        let format = if driver == LogDriver::Local {
            Format::Local
        } else {
            Format::Json
        };
        let tty = rec.config.tty;
        let follow = req.follow && running(c);
        let reader = LogReader::open(&path, format, req.tail, follow)
            .map_err(|e| DaemonError::Internal(format!("reading log {}: {e}", path.display())))?;
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let c = c.clone();
        let enc = Encoder::new(&req, tty);
        std::thread::Builder::new()
            .name("logs".into())
            .spawn(move || stream(reader, enc, req, follow, c, tx))
            .map_err(|e| DaemonError::Internal(format!("logs thread: {e}")))?;
        Ok((tty, rx))
    }
}

/// Chunks in flight per `logs` request (each up to [`CHUNK`] bytes).
const CHANNEL_CHUNKS: usize = 8;
/// Output is sent in chunks of about this size.
const CHUNK: usize = 64 * 1024;

/// What a `logs` request asks for (the query of `GET /containers/{id}/logs`).
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only messages at or after (ns since the epoch).
    pub since: Option<i64>,
    /// Only messages at or before (ns since the epoch).
    pub until: Option<i64>,
    /// Only the last N messages (of both streams, before time filters, as
    /// Docker counts).
    pub tail: Option<u64>,
    /// Prefix each message with its time.
    pub timestamps: bool,
    /// Prefix each message with its attributes.
    pub details: bool,
    /// Keep streaming while the container runs.
    pub follow: bool,
}

fn running(c: &Container) -> bool {
    matches!(c.status(), Status::Running | Status::Paused)
}

/// Turns messages into what the client reads.
struct Encoder {
    tty: bool,
    timestamps: bool,
    details: bool,
    stdout: bool,
    stderr: bool,
    out: Vec<u8>,
}

impl Encoder {
    fn new(req: &LogsRequest, tty: bool) -> Encoder {
        Encoder {
            tty,
            timestamps: req.timestamps,
            details: req.details,
            stdout: req.stdout,
            stderr: req.stderr,
            out: Vec::with_capacity(CHUNK + 32 * 1024),
        }
    }

    fn push(&mut self, m: &Message) {
        if !((m.stream == 1 && self.stdout) || (m.stream == 2 && self.stderr)) {
            return;
        }
        let head = self.out.len();
        if !self.tty {
            self.out.extend_from_slice(&[m.stream, 0, 0, 0, 0, 0, 0, 0]);
        }
        let body = self.out.len();
        if self.timestamps {
            log_files::format_time(m.time_ns, true, &mut self.out);
            self.out.push(b' ');
        }
        if self.details {
            self.out.extend_from_slice(m.details.as_bytes());
            self.out.push(b' ');
        }
        self.out.extend_from_slice(&m.data);
        if !self.tty {
            let len = (self.out.len() - body) as u32;
            self.out[head + 4..head + 8].copy_from_slice(&len.to_be_bytes());
        }
    }

    fn take(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| {
            Bytes::from(std::mem::replace(
                &mut self.out,
                Vec::with_capacity(CHUNK + 32 * 1024),
            ))
        })
    }
}

/// The reading thread: everything there is (tail applied), then, when
/// following, what comes, until the container stops, `until` passes or the
/// client goes away.
fn stream(
    mut reader: LogReader,
    mut enc: Encoder,
    req: LogsRequest,
    follow: bool,
    c: Arc<Container>,
    tx: mpsc::Sender<Bytes>,
) {
    let send = |enc: &mut Encoder| -> bool {
        match enc.take() {
            Some(b) => tx.blocking_send(b).is_ok(),
            None => true,
        }
    };
    let mut msg = Message::default();
    let mut waiter = if follow {
        Some(wait::Waiter::new(&reader.dir()))
    } else {
        None
    };
    let mut last_pass = false;
    loop {
        match reader.next(&mut msg) {
            Ok(Step::Message) => {
                if req.since.is_some_and(|s| msg.time_ns < s) {
                    continue;
                }
                if req.until.is_some_and(|u| msg.time_ns > u) {
                    break;
                }
                enc.push(&msg);
                if enc.out.len() >= CHUNK && !send(&mut enc) {
                    return;
                }
            }
            Ok(Step::End) => break,
            Ok(Step::Wait) => {
                let Some(w) = waiter.as_mut() else { break };
                match reader.check_rotation() {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!("following log: {e}");
                        break;
                    }
                }
                if last_pass {
                    break;
                }
                if !send(&mut enc) {
                    return;
                }
                if tx.is_closed() || req.until.is_some_and(|u| log_files::now_ns() > u) {
                    break;
                }
                if !running(&c) {
                    // The shim wrote all before the exit was known: one
                    // more pass reads it.
                    last_pass = true;
                    continue;
                }
                w.wait();
            }
            Err(e) => {
                tracing::warn!("reading log: {e}");
                break;
            }
        }
    }
    send(&mut enc);
}

/// [`parse_time_ns`] in (fractional) seconds, for `events`' `since`/`until`.
pub fn parse_time(s: &str) -> Option<f64> {
    parse_time_ns(s).map(|ns| ns as f64 / 1e9)
}

/// Docker's `since`/`until`: Unix seconds with an optional fraction
/// (`1700000000`, `1700000000.5`), or (berth also takes it) RFC 3339; as
/// nanoseconds since the epoch.
pub fn parse_time_ns(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(ns) = log_files::parse_time(s.as_bytes()) {
        return Some(ns);
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = &frac[..frac.len().min(9)];
        nanos = digits.parse().ok()?;
        for _ in digits.len()..9 {
            nanos *= 10;
        }
    }
    let sign = if s.starts_with('-') { -1 } else { 1 };
    secs.checked_mul(1_000_000_000)?.checked_add(sign * nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_until_values() {
        assert_eq!(parse_time_ns("1704067200"), Some(1_704_067_200_000_000_000));
        assert_eq!(
            parse_time_ns("1704067200.5"),
            Some(1_704_067_200_500_000_000)
        );
        assert_eq!(
            parse_time_ns("1704067200.000000001"),
            Some(1_704_067_200_000_000_001)
        );
        assert_eq!(
            parse_time_ns("2024-01-01T00:00:00Z"),
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(
            parse_time_ns("2024-01-01T01:00:00.25+01:00"),
            Some(1_704_067_200_250_000_000)
        );
        assert_eq!(parse_time_ns(""), None);
        assert_eq!(parse_time_ns("10m"), None);
        assert_eq!(parse_time_ns("12.x"), None);
        assert_eq!(parse_time("1704067200.5"), Some(1_704_067_200.5));
    }

    fn cfg(driver: &str, opts: &[(&str, &str)]) -> DaemonConfig {
        let mut c = DaemonConfig::for_root(std::path::Path::new("/nonexistent"));
        c.log_driver = driver.into();
        c.log_opts = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c
    }

    fn lc(kind: &str, opts: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            kind: kind.into(),
            config: Some(
                opts.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn merge_at_create() {
        // Nothing set: json-file with berth's rotation.
        let mut l = lc("", &[]);
        merge_log_config(&cfg("json-file", &[]), &mut l).unwrap();
        assert_eq!(l.kind, "json-file");
        assert_eq!(
            l.config.unwrap(),
            [("max-file", "5"), ("max-size", "20m")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into()
        );
        // The daemon's options under the container's own.
        let mut l = lc("", &[("max-size", "1m")]);
        merge_log_config(
            &cfg("json-file", &[("max-size", "5m"), ("compress", "true")]),
            &mut l,
        )
        .unwrap();
        let o = l.config.unwrap();
        assert_eq!(
            (
                o["max-size"].as_str(),
                o["compress"].as_str(),
                o["max-file"].as_str()
            ),
            ("1m", "true", "5")
        );
        // Another driver than the daemon's: not its options.
        let mut l = lc("local", &[]);
        merge_log_config(&cfg("json-file", &[("max-size", "5m")]), &mut l).unwrap();
        assert!(l.config.unwrap().is_empty());
        // The daemon's default driver.
        let mut l = lc("", &[]);
        merge_log_config(&cfg("local", &[]), &mut l).unwrap();
        assert_eq!(l.kind, "local");
        // Docker's errors.
        let mut l = lc("json-file", &[("foo", "bar")]);
        let e = merge_log_config(&cfg("json-file", &[]), &mut l).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown log opt 'foo' for json-file log driver"
        );
        let mut l = lc("", &[("max-size", "10q")]);
        assert_eq!(
            merge_log_config(&cfg("json-file", &[]), &mut l)
                .unwrap_err()
                .to_string(),
            "invalid suffix: 'q'"
        );
        assert!(validate_daemon_defaults(
            "json-file",
            &[("max-file".to_string(), "0".to_string())].into()
        )
        .is_err());
        assert!(validate_daemon_defaults("local", &BTreeMap::new()).is_ok());
    }

    #[test]
    fn attributes_from_labels_env_tag() {
        let mut rec = Record {
            id: "0123456789abcdef".repeat(4),
            name: "web".into(),
            ..Default::default()
        };
        rec.config.labels = Some(
            [("com.x", "1"), ("team", "a b")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        );
        rec.config.env = Some(vec!["A=1".into(), "B=two=2".into(), "PATH=/bin".into()]);
        rec.config.image = "busybox".into();
        let opts: BTreeMap<String, String> = [
            ("labels", "team,missing"),
            ("env", "B"),
            ("env-regex", "^A$"),
            ("tag", "{{.Name}}/{{.ID}}"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let a = attributes(&rec, &opts).unwrap();
        let want: BTreeMap<String, String> = [
            ("A", "1"),
            ("B", "two=2"),
            ("tag", "web/0123456789ab"),
            ("team", "a b"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        assert_eq!(a, want);
        let bad: BTreeMap<String, String> = [("labels-regex".to_string(), "(".to_string())].into();
        assert!(attributes(&rec, &bad).is_err());
    }

    #[test]
    fn encoder_frames_timestamps_details() {
        let req = LogsRequest {
            stdout: true,
            stderr: false,
            timestamps: true,
            details: true,
            ..Default::default()
        };
        let mut e = Encoder::new(&req, false);
        let m = Message {
            stream: 1,
            time_ns: 1_704_067_200_100_000_000,
            data: b"hi\n".to_vec(),
            details: "a=1".into(),
        };
        e.push(&m);
        e.push(&Message {
            stream: 2,
            ..m.clone()
        });
        let out = e.take().unwrap();
        let text = "2024-01-01T00:00:00.100000000Z a=1 hi\n";
        let mut want = vec![1, 0, 0, 0, 0, 0, 0, text.len() as u8];
        want.extend_from_slice(text.as_bytes());
        assert_eq!(&out[..], &want[..]);
        let mut e = Encoder::new(
            &LogsRequest {
                stdout: true,
                stderr: true,
                ..Default::default()
            },
            true,
        );
        e.push(&m);
        assert_eq!(&e.take().unwrap()[..], b"hi\n");
        assert!(e.take().is_none());
    }
}
