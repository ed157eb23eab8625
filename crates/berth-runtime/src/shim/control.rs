//! What the monitor does to a created process through its runtime: start
//! it and, once it has exited, delete what the runtime left. Plain system
//! calls and runtime binaries only — no runtime library — so the monitor
//! can run in the small `berth-shim` binary.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::backend::ProcessIo;
use crate::RuntimeError;

/// How to start and delete a created process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Control {
    /// Created by libcontainer: its state is `<root>/<id>`.
    Libcontainer { root: PathBuf, id: String },
    /// Created by an OCI runtime binary.
    External {
        binary: PathBuf,
        root: PathBuf,
        id: String,
        log: PathBuf,
    },
    /// A process run inside an existing container: nothing to start or delete.
    Exec,
}

impl Control {
    /// True for an exec: its process runs from the moment it is created.
    pub(super) fn is_exec(&self) -> bool {
        matches!(self, Control::Exec)
    }

    /// Lets the created container's process run.
    pub(super) fn start(&mut self) -> Result<(), RuntimeError> {
        match self {
            // libcontainer's init waits on `<root>/<id>/notify.sock` for
            // this message (what its Container::start sends).
            Control::Libcontainer { root, id } => {
                let dir = root.join(id.as_str());
                let d = std::fs::File::open(&dir).map_err(|e| RuntimeError::io("open", &dir, e))?;
                let sock = PathBuf::from(format!("/proc/self/fd/{}/notify.sock", d.as_raw_fd()));
                let mut s = std::os::unix::net::UnixStream::connect(&sock)
                    .map_err(|e| RuntimeError::io("connect", dir.join("notify.sock"), e))?;
                s.write_all(b"start container")
                    .map_err(|e| RuntimeError::io("write", dir.join("notify.sock"), e))?;
                // As libcontainer's start does: exec (its tenant builder)
                // refuses a container whose state still says "created".
                mark_running(&dir.join("state.json"))
            }
            Control::External {
                binary,
                root,
                id,
                log,
            } => run_runtime(binary, root, log, &["start", id.as_str()], None).map(|_| ()),
            Control::Exec => Ok(()),
        }
    }

    /// Removes the runtime's state and the container's cgroup. Best effort:
    /// the container is gone either way.
    pub(super) fn delete(&mut self, cgroup: Option<&str>) {
        match self {
            Control::Libcontainer { root, id } => {
                if let Some(cg) = cgroup {
                    if let Err(e) = crate::cgroups::Hierarchy::detect().remove(cg) {
                        tracing::warn!("removing cgroup {cg}: {e}");
                    }
                }
                let dir = root.join(id.as_str());
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!("removing {}: {e}", dir.display());
                    }
                }
            }
            Control::External {
                binary,
                root,
                id,
                log,
            } => {
                if let Err(e) =
                    run_runtime(binary, root, log, &["delete", "--force", id.as_str()], None)
                {
                    tracing::warn!("runtime delete: {e}");
                }
            }
            Control::Exec => {}
        }
    }
}

/// Sets `"status": "running"` in libcontainer's state file (temp + rename).
fn mark_running(state: &Path) -> Result<(), RuntimeError> {
    let data = std::fs::read(state).map_err(|e| RuntimeError::io("read", state, e))?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&data).map_err(|e| RuntimeError::Shim {
            id: String::new(),
            message: format!("{}: {e}", state.display()),
        })?;
    v["status"] = serde_json::Value::String("running".into());
    let tmp = state.with_extension("json.tmp");
    std::fs::write(&tmp, v.to_string()).map_err(|e| RuntimeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, state).map_err(|e| RuntimeError::io("rename", state, e))
}

/// Runs `binary --root ROOT --log LOG --log-format json ARGS`; on failure the
/// last error the runtime logged is the message.
pub(super) fn run_runtime(
    binary: &Path,
    root: &Path,
    log: &Path,
    args: &[&str],
    io: Option<ProcessIo>,
) -> Result<(), RuntimeError> {
    let mut cmd = Command::new(binary);
    cmd.arg("--root")
        .arg(root)
        .arg("--log")
        .arg(log)
        .arg("--log-format")
        .arg("json")
        .args(args);
    match io {
        // runc passes its own stdio to the container when there is no TTY.
        Some(io) => {
            cmd.stdin(io.stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
            cmd.stdout(io.stdout.map(Stdio::from).unwrap_or_else(Stdio::null));
            cmd.stderr(io.stderr.map(Stdio::from).unwrap_or_else(Stdio::null));
        }
        None => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
    }
    let status = cmd.status().map_err(|e| {
        RuntimeError::Create(format!("running OCI runtime {}: {e}", binary.display()))
    })?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let msg = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .and_then(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{} {} failed: {status}", binary.display(), args[0]));
    Err(RuntimeError::Create(msg))
}
