//! milvus-backup's own shipped profiles, loaded with the meaning milvus-backup gives them, and a
//! no-panic property test of the loader.
//!
//! - 0.5 (schema v1): `configs/*.yaml` of milvus-backup v0.5.16, read from the Go module cache:
//!   the module's source directory is `$MILVUS_BACKUP_SRC` when set, else
//!   `github.com/zilliztech/milvus-backup@v0.5.16` under `$GOMODCACHE`, `$GOPATH/pkg/mod` or
//!   `$HOME/go/pkg/mod`. Missing files fail the test: run `scripts/install-deps.sh`.
//! - 0.6 (schema v2): fixtures in `tests/fixtures/milvus-backup-configs/0.6/` with the keys and
//!   values of milvus-backup's main branch (see the README there: the Go proxy refuses v0.6.x).
//! - Property: mutated profiles (values removed or replaced by odd ones, broken text, odd
//!   roots, deep nesting, odd environment values) give `Ok` or `Err`, never a panic.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_yaml::Value;

use super::tests::env_of;
use super::*;

const MB_05_VERSION: &str = "v0.5.16";

fn load_file(path: &Path, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    Profile::load_with_env(path, &env_of(env))
}

fn load_text(text: &str, path: &Path, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    Profile::from_yaml_str(text, path, &env_of(env))
}

fn ok(result: Result<Loaded, ConfigError>) -> Loaded {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// The error of a profile that must not load, checked for shape: one line, starting with the
/// file, naming `key` (an `Invalid` error) or the variable (an `Env` error).
fn err(result: Result<Loaded, ConfigError>, path: &Path, key: &str) -> String {
    let e = match result {
        Ok(l) => panic!(
            "{}: expected an error naming `{key}`, got a profile: {:?}",
            path.display(),
            l.profile.describe()
        ),
        Err(e) => e,
    };
    let text = e.to_string();
    match &e {
        ConfigError::Invalid { key: k, .. } => assert_eq!(k, key, "{text}"),
        ConfigError::Env { var, .. } => assert_eq!(var, key, "{text}"),
        other => panic!("expected an error about `{key}`, got {other}"),
    }
    assert!(text.starts_with(&format!("{}: ", path.display())), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
    text
}

fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect()
}

/// Where `go mod download` puts milvus-backup v0.5.16's `configs/`.
fn milvus_backup_05_configs() -> PathBuf {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let module = format!("github.com/zilliztech/milvus-backup@{MB_05_VERSION}");
    let src = if let Some(dir) = env("MILVUS_BACKUP_SRC") {
        PathBuf::from(dir)
    } else if let Some(cache) = env("GOMODCACHE") {
        PathBuf::from(cache).join(&module)
    } else if let Some(gopath) = env("GOPATH") {
        let first = std::env::split_paths(&gopath).next().unwrap_or_default();
        first.join("pkg/mod").join(&module)
    } else {
        let home = env("HOME").expect("HOME, GOMODCACHE or MILVUS_BACKUP_SRC must be set");
        PathBuf::from(home).join("go/pkg/mod").join(&module)
    };
    let configs = src.join("configs");
    assert!(
        configs.join("backup.yaml").is_file(),
        "milvus-backup {MB_05_VERSION}'s shipped profiles are not at {}: run scripts/install-deps.sh \
         (it runs `go mod download github.com/zilliztech/milvus-backup@{MB_05_VERSION}`), or point \
         MILVUS_BACKUP_SRC at that module's source directory",
        configs.display()
    );
    configs
}

fn fixtures_06() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/milvus-backup-configs/0.6")
}

fn assert_minio_defaults(s: &StorageConfig, bucket: &str, root: &str) {
    assert_eq!(s.storage_type, StorageType::Minio);
    assert_eq!((s.address.as_str(), s.port), ("localhost", 9000));
    assert!(!s.use_ssl);
    assert_eq!(s.region, "");
    assert_eq!((s.bucket.as_str(), s.root_path.as_str()), (bucket, root));
    assert_eq!(s.auth_type, AuthType::Static);
    assert_eq!(s.access_key_id, "minioadmin");
    assert_eq!(s.secret_access_key.expose(), "minioadmin");
    assert_eq!(
        (s.local_path.as_str(), s.milvus_local_path.as_str()),
        ("", "")
    );
}

