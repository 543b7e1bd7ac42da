//! Tests of whole profiles: both schemas end to end, environment precedence, inheritance,
//! warnings, errors, redaction, CLI merge, and every shipped file in `configs/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

const MIB: u64 = 1 << 20;

/// An environment holding exactly `pairs` (also used by `shipped_tests`).
pub(super) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Loaded {
    load_env(text, &[])
}

fn load_env(text: &str, env: &[(&str, &str)]) -> Loaded {
    Profile::from_yaml_str(text, Path::new("t.yaml"), &env_of(env))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str, env: &[(&str, &str)]) -> ConfigError {
    match Profile::from_yaml_str(text, Path::new("t.yaml"), &env_of(env)) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

fn invalid_key(e: &ConfigError) -> &str {
    match e {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected Invalid, got {other}"),
    }
}

fn setting<'a>(p: &'a Profile, key: &str) -> &'a Setting {
    p.settings
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("no setting {key}"))
}

/// The documentation's example profile (keys and values as published; comments trimmed).
const SEED: &str = r#"
# milvus proxy address, compatible to milvus.yaml
milvus:
  address: milvus_A
  port: 19530
  authorizationEnabled: false
  # tls mode values [0, 1, 2]
  tlsMode: 0
  user: "root"
  password: "Milvus"

minio:
  # cloudProvider: "minio" # deprecated use storageType instead
  storageType: "minio" # support storage type: local, minio, s3, aws, gcp, ali(aliyun), azure, tc(tencent)

  address: minio_A # Address of MinIO/S3
  port: 9000   # Port of MinIO/S3
  accessKeyID: minioadmin  # accessKeyID of MinIO/S3
  secretAccessKey: minioadmin # MinIO/S3 encryption string
  useSSL: false # Access to MinIO/S3 with SSL
  useIAM: false
  iamEndpoint: ""

  bucketName: "bucket_A"
  rootPath: "files"

  # only for azure
  backupAccessKeyID: minioadmin  # accessKeyID of MinIO/S3
  backupSecretAccessKey: minioadmin # MinIO/S3 encryption string

  backupBucketName: "bucket_A"
  backupRootPath: "backup"
"#;

fn assert_seed_shape(p: &Profile, address: &str, storage_address: &str) {
    assert_eq!(p.schema, SchemaVersion::V1);
    assert_eq!(p.milvus.address, address);
    assert_eq!(p.milvus.port, 19530);
    assert_eq!(p.milvus.user, "root");
    assert_eq!(p.milvus.password.expose(), "Milvus");
    assert_eq!(p.milvus.tls_mode, TlsMode::Disabled);
    let m = &p.milvus_storage;
    assert_eq!(m.storage_type, StorageType::Minio);
    assert_eq!((m.address.as_str(), m.port), (storage_address, 9000));
    assert_eq!(m.bucket, "bucket_A");
    assert_eq!(m.root_path, "files");
    assert_eq!(m.access_key_id, "minioadmin");
    assert_eq!(m.secret_access_key.expose(), "minioadmin");
    assert!(!m.use_ssl && !m.use_iam && !m.virtual_host);
    let b = &p.backup_storage;
    assert_eq!(b.bucket, "bucket_A");
    assert_eq!(b.root_path, "backup");
    assert_eq!(p.backup_root, "backup");
    // Inherited from the Milvus store.
    assert_eq!((b.address.as_str(), b.port), (storage_address, 9000));
    assert_eq!(b.storage_type, StorageType::Minio);
    assert_eq!(b.access_key_id, "minioadmin");
    assert!(m.same_service(b));
    assert_eq!(m.endpoint_url(), format!("http://{storage_address}:9000"));
}

#[test]
fn seed_example_loads_unchanged() {
    let l = load(SEED);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_seed_shape(&l.profile, "milvus_A", "minio_A");
    let p = &l.profile;
    // Defaults the example leaves out.
    assert_eq!(p.transfer_options, TransferOptions::default());
    let t = p.transfer(&TransferOptions::default()).unwrap();
    assert_eq!(t.concurrency, 16, "our default, not milvus-backup's 128");
    assert_eq!(t.mode, TransferMode::Auto);
    assert_eq!(p.milvus.management_endpoint, "http://localhost:9091");
    assert_eq!(p.milvus.rest_url(), "http://milvus_A:19530");
    assert_eq!(p.etcd.endpoints, vec!["localhost:2379"]);
    assert_eq!(p.parallelism.backup_segments, 1024);
    assert!(p.pause_gc && !p.keep_temp_files);
    assert_eq!(
        setting(p, "minio.backupAddress").source,
        Source::Inherited("minio.address".into())
    );
    assert_eq!(setting(p, "minio.backupBucketName").source, Source::File);
}

