//! `create` and `restore` against two real Milvus 2.3.5 instances, each on its own s3s-fs store
//! (the stack of `scripts/stack.sh`): data seeded on A, backed up in milvus-backup's format,
//! moved to B's store, restored on B and checked row by row count.

use std::path::Path;

use serde_json::Value;

use crate::BIN;
use crate::support::milvus::{Side, Stack};

/// Runs the binary to the end (these tests are synchronous: Milvus sets their pace).
pub fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run milvus-migrate")
}

/// A fresh scratch directory with the two profiles: A's backups in bucket-a/backup (the seed
/// scenario), B's in bucket-b/backup.
pub fn profiles(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    profiles_with_b_backups_in(dir, &Stack::get().store_b.bucket)
}

/// [`profiles`], B's backups in `bucket` of store B instead (another bucket than Milvus B's).
pub fn profiles_with_b_backups_in(
    dir: &Path,
    bucket: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let stack = Stack::get();
    let a = stack.profile(Side::A, dir, "a.yaml", &stack.store_a.bucket, "backup", "");
    let b = stack.profile(Side::B, dir, "b.yaml", bucket, "backup", "");
    (a, b)
}

/// Runs the binary with `args`, expecting success; returns stdout parsed as JSON.
pub fn run_json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "milvus-migrate {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Runs the binary expecting exit code 2; returns stderr.
pub fn run_fatal(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "milvus-migrate {args:?} should fail with 2:\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The note of a phase (`create`, `copy`, `restore`, `verify`, ...) in a `migrate --json`
/// report.
pub fn phase_note(report: &Value, phase: &str) -> String {
    report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == phase)
        .unwrap_or_else(|| panic!("no phase {phase} in {report}"))["note"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs `f` with a client of the profile's Milvus.
pub fn on_milvus<T>(
    profile: &Path,
    f: impl AsyncFnOnce(milvus_migrate::milvus::MilvusClient) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let p = milvus_migrate::config::Profile::load(profile)
            .unwrap()
            .profile;
        let client = milvus_migrate::milvus::MilvusClient::connect(
            &p.milvus,
            milvus_migrate::milvus::ClientOptions::default(),
        )
        .await
        .unwrap();
        f(client).await
    })
}

