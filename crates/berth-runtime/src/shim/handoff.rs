//! Handing a created process to its monitor. `berth shim` is the whole
//! berth binary (libcontainer, the daemon, the CLI): starting it touches a
//! few megabytes. Once the container exists, only the monitor loop is
//! needed, so the shim re-executes as `berth-shim` — a small binary built
//! from this crate, installed beside `berth` — passing its descriptors
//! (inherited across exec) and this description of them. The process keeps
//! its PID, its children and its child-subreaper flag across exec. Without
//! `berth-shim` (or with `BERTH_SHIM_INPROCESS=1`) the monitor runs here.

use std::ffi::{CString, OsString};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde::{Deserialize, Serialize};

use super::control::Control;
use super::create::{errno_io, set_nonblocking};
use super::log::JsonLog;
use super::monitor::{Output, Shim};
use crate::RuntimeError;

/// File name of the small monitor binary, next to `berth`.
pub const MONITOR_BINARY: &str = "berth-shim";
/// The handoff description, in the state directory.
const HANDOFF_FILE: &str = "handoff.json";

/// Everything the monitor needs, with descriptors by number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Handoff {
    pub(super) state_dir: PathBuf,
    pub(super) pid: i32,
    pub(super) started: bool,
    pub(super) control: Control,
    pub(super) listener: RawFd,
    pub(super) outputs: Vec<(u8, RawFd)>,
    pub(super) master: Option<RawFd>,
    pub(super) stdin: Option<RawFd>,
    pub(super) log_path: Option<PathBuf>,
    pub(super) cgroup: Option<String>,
}

impl Handoff {
    fn fds(&self) -> Vec<RawFd> {
        let mut v = vec![self.listener];
        v.extend(self.outputs.iter().map(|(_, fd)| *fd));
        v.extend(self.master);
        v.extend(self.stdin);
        v
    }

    /// Execs `berth-shim` when it is installed beside this binary; returns
    /// (having changed nothing that matters) when it is not, or exec fails.
    pub(super) fn exec_small_monitor(&self) {
        if std::env::var_os("BERTH_SHIM_INPROCESS").is_some_and(|v| v != "0") {
            return;
        }
        let Some(bin) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join(MONITOR_BINARY)))
        else {
            return;
        };
        if !bin.is_file() {
            return;
        }
        // The description goes in a file, so `ps` shows a plain command line.
        let file = self.state_dir.join(HANDOFF_FILE);
        let Ok(json) = serde_json::to_vec(self) else {
            return;
        };
        if std::fs::write(&file, json).is_err() {
            return;
        }
        let (Ok(path), Ok(arg0), Ok(arg1)) = (
            CString::new(bin.as_os_str().as_encoded_bytes()),
            CString::new(MONITOR_BINARY),
            CString::new(self.state_dir.as_os_str().as_encoded_bytes()),
        ) else {
            return;
        };
        for fd in self.fds() {
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()));
        }
        let err = nix::unistd::execv(&path, &[arg0, arg1]);
        // Still here: put the flags back and monitor in this process.
        for fd in self.fds() {
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
        tracing::warn!(
            "exec {}: {err:?}; monitoring in the full binary",
            bin.display()
        );
    }
}

/// Runs the monitor until the process has exited and been reported.
pub(super) fn run_monitor(
    h: Handoff,
    listener: UnixListener,
    outputs: Vec<Output>,
    master: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
) -> Result<(), RuntimeError> {
    // SIGCHLD is blocked only now: the container's process was forked
    // before, so it does not inherit the blocked mask. An exit before this
    // point is found by the first reap below.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(errno_io("sigprocmask"))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(errno_io("signalfd"))?;
    let log = match &h.log_path {
        Some(p) => Some(JsonLog::open(p).map_err(|e| RuntimeError::io("open", p, e))?),
        None => None,
    };
    let mut shim = Shim::new(
        h.pid, h.started, h.control, outputs, master, stdin, log, h.cgroup,
    );
    shim.reap();
    crate::sys::shed_startup_pages();
    shim.serve(&listener, &sigfd, &h.state_dir);
    Ok(())
}

/// `berth-shim STATE_DIR`: the small binary's entry point.
pub fn monitor_main(args: Vec<OsString>) -> i32 {
    super::tracing_to_stderr();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("{MONITOR_BINARY} is started by `berth shim`, not by hand");
        return 2;
    };
    let json = std::fs::read(dir.join(HANDOFF_FILE)).unwrap_or_default();
    let h: Handoff = match serde_json::from_slice(&json) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{MONITOR_BINARY}: bad handoff: {e}");
            return 2;
        }
    };
    let own = |fd: RawFd| -> OwnedFd {
        let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        crate::sys::own_fd(fd)
    };
    // The descriptors were passed to us, by number, by our former self.
    let listener = UnixListener::from(own(h.listener));
    let outputs: Vec<Output> = h
        .outputs
        .iter()
        .map(|&(stream, fd)| Output {
            stream,
            fd: own(fd),
        })
        .collect();
    let master = h.master.map(own);
    let stdin = h.stdin.map(own);
    for o in &outputs {
        let _ = set_nonblocking(std::os::fd::AsFd::as_fd(&o.fd));
    }
    if std::env::set_current_dir(&h.state_dir).is_err() {
        tracing::warn!("chdir {}", h.state_dir.display());
    }
    match run_monitor(h, listener, outputs, master, stdin) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("shim monitor: {e}");
            1
        }
    }
}
