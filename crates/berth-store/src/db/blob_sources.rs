//! The blob_sources table: which repositories of which registries are
//! known to hold a blob (learnt by pulls and pushes), the sources of
//! cross-repository mounts.

use rusqlite::{params, OptionalExtension};

use super::Metadata;
use crate::StoreError;

impl Metadata {
    /// Records that `repository` on `registry` holds the blob `digest`.
    pub fn add_blob_source(
        &self,
        digest: &str,
        registry: &str,
        repository: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO blob_sources (digest, registry, repository) VALUES (?1, ?2, ?3)",
            params![digest, registry, repository],
        )?;
        Ok(())
    }

    /// A repository on `registry` other than `not_repository` known to hold
    /// `digest`: the one recorded last, as the likeliest still to have it.
    pub fn blob_source(
        &self,
        digest: &str,
        registry: &str,
        not_repository: &str,
    ) -> Result<Option<String>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT repository FROM blob_sources WHERE digest = ?1 AND registry = ?2 AND repository != ?3 ORDER BY rowid DESC LIMIT 1",
        )?;
        Ok(st
            .query_row(params![digest, registry, not_repository], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_registry_newest_first() {
        let m = Metadata::open_in_memory().unwrap();
        assert_eq!(m.blob_source("sha256:a", "reg:5000", "x").unwrap(), None);
        m.add_blob_source("sha256:a", "reg:5000", "x").unwrap();
        m.add_blob_source("sha256:a", "reg:5000", "x").unwrap();
        assert_eq!(m.blob_source("sha256:a", "reg:5000", "x").unwrap(), None);
        m.add_blob_source("sha256:a", "other:1", "y").unwrap();
        assert_eq!(m.blob_source("sha256:a", "reg:5000", "x").unwrap(), None);
        m.add_blob_source("sha256:a", "reg:5000", "y").unwrap();
        m.add_blob_source("sha256:a", "reg:5000", "z").unwrap();
        assert_eq!(
            m.blob_source("sha256:a", "reg:5000", "x")
                .unwrap()
                .as_deref(),
            Some("z")
        );
        assert_eq!(
            m.blob_source("sha256:a", "reg:5000", "z")
                .unwrap()
                .as_deref(),
            Some("y")
        );
    }

    /// A data root made before the table existed (schema version 3)
    /// migrates in place and keeps its rows.
    #[test]
    fn migrates_a_version_3_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let mut c = rusqlite::Connection::open(&path).unwrap();
            for (i, m) in super::super::MIGRATIONS[..3].iter().enumerate() {
                let tx = c.transaction().unwrap();
                tx.execute_batch(m).unwrap();
                tx.pragma_update(None, "user_version", (i + 1) as i64)
                    .unwrap();
                tx.commit().unwrap();
            }
            c.execute(
                "INSERT INTO volumes (name, created_at, record) VALUES ('v', 1, '{}')",
                [],
            )
            .unwrap();
        }
        let m = Metadata::open(&path).unwrap();
        assert!(m.volume("v").unwrap().is_some());
        m.add_blob_source("sha256:a", "reg", "x").unwrap();
        drop(m);
        let m = Metadata::open(&path).unwrap();
        assert_eq!(
            m.blob_source("sha256:a", "reg", "y").unwrap().as_deref(),
            Some("x")
        );
        let v: i64 = m
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 4);
    }
}
