//! `exec`: a process run inside a running container, through its own
//! shim in exec mode (so its stdio and exit status outlive the daemon too).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_runtime::driver::{self, ShimMessage};
use berth_runtime::protocol::{Event, Request};
use berth_runtime::shim::ShimConfig;
use berth_runtime::user;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use super::container::Container;
use super::start::process_env;
use super::stdio::{AttachMsg, StdioHub};
use super::{new_id, Daemon, Status};
use crate::error::{DaemonError, Result};

/// Body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    /// Command and arguments.
    pub cmd: Vec<String>,
    /// Extra `KEY=value` pairs.
    pub env: Option<Vec<String>>,
    /// Working directory (the container's when empty).
    pub working_dir: String,
    /// User (the container's when empty).
    pub user: String,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// Every capability.
    pub privileged: bool,
    /// Detach key sequence (client side).
    pub detach_keys: String,
    /// Initial TTY size [rows, columns] (API ≥ 1.42).
    pub console_size: Option<Vec<u32>>,
}

#[derive(Debug, Default, Clone)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
}

/// One exec instance.
#[derive(Debug)]
pub struct Exec {
    /// 64-hex ID.
    pub id: String,
    /// Its container.
    pub container_id: String,
    /// What to run.
    pub config: ExecConfig,
    state: Mutex<ExecState>,
    /// True once the process has ended.
    pub done: watch::Sender<bool>,
    /// Its stdio.
    pub stdio: Arc<StdioHub>,
    client: Mutex<Option<berth_runtime::driver::ShimClient>>,
}

impl Exec {
    fn state(&self) -> std::sync::MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The exit code once the process has ended.
    pub fn exit_code(&self) -> Option<i64> {
        self.state().exit_code
    }

    /// `GET /exec/{id}/json`.
    pub fn inspect(&self) -> serde_json::Value {
        let s = self.state().clone();
        let (entrypoint, arguments) = match self.config.cmd.split_first() {
            Some((e, a)) => (e.clone(), a.to_vec()),
            None => (String::new(), Vec::new()),
        };
        json!({
            "ID": self.id, "Running": s.running, "ExitCode": s.exit_code,
            "ProcessConfig": {"tty": self.config.tty, "entrypoint": entrypoint, "arguments": arguments,
                              "privileged": self.config.privileged, "user": self.config.user},
            "OpenStdin": self.config.attach_stdin, "OpenStderr": self.config.attach_stderr,
            "OpenStdout": self.config.attach_stdout, "CanRemove": false,
            "ContainerID": self.container_id, "DetachKeys": self.config.detach_keys, "Pid": s.pid
        })
    }
}

/// The daemon's exec instances.
#[derive(Debug, Default)]
pub struct Execs(Mutex<HashMap<String, Arc<Exec>>>);

impl Execs {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Exec>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// IDs of a container's execs.
    pub fn of(&self, container_id: &str) -> Vec<String> {
        self.map()
            .values()
            .filter(|e| e.container_id == container_id)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Forgets a removed container's execs.
    pub fn forget_container(&self, container_id: &str) {
        self.map().retain(|_, e| e.container_id != container_id);
    }
}

fn not_running(c: &Container) -> DaemonError {
    match c.status() {
        Status::Paused => DaemonError::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )),
        _ => DaemonError::Conflict(format!("Container {} is not running", c.id)),
    }
}