#[test]
fn v1_backup_store_inherits_from_milvus_store() {
    let l = load(
        "minio:\n  storageType: s3\n  address: s3.example\n  port: 443\n  region: eu-west-1\n  \
         accessKeyID: AK\n  secretAccessKey: SK\n  token: TOK\n  gcpCredentialJSON: '{}'\n  useSSL: true\n  \
         useIAM: false\n  iamEndpoint: iam.example\n  bucketName: milvus-data\n  rootPath: /files/\n",
    );
    let (m, b) = (&l.profile.milvus_storage, &l.profile.backup_storage);
    assert_eq!(m.root_path, "files", "root path normalised");
    assert_eq!(b.storage_type, StorageType::S3);
    assert_eq!(
        (b.address.as_str(), b.port, b.use_ssl),
        ("s3.example", 443, true)
    );
    assert_eq!(b.region, "eu-west-1");
    assert_eq!(b.access_key_id, "AK");
    assert_eq!(b.secret_access_key.expose(), "SK");
    assert_eq!(b.token.expose(), "TOK");
    assert_eq!(b.iam_endpoint, "iam.example");
    assert_eq!(b.bucket, "milvus-data");
    assert_eq!(
        b.root_path, "files",
        "backupRootPath inherits the resolved rootPath"
    );
    assert!(
        b.gcp_credential_json.is_empty(),
        "the GCP credential JSON is not inherited"
    );
    assert_eq!(m.gcp_credential_json.expose(), "{}");
    assert_eq!(b.endpoint_url(), "https://s3.example:443");

    // `backup` only when the Milvus root path is empty.
    let l = load("minio:\n  rootPath: \"/\"\n");
    assert_eq!(l.profile.milvus_storage.root_path, "");
    assert_eq!(l.profile.backup_root, "backup");
    assert_eq!(
        setting(&l.profile, "minio.backupRootPath").source,
        Source::Default
    );

    // All defaults.
    let l = load("");
    assert_eq!(l.profile.milvus_storage.bucket, "a-bucket");
    assert_eq!(l.profile.backup_storage.root_path, "files");
    assert_eq!(l.warnings.len(), 1, "empty profile warns: {:?}", l.warnings);

    // Aliases of the provider keys.
    let l = load("storage:\n  storageType: aliyun\n  backupStorageType: tc\n");
    assert_eq!(l.profile.milvus_storage.storage_type, StorageType::Ali);
    assert_eq!(l.profile.backup_storage.storage_type, StorageType::Tencent);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let l = load("minio:\n  cloudProvider: gcp\n");
    assert_eq!(l.profile.milvus_storage.storage_type, StorageType::Gcp);
    assert!(l.warnings[0].contains("cloudProvider"), "{:?}", l.warnings);
}

