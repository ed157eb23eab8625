//! `start`: mount the root, write the bundle, start the shim, run the
//! process; then the monitor task follows it until it exits.

use std::sync::Arc;

use berth_image::mount::{unmount, RootfsDirs};
use berth_runtime::driver::{self, ShimMessage};
use berth_runtime::protocol::{Event, ExitStatus, Request};
use berth_runtime::shim::{self, ShimConfig};
use berth_runtime::spec;
use berth_runtime::user;
use tokio::sync::mpsc::Receiver;

use super::container::{AttachMsg, Container, Status};
use super::{now_rfc3339, spec_map, Daemon};
use crate::error::{DaemonError, Result};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A process's environment as Docker builds it: PATH (when the image has
/// none), HOSTNAME, the container's variables, `extra` (an exec's) on top,
/// and HOME from the user's passwd entry when nothing set it.
pub(super) fn process_env(
    config_env: &[String],
    hostname: &str,
    home: &str,
    links: &[String],
    extra: &[String],
) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    if !config_env
        .iter()
        .chain(extra)
        .any(|e| e.starts_with("PATH="))
    {
        env.push(DEFAULT_PATH.into());
    }
    env.push(format!("HOSTNAME={hostname}"));
    // Links' variables come before the container's own, which win.
    for e in links.iter().chain(config_env).chain(extra) {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// The `ConsoleSize` [rows, columns] a client sent (API ≥ 1.42), if set.
pub(super) fn console_size(v: Option<&[u32]>) -> Option<(u16, u16)> {
    match v? {
        [h, w] if *h > 0 && *w > 0 => Some((
            (*h).min(u16::MAX as u32) as u16,
            (*w).min(u16::MAX as u32) as u16,
        )),
        _ => None,
    }
}

/// How a failed start is reported: Docker's exit codes and statuses, which
/// the docker CLI turns into 127 (not found), 126 (not executable) or 125.
fn start_error(cmd: &str, msg: String) -> (i64, DaemonError) {
    // The runtime's own wrapping ("failed to create container: …") adds
    // nothing for the user; Docker's text starts at the exec error.
    let core = msg.find("exec: \"").map(|i| &msg[i..]).unwrap_or(&msg);
    let text = format!(
        "failed to create task for container: OCI runtime create failed: unable to start container process: {core}: unknown"
    );
    let has_cmd = msg.contains(cmd);
    if has_cmd
        && (msg.contains("executable file not found") || msg.contains("no such file or directory"))
    {
        (127, DaemonError::BadRequest(text))
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        (126, DaemonError::BadRequest(text))
    } else {
        (128, DaemonError::Internal(text))
    }
}

impl Daemon {
    /// Starts a created or exited container.
    pub async fn start(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let _op = c.op.lock().await;
        let status = c.status();
        // A restarting container is left to its policy (dockerd answers 304
        // and keeps the restart): only a real start resets the policy.
        if status.is_active() {
            return Err(DaemonError::NotModified);
        }
        if !status.can_start() {
            return Err(DaemonError::Conflict(format!(
                "cannot start a container in state {}",
                status.as_str()
            )));
        }
        c.renew_restart_policy();
        match self.start_locked(c).await {
            Ok(()) => Ok(()),
            Err((code, err)) => {
                let names = Self::volume_names(&c.rec().mounts);
                self.volumes_release(&names);
                let _ = unmount(&self.rootfs(&c.id));
                {
                    let mut r = c.rec();
                    r.state.error = err.to_string();
                    r.state.exit_code = code;
                }
                let _ = self.persist(c);
                let auto_remove = c.rec().host_config.auto_remove;
                if auto_remove {
                    // Docker removes an --rm container whose start failed.
                    drop(_op);
                    let _ = self.remove(c, true).await;
                }
                Err(err)
            }
        }
    }

    /// Starts with the container's lock held; a failed start gives back
    /// the networking it set up (every caller: start, restart policies).
    pub(super) async fn start_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
    ) -> std::result::Result<(), (i64, DaemonError)> {
        let r = self.start_inner(c).await;
        if r.is_err() {
            self.release_network(c).await;
        }
        r
    }

    async fn start_inner(
        self: &Arc<Self>,
        c: &Arc<Container>,
    ) -> std::result::Result<(), (i64, DaemonError)> {
        let internal = |e: DaemonError| (128, e);
        let t0 = std::time::Instant::now();
        let phase = |name: &str| tracing::trace!(id = %c.id, ms = t0.elapsed().as_secs_f64() * 1000.0, "start: {name}");
        let rec = c.snapshot();
        let dir = self.container_dir(&c.id);
        let rootfs = self.rootfs(&c.id);
        let lowers = self
            .images
            .lower_dirs_from(rec.top_chain.as_deref())
            .map_err(|e| internal(e.into()))?;
        let dirs = RootfsDirs {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: rootfs.clone(),
        };
        if !berth_image::mount::is_mounted(&rootfs) {
            dirs.mount().map_err(|e| internal(e.into()))?;
        }

        phase("rootfs mounted");
        let (mount_binds, mount_tmpfs) =
            self.setup_mounts(&rec.mounts, &rootfs).map_err(internal)?;
        let config = &rec.config;
        let hc = &rec.host_config;
        let u = user::resolve(
            &rootfs,
            &config.user,
            hc.group_add.as_deref().unwrap_or_default(),
        )
        .map_err(|e| {
            (
                126,
                DaemonError::BadRequest(format!("unable to start container process: {e}")),
            )
        })?;
        let cwd = if config.working_dir.is_empty() {
            "/".to_string()
        } else {
            config.working_dir.clone()
        };
        if cwd != "/" {
            let p = user::secure_join(&rootfs, &cwd);
            if !p.exists() {
                std::fs::create_dir_all(&p)
                    .and_then(|_| std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)))
                    .map_err(|e| {
                        internal(DaemonError::Internal(format!(
                            "creating working directory {cwd}: {e}"
                        )))
                    })?;
            }
        }
        let net = self.setup_network(c).await.map_err(internal)?;
        phase("network ready");
        let env = process_env(
            config.env.as_deref().unwrap_or_default(),
            &config.hostname,
            &u.home,
            &self.link_env(&rec),
            &[],
        );
        let mut cs = spec_map::container_spec(&self.cfg, &rec, &rootfs, &dir, u, env, cwd);
        cs.binds.extend(mount_binds);
        cs.tmpfs.extend(mount_tmpfs);
        cs.network = net.ns;
        let oci = spec::build(&cs).map_err(|e| internal(e.into()))?;
        spec::write_bundle(&dir, &oci).map_err(|e| internal(e.into()))?;
        phase("bundle written");

        let (runtime_bin, runtime_root) = self.runtime_paths(&rec.runtime);
        let state_dir = self.state_dir(&c.id);
        let (log_path, log) = self.shim_log(&rec).map_err(internal)?;
        let shim_cfg = ShimConfig {
            id: c.id.clone(),
            bundle: dir.clone(),
            runtime_root,
            runtime: runtime_bin,
            tty: config.tty,
            open_stdin: config.open_stdin,
            log_path,
            log,
            exec_process: None,
            console_size: console_size(hc.console_size.as_deref()),
        };
        let pid = driver::spawn(&self.exe, &state_dir, &shim_cfg)
            .await
            .map_err(|e| start_error(&rec.path, e.to_string()))?;
        phase("shim ready");
        let (client, mut rx) = driver::connect(&state_dir)
            .await
            .map_err(|e| internal(e.into()))?;
        c.stdio.link_shim(&client).await;
        client
            .request(&Request::Start)
            .await
            .map_err(|e| internal(e.into()))?;
        let mut early = Vec::new();
        let started_at = loop {
            match rx.recv().await {
                Some(ShimMessage::Event(Event::Started { started_at })) => break started_at,
                Some(ShimMessage::Event(Event::StartFailed { message })) => {
                    let _ = client.request(&Request::Kill { signal: 9 }).await;
                    return Err(start_error(&rec.path, message));
                }
                Some(ShimMessage::Event(Event::Exited(_))) | None => {
                    return Err(internal(DaemonError::Internal(
                        "container process ended before it started".into(),
                    )));
                }
                Some(ShimMessage::Output { stream, data }) => early.push((stream, data)),
                Some(ShimMessage::Event(Event::Hello { .. })) => {}
            }
        };
        {
            let mut r = c.rec();
            r.state.status = Status::Running;
            r.state.pid = pid as i64;
            r.state.started_at = started_at;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
        }
        phase("process started");
        *c.shim.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.clone());
        self.persist(c).map_err(internal)?;
        c.lifecycle.send_modify(|l| {
            l.running = true;
            l.unclaimed_exit = None;
        });
        c.stdio.set_exit_file(state_dir.join(shim::files::EXIT));
        c.stdio
            .spawn_pump(client, rec.config.stdin_once, c.stopped());
        let d = self.clone();
        let cc = c.clone();
        // Output that came before `Started` goes first, in the monitor's
        // task: a slow client never holds up `start` (and its lock).
        tokio::spawn(async move {
            for (stream, data) in early {
                cc.stdio.output(stream, data.into()).await;
            }
            d.monitor(cc, rx).await
        });
        self.container_event(c, "start", &[]);
        self.health_start(c);
        Ok(())
    }

    /// The binary (none for the built-in runtime) and state root of a runtime.
    pub(super) fn runtime_paths(
        &self,
        name: &str,
    ) -> (Option<std::path::PathBuf>, std::path::PathBuf) {
        let bin = self.cfg.runtimes.get(name).cloned().flatten();
        let root = match &bin {
            None => self.cfg.exec_root.join("runtime"),
            Some(_) => self.cfg.exec_root.join(format!("runtime-{name}")),
        };
        (bin, root)
    }

    /// Follows a running container's shim until the process exits.
    pub(super) async fn monitor(self: Arc<Self>, c: Arc<Container>, mut rx: Receiver<ShimMessage>) {
        while let Some(msg) = rx.recv().await {
            match msg {
                // Waits while an attached client is slow (back-pressure).
                ShimMessage::Output { stream, data } => c.stdio.output(stream, data.into()).await,
                ShimMessage::Event(Event::Exited(status)) => {
                    self.on_exit(&c, Some(status)).await;
                    return;
                }
                ShimMessage::Event(Event::Hello { pid, .. }) => {
                    c.rec().state.pid = pid as i64;
                }
                ShimMessage::Event(_) => {}
            }
        }
        // The shim went away without a word: its exit file may still tell.
        let status = shim::read_exit(&self.state_dir(&c.id));
        self.on_exit(&c, status).await;
    }

    /// Records an exit: state, log of it, rootfs unmounted, waiters and
    /// attached clients told; `--rm` containers removed.
    pub(super) async fn on_exit(self: &Arc<Self>, c: &Arc<Container>, status: Option<ExitStatus>) {
        self.health_stop(c);
        let client = c.shim.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(client) = client {
            let _ = client.request(&Request::Shutdown).await;
        }
        let (code, auto_remove, restart) = {
            let mut r = c.rec();
            let pid = r.state.pid;
            match &status {
                Some(s) => {
                    r.state.exit_code = s.code as i64;
                    r.state.finished_at = s.finished_at.clone();
                    r.state.oom_killed = s.oom_killed;
                }
                None => {
                    // The shim died: make sure nothing of the container is left running.
                    if pid > 0 {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    r.state.exit_code = 255;
                    r.state.finished_at = now_rfc3339();
                    r.state.error = "container monitor (shim) exited unexpectedly".into();
                }
            }
            r.state.pid = 0;
            let code = r.state.exit_code;
            let restart = super::restart::settle_exit(c, &mut r, code);
            (code, r.host_config.auto_remove, restart)
        };
        self.release_network(c).await;
        let names = Self::volume_names(&c.rec().mounts);
        self.volumes_release(&names);
        if let Err(e) = self.persist(c) {
            tracing::error!(id = %c.id, "recording exit: {e}");
        }
        if let Err(e) = unmount(&self.rootfs(&c.id)) {
            tracing::warn!(id = %c.id, "unmounting rootfs: {e}");
        }
        if status.as_ref().is_some_and(|s| s.oom_killed) {
            self.container_event(c, "oom", &[]);
        }
        self.container_event(c, "die", &[("exitCode", &code.to_string())]);
        c.stdio.publish(AttachMsg::End);
        c.lifecycle.send_modify(|l| {
            l.running = false;
            l.exits += 1;
            l.exit_code = code;
            l.unclaimed_exit = (l.next_exit_waiters == 0).then(std::time::Instant::now);
        });
        tracing::debug!(id = %c.id, code, "container exited");
        if let Some(epoch) = restart {
            self.schedule_restart(c, epoch);
            return;
        }
        if auto_remove {
            if let Err(e) = self.remove(c, true).await {
                tracing::error!(id = %c.id, "auto-remove: {e}");
            }
        }
    }
}
