//! Tests of the meta model and the five-file split against fixtures in the shape milvus-backup
//! writes.
//!
//! `tests/fixtures/backup/docs_0901/meta/*.json` are the exact bytes Go's `encoding/json`
//! produced for a current (0.6-era, Milvus 2.6) backup: the tree was marshalled by Go structs
//! with milvus-backup's `backuppb` json tags and split as its create flow does. They exercise
//! HTML escaping, 64-bit ids, partition and collection-wide L0 segments, storage v2, functions,
//! struct arrays, etcd index extras, RBAC and FlushAll fields; `docs_0901/level_read.json` is
//! Go's rebuild of the tree from the four level files. `legacy_0430` is a milvus-backup
//! 0.4.30 backup of Milvus 2.3 (deprecated task fields, no `log_id`, `default_value_proto`,
//! `collection_meta.json` holding whole collections, an extra `channel_cp_meta.json`).

use serde_json::Value;

use super::*;

const DOCS_BACKUP: &str =
    include_str!("../../tests/fixtures/backup/docs_0901/meta/backup_meta.json");
const DOCS_COLLECTION: &str =
    include_str!("../../tests/fixtures/backup/docs_0901/meta/collection_meta.json");
const DOCS_PARTITION: &str =
    include_str!("../../tests/fixtures/backup/docs_0901/meta/partition_meta.json");
const DOCS_SEGMENT: &str =
    include_str!("../../tests/fixtures/backup/docs_0901/meta/segment_meta.json");
const DOCS_FULL: &str = include_str!("../../tests/fixtures/backup/docs_0901/meta/full_meta.json");

const LEGACY_BACKUP: &str =
    include_str!("../../tests/fixtures/backup/legacy_0430/meta/backup_meta.json");
const LEGACY_COLLECTION: &str =
    include_str!("../../tests/fixtures/backup/legacy_0430/meta/collection_meta.json");
const LEGACY_PARTITION: &str =
    include_str!("../../tests/fixtures/backup/legacy_0430/meta/partition_meta.json");
const LEGACY_SEGMENT: &str =
    include_str!("../../tests/fixtures/backup/legacy_0430/meta/segment_meta.json");
const LEGACY_FULL: &str =
    include_str!("../../tests/fixtures/backup/legacy_0430/meta/full_meta.json");

fn docs_file(file: MetaFile) -> &'static str {
    match file {
        MetaFile::Backup => DOCS_BACKUP,
        MetaFile::Collection => DOCS_COLLECTION,
        MetaFile::Partition => DOCS_PARTITION,
        MetaFile::Segment => DOCS_SEGMENT,
        MetaFile::Full => DOCS_FULL,
    }
}

fn legacy_file(file: MetaFile) -> &'static str {
    match file {
        MetaFile::Backup => LEGACY_BACKUP,
        MetaFile::Collection => LEGACY_COLLECTION,
        MetaFile::Partition => LEGACY_PARTITION,
        MetaFile::Segment => LEGACY_SEGMENT,
        MetaFile::Full => LEGACY_FULL,
    }
}

fn value(text: &[u8]) -> Value {
    serde_json::from_slice(text).unwrap()
}

/// Parses `text` as `T` and writes it back.
fn reencode<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) -> Vec<u8> {
    let parsed: T = serde_json::from_str(text).unwrap();
    encoding::to_go_json(&parsed).unwrap()
}

fn reencode_file(file: MetaFile, text: &str) -> Vec<u8> {
    match file {
        MetaFile::Backup | MetaFile::Full => reencode::<BackupInfo>(text),
        MetaFile::Collection => reencode::<CollectionLevel>(text),
        MetaFile::Partition => reencode::<PartitionLevel>(text),
        MetaFile::Segment => reencode::<SegmentLevel>(text),
    }
}

#[test]
fn current_files_round_trip_byte_for_byte() {
    for file in MetaFile::WRITE_ORDER {
        let text = docs_file(file);
        let out = reencode_file(file, text);
        assert_eq!(
            value(&out),
            value(text.as_bytes()),
            "{file:?}: value differs"
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            text,
            "{file:?}: bytes differ from Go's"
        );
    }
}

#[test]
fn legacy_files_round_trip_as_values() {
    for file in MetaFile::WRITE_ORDER {
        let text = legacy_file(file);
        let out = reencode_file(file, text);
        assert_eq!(value(&out), value(text.as_bytes()), "{file:?}");
    }
}

