//! The two ways the shim runs a container: youki's libcontainer in this
//! process, or an external OCI runtime binary (runc, crun, youki) on the
//! same bundle.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

use super::control::{run_runtime, Control};
use super::ShimConfig;
use crate::RuntimeError;

/// The container's stdio as the runtime should hand it to the process.
pub(super) struct ProcessIo {
    pub(super) stdin: Option<OwnedFd>,
    pub(super) stdout: Option<OwnedFd>,
    pub(super) stderr: Option<OwnedFd>,
    pub(super) console_socket: Option<PathBuf>,
}

/// A created container, through one of the backends.
pub(super) enum Backend {
    /// Created by libcontainer (its state is in the runtime root).
    Libcontainer,
    External {
        binary: PathBuf,
        root: PathBuf,
        id: String,
        log: PathBuf,
    },
    /// A process run inside an existing container: nothing to start or
    /// delete, the container owns the state.
    Exec,
}

impl Backend {
    /// Creates the container (its process waits for `start`); returns the
    /// backend and the process's host PID.
    pub(super) fn create(
        cfg: &ShimConfig,
        io: ProcessIo,
        state_dir: &Path,
    ) -> Result<(Backend, i32), RuntimeError> {
        match (&cfg.runtime, &cfg.exec_process) {
            (None, None) => create_libcontainer(cfg, io),
            (Some(bin), None) => create_external(cfg, bin, io, state_dir),
            (None, Some(process)) => exec_libcontainer(cfg, process, io),
            (Some(bin), Some(process)) => exec_external(cfg, bin, process, io, state_dir),
        }
    }

    /// True for an exec: its process runs from the moment it is created.
    pub(super) fn is_exec(&self) -> bool {
        matches!(self, Backend::Exec)
    }

    /// What the monitor keeps: how to start and delete this process
    /// without the runtime library.
    pub(super) fn into_control(self, cfg: &ShimConfig) -> Control {
        match self {
            Backend::Libcontainer => Control::Libcontainer {
                root: cfg.runtime_root.clone(),
                id: cfg.id.clone(),
            },
            Backend::External {
                binary,
                root,
                id,
                log,
            } => Control::External {
                binary,
                root,
                id,
                log,
            },
            Backend::Exec => Control::Exec,
        }
    }

    /// Cleans up after a failed create: whatever state the runtime wrote.
    pub(super) fn cleanup_failed(cfg: &ShimConfig, state_dir: &Path) {
        if cfg.exec_process.is_some() {
            return;
        }
        match &cfg.runtime {
            None => {
                let dir = cfg.runtime_root.join(&cfg.id);
                if let Ok(mut c) = Container::load(dir.clone()) {
                    let _ = c.delete(true);
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
            Some(bin) => {
                let log = state_dir.join("runtime.log");
                let _ = run_runtime(
                    bin,
                    &cfg.runtime_root,
                    &log,
                    &["delete", "--force", cfg.id.as_str()],
                    None,
                );
            }
        }
    }
}

fn process_has_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// The workload runner handed to libcontainer: Docker's exec errors.
#[derive(Clone)]
struct DockerExecutor;

impl Executor for DockerExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        crate::sys::default_signals();
        let init = spec.annotations().as_ref().is_some_and(|a| {
            a.get(crate::spec::INIT_ANNOTATION)
                .is_some_and(|v| v == "true")
        });
        // libcontainer ignores process.consoleSize; apply it here, on the
        // pty that is now our stdin, before the workload can look.
        if let Some(size) = spec.process().as_ref().and_then(|p| p.console_size()) {
            if process_has_terminal(spec) {
                let _ = crate::sys::set_winsize(
                    crate::sys::borrow_fd(0),
                    size.height().min(u16::MAX as u64) as u16,
                    size.width().min(u16::MAX as u64) as u16,
                );
            }
        }
        if init {
            // Only returns on failure to fork; the init itself never returns.
            crate::init::run_as_init();
        }
        libcontainer::workload::default::get_executor().exec(spec)
    }

