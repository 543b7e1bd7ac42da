//! `milvus-migrate copy` end to end between two real stores: s3s-fs, and for the round trip,
//! multipart edges, kill -9 and resume, faults and the rate limit, MinIO as well
//! (`on_both_servers!`: `NAME::s3s_fs` and `NAME::minio`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::fault_proxy::{FaultAction, FaultPlan, FaultProxy, FaultRule};
use crate::support::s3::{Kind, S3Server};
use crate::support::tls_front::TlsFront;
use crate::{
    assert_same_tree, path_str, profile, random_bytes, report, run, run_copy, run_copy_env, seed,
    stderr, two_stores, two_stores_of,
};

pub const MIB: usize = 1 << 20;
/// Small settings so the edge cases are cheap: 5 MiB parts (the S3 minimum), 8 MiB threshold.
const SMALL_PARTS: [&str; 4] = ["--part-size", "5MiB", "--multipart-threshold", "8MiB"];

/// Runs each named `async fn NAME(kind: Kind)` as two tests, `NAME::s3s_fs` and `NAME::minio`.
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::support::s3::Kind;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3s_fs() {
                super::$name(Kind::S3sFs).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn minio() {
                super::$name(Kind::Minio).await
            }
        }
    )*};
}

on_both_servers!(
    copies_every_edge_size_byte_exact_and_skips_on_rerun,
    resumes_after_sigkill_from_completed_parts,
    survives_resets_errors_and_stalls,
    permanent_part_failure_aborts_the_upload_and_withholds_the_meta,
    byte_rate_limit_holds_for_a_real_copy,
);

/// Profiles `a.yaml` for A and `b.yaml` for B reached through `proxy_b`.
fn profiles_with_b_behind(
    dir: &Path,
    a: &S3Server,
    b: &S3Server,
    proxy_b: &FaultProxy,
) -> (PathBuf, PathBuf) {
    let pa = profile(dir, "a.yaml", a, a.port, "backup", "");
    let pb = profile(dir, "b.yaml", b, proxy_b.addr().port(), "backup", "");
    (pa, pb)
}

/// Seeds backup `name` in A under `backup/`: one binlog `obj_<size>` of random bytes per size
/// (seeds from `first_seed` on), then its `meta/backup_meta.json`.
fn seed_backup(a: &S3Server, name: &str, sizes: &[usize], first_seed: u64) {
    for (i, size) in sizes.iter().enumerate() {
        seed(
            a,
            &format!("backup/{name}/binlogs/obj_{size}"),
            &random_bytes(first_seed + i as u64, *size),
        );
    }
    seed(
        a,
        &format!("backup/{name}/meta/backup_meta.json"),
        &backup_meta(name),
    );
}

