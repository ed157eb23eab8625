//! The metadata database: SQLite in WAL mode.
//!
//! Schema (version 4):
//!
//! ```text
//! layers      id (names the directory layers/<id>; short so overlay's
//!             lowerdir= fits in a page), chain_id UNIQUE, diff_id, parent
//!             chain_id, size, blob_digest + blob_media_type (the stored
//!             blob the layer came from), state 'unpacking' | 'ready'
//! images      id (config digest), parent image id, created_at, last_tag_time
//!  └ image_layers  image_id → chain_id per position (bottom first)
//!  └ tags      full reference → image_id
//! containers  id, name UNIQUE, image_id, top_chain (keeps the image's layers
//!             alive even if the image is force-removed), created_at, record
//!             (the daemon's JSON, opaque here)
//! networks    id, name UNIQUE, created_at, record (the daemon's JSON)
//! endpoints   id, network_id, container_id, record (the daemon's JSON; one
//!             row per container per network while the container runs)
//! volumes     name, created_at, record (the daemon's JSON: driver, labels,
//!             options, anonymous)
//! blob_sources  digest, registry host, repository: where pulls and pushes
//!             saw a blob, so a push to another repository of the same
//!             registry mounts it instead of uploading (after restarts too)
//! ```
//!
//! Migrations are an ordered list; `user_version` records how many ran.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE layers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id TEXT NOT NULL UNIQUE,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    blob_digest TEXT,
    blob_media_type TEXT,
    state TEXT NOT NULL
);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    parent TEXT,
    created_at INTEGER NOT NULL,
    last_tag_time TEXT NOT NULL DEFAULT ''
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image_id, idx)
);
CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX tags_by_image ON tags(image_id);
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    top_chain TEXT,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL,
    container_id TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX endpoints_by_container ON endpoints(container_id);
"#,
    r#"
CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
"#,
    // A new table only: data roots of version 3 keep every row.
    r#"
CREATE TABLE blob_sources (
    digest TEXT NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    PRIMARY KEY (digest, registry, repository)
);
"#,
];

mod blob_sources;
mod volumes;
pub use volumes::VolumeRow;

/// Whether a layer's directory is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// The directory is being filled; such rows do not survive a restart.
    Unpacking,
    /// Complete and usable.
    Ready,
}

impl LayerState {
    fn as_str(self) -> &'static str {
        match self {
            LayerState::Unpacking => "unpacking",
            LayerState::Ready => "ready",
        }
    }
}

/// A layer row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    /// Numeric id; the directory name.
    pub id: i64,
    /// Chain ID (identity of this layer on top of its parents).
    pub chain_id: String,
    /// Digest of the uncompressed layer tar.
    pub diff_id: String,
    /// Chain ID of the layer below, if any.
    pub parent: Option<String>,
    /// Bytes of unpacked content.
    pub size: i64,
    /// The stored blob the layer was unpacked from.
    pub blob_digest: Option<String>,
    /// Media type of that blob.
    pub blob_media_type: Option<String>,
    /// Complete or not.
    pub state: LayerState,
}

/// An image row with its layer chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// Config digest.
    pub id: String,
    /// The image this one was built on, when known (build's intermediate images).
    pub parent: Option<String>,
    /// When it was added here (unix nanoseconds).
    pub created_at: i64,
    /// When it was last tagged (RFC 3339), or "".
    pub last_tag_time: String,
    /// Chain IDs, bottom layer first.
    pub chain_ids: Vec<String>,
}

/// A container row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    /// 64-hex id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Image it was created from.
    pub image_id: String,
    /// The top layer of its image when it was created.
    pub top_chain: Option<String>,
    /// Unix nanoseconds.
    pub created_at: i64,
    /// The daemon's record (JSON).
    pub record: String,
}

/// A network row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRow {
    /// 64-hex id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Unix nanoseconds.
    pub created_at: i64,
    /// The daemon's record (JSON).
    pub record: String,
}

/// An endpoint row (a running container on a network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    /// 64-hex id.
    pub id: String,
    /// The network.
    pub network_id: String,
    /// The container.
    pub container_id: String,
    /// The daemon's record (JSON).
    pub record: String,
}

