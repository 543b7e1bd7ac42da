//! `migrate` end to end on two real Milvus 2.3.5 with their own s3s-fs stores: the seed
//! scenario's one command, `--direct`, a SIGKILL in the copy and in the restore phase followed by
//! the same command again, a name clash, and a backup kept in a local directory seeded into B.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::BIN;
use crate::milvus::{
    counts_of, profiles, profiles_with_b_backups_in, run_fatal, run_json, seed, unique,
};
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
    assert_eq!(phases, ["create", "copy", "restore", "verify", "cleanup"]);
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

/// Starts the migrate command, SIGKILLs it 1.5 s after its progress output shows `marker`,
/// and returns what it printed.
fn kill_when(args: &[&str], marker: &str) -> String {
    let (mut child, stderr) = start_until(args, marker);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    stderr.join().unwrap()
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

/// Starts the binary with `args` as the tests run it (warnings only, plain http), its stdout
/// piped and its stderr to `stderr`.
fn spawn(args: &[&str], stderr: impl Into<Stdio>) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start milvus-migrate")
}

/// Starts the binary with `args`; returns the child once its progress output shows `marker`,
/// and a thread collecting the rest of that output.
fn start_until(
    args: &[&str],
    marker: &str,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut child = spawn(args, Stdio::piped());
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            let rest = std::thread::spawn(move || {
                for l in lines.map_while(Result::ok) {
                    seen.push_str(&l);
                    seen.push('\n');
                }
                seen
            });
            return (child, rest);
        }
    }
    let status = child.wait().unwrap();
    panic!("never saw `{marker}` (exit {status}):\n{seen}");
}

fn json_of(child: std::process::Child, stderr: std::thread::JoinHandle<String>) -> Value {
    let out = child.wait_with_output().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {stderr}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Issue 16: the same migration started twice at once from two state directories (two pods
/// of a Job), then rerun after it completed, then rerun after its target was dropped.
#[test]
fn a_migration_runs_once_at_a_time_and_a_rerun_after_success_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_twice");
    let expected = seed_full(Path::new(a), &coll, "20000");
    let state = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let (s1, s2, s3, s4) = (state("s1"), state("s2"), state("s3"), state("s4"));
    let base = [
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    // The first run, slowed down so that the others start while it copies.
    let first = with(&["--state-dir", &s1, "--bwlimit", "2MiB/s"]);
    let (first, first_err) = start_until(&args(&first), "copy: ");

    // A second run: refused at once, exit 3, naming the run in progress.
    let second = with(&["--state-dir", &s2]);
    let out = crate::milvus::run(&args(&second));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is running on host"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains("--wait"), "{err}");

    // A third run waits, and finds the migration done when the first ends.
    let third = with(&["--state-dir", &s3, "--wait"]);
    let (third, third_err) = start_until(&args(&third), "waiting: ");

    let report = json_of(first, first_err);
    assert_verified(&report, expected);
    assert!(report["completed_earlier"].is_null(), "{report}");
    let name = report["name"].as_str().unwrap().to_string();

    let waited = json_of(third, third_err);
    assert!(waited["completed_earlier"].is_string(), "{waited}");
    assert_eq!(waited["collections"][0]["rows_b"].as_u64(), Some(expected));
    assert_eq!(waited["bytes_moved"], 0);

    // Nothing is left but the completion record: no lease, no state, no backup copies.
    let stack = Stack::get();
    for store in [&stack.store_a, &stack.store_b] {
        assert_eq!(
            files_under(&store.object_path(&format!("backup/{name}"))),
            0
        );
        assert!(
            !store
                .object_path(&format!("backup/{name}.migrate-lease.json"))
                .exists()
        );
        assert!(
            !store
                .object_path(&format!("backup/{name}.migrate-state.json"))
                .exists()
        );
    }
    assert!(
        stack
            .store_b
            .object_path(&format!("backup/{name}.migrate-done.json"))
            .is_file()
    );

    // A rerun after success: exit 0, nothing done, B unchanged.
    let rerun = run_json(&args(&with(&["--state-dir", &s4])));
    assert_eq!(rerun["completed_earlier"], waited["completed_earlier"]);
    assert_eq!(rerun["phases"][0]["phase"], "check");
    assert!(rerun["restore"].is_null(), "{rerun}");
    assert!(
        !stack
            .store_b
            .object_path(&format!("backup/{name}.migrate-lease.json"))
            .exists()
    );

    // The target dropped since: the rerun says so and exits 2; --drop-existing migrates again.
    let target = format!("{coll}_bak");
    crate::milvus::on_milvus(Path::new(b), async |c| {
        c.drop_collection(&target).await.unwrap()
    });
    let err = run_fatal(&args(&with(&["--state-dir", &s4])));
    assert!(
        err.contains(&format!("`default.{target}` was dropped")),
        "{err}"
    );
    assert!(err.contains("--drop-existing"), "{err}");
    let again = run_json(&args(&with(&["--state-dir", &s4, "--drop-existing"])));
    assert_verified(&again, expected);
    assert!(again["completed_earlier"].is_null(), "{again}");
}

/// Issue 16: a run killed on another machine (a pod on a lost node) leaves its lease; the same
/// migration is refused while the lease is fresh, and taken over once it has not been renewed
/// for its ttl, then completes.
#[test]
fn a_lease_left_by_a_run_on_another_host_is_taken_over_once_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_takeover");
    let expected = seed_full(Path::new(a), &coll, "2000");
    let name = unique("mg_takeover_run");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // As the other run wrote it: renewed 2 s ago, ttl 8 s.
    let lease = serde_json::json!({
        "job": name, "owner": "0123456789abcdef0123456789abcdef", "host": "node-7",
        "pid": 4242, "boot_id": "", "pid_start": 0,
        "started_at": now - 600, "renewed_at": now - 2, "ttl_secs": 8,
    });
    let key = Stack::get()
        .store_b
        .object_path(&format!("backup/{name}.migrate-lease.json"));
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, serde_json::to_vec(&lease).unwrap()).unwrap();

    let args = [
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "-n", &name,
    ];
    let out = crate::milvus::run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("running on host node-7 (pid 4242)"), "{err}");

    let started = std::time::Instant::now();
    let mut waiting: Vec<&str> = args.to_vec();
    waiting.extend(["--wait", "--json"]);
    let report = run_json(&waiting);
    assert_verified(&report, expected);
    // Taken over no sooner than the ttl after the last renewal.
    assert!(started.elapsed() >= std::time::Duration::from_secs(5));
    assert!(!key.exists(), "the lease is released at the end");
}

