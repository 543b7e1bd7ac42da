//! The seed's own setting: two Milvus 2.3.5 on two real MinIO servers (minio_A, minio_B, with
//! different root users and buckets), and milvus-backup itself as a real process beside us.
//!
//! - a full `migrate` from A to B;
//! - a backup that milvus-backup creates on A, copied and restored by us;
//! - a backup that we create, listed, shown and restored into B by milvus-backup;
//! - a backup copied into a backup bucket B does not have yet: created by `copy`.
//!
//! milvus-backup reads the very profiles these tests give milvus-migrate: both tools take the
//! same `backup.yaml`. The stack is [`Stack::get_minio`] (`scripts/test.sh` runs these tests in
//! a second round, once the s3s-fs stack is stopped).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::migrate::seed_full;
use crate::milvus::{run_json, unique};
use crate::support::mc::go_tool;
use crate::support::milvus::{Side, Stack};

/// The MinIO stack and a scratch directory holding `a.yaml` and `b.yaml` for it: backups in
/// each Milvus's own bucket under `backup/`, as in the seed.
fn minio_profiles(dir: &Path) -> (&'static Stack, PathBuf, PathBuf) {
    let stack = Stack::get_minio();
    assert_eq!(stack.store_a.kind, "minio", "the stack must run on MinIO");
    let a = stack.profile(Side::A, dir, "a.yaml", &stack.store_a.bucket, "backup", "");
    let b = stack.profile(Side::B, dir, "b.yaml", &stack.store_b.bucket, "backup", "");
    (stack, a, b)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs milvus-backup (the release that restores into Milvus 2.3) with `--config CONFIG`;
/// its `logs/` go to the config's directory.
fn milvus_backup(config: &Path, args: &[&str]) -> Output {
    let bin = go_tool("MILVUS_BACKUP_BIN", "milvus-backup");
    Command::new(&bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(config.parent().unwrap())
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

/// [`milvus_backup`], which must succeed; returns its stdout.
fn milvus_backup_ok(config: &Path, args: &[&str]) -> String {
    let out = milvus_backup(config, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "milvus-backup {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Loads `coll` on the profile's Milvus (its indexes must exist), waits for it, and returns
/// `count(*)`: what a user would check after a restore that does not load.
fn load_and_count(profile: &Path, coll: &str) -> i64 {
    crate::milvus::on_milvus(profile, async |client| {
        client.load_collection(coll).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while client.loading_progress(coll).await.unwrap() < 100 {
            assert!(Instant::now() < deadline, "{coll} not loaded in 120 s");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        client.count(coll, &[]).await.unwrap()
    })
}

/// `milvus-migrate copy` of backup `name` from A's backup store to B's; its JSON report.
fn copy_backup(a: &Path, b: &Path, name: &str, state: &Path) -> Value {
    run_json(&[
        "copy",
        "--from",
        s(a),
        "--to",
        s(b),
        "-n",
        name,
        "--json",
        "--state-dir",
        s(state),
    ])
}

/// Keys under `prefix` in a store's Milvus bucket.
fn keys_under(stack: &Stack, side: Side, prefix: &str) -> Vec<String> {
    let store = stack.store(side);
    store.mc().keys(&store.bucket, prefix)
}

#[test]
fn migrate_between_two_minio_stores_verifies_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, a, b) = minio_profiles(tmp.path());
    let coll = unique("mm_minio");
    let expected = seed_full(&a, &coll, "8000");
    let state = tmp.path().join("state");
    let report = run_json(&[
        "migrate",
        "--from",
        s(&a),
        "--to",
        s(&b),
        "-c",
        &coll,
        "--suffix",
        "_bak",
        "--json",
        "--state-dir",
        s(&state),
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["target"], format!("default.{coll}_bak"), "{report}");
    assert_eq!(c["rows_a"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["rows_b"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["verified"], true, "{report}");
    assert_eq!(load_and_count(&b, &format!("{coll}_bak")), expected as i64);
    // Cleanup: no backup left on either store, nothing staged in B's bucket; Milvus B's own
    // data is there.
    let name = report["name"].as_str().unwrap();
    assert!(!keys_under(stack, Side::B, "files/insert_log/").is_empty());
    assert!(keys_under(stack, Side::A, &format!("backup/{name}/")).is_empty());
    assert!(keys_under(stack, Side::B, &format!("backup/{name}/")).is_empty());
    assert!(
        keys_under(stack, Side::B, "")
            .iter()
            .all(|k| !k.starts_with("restore-temp-")),
        "staged binlogs left in B's bucket"
    );
}

#[test]
fn a_backup_by_milvus_backup_is_copied_and_restored_by_us() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, a, b) = minio_profiles(tmp.path());
    let coll = unique("mb_made");
    let expected = seed_full(&a, &coll, "5000");
    let name = unique("mbk");

    milvus_backup_ok(&a, &["create", "-n", &name, "--filter", &coll]);
    let made = keys_under(stack, Side::A, &format!("backup/{name}/"));
    assert!(
        made.contains(&format!("backup/{name}/meta/backup_meta.json"))
            && made.iter().any(|k| k.contains("/binlogs/insert_log/")),
        "milvus-backup wrote no backup in its layout: {made:?}"
    );

    let copied = copy_backup(&a, &b, &name, &tmp.path().join("state"));
    assert_eq!(copied["objects_failed"], 0, "{copied}");
    assert!(copied["objects_copied"].as_u64().unwrap() > 5, "{copied}");

    let target = format!("{coll}_r");
    let restored = run_json(&[
        "restore",
        "--config",
        s(&b),
        "-n",
        &name,
        "--suffix",
        "_r",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    let c = &restored["collections"][0];
    assert_eq!(c["collection_name"], target.as_str(), "{restored}");
    assert_eq!(c["rows"].as_u64(), Some(expected), "{restored}");
    assert_eq!(load_and_count(&b, &target), expected as i64);
}

#[test]
fn our_backup_is_listed_shown_and_restored_by_milvus_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let (_stack, a, b) = minio_profiles(tmp.path());
    let coll = unique("mm_made");
    let expected = seed_full(&a, &coll, "5000");
    let name = unique("ours");
    let state = tmp.path().join("state");
    run_json(&[
        "create",
        "--config",
        s(&a),
        "-c",
        &coll,
        "-n",
        &name,
        "--json",
        "--state-dir",
        s(&state),
    ]);
    copy_backup(&a, &b, &name, &state);

    // milvus-backup sees it on B's store, with its collection.
    let listed = milvus_backup_ok(&b, &["list"]);
    assert!(
        listed.lines().any(|l| l.contains(&name)),
        "`list` does not show {name}:\n{listed}"
    );
    let got = milvus_backup_ok(&b, &["get", "-n", &name]);
    let json_start = got
        .find('{')
        .unwrap_or_else(|| panic!("no JSON from get:\n{got}"));
    let brief: Value = serde_json::from_str(got[json_start..].trim())
        .unwrap_or_else(|e| panic!("`get` printed no JSON ({e}):\n{got}"));
    assert_eq!(brief["name"], name, "{brief}");
    assert!(
        brief.to_string().contains(&coll),
        "`get` does not show {coll}: {brief}"
    );

    // ... and restores it into Milvus B with the rows we backed up.
    let target = format!("{coll}_mb");
    milvus_backup_ok(
        &b,
        &["restore", "-n", &name, "-s", "_mb", "--rebuild_index"],
    );
    assert_eq!(load_and_count(&b, &target), expected as i64);
}

#[test]
fn a_backup_bucket_missing_on_minio_is_created_by_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, a, _) = minio_profiles(tmp.path());
    let coll = unique("mm_minio_bk");
    let name = format!("{coll}_b");
    crate::milvus::seed(&a, &coll, &["--rows", "1000", "--dim", "8"]);
    run_json(&[
        "create",
        "--config",
        s(&a),
        "-n",
        &name,
        "-c",
        &coll,
        "--json",
    ]);
    // A backup bucket on B that does not exist yet (as milvus-backup, we create it).
    let bucket = format!("created-{}", coll.replace('_', "-"));
    let b = stack.profile(Side::B, tmp.path(), "b-new.yaml", &bucket, "backup", "");
    let copied = run_json(&[
        "copy",
        "--from",
        s(&a),
        "--to",
        s(&b),
        "-n",
        &name,
        "--json",
    ]);
    assert_eq!(copied["objects_failed"], 0, "{copied}");
    let keys = stack
        .store(Side::B)
        .mc()
        .keys(&bucket, &format!("backup/{name}/meta/"));
    assert!(
        keys.contains(&format!("backup/{name}/meta/backup_meta.json")),
        "{keys:?}"
    );
}
