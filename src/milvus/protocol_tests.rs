//! Tests of the version decisions against `tests/fixtures/versions/*.json`: `full_meta.json`
//! files in the shape milvus-backup writes for backups of Milvus 2.4.13, 2.5.10, 2.6.5 and 3.0.1
//! (keys, order and omission rules of its `backuppb` JSON tags; 64-bit ids and enums as JSON
//! numbers; default values as `default_value_base64`). They are hand-made in that shape, not
//! the output of a real server: no Milvus newer than 2.3 runs here.

use super::*;
use crate::backup::{BackupFormat, BackupInfo, BackupMeta, MetaFile};

const V24: &str = include_str!("../../tests/fixtures/versions/v2.4.13.json");
const V25: &str = include_str!("../../tests/fixtures/versions/v2.5.10.json");
const V26: &str = include_str!("../../tests/fixtures/versions/v2.6.5.json");
const V30: &str = include_str!("../../tests/fixtures/versions/v3.0.1.json");
const V30_SNAPSHOT: &str = include_str!("../../tests/fixtures/versions/v3.0.1-snapshot.json");

fn load(text: &str) -> BackupInfo {
    BackupMeta::from_full(text.as_bytes()).unwrap()
}

fn coll<'a>(info: &'a BackupInfo, name: &str) -> &'a CollectionBackupInfo {
    info.collection_backups
        .iter()
        .find(|c| c.collection_name == name)
        .unwrap()
}