fn assert_default_milvus(p: &Profile) {
    assert_eq!(
        (p.milvus.address.as_str(), p.milvus.port),
        ("localhost", 19530)
    );
    assert_eq!(p.milvus.user, "root");
    assert_eq!(p.milvus.password.expose(), "Milvus");
    assert_eq!(p.milvus.tls_mode, TlsMode::Disabled);
}

#[test]
fn milvus_backup_0_5_shipped_profiles_load_as_milvus_backup_reads_them() {
    let dir = milvus_backup_05_configs();
    assert_eq!(
        yaml_files(&dir),
        BTreeSet::from(["backup.yaml".to_string(), "backup-azure.yaml".to_string()]),
        "the profiles milvus-backup {MB_05_VERSION} ships"
    );

    // backup.yaml: MinIO on localhost for both stores, backups under a-bucket/backup.
    let path = dir.join("backup.yaml");
    let l = ok(load_file(&path, &[]));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    assert_eq!(p.schema, SchemaVersion::V1);
    assert_default_milvus(p);
    assert_eq!(p.milvus.rpc_channel_name, "by-dev-replicate-msg");
    assert_eq!(p.milvus.management_endpoint, "http://localhost:9091");
    assert_eq!(p.etcd.endpoints, vec!["127.0.0.1:2379"]);
    assert_eq!(p.etcd.root_path, "by-dev");
    assert_minio_defaults(&p.milvus_storage, "a-bucket", "files");
    assert_minio_defaults(&p.backup_storage, "a-bucket", "backup");
    assert_eq!(p.backup_root, "backup");
    assert!(p.milvus_storage.same_service(&p.backup_storage));
    assert_eq!(p.transfer_options.concurrency, Some(128), "copydata");
    assert_eq!(
        p.transfer_options.mode,
        Some(TransferMode::Auto),
        "crossStorage: false"
    );
    assert_eq!(p.transfer_options.multipart_copy_threshold_mib, Some(500));
    assert_eq!(
        p.parallelism,
        Parallelism {
            backup_collections: 4,
            backup_segments: 1024,
            restore_collections: 2,
            import_jobs: 768,
            max_segments_per_import_job: 256,
        }
    );
    assert!(p.pause_gc && !p.keep_temp_files);
    // Never read by milvus-migrate, so its placeholder does not block the profile.
    assert_eq!(p.cloud.api_key.expose(), "<your-api-key>");
    p.transfer(&TransferOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));

    // backup-azure.yaml: Azure for both stores, but the account name (v1: accessKeyID) is
    // empty, so no Azure URL can be built: an error naming the file and the key.
    let path = dir.join("backup-azure.yaml");
    let text = err(load_file(&path, &[]), &path, "minio.accessKeyID");
    assert!(text.contains("account name"), "{text}");
    // Filled in through the environment, it is Azure as milvus-backup reads it. The backup
    // keys are given (empty) in the file, so they need their own variables.
    let l = ok(load_file(
        &path,
        &[
            ("MINIO_ACCESS_KEY", "milvusaccount"),
            ("MINIO_SECRET_KEY", "a2V5"),
            ("MINIO_BACKUP_ACCESS_KEY", "milvusaccount"),
            ("MINIO_BACKUP_SECRET_KEY", "a2V5"),
        ],
    ));
    assert!(
        l.warnings.len() == 1 && l.warnings[0].contains("http.simpleResponse"),
        "{:?}",
        l.warnings
    );
    let p = &l.profile;
    assert_default_milvus(p);
    for (s, root) in [
        (&p.milvus_storage, "milvus/azure-instance"),
        (&p.backup_storage, "backup"),
    ] {
        assert_eq!(s.storage_type, StorageType::Azure);
        assert_eq!((s.address.as_str(), s.port), ("core.windows.net", 443));
        assert!(s.use_ssl);
        assert_eq!(s.region, "westus2");
        assert_eq!(
            (s.bucket.as_str(), s.root_path.as_str()),
            ("milvus-data", root)
        );
        assert_eq!(s.auth_type, AuthType::SharedKey);
        assert_eq!(s.azure_account_name, "milvusaccount");
        assert_eq!(s.azure_account_key.expose(), "a2V5");
    }
    assert!(p.milvus_storage.same_service(&p.backup_storage));
}

