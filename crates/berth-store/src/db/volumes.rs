//! The volumes table: one row per volume, keyed by its unique name.

use rusqlite::{params, OptionalExtension};

use super::Metadata;
use crate::StoreError;

/// A volume row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    /// Unique name (64 hex for anonymous volumes).
    pub name: String,
    /// Unix nanoseconds.
    pub created_at: i64,
    /// The daemon's record (JSON).
    pub record: String,
}

impl Metadata {
    /// Adds a volume; `Conflict` when the name is taken.
    pub fn insert_volume(&self, row: &VolumeRow) -> Result<(), StoreError> {
        let res = self.conn().execute(
            "INSERT INTO volumes (name, created_at, record) VALUES (?1, ?2, ?3)",
            params![row.name, row.created_at, row.record],
        );
        match res {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict(format!("volume {}", row.name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The volume with this name.
    pub fn volume(&self, name: &str) -> Result<Option<VolumeRow>, StoreError> {
        let c = self.conn();
        let row = c
            .query_row(
                "SELECT name, created_at, record FROM volumes WHERE name = ?1",
                [name],
                |r| {
                    Ok(VolumeRow {
                        name: r.get(0)?,
                        created_at: r.get(1)?,
                        record: r.get(2)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    /// Removes a volume row.
    pub fn delete_volume(&self, name: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        Ok(())
    }

    /// All volumes, by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRow>, StoreError> {
        let c = self.conn();
        let mut st =
            c.prepare_cached("SELECT name, created_at, record FROM volumes ORDER BY name")?;
        let v = st
            .query_map([], |r| {
                Ok(VolumeRow {
                    name: r.get(0)?,
                    created_at: r.get(1)?,
                    record: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_rows() {
        let m = Metadata::open_in_memory().unwrap();
        let row = VolumeRow {
            name: "v1".into(),
            created_at: 1,
            record: "{}".into(),
        };
        m.insert_volume(&row).unwrap();
        assert!(matches!(
            m.insert_volume(&row),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(m.volume("v1").unwrap(), Some(row));
        assert_eq!(m.volumes().unwrap().len(), 1);
        m.delete_volume("v1").unwrap();
        assert_eq!(m.volume("v1").unwrap(), None);
    }
}
