//! Content verification (issue 15) on the real Milvus 2.3.5 pair: `migrate` verifies B's
//! content by default, `verify` finds nothing after a migration and names the keys when B is
//! altered (a row deleted, a row changed, a row added), in sample and full mode, and a
//! migration whose B differs from A fails and keeps its backup.

use std::path::Path;

use milvus_migrate::milvus::proto::{milvus as pb, schema};
use milvus_migrate::seed::{self, SeedSpec};
use serde_json::Value;

use crate::migrate::files_under;
use crate::milvus::{on_milvus, phase_note, profiles, run, run_json, unique};
use crate::support::milvus::Stack;
use crate::support::single::{SMALL_ANSWER_BYTES, Single};

const ROWS: u64 = 2000;

/// The spec `seed_collection` seeds with (the tests build rows of the same shape).
fn spec(coll: &str) -> SeedSpec {
    SeedSpec {
        collection: coll.into(),
        rows: ROWS,
        dim: 16,
        partitions: vec!["p1".into(), "p2".into()],
        dynamic: true,
        delete_every: 9,
        ..SeedSpec::default()
    }
}

fn seed_collection(profile: &Path, coll: &str) -> u64 {
    let out = crate::milvus::seed(
        profile,
        coll,
        &[
            "--rows",
            &ROWS.to_string(),
            "--dim",
            "16",
            "--partitions",
            "p1,p2",
            "--dynamic",
            "--delete-every",
            "9",
        ],
    );
    out["expected_rows"].as_u64().unwrap()
}

/// A change to a generated row before it is inserted.
enum Change {
    None,
    /// `score` replaced.
    Score(f64),
    /// The first component of `vec` one ulp up.
    VectorUlp,
    /// The dynamic field's JSON replaced.
    Dynamic(String),
}