#[test]
fn milvus_backup_0_6_shipped_profiles_load_as_milvus_backup_reads_them() {
    let dir = fixtures_06();
    let names = [
        "backup.yaml",
        "backup-azure.yaml",
        "backup-gcp.yaml",
        "backup-iam.yaml",
        "backup-local-milvus.yaml",
        "backup-local.yaml",
        "backup-s3.yaml",
    ];
    assert_eq!(
        yaml_files(&dir),
        names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>()
    );
    let file = |name: &str| dir.join(name);
    let text = |name: &str| std::fs::read_to_string(file(name)).unwrap();

    // backup.yaml: MinIO on localhost for both stores, every block spelled out.
    let path = file("backup.yaml");
    let l = ok(load_file(&path, &[]));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    assert_eq!(p.schema, SchemaVersion::V2);
    assert_default_milvus(p);
    assert_eq!(p.milvus.rest_endpoint, "");
    assert_eq!(p.milvus.management_endpoint, "http://localhost:9091");
    assert_eq!(p.etcd.endpoints, vec!["127.0.0.1:2379"]);
    assert_minio_defaults(&p.milvus_storage, "a-bucket", "files");
    assert_minio_defaults(&p.backup_storage, "a-bucket", "backup");
    assert_eq!(p.transfer_options.concurrency, Some(128));
    assert_eq!(p.transfer_options.mode, Some(TransferMode::Auto));
    assert_eq!(p.transfer_options.multipart_copy_threshold_mib, Some(500));
    assert_eq!(p.parallelism.max_segments_per_import_job, 256);
    assert!(p.pause_gc && !p.keep_temp_files);
    assert_eq!(
        p.cloud.api_key.expose(),
        "<your-api-key>",
        "unused, not blocking"
    );

    // backup-local.yaml: Milvus on MinIO; backups in a local directory, which is `rootPath`.
    let l = ok(load_file(&file("backup-local.yaml"), &[]));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    assert_minio_defaults(&p.milvus_storage, "a-bucket", "files");
    let b = &p.backup_storage;
    assert_eq!(b.storage_type, StorageType::Local);
    assert_eq!(b.local_path, "/var/lib/milvus-backup");
    assert_eq!(b.milvus_local_path, "/var/lib/milvus-backup");
    assert_eq!((b.root_path.as_str(), p.backup_root.as_str()), ("", ""));

    // backup-local-milvus.yaml: Milvus on its local file system at rootPath (no bucket, no
    // endpoint); backups on MinIO, nothing inherited that matters.
    let path = file("backup-local-milvus.yaml");
    let l = ok(load_file(&path, &[]));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    let m = &p.milvus_storage;
    assert_eq!(m.storage_type, StorageType::Local);
    assert_eq!(m.local_path, "/var/lib/milvus/data");
    assert_eq!(
        m.milvus_local_path, "/var/lib/milvus/data",
        "localPath unset"
    );
    assert_eq!(m.root_path, "");
    assert_minio_defaults(&p.backup_storage, "a-bucket", "backup");
    assert_eq!(p.backup_root, "backup");
    // With the optional localPath (a bind mount): milvus-migrate opens rootPath, Milvus is
    // handed paths under localPath.
    let mounted = text("backup-local-milvus.yaml").replace(
        "rootPath: \"/var/lib/milvus/data\"",
        "rootPath: \"/mnt/milvus-volume\"\n    localPath: \"/var/lib/milvus/data\"",
    );
    let l = ok(load_text(&mounted, &path, &[]));
    let m = &l.profile.milvus_storage;
    assert_eq!(
        (m.local_path.as_str(), m.milvus_local_path.as_str()),
        ("/mnt/milvus-volume", "/var/lib/milvus/data")
    );

    // backup-s3.yaml: Milvus on MinIO, backups to AWS S3 with placeholders for the bucket and
    // the keys. The bucket comes first: exactly what `check` used to hand to request signing.
    let path = file("backup-s3.yaml");
    let msg = err(load_file(&path, &[]), &path, "backup.storage.bucketName");
    assert!(
        msg.contains("<your-bucket-name>") && msg.contains("placeholder"),
        "{msg}"
    );
    let filled = text("backup-s3.yaml").replace("<your-bucket-name>", "milvus-backups");
    let msg = err(
        load_text(&filled, &path, &[]),
        &path,
        "backup.storage.auth.accessKeyID",
    );
    assert!(msg.contains("placeholder"), "{msg}");
    // The key pair from the environment, as the shipped file recommends.
    let env = [
        ("BACKUP_STORAGE_AUTH_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("BACKUP_STORAGE_AUTH_SECRET_ACCESS_KEY", "c2VjcmV0"),
    ];
    let l = ok(load_text(&filled, &path, &env));
    let p = &l.profile;
    assert_minio_defaults(&p.milvus_storage, "a-bucket", "files");
    let b = &p.backup_storage;
    assert_eq!(b.storage_type, StorageType::Aws);
    assert_eq!(
        (b.address.as_str(), b.port, b.use_ssl, b.region.as_str()),
        ("s3.us-east-1.amazonaws.com", 443, true, "us-east-1")
    );
    assert_eq!(
        (b.bucket.as_str(), b.root_path.as_str()),
        ("milvus-backups", "backups")
    );
    assert_eq!(b.auth_type, AuthType::Static);
    assert_eq!(b.access_key_id, "AKIAEXAMPLE");
    assert_eq!(b.secret_access_key.expose(), "c2VjcmV0");
    assert!(!p.milvus_storage.same_service(b));
    // Only the secret left as a placeholder: named, never quoted.
    let msg = err(
        load_text(&filled, &path, &env[..1]),
        &path,
        "backup.storage.auth.secretAccessKey",
    );
    assert!(!msg.contains("<your-secret-access-key>"), "{msg}");

    // backup-azure.yaml: the account name is a placeholder (first on the Milvus side).
    let path = file("backup-azure.yaml");
    let msg = err(load_file(&path, &[]), &path, "milvus.storage.accountName");
    assert!(msg.contains("<your-storage-account>"), "{msg}");
    let mut env = vec![("MILVUS_STORAGE_ACCOUNT_NAME", "milvusaccount")];
    let msg = err(
        load_file(&path, &env),
        &path,
        "milvus.storage.auth.accountKey",
    );
    assert!(
        !msg.contains("<your-account-key>"),
        "secret not quoted: {msg}"
    );
    env.push(("MILVUS_STORAGE_AUTH_ACCOUNT_KEY", "a2V5"));
    err(load_file(&path, &env), &path, "backup.storage.accountName");
    env.push(("BACKUP_STORAGE_ACCOUNT_NAME", "milvusaccount"));
    env.push(("BACKUP_STORAGE_AUTH_ACCOUNT_KEY", "a2V5"));
    let l = ok(load_file(&path, &env));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    for (s, root) in [
        (&p.milvus_storage, "milvus/azure-instance"),
        (&p.backup_storage, "backup"),
    ] {
        // The backup store inherits provider, endpoint and region.
        assert_eq!(s.storage_type, StorageType::Azure);
        assert_eq!(
            (s.address.as_str(), s.port, s.use_ssl),
            ("core.windows.net", 443, true)
        );
        assert_eq!(s.region, "westus2");
        assert_eq!(
            (s.bucket.as_str(), s.root_path.as_str()),
            ("milvus-data", root)
        );
        assert_eq!(s.auth_type, AuthType::SharedKey);
        assert_eq!(s.azure_account_name, "milvusaccount");
        assert_eq!(s.azure_account_key.expose(), "a2V5");
    }
    assert_eq!(
        describe_source(p, "backup.storage.provider"),
        Source::Inherited("milvus.storage.provider".into())
    );
    assert!(p.milvus_storage.same_service(&p.backup_storage));

    // backup-gcp.yaml: both buckets are placeholders, the Milvus one is named first.
    let path = file("backup-gcp.yaml");
    let msg = err(load_file(&path, &[]), &path, "milvus.storage.bucketName");
    assert!(msg.contains("<your-milvus-bucket>"), "{msg}");
    let half = text("backup-gcp.yaml").replace("<your-milvus-bucket>", "milvus-data");
    err(
        load_text(&half, &path, &[]),
        &path,
        "backup.storage.bucketName",
    );
    let filled = half.replace("<your-backup-bucket>", "milvus-backups");
    let l = ok(load_text(&filled, &path, &[]));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    for (s, bucket, root) in [
        (&p.milvus_storage, "milvus-data", "files"),
        (&p.backup_storage, "milvus-backups", "backup"),
    ] {
        // The backup store inherits provider, endpoint and the service-account file.
        assert_eq!(s.storage_type, StorageType::GcpNative);
        assert_eq!(
            (s.address.as_str(), s.port, s.use_ssl),
            ("storage.googleapis.com", 443, true)
        );
        assert_eq!((s.bucket.as_str(), s.root_path.as_str()), (bucket, root));
        assert_eq!(s.auth_type, AuthType::ServiceAccount);
        assert_eq!(s.gcp_credentials_file, "/path/to/service-account.json");
        assert_eq!(s.access_key_id, "", "static keys do not apply");
    }

    // backup-iam.yaml: AWS with instance credentials; placeholder buckets as in gcp.
    let path = file("backup-iam.yaml");
    let msg = err(load_file(&path, &[]), &path, "milvus.storage.bucketName");
    assert!(msg.contains("<your-milvus-bucket>"), "{msg}");
    let filled = text("backup-iam.yaml")
        .replace("<your-milvus-bucket>", "milvus-data")
        .replace("<your-backup-bucket>", "milvus-backups");
    let l = ok(load_text(&filled, &path, &[]));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    for (s, bucket) in [
        (&p.milvus_storage, "milvus-data"),
        (&p.backup_storage, "milvus-backups"),
    ] {
        assert_eq!(s.storage_type, StorageType::Aws);
        assert_eq!(
            (s.address.as_str(), s.port, s.use_ssl, s.region.as_str()),
            ("s3.us-east-1.amazonaws.com", 443, true, "us-east-1")
        );
        assert_eq!(s.bucket, bucket);
        assert_eq!((s.auth_type, s.use_iam), (AuthType::Iam, true));
        assert_eq!(s.iam_endpoint, "");
        assert!(s.access_key_id.is_empty() && s.secret_access_key.is_empty());
    }
    assert_eq!(p.backup_root, "backup");
}

fn describe_source(p: &Profile, key: &str) -> Source {
    p.describe()
        .into_iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("no setting {key}"))
        .source
}