pub fn backup_meta(name: &str) -> Vec<u8> {
    format!(r#"{{"id":"id-{name}","state_code":0,"name":"{name}","size":1}}"#).into_bytes()
}

async fn copies_every_edge_size_byte_exact_and_skips_on_rerun(kind: Kind) {
    let (a, b) = two_stores_of(kind, "edge");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backup", "");
    let sizes = [
        0,
        1,
        5 * MIB - 1,
        5 * MIB,
        5 * MIB + 1,
        8 * MIB - 1,
        8 * MIB,
        8 * MIB + 1,
        300 * MIB,
    ];
    seed_backup(&a, "edge", &sizes, 0);
    let state = dir.path().join("state");
    let args = [
        &[
            "copy",
            "--from",
            path_str(&pa),
            "--to",
            path_str(&pb),
            "-n",
            "edge",
            "--json",
        ][..],
        &SMALL_PARTS[..],
        &["--state-dir", path_str(&state)][..],
    ]
    .concat();
    let out = run(&args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    let n = sizes.len() as u64 + 1;
    assert_eq!(r["objects_copied"], n);
    assert_eq!(r["objects_failed"], 0);
    assert_eq!(r["objects_verified"], n, "every object checked by MD5");
    assert_eq!(
        assert_same_tree(&a, "backup/edge", &b, "backup/edge"),
        n as usize
    );
    assert!(b.open_multipart_uploads().is_empty());

    // The same command again: nothing is copied twice.
    let out = run(&args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["objects_copied"], 0);
    assert_eq!(r["objects_skipped"], n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_two_thousand_small_objects() {
    let (a, b) = two_stores("small");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backups/other", "");
    for i in 0..2000u64 {
        let size = (i as usize * 7919) % (16 * 1024);
        seed(
            &a,
            &format!("backup/many/binlogs/{}/{i}", i % 37),
            &random_bytes(i, size),
        );
    }
    seed(
        &a,
        "backup/many/meta/backup_meta.json",
        &backup_meta("many"),
    );
    let out = run_copy(&pa, &pb, "many", &["--json", "--no-ledger"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["objects_copied"], 2001);
    // A different backup root at B: the layout follows each profile's backupRootPath.
    assert_eq!(
        assert_same_tree(&a, "backup/many", &b, "backups/other/many"),
        2001
    );
}

async fn resumes_after_sigkill_from_completed_parts(kind: Kind) {
    let (a, b) = two_stores_of(kind, "kill");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backup", "");
    for i in 0..2u64 {
        seed(
            &a,
            &format!("backup/big/binlogs/large_{i}"),
            &random_bytes(100 + i, 60 * MIB),
        );
    }
    for i in 0..40u64 {
        seed(
            &a,
            &format!("backup/big/binlogs/small_{i}"),
            &random_bytes(i, 64 * 1024),
        );
    }
    seed(&a, "backup/big/meta/backup_meta.json", &backup_meta("big"));
    let state = dir.path().join("state");
    let base = [
        &[
            "copy",
            "--from",
            path_str(&pa),
            "--to",
            path_str(&pb),
            "-n",
            "big",
            "--json",
        ][..],
        &SMALL_PARTS[..],
        &["--state-dir", path_str(&state)][..],
    ]
    .concat();

    // Slow the first run down so it is surely in the middle of the large objects when killed.
    let mut slow = base.clone();
    slow.extend(["--bwlimit", "20MiB/s", "--quiet"]);
    let mut child = tokio::process::Command::new(crate::BIN)
        .args(&slow)
        .env_remove("AWS_CA_BUNDLE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ledger_dir = state.join("ledgers");
    let parts_written = || {
        std::fs::read_dir(&ledger_dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .map_or(0, |t| t.matches(r#""t":"part""#).count())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while parts_written() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no parts recorded in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    // The killed run left its uploads open (which also shows that the helper sees them, so
    // the checks that none is left are real).
    assert!(
        !b.open_multipart_uploads().is_empty(),
        "no open multipart upload after the kill"
    );
    assert!(
        b.read_object("backup/big/meta/backup_meta.json").is_none(),
        "the meta marking the backup complete must come last"
    );

    let out = run(&base).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["objects_failed"], 0);
    assert!(
        r["parts_reused"].as_u64().unwrap() >= 1,
        "large objects resume from completed parts: {r}"
    );
    assert!(r["objects_resumed"].as_u64().unwrap() >= 1, "{r}");
    let total = r["objects_total"].as_u64().unwrap();
    assert_eq!(total, 43);
    assert!(
        r["objects_copied"].as_u64().unwrap() < total,
        "objects finished before the kill are skipped: {r}"
    );
    assert_eq!(assert_same_tree(&a, "backup/big", &b, "backup/big"), 43);
    assert!(b.open_multipart_uploads().is_empty());
}

async fn survives_resets_errors_and_stalls(kind: Kind) {
    let (a, b) = two_stores_of(kind, "faults");
    let proxy_b = FaultProxy::start(
        b.addr(),
        FaultPlan::none()
            .rule(FaultRule::new(FaultAction::Reset).method("PUT").nth(3))
            .rule(
                FaultRule::new(FaultAction::Status(500))
                    .path_contains("partNumber")
                    .every(5),
            )
            .rule(
                FaultRule::new(FaultAction::Status(503))
                    .method("PUT")
                    .nth(10),
            )
            .rule(
                FaultRule::new(FaultAction::stall_then_reset(Duration::from_secs(4)))
                    .method("PUT")
                    .nth(20),
            ),
    )
    .await;
    let proxy_a = FaultProxy::start(
        a.addr(),
        FaultPlan::none().rule(
            FaultRule::new(FaultAction::reset_mid_body())
                .method("GET")
                .path_contains("large")
                .nth(2),
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let transfer = "transfer:\n  readTimeout: 2s\n";
    let pa = profile(
        dir.path(),
        "a.yaml",
        &a,
        proxy_a.addr().port(),
        "backup",
        "",
    );
    let pb = profile(
        dir.path(),
        "b.yaml",
        &b,
        proxy_b.addr().port(),
        "backup",
        transfer,
    );
    // The read timeout of the writing side comes from the source profile's transfer block.
    let pa = {
        let text = std::fs::read_to_string(&pa).unwrap() + transfer;
        std::fs::write(&pa, text).unwrap();
        pa
    };
    for i in 0..3u64 {
        seed(
            &a,
            &format!("backup/f/binlogs/large_{i}"),
            &random_bytes(i, 23 * MIB),
        );
    }
    for i in 0..30u64 {
        seed(
            &a,
            &format!("backup/f/binlogs/small_{i}"),
            &random_bytes(50 + i, 100_000),
        );
    }
    seed(&a, "backup/f/meta/backup_meta.json", &backup_meta("f"));
    let args = [
        &[
            "copy",
            "--from",
            path_str(&pa),
            "--to",
            path_str(&pb),
            "-n",
            "f",
            "--json",
            "--no-ledger",
        ][..],
        &SMALL_PARTS[..],
    ]
    .concat();
    let out = run(&args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert!(
        proxy_b.faults_injected() >= 4,
        "faults: {}",
        proxy_b.faults_injected()
    );
    assert!(proxy_a.faults_injected() >= 1);
    assert!(
        r["retries"].as_u64().unwrap() >= proxy_a.faults_injected() + proxy_b.faults_injected(),
        "{r}"
    );
    assert_eq!(assert_same_tree(&a, "backup/f", &b, "backup/f"), 34);
    assert!(b.open_multipart_uploads().is_empty());
}

async fn permanent_part_failure_aborts_the_upload_and_withholds_the_meta(kind: Kind) {
    let (a, b) = two_stores_of(kind, "perm");
    let proxy_b = FaultProxy::start(
        b.addr(),
        FaultPlan::none().rule(
            FaultRule::new(FaultAction::Status(500))
                .path_contains("partNumber=2&")
                .always(),
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = profiles_with_b_behind(dir.path(), &a, &b, &proxy_b);
    seed(&a, "backup/p/binlogs/large", &random_bytes(1, 12 * MIB));
    seed(&a, "backup/p/binlogs/small", &random_bytes(2, 1000));
    seed(&a, "backup/p/meta/backup_meta.json", &backup_meta("p"));
    let args = [
        &[
            "copy",
            "--from",
            path_str(&pa),
            "--to",
            path_str(&pb),
            "-n",
            "p",
            "--json",
            "--retries",
            "2",
        ][..],
        &SMALL_PARTS[..],
    ]
    .concat();
    let out = run(&args).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(
        r["objects_failed"], 2,
        "the large object and the withheld meta: {r}"
    );
    let failed: Vec<&str> = r["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"binlogs/large"), "{failed:?}");
    assert!(failed.contains(&"meta/backup_meta.json"), "{failed:?}");
    assert!(
        b.open_multipart_uploads().is_empty(),
        "the failed upload is aborted"
    );
    assert!(b.read_object("backup/p/binlogs/large").is_none());
    assert_eq!(
        b.read_object("backup/p/binlogs/small").unwrap(),
        random_bytes(2, 1000)
    );
    assert!(b.read_object("backup/p/meta/backup_meta.json").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_clear_line_with_exit_code_2() {
    let (a, b) = two_stores("bad");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pa = profile(d, "a.yaml", &a, a.port, "backup", "");
    let pb = profile(d, "b.yaml", &b, b.port, "backup", "");
    seed(
        &a,
        "backup/real_one/meta/backup_meta.json",
        &backup_meta("real_one"),
    );
    seed(&a, "backup/real_one/binlogs/x", b"xyz");
    seed(
        &a,
        "backup/another/meta/backup_meta.json",
        &backup_meta("another"),
    );

    let expect_fatal = |out: &std::process::Output, needles: &[&str]| {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for n in needles {
            assert!(err.contains(n), "`{n}` not in: {err}");
        }
        for secret in ["secret-a-123", "secret-b-456"] {
            assert!(!err.contains(secret), "secret leaked: {err}");
        }
    };

    // Backup name not found: the error lists what exists.
    let out = run_copy(&pa, &pb, "missing", &["--no-ledger"]).await;
    expect_fatal(
        &out,
        &[
            "backup `missing` not found",
            "another",
            "real_one",
            "bucket-a",
        ],
    );

    // A backup whose creation stopped before its meta: incomplete, and what is missing.
    seed(&a, "backup/half/binlogs/insert_log/1/2/3/4/5", b"rows");
    seed(&a, "backup/half/meta/collection_meta.json", b"{}");
    let out = run_copy(&pa, &pb, "half", &["--no-ledger"]).await;
    expect_fatal(
        &out,
        &[
            "backup `half`",
            "is incomplete",
            "meta/backup_meta.json",
            "meta/full_meta.json",
            "2 objects there",
        ],
    );
    assert!(
        !stderr(&out).contains("collection_meta.json"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("not found"), "{}", stderr(&out));

    // Invalid backup name.
    let out = run_copy(&pa, &pb, "9bad-name", &["--no-ledger"]).await;
    expect_fatal(&out, &["9bad-name"]);

    // Wrong credentials at the source.
    let wrong = std::fs::read_to_string(&pa)
        .unwrap()
        .replace("secret-a-123", "not-the-secret");
    let p_wrong = d.join("wrong.yaml");
    std::fs::write(&p_wrong, wrong).unwrap();
    let out = run_copy(&p_wrong, &pb, "real_one", &["--no-ledger"]).await;
    expect_fatal(&out, &["bucket-a", "403"]);
    assert!(!stderr(&out).contains("not-the-secret"));
    // The error names the keys the refused credentials come from, and the file.
    let named = stderr(&out).to_lowercase();
    assert!(
        named.contains("secretaccesskey`") && named.contains("wrong.yaml"),
        "{named}"
    );

    // A destination bucket that does not exist yet is created (as milvus-backup does for its
    // backup storage), with the profile's credentials, and the backup lands in it.
    let nob = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("bucket-b", "not-yet-a-bucket");
    let p_nob = d.join("nob.yaml");
    std::fs::write(&p_nob, nob).unwrap();
    let out = run_copy(&pa, &p_nob, "real_one", &["--no-ledger"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let landed = b
        .data_dir
        .join("not-yet-a-bucket/backup/real_one/binlogs/x");
    assert_eq!(std::fs::read(&landed).unwrap(), b"xyz");

    // Unreachable endpoint.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = profile(
        d,
        "down.yaml",
        &b,
        port,
        "backup",
        "transfer:\n  retries: 1\n",
    );
    let out = run_copy(&down, &pb, "real_one", &["--no-ledger"]).await;
    expect_fatal(&out, &[&format!("127.0.0.1:{port}")]);

    // Source equals destination.
    let out = run_copy(&pa, &pa, "real_one", &["--no-ledger"]).await;
    expect_fatal(&out, &["same"]);

    // A missing profile file and a broken one name the file.
    let out = run_copy(
        std::path::Path::new("/nonexistent/a.yaml"),
        &pb,
        "real_one",
        &[],
    )
    .await;
    expect_fatal(&out, &["/nonexistent/a.yaml"]);
    let broken = d.join("broken.yaml");
    std::fs::write(&broken, "minio:\n  port: [1, 2\n").unwrap();
    let out = run_copy(&broken, &pb, "real_one", &[]).await;
    expect_fatal(&out, &["broken.yaml", "invalid YAML"]);

    // A different backup of that name at the destination: refused, then replaced on request.
    seed(
        &b,
        "backup/real_one/meta/backup_meta.json",
        b"{\"id\":\"other\"}",
    );
    seed(&b, "backup/real_one/binlogs/stale", b"old");
    let out = run_copy(&pa, &pb, "real_one", &["--no-ledger"]).await;
    expect_fatal(&out, &["bucket-b", "--overwrite"]);
    assert_eq!(
        b.read_object("backup/real_one/binlogs/stale").unwrap(),
        b"old"
    );
    let out = run_copy(&pa, &pb, "real_one", &["--no-ledger", "--overwrite"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        assert_same_tree(&a, "backup/real_one", &b, "backup/real_one"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bucket_uses_server_side_copy() {
    let a = crate::support::s3::S3Server::start("sss", "key-s", "secret-s-789", "bucket-s");
    let dir = tempfile::tempdir().unwrap();
    let p1 = profile(dir.path(), "one.yaml", &a, a.port, "backup", "");
    let p2 = profile(dir.path(), "two.yaml", &a, a.port, "archive", "");
    seed(&a, "backup/s/binlogs/x", &random_bytes(9, 3 * MIB));
    seed(&a, "backup/s/meta/backup_meta.json", &backup_meta("s"));
    let out = run_copy(&p1, &p2, "s", &["--json", "--no-ledger"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["mode"], "server-side");
    assert_eq!(r["objects_copied"], 2);
    assert_eq!(assert_same_tree(&a, "backup/s", &a, "archive/s"), 2);

    // `transfer.mode: streaming` (milvus-backup's crossStorage) forces streaming.
    let p3 = profile(
        dir.path(),
        "three.yaml",
        &a,
        a.port,
        "backup",
        "transfer:\n  mode: streaming\n",
    );
    let p4 = profile(dir.path(), "four.yaml", &a, a.port, "streamed", "");
    let out = run_copy(&p3, &p4, "s", &["--json", "--no-ledger"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(report(&out)["mode"], "streaming");
    assert_eq!(assert_same_tree(&a, "backup/s", &a, "streamed/s"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory_profiles_on_either_side() {
    let (a, _b) = two_stores("local");
    let dir = tempfile::tempdir().unwrap();
    let local_dir = dir.path().join("local-store");
    let src = local_dir.join("backup/loc");
    std::fs::create_dir_all(src.join("meta")).unwrap();
    std::fs::create_dir_all(src.join("binlogs/1/2")).unwrap();
    std::fs::write(src.join("meta/backup_meta.json"), backup_meta("loc")).unwrap();
    let big = random_bytes(3, 11 * MIB);
    std::fs::write(src.join("binlogs/1/2/big"), &big).unwrap();
    std::fs::write(src.join("binlogs/1/2/small"), b"hello").unwrap();
    let local = dir.path().join("local.yaml");
    std::fs::write(
        &local,
        format!(
            "minio:\n  storageType: local\n  rootPath: {dir}/files\n  backupRootPath: {dir}/backup\n",
            dir = local_dir.display()
        ),
    )
    .unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let args = |from: &str, to: &str| {
        [
            &[
                "copy",
                "--from",
                from,
                "--to",
                to,
                "-n",
                "loc",
                "--json",
                "--no-ledger",
            ][..],
            &SMALL_PARTS[..],
        ]
        .concat()
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let up: Vec<String> = args(path_str(&local), path_str(&pa));
    let out = run(&up.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(a.read_object("backup/loc/binlogs/1/2/big").unwrap(), big);

    // And back down into another local directory.
    let local2_dir = dir.path().join("local-2");
    let local2 = dir.path().join("local2.yaml");
    std::fs::write(
        &local2,
        format!(
            "minio:\n  storageType: local\n  rootPath: {dir}/files\n  backupRootPath: {dir}/restored\n",
            dir = local2_dir.display()
        ),
    )
    .unwrap();
    let down: Vec<String> = args(path_str(&pa), path_str(&local2));
    let out = run(&down.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(local2_dir.join("restored/loc/binlogs/1/2/big")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read(local2_dir.join("restored/loc/binlogs/1/2/small")).unwrap(),
        b"hello"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_both_stores_and_masks_secrets() {
    let (a, _b) = two_stores("check");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let out = run(&["check", "--config", path_str(&pa)]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("check passed"), "{text}");
    assert!(text.contains("bucket-a"), "{text}");
    assert!(!text.contains("secret-a-123"), "secret printed: {text}");
    assert!(a.list_keys("bucket-a").is_empty(), "probe object deleted");

    let wrong = std::fs::read_to_string(&pa)
        .unwrap()
        .replace("secret-a-123", "wrong-secret");
    let pw = dir.path().join("wrong.yaml");
    std::fs::write(&pw, wrong).unwrap();
    let out = run(&["check", "--config", path_str(&pw)]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains("403"), "{text}");
    assert!(text.to_lowercase().contains("secretaccesskey`"), "{text}");
    assert!(!text.contains("wrong-secret"), "{text}");
}

async fn byte_rate_limit_holds_for_a_real_copy(kind: Kind) {
    // A short real run at a low rate; the exact rate is checked with paused time in unit tests
    // and at 50MiB/s by the benchmark. Here: the limit takes effect end to end.
    let (a, b) = two_stores_of(kind, "rate");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backup", "");
    for i in 0..8u64 {
        seed(&a, &format!("backup/r/binlogs/{i}"), &random_bytes(i, MIB));
    }
    seed(&a, "backup/r/meta/backup_meta.json", &backup_meta("r"));
    let out = run_copy(
        &pa,
        &pb,
        "r",
        &["--json", "--no-ledger", "--bwlimit", "2MiB/s"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    let secs = r["duration_secs"].as_f64().unwrap();
    // 8 MiB at 2 MiB/s, less the limiter's burst (at least 64 KiB, a tenth of a second here).
    assert!(secs >= 3.5, "8 MiB at 2 MiB/s took only {secs}s");
    assert!(secs < 8.0, "{secs}s");
}

/// An https destination whose certificate comes from a private CA: refused until the CA is
/// trusted (`SSL_CERT_FILE`), then copied byte for byte, multipart included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_to_an_https_store_once_its_ca_is_trusted() {
    let (a, b) = two_stores("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let front = TlsFront::start(b.addr(), &cert).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, front.port(), "backup", "");
    let text = std::fs::read_to_string(&pb).unwrap();
    let text = text
        .replacen("  address: 127.0.0.1\n", "  address: localhost\n", 1)
        .replacen("  useSSL: false\n", "  useSSL: true\n", 1);
    std::fs::write(&pb, text).unwrap();
    seed_backup(&a, "tls", &[0, 70_000, 12 * MIB], 50);
    let args = [&["--json", "--no-ledger"][..], &SMALL_PARTS[..]].concat();

    // The system's CAs only: the certificate is not trusted, and the error says so.
    let system = std::env::var("SSL_CERT_FILE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".to_string());
    let out = run_copy_env(&pa, &pb, "tls", &args, &[("SSL_CERT_FILE", &system)]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("certificate is not trusted"),
        "{}",
        stderr(&out)
    );
    assert!(b.list_keys(&b.bucket).is_empty(), "nothing written");

    let out = run_copy_env(&pa, &pb, "tls", &args, &[("SSL_CERT_FILE", path_str(&ca))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(report(&out)["objects_verified"], 4);
    assert_eq!(assert_same_tree(&a, "backup/tls", &b, "backup/tls"), 4);
    assert!(b.open_multipart_uploads().is_empty());
}

/// Bytes damaged between the copier and B: B itself refuses them (the PUT carries the source's
/// MD5 as `Content-MD5`, answered with `BadDigest`), so a damaged object is never stored,
/// and the retry puts the right bytes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_refuses_bytes_damaged_on_the_way() {
    let (a, b) = two_stores("flip");
    let proxy_b = FaultProxy::start(
        b.addr(),
        FaultPlan::none()
            .rule(
                FaultRule::new(FaultAction::FlipBodyByte)
                    .method("PUT")
                    .nth(2),
            )
            .rule(
                FaultRule::new(FaultAction::FlipBodyByte)
                    .method("PUT")
                    .nth(4),
            ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = profiles_with_b_behind(dir.path(), &a, &b, &proxy_b);
    let sizes: Vec<usize> = (0..6).map(|i| MIB + i).collect();
    seed_backup(&a, "d", &sizes, 70);
    let out = run_copy_env(
        &pa,
        &pb,
        "d",
        &["--json", "--no-ledger", "--concurrency", "1"],
        &[("RUST_LOG", "milvus_migrate=debug")],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(proxy_b.faults_injected(), 2);
    let r = report(&out);
    assert_eq!(r["retries"], 2, "{r}");
    assert_eq!(r["objects_verified"], 7, "{r}");
    // Refused by B, not found afterwards: nothing damaged was ever stored.
    let refused = stderr(&out)
        .lines()
        .filter(|l| l.contains("retrying") && l.contains("BadDigest"))
        .count();
    assert_eq!(refused, 2, "{}", stderr(&out));
    assert_eq!(assert_same_tree(&a, "backup/d", &b, "backup/d"), 7);
}

/// Sources whose ETags are not the plain lower-case MD5 the copier expects: upper-case hex
/// (Alibaba OSS) is the same digest; ETags that are not MD5s at all (SSE-KMS or SSE-C
/// objects on AWS) are recognised after two reads agree, and objects are then checked by
/// the MD5 computed while streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_with_upper_case_or_non_md5_etags_copy_verified() {
    let (a, b) = two_stores("etags");
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backup", "");
    for name in ["upper", "kms"] {
        for i in 0..5u64 {
            let key = format!("backup/{name}/binlogs/obj_{i}");
            let bytes = random_bytes(90 + i, 300_000 + i as usize);
            seed(&a, &key, &bytes);
            let md5 = md5_many::md5(&bytes);
            let etag = match name {
                "upper" => hex::encode_upper(md5),
                // 32 hex digits, not the bytes' MD5.
                _ => hex::encode(md5_many::md5(key.as_bytes())),
            };
            a.write_etag(&key, &etag);
        }
        let meta = format!("backup/{name}/meta/backup_meta.json");
        seed(&a, &meta, &backup_meta(name));
    }

    let out = run_copy(&pa, &pb, "upper", &["--json", "--no-ledger"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["retries"], 0, "upper-case hex is the same MD5: {r}");
    assert_eq!(r["objects_verified"], 6, "{r}");
    assert_eq!(assert_same_tree(&a, "backup/upper", &b, "backup/upper"), 6);

    let out = run_copy(
        &pa,
        &pb,
        "kms",
        &["--json", "--no-ledger", "--concurrency", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ETags are not MD5s"),
        "the finding is reported: {}",
        stderr(&out)
    );
    let r = report(&out);
    assert_eq!(r["objects_verified"], 6, "{r}");
    // The first object is read three times (B refuses the ETag, then two reads agree); the
    // others once, hashed here.
    assert_eq!(r["retries"], 2, "{r}");
    assert_eq!(assert_same_tree(&a, "backup/kms", &b, "backup/kms"), 6);
}

/// With `HTTP_PROXY` set, the stores are reached through the proxy (reqwest, absolute-form
/// requests), and `NO_PROXY` exempts a host: A, named `localhost`, directly; B through the
/// proxy, multipart upload included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goes_through_the_configured_http_proxy_except_no_proxy_hosts() {
    let (a, b) = two_stores("proxy");
    let proxy = FaultProxy::start(b.addr(), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let pa = profile(dir.path(), "a.yaml", &a, a.port, "backup", "");
    let text = std::fs::read_to_string(&pa).unwrap().replacen(
        "  address: 127.0.0.1\n",
        "  address: localhost\n",
        1,
    );
    std::fs::write(&pa, text).unwrap();
    let pb = profile(dir.path(), "b.yaml", &b, b.port, "backup", "");
    seed_backup(&a, "px", &[0, 70_000, 12 * MIB], 110);
    let args = [&["--json", "--no-ledger"][..], &SMALL_PARTS[..]].concat();
    let out = run_copy_env(
        &pa,
        &pb,
        "px",
        &args,
        &[("HTTP_PROXY", &proxy.endpoint()), ("NO_PROXY", "localhost")],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(report(&out)["objects_verified"], 4);
    assert_eq!(assert_same_tree(&a, "backup/px", &b, "backup/px"), 4);
    let log = proxy.request_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("PUT ") && l.contains("partNumber=")),
        "B's writes went through the proxy: {log:?}"
    );
    assert!(
        log.iter().all(|l| l.contains("/bucket-b")),
        "nothing for A went through the proxy: {log:?}"
    );
}

/// A destination whose ETags are not the MD5s of what it stores (AWS SSE-KMS): recognised once
/// it accepts the same bytes twice with their `Content-MD5`; from then on every body, single
/// or part, is sent with its `Content-MD5`, which the store checks, and the copy completes
/// verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_whose_etags_are_not_md5s_verifies_by_content_md5() {
    let (a, b) = two_stores("dkms");
    let proxy_b = FaultProxy::start(
        b.addr(),
        FaultPlan::none().rule(
            FaultRule::new(FaultAction::RewriteEtag)
                .method("PUT")
                .always(),
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = profiles_with_b_behind(dir.path(), &a, &b, &proxy_b);
    seed_backup(&a, "k", &[1, 300_000, 2 * MIB, 12 * MIB, 17 * MIB], 130);
    let args = [
        &["--json", "--no-ledger"][..],
        &["--concurrency", "1", "--parts-per-object", "1"][..],
        &SMALL_PARTS[..],
    ]
    .concat();
    let out = run_copy(&pa, &pb, "k", &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its ETags are not MD5s"),
        "the finding is reported: {}",
        stderr(&out)
    );
    let r = report(&out);
    assert_eq!(r["objects_verified"], 6, "{r}");
    // The first body (object or part) is sent twice; after that, every body goes with its
    // Content-MD5 and is accepted at once.
    assert_eq!(r["retries"], 1, "{r}\n{}", stderr(&out));
    assert_eq!(assert_same_tree(&a, "backup/k", &b, "backup/k"), 6);
    assert!(b.open_multipart_uploads().is_empty());
}
