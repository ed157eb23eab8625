//! The first half of `berth shim`: create the container (or the exec'd
//! process) with the runtime, collect its stdio, and hand everything to the
//! monitor — in the small `berth-shim` binary when it is installed beside
//! this one (a running container then costs a fraction of the memory), or
//! in this process otherwise.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::backend::{Backend, ProcessIo};
use super::handoff::Handoff;
use super::monitor::Output;
use super::{files, Ready, ShimConfig};
use crate::protocol::kind;
use crate::RuntimeError;

/// `linux.cgroupsPath` and `disableOOMKiller` from the bundle's config.
fn cgroup_of(bundle: &Path) -> Option<(String, bool)> {
    let data = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    let path = v["linux"]["cgroupsPath"].as_str()?.to_string();
    let disable = v["linux"]["resources"]["memory"]["disableOOMKiller"]
        .as_bool()
        .unwrap_or(false);
    Some((path, disable))
}

pub(super) fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), RuntimeError> {
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(errno_io("fcntl"))?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(errno_io("fcntl"))?;
    Ok(())
}

pub(super) fn errno_io(op: &'static str) -> impl Fn(Errno) -> RuntimeError {
    move |e| RuntimeError::io(op, "", std::io::Error::from_raw_os_error(e as i32))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(errno_io("pipe"))
}

/// What a container's output pipe holds (the kernel's default is 64 KiB):
/// a fast writer blocks, and the shim wakes, eight times less often. Its
/// pages are allocated only while output waits in it.
const OUTPUT_PIPE: i32 = 512 << 10;

fn output_pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    let (r, w) = pipe()?;
    // Best effort: a lower /proc/sys/fs/pipe-max-size keeps the default.
    let _ = fcntl(r.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(OUTPUT_PIPE));
    Ok((r, w))
}

/// Prints the ready line on stdout and points stdout at /dev/null, so the
/// daemon's read of the pipe ends.
fn announce(ready: &Ready) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, ready);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

/// Creates the process and runs (or hands over to) its monitor.
pub(super) fn run(state_dir: &Path, cfg: &ShimConfig) -> Result<(), RuntimeError> {
    // Orphans of the container (and runc's init, once runc exits) become our
    // children, so their exit reaches us.
    nix::sys::prctl::set_child_subreaper(true).map_err(errno_io("prctl"))?;

    let sock_path = state_dir.join(files::SOCKET);
    let _ = std::fs::remove_file(&sock_path);
    // Bind relative to the state dir: socket paths are limited to 108 bytes.
    std::env::set_current_dir(state_dir).map_err(|e| RuntimeError::io("chdir", state_dir, e))?;
    let listener =
        UnixListener::bind(files::SOCKET).map_err(|e| RuntimeError::io("bind", &sock_path, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| RuntimeError::io("socket", &sock_path, e))?;

    let mut outputs = Vec::new();
    let mut io = ProcessIo {
        stdin: None,
        stdout: None,
        stderr: None,
        console_socket: None,
    };
    let mut stdin_w = None;
    let console = if cfg.tty {
        let p = state_dir.join(files::CONSOLE);
        let _ = std::fs::remove_file(&p);
        let l = UnixListener::bind(files::CONSOLE).map_err(|e| RuntimeError::io("bind", &p, e))?;
        io.console_socket = Some(p);
        Some(l)
    } else {
        if cfg.open_stdin {
            let (r, w) = pipe()?;
            io.stdin = Some(r);
            stdin_w = Some(w);
        } else {
            let null = std::fs::File::open("/dev/null")
                .map_err(|e| RuntimeError::io("open", "/dev/null", e))?;
            io.stdin = Some(null.into());
        }
        let (or, ow) = output_pipe()?;
        let (er, ew) = output_pipe()?;
        io.stdout = Some(ow);
        io.stderr = Some(ew);
        outputs.push(Output {
            stream: kind::STDOUT,
            fd: or,
        });
        outputs.push(Output {
            stream: kind::STDERR,
            fd: er,
        });
        None
    };

    let (backend, pid) = match Backend::create(cfg, io, state_dir) {
        Ok(v) => v,
        Err(e) => {
            Backend::cleanup_failed(cfg, state_dir);
            announce(&Ready {
                pid: None,
                error: Some(e.to_string()),
            });
            return Err(e);
        }
    };

    // The container's cgroup, for OOM accounting (and the one setting
    // libcontainer does not apply).
    let cgroup = if backend.is_exec() {
        None
    } else {
        cgroup_of(&cfg.bundle)
    };
    if let Some((path, disable_oom)) = &cgroup {
        if *disable_oom {
            if let Err(e) = crate::cgroups::Hierarchy::detect().disable_oom_killer(path) {
                tracing::warn!("--oom-kill-disable: {e}");
            }
        }
    }

    let mut master = None;
    if let Some(l) = console {
        let (conn, _) = l
            .accept()
            .map_err(|e| RuntimeError::io("accept", files::CONSOLE, e))?;
        let m = crate::sys::recv_fd(conn.as_fd())
            .map_err(|e| RuntimeError::io("receive pty master", files::CONSOLE, e))?;
        let _ = std::fs::remove_file(files::CONSOLE);
        let out = m
            .try_clone()
            .map_err(|e| RuntimeError::io("dup", "pty", e))?;
        if cfg.open_stdin {
            stdin_w = Some(
                m.try_clone()
                    .map_err(|e| RuntimeError::io("dup", "pty", e))?,
            );
        }
        outputs.push(Output {
            stream: kind::STDOUT,
            fd: out,
        });
        master = Some(m);
    }
    for o in &outputs {
        set_nonblocking(o.fd.as_fd())?;
    }
    if let Some(w) = &stdin_w {
        set_nonblocking(w.as_fd())?;
    }

    let control = backend.into_control(cfg);
    let handoff = Handoff {
        state_dir: state_dir.to_path_buf(),
        pid,
        started: control.is_exec(),
        control,
        listener: listener.as_raw_fd(),
        outputs: outputs
            .iter()
            .map(|o| (o.stream, o.fd.as_raw_fd()))
            .collect(),
        master: master.as_ref().map(|m| m.as_raw_fd()),
        stdin: stdin_w.as_ref().map(|w| w.as_raw_fd()),
        log_path: cfg.log_path.clone(),
        cgroup: cgroup.map(|(p, _)| p),
    };
    announce(&Ready {
        pid: Some(pid),
        error: None,
    });
    // The descriptors now belong to the monitor: in another binary after
    // exec (which returns only on failure), or here.
    handoff.exec_small_monitor();
    let (outputs, master, stdin_w) = (outputs, master, stdin_w);
    super::handoff::run_monitor(handoff, listener, outputs, master, stdin_w)
}
