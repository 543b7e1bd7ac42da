//! The version matrix against real servers (issue 14): a Milvus 2.2.16 that keeps its data on
//! local disk migrated into the stack's Milvus 2.3.5 on S3 and into another 2.2.16, the
//! stack's Milvus 2.3.5 on S3 migrated into a Milvus 2.3.5 on local disk, and that one back
//! into S3. Each ends verified by content, with the row counts on 2.2 taken exactly (it has
//! no `count(*)`).

use std::path::Path;

use serde_json::Value;

use crate::milvus::{counts_of, on_milvus, profiles, run_json, seed, unique};
use crate::support::single::Single;

/// Seeds what Milvus 2.2 supports: partitions, deletes, a JSON field and dynamic fields (no
/// arrays); returns the expected rows and per-partition counts.
fn seed_22_schema(profile: &Path, coll: &str) -> (u64, Value) {
    let seeded = seed(
        profile,
        coll,
        &[
            "--rows",
            "20000",
            "--dim",
            "16",
            "--partitions",
            "p1",
            "--dynamic",
            "--delete-every",
            "7",
        ],
    );
    counts_of(&seeded)
}

/// `migrate --from a --to b -c coll --suffix _bak --json` plus `extra`; its report.
fn migrate(a: &Path, b: &Path, coll: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "migrate",
        "--from",
        a.to_str().unwrap(),
        "--to",
        b.to_str().unwrap(),
        "-c",
        coll,
        "--suffix",
        "_bak",
        "--json",
    ];
    args.extend_from_slice(extra);
    run_json(&args)
}

/// Each partition of `target` on B holds the rows `per_partition` names.
fn assert_partition_rows(b: &Path, target: &str, per_partition: &Value) {
    for (p, n) in per_partition.as_object().unwrap() {
        let got = on_milvus(b, async |c| {
            c.count(target, std::slice::from_ref(p)).await.unwrap()
        });
        assert_eq!(got as u64, n.as_u64().unwrap(), "partition {p}");
    }
}

fn assert_migrated(report: &Value, expected: u64) {
    let c = &report["collections"][0];
    assert_eq!(c["rows_a"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["rows_b"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["verified"], true, "{report}");
    assert_eq!(c["verified_by"], "content (sample)", "{report}");
}

#[test]
fn milvus_2_2_on_local_disk_migrates_into_2_3_on_s3_verified_by_content() {
    let src = Single::milvus_22_local();
    let tmp = tempfile::tempdir().unwrap();
    let a = src.profile(tmp.path(), "m22.yaml", &tmp.path().join("backups-a"));
    let (_, b) = profiles(tmp.path());
    let coll = unique("v22");
    let (expected, per_partition) = seed_22_schema(&a, &coll);
    let version = on_milvus(&a, async |c| c.version().raw.clone());
    assert!(version.starts_with("v2.2.16"), "{version}");

    let report = migrate(&a, &b, &coll, &[]);
    assert_migrated(&report, expected);
    // B's partitions hold what A's held (counted on 2.2 without count(*)).
    assert_partition_rows(&b, &format!("{coll}_bak"), &per_partition);
    // Nothing left of the backup on A's local backup directory.
    let left = crate::migrate::files_under(&tmp.path().join("backups-a"));
    assert_eq!(left, 0, "backup files left on A");
}

#[test]
fn milvus_2_2_migrates_into_another_2_2_verified_by_content() {
    let (src, dst) = (Single::milvus_22_local(), Single::milvus_22_local_b());
    let tmp = tempfile::tempdir().unwrap();
    let a = src.profile(tmp.path(), "m22.yaml", &tmp.path().join("backups-a"));
    let b = dst.profile(tmp.path(), "m22b.yaml", &tmp.path().join("backups-b"));
    let coll = unique("v22b");
    let (expected, per_partition) = seed_22_schema(&a, &coll);
    let version = on_milvus(&b, async |c| c.version().raw.clone());
    assert!(version.starts_with("v2.2.16"), "{version}");

    let report = migrate(&a, &b, &coll, &[]);
    assert_migrated(&report, expected);
    // Counted on both sides by enumerating keys (no count(*) on 2.2), partition by partition.
    assert_partition_rows(&b, &format!("{coll}_bak"), &per_partition);
    // A rerun finds it complete and changes nothing.
    let again = migrate(&a, &b, &coll, &[]);
    assert_eq!(
        again["collections"][0]["verified_by"], "count (earlier run)",
        "{again}"
    );
}

#[test]
fn milvus_2_3_on_s3_migrates_into_2_3_on_local_disk_verified_by_content() {
    let dst = Single::milvus_23_local();
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = profiles(tmp.path());
    let backups_b = tmp.path().join("backups-b");
    let b = dst.profile(tmp.path(), "m23local.yaml", &backups_b);
    let coll = unique("vloc");
    let (expected, _) = seed_22_schema(&a, &coll);

    let report = migrate(&a, &b, &coll, &["--verify", "full"]);
    let c = &report["collections"][0];
    assert_eq!(c["rows_b"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["verified_by"], "content (full)", "{report}");
    // The binlogs were staged as files in B's data directory and removed after the import.
    let staged: Vec<_> = std::fs::read_dir(&dst.local_path)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("restore-temp-"))
        .filter(|e| crate::migrate::files_under(&e.path()) > 0)
        .collect();
    assert!(staged.is_empty(), "staged binlogs left: {staged:?}");
    // Only the completion record is left in B's backup directory.
    let left: Vec<String> = std::fs::read_dir(&backups_b)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file() || crate::migrate::files_under(&e.path()) > 0)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|n| n.ends_with(".migrate-done.json")),
        "{left:?}"
    );
}

#[test]
fn milvus_2_3_on_local_disk_migrates_into_2_3_on_s3_verified_by_content() {
    let src = Single::milvus_23_local();
    let tmp = tempfile::tempdir().unwrap();
    let a = src.profile(tmp.path(), "m23local.yaml", &tmp.path().join("backups-a"));
    let (_, b) = profiles(tmp.path());
    let coll = unique("vlsrc");
    let (expected, _) = seed_22_schema(&a, &coll);
    let report = migrate(&a, &b, &coll, &[]);
    assert_migrated(&report, expected);
    assert_eq!(
        crate::migrate::files_under(&tmp.path().join("backups-a")),
        0
    );
}
