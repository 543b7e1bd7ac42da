//! Object keys inside a milvus-backup backup directory, and the Milvus-side keys they come from.
//!
//! ```text
//! <backup_dir>/meta/{backup,collection,partition,segment,full}_meta.json, milvus_migrate.json
//! <backup_dir>/binlogs/insert_log/<coll>/<part>/<group>/<seg>/<field>/<log>
//! <backup_dir>/binlogs/delta_log/<coll>/<part>/<group>/<seg>/<log>   data and partition L0 deltas
//! <backup_dir>/binlogs/delta_log/<coll>/-1/<seg>/<log>               collection-wide L0
//! <backup_dir>/binlogs/{insert_log,delta_log}/<coll>/<part>/<seg>/...  old layout, no group
//! <milvus_root>/insert_log/<coll>/<part>/<seg>/<field>/<log>          source keys
//! <milvus_root>/delta_log/<coll>/<part>/<seg>/<log>
//! ```
//!
//! Every builder takes the backup directory (`<root>/<name>`, see
//! [`crate::storage::layout::backup_dir`]) as a prefix; pass `""` for keys relative to the
//! backup directory, as [`super::MigrateMeta`] records them. Directory builders end with `/`,
//! as the import API expects. Owns key shapes only: it reads and writes nothing. Joining and
//! backup-name rules stay in [`crate::storage::layout`].

use crate::storage::layout::join;

use super::MetaFile;
use super::error::BackupError;
use super::meta::{ALL_PARTITIONS, SegmentBackupInfo};
use super::migrate_meta::MIGRATE_META_FILE;

/// Directory of the meta files inside a backup.
pub const META_DIR: &str = "meta";
/// Directory of the copied binlogs inside a backup.
pub const BINLOGS_DIR: &str = "binlogs";
/// Insert-log directory (under `binlogs/` in a backup, under the root path in Milvus).
pub const INSERT_LOG_DIR: &str = "insert_log";
/// Delta-log directory (under `binlogs/` in a backup, under the root path in Milvus).
pub const DELTA_LOG_DIR: &str = "delta_log";

/// Key of one of milvus-backup's meta files.
pub fn meta_key(backup_dir: &str, file: MetaFile) -> String {
    join(&[backup_dir, META_DIR, file.file_name()])
}

/// Key of milvus-migrate's own meta file.
pub fn migrate_meta_key(backup_dir: &str) -> String {
    join(&[backup_dir, META_DIR, MIGRATE_META_FILE])
}

/// The `meta/` directory of a backup, with a trailing `/`.
pub fn meta_dir(backup_dir: &str) -> String {
    dir(&[backup_dir, META_DIR])
}

/// `binlogs/insert_log/<coll>/` of a backup: every insert log of one collection.
pub fn collection_insert_dir(backup_dir: &str, collection_id: i64) -> String {
    dir(&[
        backup_dir,
        BINLOGS_DIR,
        INSERT_LOG_DIR,
        &collection_id.to_string(),
    ])
}

/// `binlogs/delta_log/<coll>/` of a backup: every delta log of one collection.
pub fn collection_delta_dir(backup_dir: &str, collection_id: i64) -> String {
    dir(&[
        backup_dir,
        BINLOGS_DIR,
        DELTA_LOG_DIR,
        &collection_id.to_string(),
    ])
}

/// `binlogs/insert_log/<coll>/<part>/`: the import unit of an old, group-less partition.
pub fn partition_insert_dir(backup_dir: &str, collection_id: i64, partition_id: i64) -> String {
    dir(&[
        backup_dir,
        BINLOGS_DIR,
        INSERT_LOG_DIR,
        &collection_id.to_string(),
        &partition_id.to_string(),
    ])
}

/// `binlogs/delta_log/<coll>/<part>/`: the delta half of an old, group-less partition's unit.
pub fn partition_delta_dir(backup_dir: &str, collection_id: i64, partition_id: i64) -> String {
    dir(&[
        backup_dir,
        BINLOGS_DIR,
        DELTA_LOG_DIR,
        &collection_id.to_string(),
        &partition_id.to_string(),
    ])
}