/// Issue 16: `kill -9` at random moments (seeded) of a migration whose binlogs are staged on B
/// (B's backups in a bucket of their own), then the same command: every run ends verified,
/// and nothing is left in either store but the completion record.
#[test]
fn killed_at_random_moments_every_rerun_ends_verified_with_nothing_left() {
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().unwrap();
    let stack = Stack::get();
    let backups = "bucket-b-backups";
    std::fs::create_dir_all(stack.store_b.data_dir.join(backups)).unwrap();
    let (a, b) = profiles_with_b_backups_in(tmp.path(), backups);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let state = tmp.path().join("state");
    let state = state.to_str().unwrap();
    let coll = unique("mg_rkill");
    let expected = seed_full(Path::new(a), &coll, "6000");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(16);
    for round in 0..4 {
        let suffix = format!("_k{round}");
        let args = [
            "migrate",
            "--from",
            a,
            "--to",
            b,
            "-c",
            &coll,
            "--suffix",
            &suffix,
            "--bwlimit",
            "2MiB/s",
            "--state-dir",
            state,
        ];
        let delay = std::time::Duration::from_millis(rng.random_range(300..12_000));
        let log = tmp.path().join(format!("killed_{round}.log"));
        let mut child = spawn(&args, std::fs::File::create(&log).unwrap());
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        let seen = std::fs::read_to_string(&log).unwrap_or_default();
        let last_step = seen.lines().last().unwrap_or("(nothing yet)").to_string();
        eprintln!("round {round}: killed after {delay:?}, at: {last_step}");

        let mut again: Vec<&str> = args.to_vec();
        again.push("--json");
        let report = run_json(&again);
        assert_verified(&report, expected);
        let name = report["name"].as_str().unwrap();
        let target = format!("{coll}{suffix}");
        let context = format!("round {round}, killed after {delay:?} at `{last_step}`: {report}");
        assert_eq!(
            files_under(&stack.store_a.object_path(&format!("backup/{name}"))),
            0,
            "{context}"
        );
        let b_backups = stack.store_b.data_dir.join(backups).join("backup");
        assert_eq!(files_under(&b_backups.join(name)), 0, "{context}");
        for record in ["lease", "state"] {
            assert!(
                !b_backups
                    .join(format!("{name}.migrate-{record}.json"))
                    .exists(),
                "{record} left: {context}"
            );
        }
        assert!(
            b_backups
                .join(format!("{name}.migrate-done.json"))
                .is_file(),
            "{context}"
        );
        let staged = milvus_migrate::restore::temp_prefix(name, "default", &target);
        assert_eq!(
            files_under(&stack.store_b.bucket_dir().join(staged)),
            0,
            "{context}"
        );
    }
}

