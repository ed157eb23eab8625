//! A container as the daemon keeps it: the persisted [`Record`], and the
//! live [`Container`] handle with its lifecycle channel and attach hub.

use std::sync::{Arc, Mutex, MutexGuard};

use berth_api::container::{ContainerConfig, HostConfig};
use berth_runtime::driver::ShimClient;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use super::stdio::{AttachMsg, StdinMsg, StdioHub};

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or start failed).
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Between a restart policy's exit and start.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process ended.
    Exited,
    /// Could not be removed.
    Dead,
}

impl Status {
    /// Docker's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// `start` may run from this state.
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }

    /// A process exists (running, paused or restarting).
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// Runtime state of a container, persisted with its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Lifecycle state.
    pub status: Status,
    /// Host PID of its init process while running.
    pub pid: i64,
    /// Exit code of the last run (or 126/127/128 for a failed start).
    pub exit_code: i64,
    /// Why the last start failed.
    pub error: String,
    /// RFC 3339; "0001-01-01T00:00:00Z" when never.
    pub started_at: String,
    /// RFC 3339; "0001-01-01T00:00:00Z" when never.
    pub finished_at: String,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// Stopped or killed by the user: restart policies leave it alone
    /// (and `unless-stopped` does even across daemon restarts).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Health-check state, when the container has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

/// Go's zero time, which Docker prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Everything persisted about a container (JSON in the database).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex.
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image as the user named it.
    pub image_name: String,
    /// The image ID.
    pub image_id: String,
    /// Merged config (image defaults + user's).
    pub config: ContainerConfig,
    /// Host config as given.
    pub host_config: HostConfig,
    /// The executable (first of entrypoint + cmd).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// State.
    pub state: State,
    /// Number of restarts by policy.
    pub restart_count: i64,
    /// The runtime chosen at create.
    pub runtime: String,
    /// Top layer of its image (kept alive for the container).
    pub top_chain: Option<String>,
    /// Volumes, binds and tmpfs mounts, resolved at create.
    #[serde(default)]
    pub mounts: Vec<super::mounts::MountPoint>,
    /// The networks it joins, by name, with the user's endpoint settings.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, super::network::EndpointConfig>,
    /// The network namespace it holds while it runs (from the pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<std::path::PathBuf>,
}

/// What `wait` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifecycle {
    /// A process runs.
    pub running: bool,
    /// How many times a process of this container has exited.
    pub exits: u64,
    /// Exit code of the last exit.
    pub exit_code: i64,
    /// The container is gone.
    pub removed: bool,
    /// `next-exit` waiters registered right now.
    pub next_exit_waiters: u32,
    /// When the last exit happened with no `next-exit` waiter registered
    /// (the docker CLI's wait can arrive after a fast container's exit).
    pub unclaimed_exit: Option<std::time::Instant>,
}

/// A live container.
#[derive(Debug)]
pub struct Container {
    /// ID.
    pub id: String,
    rec: Mutex<Record>,
    /// Serialises start/stop/remove of this container.
    pub op: tokio::sync::Mutex<()>,
    /// The connection to its shim while a process exists.
    pub shim: Mutex<Option<ShimClient>>,
    /// Lifecycle changes, for `wait`.
    pub lifecycle: watch::Sender<Lifecycle>,
    /// Its process's stdio as attach clients see it.
    pub stdio: Arc<StdioHub>,
    /// Restart policy state (not persisted, as in dockerd).
    pub restart: Mutex<RestartState>,
    /// The health-check task while the container runs.
    pub health_task: Mutex<Option<tokio::task::AbortHandle>>,
    /// Held from copying the record to writing it to the database, so that
    /// two saves land in the order their copies were taken.
    saving: Mutex<()>,
}

/// The restart manager of one container.
#[derive(Debug, Default, Clone, Copy)]
pub struct RestartState {
    /// Current back-off.
    pub timeout: std::time::Duration,
    /// Bumped by every user start/stop/kill/rm: a scheduled restart whose
    /// epoch no longer matches is cancelled.
    pub epoch: u64,
}

impl Container {
    /// Wraps a record.
    pub fn new(rec: Record) -> Container {
        let lc = Lifecycle {
            running: rec.state.status.is_active(),
            exits: 0,
            exit_code: rec.state.exit_code,
            removed: false,
            next_exit_waiters: 0,
            unclaimed_exit: None,
        };
        Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            shim: Mutex::new(None),
            lifecycle: watch::channel(lc).0,
            stdio: Arc::default(),
            restart: Mutex::default(),
            health_task: Mutex::default(),
            saving: Mutex::default(),
        }
    }

    /// The lock of a save of the record (see `saving`); taken before the
    /// record's own lock.
    pub fn saving(&self) -> MutexGuard<'_, ()> {
        self.saving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record, locked (never hold across an await).
    pub fn rec(&self) -> MutexGuard<'_, Record> {
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> Record {
        self.rec().clone()
    }

    /// The current name.
    pub fn name(&self) -> String {
        self.rec().name.clone()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.rec().state.status
    }

    /// Resolves once no process of this container runs.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut lc = self.lifecycle.subscribe();
        async move {
            while lc.borrow_and_update().running {
                if lc.changed().await.is_err() {
                    break;
                }
            }
        }
    }

    /// Cancels any scheduled restart.
    pub fn cancel_restart(&self) -> u64 {
        let mut r = self.restart.lock().unwrap_or_else(|p| p.into_inner());
        r.epoch += 1;
        r.epoch
    }

    /// Before a start that renews the restart policy (by hand, or the
    /// daemon's own at its start), as dockerd's ResetRestartManager(true):
    /// any scheduled restart cancelled, the manual stop forgotten (an
    /// `always` container stopped by hand would otherwise run once and stay
    /// down) and the count back at zero (`on-failure:N` retries N times
    /// again).
    pub fn renew_restart_policy(&self) {
        self.cancel_restart();
        let mut r = self.rec();
        r.state.manually_stopped = false;
        r.restart_count = 0;
    }

    /// The shim connection, if any.
    pub fn shim_client(&self) -> Option<ShimClient> {
        self.shim.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