// ---- No panic, whatever the input --------------------------------------------------------

/// Every profile the repository has: milvus-migrate's `configs/` and the 0.6 fixtures.
fn seed_documents() -> Vec<(String, String)> {
    let mut docs = Vec::new();
    for dir in [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"),
        fixtures_06(),
    ] {
        for name in yaml_files(&dir) {
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            docs.push((name, text));
        }
    }
    docs
}

const ODD_TEXT: &[&str] = &[
    "",
    " ",
    "<your-bucket-name>",
    "<>",
    "tcp://10.96.0.12:19530",
    "http://minio:9000",
    "💥",
    "bücket",
    "\u{202e}rtl",
    "a\nb",
    "-1",
    "0",
    "65536",
    "99999999999999999999999",
    "999999999999999999999999999999TiB",
    "1.99999999999999999999999999999TiB",
    "1e400",
    "NaN",
    "0x10",
    "1.5",
    "off",
    "local",
    "azure",
    "gcpnative",
    "ceph",
    "iam",
    "sharedKey",
    "serviceAccount",
    "default",
    "mutual",
    "2",
    "v2",
    "/",
    "//",
    "..",
    "a b",
    "a/b",
    "bucket_A",
    "~",
    "null",
    "true",
    "streaming",
    "16XB",
    "5m",
    "18446744073709551616s",
];