/// Milvus's own insert-log directory of a segment: `<root>/insert_log/<coll>/<part>/<seg>/`.
pub fn milvus_insert_log_dir(
    milvus_root: &str,
    collection_id: i64,
    partition_id: i64,
    segment_id: i64,
) -> String {
    dir(&[
        milvus_root,
        INSERT_LOG_DIR,
        &collection_id.to_string(),
        &partition_id.to_string(),
        &segment_id.to_string(),
    ])
}

/// Milvus's own delta-log directory of a segment: `<root>/delta_log/<coll>/<part>/<seg>/`.
pub fn milvus_delta_log_dir(
    milvus_root: &str,
    collection_id: i64,
    partition_id: i64,
    segment_id: i64,
) -> String {
    dir(&[
        milvus_root,
        DELTA_LOG_DIR,
        &collection_id.to_string(),
        &partition_id.to_string(),
        &segment_id.to_string(),
    ])
}

/// Where a segment's objects live in a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLocation {
    /// Source collection id.
    pub collection_id: i64,
    /// Source partition id ([`ALL_PARTITIONS`] for collection-wide L0).
    pub partition_id: i64,
    /// Group directory; `None` in the old layout.
    pub group: Option<i64>,
    /// Source segment id.
    pub segment_id: i64,
}

impl SegmentLocation {
    /// The location milvus-backup uses for `seg` (group from `group_id`, 0 meaning none).
    pub fn of(seg: &SegmentBackupInfo) -> Self {
        Self {
            collection_id: seg.collection_id,
            partition_id: seg.partition_id,
            group: seg.group(),
            segment_id: seg.segment_id,
        }
    }

    fn is_collection_wide(&self) -> bool {
        self.partition_id == ALL_PARTITIONS
    }

    /// `<coll>/<part>[/<group>]` as strings.
    fn head(&self, with_group: bool) -> Vec<String> {
        let mut v = vec![
            self.collection_id.to_string(),
            self.partition_id.to_string(),
        ];
        if with_group && let Some(g) = self.group {
            v.push(g.to_string());
        }
        v
    }

    /// Key of an insert log: `binlogs/insert_log/<coll>/<part>[/<group>]/<seg>/<field>/<log>`.
    /// `field_id` is a column-group id for storage-v2 segments; `log` is
    /// [`super::Binlog::key_name`].
    pub fn insert_log_key(&self, backup_dir: &str, field_id: i64, log: &str) -> String {
        let mut parts = vec![
            backup_dir.to_string(),
            BINLOGS_DIR.into(),
            INSERT_LOG_DIR.into(),
        ];
        parts.extend(self.head(true));
        parts.push(self.segment_id.to_string());
        parts.push(field_id.to_string());
        parts.push(log.to_string());
        join_owned(&parts)
    }

    /// Key of a delta log: `binlogs/delta_log/<coll>/<part>[/<group>]/<seg>/<log>`; for a
    /// collection-wide L0 segment `binlogs/delta_log/<coll>/-1/<seg>/<log>` (never a group).
    pub fn delta_log_key(&self, backup_dir: &str, log: &str) -> String {
        let mut parts = vec![
            backup_dir.to_string(),
            BINLOGS_DIR.into(),
            DELTA_LOG_DIR.into(),
        ];
        parts.extend(self.head(!self.is_collection_wide()));
        parts.push(self.segment_id.to_string());
        parts.push(log.to_string());
        join_owned(&parts)
    }

    /// Insert half of a data segment's import unit: `binlogs/insert_log/<coll>/<part>/<group>/`
    /// (one segment below it); in the old layout the whole partition directory.
    pub fn insert_import_dir(&self, backup_dir: &str) -> String {
        let mut parts = vec![
            backup_dir.to_string(),
            BINLOGS_DIR.into(),
            INSERT_LOG_DIR.into(),
        ];
        parts.extend(self.head(true));
        dir_owned(&parts)
    }

    /// Delta half of a data segment's import unit: `binlogs/delta_log/<coll>/<part>/<group>/`
    /// (whole partition in the old layout). milvus-backup passes it only if it exists.
    pub fn delta_import_dir(&self, backup_dir: &str) -> String {
        let mut parts = vec![
            backup_dir.to_string(),
            BINLOGS_DIR.into(),
            DELTA_LOG_DIR.into(),
        ];
        parts.extend(self.head(true));
        dir_owned(&parts)
    }