/// Issue 16: the copy between the stores and the restore run at once. Over a slow link
/// (`--bwlimit`) segments are imported on B while later ones are still being copied, both
/// where B imports straight from its backup store (same bucket as its Milvus) and where the
/// binlogs are staged from a backup bucket of their own; `--sequential` does one after the
/// other. Each ends verified by content.
#[test]
fn segments_are_imported_on_b_while_the_copy_still_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = Stack::get();
    let (a, in_place) = profiles(tmp.path());
    let backups = "bucket-b-pipe";
    std::fs::create_dir_all(stack.store_b.data_dir.join(backups)).unwrap();
    let staged = stack.profile(
        crate::support::milvus::Side::B,
        tmp.path(),
        "b-staged.yaml",
        backups,
        "backup",
        "",
    );
    let a = a.to_str().unwrap();
    let coll = unique("mg_pipe");
    // Two partitions besides _default, two shards: six data segments.
    let seeded = seed(
        Path::new(a),
        &coll,
        &[
            "--rows",
            "12000",
            "--dim",
            "32",
            "--partitions",
            "p1,p2",
            "--shards",
            "2",
            "--delete-every",
            "7",
        ],
    );
    let expected = counts_of(&seeded).0;
    for (b, suffix, sequential) in [
        (&in_place, "_pin", false),
        (&staged, "_pst", false),
        (&staged, "_psq", true),
    ] {
        let mut args = vec![
            "migrate",
            "--from",
            a,
            "--to",
            b.to_str().unwrap(),
            "-c",
            &coll,
            "--suffix",
            suffix,
            "--bwlimit",
            "128KiB/s",
            "--json",
        ];
        if sequential {
            args.push("--sequential");
        }
        let report = run_json(&args);
        assert_verified(&report, expected);
        let c = &report["collections"][0];
        assert_eq!(c["verified_by"], "content (sample)", "{report}");
        let during = &report["imports_during_copy"];
        if sequential {
            assert!(during.is_null(), "{report}");
        } else {
            let during = during.as_u64().expect("imports_during_copy");
            let segments = report["restore"]["collections"][0]["segments"]
                .as_u64()
                .unwrap();
            assert!(
                during >= 1,
                "{suffix}: {during} of {segments} imports ended while the copy ran: {report}"
            );
        }
    }
}

/// A backup bucket that does not exist yet on B's store is created, as milvus-backup does for
/// its backup storage: a profile naming a new `backupBucketName` works as it is.
#[test]
fn a_backup_bucket_missing_on_b_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = Stack::get();
    let bucket = unique("nb").replace('_', "-");
    let dir = stack.store_b.data_dir.join(&bucket);
    assert!(!dir.exists());
    let (a, b) = profiles_with_b_backups_in(tmp.path(), &bucket);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("mg_newbucket");
    seed(Path::new(a), &coll, &["--rows", "500", "--dim", "4"]);
    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["verified_by"], "content (sample)", "{report}");
    assert_eq!(c["rows_b"].as_u64(), Some(500), "{report}");
    assert!(
        dir.is_dir(),
        "bucket {bucket} not created in {}",
        dir.display()
    );
}