impl Daemon {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, c: &Arc<Container>, config: ExecConfig) -> Result<String> {
        if c.status() != Status::Running {
            return Err(not_running(c));
        }
        if config.cmd.is_empty() {
            return Err(DaemonError::BadRequest("No exec command specified".into()));
        }
        let id = new_id();
        let action = format!("exec_create: {}", config.cmd.join(" "));
        self.container_event(c, &action, &[("execID", &id)]);
        let e = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            state: Mutex::default(),
            done: watch::channel(false).0,
            stdio: Arc::default(),
            client: Mutex::default(),
        });
        self.execs.map().insert(id.clone(), e);
        Ok(id)
    }

    /// An exec by full ID or unique prefix.
    pub fn exec(&self, id: &str) -> Result<Arc<Exec>> {
        let map = self.execs.map();
        if let Some(e) = map.get(id) {
            return Ok(e.clone());
        }
        let mut hits = map
            .values()
            .filter(|e| !id.is_empty() && e.id.starts_with(id));
        match (hits.next(), hits.next()) {
            (Some(e), None) => Ok(e.clone()),
            _ => Err(DaemonError::NotFound(format!(
                "No such exec instance: {id}"
            ))),
        }
    }

    /// `POST /exec/{id}/start`: runs the process; output goes to its hub.
    pub async fn exec_start(self: &Arc<Self>, e: &Arc<Exec>) -> Result<()> {
        {
            let mut s = e.state();
            if s.started {
                return Err(DaemonError::Conflict(format!(
                    "Error: Exec command {} has already run",
                    e.id
                )));
            }
            s.started = true;
        }
        let c = self.container(&e.container_id)?;
        if c.status() != Status::Running {
            return Err(not_running(&c));
        }
        let rec = c.snapshot();
        let dir = self.container_dir(&c.id);
        let rootfs = self.rootfs(&c.id);
        let cfg = &e.config;
        let who = if cfg.user.is_empty() {
            rec.config.user.as_str()
        } else {
            cfg.user.as_str()
        };
        let u = user::resolve(
            &rootfs,
            who,
            rec.host_config.group_add.as_deref().unwrap_or_default(),
        )
        .map_err(|err| DaemonError::BadRequest(err.to_string()))?;
        let env = process_env(
            rec.config.env.as_deref().unwrap_or_default(),
            &rec.config.hostname,
            &u.home,
            &self.link_env(&rec),
            cfg.env.as_deref().unwrap_or_default(),
        );
        let cwd = [cfg.working_dir.as_str(), rec.config.working_dir.as_str()]
            .into_iter()
            .find(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string();
        // The container's own process settings (capabilities, no_new_privs,
        // rlimits…) are the template, as runc's exec does.
        let spec_path = dir.join("config.json");
        let spec: serde_json::Value = std::fs::read(&spec_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| DaemonError::Internal(format!("reading {}", spec_path.display())))?;
        let mut process = spec["process"].clone();
        process["args"] = json!(cfg.cmd);
        process["env"] = json!(env);
        process["cwd"] = json!(cwd);
        process["terminal"] = json!(cfg.tty);
        if let Some((h, w)) = super::start::console_size(cfg.console_size.as_deref()) {
            process["consoleSize"] = json!({"height": h, "width": w});
        }
        process["user"] = json!({"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids});
        if cfg.privileged {
            let all = &spec["process"]["capabilities"]["bounding"];
            process["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
        }
        let state_dir = self.cfg.exec_root.join("x").join(&e.id);
        std::fs::create_dir_all(&state_dir).map_err(|err| {
            DaemonError::Internal(format!("create {}: {err}", state_dir.display()))
        })?;
        let process_path = state_dir.join("process.json");
        std::fs::write(&process_path, process.to_string()).map_err(|err| {
            DaemonError::Internal(format!("write {}: {err}", process_path.display()))
        })?;
        let (runtime, runtime_root) = self.runtime_paths(&rec.runtime);
        let shim_cfg = ShimConfig {
            id: c.id.clone(),
            bundle: dir,
            runtime_root,
            runtime,
            tty: cfg.tty,
            open_stdin: cfg.attach_stdin,
            log_path: None,
            log: Default::default(),
            exec_process: Some(process_path),
            console_size: super::start::console_size(cfg.console_size.as_deref()),
        };
        let spawned = driver::spawn(&self.exe, &state_dir, &shim_cfg).await;
        let pid = match spawned {
            Ok(pid) => pid,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&state_dir);
                // Docker reports a failed exec as a normal exit with 126/127.
                let msg = err.to_string();
                let core = msg.find("exec: \"").map(|i| &msg[i..]).unwrap_or(&msg);
                let code = if core.contains("executable file not found")
                    || core.contains("no such file")
                {
                    127
                } else {
                    126
                };
                // The caller reports the error in the stream, then ends it.
                let mut st = e.state();
                st.exit_code = Some(code);
                drop(st);
                e.done.send_replace(true);
                return Err(DaemonError::Internal(format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {core}: unknown"
                )));
            }
        };
        let (client, mut rx) = driver::connect(&state_dir).await?;
        let action = format!("exec_start: {}", cfg.cmd.join(" "));
        self.container_event(&c, &action, &[("execID", &e.id)]);
        {
            let mut s = e.state();
            s.running = true;
            s.pid = pid as i64;
        }
        *e.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.clone());
        let mut done = e.done.subscribe();
        let stop = async move {
            while !*done.borrow_and_update() {
                if done.changed().await.is_err() {
                    break;
                }
            }
        };
        e.stdio
            .set_exit_file(state_dir.join(berth_runtime::shim::files::EXIT));
        e.stdio.spawn_pump(client.clone(), true, stop);
        let d = self.clone();
        let e2 = e.clone();
        tokio::spawn(async move {
            let mut code = None;
            while let Some(msg) = rx.recv().await {
                match msg {
                    ShimMessage::Output { stream, data } => {
                        e2.stdio.output(stream, data.into()).await
                    }
                    ShimMessage::Event(Event::Exited(s)) => {
                        code = Some(s.code as i64);
                        break;
                    }
                    ShimMessage::Event(_) => {}
                }
            }
            let _ = client.request(&Request::Shutdown).await;
            let code = code
                .or_else(|| berth_runtime::shim::read_exit(&state_dir).map(|s| s.code as i64))
                .unwrap_or(255);
            d.exec_finished(&e2, code);
            let _ = std::fs::remove_dir_all(&state_dir);
        });
        Ok(())
    }

    fn exec_finished(&self, e: &Exec, code: i64) {
        {
            let mut s = e.state();
            s.running = false;
            s.exit_code = Some(code);
        }
        e.client.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Ok(c) = self.container(&e.container_id) {
            let code = code.to_string();
            self.container_event(&c, "exec_die", &[("execID", &e.id), ("exitCode", &code)]);
        }
        e.stdio.publish(AttachMsg::End);
        e.done.send_replace(true);
    }

    /// Signals a running exec's process (health checks past their timeout).
    pub async fn exec_kill(&self, e: &Exec, signal: i32) {
        let client = e.client.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(client) = client {
            let _ = client.request(&Request::Kill { signal }).await;
        }
    }

    /// Forgets an exec (a finished health probe: Docker does not list those).
    pub fn exec_discard(&self, id: &str) {
        self.execs.map().remove(id);
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, e: &Exec, height: u16, width: u16) -> Result<()> {
        let client = e.client.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let client =
            client.ok_or_else(|| DaemonError::Conflict(format!("Exec {} is not running", e.id)))?;
        client.request(&Request::Resize { height, width }).await?;
        Ok(())
    }
}
