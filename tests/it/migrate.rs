//! `migrate` end to end on two real Milvus 2.3.5 with their own s3s-fs stores: the seed
//! scenario's one command, `--direct`, a SIGKILL in the copy and in the restore phase followed by
//! the same command again, a name clash, and a backup kept in a local directory seeded into B.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::BIN;
use crate::milvus::{counts_of, profiles, run_fatal, run_json, seed, unique};
use crate::support::milvus::Stack;

/// Seeds a collection with partitions, deletes and dynamic fields; returns its expected rows.
pub fn seed_full(profile: &Path, coll: &str, rows: &str) -> u64 {
    let seeded = seed(
        profile,
        coll,
        &[
            "--rows",
            rows,
            "--dim",
            "32",
            "--partitions",
            "p1,p2",
            "--dynamic",
            "--delete-every",
            "9",
        ],
    );
    counts_of(&seeded).0
}

/// Keys of objects (files) under a directory of a store's data dir.
pub fn files_under(dir: &Path) -> usize {
    if !dir.exists() {
        return 0;
    }
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            if e.path().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

pub fn assert_verified(report: &Value, expected: u64) {
    let c = &report["collections"][0];
    assert_eq!(c["rows_a"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["rows_b"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["verified"], true, "{report}");
}

#[test]
fn migrate_moves_a_collection_in_one_command_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_one");
    let expected = seed_full(Path::new(a), &coll, "5000");

    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    assert_verified(&report, expected);
    assert_eq!(
        report["collections"][0]["target"],
        format!("default.{coll}_bak")
    );
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["create", "copy", "restore", "cleanup"]);
    assert!(report["bytes_moved"].as_u64().unwrap() > 0);

    // The intermediate copies are gone from both backup stores.
    let stack = Stack::get();
    let name = report["name"].as_str().unwrap();
    assert_eq!(
        files_under(&stack.store_a.object_path(&format!("backup/{name}"))),
        0
    );
    assert_eq!(
        files_under(&stack.store_b.object_path(&format!("backup/{name}"))),
        0
    );
}

#[test]
fn migrate_direct_writes_the_backup_only_into_b() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_direct");
    let expected = seed_full(Path::new(a), &coll, "3000");

    let report = run_json(&[
        "migrate",
        "--from",
        a,
        "--to",
        b,
        "-c",
        &coll,
        "--suffix",
        "_d",
        "--direct",
        "--keep-backup",
        "--json",
    ]);
    assert_verified(&report, expected);
    // One copy: A's Milvus bucket straight into B's backup store, nothing to copy after.
    assert!(report["copy"].is_null(), "{report}");
    let stack = Stack::get();
    let name = report["name"].as_str().unwrap();
    assert_eq!(
        files_under(&stack.store_a.object_path(&format!("backup/{name}"))),
        0
    );
    assert!(
        stack
            .store_b
            .object_path(&format!("backup/{name}/meta/backup_meta.json"))
            .is_file()
    );
}

#[test]
fn name_clash_on_b_fails_before_anything_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_clash");
    seed(Path::new(a), &coll, &["--rows", "200", "--dim", "8"]);
    seed(
        Path::new(b),
        &format!("{coll}_bak"),
        &["--rows", "10", "--dim", "8", "--no-load"],
    );
    let name = unique("mg_clash_b");
    let err = run_fatal(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "-n", &name,
    ]);
    assert!(
        err.contains(&format!("collection `default.{coll}_bak` already exists")),
        "{err}"
    );
    let stack = Stack::get();
    assert_eq!(
        files_under(&stack.store_a.object_path(&format!("backup/{name}"))),
        0
    );
    assert_eq!(
        files_under(&stack.store_b.object_path(&format!("backup/{name}"))),
        0
    );
}

/// Starts the migrate command, SIGKILLs it once its progress output shows `marker`, and returns
/// what it printed.
fn kill_when(args: &[&str], marker: &str) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start milvus-migrate");
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            child.kill().unwrap();
            child.wait().unwrap();
            return seen;
        }
    }
    let status = child.wait().unwrap();
    panic!("never saw `{marker}` (exit {status}):\n{seen}");
}

#[test]
fn killed_during_copy_or_restore_the_same_command_completes_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let state = tmp.path().join("state");
    let state = state.to_str().unwrap();

    // Killed in the copy phase (slowed down so the kill lands in it).
    let coll = unique("mg_kill_copy");
    let expected = seed_full(Path::new(a), &coll, "20000");
    let args = [
        "migrate",
        "--from",
        a,
        "--to",
        b,
        "-c",
        &coll,
        "--suffix",
        "_bak",
        "--bwlimit",
        "1MiB/s",
        "--state-dir",
        state,
    ];
    kill_when(&args, "copy: ");
    let mut again: Vec<&str> = args.to_vec();
    again.push("--json");
    let report = run_json(&again);
    assert_verified(&report, expected);
    let create = report["phases"][0]["note"].as_str().unwrap();
    assert!(create.contains("reused the complete backup"), "{report}");
    assert!(
        report["copy"]["objects_skipped"].as_u64().unwrap() > 0,
        "the rerun continues the copy: {report}"
    );

    // Killed while B imports: the partial collection is dropped and the restore redone.
    let coll = unique("mg_kill_restore");
    let expected = seed_full(Path::new(a), &coll, "3000");
    let args = [
        "migrate",
        "--from",
        a,
        "--to",
        b,
        "-c",
        &coll,
        "--suffix",
        "_bak",
        "--state-dir",
        state,
    ];
    kill_when(&args, "importing");
    let mut again: Vec<&str> = args.to_vec();
    again.push("--json");
    let report = run_json(&again);
    assert_verified(&report, expected);
}

#[test]
fn a_backup_kept_in_a_local_directory_seeds_b() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_local");
    let expected = seed_full(Path::new(a), &coll, "2000");
    let name = format!("{coll}_b");
    run_json(&["create", "--config", a, "-n", &name, "-c", &coll, "--json"]);

    // The backup as a CI job keeps it: a directory, described by a backup-only profile.
    let dir = tmp.path().join("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let local = tmp.path().join("local.yaml");
    std::fs::write(
        &local,
        format!(
            "minio:\n  backupStorageType: local\n  backupRootPath: {}\n",
            dir.display()
        ),
    )
    .unwrap();
    let local = local.to_str().unwrap();
    run_json(&["copy", "--from", a, "--to", local, "-n", &name, "--json"]);
    assert!(dir.join(&name).join("meta/full_meta.json").is_file());

    let report = run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        local,
        "-n",
        &name,
        "-s",
        "_ci",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["rows"].as_u64(), Some(expected), "{report}");
    assert_eq!(c["verified"], true, "{report}");
    assert!(c["staged_objects"].as_u64().unwrap() > 0);
}

/// Regression: counting per partition is refused on partition-key collections; their backup
/// records the total only. Also a rename into a database that does not exist on B yet.
#[test]
fn partition_key_collection_migrates_into_another_database() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_pkey");
    let seeded = seed(
        Path::new(a),
        &coll,
        &[
            "--rows",
            "3000",
            "--dim",
            "8",
            "--partition-key",
            "4",
            "--varchar-pk",
            "--dynamic",
            "--delete-every",
            "5",
        ],
    );
    let expected = counts_of(&seeded).0;
    let db = unique("mgdb");
    let rename = format!("{coll}:{db}.{coll}");
    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--rename", &rename, "--json",
    ]);
    assert_verified(&report, expected);
    assert_eq!(report["collections"][0]["target"], format!("{db}.{coll}"));
}
