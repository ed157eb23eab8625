//! The lifecycle core: containers and images as the daemon manages them,
//! with no knowledge of HTTP. The API layer ([`crate::api`]) is a thin front
//! over it.

pub mod archive;
pub mod build;
pub mod commit;
pub mod container;
mod create;
pub mod distribution;
mod etc_files;
pub mod events;
pub mod exec;
pub mod health;
pub mod logs;
mod mounts;
mod names;
pub mod network;
pub mod prune;
mod remove;
pub mod resources;
mod restart;
mod restore;
mod spec_map;
mod start;
pub mod stats;
pub mod stdio;
mod stop;
pub mod view;
pub mod volumes;
pub mod wait;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use berth_image::ImageStore;
use berth_store::{ContainerRow, Metadata};

pub use container::{Container, Record, Status};
pub use create::CreateRequest;
pub use mounts::MountPoint;
pub use wait::WaitCondition;

use crate::config::DaemonConfig;
use crate::error::{DaemonError, Result};

/// The daemon's state.
#[derive(Debug)]
pub struct Daemon {
    /// Configuration.
    pub cfg: DaemonConfig,
    /// Metadata database.
    pub meta: Arc<Metadata>,
    /// Images and layers.
    pub images: Arc<ImageStore>,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    /// This binary, started as `berth shim`.
    exe: PathBuf,
    /// When the daemon started.
    pub started_at: std::time::SystemTime,
    /// This engine's stable ID (`docker info`'s ID).
    engine_id: String,
    /// Exec instances.
    pub execs: exec::Execs,
    /// Exit codes of recently removed containers, for a `wait` that
    /// arrives after an `--rm` container is already gone.
    tombstones: std::sync::Mutex<HashMap<String, (i64, std::time::Instant)>>,
    /// The events bus (`GET /events`).
    pub events: events::Events,
    /// Networks and endpoints ([`Daemon::open_networking`] sets it).
    networking: std::sync::OnceLock<Arc<network::Networking>>,
    /// The shared tick of streaming `stats`.
    stats: Arc<stats::StatsHub>,
}

fn create_dir(p: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(p)
        .map_err(|e| DaemonError::Internal(format!("create {}: {e}", p.display())))
}

impl Daemon {
    /// Opens the stores under the configured roots and loads the
    /// containers; call [`Daemon::restore`] next to reconnect running ones.
    pub fn open(cfg: DaemonConfig) -> Result<Arc<Daemon>> {
        for d in [
            &cfg.data_root,
            &cfg.data_root.join("containers"),
            &cfg.exec_root,
            &cfg.exec_root.join("c"),
        ] {
            create_dir(d)?;
        }
        let meta = Arc::new(Metadata::open(&cfg.data_root.join("berth.db"))?);
        let images = Arc::new(ImageStore::open(&cfg.data_root, meta.clone())?);
        let exe = std::env::current_exe()
            .map_err(|e| DaemonError::Internal(format!("own executable: {e}")))?;
        let mut map = HashMap::new();
        for row in meta.containers()? {
            match serde_json::from_str::<Record>(&row.record) {
                Ok(rec) => {
                    map.insert(row.id.clone(), Arc::new(Container::new(rec)));
                }
                Err(e) => {
                    tracing::error!(id = %row.id, "unreadable container record, skipping: {e}")
                }
            }
        }
        let engine_id = engine_id(&cfg.data_root)?;
        let cfg_data_root = cfg.data_root.clone();
        let d = Daemon {
            cfg,
            meta,
            images,
            containers: RwLock::new(map),
            exe,
            started_at: std::time::SystemTime::now(),
            engine_id,
            execs: Default::default(),
            tombstones: Default::default(),
            events: events::Events::open(Some(&cfg_data_root.join("events.jsonl"))),
            networking: Default::default(),
            stats: Default::default(),
        };
        d.sweep_container_dirs();
        d.sweep_volume_dirs();
        Ok(Arc::new(d))
    }

