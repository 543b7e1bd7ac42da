//! The milvus-backup backup format: meta JSON types, the five meta files, object-key layout,
//! and milvus-migrate's own side file.
//!
//! Owns: the serde model ([`meta`]) with Go `encoding/json`'s exact keys, omissions and integer
//! handling; splitting a [`BackupInfo`] into the files milvus-backup writes
//! ([`BackupMeta::write_files`]) and putting it back together from them ([`BackupMeta::read`]);
//! format checks; backup keys ([`layout`]); and `meta/milvus_migrate.json` ([`MigrateMeta`]).
//! Does not own any I/O: callers fetch and store the bytes over whatever store they have, so the
//! same code serves the local, S3, GCS and Azure backends and the tests.
//!
//! What milvus-backup does, and this module mirrors (milvus-backup `core/backup/meta_builder.go`,
//! `core/backup/task.go` `writeMeta`, `internal/meta/meta.go`):
//! - Files are compact `json.Marshal` output, written `backup_meta`, `collection_meta`,
//!   `partition_meta`, `segment_meta`, `full_meta` — the last one last, so a reader that finds it
//!   finds a complete backup. Snapshot-format backups have no partition or segment file.
//! - Readers use `full_meta.json` when it exists, else rebuild the tree from the level files:
//!   partitions from `partition_meta.json` (replacing whatever `collection_meta.json` lists),
//!   segments from `segment_meta.json` matched on (collection id, partition id), and every size
//!   recomputed as the sum below it. Collection-wide L0 segments survive only if
//!   `collection_meta.json` carries them (milvus-backup up to 0.5.9 did; current milvus-backup
//!   does not, so a level-only read of a current backup has none).

pub mod encoding;
pub mod error;
pub mod layout;
pub mod meta;
pub mod migrate_meta;

use std::collections::HashMap;

use serde::de::DeserializeOwned;

pub use error::BackupError;
pub use layout::{SegmentLocation, SegmentObject, segment_objects};
pub use meta::{
    ALL_PARTITIONS, BackupFormat, BackupInfo, Binlog, CollectionBackupInfo, CollectionLevel,
    CollectionSchema, ConsistencyLevel, DataType, DatabaseBackupInfo, Entity, FieldBinlog,
    FieldSchema, FieldState, FunctionSchema, FunctionType, GrantEntity, GrantorEntity, IndexInfo,
    KeyValuePair, PartitionBackupInfo, PartitionLevel, PrivilegeGroupInfo, RbacMeta,
    RpcChannelInfo, SegmentBackupInfo, SegmentLevel, SnapshotBackupInfo, StructArrayFieldSchema,
    UserInfo,
};
pub use migrate_meta::{
    CollectionReplicas, CollectionRows, MIGRATE_META_FILE, MigrateMeta, ObjectDigest,
};

/// One of milvus-backup's meta files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaFile {
    /// `backup_meta.json`: the top-level scalars. Its presence makes a directory a backup.
    Backup,
    /// `collection_meta.json`: collections with partitions, no segments.
    Collection,
    /// `partition_meta.json`: partitions, no segments.
    Partition,
    /// `segment_meta.json`: segments of all partitions.
    Segment,
    /// `full_meta.json`: the whole tree.
    Full,
}

impl MetaFile {
    /// All five, in the order milvus-backup writes them (`full_meta.json` last).
    pub const WRITE_ORDER: [MetaFile; 5] = [
        MetaFile::Backup,
        MetaFile::Collection,
        MetaFile::Partition,
        MetaFile::Segment,
        MetaFile::Full,
    ];

    /// The file name inside `meta/`.
    pub fn file_name(self) -> &'static str {
        match self {
            MetaFile::Backup => "backup_meta.json",
            MetaFile::Collection => "collection_meta.json",
            MetaFile::Partition => "partition_meta.json",
            MetaFile::Segment => "segment_meta.json",
            MetaFile::Full => "full_meta.json",
        }
    }
}

/// Reading and writing the meta files of a backup. Pure: bytes in, bytes out.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackupMeta;