    /// Import directory of an L0 segment: `binlogs/delta_log/<coll>/<part>/<seg>/`, as
    /// milvus-backup builds it. For a partition L0 segment this is its group directory (the
    /// group id is the segment id); for a collection-wide one, the segment directory. Only a
    /// group that differs from the segment id (early 0.4 builds) gives
    /// `.../<part>/<group>/<seg>/`, where that segment's logs actually are.
    pub fn l0_import_dir(&self, backup_dir: &str) -> String {
        let mut parts = vec![
            backup_dir.to_string(),
            BINLOGS_DIR.into(),
            DELTA_LOG_DIR.into(),
        ];
        parts.push(self.collection_id.to_string());
        parts.push(self.partition_id.to_string());
        match self.group {
            Some(g) if g != self.segment_id && !self.is_collection_wide() => {
                parts.push(g.to_string());
            }
            _ => {}
        }
        parts.push(self.segment_id.to_string());
        dir_owned(&parts)
    }
}

/// One object of a segment: where it is in Milvus, where it goes in the backup, its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentObject {
    /// Key in the source Milvus storage (`log_path` of the meta).
    pub source_key: String,
    /// Key in the backup, under the `backup_dir` given.
    pub backup_key: String,
    /// Bytes (`log_size` of the meta).
    pub size: i64,
}

/// Every insert and delta log of `seg` with its backup key.
///
/// # Errors
/// [`BackupError::MissingLogId`] if a binlog has neither `log_id` nor `log_path`.
pub fn segment_objects(
    backup_dir: &str,
    seg: &SegmentBackupInfo,
) -> Result<Vec<SegmentObject>, BackupError> {
    let loc = SegmentLocation::of(seg);
    let missing = || BackupError::MissingLogId {
        segment_id: seg.segment_id,
    };
    let mut out = Vec::new();
    for field in &seg.binlogs {
        for log in &field.binlogs {
            let name = log.key_name().ok_or_else(missing)?;
            out.push(SegmentObject {
                source_key: log.log_path.clone(),
                backup_key: loc.insert_log_key(backup_dir, field.field_id, &name),
                size: log.log_size,
            });
        }
    }
    for field in &seg.deltalogs {
        for log in &field.binlogs {
            let name = log.key_name().ok_or_else(missing)?;
            out.push(SegmentObject {
                source_key: log.log_path.clone(),
                backup_key: loc.delta_log_key(backup_dir, &name),
                size: log.log_size,
            });
        }
    }
    Ok(out)
}

fn dir(parts: &[&str]) -> String {
    let mut d = join(parts);
    d.push('/');
    d
}

fn join_owned(parts: &[String]) -> String {
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    join(&refs)
}