/// The metadata database.
#[derive(Debug)]
pub struct Metadata {
    conn: Mutex<Connection>,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Metadata {
    /// Opens (creating and migrating if needed) the database file.
    pub fn open(path: &Path) -> Result<Metadata, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Metadata, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Metadata, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL + NORMAL: commits are atomic and durable up to the last
        // checkpointed frame; a crash never corrupts, which is what repair needs.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Metadata {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent
        // (the transaction rolls back), so the poisoned guard is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- layers ----

    /// The layer with this chain ID.
    pub fn layer(&self, chain_id: &str) -> Result<Option<LayerRow>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, chain_id, diff_id, parent, size, blob_digest, blob_media_type, state FROM layers WHERE chain_id = ?1",
        )?;
        Ok(st.query_row([chain_id], layer_from_row).optional()?)
    }

    /// All layer rows.
    pub fn layers(&self) -> Result<Vec<LayerRow>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, chain_id, diff_id, parent, size, blob_digest, blob_media_type, state FROM layers ORDER BY id",
        )?;
        let rows = st
            .query_map([], layer_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records a layer that is about to be unpacked and returns its numeric
    /// id. Fails with `Conflict` if the chain ID exists already.
    pub fn begin_layer(
        &self,
        chain_id: &str,
        diff_id: &str,
        parent: Option<&str>,
        blob: Option<(&str, &str)>,
    ) -> Result<i64, StoreError> {
        let c = self.conn();
        let res = c.execute(
            "INSERT INTO layers (chain_id, diff_id, parent, blob_digest, blob_media_type, state) VALUES (?1, ?2, ?3, ?4, ?5, 'unpacking')",
            params![chain_id, diff_id, parent, blob.map(|b| b.0), blob.map(|b| b.1)],
        );
        match res {
            Ok(_) => Ok(c.last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict(format!("layer {chain_id}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Marks a layer complete.
    pub fn finish_layer(&self, chain_id: &str, size: i64) -> Result<(), StoreError> {
        let n = self.conn().execute(
            "UPDATE layers SET state = ?2, size = ?3 WHERE chain_id = ?1",
            params![chain_id, LayerState::Ready.as_str(), size],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("layer {chain_id}")));
        }
        Ok(())
    }

    /// Sets or replaces the blob a layer is kept as (e.g. after a load
    /// brought the layer in a different compression).
    pub fn set_layer_blob(
        &self,
        chain_id: &str,
        digest: &str,
        media_type: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE layers SET blob_digest = ?2, blob_media_type = ?3 WHERE chain_id = ?1",
            params![chain_id, digest, media_type],
        )?;
        Ok(())
    }

    /// Removes a layer row.
    pub fn delete_layer(&self, chain_id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM layers WHERE chain_id = ?1", [chain_id])?;
        Ok(())
    }

    /// Chain IDs in use: every image's layers and every container's top
    /// layer, each with all its parents.
    pub fn live_chain_ids(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "WITH RECURSIVE live(chain_id) AS (
                 SELECT chain_id FROM image_layers
                 UNION SELECT top_chain FROM containers WHERE top_chain IS NOT NULL
                 UNION SELECT l.parent FROM layers l JOIN live ON l.chain_id = live.chain_id WHERE l.parent IS NOT NULL
             ) SELECT chain_id FROM live",
        )?;
        let set = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<std::collections::HashSet<_>, _>>()?;
        Ok(set)
    }

    // ---- images ----

    /// Adds an image with its layer chain (all layers must be recorded) and
    /// its tags, in one transaction. Existing tags move to this image; the
    /// images they left are returned (they may now be dangling).
    pub fn insert_image(
        &self,
        id: &str,
        parent: Option<&str>,
        chain_ids: &[String],
        tags: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        let now = now_nanos();
        let exists: bool = tx
            .query_row("SELECT 1 FROM images WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            tx.execute(
                "INSERT INTO images (id, parent, created_at) VALUES (?1, ?2, ?3)",
                params![id, parent, now],
            )?;
            for (i, chain) in chain_ids.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                    params![id, i as i64, chain],
                )?;
            }
        }
        let moved = set_tags_tx(&tx, id, tags, now)?;
        tx.commit()?;
        Ok(moved)
    }

    /// One image.
    pub fn image(&self, id: &str) -> Result<Option<ImageRow>, StoreError> {
        let c = self.conn();
        let row: Option<(String, Option<String>, i64, String)> = c
            .query_row(
                "SELECT id, parent, created_at, last_tag_time FROM images WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((id, parent, created_at, last_tag_time)) => {
                let chain_ids = chain_of(&c, &id)?;
                Ok(Some(ImageRow {
                    id,
                    parent,
                    created_at,
                    last_tag_time,
                    chain_ids,
                }))
            }
        }
    }

    /// All images, newest first.
    pub fn images(&self) -> Result<Vec<ImageRow>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, parent, created_at, last_tag_time FROM images ORDER BY created_at DESC",
        )?;
        let rows: Vec<(String, Option<String>, i64, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, parent, created_at, last_tag_time)| {
                let chain_ids = chain_of(&c, &id)?;
                Ok(ImageRow {
                    id,
                    parent,
                    created_at,
                    last_tag_time,
                    chain_ids,
                })
            })
            .collect()
    }

    /// Image IDs starting with `prefix` (`sha256:` + hex prefix).
    pub fn image_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let c = self.conn();
        let mut st =
            c.prepare_cached("SELECT id FROM images WHERE substr(id, 1, length(?1)) = ?1")?;
        let ids = st
            .query_map([prefix], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Removes an image and its tags.
    pub fn delete_image(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM images WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Images whose parent is `id`.
    pub fn children(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached("SELECT id FROM images WHERE parent = ?1")?;
        let ids = st
            .query_map([id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    // ---- tags ----

    /// Points `name` at `image_id`; returns the image it pointed at before,
    /// if different.
    pub fn set_tag(&self, name: &str, image_id: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        let moved = set_tags_tx(&tx, image_id, &[name.to_string()], now_nanos())?;
        tx.commit()?;
        Ok(moved.into_iter().next())
    }

    /// The image a tag names.
    pub fn tag(&self, name: &str) -> Result<Option<String>, StoreError> {
        let c = self.conn();
        Ok(
            c.query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?,
        )
    }

    /// Removes a tag; false when it did not exist.
    pub fn remove_tag(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM tags WHERE name = ?1", [name])?
            > 0)
    }

    /// Tags of one image, oldest first.
    pub fn tags_of(&self, image_id: &str) -> Result<Vec<String>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT name FROM tags WHERE image_id = ?1 ORDER BY created_at, name",
        )?;
        let v = st
            .query_map([image_id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(v)
    }

    /// Every (tag, image id).
    pub fn all_tags(&self) -> Result<Vec<(String, String)>, StoreError> {
        let c = self.conn();
        let mut st =
            c.prepare_cached("SELECT name, image_id FROM tags ORDER BY created_at, name")?;
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    // ---- containers ----

    /// Adds a container; `Conflict` when the name is taken.
    pub fn insert_container(&self, row: &ContainerRow) -> Result<(), StoreError> {
        let res = self.conn().execute(
            "INSERT INTO containers (id, name, image_id, top_chain, created_at, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![row.id, row.name, row.image_id, row.top_chain, row.created_at, row.record],
        );
        match res {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict(format!("container name {}", row.name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a container's record.
    pub fn update_container(&self, id: &str, record: &str) -> Result<(), StoreError> {
        let n = self.conn().execute(
            "UPDATE containers SET record = ?2 WHERE id = ?1",
            params![id, record],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("container {id}")));
        }
        Ok(())
    }

    /// Renames a container; `Conflict` when the name is taken.
    pub fn rename_container(&self, id: &str, name: &str, record: &str) -> Result<(), StoreError> {
        let res = self.conn().execute(
            "UPDATE containers SET name = ?2, record = ?3 WHERE id = ?1",
            params![id, name, record],
        );
        match res {
            Ok(0) => Err(StoreError::NotFound(format!("container {id}"))),
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict(format!("container name {name}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a container row.
    pub fn delete_container(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM containers WHERE id = ?1", [id])?;
        Ok(())
    }

    /// All containers, oldest first.
    pub fn containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, name, image_id, top_chain, created_at, record FROM containers ORDER BY created_at",
        )?;
        let v = st
            .query_map([], |r| {
                Ok(ContainerRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    image_id: r.get(2)?,
                    top_chain: r.get(3)?,
                    created_at: r.get(4)?,
                    record: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    // ---- networks and endpoints ----

    /// Adds a network; `Conflict` when the name is taken.
    pub fn insert_network(&self, row: &NetworkRow) -> Result<(), StoreError> {
        let res = self.conn().execute(
            "INSERT INTO networks (id, name, created_at, record) VALUES (?1, ?2, ?3, ?4)",
            params![row.id, row.name, row.created_at, row.record],
        );
        match res {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict(format!("network {}", row.name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a network row.
    pub fn delete_network(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM networks WHERE id = ?1", [id])?;
        Ok(())
    }

    /// All networks, oldest first.
    pub fn networks(&self) -> Result<Vec<NetworkRow>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, name, created_at, record FROM networks ORDER BY created_at, name",
        )?;
        let v = st
            .query_map([], |r| {
                Ok(NetworkRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    record: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Adds or replaces an endpoint.
    pub fn put_endpoint(&self, row: &EndpointRow) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO endpoints (id, network_id, container_id, record) VALUES (?1, ?2, ?3, ?4)",
            params![row.id, row.network_id, row.container_id, row.record],
        )?;
        Ok(())
    }

    /// Removes an endpoint row.
    pub fn delete_endpoint(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM endpoints WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Removes every endpoint row of a container.
    pub fn delete_container_endpoints(&self, container_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM endpoints WHERE container_id = ?1",
            [container_id],
        )?;
        Ok(())
    }

    /// All endpoints.
    pub fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        let c = self.conn();
        let mut st =
            c.prepare_cached("SELECT id, network_id, container_id, record FROM endpoints")?;
        let v = st
            .query_map([], |r| {
                Ok(EndpointRow {
                    id: r.get(0)?,
                    network_id: r.get(1)?,
                    container_id: r.get(2)?,
                    record: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    // ---- repair ----

    /// Drops what a crash can leave: layers still `unpacking` and layers no
    /// image or container uses. Returns the numeric ids of the removed layers
    /// so the caller can delete their directories. Only safe at start, before
    /// any import or load runs.
    pub fn repair(&self) -> Result<Vec<i64>, StoreError> {
        let live = self.live_chain_ids()?;
        let mut removed = Vec::new();
        for l in self.layers()? {
            if l.state == LayerState::Unpacking || !live.contains(&l.chain_id) {
                self.delete_layer(&l.chain_id)?;
                removed.push(l.id);
            }
        }
        Ok(removed)
    }

    /// True when an image (its config) or a layer row refers to the blob.
    pub fn blob_referenced(&self, digest: &str) -> Result<bool, StoreError> {
        let c = self.conn();
        let n: i64 = c.query_row(
            "SELECT (SELECT count(*) FROM images WHERE id = ?1) + (SELECT count(*) FROM layers WHERE blob_digest = ?1)",
            [digest],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Digests of every blob a row refers to (image configs and layer blobs).
    pub fn referenced_blobs(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id FROM images UNION SELECT blob_digest FROM layers WHERE blob_digest IS NOT NULL",
        )?;
        let set = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<std::collections::HashSet<_>, _>>()?;
        Ok(set)
    }
}

fn layer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRow> {
    let state: String = r.get(7)?;
    Ok(LayerRow {
        id: r.get(0)?,
        chain_id: r.get(1)?,
        diff_id: r.get(2)?,
        parent: r.get(3)?,
        size: r.get(4)?,
        blob_digest: r.get(5)?,
        blob_media_type: r.get(6)?,
        state: if state == "ready" {
            LayerState::Ready
        } else {
            LayerState::Unpacking
        },
    })
}

fn chain_of(c: &Connection, image_id: &str) -> Result<Vec<String>, StoreError> {
    let mut st =
        c.prepare_cached("SELECT chain_id FROM image_layers WHERE image_id = ?1 ORDER BY idx")?;
    let v = st
        .query_map([image_id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(v)
}

fn set_tags_tx(
    tx: &rusqlite::Transaction<'_>,
    image_id: &str,
    tags: &[String],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut moved = Vec::new();
    for t in tags {
        let old: Option<String> = tx
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [t], |r| {
                r.get(0)
            })
            .optional()?;
        if old.as_deref() == Some(image_id) {
            continue;
        }
        if let Some(o) = old {
            moved.push(o);
        }
        tx.execute(
            "INSERT INTO tags (name, image_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created_at = excluded.created_at",
            params![t, image_id, now],
        )?;
    }
    if !tags.is_empty() {
        let ts = chrono_like_rfc3339(now);
        tx.execute(
            "UPDATE images SET last_tag_time = ?2 WHERE id = ?1",
            params![image_id, ts],
        )?;
    }
    Ok(moved)
}

/// RFC 3339 with nanoseconds, UTC, without pulling in a date crate.
fn chrono_like_rfc3339(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(s: &str) -> String {
        format!("sha256:{}", s.repeat(64 / s.len()))
    }

    #[test]
    fn image_tag_and_layer_lifecycle() {
        let m = Metadata::open_in_memory().unwrap();
        let (a, b) = (chain("a"), chain("b"));
        let la = m
            .begin_layer(&a, &a, None, Some(("sha256:x", "tar")))
            .unwrap();
        let lb = m.begin_layer(&b, &b, Some(&a), None).unwrap();
        assert_ne!(la, lb);
        assert!(matches!(
            m.begin_layer(&a, &a, None, None),
            Err(StoreError::Conflict(_))
        ));
        m.finish_layer(&a, 10).unwrap();
        // b is still unpacking and nothing uses a: repair drops both.
        let mut removed = m.repair().unwrap();
        removed.sort();
        assert_eq!(removed, vec![la, lb]);

        m.begin_layer(&a, &a, None, None).unwrap();
        m.finish_layer(&a, 10).unwrap();
        let moved = m
            .insert_image(
                "sha256:img1",
                None,
                std::slice::from_ref(&a),
                &["docker.io/library/x:latest".into()],
            )
            .unwrap();
        assert!(moved.is_empty());
        assert_eq!(
            m.tag("docker.io/library/x:latest").unwrap().as_deref(),
            Some("sha256:img1")
        );
        let moved = m
            .insert_image(
                "sha256:img2",
                None,
                std::slice::from_ref(&a),
                &["docker.io/library/x:latest".into()],
            )
            .unwrap();
        assert_eq!(moved, vec!["sha256:img1".to_string()]);
        assert!(m.tags_of("sha256:img1").unwrap().is_empty());
        assert!(m.repair().unwrap().is_empty());
        assert_eq!(
            m.image("sha256:img2").unwrap().unwrap().chain_ids,
            vec![a.clone()]
        );
        assert!(!m
            .image("sha256:img2")
            .unwrap()
            .unwrap()
            .last_tag_time
            .is_empty());
        assert_eq!(m.image_ids_with_prefix("sha256:img").unwrap().len(), 2);
        m.delete_image("sha256:img2").unwrap();
        assert_eq!(m.tag("docker.io/library/x:latest").unwrap(), None);
        m.delete_image("sha256:img1").unwrap();
        assert!(m.live_chain_ids().unwrap().is_empty());
    }

    #[test]
    fn container_names_are_unique() {
        let m = Metadata::open_in_memory().unwrap();
        let row = ContainerRow {
            id: "1".into(),
            name: "web".into(),
            image_id: "sha256:i".into(),
            top_chain: Some(chain("c")),
            created_at: 1,
            record: "{}".into(),
        };
        m.insert_container(&row).unwrap();
        let dup = ContainerRow {
            id: "2".into(),
            ..row.clone()
        };
        assert!(matches!(
            m.insert_container(&dup),
            Err(StoreError::Conflict(_))
        ));
        m.insert_container(&ContainerRow {
            id: "2".into(),
            name: "db".into(),
            ..row.clone()
        })
        .unwrap();
        assert!(matches!(
            m.rename_container("2", "web", "{}"),
            Err(StoreError::Conflict(_))
        ));
        m.rename_container("2", "db2", "{}").unwrap();
        // The container keeps its top layer alive.
        assert!(m.live_chain_ids().unwrap().contains(&chain("c")));
        m.delete_container("1").unwrap();
        assert_eq!(m.containers().unwrap().len(), 1);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(chrono_like_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            chrono_like_rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }
}
