//! What a migration keeps in B's backup store beside its backup directory, outside it (so
//! copies of the backup never carry them):
//! - `<dir>.migrate-state.json`: the targets a run started restoring, so a rerun tells its
//!   own partial collection from a user's collection of that name;
//! - `<dir>.migrate-lease.json`: the lease of the run in progress ([`crate::lease`]);
//! - `<dir>.migrate-done.json`: the completion record, kept after the backup is removed, so a
//!   rerun of a completed migration checks the targets instead of migrating again.
//!
//! Owns these records and the check of a completed migration's targets. Does not own the
//! phases ([`super`]).

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::error::Error;
use crate::milvus::MilvusClient;
use crate::storage::{StorageErrorKind, Store};

/// The state file's key for the backup directory `dir`.
pub(super) fn state_key(dir: &str) -> String {
    format!("{dir}.migrate-state.json")
}

/// The lease's key for the backup directory `dir`.
pub(super) fn lease_key(dir: &str) -> String {
    format!("{dir}.migrate-lease.json")
}

/// The completion record's key for the backup directory `dir`.
pub(super) fn done_key(dir: &str) -> String {
    format!("{dir}.migrate-done.json")
}

/// `<dir>.migrate-state.json`: what a migration has started on B.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct MigrateState {
    /// `db.coll` targets whose restore this migration started.
    pub restoring: Vec<String>,
}

/// `<dir>.migrate-done.json`: a migration that ended, and what it left on B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneRecord {
    /// The migration (backup) name.
    pub name: String,
    /// When it completed, Unix seconds.
    pub completed_at: u64,
    /// Milvus A, `host:port`.
    pub from: String,
    /// Milvus B, `host:port`.
    pub to: String,
    /// The collections it created on B.
    pub collections: Vec<DoneCollection>,
    /// Whether the backup copies were removed (false: kept, or the cleanup did not finish).
    pub cleaned: bool,
}

/// One target collection of a completed migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneCollection {
    /// `db.coll` on A.
    pub source: String,
    /// `db.coll` on B.
    pub target: String,
    /// Its collection id on B when the migration ended.
    pub collection_id: i64,
    /// Rows on B when the migration ended (`count(*)`; the import count when not loaded).
    pub rows: u64,
    /// Whether `rows` was counted on B and matched A.
    pub verified: bool,
}