impl BackupMeta {
    /// The meta files for `info`, as milvus-backup's create writes them, in the order they must
    /// be written (store them one after the other, `full_meta.json` last).
    ///
    /// - `backup_meta.json`: `id`, `state_code`, `name`, `backup_timestamp`, `size`,
    ///   `milvus_version`, `format`, plus unmodelled top-level scalars read from an older backup
    ///   (`errorMessage`, `start_time`, ... of 0.4/0.5, which milvus-backup 0.4 put there too).
    /// - `collection_meta.json`: `{"infos":[...]}` with each collection's partitions stripped of
    ///   their segments and the collection's `l0_segments` removed.
    /// - `partition_meta.json`: `{"infos":[...]}`, partitions without segments.
    /// - `segment_meta.json`: `{"infos":[...]}`, the segments of all partitions in order.
    /// - `full_meta.json`: `info` as it is.
    ///
    /// Sizes are written as they are in `info`; see [`BackupInfo::recompute_sizes`].
    /// A snapshot-format backup gets no partition and segment files, like milvus-backup's.
    ///
    /// # Errors
    /// [`BackupError::Encode`] (not expected: every type here encodes).
    pub fn write_files(info: &BackupInfo) -> Result<Vec<(MetaFile, Vec<u8>)>, BackupError> {
        let snapshot = info.format == meta::FORMAT_SNAPSHOT;
        let mut out = Vec::with_capacity(5);
        for file in MetaFile::WRITE_ORDER {
            let bytes = match file {
                MetaFile::Backup => encode(file, &backup_level(info)),
                MetaFile::Collection => encode(file, &collection_level(info)),
                MetaFile::Partition if snapshot => continue,
                MetaFile::Partition => encode(file, &partition_level(info)),
                MetaFile::Segment if snapshot => continue,
                MetaFile::Segment => encode(file, &segment_level(info)),
                MetaFile::Full => encode(file, info),
            }?;
            out.push((file, bytes));
        }
        Ok(out)
    }

    /// Reads a backup's meta through `get`, which returns a file's bytes or `None` if the file
    /// does not exist: `full_meta.json` if there is one, else the four level files. The format
    /// is checked ([`BackupInfo::format`]).
    ///
    /// For an async store, fetch `full_meta.json` first and call [`BackupMeta::from_full`];
    /// only if it is missing fetch the others and call [`BackupMeta::from_levels`].
    ///
    /// # Errors
    /// [`BackupError::MissingFile`] when neither `full_meta.json` nor a needed level file
    /// exists, [`BackupError::Parse`] naming the first file that does not parse, and
    /// [`BackupError::UnknownFormat`].
    pub fn read(
        mut get: impl FnMut(MetaFile) -> Option<Vec<u8>>,
    ) -> Result<BackupInfo, BackupError> {
        if let Some(full) = get(MetaFile::Full) {
            return Self::from_full(&full);
        }
        let backup = get(MetaFile::Backup).ok_or(BackupError::MissingFile {
            file: MetaFile::Backup.file_name(),
        })?;
        let collection = get(MetaFile::Collection);
        let partition = get(MetaFile::Partition);
        let segment = get(MetaFile::Segment);
        Self::from_levels(
            &backup,
            collection.as_deref(),
            partition.as_deref(),
            segment.as_deref(),
        )
    }

    /// Parses `full_meta.json` and checks the format.
    ///
    /// # Errors
    /// [`BackupError::Parse`], [`BackupError::UnknownFormat`].
    pub fn from_full(bytes: &[u8]) -> Result<BackupInfo, BackupError> {
        let info: BackupInfo = decode(MetaFile::Full, bytes)?;
        info.format()?;
        Ok(info)
    }

    /// Rebuilds the tree from the level files, as milvus-backup does when `full_meta.json` is
    /// missing: partitions come from `partition_meta.json`, segments from `segment_meta.json`,
    /// and partition, collection and backup sizes are recomputed (collection-wide L0 sizes are
    /// not counted, as in milvus-backup). `None` = the file does not exist; the partition and
    /// segment files may be missing only for a snapshot-format backup, whose collections are
    /// then taken as `collection_meta.json` has them.
    ///
    /// # Errors
    /// [`BackupError::MissingFile`], [`BackupError::Parse`], [`BackupError::UnknownFormat`].
    pub fn from_levels(
        backup: &[u8],
        collection: Option<&[u8]>,
        partition: Option<&[u8]>,
        segment: Option<&[u8]>,
    ) -> Result<BackupInfo, BackupError> {
        let mut info: BackupInfo = decode(MetaFile::Backup, backup)?;
        let format = info.format()?;
        let collections: CollectionLevel = decode(
            MetaFile::Collection,
            required(MetaFile::Collection, collection)?,
        )?;
        if let (BackupFormat::Snapshot, None, None) = (format, partition, segment) {
            // No segments to sum: the collections are complete as written (their size is the
            // bundle's), and so is the backup's size.
            info.collection_backups = collections.infos;
            return Ok(info);
        }
        let partitions: PartitionLevel = decode(
            MetaFile::Partition,
            required(MetaFile::Partition, partition)?,
        )?;
        let segments: SegmentLevel =
            decode(MetaFile::Segment, required(MetaFile::Segment, segment)?)?;
        level_to_tree(&mut info, collections, partitions, segments);
        Ok(info)
    }
}