#[test]
fn write_files_reproduces_milvus_backup_files_in_order() {
    let info = BackupMeta::from_full(DOCS_FULL.as_bytes()).unwrap();
    let files = BackupMeta::write_files(&info).unwrap();
    let order: Vec<MetaFile> = files.iter().map(|(f, _)| *f).collect();
    assert_eq!(order, MetaFile::WRITE_ORDER);
    assert_eq!(order.last(), Some(&MetaFile::Full));
    for (file, bytes) in files {
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            docs_file(file),
            "{file:?} differs from milvus-backup's"
        );
    }
}

#[test]
fn large_ids_stay_exact_integers() {
    let info = BackupMeta::from_full(DOCS_FULL.as_bytes()).unwrap();
    let docs = &info.collection_backups[0];
    assert_eq!(docs.collection_id, 453_000_000_000_000_100);
    assert_eq!(docs.backup_timestamp, 452_912_345_678_901_249);
    let seg = &docs.partition_backups[0].segment_backups[0];
    assert_eq!(seg.segment_id, 453_000_000_000_000_200);
    assert_eq!(seg.binlogs[3].binlogs[0].log_id, 453_000_000_000_000_304);
    assert_eq!(docs.l0_segments[0].partition_id, ALL_PARTITIONS);

    let out = BackupMeta::write_files(&info).unwrap().pop().unwrap().1;
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""collection_id":453000000000000100,"#));
    assert!(text.contains(r#""backup_timestamp":452912345678901249,"#));
    let v = value(text.as_bytes());
    let id = &v["collection_backups"][0]["collection_id"];
    assert!(id.is_u64() && !id.is_f64());
}

#[test]
fn zero_values_are_omitted_except_where_go_keeps_them() {
    let v = value(DOCS_FULL.as_bytes());
    let docs = &v["collection_backups"][0];
    let seg = &docs["partition_backups"][0]["segment_backups"][0];
    // fieldID 0 (the RowID field) and the delta log's field id are absent.
    assert!(seg["binlogs"][0].get("fieldID").is_none());
    assert_eq!(seg["binlogs"][1]["fieldID"], 1);
    assert!(seg["deltalogs"][0].get("fieldID").is_none());
    // No storage_version on a v1 segment, but 2 on the v2 one.
    assert!(seg.get("storage_version").is_none());
    assert_eq!(
        docs["partition_backups"][1]["segment_backups"][0]["storage_version"],
        2
    );
    // Collection-wide L0: no group id.
    assert!(docs["l0_segments"][0].get("group_id").is_none());

    let orders = &v["collection_backups"][1];
    // Strong consistency (0), false booleans and empty lists are absent.
    assert!(orders.get("consistency_level").is_none());
    assert!(orders["schema"]["fields"][0].get("autoID").is_none());
    assert!(orders["schema"]["fields"][3].get("state").is_none());
    assert!(orders.get("index_infos").is_none());
    assert!(
        orders["partition_backups"][0]
            .get("segment_backups")
            .is_none()
    );
    // ... but `size`, `has_index` and `state_code` are always there.
    assert_eq!(orders["size"], 0);
    assert_eq!(orders["has_index"], false);
    assert_eq!(orders["partition_backups"][0]["size"], 0);
    assert_eq!(v["state_code"], 0);
    // A key/value pair with an empty value keeps only its key.
    assert_eq!(
        docs["schema"]["properties"][1],
        serde_json::json!({"key": "mmap.enabled"})
    );

    // The same holds for values built in Rust.
    let seg = SegmentBackupInfo::default();
    assert_eq!(encoding::to_go_json(&seg).unwrap(), br#"{"size":0}"#);
    let log = Binlog::default();
    assert_eq!(encoding::to_go_json(&log).unwrap(), br#"{"log_size":0}"#);
    let coll = CollectionBackupInfo::default();
    assert_eq!(
        encoding::to_go_json(&coll).unwrap(),
        br#"{"size":0,"has_index":false}"#
    );
    let info = BackupInfo::default();
    assert_eq!(
        encoding::to_go_json(&info).unwrap(),
        br#"{"state_code":0,"size":0}"#
    );
    assert_eq!(
        encoding::to_go_json(&FieldSchema::default()).unwrap(),
        b"{}"
    );
}

#[test]
fn level_files_rebuild_the_tree_like_milvus_backup() {
    let from_full = BackupMeta::from_full(DOCS_FULL.as_bytes()).unwrap();
    let from_levels = BackupMeta::read(|f| match f {
        MetaFile::Full => None,
        other => Some(docs_file(other).as_bytes().to_vec()),
    })
    .unwrap();

    // What milvus-backup's own level reader gives for a current backup: the top-level scalars
    // only, no collection-wide L0 segments, and sizes summed from partition segments.
    let mut expected = from_full.clone();
    expected.rbac_meta = None;
    expected.database_backups.clear();
    expected.flush_all_msgs_base64.clear();
    expected.control_channel_name.clear();
    expected.physical_channel_names.clear();
    let docs = &mut expected.collection_backups[0];
    docs.l0_segments.clear();
    docs.size = 49_892 + 40_000;
    expected.size = 49_892 + 40_000;
    assert_eq!(from_levels, expected);

    // And byte for byte what Go gives when it rebuilds the tree from these files the way
    // milvus-backup's level reader does (`level_read.json` was produced that way).
    let go = include_str!("../../tests/fixtures/backup/docs_0901/level_read.json");
    let ours = encoding::to_go_json(&from_levels).unwrap();
    assert_eq!(String::from_utf8(ours).unwrap(), go);
}

#[test]
fn legacy_level_files_rebuild_exactly_the_full_tree() {
    let full = BackupMeta::from_full(LEGACY_FULL.as_bytes()).unwrap();
    let levels = BackupMeta::from_levels(
        LEGACY_BACKUP.as_bytes(),
        Some(LEGACY_COLLECTION.as_bytes()),
        Some(LEGACY_PARTITION.as_bytes()),
        Some(LEGACY_SEGMENT.as_bytes()),
    )
    .unwrap();
    assert_eq!(levels, full);

    // Deprecated task fields of 0.4 are kept as unknown keys.
    assert_eq!(full.state_code, 2);
    assert_eq!(full.extra["progress"], 100);
    let books = &full.collection_backups[0];
    assert_eq!(books.extra["state_code"], 2);
    assert_eq!(books.consistency_level, ConsistencyLevel::SESSION);

    // Writing it back gives the 0.4 backup, partition and segment files again (0.4 put the
    // same scalars in backup_meta.json).
    let files = BackupMeta::write_files(&full).unwrap();
    for (file, bytes) in &files {
        if matches!(
            file,
            MetaFile::Backup | MetaFile::Partition | MetaFile::Segment | MetaFile::Full
        ) {
            assert_eq!(
                value(bytes),
                value(legacy_file(*file).as_bytes()),
                "{file:?}"
            );
        }
    }
}

#[test]
fn legacy_specifics_are_understood() {
    let info = BackupMeta::from_full(LEGACY_FULL.as_bytes()).unwrap();
    let books = &info.collection_backups[0];
    let field = &books.schema.as_ref().unwrap().fields[1];
    // default_value_proto: protobuf ValueField{long_data: 7} as a string.
    assert_eq!(field.default_value_bytes().unwrap(), Some(vec![0x18, 0x07]));
    let part = &books.partition_backups[0];
    assert!(!part.is_groupless());
    let seg = &part.segment_backups[0];
    assert_eq!(seg.group(), Some(seg.segment_id));
    assert_eq!(seg.logs_size(), seg.size);
    // No log_id in 0.4: keys come from the path.
    let objs = segment_objects("backup/legacy_0430", seg).unwrap();
    assert_eq!(objs.len(), 6);
    assert_eq!(
        objs[0].backup_key,
        "backup/legacy_0430/binlogs/insert_log/445000000000000010/445000000000000011/\
         445000000000000100/445000000000000100/0/445000000000000201"
    );
    assert_eq!(
        objs[5].backup_key,
        "backup/legacy_0430/binlogs/delta_log/445000000000000010/445000000000000011/\
         445000000000000100/445000000000000100/445000000000000301"
    );
    assert_eq!(
        objs[5].source_key,
        "files/delta_log/445000000000000010/445000000000000011/445000000000000100/445000000000000301"
    );
}

#[test]
fn current_specifics_are_understood() {
    let info = BackupMeta::from_full(DOCS_FULL.as_bytes()).unwrap();
    assert_eq!(info.format().unwrap(), BackupFormat::Binlog);
    let docs = &info.collection_backups[0];
    let schema = docs.schema.as_ref().unwrap();
    assert_eq!(schema.description, "news <b>docs</b> & more");
    let score = &schema.fields[5];
    assert_eq!(score.data_type, DataType::FLOAT);
    // ValueField{float_data: 1.0}
    assert_eq!(
        score.default_value_bytes().unwrap(),
        Some(vec![0x25, 0x00, 0x00, 0x80, 0x3f])
    );
    assert_eq!(schema.fields[1].type_param("dim"), Some("8"));
    assert_eq!(schema.functions[0].function_type, FunctionType::BM25);
    assert_eq!(
        schema.struct_array_fields[0].fields[0].element_type,
        DataType::FLOAT_VECTOR
    );
    assert_eq!(docs.segments().count(), 4);
    assert_eq!(info.segments().count(), 4);
    let l0 = &docs.l0_segments[0];
    assert!(l0.is_collection_wide() && l0.group().is_none());
    assert_eq!(
        SegmentLocation::of(l0).l0_import_dir(""),
        "binlogs/delta_log/453000000000000100/-1/453000000000000230/"
    );
    for seg in docs.segments() {
        assert_eq!(seg.logs_size(), seg.size, "segment {}", seg.segment_id);
    }
    // The fixture's sizes follow milvus-backup's create rule.
    let mut recomputed = info.clone();
    recomputed.recompute_sizes();
    assert_eq!(recomputed, info);
}

#[test]
fn unknown_keys_survive_read_modify_write() {
    let mut v = value(DOCS_FULL.as_bytes());
    v["future_top"] = serde_json::json!({"a": [1, 2]});
    v["collection_backups"][0]["future_coll"] = serde_json::json!("x");
    v["collection_backups"][0]["partition_backups"][0]["segment_backups"][0]["future_seg"] =
        serde_json::json!(18446744073709551615u64);
    v["collection_backups"][0]["schema"]["fields"][0]["future_field"] = serde_json::json!(true);
    let text = serde_json::to_vec(&v).unwrap();
    let mut info = BackupMeta::from_full(&text).unwrap();
    info.collection_backups[0].load_state = "NotLoad".into();
    let out = BackupMeta::write_files(&info).unwrap().pop().unwrap().1;
    let mut expected = v.clone();
    expected["collection_backups"][0]["load_state"] = "NotLoad".into();
    assert_eq!(value(&out), expected);
}

#[test]
fn corrupt_and_missing_files_are_named() {
    let err = BackupMeta::read(|f| match f {
        MetaFile::Full => Some(b"{\"id\":\"x\",\n \"size\": \"big\"}".to_vec()),
        _ => None,
    })
    .unwrap_err();
    match &err {
        BackupError::Parse {
            file, line, column, ..
        } => {
            assert_eq!(*file, "full_meta.json");
            assert_eq!(*line, 2);
            assert!(*column > 0);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.starts_with("meta/full_meta.json:2:"), "{text}");
    assert!(!text.contains(" at line "), "{text}");

    let err = BackupMeta::read(|f| match f {
        MetaFile::Full => None,
        MetaFile::Segment => Some(b"{\"infos\":[{\"segment_id\":1}".to_vec()),
        other => Some(docs_file(other).as_bytes().to_vec()),
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::Parse {
                file: "segment_meta.json",
                ..
            }
        ),
        "{err:?}"
    );

    let err = BackupMeta::read(|_| None).unwrap_err();
    assert!(matches!(
        err,
        BackupError::MissingFile {
            file: "backup_meta.json"
        }
    ));
    assert_eq!(err.to_string(), "meta/backup_meta.json is missing");

    let err = BackupMeta::read(|f| match f {
        MetaFile::Full | MetaFile::Segment => None,
        other => Some(docs_file(other).as_bytes().to_vec()),
    })
    .unwrap_err();
    assert!(matches!(
        err,
        BackupError::MissingFile {
            file: "segment_meta.json"
        }
    ));

    let err = BackupMeta::from_full(b"").unwrap_err();
    assert!(matches!(
        err,
        BackupError::Parse {
            file: "full_meta.json",
            ..
        }
    ));
}

#[test]
fn formats_are_checked() {
    let with_format = |f: &str| format!(r#"{{"state_code":0,"name":"b","size":0,"format":"{f}"}}"#);

    let info = BackupMeta::from_full(with_format("binlog").as_bytes()).unwrap();
    assert_eq!(info.format().unwrap(), BackupFormat::Binlog);
    info.require_binlog_format().unwrap();

    let err = BackupMeta::from_full(with_format("parquet").as_bytes()).unwrap_err();
    assert!(matches!(&err, BackupError::UnknownFormat { format, .. } if format == "parquet"));

    let snap = BackupMeta::from_full(with_format("snapshot").as_bytes()).unwrap();
    assert_eq!(snap.format().unwrap(), BackupFormat::Snapshot);
    let refusal = snap.require_binlog_format().unwrap_err();
    assert!(matches!(refusal, BackupError::SnapshotFormat { .. }));
    // The refusal says what to do instead.
    let text = refusal.to_string();
    for part in [
        "snapshot format",
        "--format binlog",
        "milvus-migrate create",
        "3.0.1",
    ] {
        assert!(text.contains(part), "missing {part:?} in {text}");
    }
    // Snapshot backups have no partition or segment file, written or read.
    let files = BackupMeta::write_files(&snap).unwrap();
    let names: Vec<_> = files.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        names,
        [MetaFile::Backup, MetaFile::Collection, MetaFile::Full]
    );
    let back = BackupMeta::from_levels(&files[0].1, Some(&files[1].1), None, None).unwrap();
    assert_eq!(back, snap);
    let mut bundle = snap.clone();
    bundle.size = 1234;
    bundle.collection_backups = vec![CollectionBackupInfo {
        collection_name: "c".into(),
        size: 1234,
        snapshot_backup: Some(SnapshotBackupInfo {
            metadata_path: "bundle/1/metadata/2.json".into(),
            total_files: 3,
            total_bytes: 1234,
        }),
        ..Default::default()
    }];
    let files = BackupMeta::write_files(&bundle).unwrap();
    let back = BackupMeta::from_levels(&files[0].1, Some(&files[1].1), None, None).unwrap();
    assert_eq!(back, bundle);
    // A binlog backup needs them.
    assert!(matches!(
        BackupMeta::from_levels(
            DOCS_BACKUP.as_bytes(),
            Some(DOCS_COLLECTION.as_bytes()),
            None,
            None
        ),
        Err(BackupError::MissingFile {
            file: "partition_meta.json"
        })
    ));
}

#[test]
fn groupless_partitions_are_detected() {
    let seg = |group_id, is_l0| SegmentBackupInfo {
        group_id,
        is_l0,
        ..Default::default()
    };
    let part = |segs: Vec<SegmentBackupInfo>| PartitionBackupInfo {
        segment_backups: segs,
        ..Default::default()
    };
    assert!(part(vec![seg(0, false), seg(0, false)]).is_groupless());
    assert!(part(vec![seg(0, false), seg(9, true)]).is_groupless());
    assert!(!part(vec![seg(0, false), seg(5, false)]).is_groupless());
    assert!(!part(vec![seg(9, true)]).is_groupless());
    assert!(!part(vec![]).is_groupless());
}

#[test]
fn default_values_are_base64() {
    let mut f = FieldSchema {
        name: "n".into(),
        default_value_proto: "junk".into(),
        ..Default::default()
    };
    f.set_default_value_bytes(Some(&[0x18, 0x2a]));
    assert_eq!(f.default_value_base64, "GCo=");
    assert!(f.default_value_proto.is_empty());
    assert_eq!(f.default_value_bytes().unwrap(), Some(vec![0x18, 0x2a]));
    f.default_value_base64 = "not base64!".into();
    assert!(matches!(
        f.default_value_bytes(),
        Err(BackupError::InvalidDefaultValue { .. })
    ));
    f.set_default_value_bytes(None);
    assert_eq!(f.default_value_bytes().unwrap(), None);
}

#[test]
fn rbac_is_typed_and_passwords_stay_out_of_debug() {
    let info = BackupMeta::from_full(DOCS_FULL.as_bytes()).unwrap();
    let rbac = info.rbac_meta.as_ref().unwrap();
    assert_eq!(rbac.users[0].user, "alice");
    let grant = &rbac.grants[0];
    assert_eq!(grant.object.as_ref().unwrap().name, "Collection");
    assert_eq!(
        grant
            .grantor
            .as_ref()
            .unwrap()
            .privilege
            .as_ref()
            .unwrap()
            .name,
        "Query"
    );
    let user = UserInfo {
        user: "bob".into(),
        password: "c2VjcmV0".into(),
        roles: vec![],
    };
    let shown = format!("{user:?}");
    assert!(
        shown.contains("bob") && !shown.contains("c2VjcmV0"),
        "{shown}"
    );
}