async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<T>, Error> {
    match store.read(key).await {
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if e.kind() == StorageErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn write_json<T: Serialize>(store: &Store, key: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    store.put(key, bytes.into()).await?;
    Ok(())
}

pub(super) async fn read_state(store: &Store, dir: &str) -> Result<MigrateState, Error> {
    Ok(read_json(store, &state_key(dir)).await?.unwrap_or_default())
}

pub(super) async fn write_state(
    store: &Store,
    dir: &str,
    state: &MigrateState,
) -> Result<(), Error> {
    write_json(store, &state_key(dir), state).await
}

pub(super) async fn read_done(store: &Store, dir: &str) -> Result<Option<DoneRecord>, Error> {
    read_json(store, &done_key(dir)).await
}

pub(super) async fn write_done(store: &Store, dir: &str, done: &DoneRecord) -> Result<(), Error> {
    write_json(store, &done_key(dir), done).await
}

/// What B holds now of one target of a completed migration.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetNow {
    /// There, with this id, and `rows` when it is loaded (None: not loaded, not counted).
    Present {
        collection_id: i64,
        rows: Option<u64>,
    },
    /// Gone.
    Missing,
}

/// The differences between a completion record and B now; empty when B still holds what the
/// migration left.
pub fn differences(done: &DoneRecord, now: &[TargetNow]) -> Vec<String> {
    let mut out = Vec::new();
    for (c, n) in done.collections.iter().zip(now) {
        match n {
            TargetNow::Missing => out.push(format!("`{}` was dropped", c.target)),
            TargetNow::Present { collection_id, .. } if *collection_id != c.collection_id => {
                out.push(format!(
                    "`{}` was dropped and created again (collection id {} instead of {})",
                    c.target, collection_id, c.collection_id
                ));
            }
            TargetNow::Present {
                rows: Some(rows), ..
            } if *rows != c.rows => out.push(format!(
                "`{}` holds {rows} rows instead of {}",
                c.target, c.rows
            )),
            TargetNow::Present { .. } => {}
        }
    }
    out
}

/// Looks up each target of `done` on B.
///
/// # Errors
/// Milvus B fails.
pub(super) async fn targets_now(
    b: &MilvusClient,
    done: &DoneRecord,
) -> Result<Vec<TargetNow>, Error> {
    let dbs = b.list_databases().await?;
    let mut out = Vec::with_capacity(done.collections.len());
    for c in &done.collections {
        let (db, coll) = c.target.split_once('.').unwrap_or(("default", &c.target));
        let client = b.with_db(db);
        if !dbs.iter().any(|d| d == db) || !client.has_collection(coll).await? {
            out.push(TargetNow::Missing);
            continue;
        }
        let collection_id = client.describe_collection(coll).await?.collection_id;
        let rows = if client.loading_progress(coll).await? >= 100 {
            Some(u64::try_from(client.count(coll, &[]).await?).unwrap_or(0))
        } else {
            None
        };
        out.push(TargetNow::Present {
            collection_id,
            rows,
        });
    }
    Ok(out)
}

/// `when` for messages: `2026-12-02T07:15:15Z`.
pub(super) fn when(done: &DoneRecord) -> String {
    rfc3339(done.completed_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> DoneRecord {
        DoneRecord {
            name: "migrate_x".into(),
            completed_at: 1_796_195_715,
            from: "a:19530".into(),
            to: "b:19530".into(),
            collections: vec![
                DoneCollection {
                    source: "default.c1".into(),
                    target: "default.c1_bak".into(),
                    collection_id: 11,
                    rows: 100,
                    verified: true,
                },
                DoneCollection {
                    source: "default.c2".into(),
                    target: "db2.c2".into(),
                    collection_id: 12,
                    rows: 5,
                    verified: false,
                },
            ],
            cleaned: true,
        }
    }

    #[test]
    fn unchanged_targets_have_no_differences() {
        let now = [
            TargetNow::Present {
                collection_id: 11,
                rows: Some(100),
            },
            // Not loaded: rows not compared.
            TargetNow::Present {
                collection_id: 12,
                rows: None,
            },
        ];
        assert!(differences(&done(), &now).is_empty());
    }

    #[test]
    fn dropped_recreated_and_changed_targets_are_named() {
        let d = differences(
            &done(),
            &[
                TargetNow::Present {
                    collection_id: 11,
                    rows: Some(99),
                },
                TargetNow::Missing,
            ],
        );
        assert_eq!(
            d,
            [
                "`default.c1_bak` holds 99 rows instead of 100",
                "`db2.c2` was dropped"
            ]
        );
        let d = differences(
            &done(),
            &[
                TargetNow::Present {
                    collection_id: 13,
                    rows: Some(100),
                },
                TargetNow::Present {
                    collection_id: 12,
                    rows: Some(5),
                },
            ],
        );
        assert_eq!(
            d,
            ["`default.c1_bak` was dropped and created again (collection id 13 instead of 11)"]
        );
    }

    #[test]
    fn record_round_trips_and_keys_sit_beside_the_backup_dir() {
        let d = done();
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(serde_json::from_slice::<DoneRecord>(&json).unwrap(), d);
        assert_eq!(done_key("backup/m"), "backup/m.migrate-done.json");
        assert_eq!(lease_key("backup/m"), "backup/m.migrate-lease.json");
        assert_eq!(state_key("backup/m"), "backup/m.migrate-state.json");
        assert_eq!(when(&d), "2026-12-02T07:15:15Z");
    }
}
