//! What the shim's container log (the writer, [`super::log`]) and the
//! daemon's `logs` (the reader) agree on: the logging settings (Docker's
//! `--log-driver` and `--log-opt`, parsed and checked), the names of the
//! files, the rotation lock and the timestamp formats.
//!
//! # Files
//!
//! A log is one *current* file — `<container dir>/<id>-json.log` for
//! `json-file`, `<container dir>/local-logs/container.log` for `local` —
//! and its rotated predecessors `<current>.1` (the newest) … `<current>.N-1`
//! (the oldest), each renamed to `<current>.i.gz` once compressed: Docker's
//! names. Beside them, `<current>.lock` holds the number of rotations so far
//! (decimal text) and is the lock of the rotation protocol.
//!
//! # Rotation protocol
//!
//! The shim is the only writer. It rotates with the lock file locked
//! exclusively (`flock`): it writes out what it buffered, drops the oldest
//! file, renames `.i` (or `.i.gz`) to `.i+1`, the current file to `.1`,
//! creates a new current file and adds one to the count. Readers hold the
//! lock shared only while they open files, so they always see a whole set;
//! afterwards the open descriptors keep working whatever is renamed. A
//! follower that holds the old current file reads it to its end, and the
//! count tells it how many rotations passed since, hence which rotated files
//! it has not seen yet: nothing is lost or read twice while they exist.
//!
//! Compression runs on a thread of the shim: it gzips a rotated file into
//! `<current>.gz.tmp`, then, holding the exclusive lock, finds where that
//! file is by now (by inode), renames the temporary file to `.j.gz` and
//! removes `.j`. So at any moment at most one of `.i` and `.i.gz` exists, and
//! a reader that finds `.i` plain reads it plain.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// Docker's longest message: longer output is cut into partial messages.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// berth's rotation when a json-file container sets none (Docker keeps
/// json-file logs forever; berth bounds them).
pub const DEFAULT_MAX_SIZE: &str = "20m";
/// See [`DEFAULT_MAX_SIZE`].
pub const DEFAULT_MAX_FILE: &str = "5";

/// Where a log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// Docker's json-file: one JSON object per line.
    #[default]
    JsonFile,
    /// A compact binary format ([`super::log_local`]).
    Local,
    /// No log at all.
    None,
}

impl LogDriver {
    /// Docker's name of the driver.
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::Local => "local",
            LogDriver::None => "none",
        }
    }
}

/// How a container's output is logged: the driver, rotation and the
/// attributes (`--log-opt labels=…,env=…,tag=…`) stored with each message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// The driver.
    pub driver: LogDriver,
    /// Rotate once the current file holds this many bytes; `None` never.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 1).
    pub max_file: u32,
    /// Gzip rotated files.
    pub compress: bool,
    /// Extra attributes (`docker logs --details`).
    pub attrs: BTreeMap<String, String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            driver: LogDriver::JsonFile,
            max_size: None,
            max_file: 1,
            compress: false,
            attrs: BTreeMap::new(),
        }
    }
}

/// Options every driver accepts (Docker's `mode`, `max-buffer-size`, and
/// the attribute options that [`LogSettings::attrs`] is made from).
const COMMON_OPTS: &[&str] = &["labels", "labels-regex", "env", "env-regex", "tag"];