#[test]
fn env_beats_file_and_inheritance_follows_env() {
    let text = "milvus:\n  address: file-milvus\nminio:\n  address: file-minio\n  port: 9000\n  bucketName: bucket-b\n";
    let l = load_env(
        text,
        &[
            ("MILVUS_ADDRESS", "env-milvus"),
            ("MINIO_ADDRESS", "env-minio"),
            ("MINIO_BACKUP_PORT", "9999"),
            ("MINIO_SECRET_KEY", "env-secret"),
            ("MINIO_BUCKET_NAME", ""), // empty counts as unset
            ("BACKUP_PARALLELISM_COPYDATA", "7"),
            ("MINIO_USE_SSL", "true"),
        ],
    );
    let p = &l.profile;
    assert_eq!(p.milvus.address, "env-milvus");
    assert_eq!(p.milvus_storage.address, "env-minio");
    assert_eq!(
        p.backup_storage.address, "env-minio",
        "inheritance is computed after env overrides"
    );
    assert_eq!(p.backup_storage.port, 9999);
    assert_eq!(p.milvus_storage.port, 9000);
    assert_eq!(p.backup_storage.secret_access_key.expose(), "env-secret");
    assert!(p.backup_storage.use_ssl);
    assert_eq!(p.milvus_storage.bucket, "bucket-b");
    assert_eq!(p.transfer_options.concurrency, Some(7));
    assert_eq!(
        setting(p, "milvus.address").source,
        Source::Env("MILVUS_ADDRESS".into())
    );
    assert_eq!(
        setting(p, "minio.backupAddress").source,
        Source::Inherited("minio.address".into())
    );
    assert_eq!(setting(p, "minio.bucketName").source, Source::File);
    assert_eq!(setting(p, "minio.secretAccessKey").value, "***");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn bad_env_values_name_the_variable() {
    match error("", &[("MINIO_PORT", "abc")]) {
        ConfigError::Env { var, reason, .. } => {
            assert_eq!(var, "MINIO_PORT");
            assert!(reason.contains("\"abc\""), "{reason}");
        }
        other => panic!("{other}"),
    }
    // Kubernetes service links: an error that explains, not a silent override.
    let e = error(
        "milvus:\n  port: 19530\n",
        &[("MILVUS_PORT", "tcp://10.96.0.12:19530")],
    );
    let text = e.to_string();
    assert!(
        matches!(&e, ConfigError::Env { var, .. } if var == "MILVUS_PORT"),
        "{text}"
    );
    assert!(
        text.contains("Kubernetes") && text.contains("enableServiceLinks"),
        "{text}"
    );
    assert!(text.starts_with("t.yaml: "), "{text}");
    let e = error("", &[("MINIO_USE_SSL", "maybe")]);
    assert!(
        matches!(&e, ConfigError::Env { var, .. } if var == "MINIO_USE_SSL"),
        "{e}"
    );
}

const V2: &str = r#"
configVersion: v2
milvus:
  user: root
  password: pw
  grpc: {address: milvus-a, port: 19530}
  storage:
    provider: aws
    address: s3.amazonaws.com
    port: 443
    useSSL: true
    region: us-east-1
    bucketName: milvus-a
    rootPath: files
    auth: {type: static, accessKeyID: AK, secretAccessKey: SK}
backup:
  storage:
    bucketName: backups
"#;

#[test]
fn v2_backup_storage_inherits_all_but_root_path() {
    let l = load(V2);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    assert_eq!(p.schema, SchemaVersion::V2);
    let (m, b) = (&p.milvus_storage, &p.backup_storage);
    assert_eq!(m.root_path, "files");
    assert_eq!(b.root_path, "backup", "rootPath is not inherited");
    assert_eq!(p.backup_root, "backup");
    assert_eq!(b.bucket, "backups");
    assert_eq!(b.storage_type, StorageType::Aws);
    assert_eq!(
        (b.address.as_str(), b.port, b.use_ssl),
        ("s3.amazonaws.com", 443, true)
    );
    assert_eq!(b.region, "us-east-1");
    assert_eq!(b.access_key_id, "AK");
    assert_eq!(b.secret_access_key.expose(), "SK");
    assert!(m.same_service(b));
    assert_eq!(
        setting(p, "backup.storage.rootPath").source,
        Source::Default
    );
    assert_eq!(
        setting(p, "backup.storage.auth.accessKeyID").source,
        Source::Inherited("milvus.storage.auth.accessKeyID".into())
    );

    // Credentials from the environment; the backup side inherits after env.
    let l = load_env(
        V2,
        &[
            ("MILVUS_STORAGE_AUTH_ACCESS_KEY_ID", "ENV-AK"),
            ("BACKUP_STORAGE_AUTH_SECRET_ACCESS_KEY", "ENV-BSK"),
            ("MILVUS_PASSWORD", "env-pw"),
            // v2 reads no env var for ports: a Kubernetes service link cannot interfere.
            ("MILVUS_PORT", "tcp://10.96.0.12:19530"),
        ],
    );
    let p = &l.profile;
    assert_eq!(p.milvus.password.expose(), "env-pw");
    assert_eq!(p.milvus.port, 19530);
    assert_eq!(p.milvus_storage.access_key_id, "ENV-AK");
    assert_eq!(p.backup_storage.access_key_id, "ENV-AK");
    assert_eq!(p.milvus_storage.secret_access_key.expose(), "SK");
    assert_eq!(p.backup_storage.secret_access_key.expose(), "ENV-BSK");
    assert!(!p.milvus_storage.same_service(&p.backup_storage));
}

#[test]
fn v2_auth_type_rules() {
    // Explicit credentials of another auth type are rejected.
    let text = V2.replace("type: static, accessKeyID", "type: iam, accessKeyID");
    assert_eq!(
        invalid_key(&error(&text, &[])),
        "milvus.storage.auth.accessKeyID"
    );
    // Inherited ones are dropped: the backup store logs in with IAM.
    let text = format!("{V2}    auth:\n      type: iam\n      endpoint: http://169.254.169.254\n");
    let l = load(&text);
    let b = &l.profile.backup_storage;
    assert_eq!(b.auth_type, AuthType::Iam);
    assert!(b.use_iam);
    assert_eq!(b.iam_endpoint, "http://169.254.169.254");
    assert!(b.access_key_id.is_empty() && b.secret_access_key.is_empty());
    assert_eq!(l.profile.milvus_storage.access_key_id, "AK");
    // sharedKey only with Azure.
    let text = V2.replace(
        "type: static, accessKeyID: AK, secretAccessKey: SK",
        "type: sharedKey",
    );
    assert_eq!(invalid_key(&error(&text, &[])), "milvus.storage.auth.type");
    // A credential in the environment that the auth type does not use.
    let text = V2.replace(
        "type: static, accessKeyID: AK, secretAccessKey: SK",
        "type: iam",
    );
    let e = error(
        &text,
        &[("MILVUS_STORAGE_AUTH_SECRET_ACCESS_KEY", "s3cr3t-env")],
    );
    assert!(
        matches!(&e, ConfigError::Env { var, .. } if var == "MILVUS_STORAGE_AUTH_SECRET_ACCESS_KEY")
    );
    assert!(!e.to_string().contains("s3cr3t-env"));
}

#[test]
fn azure_and_local_stores() {
    let l = load(
        "configVersion: v2\nmilvus:\n  storage:\n    provider: azure\n    accountName: acct\n    bucketName: container-c\n    \
         auth: {type: sharedKey, accountKey: KEY}\n",
    );
    let m = &l.profile.milvus_storage;
    assert_eq!(
        (m.azure_account_name.as_str(), m.azure_account_key.expose()),
        ("acct", "KEY")
    );
    assert_eq!(l.profile.backup_storage.azure_account_name, "acct");
    let e = error(
        "configVersion: v2\nmilvus:\n  storage:\n    provider: azure\n    auth: {type: sharedKey}\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "milvus.storage.accountName");
    // v1 Azure: the access key ID is the account name.
    let l = load("minio:\n  storageType: azure\n  accessKeyID: acct\n  secretAccessKey: KEY\n");
    let m = &l.profile.milvus_storage;
    assert_eq!(
        (m.azure_account_name.as_str(), m.auth_type),
        ("acct", AuthType::SharedKey)
    );
    let e = error("minio:\n  storageType: azure\n  accessKeyID: ''\n", &[]);
    assert_eq!(invalid_key(&e), "minio.accessKeyID");

    // v1 local: rootPath is the directory.
    let l = load(
        "minio:\n  storageType: local\n  rootPath: /var/lib/milvus/\n  backupRootPath: /srv/backups\n",
    );
    let (m, b) = (&l.profile.milvus_storage, &l.profile.backup_storage);
    assert_eq!(
        (m.local_path.as_str(), m.root_path.as_str()),
        ("/var/lib/milvus", "")
    );
    assert_eq!(b.local_path, "/srv/backups");
    assert_eq!(l.profile.backup_root, "");
    let e = error(
        "minio:\n  storageType: local\n  rootPath: ''\n  backupRootPath: x\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "minio.rootPath");
    // v1 has no separate Milvus view of a local directory.
    assert_eq!(m.milvus_local_path, "/var/lib/milvus");
    assert_eq!(b.milvus_local_path, "/srv/backups");
}

/// v2 `local`, as milvus-backup reads it: `rootPath` is the directory (milvus-backup opens it),
/// `localPath` the same directory as the Milvus process sees it, defaulting to `rootPath`; the
/// backup store inherits the provider but neither path (its `rootPath` defaults to `backup`).
#[test]
fn v2_local_root_path_is_the_directory() {
    let l = load(
        "configVersion: v2\nmilvus:\n  storage:\n    provider: local\n    rootPath: /srv/milvus/data/\n    \
         localPath: /var/lib/milvus/data\n",
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let (m, b) = (&l.profile.milvus_storage, &l.profile.backup_storage);
    assert_eq!(m.storage_type, StorageType::Local);
    assert_eq!(
        m.local_path, "/srv/milvus/data",
        "rootPath is the directory"
    );
    assert_eq!(m.milvus_local_path, "/var/lib/milvus/data");
    assert_eq!(m.root_path, "", "no prefix below the directory");
    assert_eq!(b.storage_type, StorageType::Local, "provider inherited");
    assert_eq!(
        (b.local_path.as_str(), b.milvus_local_path.as_str()),
        ("backup", "backup"),
        "rootPath not inherited (default `backup`), localPath not inherited"
    );
    assert_eq!(l.profile.backup_root, "");
    assert_eq!(
        setting(&l.profile, "backup.storage.localPath").source,
        Source::Default
    );

    // Without localPath Milvus sees the directory where milvus-migrate does.
    let l = load("configVersion: v2\nmilvus:\n  storage: {provider: local, rootPath: data}\n");
    let m = &l.profile.milvus_storage;
    assert_eq!(
        (m.local_path.as_str(), m.milvus_local_path.as_str()),
        ("data", "data")
    );
    // Defaults: Milvus's rootPath `files` is a relative directory.
    let l = load("configVersion: v2\nmilvus:\n  storage: {provider: local}\n");
    assert_eq!(l.profile.milvus_storage.local_path, "files");

    // Only the backup store local, under an explicit directory.
    let l = load(
        "configVersion: v2\nbackup:\n  storage: {provider: local, rootPath: /var/lib/milvus-backup}\n",
    );
    let (m, b) = (&l.profile.milvus_storage, &l.profile.backup_storage);
    assert_eq!(
        (m.storage_type, m.root_path.as_str()),
        (StorageType::Minio, "files")
    );
    assert_eq!(m.local_path, "");
    assert_eq!(b.local_path, "/var/lib/milvus-backup");

    // An empty directory, and localPath for another provider, are errors naming the key.
    let e = error(
        "configVersion: v2\nmilvus:\n  storage: {provider: local, rootPath: ''}\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "milvus.storage.rootPath");
    let e = error(
        "configVersion: v2\nmilvus:\n  storage: {provider: s3, localPath: /data}\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "milvus.storage.localPath");
    assert!(e.to_string().contains("`local` provider"), "{e}");
    let e = error(
        "configVersion: v2\nmilvus:\n  storage: {provider: local}\nbackup:\n  storage: {provider: minio, localPath: /x}\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "backup.storage.localPath");
    let e = error(
        "configVersion: v2\nmilvus:\n  storage: {provider: local, localPath: <milvus-data-dir>}\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "milvus.storage.localPath");
}

#[test]
fn validation_rules() {
    assert_eq!(
        invalid_key(&error("minio:\n  bucketName: ''\n", &[])),
        "minio.bucketName"
    );
    assert_eq!(
        invalid_key(&error("minio:\n  backupBucketName: ' '\n", &[])),
        "minio.backupBucketName"
    );
    let e = error("minio:\n  storageType: ceph\n", &[]);
    assert_eq!(invalid_key(&e), "minio.storageType");
    let text = e.to_string();
    assert!(
        text.contains("minio") && text.contains("gcpnative") && text.contains("\"ceph\""),
        "{text}"
    );
    assert_eq!(
        invalid_key(&error("minio:\n  address: http://minio:9000\n", &[])),
        "minio.address"
    );
    assert_eq!(
        invalid_key(&error("configVersion: v3\n", &[])),
        "configVersion"
    );
    assert_eq!(
        invalid_key(&error("log:\n  level: loud\n", &[])),
        "log.level"
    );
    assert_eq!(
        invalid_key(&error("backup:\n  parallelism:\n    importJob: 0\n", &[])),
        "backup.parallelism.importJob"
    );
    // Underscores in bucket names are accepted (the documentation uses bucket_A).
    assert_eq!(
        load("minio:\n  bucketName: bucket_A\n")
            .profile
            .milvus_storage
            .bucket,
        "bucket_A"
    );
    // v2 mutual TLS needs a key pair.
    let e = error(
        "configVersion: v2\nmilvus:\n  grpc:\n    tlsMode: mutual\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "milvus.grpc.tlsMode");
    let l = load(
        "configVersion: v2\nmilvus:\n  grpc: {tlsMode: mutual, mtlsCertPath: c.pem, mtlsKeyPath: k.pem}\n",
    );
    assert_eq!(l.profile.milvus.tls_mode, TlsMode::Mutual);
    assert_eq!(l.profile.milvus.rest_url(), "https://localhost:19530");
    // v1 keeps milvus-backup 0.5's downgrade, with a warning.
    let l = load("milvus:\n  tlsMode: 2\n");
    assert_eq!(l.profile.milvus.tls_mode, TlsMode::Server);
    assert!(l.warnings[0].contains("tlsMode"), "{:?}", l.warnings);
}

/// Values that cannot work are errors naming the file and the key (issue 13): placeholders in
/// keys that are read, bucket names a store refuses, hosts with stray characters.
#[test]
fn placeholders_bucket_names_and_hosts_are_refused() {
    // A placeholder in a key that is read: the key, the value, one line.
    let e = error("minio:\n  bucketName: \"<your-bucket-name>\"\n", &[]);
    assert_eq!(
        e.to_string(),
        "t.yaml: key `minio.bucketName`: \"<your-bucket-name>\" is a template placeholder: \
         replace it with the real value"
    );
    // Inherited: named on the key that reads it, saying where it came from.
    let e = error(
        "minio:\n  backupStorageType: minio\n  storageType: local\n  rootPath: /data\n  \
         bucketName: <b>\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "minio.backupBucketName");
    assert!(
        e.to_string().contains("inherited from `minio.bucketName`"),
        "{e}"
    );
    // From the environment: the variable is named.
    let e = error("", &[("MINIO_BUCKET_NAME", "<bucket>")]);
    assert!(
        matches!(&e, ConfigError::Env { var, .. } if var == "MINIO_BUCKET_NAME"),
        "{e}"
    );
    // Secrets: named, never quoted.
    for (text, key) in [
        (
            "minio:\n  secretAccessKey: <your-secret>\n",
            "minio.secretAccessKey",
        ),
        ("milvus:\n  password: <your-secret>\n", "milvus.password"),
        (
            "minio:\n  storageType: gcpnative\n  gcpCredentialJSON: <your-secret>\n",
            "minio.gcpCredentialJSON",
        ),
        (
            "configVersion: v2\nmilvus:\n  storage: {provider: azure, accountName: acct, \
             auth: {type: sharedKey, accountKey: <your-secret>}}\n",
            "milvus.storage.auth.accountKey",
        ),
    ] {
        let e = error(text, &[]);
        assert_eq!(invalid_key(&e), key);
        assert!(!e.to_string().contains("your-secret"), "{e}");
    }
    for (text, key) in [
        ("milvus:\n  address: <milvus-host>\n", "milvus.address"),
        ("minio:\n  address: <minio-host>\n", "minio.address"),
        ("minio:\n  rootPath: <root>\n", "minio.rootPath"),
        ("minio:\n  region: <region>\n", "minio.region"),
        (
            "minio:\n  accessKeyID: <your-access-key-id>\n",
            "minio.accessKeyID",
        ),
        (
            "minio:\n  useIAM: true\n  iamEndpoint: <iam>\n",
            "minio.iamEndpoint",
        ),
        ("minio:\n  backupToken: <token>\n", "minio.backupToken"),
        (
            "minio:\n  storageType: local\n  rootPath: <dir>\n",
            "minio.rootPath",
        ),
        (
            "configVersion: v2\nmilvus:\n  storage: {provider: azure, accountName: <acct>}\n",
            "milvus.storage.accountName",
        ),
        (
            "configVersion: v2\nbackup:\n  storage: {milvusAddress: <host>}\n",
            "backup.storage.milvusAddress",
        ),
        (
            "configVersion: v2\nmilvus:\n  management: {endpoint: <url>}\n",
            "milvus.management.endpoint",
        ),
        (
            "configVersion: v2\nmilvus:\n  grpc: {tlsMode: server, caCertPath: <ca.pem>}\n",
            "milvus.grpc.caCertPath",
        ),
    ] {
        assert_eq!(invalid_key(&error(text, &[])), key, "{text}");
    }
    // Placeholders in keys that are not read do not block.
    for text in [
        "cloud:\n  apikey: <your-api-key>\n",
        "configVersion: v2\nzillizCloud:\n  apiKey: <your-api-key>\n",
        "minio:\n  useIAM: true\n  accessKeyID: <unused>\n  secretAccessKey: <unused>\n",
        "minio:\n  gcpCredentialJSON: <only-for-gcpnative>\n",
        "minio:\n  storageType: local\n  rootPath: /data\n  bucketName: <unused>\n",
        "milvus:\n  caCertPath: <tls-is-off>\n",
        "configVersion: v2\nmilvus:\n  storage: {provider: local, bucketName: <x>, address: <y>}\n",
    ] {
        let l = load(text);
        assert!(l.warnings.is_empty(), "{text}: {:?}", l.warnings);
    }

    // Bucket names.
    for bucket in ["my bucket", "a/b", "ab", "-bucket", "bucket.", "b<x>"] {
        let e = error(&format!("minio:\n  bucketName: \"{bucket}\"\n"), &[]);
        assert_eq!(invalid_key(&e), "minio.bucketName", "{bucket}");
        assert!(e.to_string().contains("bucket name"), "{e}");
    }
    for bucket in ["bucket_A", "Legacy.Bucket", "a-b.c_d"] {
        let l = load(&format!("minio:\n  bucketName: {bucket}\n"));
        assert_eq!(l.profile.milvus_storage.bucket, bucket);
    }
    let e = error(
        "configVersion: v2\nmilvus:\n  storage: {provider: azure, accountName: a, bucketName: Milvus_Data}\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "milvus.storage.bucketName");
    assert!(e.to_string().contains("Azure container"), "{e}");

    // Hosts.
    for address in ["minio host", "minio/x", "<host>x"] {
        let e = error(&format!("minio:\n  address: \"{address}\"\n"), &[]);
        assert_eq!(invalid_key(&e), "minio.address", "{address}");
    }
    for address in ["minio.default.svc", "10.0.0.1", "::1", "[fe80::1%eth0]"] {
        load(&format!("minio:\n  address: \"{address}\"\n"));
    }

    // Ports out of range and unknown providers.
    for port in ["-1", "0", "65536"] {
        assert_eq!(
            invalid_key(&error(&format!("minio:\n  port: {port}\n"), &[])),
            "minio.port"
        );
        assert_eq!(
            invalid_key(&error(
                &format!("configVersion: v2\nbackup:\n  storage: {{port: {port}}}\n"),
                &[]
            )),
            "backup.storage.port"
        );
    }
    // Beyond 64 bits: the YAML parser refuses what fits 128 bits (naming line and key), and
    // larger numbers become floats, refused as ports.
    let e = error("minio:\n  port: 99999999999999999999999\n", &[]);
    assert!(
        matches!(e, ConfigError::Syntax { line: 2, .. }) && e.to_string().contains("minio.port"),
        "{e}"
    );
    let e = error(
        "minio:\n  port: 99999999999999999999999999999999999999999\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "minio.port");
    let e = error(
        "configVersion: v2\nbackup:\n  storage: {provider: ceph}\n",
        &[],
    );
    assert_eq!(invalid_key(&e), "backup.storage.provider");
}

#[test]
fn v2_static_keys_default_to_minioadmin() {
    // As in milvus-backup 0.6 (and v1): an omitted key pair is MinIO's default one.
    let l = load("configVersion: v2\n");
    for s in [&l.profile.milvus_storage, &l.profile.backup_storage] {
        assert_eq!(s.auth_type, AuthType::Static);
        assert_eq!(s.access_key_id, "minioadmin");
        assert_eq!(s.secret_access_key.expose(), "minioadmin");
    }
}

#[test]
fn keys_are_case_insensitive() {
    let l = load(
        "MILVUS:\n  ADDRESS: m\n  Port: 1234\nminio:\n  accesskeyid: lower\n  SECRETACCESSKEY: upper\n  \
         BackupBucketName: bucket-bb\n  usessl: \"TRUE\"\n",
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.profile;
    assert_eq!((p.milvus.address.as_str(), p.milvus.port), ("m", 1234));
    assert_eq!(p.milvus_storage.access_key_id, "lower");
    assert_eq!(p.milvus_storage.secret_access_key.expose(), "upper");
    assert_eq!(p.backup_storage.bucket, "bucket-bb");
    assert!(p.milvus_storage.use_ssl);
    assert_eq!(setting(p, "minio.accessKeyID").source, Source::File);
    let e = error("minio:\n  bucketName: a\n  BUCKETNAME: b\n", &[]);
    assert!(e.to_string().contains("given twice"), "{e}");
}

#[test]
fn unknown_and_retired_keys_warn() {
    let l =
        load("minio:\n  bukcetName: x\n  color: blue\nbackup:\n  gcPause:\n    seconds: 7200\n");
    assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("`backup.gcPause.seconds` is no longer used"))
    );
    let typo = l
        .warnings
        .iter()
        .find(|w| w.contains("bukcetName"))
        .unwrap();
    assert!(
        typo.starts_with("t.yaml: unknown key `minio.bukcetName` (ignored)"),
        "{typo}"
    );
    assert!(typo.contains("did you mean `minio.bucketName`"), "{typo}");
    assert!(
        l.warnings
            .contains(&"t.yaml: unknown key `minio.color` (ignored)".to_string())
    );
    // v1 keys in a v2 profile are unknown there.
    let l = load("configVersion: v2\nminio:\n  address: x\n");
    assert!(l.warnings[0].contains("v1 key"), "{:?}", l.warnings);
    // Empty sections and null values are not unknown.
    let l = load("milvus:\nminio:\n  rootPath:\n");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        l.profile.milvus_storage.root_path, "files",
        "null means unset"
    );
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = error(
        "milvus:\n  address: a\n  port: [19530\nminio:\n  address: b\n",
        &[],
    );
    match &e {
        ConfigError::Syntax {
            line,
            column,
            message,
            ..
        } => {
            assert!(*line >= 3, "line {line}");
            assert!(*column > 0);
            assert!(!message.contains(" at line "), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().starts_with("t.yaml:"), "{e}");
    let e = error("milvus:\n  address: a\n bad: indent\n", &[]);
    match e {
        ConfigError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 2)),
        other => panic!("{other}"),
    }
    let e = error("- a\n- b\n", &[]);
    assert!(e.to_string().contains("mapping"), "{e}");
}

#[test]
fn wrong_types_name_the_key() {
    let e = error("minio:\n  port: \"abc\"\n", &[]);
    assert_eq!(
        e.to_string(),
        "t.yaml: key `minio.port`: expected a port number 1-65535, got \"abc\""
    );
    assert_eq!(
        invalid_key(&error("minio:\n  useSSL: maybe\n", &[])),
        "minio.useSSL"
    );
    assert_eq!(
        invalid_key(&error("milvus:\n  port: 70000\n", &[])),
        "milvus.port"
    );
    assert_eq!(
        invalid_key(&error("milvus:\n  tlsMode: 3\n", &[])),
        "milvus.tlsMode"
    );
    assert_eq!(
        invalid_key(&error("backup:\n  parallelism:\n    copydata: -1\n", &[])),
        "backup.parallelism.copydata"
    );
    assert_eq!(
        invalid_key(&error("transfer:\n  partSize: 16XB\n", &[])),
        "transfer.partSize"
    );
    assert_eq!(
        invalid_key(&error("transfer:\n  mode: fast\n", &[])),
        "transfer.mode"
    );
    let e = error("minio:\n  port:\n    value: 9000\n", &[]);
    assert_eq!(
        e.to_string(),
        "t.yaml: key `minio.port`: expected a port number 1-65535, got a mapping"
    );
    assert_eq!(
        invalid_key(&error(
            "configVersion: v2\nmilvus:\n  grpc:\n    tlsMode: 1\n",
            &[]
        )),
        "milvus.grpc.tlsMode"
    );
    // Numbers and booleans may be strings; crossStorage once shipped as "false".
    let l =
        load("milvus:\n  port: \"19531\"\nminio:\n  crossStorage: \"false\"\n  useIAM: \"true\"\n");
    assert_eq!(l.profile.milvus.port, 19531);
    assert_eq!(l.profile.transfer_options.mode, Some(TransferMode::Auto));
    assert!(l.profile.milvus_storage.use_iam);
    assert_eq!(l.profile.milvus_storage.auth_type, AuthType::Iam);
    let l = load("minio:\n  crossStorage: true\n");
    assert_eq!(
        l.profile.transfer_options.mode,
        Some(TransferMode::Streaming)
    );
}

#[test]
fn secrets_never_leak() {
    const S: [&str; 9] = [
        "pw-SECRET-1",
        "sk-SECRET-2",
        "tok-SECRET-3",
        "gcp-SECRET-4",
        "bsk-SECRET-5",
        "btok-SECRET-6",
        "bgcp-SECRET-7",
        "api-SECRET-8",
        "env-SECRET-9",
    ];
    let v1 = format!(
        "milvus:\n  password: {}\nminio:\n  secretAccessKey: {}\n  token: {}\n  gcpCredentialJSON: {}\n  \
         backupSecretAccessKey: {}\n  backupToken: {}\n  backupGcpCredentialJSON: {}\ncloud:\n  apikey: {}\n",
        S[0], S[1], S[2], S[3], S[4], S[5], S[6], S[7]
    );
    let l = load(&v1);
    let v2 = format!(
        "configVersion: v2\nmilvus:\n  password: {}\n  storage:\n    provider: azure\n    accountName: a\n    \
         auth: {{type: sharedKey, accountKey: {}}}\nzillizCloud:\n  apiKey: {}\n",
        S[0], S[1], S[7]
    );
    let l2 = load_env(&v2, &[("BACKUP_STORAGE_AUTH_ACCOUNT_KEY", S[8])]);
    assert_eq!(l2.profile.backup_storage.azure_account_key.expose(), S[8]);
    let mut shown = vec![
        format!("{l:?}"),
        format!("{:?}", l.profile.describe()),
        format!("{l2:?}"),
        format!("{:?}", l2.profile.describe()),
        format!("{:?}", l.profile.milvus_storage),
        format!("{:?}", l.profile.cloud),
    ];
    assert!(
        l.profile
            .describe()
            .iter()
            .any(|s| s.key == "minio.secretAccessKey" && s.value == "***")
    );
    assert!(
        l.profile
            .describe()
            .iter()
            .any(|s| s.key == "milvus.password" && s.value == "***")
    );
    // Errors around secret keys never echo the value.
    let errors = [
        error(&format!("minio:\n  secretAccessKey: [{}]\n", S[1]), &[]),
        error(&format!("milvus:\n  password: {{x: {}}}\n", S[0]), &[]),
        error(
            &format!(
                "configVersion: v2\nmilvus:\n  storage:\n    auth: {{type: iam, secretAccessKey: {}}}\n",
                S[1]
            ),
            &[],
        ),
        error(
            "configVersion: v2\nmilvus:\n  storage:\n    auth: {type: iam}\n",
            &[("MILVUS_STORAGE_AUTH_SESSION_TOKEN", S[2])],
        ),
        error(
            &format!("minio:\n  secretAccessKey: {}\n  port: x\n", S[1]),
            &[],
        ),
    ];
    for e in &errors {
        shown.push(e.to_string());
        shown.push(format!("{e:?}"));
    }
    for text in &shown {
        for secret in S {
            assert!(!text.contains(secret), "{secret} leaked in: {text}");
        }
    }
}

#[test]
fn cli_options_override_the_file() {
    let l = load(
        "backup:\n  parallelism:\n    copydata: 64\ntransfer:\n  partSize: 32MiB\n  bwLimit: 50MiB/s\n  \
         readTimeout: 2m\n  requestRate: 100\nminio:\n  multipartCopyThresholdMiB: 1024\n",
    );
    let p = &l.profile;
    assert_eq!(p.transfer_options.concurrency, Some(64));
    assert_eq!(
        setting(p, "backup.parallelism.copydata").source,
        Source::File
    );
    assert_eq!(setting(p, "transfer.partsPerObject").value, "4");
    assert_eq!(
        setting(p, "transfer.partsPerObject").source,
        Source::Default
    );
    assert_eq!(setting(p, "transfer.bwLimit").value, "50MiB/s");
    let file_only = p.transfer(&TransferOptions::default()).unwrap();
    assert_eq!(file_only.concurrency, 64);
    assert_eq!(file_only.part_size, 32 * MIB);
    assert_eq!(file_only.byte_rate.map(|r| r.get()), Some(50 * MIB));
    assert_eq!(file_only.read_timeout.as_secs(), 120);
    assert_eq!(file_only.multipart_copy_threshold, 1024 * MIB);
    assert_eq!(file_only.request_rate.map(|r| r.get()), Some(100));
    let cli = TransferOptions {
        concurrency: Some(8),
        bw_limit: Some(0),
        mode: Some(TransferMode::Streaming),
        ..TransferOptions::default()
    };
    let t = p.transfer(&cli).unwrap();
    assert_eq!(t.concurrency, 8);
    assert_eq!(
        t.part_size,
        32 * MIB,
        "file value kept where the CLI says nothing"
    );
    assert_eq!(t.byte_rate, None, "CLI `off` beats the file's limit");
    assert_eq!(t.mode, TransferMode::Streaming);
    assert_eq!(t.retries, 10);

    // `transfer.concurrency` wins over its v1 alias in the same file.
    let l = load("transfer:\n  concurrency: 5\nbackup:\n  parallelism:\n    copydata: 64\n");
    assert_eq!(l.profile.transfer_options.concurrency, Some(5));

    // Errors: blamed on the CLI when the CLI set the value, else on the file's key.
    let l = load("transfer:\n  maxBufferMemory: 64MiB\n");
    let e = l
        .profile
        .transfer(&TransferOptions {
            part_size: Some(MIB),
            ..TransferOptions::default()
        })
        .unwrap_err();
    assert!(
        matches!(&e, ConfigError::Transfer { key, .. } if key == "transfer.partSize"),
        "{e}"
    );
    let e = l
        .profile
        .transfer(&TransferOptions {
            part_size: Some(128 * MIB),
            ..TransferOptions::default()
        })
        .unwrap_err();
    assert_eq!(invalid_key(&e), "transfer.maxBufferMemory");
    assert!(e.to_string().starts_with("t.yaml: "), "{e}");
    let l = load("backup:\n  parallelism:\n    copydata: 0\n");
    let e = l.profile.transfer(&TransferOptions::default()).unwrap_err();
    assert_eq!(invalid_key(&e), "backup.parallelism.copydata");
    let l = load_env("", &[("BACKUP_PARALLELISM_COPYDATA", "0")]);
    let e = l.profile.transfer(&TransferOptions::default()).unwrap_err();
    assert!(
        matches!(&e, ConfigError::Env { var, .. } if var == "BACKUP_PARALLELISM_COPYDATA"),
        "{e}"
    );
}

#[test]
fn describe_lists_every_key_with_its_source() {
    let l = load(SEED);
    let d = l.profile.describe();
    for key in [
        "milvus.address",
        "milvus.tlsMode",
        "minio.storageType",
        "minio.backupRootPath",
        "minio.backupGcpCredentialJSON",
        "transfer.concurrency",
        "transfer.mode",
        "backup.gcPause.address",
        "log.level",
        "cloud.apikey",
    ] {
        assert!(d.iter().any(|s| s.key == key), "missing {key}");
    }
    let mut keys: Vec<&str> = d.iter().map(|s| s.key.as_str()).collect();
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "each key once");
    let tls = d.iter().find(|s| s.key == "milvus.tlsMode").unwrap();
    assert_eq!((tls.value.as_str(), &tls.source), ("0", &Source::File));
    assert_eq!(
        Source::Inherited("minio.address".into()).to_string(),
        "inherited from minio.address"
    );

    let l = load(V2);
    let d = l.profile.describe();
    assert!(
        d.iter()
            .any(|s| s.key == "configVersion" && s.value == "v2")
    );
    assert!(
        d.iter()
            .any(|s| s.key == "backup.storage.auth.secretAccessKey" && s.value == "***")
    );
    let mut keys: Vec<&str> = d.iter().map(|s| s.key.as_str()).collect();
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "each key once");
}

#[test]
fn read_errors_name_the_file() {
    let e = Profile::load_with_env(Path::new("/nonexistent/a.yaml"), &no_env).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("cannot read profile /nonexistent/a.yaml: "),
        "{text}"
    );
    assert!(matches!(e, ConfigError::Read { .. }));
}

/// The directory of shipped profiles: `$MM_CONFIGS_DIR`, else `configs/` of this
/// crate.
fn configs_dir() -> PathBuf {
    match std::env::var_os("MM_CONFIGS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"),
    }
}

#[test]
fn every_shipped_profile_loads_cleanly() {
    let dir = configs_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the shipped profiles in {}",
        dir.display()
    );
    let mut by_name = HashMap::new();
    for file in &files {
        let loaded = Profile::load_with_env(file, &no_env).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            loaded.warnings.is_empty(),
            "{}: {:?}",
            file.display(),
            loaded.warnings
        );
        loaded
            .profile
            .transfer(&TransferOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        by_name.insert(
            file.file_name().unwrap().to_string_lossy().into_owned(),
            loaded.profile,
        );
    }

    let seed = &by_name["backup.yaml"];
    assert_seed_shape(seed, "milvus_A", "minio_A");
    assert_eq!(seed.backup_storage.secret_access_key.expose(), "minioadmin");

    let a = &by_name["a.yaml"];
    assert_eq!(
        (a.milvus.address.as_str(), a.milvus.port),
        ("127.0.0.1", 19530)
    );
    assert_eq!(a.milvus_storage.endpoint_url(), "http://127.0.0.1:9100");
    assert_eq!(a.milvus_storage.access_key_id, "minio-a-key");
    assert_eq!(
        a.milvus_storage.secret_access_key.expose(),
        "minio-a-secret"
    );
    assert_eq!(
        (
            a.milvus_storage.bucket.as_str(),
            a.milvus_storage.root_path.as_str()
        ),
        ("bucket-a", "files")
    );
    assert_eq!(
        (a.backup_storage.bucket.as_str(), a.backup_root.as_str()),
        ("bucket-a", "backup")
    );
    assert!(a.milvus_storage.same_service(&a.backup_storage));

    let b = &by_name["b.yaml"];
    assert_eq!(b.milvus.port, 19630);
    assert_eq!(b.milvus_storage.endpoint_url(), "http://127.0.0.1:9200");
    assert_eq!(b.backup_storage.access_key_id, "minio-b-key");
    assert_eq!(
        b.backup_storage.secret_access_key.expose(),
        "minio-b-secret"
    );
    assert_eq!(
        (b.milvus_storage.bucket.as_str(), b.backup_root.as_str()),
        ("bucket-b", "backup")
    );
    assert!(!a.milvus_storage.same_service(&b.milvus_storage));

    let v2 = &by_name["v2-example.yaml"];
    assert_eq!(v2.schema, SchemaVersion::V2);
    assert_eq!(v2.backup_storage.bucket, "backups");
    assert_eq!(v2.backup_storage.access_key_id, "minio-a-key");
    assert_eq!(v2.etcd.endpoints, vec!["127.0.0.1:2379"]);
    assert_eq!(v2.transfer_options.bw_limit, Some(0));
}

#[test]
fn each_store_names_the_keys_its_credentials_come_from_never_their_values() {
    let v1 = "minio:\n  address: s3.local\n  accessKeyID: ak\n  secretAccessKey: sk-secret\n";
    let l = load_env(v1, &[("MINIO_BACKUP_SECRET_KEY", "env-secret")]);
    let p = &l.profile;
    assert_eq!(
        p.milvus_storage.credentials,
        "`minio.accessKeyID`, `minio.secretAccessKey` of t.yaml"
    );
    assert_eq!(
        p.backup_storage.credentials,
        "`minio.backupAccessKeyID` (inherited from minio.accessKeyID), \
         `minio.backupSecretAccessKey` (env MINIO_BACKUP_SECRET_KEY) of t.yaml"
    );
    // Named, the two stores are still configured the same when only the names differ.
    let same = load("minio:\n  address: s3.local\n").profile;
    assert!(same.backup_storage.same_as(&same.milvus_storage));
    assert_ne!(same.backup_storage, same.milvus_storage);

    let p = load(V2).profile;
    assert!(
        p.backup_storage.credentials.starts_with(
            "`backup.storage.auth.accessKeyID` (inherited from milvus.storage.auth.accessKeyID)"
        ),
        "{}",
        p.backup_storage.credentials
    );
    for c in [&p.milvus_storage.credentials, &p.backup_storage.credentials] {
        assert!(!c.contains("SK"), "{c}");
    }
    // A local directory has no credentials to name.
    let local = load("minio:\n  storageType: local\n  rootPath: /data\n").profile;
    assert_eq!(local.milvus_storage.credentials, "");
}

#[test]
fn milvus_credentials_are_named_by_their_keys_and_sources() {
    let v1 = "milvus:\n  user: root\n";
    let p = load_env(v1, &[("MILVUS_PASSWORD", "pw-from-env")]).profile;
    assert_eq!(
        p.milvus.credentials,
        "`milvus.user`, `milvus.password` (env MILVUS_PASSWORD) of t.yaml"
    );
    let p = load(V2).profile;
    assert!(
        p.milvus.credentials.starts_with("`milvus.user`"),
        "{}",
        p.milvus.credentials
    );
}
