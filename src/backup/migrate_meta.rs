//! `meta/milvus_migrate.json`: what milvus-migrate records about a backup beyond milvus-backup's
//! meta — a checksum per object, the source row counts and the source's in-memory replica
//! counts (milvus-backup's meta has no place for them).
//!
//! It is a separate file because milvus-backup reads only its own five meta files (and deletes
//! every object under the backup directory on `delete`), so an extra file is ignored by it and
//! never changes how it reads the backup. Owns the file's shape; does not own computing the
//! checksums (the copier does) or counting rows (the Milvus client does).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::BackupError;
use super::meta::Extra;

/// File name of [`MigrateMeta`] inside `meta/`.
pub const MIGRATE_META_FILE: &str = "milvus_migrate.json";

/// Version of the [`MigrateMeta`] shape this build writes.
pub const MIGRATE_META_VERSION: u32 = 1;

/// milvus-migrate's own record of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrateMeta {
    /// Shape version ([`MIGRATE_META_VERSION`]).
    pub version: u32,
    /// The tool and version that wrote the file, e.g. `milvus-migrate 0.1.0`.
    pub tool: String,
    /// Backup-relative object key (e.g. `binlogs/insert_log/...`) to its size and checksum.
    pub objects: BTreeMap<String, ObjectDigest>,
    /// Row counts of the source collections when the backup was taken.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub row_counts: Vec<CollectionRows>,
    /// In-memory replicas of the source collections that were loaded at backup time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<CollectionReplicas>,
    /// Keys written by a newer milvus-migrate.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for MigrateMeta {
    fn default() -> Self {
        Self {
            version: MIGRATE_META_VERSION,
            tool: concat!("milvus-migrate ", env!("CARGO_PKG_VERSION")).to_string(),
            objects: BTreeMap::new(),
            row_counts: Vec::new(),
            replicas: Vec::new(),
            extra: Extra::new(),
        }
    }
}

/// Size and checksum of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDigest {
    /// Bytes.
    pub size: u64,
    /// MD5 of the bytes: lower-case hex, or for an object uploaded in parts the multipart form
    /// `hex(md5 of part md5s)-N` (as in the copy ledger).
    pub md5: String,
}

/// Row counts of one source collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionRows {
    /// Database name.
    pub db_name: String,
    /// Collection name.
    pub collection_name: String,
    /// Rows in the collection: `count(*)`, which sees the loaded partitions only when the
    /// collection is loaded by some partitions (their load states are in the backup).
    pub rows: u64,
    /// Partition name to rows, for the loaded partitions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<String, u64>,
}

/// In-memory replicas of one loaded source collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionReplicas {
    /// Database name.
    pub db_name: String,
    /// Collection name.
    pub collection_name: String,
    /// Replicas (`GetReplicas`).
    pub replicas: u32,
}

impl MigrateMeta {
    /// Parses the file's bytes.
    ///
    /// # Errors
    /// [`BackupError::Parse`] naming the file and the position.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BackupError> {
        serde_json::from_slice(bytes).map_err(|e| BackupError::parse(MIGRATE_META_FILE, &e))
    }

    /// The file's bytes (compact JSON, like milvus-backup's files).
    ///
    /// # Errors
    /// [`BackupError::Encode`] (not expected to happen).
    pub fn to_vec(&self) -> Result<Vec<u8>, BackupError> {
        serde_json::to_vec(self).map_err(|source| BackupError::Encode {
            file: MIGRATE_META_FILE,
            source,
        })
    }

    /// The row count recorded for `db_name.collection_name`.
    pub fn rows_of(&self, db_name: &str, collection_name: &str) -> Option<&CollectionRows> {
        self.row_counts
            .iter()
            .find(|c| c.db_name == db_name && c.collection_name == collection_name)
    }

    /// The replica count recorded for `db_name.collection_name`.
    pub fn replicas_of(&self, db_name: &str, collection_name: &str) -> Option<u32> {
        self.replicas
            .iter()
            .find(|c| c.db_name == db_name && c.collection_name == collection_name)
            .map(|c| c.replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_unknown_keys() {
        let text = r#"{"version":1,"tool":"milvus-migrate 9.9.9","objects":{"binlogs/delta_log/1/2/3/3/4":{"size":10,"md5":"0cc175b9c0f1b6a831c399e269772661"}},"row_counts":[{"db_name":"default","collection_name":"docs","rows":453000000000000100,"partitions":{"_default":453000000000000100}}],"replicas":[{"db_name":"default","collection_name":"docs","replicas":2}],"later":{"x":1}}"#;
        let meta = MigrateMeta::from_slice(text.as_bytes()).unwrap();
        assert_eq!(
            meta.rows_of("default", "docs").unwrap().rows,
            453000000000000100
        );
        assert_eq!(meta.replicas_of("default", "docs"), Some(2));
        assert_eq!(meta.replicas_of("default", "other"), None);
        assert!(meta.extra.contains_key("later"));
        let out = meta.to_vec().unwrap();
        let a: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let b: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn corrupt_file_is_named() {
        let err = MigrateMeta::from_slice(b"{\"version\":").unwrap_err();
        assert!(
            err.to_string().starts_with("meta/milvus_migrate.json:1:"),
            "{err}"
        );
    }
}