const ENV_VARS: &[&str] = &[
    "MILVUS_ADDRESS",
    "MILVUS_PORT",
    "MILVUS_PASSWORD",
    "MILVUS_TLS_MODE",
    "MINIO_ADDRESS",
    "MINIO_PORT",
    "MINIO_BUCKET_NAME",
    "MINIO_ROOT_PATH",
    "MINIO_USE_SSL",
    "MINIO_BACKUP_PORT",
    "MINIO_BACKUP_BUCKET_NAME",
    "BACKUP_PARALLELISM_COPYDATA",
    "MILVUS_STORAGE_ACCOUNT_NAME",
    "MILVUS_STORAGE_AUTH_ACCESS_KEY_ID",
    "BACKUP_STORAGE_AUTH_SECRET_ACCESS_KEY",
    "BACKUP_STORAGE_AUTH_CREDENTIALS_FILE",
];

fn odd_scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => Value::Number(
            (*[i64::MIN, -1, 0, 1, 443, 65535, 65536, 70000, i64::MAX]
                .choose(rng)
                .unwrap())
            .into(),
        ),
        3 => Value::Number(u64::MAX.into()),
        4 => Value::Number(
            (*[f64::NAN, f64::INFINITY, -0.5, 1e300, 9000.0]
                .choose(rng)
                .unwrap())
            .into(),
        ),
        5 => Value::String("x".repeat(rng.random_range(0..5000))),
        _ => Value::String(ODD_TEXT.choose(rng).unwrap().to_string()),
    }
}