/// Inserts generated row `i` into `coll` (partition `part`), changed as asked.
async fn insert_row(
    c: &milvus_migrate::milvus::MilvusClient,
    spec: &SeedSpec,
    coll: &str,
    part: &str,
    i: u64,
    change: Change,
) {
    use schema::{field_data::Field, scalar_field::Data, vector_field};
    let mut cols = seed::columns(spec, part, &[i], true);
    let col = |cols: &[schema::FieldData], name: &str| -> usize {
        cols.iter().position(|f| f.field_name == name).unwrap()
    };
    match change {
        Change::None => {}
        Change::Score(s) => {
            let n = col(&cols, "score");
            cols[n].field = Some(Field::Scalars(schema::ScalarField {
                data: Some(Data::DoubleData(schema::DoubleArray { data: vec![s] })),
            }));
        }
        Change::VectorUlp => {
            let n = col(&cols, "vec");
            let Some(Field::Vectors(v)) = &mut cols[n].field else {
                panic!("vec is not a vector column")
            };
            let Some(vector_field::Data::FloatVector(f)) = &mut v.data else {
                panic!("vec is not a float vector")
            };
            f.data[0] = f32::from_bits(f.data[0].to_bits() + 1);
        }
        Change::Dynamic(json) => {
            let n = col(&cols, "$meta");
            cols[n].field = Some(Field::Scalars(schema::ScalarField {
                data: Some(Data::JsonData(schema::JsonArray {
                    data: vec![json.into_bytes()],
                })),
            }));
        }
    }
    let r = c
        .insert(pb::InsertRequest {
            collection_name: coll.into(),
            partition_name: part.into(),
            fields_data: cols,
            num_rows: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.insert_cnt, 1);
}

fn verify_json(a: &str, b: &str, coll: &str, target: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "verify", "--from", a, "--to", b, "-c", coll, "--target", target, "--json",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

fn keys(report: &Value, kind: &str) -> Vec<String> {
    report["collections"][0][kind]["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn verify_passes_after_migrate_and_names_the_keys_b_lost_gained_or_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("vf_alter");
    let target = format!("{coll}_bak");
    let expected = seed_collection(Path::new(a), &coll);

    // migrate verifies the content by default.
    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["verified_by"], "content (sample)", "{report}");
    assert_eq!(c["verification"]["rows_a"].as_u64(), Some(expected));
    assert_eq!(c["verification"]["rows_b"].as_u64(), Some(expected));
    assert_eq!(c["verification"]["rows_compared"].as_u64(), Some(1000));
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["create", "copy", "restore", "verify", "cleanup"]);

    // Nothing differs, in either mode; full compares every row.
    for mode in ["sample", "full"] {
        let (code, r) = verify_json(a, b, &coll, &target, &["--verify", mode]);
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["ok"], true, "{r}");
    }
    let (_, r) = verify_json(a, b, &coll, &target, &["--verify", "full", "--page", "300"]);
    assert_eq!(
        r["collections"][0]["rows_compared"].as_u64(),
        Some(expected)
    );
    assert!(r["collections"][0]["ranges"].as_u64().unwrap() >= expected / 300);

    // Alter B: row 1 deleted, row 2 with another score, row 4 with one vector component one
    // ulp up, row 5 with another dynamic key, row 100000 added.
    let s = spec(&target);
    on_milvus(Path::new(b), async |c| {
        c.delete(&target, "", "pk in [1, 2, 4, 5]").await.unwrap();
        insert_row(&c, &s, &target, "p2", 2, Change::Score(-1.5)).await;
        insert_row(&c, &s, &target, "p1", 4, Change::VectorUlp).await;
        let json = r#"{"extra_2":"changed"}"#;
        insert_row(&c, &s, &target, "p2", 5, Change::Dynamic(json.into())).await;
        insert_row(&c, &s, &target, "_default", 100_000, Change::None).await;
    });

    for mode in [
        &["--verify", "full"][..],
        &["--verify", "full", "--page", "128"][..],
        &["--verify", "sample", "--sample", "100000"][..],
    ] {
        let (code, r) = verify_json(a, b, &coll, &target, mode);
        assert_eq!(code, 1, "{mode:?}: {r}");
        assert_eq!(r["ok"], false);
        let v = &r["collections"][0];
        assert_eq!(v["rows_a"].as_u64(), Some(expected), "{mode:?}: {r}");
        assert_eq!(v["rows_b"].as_u64(), Some(expected), "{mode:?}: {r}");
        assert_eq!(keys(&r, "missing"), ["1"], "{mode:?}: {r}");
        assert_eq!(keys(&r, "extra"), ["100000"], "{mode:?}: {r}");
        assert_eq!(
            keys(&r, "different"),
            ["2 (score)", "4 (vec)", "5 ($meta)"],
            "{mode:?}: {r}"
        );
    }
    // The default sample names the keys B lost and gained (every key is enumerated).
    let (code, r) = verify_json(a, b, &coll, &target, &[]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(keys(&r, "missing"), ["1"], "{r}");
    assert_eq!(keys(&r, "extra"), ["100000"], "{r}");
    // Counts alone see the deleted row and the added one balance out per collection, but
    // not per partition (1 is in p1, 100000 in _default).
    let (code, r) = verify_json(a, b, &coll, &target, &["--verify", "count"]);
    assert_eq!(code, 1, "{r}");
    let parts = r["collections"][0]["partitions"]
        .as_array()
        .unwrap()
        .clone();
    assert!(parts.iter().any(|p| p["rows_a"] != p["rows_b"]), "{r}");

    // The text report names them too.
    let out = run(&[
        "verify", "--from", a, "--to", b, "-c", &coll, "--target", &target, "--verify", "full",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DIFFERENT"), "{text}");
    assert!(text.contains("1 missing on B (1)"), "{text}");
    assert!(text.contains("1 extra on B (100000)"), "{text}");
    assert!(
        text.contains("3 different (2 (score), 4 (vec), 5 ($meta))"),
        "{text}"
    );
}

#[test]
fn migrate_fails_when_b_differs_from_a_and_keeps_the_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("vf_fail");
    seed_collection(Path::new(a), &coll);
    let name = unique("vf_fail_b");
    run_json(&["create", "--config", a, "-c", &coll, "-n", &name, "--json"]);
    // A gains a row after the backup: the migration reuses the backup, so B lacks it.
    let s = spec(&coll);
    on_milvus(Path::new(a), async |c| {
        insert_row(&c, &s, &coll, "_default", 50_000, Change::None).await;
    });

    let out = run(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "-n", &name,
        "--verify", "full",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("phase verify"), "{stderr}");
    assert!(stderr.contains("1 missing on B (50000)"), "{stderr}");
    assert!(stderr.contains("kept for inspection"), "{stderr}");
    // No cleanup ran: both backup copies are still there.
    let stack = Stack::get();
    for store in [&stack.store_a, &stack.store_b] {
        assert!(
            files_under(&store.object_path(&format!("backup/{name}"))) > 0,
            "backup removed from {}",
            store.bucket
        );
    }
}

/// Counting by enumerated keys (what Milvus 2.2, without `count(*)`, gets) agrees with
/// `count(*)` per collection and partition, across more than one key page and with deletes;
/// and a VarChar-keyed collection verifies in full after a migration.
#[test]
fn counts_by_keys_match_count_star_and_varchar_keys_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("vf_keys");
    // More rows than one page of keys (16384), deletes in every partition.
    crate::milvus::seed(
        Path::new(a),
        &coll,
        &[
            "--rows",
            "40000",
            "--dim",
            "4",
            "--partitions",
            "p1",
            "--delete-every",
            "7",
        ],
    );
    on_milvus(Path::new(a), async |c| {
        assert_eq!(
            milvus_migrate::milvus::count_method(c.version()),
            milvus_migrate::milvus::CountMethod::CountStar
        );
        for parts in [vec![], vec!["_default".to_string()], vec!["p1".to_string()]] {
            let star = c.count(&coll, &parts).await.unwrap();
            let keys = c.count_by_keys(&coll, &parts).await.unwrap();
            assert_eq!(keys, star, "partitions {parts:?}");
        }
        assert_eq!(
            c.count_by_keys(&coll, &[]).await.unwrap(),
            40000 - 5715 /* rows 0, 7, 14, ... < 40000 deleted */
        );
    });

    let vc = unique("vf_varchar");
    crate::milvus::seed(
        Path::new(a),
        &vc,
        &["--rows", "1500", "--dim", "8", "--varchar-pk", "--dynamic"],
    );
    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &vc, "--suffix", "_bak", "--verify", "full",
        "--page", "200", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["verified_by"], "content (full)", "{report}");
    assert_eq!(c["verification"]["rows_compared"].as_u64(), Some(1500));
    assert!(
        c["verification"]["ranges"].as_u64().unwrap() >= 8,
        "{report}"
    );
    let target = format!("{vc}_bak");
    on_milvus(Path::new(b), async |c| {
        c.delete(&target, "", r#"pk in ["pk-7"]"#).await.unwrap();
    });
    let (code, r) = verify_json(a, b, &vc, &target, &["--verify", "full", "--page", "200"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(keys(&r, "missing"), ["\"pk-7\""], "{r}");
}

/// Rows of 32768-d (128 KiB) with 8 KiB of dynamic JSON each: 500 of them are more than
/// Milvus's proxy sends in one answer (64 MiB by default), so the sampled rows and the rows
/// read again are fetched in batches sized by the rows' width, as `full` mode's ranges are.
/// `migrate` verifies them (sample), `--verify full` compares every row in ranges of at most
/// 127 rows, and a row changed on B is named with its field in both modes.
#[test]
fn wide_rows_are_read_in_answers_milvus_can_send() {
    const WIDE_ROWS: u64 = 600;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("vf_wide");
    let target = format!("{coll}_bak");
    crate::milvus::seed(
        Path::new(a),
        &coll,
        &["--rows", "0", "--dim", "32768", "--dynamic"],
    );
    let wide = |coll: &str| SeedSpec {
        collection: coll.into(),
        rows: WIDE_ROWS,
        dim: 32768,
        dynamic: true,
        ..SeedSpec::default()
    };
    let note = |c: char| format!(r#"{{"note":"{}"}}"#, c.to_string().repeat(8192));
    let s = wide(&coll);
    on_milvus(Path::new(a), async |c| {
        for i in 0..WIDE_ROWS {
            insert_row(&c, &s, &coll, "_default", i, Change::Dynamic(note('a'))).await;
        }
    });

    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["verified_by"], "content (sample)", "{report}");
    assert_eq!(
        c["verification"]["rows_compared"].as_u64(),
        Some(WIDE_ROWS),
        "{report}"
    );
    let (code, r) = verify_json(a, b, &coll, &target, &["--verify", "full"]);
    assert_eq!(code, 0, "{r}");
    let v = &r["collections"][0];
    assert_eq!(v["rows_compared"].as_u64(), Some(WIDE_ROWS), "{r}");
    assert!(
        v["ranges"].as_u64().unwrap() >= WIDE_ROWS.div_ceil(127),
        "{r}"
    );

    // Row 7's dynamic field changed on B.
    let s = wide(&target);
    on_milvus(Path::new(b), async |c| {
        c.delete(&target, "", "pk in [7]").await.unwrap();
        insert_row(&c, &s, &target, "_default", 7, Change::Dynamic(note('b'))).await;
    });
    for mode in ["full", "sample"] {
        let (code, r) = verify_json(a, b, &coll, &target, &["--verify", mode]);
        assert_eq!(code, 1, "{mode}: {r}");
        assert_eq!(keys(&r, "different"), ["7 ($meta)"], "{mode}: {r}");
        assert!(keys(&r, "missing").is_empty(), "{mode}: {r}");
        assert!(keys(&r, "extra").is_empty(), "{mode}: {r}");
    }
}

/// Primary keys of 5000 bytes (VarChar up to 65535): 14000 of them are more than Milvus's
/// proxy sends in one answer (64 MiB), so keys are enumerated in pages sized by their length.
/// `migrate` (which enumerates both sides' keys for its sampled check) and `--verify full`
/// pass.
#[test]
fn long_string_keys_are_enumerated_in_answers_milvus_can_send() {
    use prost::Message;
    use schema::{DataType, field_data::Field, scalar_field::Data, vector_field};
    const N: usize = 14_000;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("vf_longkeys");
    let target = format!("{coll}_bak");
    on_milvus(Path::new(a), async |c| {
        let kv = |k: &str, v: &str| milvus_migrate::milvus::proto::common::KeyValuePair {
            key: k.into(),
            value: v.into(),
        };
        let schema = schema::CollectionSchema {
            name: coll.clone(),
            fields: vec![
                schema::FieldSchema {
                    field_id: 100,
                    name: "k".into(),
                    is_primary_key: true,
                    data_type: DataType::VarChar as i32,
                    type_params: vec![kv("max_length", "65535")],
                    ..Default::default()
                },
                schema::FieldSchema {
                    field_id: 101,
                    name: "v".into(),
                    data_type: DataType::FloatVector as i32,
                    type_params: vec![kv("dim", "2")],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        c.create_collection(pb::CreateCollectionRequest {
            collection_name: coll.clone(),
            schema: schema.encode_to_vec(),
            shards_num: 1,
            ..Default::default()
        })
        .await
        .unwrap();
        for start in (0..N).step_by(2000) {
            let rows: Vec<usize> = (start..N.min(start + 2000)).collect();
            let keys = rows.iter().map(|i| format!("{i:08}{}", "x".repeat(4992)));
            let fields = vec![
                schema::FieldData {
                    r#type: DataType::VarChar as i32,
                    field_name: "k".into(),
                    field: Some(Field::Scalars(schema::ScalarField {
                        data: Some(Data::StringData(schema::StringArray {
                            data: keys.collect(),
                        })),
                    })),
                    ..Default::default()
                },
                schema::FieldData {
                    r#type: DataType::FloatVector as i32,
                    field_name: "v".into(),
                    field: Some(Field::Vectors(schema::VectorField {
                        dim: 2,
                        data: Some(vector_field::Data::FloatVector(schema::FloatArray {
                            data: rows.iter().flat_map(|&i| [i as f32, 1.0]).collect(),
                        })),
                    })),
                    ..Default::default()
                },
            ];
            let r = c
                .insert(pb::InsertRequest {
                    collection_name: coll.clone(),
                    fields_data: fields,
                    num_rows: rows.len() as u32,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(r.insert_cnt, rows.len() as i64);
        }
        let flat = vec![kv("index_type", "FLAT"), kv("metric_type", "L2")];
        c.create_index(&coll, "v", "v_idx", flat).await.unwrap();
        c.load_collection(&coll).await.unwrap();
        while c.loading_progress(&coll).await.unwrap() < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    });

    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["verified_by"], "content (sample)", "{report}");
    assert_eq!(
        c["verification"]["rows_a"].as_u64(),
        Some(N as u64),
        "{report}"
    );
    assert_eq!(
        c["verification"]["rows_b"].as_u64(),
        Some(N as u64),
        "{report}"
    );
    let (code, r) = verify_json(a, b, &coll, &target, &["--verify", "full"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        r["collections"][0]["rows_compared"].as_u64(),
        Some(N as u64),
        "{r}"
    );
}

/// A source collection that is not loaded on A migrates, and the migration says why B's
/// content was not compared with it (Milvus answers no query on it, and loading it would
/// change A); `verify` refuses with a clear message and exit code 2.
#[test]
fn a_source_collection_not_loaded_on_a_migrates_and_says_its_content_was_not_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("vf_unloaded");
    let target = format!("{coll}_bak");
    crate::milvus::seed(
        Path::new(a),
        &coll,
        &["--rows", "3000", "--dim", "8", "--no-load"],
    );
    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["verified_by"], "not verified (A not loaded)", "{report}");
    assert_eq!(c["verification"], Value::Null, "{report}");
    assert_eq!(c["rows_b"].as_u64(), Some(3000), "{report}");
    let verify_note = phase_note(&report, "verify");
    assert!(
        verify_note.contains(&format!(
            "`default.{coll}` is not loaded on A: content not compared"
        )),
        "{verify_note}"
    );

    let out = run(&[
        "verify", "--from", a, "--to", b, "-c", &coll, "--target", &target,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("`default.{coll}` on A is not loaded (0% loaded)")),
        "{stderr}"
    );
}

/// Loads `partitions` of `coll` only and waits until Milvus says it is loaded.
fn load_partitions(profile: &Path, coll: &str, partitions: &[&str]) {
    let partitions: Vec<String> = partitions.iter().map(|p| p.to_string()).collect();
    on_milvus(profile, async |c| {
        c.release_collection(coll).await.unwrap();
        if partitions.is_empty() {
            c.load_collection(coll).await.unwrap();
        } else {
            c.load_partitions(coll, &partitions, 0).await.unwrap();
        }
        while c.loading_progress(coll).await.unwrap() < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
}

/// The names of `coll`'s partitions that are loaded.
fn loaded_partitions(profile: &Path, coll: &str) -> Vec<String> {
    on_milvus(profile, async |c| {
        let parts = c.partitions_loaded(coll).await.unwrap();
        parts
            .into_iter()
            .filter(|(_, loaded)| *loaded)
            .map(|(n, _)| n)
            .collect()
    })
}

#[test]
fn a_source_loaded_by_some_partitions_is_loaded_the_same_on_b_and_those_are_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (pa, pb) = (a.as_path(), b.as_path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("vf_partload");
    let target = format!("{coll}_bak");
    // 3000 rows round-robin over `_default`, p1, p2: 1000 each; only p1 loaded on A.
    crate::milvus::seed(
        pa,
        &coll,
        &[
            "--rows",
            "3000",
            "--dim",
            "8",
            "--partitions",
            "p1,p2",
            "--no-load",
        ],
    );
    load_partitions(pa, &coll, &["p1"]);

    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(
        c["verified_by"], "content (sample, partitions loaded on A)",
        "{report}"
    );
    // Every row moved; the rows the loaded partition holds were counted and compared.
    assert_eq!(c["rows_imported"].as_u64(), Some(3000), "{report}");
    assert_eq!(c["rows_a"].as_u64(), Some(1000), "{report}");
    assert_eq!(c["rows_b"].as_u64(), Some(1000), "{report}");
    assert_eq!(c["verification"]["rows_compared"].as_u64(), Some(1000));
    let parts = c["verification"]["partitions"].as_array().unwrap();
    let p1 = parts.iter().find(|p| p["name"] == "p1").unwrap();
    assert_eq!(
        (p1["rows_a"].as_u64(), p1["rows_b"].as_u64()),
        (Some(1000), Some(1000))
    );
    let p2 = parts.iter().find(|p| p["name"] == "p2").unwrap();
    assert_eq!(
        (&p2["rows_a"], &p2["on_b"]),
        (&Value::Null, &Value::from("not_loaded"))
    );
    let verify_note = phase_note(&report, "verify");
    assert!(
        verify_note.contains("partition(s) `_default`, `p2` not loaded on A"),
        "{verify_note}"
    );
    assert_eq!(loaded_partitions(pb, &target), ["p1"]);

    // `verify --verify full` compares the same partitions, and says which it did not.
    let r = run_json(&[
        "verify", "--from", a, "--to", b, "-c", &coll, "--target", &target, "--verify", "full",
        "--json",
    ]);
    let v = &r["collections"][0];
    assert_eq!(v["rows_a"].as_u64(), Some(1000), "{r}");
    assert_eq!(v["rows_compared"].as_u64(), Some(1000), "{r}");

    // B loaded whole sees rows A's queries do not: a difference, named by partition.
    load_partitions(pb, &target, &[]);
    let out = run(&[
        "verify", "--from", a, "--to", b, "-c", &coll, "--target", &target,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("partition `p2` loaded on B only (1000 rows), not on A"),
        "{stdout}"
    );
}

/// A Milvus whose proxy sends at most 2 MiB in one answer (`proxy.grpc.serverMaxSendSize`)
/// refuses the answers `verify` asks for by default (key ranges of about 16 MiB, batches of
/// wide rows): `verify` asks again for fewer rows, and still finds every difference.
#[test]
fn a_proxy_that_sends_small_answers_is_asked_for_fewer_rows_and_every_row_is_compared() {
    let m = Single::milvus_23_small_answers();
    let tmp = tempfile::tempdir().unwrap();
    let profile = m.profile(tmp.path(), "small.yaml", &tmp.path().join("backups"));
    let p = profile.to_str().unwrap();
    let coll = unique("small");
    let target = format!("{coll}_b");
    // 12,000 rows of 128-d with a dynamic field: a 16384-row range is about 7 MiB. B lost
    // rows 0, 5000 and 10000.
    let args = ["--rows", "12000", "--dim", "128", "--dynamic"];
    crate::milvus::seed(&profile, &coll, &args);
    crate::milvus::seed(
        &profile,
        &target,
        &[&args[..], &["--delete-every", "5000"]].concat(),
    );
    for mode in [&["--verify", "full"][..], &["--verify", "sample"][..]] {
        let (code, r) = verify_json(p, p, &coll, &target, mode);
        assert_eq!(code, 1, "{mode:?}: {r}");
        let v = &r["collections"][0];
        assert_eq!(v["rows_a"].as_u64(), Some(12_000), "{mode:?}: {r}");
        assert_eq!(v["rows_b"].as_u64(), Some(11_997), "{mode:?}: {r}");
        assert_eq!(keys(&r, "missing"), ["0", "5000", "10000"], "{mode:?}: {r}");
        assert!(keys(&r, "different").is_empty(), "{mode:?}: {r}");
    }
    let (_, r) = verify_json(p, p, &coll, &target, &["--verify", "full"]);
    assert_eq!(
        r["collections"][0]["rows_compared"].as_u64(),
        Some(11_997),
        "{r}"
    );

    // 600 rows of 4096-d: a sample batch of them is about 3 MiB, a range about 16 MiB.
    let (wide, wide_b) = (unique("wide"), unique("wide"));
    for c in [&wide, &wide_b] {
        crate::milvus::seed(
            &profile,
            c,
            &["--rows", "600", "--dim", "4096", "--dynamic"],
        );
    }
    let row_bytes = 4096 * 4;
    assert!(600 * row_bytes / 3 > SMALL_ANSWER_BYTES as usize);
    for mode in ["sample", "full"] {
        let (code, r) = verify_json(p, p, &wide, &wide_b, &["--verify", mode]);
        assert_eq!(code, 0, "{mode}: {r}");
        assert_eq!(
            r["collections"][0]["rows_compared"].as_u64(),
            Some(600),
            "{mode}: {r}"
        );
    }
}