/// A name no earlier run on the same (possibly long-lived) stack has used.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// Files (objects) under `restore-temp-*` directories of a bucket directory. s3s-fs keeps
/// empty directories after deletes, so only files count.
/// Files (objects) under a directory of a store's data dir, at any depth.
fn staged_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { staged_files(&p) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn seed(profile: &Path, coll: &str, extra: &[&str]) -> Value {
    let p = profile.to_str().unwrap();
    let mut args = vec![
        "seed",
        "--config",
        p,
        "-c",
        coll,
        "--json",
        "--drop-existing",
    ];
    args.extend_from_slice(extra);
    run_json(&args)
}

pub fn counts_of(report: &Value) -> (u64, Value) {
    (
        report["expected_rows"].as_u64().expect("expected_rows"),
        report["per_partition"].clone(),
    )
}

#[test]
fn create_copy_restore_across_two_milvus_keeps_rows_partitions_and_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let state = tmp.path().join("state");
    let state = state.to_str().unwrap();
    let coll = unique("it_full");
    let backup = format!("{coll}_b");
    let (coll, backup) = (coll.as_str(), backup.as_str());
    let bak = format!("{coll}_bak");
    let rename = format!("{coll}:{bak}");

    // Partitions, deletes and dynamic fields on A.
    let seeded = seed(
        Path::new(a),
        coll,
        &[
            "--rows",
            "6000",
            "--dim",
            "16",
            "--partitions",
            "p1,p2",
            "--dynamic",
            "--delete-every",
            "7",
        ],
    );
    let (expected, per_partition) = counts_of(&seeded);

    let created = run_json(&[
        "create",
        "--config",
        a,
        "-n",
        backup,
        "-c",
        coll,
        "--json",
        "--state-dir",
        state,
    ]);
    let summary = &created["collections"][0];
    assert_eq!(summary["rows"].as_u64(), Some(expected), "{created}");
    assert!(summary["segments"].as_u64().unwrap() >= 1, "{created}");
    assert_eq!(created["copy"]["objects_failed"], 0);
    // Same store: server-side copy, as milvus-backup does within one bucket.
    assert_eq!(created["copy"]["mode"], "server-side", "{created}");

    // The layout milvus-backup reads: meta files and grouped binlogs.
    let stack = Stack::get();
    let meta_dir = stack.store_a.object_path(&format!("backup/{backup}/meta"));
    for f in [
        "backup_meta.json",
        "collection_meta.json",
        "partition_meta.json",
        "segment_meta.json",
        "full_meta.json",
        "milvus_migrate.json",
    ] {
        assert!(meta_dir.join(f).is_file(), "missing meta/{f}");
    }
    let full: Value =
        serde_json::from_slice(&std::fs::read(meta_dir.join("full_meta.json")).unwrap()).unwrap();
    assert_eq!(full["name"], backup);
    let cb = &full["collection_backups"][0];
    assert_eq!(cb["collection_name"], coll);
    assert_eq!(cb["schema"]["enable_dynamic_field"], true);
    let seg = &cb["partition_backups"][0]["segment_backups"][0];
    assert!(
        seg["segment_id"].is_u64(),
        "64-bit ids are JSON numbers: {seg}"
    );
    assert_eq!(
        seg["group_id"], seg["segment_id"],
        "group directory = segment id"
    );
    // Our own record: a checksum for every binlog object.
    let ours: Value =
        serde_json::from_slice(&std::fs::read(meta_dir.join("milvus_migrate.json")).unwrap())
            .unwrap();
    let objects = ours["objects"].as_object().unwrap();
    assert_eq!(objects.len() as u64, summary["objects"].as_u64().unwrap());
    for (key, digest) in objects {
        let md5 = digest["md5"].as_str().unwrap();
        assert!(md5.len() >= 32, "no checksum for {key}: {digest}");
    }

    // A creating twice under one name is refused.
    let err = run_fatal(&["create", "--config", a, "-n", backup, "-c", coll]);
    assert!(err.contains("already exists"), "{err}");

    // The manual step, done by the tool: backup store A -> backup store B.
    let copied = run_json(&["copy", "--from", a, "--to", b, "-n", backup, "--json"]);
    assert_eq!(copied["objects_failed"], 0);

    // Restore on B from B's own backup store (staged into B's Milvus bucket).
    let restored = run_json(&[
        "restore",
        "--config",
        b,
        "-n",
        backup,
        "-s",
        "_bak",
        "--rebuild-index",
        "--load",
        "--json",
        "--state-dir",
        state,
    ]);
    let r = &restored["collections"][0];
    assert_eq!(r["collection_name"], bak.as_str(), "{restored}");
    assert_eq!(r["rows"].as_u64(), Some(expected), "{restored}");
    assert_eq!(r["verified"], true, "{restored}");
    // The backup already sits in Milvus B's own bucket: imported in place, nothing staged.
    assert_eq!(r["staged_objects"], 0, "{restored}");
    assert!(per_partition.is_object());

    // Restoring again under the same name is refused before anything is written...
    let err = run_fatal(&["restore", "--config", b, "-n", backup, "-s", "_bak"]);
    assert!(err.contains("already exists"), "{err}");
    // ...unless asked to replace it; this time straight from A's store (--from), verified.
    let again = run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        a,
        "-n",
        backup,
        "--rename",
        &rename,
        "--drop-existing",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    let r = &again["collections"][0];
    assert_eq!(r["rows"].as_u64(), Some(expected), "{again}");
    assert_eq!(r["verified"], true, "{again}");
    // Store A is not Milvus B's bucket: the binlogs were staged there, then removed.
    assert!(r["staged_objects"].as_u64().unwrap() > 0, "{again}");
    // Nothing of this restore's staging is left (other tests stage into the same bucket).
    let staged = milvus_migrate::restore::temp_prefix(
        backup,
        r["db_name"].as_str().unwrap(),
        r["collection_name"].as_str().unwrap(),
    );
    assert_eq!(
        staged_files(&stack.store_b.bucket_dir().join(staged)),
        0,
        "staged binlogs left in bucket-b"
    );
}

#[test]
fn create_and_restore_refuse_bad_input_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    let err = run_fatal(&[
        "create",
        "--config",
        a,
        "-n",
        "x_missing",
        "-c",
        "no_such_coll",
    ]);
    assert!(
        err.contains("collection `no_such_coll` not found in database `default`"),
        "{err}"
    );
    let err = run_fatal(&["create", "--config", a, "-n", "1bad", "-c", "x"]);
    assert!(err.contains("must start with a letter"), "{err}");
    let err = run_fatal(&["restore", "--config", b, "-n", "never_made"]);
    assert!(err.contains("backup `never_made` not found"), "{err}");

    // A Milvus that is not there, and an endpoint that is not Milvus (the S3 store).
    let stack = Stack::get();
    let text = std::fs::read_to_string(a).unwrap();
    let down = text.replace(&format!("port: {}", stack.milvus_a.port), "port: 1");
    let down_path = tmp.path().join("down.yaml");
    std::fs::write(&down_path, down).unwrap();
    let err = run_fatal(&["create", "--config", down_path.to_str().unwrap(), "-c", "x"]);
    assert!(
        err.contains("cannot connect to Milvus at 127.0.0.1:1"),
        "{err}"
    );
    let wrong = text.replace(
        &format!("port: {}", stack.milvus_a.port),
        &format!("port: {}", stack.store_a.port),
    );
    let wrong_path = tmp.path().join("wrong.yaml");
    std::fs::write(&wrong_path, wrong).unwrap();
    let err = run_fatal(&[
        "create",
        "--config",
        wrong_path.to_str().unwrap(),
        "-c",
        "x",
    ]);
    assert!(
        err.contains(&format!("127.0.0.1:{}", stack.store_a.port))
            && err.contains("does not answer as a Milvus gRPC server"),
        "{err}"
    );
}