    /// Checked inside the container before start, so `run` of a missing
    /// command fails at create with the text the docker CLI maps to 127/126.
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let process = spec
            .process()
            .as_ref()
            .ok_or(ExecutorValidationError::CantHandle("berth"))?;
        let args = process
            .args()
            .as_ref()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ExecutorValidationError::ArgValidationError("no command specified".into())
            })?;
        let cmd = &args[0];
        let path_var = process
            .env()
            .as_ref()
            .and_then(|env| env.iter().find_map(|e| e.strip_prefix("PATH=")))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        let candidate = if cmd.contains('/') {
            Some(PathBuf::from(cmd))
        } else {
            path_var
                .split(':')
                .map(|d| Path::new(d).join(cmd))
                .find(|p| p.is_file())
        };
        let Some(path) = candidate else {
            return Err(ExecutorValidationError::ArgValidationError(format!(
                "exec: \"{cmd}\": executable file not found in $PATH"
            )));
        };
        match std::fs::metadata(&path) {
            Err(_) => Err(ExecutorValidationError::ArgValidationError(format!(
                "exec: \"{cmd}\": stat {cmd}: no such file or directory"
            ))),
            Ok(m) if m.is_dir() => Err(ExecutorValidationError::ArgValidationError(format!(
                "exec: \"{cmd}\": is a directory"
            ))),
            Ok(m) => {
                use std::os::unix::fs::PermissionsExt;
                if m.permissions().mode() & 0o111 == 0 {
                    Err(ExecutorValidationError::ArgValidationError(format!(
                        "exec: \"{cmd}\": permission denied"
                    )))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The daemon starts a container only when it knows none of its processes
/// runs; runtime state left by a monitor that died before it could delete
/// it (a host or daemon crash mid-exit) would make libcontainer refuse with
/// "container already exists". State whose process is gone is dropped.
fn clear_stale_state(cfg: &ShimConfig) {
    let dir = cfg.runtime_root.join(&cfg.id);
    let Ok(text) = std::fs::read_to_string(dir.join("state.json")) else {
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return;
    };
    let pid = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["pid"].as_i64());
    let alive = pid.is_some_and(|p| {
        p > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), None).is_ok()
    });
    if !alive {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn create_libcontainer(cfg: &ShimConfig, io: ProcessIo) -> Result<(Backend, i32), RuntimeError> {
    let fail = |e: libcontainer::error::LibcontainerError| RuntimeError::Create(error_chain(&e));
    clear_stale_state(cfg);
    let mut builder = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_executor(DockerExecutor)
        .with_root_path(&cfg.runtime_root)
        .map_err(fail)?
        .with_console_socket(io.console_socket.as_ref());
    if let Some(stdin) = io.stdin {
        builder = builder.with_stdin(stdin);
    }
    if let Some(out) = io.stdout {
        builder = builder.with_stdout(out);
    }
    if let Some(err) = io.stderr {
        builder = builder.with_stderr(err);
    }
    let container = builder
        .as_init(&cfg.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(fail)?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| RuntimeError::Create("container has no pid after create".into()))?;
    Ok((Backend::Libcontainer, pid))
}

fn exec_libcontainer(
    cfg: &ShimConfig,
    process: &Path,
    io: ProcessIo,
) -> Result<(Backend, i32), RuntimeError> {
    let fail = |e: libcontainer::error::LibcontainerError| RuntimeError::Create(error_chain(&e));
    let mut builder = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_executor(DockerExecutor)
        .with_root_path(&cfg.runtime_root)
        .map_err(fail)?
        .with_console_socket(io.console_socket.as_ref());
    if let Some(stdin) = io.stdin {
        builder = builder.with_stdin(stdin);
    }
    if let Some(out) = io.stdout {
        builder = builder.with_stdout(out);
    }
    if let Some(err) = io.stderr {
        builder = builder.with_stderr(err);
    }
    let pid = builder
        .as_tenant()
        .with_process(Some(process))
        .with_detach(true)
        .build()
        .map_err(fail)?;
    Ok((Backend::Exec, pid.as_raw()))
}

fn exec_external(
    cfg: &ShimConfig,
    binary: &Path,
    process: &Path,
    io: ProcessIo,
    state_dir: &Path,
) -> Result<(Backend, i32), RuntimeError> {
    let log = state_dir.join("runtime.log");
    let pid_file = state_dir.join("exec.pid");
    let process = process.display().to_string();
    let pid_arg = pid_file.display().to_string();
    let mut args = vec![
        "exec",
        "--detach",
        "--process",
        process.as_str(),
        "--pid-file",
        pid_arg.as_str(),
    ];
    let console = io.console_socket.as_ref().map(|p| p.display().to_string());
    if let Some(c) = &console {
        args.push("--console-socket");
        args.push(c.as_str());
    }
    args.push(cfg.id.as_str());
    run_runtime(binary, &cfg.runtime_root, &log, &args, Some(io))?;
    let pid_text =
        std::fs::read_to_string(&pid_file).map_err(|e| RuntimeError::io("read", &pid_file, e))?;
    let pid = pid_text
        .trim()
        .parse()
        .map_err(|_| RuntimeError::Create(format!("runtime wrote a bad pid file: {pid_text:?}")))?;
    Ok((Backend::Exec, pid))
}

fn create_external(
    cfg: &ShimConfig,
    binary: &Path,
    io: ProcessIo,
    state_dir: &Path,
) -> Result<(Backend, i32), RuntimeError> {
    let log = state_dir.join("runtime.log");
    let pid_file = state_dir.join("init.pid");
    let bundle = cfg.bundle.display().to_string();
    let pid_arg = pid_file.display().to_string();
    let mut args = vec![
        "create",
        "--bundle",
        bundle.as_str(),
        "--pid-file",
        pid_arg.as_str(),
    ];
    let console = io.console_socket.as_ref().map(|p| p.display().to_string());
    if let Some(c) = &console {
        args.push("--console-socket");
        args.push(c.as_str());
    }
    args.push(cfg.id.as_str());
    run_runtime(binary, &cfg.runtime_root, &log, &args, Some(io))?;
    let pid_text =
        std::fs::read_to_string(&pid_file).map_err(|e| RuntimeError::io("read", &pid_file, e))?;
    let pid = pid_text
        .trim()
        .parse()
        .map_err(|_| RuntimeError::Create(format!("runtime wrote a bad pid file: {pid_text:?}")))?;
    let backend = Backend::External {
        binary: binary.to_path_buf(),
        root: cfg.runtime_root.clone(),
        id: cfg.id.clone(),
        log,
    };
    Ok((backend, pid))
}

/// An error and all its causes on one line, as the runtime's message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
