//! Integration tests: the real `milvus-migrate` binary against real s3s-fs servers that the
//! harness starts on free loopback ports (two stores with different credentials and buckets, as
//! in the user's minio_A / minio_B), with a fault-injecting proxy where a server cannot produce a
//! failure on demand.

mod copy;
mod daemon;
mod metadata;
mod migrate;
mod milvus;
mod minio_stack;
mod restore_options;
mod support;
mod tls;
mod verify;
mod versions;

use std::path::{Path, PathBuf};
use std::process::Output;

use milvus_migrate::copy::checksum;
use rand::{RngCore, SeedableRng, rngs::SmallRng};
use serde_json::Value;
use support::s3::{Kind, S3Server};

pub const BIN: &str = env!("CARGO_BIN_EXE_milvus-migrate");

/// Two s3s-fs stores like the seed scenario's minio_A and minio_B.
pub fn two_stores(tag: &str) -> (S3Server, S3Server) {
    two_stores_of(Kind::S3sFs, tag)
}

/// Two stores of one kind, with different credentials and buckets.
pub fn two_stores_of(kind: Kind, tag: &str) -> (S3Server, S3Server) {
    let a = S3Server::start_kind(
        kind,
        &format!("{tag}-a"),
        "key-a",
        "secret-a-123",
        "bucket-a",
    );
    let b = S3Server::start_kind(
        kind,
        &format!("{tag}-b"),
        "key-b",
        "secret-b-456",
        "bucket-b",
    );
    (a, b)
}

/// A v1 backup.yaml (the shape of the milvus-backup docs) for a store, with an optional
/// `transfer:` block and another endpoint (a proxy) in front of it.
pub fn profile(
    dir: &Path,
    file: &str,
    s: &S3Server,
    port: u16,
    root: &str,
    transfer: &str,
) -> PathBuf {
    let text = format!(
        r#"# milvus proxy address, compatible to milvus.yaml
milvus:
  address: localhost
  port: 19530
  authorizationEnabled: false
  tlsMode: 0
  user: "root"
  password: "Milvus"
minio:
  storageType: "minio"
  address: 127.0.0.1
  port: {port}
  accessKeyID: {ak}
  secretAccessKey: {sk}
  useSSL: false
  useIAM: false
  iamEndpoint: ""
  bucketName: "{bucket}"
  rootPath: "files"
  backupBucketName: "{bucket}"
  backupRootPath: "{root}"
{transfer}
"#,
        ak = s.access_key,
        sk = s.secret_key,
        bucket = s.bucket,
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Deterministic random bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    SmallRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Stores an object in a server's bucket. On s3s-fs it is written straight into the bucket
/// with its MD5 ETag recorded as a single PUT would have it; MinIO gets a real upload.
pub fn seed(s: &S3Server, key: &str, bytes: &[u8]) {
    s.write_object(key, bytes);
    if s.kind == Kind::Minio {
        return;
    }
    let mut h = checksum::Hasher::default();
    h.update(bytes);
    s.write_etag(key, &checksum::md5_hex(&h.finish()));
}

/// Asserts that every object under `pa` in `a` is under `pb` in `b` with the same bytes, and
/// nothing else is there. Returns the number of objects compared.
pub fn assert_same_tree(a: &S3Server, pa: &str, b: &S3Server, pb: &str) -> usize {
    let ka: Vec<String> = a
        .list_keys(&a.bucket)
        .into_iter()
        .filter_map(|k| k.strip_prefix(&format!("{pa}/")).map(str::to_string))
        .collect();
    let kb: Vec<String> = b
        .list_keys(&b.bucket)
        .into_iter()
        .filter_map(|k| k.strip_prefix(&format!("{pb}/")).map(str::to_string))
        .collect();
    assert_eq!(ka, kb, "different key sets");
    for k in &ka {
        let x = a.read_object(&format!("{pa}/{k}")).unwrap();
        let y = b.read_object(&format!("{pb}/{k}")).unwrap();
        assert!(
            x == y,
            "{k}: bytes differ ({} vs {} bytes)",
            x.len(),
            y.len()
        );
    }
    ka.len()
}

/// Runs the binary and waits (async, so a proxy in this runtime keeps serving).
pub async fn run(args: &[&str]) -> Output {
    run_env(args, &[]).await
}

/// [`run`] with extra environment variables.
pub async fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run milvus-migrate")
}

/// Parses the `--json` report on stdout.
pub fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `copy --from FROM --to TO -n NAME` with extra arguments.
pub async fn run_copy(from: &Path, to: &Path, name: &str, extra: &[&str]) -> Output {
    run_copy_env(from, to, name, extra, &[]).await
}

/// [`run_copy`] with extra environment variables.
pub async fn run_copy_env(
    from: &Path,
    to: &Path,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec!["copy"];
    args.extend(copy_args(from, to, name, extra));
    run_env(&args, env).await
}

/// The arguments of a copy after its verb: `--from FROM --to TO -n NAME EXTRA..`.
pub fn copy_args<'a>(
    from: &'a Path,
    to: &'a Path,
    name: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["--from", path_str(from), "--to", path_str(to), "-n", name];
    args.extend_from_slice(extra);
    args
}