fn odd_value(rng: &mut StdRng, depth: usize) -> Value {
    match rng.random_range(0..12) {
        0 if depth < 6 => Value::Sequence(
            (0..rng.random_range(0..4))
                .map(|_| odd_scalar(rng))
                .collect(),
        ),
        1 if depth < 6 => {
            let mut m = serde_yaml::Mapping::new();
            for _ in 0..rng.random_range(0..3) {
                m.insert(odd_key(rng), odd_value(rng, depth + 1));
            }
            Value::Mapping(m)
        }
        2 => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new("custom"),
            value: odd_scalar(rng),
        })),
        3 => nested(rng.random_range(1..200)),
        _ => odd_scalar(rng),
    }
}

fn odd_key(rng: &mut StdRng) -> Value {
    match rng.random_range(0..8) {
        0 => Value::Number(7.into()),
        1 => Value::Bool(true),
        2 => Value::Null,
        3 => Value::Sequence(vec![Value::String("k".into())]),
        _ => Value::String(
            [
                "port",
                "PORT",
                "bucketName",
                "storage",
                "auth",
                "configVersion",
                "ü",
                "",
            ]
            .choose(rng)
            .unwrap()
            .to_string(),
        ),
    }
}

/// A mapping `depth` levels deep.
fn nested(depth: usize) -> Value {
    let mut v = Value::String("x".into());
    for _ in 0..depth {
        let mut m = serde_yaml::Mapping::new();
        m.insert(Value::String("a".into()), v);
        v = Value::Mapping(m);
    }
    v
}