#[test]
fn corrupt_backup_meta_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = profiles(tmp.path());
    let a = a.to_str().unwrap();
    let coll = unique("it_corrupt");
    let backup = format!("{coll}_b");
    seed(Path::new(a), &coll, &["--rows", "500", "--dim", "8"]);
    run_json(&[
        "create", "--config", a, "-n", &backup, "-c", &coll, "--json",
    ]);
    let stack = Stack::get();
    let full = stack
        .store_a
        .object_path(&format!("backup/{backup}/meta/full_meta.json"));
    std::fs::write(&full, b"{\"name\": \"x\", \"collection_backups\": [").unwrap();
    let err = run_fatal(&["restore", "--config", a, "-n", &backup, "-s", "_r"]);
    assert!(err.contains("meta/full_meta.json"), "{err}");
}

/// Issue 14: a backup made on a newer Milvus release line than the target's is refused before
/// anything is written, naming both versions.
#[test]
fn a_backup_from_a_newer_milvus_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("it_newer");
    let backup = format!("{coll}_b");
    seed(Path::new(a), &coll, &["--rows", "300", "--dim", "8"]);
    run_json(&[
        "create", "--config", a, "-n", &backup, "-c", &coll, "--json",
    ]);
    // As if Milvus 2.5.4 had written it (milvus-backup records the server's version).
    let stack = Stack::get();
    for file in ["full_meta.json", "backup_meta.json"] {
        let path = stack
            .store_a
            .object_path(&format!("backup/{backup}/meta/{file}"));
        let mut meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        meta["milvus_version"] = Value::from("v2.5.4");
        std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
    }
    let err = run_fatal(&[
        "restore", "--config", b, "--from", a, "-n", &backup, "-s", "_r",
    ]);
    assert!(err.contains("v2.5.4"), "{err}");
    assert!(err.contains("v2.3.5"), "{err}");
    assert!(err.contains("restore into Milvus 2.5 or later"), "{err}");
    // Nothing was created on B.
    let target = format!("{coll}_r");
    let exists = on_milvus(Path::new(b), async |c| {
        c.has_collection(&target).await.unwrap()
    });
    assert!(!exists, "`{target}` was created on B");
}

#[test]
fn a_segment_whose_rows_were_all_deleted_after_its_flush_restores_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (pa, pb) = (a.clone(), b.clone());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("it_alldel");
    let backup = format!("{coll}_b");
    let bak = format!("{coll}_bak");
    // 1200 rows round-robin: even keys in `_default`, odd ones in p1, each partition one
    // flushed segment; then every row of p1 deleted. Milvus reports an import of p1's segment
    // (binlogs and delta logs) as complete with 0 rows, exactly as it reports binlogs it did
    // not find.
    seed(
        &pa,
        &coll,
        &["--rows", "1200", "--dim", "8", "--partitions", "p1"],
    );
    let odd: Vec<String> = (0..1200)
        .filter(|i| i % 2 == 1)
        .map(|i| i.to_string())
        .collect();
    on_milvus(&pa, async |c| {
        let expr = format!("pk in [{}]", odd.join(","));
        let r = c.delete(&coll, "p1", &expr).await.unwrap();
        assert_eq!(r.delete_cnt, 600);
    });

    let created = run_json(&[
        "create", "--config", a, "-n", &backup, "-c", &coll, "--json",
    ]);
    assert_eq!(
        created["collections"][0]["rows"].as_u64(),
        Some(600),
        "{created}"
    );
    let meta = Stack::get()
        .store_a
        .object_path(&format!("backup/{backup}/meta/full_meta.json"));
    let full: Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    let p1 = full["collection_backups"][0]["partition_backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition_name"] == "p1")
        .unwrap()
        .clone();
    let seg = &p1["segment_backups"][0];
    assert!(seg["num_of_rows"].as_u64().unwrap() > 0, "{p1}");
    assert!(!seg["deltalogs"].as_array().unwrap().is_empty(), "{p1}");

    run_json(&["copy", "--from", a, "--to", b, "-n", &backup, "--json"]);
    let restored = run_json(&[
        "restore",
        "--config",
        b,
        "-n",
        &backup,
        "-s",
        "_bak",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    let r = &restored["collections"][0];
    assert_eq!(r["rows_imported"].as_u64(), Some(600), "{restored}");
    assert_eq!(r["rows"].as_u64(), Some(600), "{restored}");
    assert_eq!(r["verified"], true, "{restored}");
    let p1_rows = on_milvus(&pb, async |c| {
        c.count(&bak, &["p1".to_string()]).await.unwrap()
    });
    assert_eq!(p1_rows, 0);
}
