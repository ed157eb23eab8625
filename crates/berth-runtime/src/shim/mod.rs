//! `berth shim STATE_DIR`: the monitor of one container.
//!
//! Started by the daemon with `STATE_DIR/shim.json` ([`ShimConfig`]) in
//! place, it creates the container (not yet started), listens on
//! `STATE_DIR/shim.sock`, prints one JSON line (`{"pid":N}` or
//! `{"error":"…"}`) on its stdout and closes it, then serves the daemon
//! ([`crate::protocol`]) until the container has exited and the daemon has
//! acknowledged, or no daemon is connected. The exit status is also written
//! to `STATE_DIR/exit.json` before it is announced, so a daemon that was
//! down at that moment still learns it.

mod backend;
mod control;
mod create;
mod handoff;
pub mod log;
pub mod log_files;
pub mod log_local;
mod monitor;

pub use handoff::{monitor_main, MONITOR_BINARY};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol::ExitStatus;
use crate::RuntimeError;

/// What the daemon tells the shim, as `STATE_DIR/shim.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimConfig {
    /// Container ID.
    pub id: String,
    /// The OCI bundle (holds config.json).
    pub bundle: PathBuf,
    /// State root of the runtime (libcontainer's or runc's `--root`).
    pub runtime_root: PathBuf,
    /// An external OCI runtime binary; `None` runs libcontainer in-process.
    pub runtime: Option<PathBuf>,
    /// The process gets a pseudo-TTY.
    pub tty: bool,
    /// Keep a writable stdin (`-i`).
    pub open_stdin: bool,
    /// The log's current file (json-file: `<id>-json.log`, local:
    /// `local-logs/container.log`); `None` keeps no log.
    pub log_path: Option<PathBuf>,
    /// How the log is written: driver, rotation, attributes.
    #[serde(default)]
    pub log: log_files::LogSettings,
    /// Exec mode: run this OCI process (a `process.json`) inside the
    /// already running container `id` instead of creating the container.
    /// The process starts at once; its output is held until the daemon
    /// connects.
    #[serde(default)]
    pub exec_process: Option<PathBuf>,
    /// Initial TTY size (rows, columns), set as soon as the pty exists so
    /// the process never sees a 0x0 terminal.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
}

/// The ready line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Host PID of the created (not yet started) container process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Why creation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// File names inside the state directory.
pub mod files {
    /// The shim's config.
    pub const CONFIG: &str = "shim.json";
    /// The shim's socket.
    pub const SOCKET: &str = "shim.sock";
    /// The exit status, once known.
    pub const EXIT: &str = "exit.json";
    /// Where the runtime sends the pty master.
    pub const CONSOLE: &str = "console.sock";
    /// The shim's own diagnostics.
    pub const LOG: &str = "shim.log";
}

/// Reads `exit.json` if the shim wrote one.
pub fn read_exit(state_dir: &Path) -> Option<ExitStatus> {
    let data = std::fs::read(state_dir.join(files::EXIT)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Entry point of `berth shim STATE_DIR`; returns the process exit code.
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let Some(state_dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: berth shim STATE_DIR");
        return 2;
    };
    tracing_to_stderr();
    match run(&state_dir) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("shim: {e}");
            1
        }
    }
}

pub(super) fn tracing_to_stderr() {
    // The daemon points our stderr at STATE_DIR/shim.log. libcontainer also
    // logs from the container's init process, after fds 0-2 became the
    // container's stdio: log through a copy of fd 2 made now, so nothing of
    // ours ever lands in the container's output.
    let fd = nix::fcntl::fcntl(2, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100)).unwrap_or(2);
    let _ = tracing::subscriber::set_global_default(SimpleStderr { fd });
}

/// A minimal subscriber: warnings and errors to the shim log, one line
/// each. The shim avoids tracing-subscriber to stay small.
struct SimpleStderr {
    fd: std::os::fd::RawFd,
}

impl tracing::Subscriber for SimpleStderr {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        // libseccomp's names for syscalls this kernel lacks are expected.
        let limit = if m.target().starts_with("libcontainer::seccomp") {
            tracing::Level::ERROR
        } else {
            tracing::Level::WARN
        };
        *m.level() <= limit
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        struct V(String);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if !self.0.is_empty() {
                    self.0.push(' ');
                }
                if f.name() == "message" {
                    self.0.push_str(&format!("{v:?}"));
                } else {
                    self.0.push_str(&format!("{}={v:?}", f.name()));
                }
            }
        }
        let mut v = V(String::new());
        e.record(&mut v);
        let line = format!(
            "{} {} {}\n",
            chrono::Utc::now().to_rfc3339(),
            e.metadata().level(),
            v.0
        );
        // A failed write of a log line is not worth reporting.
        let _ = nix::unistd::write(crate::sys::borrow_fd(self.fd), line.as_bytes());
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn run(state_dir: &Path) -> Result<(), RuntimeError> {
    let cfg_path = state_dir.join(files::CONFIG);
    let data = std::fs::read(&cfg_path).map_err(|e| RuntimeError::io("read", &cfg_path, e))?;
    let cfg: ShimConfig = serde_json::from_slice(&data).map_err(|e| RuntimeError::Shim {
        id: String::new(),
        message: format!("bad {}: {e}", cfg_path.display()),
    })?;
    create::run(state_dir, &cfg)
}