fn dir_owned(parts: &[String]) -> String {
    let mut d = join_owned(parts);
    d.push('/');
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::meta::{Binlog, FieldBinlog};

    fn seg(coll: i64, part: i64, group: i64, id: i64) -> SegmentBackupInfo {
        SegmentBackupInfo {
            segment_id: id,
            collection_id: coll,
            partition_id: part,
            group_id: group,
            ..Default::default()
        }
    }

    #[test]
    fn meta_keys() {
        assert_eq!(
            meta_key("backup/b1", MetaFile::Full),
            "backup/b1/meta/full_meta.json"
        );
        assert_eq!(
            meta_key("", MetaFile::Backup),
            crate::storage::layout::BACKUP_META
        );
        assert_eq!(
            migrate_meta_key("backup/b1"),
            "backup/b1/meta/milvus_migrate.json"
        );
        assert_eq!(meta_dir("backup/b1"), "backup/b1/meta/");
    }

    #[test]
    fn grouped_segment_keys() {
        let loc = SegmentLocation::of(&seg(100, 101, 200, 200));
        assert_eq!(
            loc.insert_log_key("backup/b1", 101, "304"),
            "backup/b1/binlogs/insert_log/100/101/200/200/101/304"
        );
        assert_eq!(
            loc.insert_log_key("", 0, "301"),
            "binlogs/insert_log/100/101/200/200/0/301"
        );
        assert_eq!(
            loc.delta_log_key("backup/b1", "401"),
            "backup/b1/binlogs/delta_log/100/101/200/200/401"
        );
        assert_eq!(
            loc.insert_import_dir("backup/b1"),
            "backup/b1/binlogs/insert_log/100/101/200/"
        );
        assert_eq!(
            loc.delta_import_dir("backup/b1"),
            "backup/b1/binlogs/delta_log/100/101/200/"
        );
        assert_eq!(
            loc.l0_import_dir("backup/b1"),
            "backup/b1/binlogs/delta_log/100/101/200/"
        );
    }

    #[test]
    fn collection_wide_l0_has_no_group() {
        let loc = SegmentLocation::of(&seg(100, -1, 0, 500));
        assert_eq!(
            loc.delta_log_key("backup/b1", "501"),
            "backup/b1/binlogs/delta_log/100/-1/500/501"
        );
        assert_eq!(
            loc.l0_import_dir("backup/b1"),
            "backup/b1/binlogs/delta_log/100/-1/500/"
        );
        // Even if a writer gave it a group id, milvus-backup never puts a group under -1.
        let odd = SegmentLocation::of(&seg(100, -1, 7, 500));
        assert_eq!(
            odd.delta_log_key("", "501"),
            "binlogs/delta_log/100/-1/500/501"
        );
        assert_eq!(odd.l0_import_dir(""), "binlogs/delta_log/100/-1/500/");
    }

    #[test]
    fn groupless_and_small_group_layouts() {
        let old = SegmentLocation::of(&seg(1, 2, 0, 3));
        assert_eq!(old.group, None);
        assert_eq!(
            old.insert_log_key("", 100, "9"),
            "binlogs/insert_log/1/2/3/100/9"
        );
        assert_eq!(old.delta_log_key("", "9"), "binlogs/delta_log/1/2/3/9");
        assert_eq!(old.insert_import_dir("b"), "b/binlogs/insert_log/1/2/");
        assert_eq!(old.insert_import_dir("b"), partition_insert_dir("b", 1, 2));
        assert_eq!(old.delta_import_dir("b"), partition_delta_dir("b", 1, 2));
        // 0.4-era sequential groups bundling several segments.
        let grouped = SegmentLocation::of(&seg(1, 2, 5, 3));
        assert_eq!(
            grouped.insert_log_key("", 100, "9"),
            "binlogs/insert_log/1/2/5/3/100/9"
        );
        assert_eq!(grouped.insert_import_dir(""), "binlogs/insert_log/1/2/5/");
        assert_eq!(grouped.l0_import_dir(""), "binlogs/delta_log/1/2/5/3/");
    }

    #[test]
    fn collection_and_milvus_dirs() {
        assert_eq!(collection_insert_dir("r/n", 7), "r/n/binlogs/insert_log/7/");
        assert_eq!(collection_delta_dir("r/n", 7), "r/n/binlogs/delta_log/7/");
        assert_eq!(
            milvus_insert_log_dir("files", 1, 2, 3),
            "files/insert_log/1/2/3/"
        );
        assert_eq!(milvus_delta_log_dir("", 1, 2, 3), "delta_log/1/2/3/");
    }

    #[test]
    fn objects_of_a_segment_use_log_id_or_the_path_tail() {
        let mut s = seg(1, 2, 3, 3);
        s.binlogs = vec![FieldBinlog {
            field_id: 0,
            binlogs: vec![Binlog {
                log_path: "files/insert_log/1/2/3/0/11".into(),
                log_size: 5,
                log_id: 11,
                ..Default::default()
            }],
        }];
        // A 0.4 backup: no log_id.
        s.deltalogs = vec![FieldBinlog {
            field_id: 0,
            binlogs: vec![Binlog {
                log_path: "files/delta_log/1/2/3/12".into(),
                log_size: 6,
                ..Default::default()
            }],
        }];
        let objs = segment_objects("", &s).unwrap();
        assert_eq!(
            objs,
            vec![
                SegmentObject {
                    source_key: "files/insert_log/1/2/3/0/11".into(),
                    backup_key: "binlogs/insert_log/1/2/3/3/0/11".into(),
                    size: 5,
                },
                SegmentObject {
                    source_key: "files/delta_log/1/2/3/12".into(),
                    backup_key: "binlogs/delta_log/1/2/3/3/12".into(),
                    size: 6,
                },
            ]
        );
        s.deltalogs[0].binlogs[0].log_path.clear();
        assert!(matches!(
            segment_objects("", &s),
            Err(BackupError::MissingLogId { segment_id: 3 })
        ));
    }
}