/// Deletes, replaces and adds values anywhere in the tree.
fn mutate(rng: &mut StdRng, v: &mut Value, depth: usize) {
    match v {
        Value::Mapping(m) => {
            if !m.is_empty() && rng.random_bool(0.1) {
                let i = rng.random_range(0..m.len());
                let k = m.keys().nth(i).cloned().unwrap();
                m.shift_remove(&k);
            }
            if rng.random_bool(0.03) {
                m.insert(odd_key(rng), odd_value(rng, depth + 1));
            }
            for (_, child) in m.iter_mut() {
                if rng.random_bool(0.08) {
                    *child = odd_value(rng, depth + 1);
                } else {
                    mutate(rng, child, depth + 1);
                }
            }
        }
        Value::Sequence(items) => {
            for item in items.iter_mut() {
                if rng.random_bool(0.2) {
                    *item = odd_value(rng, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Breaks the text itself: truncation, stray YAML punctuation, odd characters.
fn mangle_text(rng: &mut StdRng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=chars.len());
        match rng.random_range(0..4) {
            0 => chars.truncate(at),
            1 => {
                let stray = [
                    '\t', ':', '-', '[', '{', '&', '*', '!', '%', '"', '\'', '#', '|', '>', '?',
                    '\u{feff}', '\0', 'ü',
                ];
                chars.insert(at, *stray.choose(rng).unwrap());
            }
            2 if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.insert(at, '\n'),
        }
    }
    chars.into_iter().collect()
}

/// Documents that are odd as a whole.
const ODD_DOCUMENTS: &[&str] = &[
    "",
    "---",
    "~",
    "[]",
    "- a\n- b\n",
    "42",
    "\"text\"",
    "!!binary aGVsbG8=",
    "{}",
    "? [a]\n: b\n",
    "? {a: 1}\n: b\n",
    "a: *undefined\n",
    "a: &x [1]\nb: *x\nminio: {port: *x}\n",
    "a: 1\n---\nb: 2\n",
    "\u{feff}configVersion: v2\n",
    "configVersion: [v2]\n",
    "configVersion: !!binary djI=\n",
    "configVersion: v2\nmilvus: [1, 2]\n",
    "configVersion: v2\nmilvus:\n  storage: 7\n",
    "milvus: {port: !!str 1}\n",
    "milvus: {port: -19530}\nminio: {port: 99999999999999999999999999}\n",
    "minio: {rootPath: [a, b], bucketName: {x: y}}\n",
    "transfer: {partSize: 999999999999999999999999999999TiB, bwLimit: 1.99999999999999999999999999999TiB/s}\n",
    "transfer: {readTimeout: 18446744073709551615h, concurrency: 18446744073709551616}\n",
    "minio:\n  port: 1\n  PORT: 2\n",
    "7: 1\ntrue: 2\n~: 3\n",
    "minio:\n  storageType: local\n  rootPath: \"\u{0}\"\n",
];

#[test]
fn the_loader_never_panics() {
    let mut rng = StdRng::seed_from_u64(13);
    let seeds = seed_documents();
    let mut inputs: Vec<String> = ODD_DOCUMENTS.iter().map(|s| s.to_string()).collect();
    // Deep nesting, flow and block style, beyond the YAML parser's recursion limit.
    inputs.push(format!("a: {}x{}\n", "[".repeat(5000), "]".repeat(5000)));
    inputs.push(format!("a: {}x{}\n", "{b: ".repeat(5000), "}".repeat(5000)));
    let mut block = String::new();
    for depth in 0..300 {
        block.push_str(&format!("{}k{depth}:\n", "  ".repeat(depth)));
    }
    inputs.push(block);
    for round in 0..1200 {
        let (_, text) = &seeds[round % seeds.len()];
        let mut doc: Value = serde_yaml::from_str(text).unwrap();
        mutate(&mut rng, &mut doc, 0);
        if rng.random_bool(0.02) {
            doc = odd_value(&mut rng, 0);
        }
        if let Ok(mutated) = serde_yaml::to_string(&doc) {
            inputs.push(mutated);
        }
        inputs.push(mangle_text(&mut rng, text));
    }

    let path = Path::new("mutated.yaml");
    let (mut oks, mut errs) = (0, 0);
    for text in &inputs {
        // Each input without environment overrides, and one in five again with an odd one.
        let mut envs = vec![Vec::new()];
        if rng.random_bool(0.2) {
            envs.push(vec![(
                *ENV_VARS.choose(&mut rng).unwrap(),
                *ODD_TEXT.choose(&mut rng).unwrap(),
            )]);
        }
        for env in envs {
            let outcome = catch_unwind(AssertUnwindSafe(|| match load_text(text, path, &env) {
                Ok(l) => {
                    let _ = l.profile.transfer(&TransferOptions::default());
                    let _ = (l.profile.describe(), format!("{:?}", l.profile));
                    true
                }
                Err(e) => {
                    let _ = (e.to_string(), format!("{e:?}"));
                    false
                }
            }));
            match outcome {
                Ok(true) => oks += 1,
                Ok(false) => errs += 1,
                Err(_) => panic!("the loader panicked on (env {env:?}):\n{text}"),
            }
        }
    }
    // Both outcomes are exercised: the mutations are neither all harmless nor all fatal.
    assert!(oks > 100 && errs > 100, "ok {oks}, err {errs}");
}