/// `backup_meta.json`'s content: the scalars of `info`.
fn backup_level(info: &BackupInfo) -> BackupInfo {
    BackupInfo {
        id: info.id.clone(),
        state_code: info.state_code,
        name: info.name.clone(),
        backup_timestamp: info.backup_timestamp,
        size: info.size,
        milvus_version: info.milvus_version.clone(),
        format: info.format.clone(),
        extra: info
            .extra
            .iter()
            .filter(|(_, v)| !(v.is_object() || v.is_array()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

/// `p` without its segments (the exhaustive pattern makes a new field a compile error here).
fn strip_partition(p: &PartitionBackupInfo) -> PartitionBackupInfo {
    let PartitionBackupInfo {
        partition_id,
        partition_name,
        collection_id,
        segment_backups: _,
        size,
        load_state,
        extra,
    } = p;
    PartitionBackupInfo {
        partition_id: *partition_id,
        partition_name: partition_name.clone(),
        collection_id: *collection_id,
        segment_backups: Vec::new(),
        size: *size,
        load_state: load_state.clone(),
        extra: extra.clone(),
    }
}

/// `c` with its partitions stripped of segments and without L0 segments, cloned without
/// copying any segment (the exhaustive pattern makes a new field a compile error here).
fn strip_collection(c: &CollectionBackupInfo) -> CollectionBackupInfo {
    let CollectionBackupInfo {
        id,
        collection_id,
        db_name,
        collection_name,
        schema,
        shards_num,
        consistency_level,
        partition_backups,
        backup_timestamp,
        size,
        has_index,
        index_infos,
        load_state,
        backup_physical_timestamp,
        channel_checkpoints,
        l0_segments: _,
        properties,
        db_id,
        created_timestamp,
        virtual_channel_names,
        physical_channel_names,
        aliases,
        snapshot_backup,
        extra,
    } = c;
    CollectionBackupInfo {
        id: id.clone(),
        collection_id: *collection_id,
        db_name: db_name.clone(),
        collection_name: collection_name.clone(),
        schema: schema.clone(),
        shards_num: *shards_num,
        consistency_level: *consistency_level,
        partition_backups: partition_backups.iter().map(strip_partition).collect(),
        backup_timestamp: *backup_timestamp,
        size: *size,
        has_index: *has_index,
        index_infos: index_infos.clone(),
        load_state: load_state.clone(),
        backup_physical_timestamp: *backup_physical_timestamp,
        channel_checkpoints: channel_checkpoints.clone(),
        l0_segments: Vec::new(),
        properties: properties.clone(),
        db_id: *db_id,
        created_timestamp: *created_timestamp,
        virtual_channel_names: virtual_channel_names.clone(),
        physical_channel_names: physical_channel_names.clone(),
        aliases: aliases.clone(),
        snapshot_backup: snapshot_backup.clone(),
        extra: extra.clone(),
    }
}

fn collection_level(info: &BackupInfo) -> CollectionLevel {
    CollectionLevel {
        infos: info
            .collection_backups
            .iter()
            .map(strip_collection)
            .collect(),
    }
}

fn partition_level(info: &BackupInfo) -> PartitionLevel {
    PartitionLevel {
        infos: info
            .collection_backups
            .iter()
            .flat_map(|c| c.partition_backups.iter().map(strip_partition))
            .collect(),
    }
}

fn segment_level(info: &BackupInfo) -> SegmentLevel {
    SegmentLevel {
        infos: info
            .collection_backups
            .iter()
            .flat_map(|c| c.partition_backups.iter())
            .flat_map(|p| p.segment_backups.iter().cloned())
            .collect(),
    }
}

fn level_to_tree(
    info: &mut BackupInfo,
    collections: CollectionLevel,
    partitions: PartitionLevel,
    segments: SegmentLevel,
) {
    let mut segs_by_part: HashMap<(i64, i64), Vec<SegmentBackupInfo>> = HashMap::new();
    for seg in segments.infos {
        segs_by_part
            .entry((seg.collection_id, seg.partition_id))
            .or_default()
            .push(seg);
    }
    let mut parts_by_coll: HashMap<i64, Vec<PartitionBackupInfo>> = HashMap::new();
    for mut part in partitions.infos {
        part.segment_backups = segs_by_part
            .remove(&(part.collection_id, part.partition_id))
            .unwrap_or_default();
        part.size = part.segment_backups.iter().map(|s| s.size).sum();
        parts_by_coll
            .entry(part.collection_id)
            .or_default()
            .push(part);
    }
    let mut total = 0;
    let mut colls = collections.infos;
    for coll in &mut colls {
        coll.partition_backups = parts_by_coll
            .remove(&coll.collection_id)
            .unwrap_or_default();
        coll.size = coll.partition_backups.iter().map(|p| p.size).sum();
        total += coll.size;
    }
    info.size = total;
    info.collection_backups = colls;
}

fn required(file: MetaFile, bytes: Option<&[u8]>) -> Result<&[u8], BackupError> {
    bytes.ok_or(BackupError::MissingFile {
        file: file.file_name(),
    })
}

fn encode<T: serde::Serialize>(file: MetaFile, value: &T) -> Result<Vec<u8>, BackupError> {
    encoding::to_go_json(value).map_err(|source| BackupError::Encode {
        file: file.file_name(),
        source,
    })
}

fn decode<T: DeserializeOwned>(file: MetaFile, bytes: &[u8]) -> Result<T, BackupError> {
    serde_json::from_slice(bytes).map_err(|e| BackupError::parse(file.file_name(), &e))
}

#[cfg(test)]
mod tests;