impl LogSettings {
    /// Parses and checks a driver's options as Docker does at create, with
    /// Docker's error texts. Attributes are not computed here (they need
    /// the container's labels and environment).
    ///
    /// `max-size=-1` is berth's way to ask for no rotation (Docker rejects
    /// it; berth rotates json-file logs by default).
    pub fn from_opts(driver: &str, opts: &BTreeMap<String, String>) -> Result<LogSettings, String> {
        let driver = match driver {
            "" | "json-file" => LogDriver::JsonFile,
            "local" => LogDriver::Local,
            "none" => {
                return Ok(LogSettings {
                    driver: LogDriver::None,
                    ..Default::default()
                })
            }
            other => {
                return Err(format!(
                    "logger: no log driver named '{other}' is registered"
                ))
            }
        };
        let mode = opts.get("mode").map(String::as_str).unwrap_or("");
        if !matches!(mode, "" | "blocking" | "non-blocking") {
            return Err(format!("logger: logging mode not supported: {mode}"));
        }
        if let Some(s) = opts.get("max-buffer-size") {
            if mode != "non-blocking" {
                return Err(
                    "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
                        .into(),
                );
            }
            parse_size(s, 1024)
                .map_err(|e| format!("error parsing option max-buffer-size: {e}"))?;
        }
        let own: &[&str] = &["max-size", "max-file", "compress"];
        for key in opts.keys() {
            if key == "mode" || key == "max-buffer-size" {
                continue;
            }
            if !own.contains(&key.as_str()) && !COMMON_OPTS.contains(&key.as_str()) {
                return Err(match driver {
                    LogDriver::Local => format!("unknown log opt '{key}' for log driver local"),
                    _ => format!("unknown log opt '{key}' for json-file log driver"),
                });
            }
        }
        let mut s = LogSettings {
            driver,
            ..Default::default()
        };
        match driver {
            LogDriver::JsonFile => {
                if let Some(v) = opts.get("max-size") {
                    if v.trim() != "-1" {
                        let n = parse_size(v, 1000)?;
                        if n <= 0 {
                            return Err("max-size must be a positive number".into());
                        }
                        s.max_size = Some(n as u64);
                    }
                }
                if let Some(v) = opts.get("max-file") {
                    let n = parse_int(v)?;
                    if n < 1 {
                        return Err("max-file cannot be less than 1".into());
                    }
                    s.max_file = n.min(u32::MAX as i64) as u32;
                }
                if let Some(v) = opts.get("compress") {
                    s.compress = parse_bool(v)?;
                    if s.compress && (s.max_file == 1 || s.max_size.is_none()) {
                        return Err(
                            "compress cannot be true when max-file is less than 2 or max-size is not set".into(),
                        );
                    }
                }
            }
            LogDriver::Local => {
                // Docker's local driver rotates and compresses by default.
                s.max_size = Some(20 * 1024 * 1024);
                s.max_file = 5;
                s.compress = true;
                if let Some(v) = opts.get("max-size") {
                    let n = parse_size(v, 1000)
                        .map_err(|e| format!("invalid value for max-size: {v}: {e}"))?;
                    if n < 0 {
                        return Err("max-size must not be negative".into());
                    }
                    s.max_size = (n > 0).then_some(n as u64);
                }
                if let Some(v) = opts.get("max-file") {
                    let n = parse_int(v)
                        .map_err(|e| format!("invalid value for max-file: {v}: {e}"))?;
                    if n < 0 {
                        return Err("max-file must not be negative".into());
                    }
                    s.max_file = n.clamp(1, u32::MAX as i64) as u32;
                }
                if let Some(v) = opts.get("compress") {
                    s.compress = parse_bool(v)
                        .map_err(|e| format!("invalid boolean value for compress: {e}"))?;
                }
                if s.compress && s.max_file <= 1 {
                    return Err("compression cannot be enabled when max file count is 1".into());
                }
            }
            LogDriver::None => {}
        }
        Ok(s)
    }
}

/// Go's `strconv.Atoi`, with its error text.
fn parse_int(v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
}

/// Go's `strconv.ParseBool`, with its error text.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {v:?}: invalid syntax")),
    }
}