fn v(raw: &str) -> ServerVersion {
    ServerVersion::parse(raw)
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn fixtures_are_in_the_shape_milvus_backup_writes() {
    // Our meta model writes milvus-backup's bytes (see backup/tests.rs); the fixtures survive
    // it unchanged, so they use its keys, order and omissions.
    for text in [V24, V25, V26, V30, V30_SNAPSHOT] {
        let info = load(text);
        let files = BackupMeta::write_files(&info).unwrap();
        let (_, full) = files.iter().find(|(f, _)| *f == MetaFile::Full).unwrap();
        assert_eq!(String::from_utf8_lossy(full), text);
    }
    assert_eq!(load(V30_SNAPSHOT).format().unwrap(), BackupFormat::Snapshot);
    assert!(matches!(
        load(V30_SNAPSHOT).require_binlog_format(),
        Err(BackupError::SnapshotFormat { .. })
    ));
    assert_eq!(load(V30).format().unwrap(), BackupFormat::Binlog);
}

#[test]
fn each_collection_goes_only_where_its_features_exist() {
    let (v24, v25, v26, v30) = (load(V24), load(V25), load(V26), load(V30));
    let cases: Vec<(&CollectionBackupInfo, &str, bool)> = vec![
        // 2.4: Float16 vector (2.4.0) and L0 segments (2.4.5).
        (coll(&v24, "v24"), "v2.3.5", false),
        (coll(&v24, "v24"), "v2.4.4", false),
        (coll(&v24, "v24"), "v2.4.5", true),
        // 2.5: BM25, nullable, Geometry (2.5.0).
        (coll(&v25, "v25"), "v2.4.13", false),
        (coll(&v25, "v25"), "v2.5.0", true),
        // 2.6: storage v2, Int8Vector (2.6.0), Timestamptz (2.6.1), added field.
        (coll(&v26, "items"), "v2.5.10", false),
        (coll(&v26, "items"), "v2.6.0", false),
        (coll(&v26, "items"), "v2.6.1", true),
        (coll(&v26, "clips"), "v2.5.10", false),
        (coll(&v26, "clips"), "v2.6.0", true),
        // 3.0 binlog: storage v2 only needs 2.6; storage v3 goes nowhere.
        (coll(&v30, "docs30"), "v2.6.0", true),
        (coll(&v30, "loon"), "v3.0.1", false),
        (coll(&v30, "loon"), "master-20260101-abc", false),
        // An unknown version counts as newest.
        (coll(&v26, "items"), "master-20260101-abc", true),
    ];
    for (c, target, ok) in cases {
        let got = restorable(c, &v(target));
        assert_eq!(
            got.is_ok(),
            ok,
            "{} into {target}: {got:?}",
            c.collection_name
        );
    }
}

#[test]
fn refusals_name_every_missing_feature_and_the_release_to_use() {
    let v26 = load(V26);
    let e = restorable(coll(&v26, "items"), &v("v2.5.10")).unwrap_err();
    for part in [
        "storage format v2 (2.6.0+)",
        "field `emb` of type Int8Vector (2.6.0+)",
        "field `at` of type Timestamptz (2.6.1+)",
        "field `rating` added after the collection was created",
        "restore into Milvus 2.6.1 or later",
        "v2.5.10",
    ] {
        assert!(e.contains(part), "missing {part:?} in {e}");
    }
    // Only what is missing is named: 2.5.10 imports L0 segments and has nullable fields.
    assert!(
        !e.contains("L0 delete segment") && !e.contains("nullable"),
        "{e}"
    );
    let e = restorable(coll(&v26, "items"), &v("v2.6.0")).unwrap_err();
    assert!(
        !e.contains("Int8Vector") && e.contains("Timestamptz"),
        "{e}"
    );

    // A nullable struct array (3.0; only milvus-migrate's create records it).
    let mut nullable = coll(&v26, "clips").clone();
    let st = &mut nullable.schema.as_mut().unwrap().struct_array_fields[0];
    st.extra
        .insert("nullable".into(), serde_json::Value::Bool(true));
    assert!(restorable(&nullable, &v("v3.0.1")).is_ok());
    let e = restorable(&nullable, &v("v2.6.5")).unwrap_err();
    assert!(
        e.contains("nullable struct array field `clips` (3.0.0+)"),
        "{e}"
    );
    let clips = restorable(coll(&v26, "clips"), &v("v2.5.10")).unwrap_err();
    for part in [
        "struct array field `clips`",
        "field `clip_emb` of type ArrayOfVector",
    ] {
        assert!(clips.contains(part), "missing {part:?} in {clips}");
    }

    let v30 = load(V30);
    let e = restorable(coll(&v30, "loon"), &v("v3.0.1")).unwrap_err();
    assert!(
        e.contains("storage format v3") && e.contains("useLoonFFI"),
        "{e}"
    );
}

#[test]
fn requirements_come_from_schema_and_segments_not_from_the_recorded_version() {
    // The 2.5 backup's needs, though it says nothing of the version it came from.
    let mut v25 = load(V25);
    v25.milvus_version.clear();
    let reqs = requirements(coll(&v25, "v25"));
    let got: Vec<((u32, u32, u32), &str)> =
        reqs.iter().map(|r| (r.since, r.what.as_str())).collect();
    assert_eq!(
        got,
        [
            ((2, 4, 0), "field `sparse` of type SparseFloatVector"),
            ((2, 5, 0), "nullable field `score`"),
            ((2, 5, 0), "field `shape` of type Geometry"),
            ((2, 5, 0), "function `text_bm25`"),
        ]
    );
    // A clustering key recorded by milvus-migrate's own create (milvus-backup drops it).
    let mut v24 = load(V24);
    let c = &mut v24.collection_backups[0];
    assert!(
        !requirements(c)
            .iter()
            .any(|r| r.what.contains("clustering"))
    );
    c.schema.as_mut().unwrap().fields[2]
        .extra
        .insert("is_clustering_key".into(), serde_json::Value::Bool(true));
    assert!(requirements(c).contains(&Requirement {
        since: (2, 4, 0),
        what: "clustering key `tag`".into()
    }));
    // A Milvus 2.3 collection needs nothing.
    let mut plain = c.clone();
    plain.schema.as_mut().unwrap().fields.truncate(1);
    for p in &mut plain.partition_backups {
        p.segment_backups.retain(|s| !s.is_l0);
    }
    plain.l0_segments.clear();
    assert_eq!(requirements(&plain), []);
    assert!(restorable(&plain, &v("v2.3.5")).is_ok());
}

#[test]
fn import_options_follow_milvus_backup_per_segment_and_version() {
    let (v24, v26) = (load(V24), load(V26));
    let c24 = coll(&v24, "v24");
    let data = &c24.partition_backups[0].segment_backups[0];
    let l0 = &c24.partition_backups[0].segment_backups[1];
    let wide = &c24.l0_segments[0];
    assert!(!data.is_l0 && l0.is_l0 && wide.is_l0);
    // Milvus 2.3 (the CI servers): `backup` only, as before.
    assert_eq!(
        import_options(&v("v2.3.5"), data),
        pairs(&[("backup", "true")])
    );
    assert_eq!(
        import_options(&v("v2.4.13"), data),
        pairs(&[("backup", "true"), ("skip_disk_quota_check", "true")])
    );
    for s in [l0, wide] {
        assert_eq!(
            import_options(&v("v2.4.13"), s),
            pairs(&[("l0_import", "true"), ("skip_disk_quota_check", "true")])
        );
    }
    let items = coll(&v26, "items");
    let data2 = &items.partition_backups[0].segment_backups[0];
    let l0_2 = &items.partition_backups[0].segment_backups[1];
    assert_eq!(
        import_options(&v("v2.6.5"), data2),
        pairs(&[
            ("backup", "true"),
            ("skip_disk_quota_check", "true"),
            ("storage_version", "2")
        ])
    );
    assert_eq!(
        import_options(&v("v2.6.5"), l0_2),
        pairs(&[
            ("l0_import", "true"),
            ("skip_disk_quota_check", "true"),
            ("storage_version", "2")
        ])
    );
}

#[test]
fn the_idempotency_key_is_sent_only_where_the_server_honours_it() {
    for (target, sent) in [
        ("v2.3.5", false),
        ("v2.5.10", false),
        ("v2.6.23", false),
        ("v2.6.24", true),
        ("v3.0.0", false),
        ("v3.0.1", false),
        ("v3.0.2", true),
        ("v3.1.0", true),
        ("master-20260101-abc", true),
    ] {
        let key = import_idempotency_key(&v(target), 7, 3, Some(9));
        assert_eq!(key.is_some(), sent, "{target}: {key:?}");
    }
    let t = v("v2.6.24");
    let key = |c, p, s| import_idempotency_key(&t, c, p, s).unwrap();
    // A retry of the same job gets the same key; any other job, another one.
    assert_eq!(key(7, 3, Some(9)), key(7, 3, Some(9)));
    let all = [
        key(7, 3, Some(9)),
        key(7, 3, Some(10)),
        key(7, 4, Some(9)),
        key(8, 3, Some(9)),
        key(7, 3, None),
        key(7, 4, None),
        key(73, 1, None),
        key(7, 31, None),
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Within the server's limits even for the largest ids (printable ASCII, <= 256 bytes).
    let long = key(i64::MAX, -1, Some(i64::MAX));
    assert!(
        long.len() <= 256 && long.bytes().all(|b| b.is_ascii_graphic()),
        "{long}"
    );
}

#[test]
fn fields_added_after_creation_are_found_behind_the_dynamic_field() {
    let v26 = load(V26);
    let items = coll(&v26, "items").schema.as_ref().unwrap();
    let names = |fs: Vec<&backup::FieldSchema>| -> Vec<String> {
        fs.into_iter().map(|f| f.name.clone()).collect()
    };
    assert_eq!(names(added_fields(items)), ["rating"]);
    // Without `$meta` recorded (older milvus-backup, no etcd): the first gap in the ids.
    let mut guessed = items.clone();
    guessed.fields.retain(|f| !f.is_dynamic);
    assert_eq!(names(added_fields(&guessed)), ["rating"]);
    // No gap: nothing was added.
    guessed.fields.retain(|f| f.name != "rating");
    assert!(added_fields(&guessed).is_empty());
    // Without a dynamic field, ids stay contiguous and nothing counts as added.
    let clips = coll(&v26, "clips").schema.as_ref().unwrap();
    assert!(added_fields(clips).is_empty());
    // The 2.5 collection's `$meta` is its last field.
    let v25 = load(V25);
    assert!(added_fields(coll(&v25, "v25").schema.as_ref().unwrap()).is_empty());
}

#[test]
fn create_plan_sends_what_create_collection_can_number_and_adds_the_rest() {
    let v26 = load(V26);
    let items = coll(&v26, "items").schema.as_ref().unwrap();
    let plan = create_plan(items, &v("v2.6.5")).unwrap();
    let ids: Vec<i64> = plan.schema.fields.iter().map(|f| f.field_id).collect();
    assert_eq!(ids, [100, 101, 102]);
    assert!(plan.schema.enable_dynamic_field);
    assert_eq!(plan.add_fields.len(), 1);
    assert_eq!(plan.add_fields[0].name, "rating");
    assert_eq!(plan.add_fields[0].field_id, 104);
    assert!(plan.add_fields[0].nullable);
    assert_eq!(plan.restore_func_runtime_check, None);

    let clips = coll(&v26, "clips").schema.as_ref().unwrap();
    let plan = create_plan(clips, &v("v2.6.5")).unwrap();
    assert_eq!(plan.schema.struct_array_fields.len(), 1);
    let st = &plan.schema.struct_array_fields[0];
    assert_eq!((st.field_id, st.name.as_str()), (101, "clips"));
    let sub: Vec<(i64, i32, i32)> = st
        .fields
        .iter()
        .map(|f| (f.field_id, f.data_type, f.element_type))
        .collect();
    assert_eq!(
        sub,
        [
            (102, schema::DataType::ArrayOfVector as i32, 101),
            (103, schema::DataType::Array as i32, 4)
        ]
    );
}

#[test]
fn create_plan_keeps_functions_nullable_and_defaults() {
    let v25 = load(V25);
    let s = coll(&v25, "v25").schema.as_ref().unwrap();
    let plan = create_plan(s, &v("v2.5.10")).unwrap();
    let names: Vec<&str> = plan.schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["pk", "text", "sparse", "score", "shape"]);
    let sparse = &plan.schema.fields[2];
    assert!(sparse.is_function_output);
    let score = &plan.schema.fields[3];
    assert!(score.nullable);
    assert_eq!(
        score.default_value,
        Some(schema::ValueField {
            data: Some(schema::value_field::Data::FloatData(1.0))
        })
    );
    assert_eq!(plan.schema.functions.len(), 1);
    let f = &plan.schema.functions[0];
    assert_eq!(f.r#type, schema::FunctionType::Bm25 as i32);
    assert_eq!(
        (
            f.input_field_names.as_slice(),
            f.output_field_names.as_slice()
        ),
        (&["text".to_string()][..], &["sparse".to_string()][..])
    );
    assert_eq!(f.output_field_ids, [102]);
    // 2.5 has no function runtime check: properties as recorded.
    assert!(plan.properties.is_empty());
    assert_eq!(plan.restore_func_runtime_check, None);
}

#[test]
fn functions_turn_the_runtime_check_off_for_creation_from_2_6_8() {
    let v25 = load(V25);
    let s = coll(&v25, "v25").schema.as_ref().unwrap();
    let check = |p: &CreatePlan| {
        p.properties
            .iter()
            .filter(|kv| kv.key == DISABLE_FUNC_RUNTIME_CHECK)
            .map(|kv| kv.value.clone())
            .collect::<Vec<_>>()
    };
    let before = create_plan(s, &v("v2.6.7")).unwrap();
    assert!(check(&before).is_empty());
    let plan = create_plan(s, &v("v2.6.8")).unwrap();
    assert_eq!(check(&plan), ["true"]);
    assert_eq!(plan.restore_func_runtime_check.as_deref(), Some("false"));
    // The schema's own properties stay as recorded.
    assert!(plan.schema.properties.is_empty());
    // A backed-up `true` is kept and not altered back.
    let mut on = s.clone();
    on.properties.push(backup::KeyValuePair::new(
        DISABLE_FUNC_RUNTIME_CHECK,
        "true",
    ));
    let plan = create_plan(&on, &v("v3.0.2")).unwrap();
    assert_eq!(check(&plan), ["true"]);
    assert_eq!(plan.restore_func_runtime_check, None);
    // A backed-up `false` is replaced for creation, then restored.
    on.properties[0].value = "false".into();
    let plan = create_plan(&on, &v("v3.0.2")).unwrap();
    assert_eq!(check(&plan), ["true"]);
    assert_eq!(plan.restore_func_runtime_check.as_deref(), Some("false"));
}

#[test]
fn max_field_id_is_never_sent_back() {
    let v30 = load(V30);
    let s = coll(&v30, "docs30").schema.as_ref().unwrap();
    assert!(s.properties.iter().any(|p| p.key == MAX_FIELD_ID));
    let plan = create_plan(s, &v("v3.0.1")).unwrap();
    let keys =
        |kv: &[common::KeyValuePair]| -> Vec<String> { kv.iter().map(|p| p.key.clone()).collect() };
    assert_eq!(keys(&plan.properties), ["collection.ttl.seconds"]);
    assert_eq!(keys(&plan.schema.properties), ["collection.ttl.seconds"]);
    let ids: Vec<i64> = plan.schema.fields.iter().map(|f| f.field_id).collect();
    assert_eq!(ids, [100, 101]);
}

#[test]
fn storage_v3_segments_are_not_backed_up() {
    assert!(segment_backupable(0).is_ok());
    assert!(segment_backupable(1).is_ok());
    assert!(segment_backupable(2).is_ok());
    let e = segment_backupable(3).unwrap_err();
    assert!(e.contains("storage format v3"), "{e}");
}