    /// Removes container directories that have no row (a crash between
    /// making the directory and committing the row, or during removal).
    fn sweep_container_dirs(&self) {
        let known: std::collections::HashSet<String> = self
            .containers
            .read()
            .expect("lock")
            .keys()
            .cloned()
            .collect();
        for base in [
            self.cfg.data_root.join("containers"),
            self.cfg.exec_root.join("c"),
        ] {
            let Ok(rd) = std::fs::read_dir(&base) else {
                continue;
            };
            for ent in rd.flatten() {
                let name = ent.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) {
                    let _ = berth_image::mount::unmount(&ent.path().join("rootfs"));
                    let _ = std::fs::remove_dir_all(ent.path());
                }
            }
        }
    }

    /// Emits a container event with Docker's attributes: the container's
    /// labels, its `image` and `name`, and `extra` (`exitCode`, `signal`…).
    pub fn container_event(&self, c: &Container, action: &str, extra: &[(&str, &str)]) {
        let mut a = std::collections::BTreeMap::new();
        {
            let r = c.rec();
            if let Some(labels) = &r.config.labels {
                a.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            a.insert("image".into(), r.image_name.clone());
            a.insert("name".into(), r.name.clone());
        }
        a.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.events.emit("container", action, &c.id, a);
    }

    /// Emits an image event (`tag`, `untag`, `delete`, `import`, `load`,
    /// `save`, `pull`, `push`) with Docker's `name` attribute.
    pub fn image_event(&self, action: &str, id: &str, name: &str) {
        self.events
            .emit("image", action, id, events::attrs([("name", name)]));
    }

    /// The engine ID.
    pub fn meta_id(&self) -> String {
        self.engine_id.clone()
    }

    /// Remembers a removed container's exit code for a while.
    fn bury(&self, id: &str, name: &str, code: i64) {
        let mut t = self.tombstones.lock().unwrap_or_else(|p| p.into_inner());
        t.retain(|_, (_, at)| at.elapsed() < std::time::Duration::from_secs(30));
        let now = std::time::Instant::now();
        t.insert(id.to_string(), (code, now));
        t.insert(name.to_string(), (code, now));
    }

    /// The exit code of a container removed in the last seconds, found by
    /// full ID or name.
    pub fn tombstone(&self, name: &str) -> Option<i64> {
        let t = self.tombstones.lock().unwrap_or_else(|p| p.into_inner());
        t.get(name.strip_prefix('/').unwrap_or(name))
            .map(|(c, _)| *c)
    }

    /// Finds a container by full ID, name or unique ID prefix.
    pub fn container(&self, name: &str) -> Result<Arc<Container>> {
        let map = self.containers.read().expect("lock");
        if let Some(c) = map.get(name) {
            return Ok(c.clone());
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        if let Some(c) = map.values().find(|c| c.rec().name == bare) {
            return Ok(c.clone());
        }
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = map.values().filter(|c| c.id.starts_with(name));
            if let Some(first) = hits.next() {
                if hits.next().is_some() {
                    return Err(DaemonError::BadRequest(format!(
                        "multiple IDs found with provided prefix: {name}"
                    )));
                }
                return Ok(first.clone());
            }
        }
        Err(DaemonError::NotFound(format!("No such container: {name}")))
    }

    /// Waits (up to `limit`) for container operations under way (start,
    /// stop, commit… hold the container's op lock) to finish: at shutdown
    /// they must not be cut off halfway or lose the network under them.
    pub async fn settle_operations(&self, limit: std::time::Duration) {
        let all = self.containers();
        let settled = async {
            for c in &all {
                drop(c.op.lock().await);
            }
        };
        if tokio::time::timeout(limit, settled).await.is_err() {
            tracing::warn!("container operations still under way after {limit:?}");
        }
    }

    /// All containers, oldest first.
    pub fn containers(&self) -> Vec<Arc<Container>> {
        let mut v: Vec<Arc<Container>> = self
            .containers
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect();
        // One record locked at a time: comparing two under both locks
        // deadlocks when two callers sort the same pair the other way round.
        v.sort_by_cached_key(|c| c.rec().created.clone());
        v
    }

    fn insert(&self, c: Arc<Container>) {
        self.containers
            .write()
            .expect("lock")
            .insert(c.id.clone(), c);
    }

    fn forget(&self, id: &str) {
        self.containers.write().expect("lock").remove(id);
    }

    /// `containers/<id>` under the data root: upper, work, rootfs, the
    /// bundle's config.json, hosts files and the log.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    /// The shim's state directory (short: socket paths are limited).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("c").join(id)
    }

    /// The json-file log.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// The merged root filesystem mount point.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    /// Writes a container's record to the database.
    pub fn persist(&self, c: &Container) -> Result<()> {
        let _saving = c.saving();
        let json =
            serde_json::to_string(&*c.rec()).map_err(|e| DaemonError::Internal(e.to_string()))?;
        self.meta.update_container(&c.id, &json)?;
        Ok(())
    }

    fn insert_row(&self, rec: &Record) -> Result<()> {
        let json = serde_json::to_string(rec).map_err(|e| DaemonError::Internal(e.to_string()))?;
        let created_at = chrono::DateTime::parse_from_rfc3339(&rec.created)
            .map(|t| t.timestamp_nanos_opt().unwrap_or(0))
            .unwrap_or(0);
        self.meta.insert_container(&ContainerRow {
            id: rec.id.clone(),
            name: rec.name.clone(),
            image_id: rec.image_id.clone(),
            top_chain: rec.top_chain.clone(),
            created_at,
            record: json,
        })?;
        Ok(())
    }

    /// The containers that use an image, for `rmi`.
    pub fn image_users(&self, image_id: &str) -> Vec<berth_image::ImageUser> {
        self.containers()
            .iter()
            .filter_map(|c| {
                let r = c.rec();
                (r.image_id == image_id).then(|| berth_image::ImageUser {
                    id: r.id.clone(),
                    running: r.state.status.is_active(),
                })
            })
            .collect()
    }
}

/// Reads or makes `<data-root>/engine-id`.
fn engine_id(root: &std::path::Path) -> Result<String> {
    let p = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_string());
        }
    }
    let id = new_id();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    );
    std::fs::write(&p, &id)
        .map_err(|e| DaemonError::Internal(format!("write {}: {e}", p.display())))?;
    Ok(id)
}

/// Now, as Docker writes times.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A new random 64-hex ID.
pub fn new_id() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("kernel randomness");
    hex::encode(b)
}