/// Docker's human sizes (go-units `FromHumanSize` with `unit` 1000,
/// `RAMInBytes` with 1024): "10", "10k", "1.5m", "20MB", "2 GiB".
pub fn parse_size(s: &str, unit: i64) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(invalid());
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if size < 0.0 || !size.is_finite() {
        return Err(invalid());
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{}'", sfx.to_ascii_lowercase());
    let low = sfx.to_ascii_lowercase();
    if low.len() > 3 {
        return Err(bad());
    }
    if low.starts_with('b') {
        return if low.len() == 1 {
            Ok(size as i64)
        } else {
            Err(bad())
        };
    }
    let power = match low.as_bytes()[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    if (low.len() == 2 && &low[1..] != "b") || (low.len() == 3 && &low[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * (unit as f64).powi(power)) as i64)
}

/// `<current>.i`, or `<current>.i.gz`.
pub fn rotated_path(current: &Path, i: u32, gz: bool) -> PathBuf {
    let mut s = current.as_os_str().to_owned();
    s.push(format!(".{i}"));
    if gz {
        s.push(".gz");
    }
    PathBuf::from(s)
}

/// `<current>.<suffix>`.
pub fn sibling(current: &Path, suffix: &str) -> PathBuf {
    let mut s = current.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// One file of a log, oldest first in [`LogFileSet::files`].
#[derive(Debug)]
pub struct OpenedFile {
    /// Its path when it was opened.
    pub path: PathBuf,
    /// Open for reading.
    pub file: File,
    /// Gzip-compressed.
    pub gz: bool,
}

/// A consistent view of a log's files, taken under the shared lock.
#[derive(Debug)]
pub struct LogFileSet {
    /// Rotated files, oldest first, then the current file (if it exists).
    pub files: Vec<OpenedFile>,
    /// The rotation count at that moment.
    pub rotations: u64,
    /// Whether the last entry of `files` is the current file.
    pub has_current: bool,
}

/// Opens the rotated file `.i` (plain or gzipped) if it exists.
pub fn open_rotated(current: &Path, i: u32) -> io::Result<Option<OpenedFile>> {
    for gz in [false, true] {
        let path = rotated_path(current, i, gz);
        match File::open(&path) {
            Ok(file) => return Ok(Some(OpenedFile { path, file, gz })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The lock file of a log, holding its rotation count.
#[derive(Debug)]
pub struct RotationLock {
    file: File,
}

/// A held lock; dropping it unlocks.
#[derive(Debug)]
pub struct LockGuard {
    _lock: Flock<File>,
}

const COUNT_WIDTH: usize = 20;

impl RotationLock {
    /// Opens (the writer: creating) `<current>.lock`.
    pub fn open(current: &Path, create: bool) -> io::Result<RotationLock> {
        let path = sibling(current, "lock");
        let file = OpenOptions::new()
            .read(true)
            .write(create)
            .create(create)
            .mode(0o640)
            .open(path)?;
        Ok(RotationLock { file })
    }

    fn lock(&self, arg: FlockArg) -> io::Result<LockGuard> {
        let dup = self.file.try_clone()?;
        Flock::lock(dup, arg)
            .map(|l| LockGuard { _lock: l })
            .map_err(|(_, e)| io::Error::from(e))
    }

    /// Waits for the exclusive lock (the writer, to rotate).
    pub fn exclusive(&self) -> io::Result<LockGuard> {
        self.lock(FlockArg::LockExclusive)
    }

    /// Waits for the shared lock (readers, to open files).
    pub fn shared(&self) -> io::Result<LockGuard> {
        self.lock(FlockArg::LockShared)
    }

    /// The rotation count (0 when never written).
    pub fn rotations(&self) -> u64 {
        let mut buf = [0u8; COUNT_WIDTH];
        let n = self.file.read_at(&mut buf, 0).unwrap_or(0);
        std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Records the rotation count (the writer, holding the exclusive lock).
    pub fn set_rotations(&self, n: u64) -> io::Result<()> {
        self.file
            .write_all_at(format!("{n:0COUNT_WIDTH$}").as_bytes(), 0)
    }
}

/// Opens every file of the log whose current file is `current`, under the
/// shared lock: rotated files oldest first, then the current one. A log
/// that was never written has no files.
pub fn open_log_files(current: &Path) -> io::Result<LogFileSet> {
    let lock = match RotationLock::open(current, false) {
        Ok(l) => Some(l),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let _guard = lock.as_ref().map(RotationLock::shared).transpose()?;
    let rotations = lock.as_ref().map(RotationLock::rotations).unwrap_or(0);
    let mut files = Vec::new();
    let mut i = 1;
    while let Some(f) = open_rotated(current, i)? {
        files.push(f);
        i += 1;
    }
    files.reverse();
    let has_current = match File::open(current) {
        Ok(file) => {
            files.push(OpenedFile {
                path: current.to_path_buf(),
                file,
                gz: false,
            });
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    Ok(LogFileSet {
        files,
        rotations,
        has_current,
    })
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push_num(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut n = n;
    while n > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = buf.len().saturating_sub(width).min(i);
    out.extend_from_slice(&buf[start..]);
}

/// Appends a UTC time as RFC 3339 with nanoseconds: Go's `RFC3339Nano`
/// (trailing zeros of the fraction dropped, as json-file stores it) or,
/// with `fixed`, Docker's `RFC3339NanoFixed` (always nine digits, as
/// `logs -t` prints it).
pub fn format_time(ns: i64, fixed: bool, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u64;
    push_num(out, y.max(0) as u64, 4);
    out.push(b'-');
    push_num(out, u64::from(mo), 2);
    out.push(b'-');
    push_num(out, u64::from(d), 2);
    out.push(b'T');
    push_num(out, sod / 3600, 2);
    out.push(b':');
    push_num(out, sod / 60 % 60, 2);
    out.push(b':');
    push_num(out, sod % 60, 2);
    if fixed || frac != 0 {
        out.push(b'.');
        let mut digits = [0u8; 9];
        let mut f = frac;
        for i in (0..9).rev() {
            digits[i] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        let len = if fixed {
            9
        } else {
            9 - digits.iter().rev().take_while(|&&c| c == b'0').count()
        };
        out.extend_from_slice(&digits[..len]);
    }
    out.push(b'Z');
}

/// Parses RFC 3339 (`2024-01-02T03:04:05.123Z`, `…+02:00`) to nanoseconds
/// since the Unix epoch.
pub fn parse_time(s: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let b = s.get(r)?;
        let mut n = 0i64;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    };
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0i64;
    if s[i] == b'.' {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 9 {
                frac = frac * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            frac *= 10;
        }
    }
    let offset = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if s.len() == i + 6 && s[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(parse_size("10", 1000), Ok(10));
        assert_eq!(parse_size("10k", 1000), Ok(10_000));
        assert_eq!(parse_size("20m", 1000), Ok(20_000_000));
        assert_eq!(parse_size("1.5g", 1000), Ok(1_500_000_000));
        assert_eq!(parse_size("20MB", 1000), Ok(20_000_000));
        assert_eq!(parse_size("2 KiB", 1024), Ok(2048));
        assert_eq!(parse_size("10b", 1000), Ok(10));
        assert_eq!(parse_size("10x", 1000), Err("invalid suffix: 'x'".into()));
        assert_eq!(parse_size("m", 1000), Err("invalid size: 'm'".into()));
        assert_eq!(
            parse_size("10mbb", 1000),
            Err("invalid suffix: 'mbb'".into())
        );
        assert!(parse_size("-1", 1000).is_err());
    }

    #[test]
    fn json_file_options() {
        let s = LogSettings::from_opts(
            "json-file",
            &opts(&[("max-size", "1k"), ("max-file", "3"), ("compress", "true")]),
        )
        .unwrap();
        assert_eq!((s.max_size, s.max_file, s.compress), (Some(1000), 3, true));
        let s = LogSettings::from_opts("", &BTreeMap::new()).unwrap();
        assert_eq!(
            (s.driver, s.max_size, s.max_file),
            (LogDriver::JsonFile, None, 1)
        );
        let s = LogSettings::from_opts("json-file", &opts(&[("max-size", "-1")])).unwrap();
        assert_eq!(s.max_size, None);
        let err = |o: &[(&str, &str)]| LogSettings::from_opts("json-file", &opts(o)).unwrap_err();
        assert_eq!(
            err(&[("foo", "1")]),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(err(&[("max-size", "10x")]), "invalid suffix: 'x'");
        assert_eq!(
            err(&[("max-size", "0")]),
            "max-size must be a positive number"
        );
        assert_eq!(err(&[("max-file", "0")]), "max-file cannot be less than 1");
        assert_eq!(
            err(&[("max-file", "x")]),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err(&[("compress", "yes")]),
            "strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(
            err(&[("compress", "true"), ("max-file", "1"), ("max-size", "1m")]),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert_eq!(
            err(&[("mode", "fast")]),
            "logger: logging mode not supported: fast"
        );
        assert_eq!(
            err(&[("max-buffer-size", "4m")]),
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
        );
        assert!(LogSettings::from_opts(
            "json-file",
            &opts(&[("mode", "non-blocking"), ("max-buffer-size", "4m")])
        )
        .is_ok());
        assert!(LogSettings::from_opts(
            "json-file",
            &opts(&[("labels", "a,b"), ("env", "X"), ("tag", "t")])
        )
        .is_ok());
        assert_eq!(
            LogSettings::from_opts("syslog", &BTreeMap::new()).unwrap_err(),
            "logger: no log driver named 'syslog' is registered"
        );
    }

    #[test]
    fn local_options() {
        let s = LogSettings::from_opts("local", &BTreeMap::new()).unwrap();
        assert_eq!(
            (s.driver, s.max_size, s.max_file, s.compress),
            (LogDriver::Local, Some(20 << 20), 5, true)
        );
        let err = |o: &[(&str, &str)]| LogSettings::from_opts("local", &opts(o)).unwrap_err();
        assert_eq!(
            err(&[("foo", "1")]),
            "unknown log opt 'foo' for log driver local"
        );
        assert_eq!(
            err(&[("max-size", "x")]),
            "invalid value for max-size: x: invalid size: 'x'"
        );
        assert_eq!(
            err(&[("max-file", "1")]),
            "compression cannot be enabled when max file count is 1"
        );
        let s = LogSettings::from_opts("local", &opts(&[("max-file", "1"), ("compress", "false")]))
            .unwrap();
        assert_eq!((s.max_file, s.compress), (1, false));
        assert_eq!(
            LogSettings::from_opts("none", &BTreeMap::new())
                .unwrap()
                .driver,
            LogDriver::None
        );
    }

    #[test]
    fn time_formats_round_trip() {
        let cases = [
            (
                0i64,
                "1970-01-01T00:00:00Z",
                "1970-01-01T00:00:00.000000000Z",
            ),
            (
                1_704_067_200_100_000_000,
                "2024-01-01T00:00:00.1Z",
                "2024-01-01T00:00:00.100000000Z",
            ),
            (
                951_782_400_000_000_123,
                "2000-02-29T00:00:00.000000123Z",
                "2000-02-29T00:00:00.000000123Z",
            ),
            (
                4_102_444_799_999_999_999,
                "2099-12-31T23:59:59.999999999Z",
                "2099-12-31T23:59:59.999999999Z",
            ),
        ];
        for (ns, go, fixed) in cases {
            let mut a = Vec::new();
            format_time(ns, false, &mut a);
            assert_eq!(String::from_utf8(a).unwrap(), go);
            let mut b = Vec::new();
            format_time(ns, true, &mut b);
            assert_eq!(String::from_utf8(b).unwrap(), fixed);
            assert_eq!(parse_time(go.as_bytes()), Some(ns));
            assert_eq!(parse_time(fixed.as_bytes()), Some(ns));
        }
        assert_eq!(
            parse_time(b"2024-01-01T02:00:00.5+02:00"),
            Some(1_704_067_200_500_000_000)
        );
        assert_eq!(parse_time(b"2024-01-01T00:00:00"), None);
        assert_eq!(parse_time(b"garbage"), None);
        // Against chrono, over many days.
        for day in (-1000i64..40_000).step_by(37) {
            let ns = day * 86_400_000_000_000 + 12_345_678_901;
            let mut a = Vec::new();
            format_time(ns, true, &mut a);
            let c = chrono::DateTime::from_timestamp_nanos(ns)
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string();
            assert_eq!(String::from_utf8(a).unwrap(), c);
        }
    }

    #[test]
    fn lock_counts_rotations() {
        let t = tempfile::tempdir().unwrap();
        let cur = t.path().join("c-json.log");
        let l = RotationLock::open(&cur, true).unwrap();
        assert_eq!(l.rotations(), 0);
        {
            let _g = l.exclusive().unwrap();
            l.set_rotations(7).unwrap();
        }
        let r = RotationLock::open(&cur, false).unwrap();
        let _g = r.shared().unwrap();
        assert_eq!(r.rotations(), 7);
        assert_eq!(
            rotated_path(&cur, 2, true),
            t.path().join("c-json.log.2.gz")
        );
    }
}
