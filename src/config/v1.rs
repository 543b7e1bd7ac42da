//! Schema v1 (milvus-backup 0.5.x, no `configVersion`): which keys exist, their defaults and
//! environment variables, and how the backup store inherits from the Milvus store.
//!
//! Owns the v1 key names, the `minio.backup*` inheritance (computed after environment overrides,
//! so `MINIO_ADDRESS` also moves an inherited backup address), the aliases
//! (`storage.storageType`, `minio.cloudProvider`), the legacy keys that are accepted and ignored,
//! and the v1 quirks: `tlsMode: 2` without a client key pair downgrades to `1` with a warning (as
//! milvus-backup 0.5 did, so existing files keep working), Azure's account name is the
//! `accessKeyID`, and a `local` store's `rootPath` is the directory itself (kept in
//! `StorageConfig::local_path`, and in `milvus_local_path` too since v1 has no separate Milvus
//! view; `root_path` is ""). Does not own the rules (`validate.rs`) or the `transfer:` block
//! (`transfer.rs`).

use super::milvus::{MilvusConfig, TlsMode};
use super::resolve::{Fallback, List, Port, Resolver, TlsV1};
use super::storage::{AuthType, StorageConfig, StorageType, local_dir, normalize_root};
use super::{
    CloudConfig, ConfigError, EtcdConfig, LogConfig, Parallelism, Profile, SchemaVersion, Secret,
    ServerConfig, transfer, validate,
};

use Fallback::{Default as D, Inherit};

/// Keys of milvus-backup 0.4.x that are no longer read: accepted, warned about, ignored.
const RETIRED: [(&str, &str); 5] = [
    ("http.simpleResponse", "dropped in milvus-backup 0.5"),
    ("milvus.tlsCertPath", "use `milvus.caCertPath`"),
    ("log.file.rootPath", "use `log.file.filename`"),
    ("backup.maxSegmentGroupSize", "dropped in milvus-backup 0.5"),
    (
        "backup.gcPause.seconds",
        "GC stays paused for the whole backup",
    ),
];

/// One v1 store as read, before it becomes a [`StorageConfig`].
struct Side {
    storage_type: StorageType,
    address: String,
    port: u16,
    region: String,
    access_key_id: String,
    secret_access_key: Secret,
    token: Secret,
    gcp_credential_json: Secret,
    use_ssl: bool,
    use_iam: bool,
    iam_endpoint: String,
    bucket: String,
    /// As written: a local store keeps its leading `/`.
    root: String,
    virtual_host: bool,
}

impl Side {
    fn into_config(self) -> StorageConfig {
        let auth_type = if self.use_iam {
            AuthType::Iam
        } else if self.storage_type == StorageType::Azure {
            AuthType::SharedKey
        } else if self.storage_type == StorageType::GcpNative
            && !self.gcp_credential_json.is_empty()
        {
            AuthType::ServiceAccount
        } else {
            AuthType::Static
        };
        let (azure_account_name, azure_account_key) = if self.storage_type == StorageType::Azure {
            (self.access_key_id.clone(), self.secret_access_key.clone())
        } else {
            (String::new(), Secret::default())
        };
        let (root_path, local_path) = if self.storage_type == StorageType::Local {
            (String::new(), local_dir(&self.root))
        } else {
            (normalize_root(&self.root), String::new())
        };
        StorageConfig {
            storage_type: self.storage_type,
            address: self.address,
            port: self.port,
            use_ssl: self.use_ssl,
            region: self.region,
            bucket: self.bucket,
            root_path,
            access_key_id: self.access_key_id,
            secret_access_key: self.secret_access_key,
            token: self.token,
            auth_type,
            use_iam: self.use_iam,
            iam_endpoint: self.iam_endpoint,
            gcp_credential_json: self.gcp_credential_json,
            gcp_credentials_file: String::new(),
            azure_account_name,
            azure_account_key,
            // v1 has no separate Milvus view of a local directory.
            milvus_local_path: local_path.clone(),
            local_path,
            virtual_host: self.virtual_host,
            milvus_address: String::new(),
            milvus_port: None,
            credentials: String::new(),
        }
    }
}

fn inherit<T>(value: &T, from: &str) -> Fallback<T>
where
    T: Clone,
{
    Inherit(value.clone(), from.to_string())
}

/// Loads a v1 profile.
pub(super) fn load(r: &mut Resolver<'_>) -> Result<Profile, ConfigError> {
    // Accepted for compatibility with the documentation's example; it never did anything the
    // user needs to hear about.
    r.ignore("milvus.authorizationEnabled");
    for (key, note) in RETIRED {
        r.retired(key, note);
    }

    let milvus = read_milvus(r)?;

    if r.doc.has("minio.cloudProvider") {
        r.warn("key `minio.cloudProvider` is deprecated; use `minio.storageType`");
    }
    let m = Side {
        storage_type: r.get(
            &[
                "minio.storageType",
                "storage.storageType",
                "minio.cloudProvider",
            ],
            None,
            D(StorageType::Minio),
        )?,
        address: r.get(
            &["minio.address"],
            Some("MINIO_ADDRESS"),
            D("localhost".into()),
        )?,
        port: r.get(&["minio.port"], Some("MINIO_PORT"), D(Port(9000)))?.0,
        region: r.get(&["minio.region"], Some("MINIO_REGION"), D(String::new()))?,
        access_key_id: r.get(
            &["minio.accessKeyID"],
            Some("MINIO_ACCESS_KEY"),
            D("minioadmin".into()),
        )?,
        secret_access_key: r.get(
            &["minio.secretAccessKey"],
            Some("MINIO_SECRET_KEY"),
            D(Secret::new("minioadmin")),
        )?,
        token: r.get(&["minio.token"], Some("MINIO_TOKEN"), D(Secret::default()))?,
        gcp_credential_json: r.get(
            &["minio.gcpCredentialJSON"],
            Some("GCP_KEY_JSON"),
            D(Secret::default()),
        )?,
        use_ssl: r.get(&["minio.useSSL"], Some("MINIO_USE_SSL"), D(false))?,
        use_iam: r.get(&["minio.useIAM"], Some("MINIO_USE_IAM"), D(false))?,
        iam_endpoint: r.get(
            &["minio.iamEndpoint"],
            Some("MINIO_IAM_ENDPOINT"),
            D(String::new()),
        )?,
        bucket: r.get(
            &["minio.bucketName"],
            Some("MINIO_BUCKET_NAME"),
            D("a-bucket".into()),
        )?,
        root: r.get(
            &["minio.rootPath"],
            Some("MINIO_ROOT_PATH"),
            D("files".into()),
        )?,
        virtual_host: r.get(&["minio.useVirtualHost"], None, D(false))?,
    };

    // The backup store: every field inherits the resolved Milvus-side value, except the GCP
    // credential JSON; the root path falls back to `backup` only when Milvus's is empty.
    let root_fallback = if normalize_root(&m.root).is_empty() {
        D("backup".to_string())
    } else {
        inherit(&m.root, "minio.rootPath")
    };
    let b = Side {
        storage_type: r.get(
            &["minio.backupStorageType", "storage.backupStorageType"],
            None,
            inherit(&m.storage_type, "minio.storageType"),
        )?,
        address: r.get(
            &["minio.backupAddress"],
            Some("MINIO_BACKUP_ADDRESS"),
            inherit(&m.address, "minio.address"),
        )?,
        port: r
            .get(
                &["minio.backupPort"],
                Some("MINIO_BACKUP_PORT"),
                inherit(&Port(m.port), "minio.port"),
            )?
            .0,
        region: r.get(
            &["minio.backupRegion"],
            Some("MINIO_BACKUP_REGION"),
            inherit(&m.region, "minio.region"),
        )?,
        access_key_id: r.get(
            &["minio.backupAccessKeyID"],
            Some("MINIO_BACKUP_ACCESS_KEY"),
            inherit(&m.access_key_id, "minio.accessKeyID"),
        )?,
        secret_access_key: r.get(
            &["minio.backupSecretAccessKey"],
            Some("MINIO_BACKUP_SECRET_KEY"),
            inherit(&m.secret_access_key, "minio.secretAccessKey"),
        )?,
        token: r.get(
            &["minio.backupToken"],
            Some("MINIO_BACKUP_TOKEN"),
            inherit(&m.token, "minio.token"),
        )?,
        gcp_credential_json: r.get(
            &["minio.backupGcpCredentialJSON"],
            Some("BACKUP_GCP_KEY_JSON"),
            D(Secret::default()),
        )?,
        use_ssl: r.get(
            &["minio.backupUseSSL"],
            Some("MINIO_BACKUP_USE_SSL"),
            inherit(&m.use_ssl, "minio.useSSL"),
        )?,
        use_iam: r.get(
            &["minio.backupUseIAM"],
            Some("MINIO_BACKUP_USE_IAM"),
            inherit(&m.use_iam, "minio.useIAM"),
        )?,
        iam_endpoint: r.get(
            &["minio.backupIamEndpoint"],
            Some("MINIO_BACKUP_IAM_ENDPOINT"),
            inherit(&m.iam_endpoint, "minio.iamEndpoint"),
        )?,
        bucket: r.get(
            &["minio.backupBucketName"],
            Some("MINIO_BACKUP_BUCKET_NAME"),
            inherit(&m.bucket, "minio.bucketName"),
        )?,
        root: r.get(
            &["minio.backupRootPath"],
            Some("MINIO_BACKUP_ROOT_PATH"),
            root_fallback,
        )?,
        virtual_host: r.get(
            &["minio.backupUseVirtualHost"],
            None,
            inherit(&m.virtual_host, "minio.useVirtualHost"),
        )?,
    };
    let mut milvus_storage = m.into_config();
    let mut backup_storage = b.into_config();

    let transfer_options = transfer::read_options(r, SchemaVersion::V1)?;

    let parallelism = Parallelism {
        backup_collections: r.get(
            &["backup.parallelism.backupCollection"],
            Some("BACKUP_PARALLELISM_BACKUP_COLLECTION"),
            D(4usize),
        )?,
        backup_segments: r.get(&["backup.parallelism.backupSegment"], None, D(1024usize))?,
        restore_collections: r.get(
            &["backup.parallelism.restoreCollection"],
            Some("BACKUP_PARALLELISM_RESTORE_COLLECTION"),
            D(2usize),
        )?,
        import_jobs: r.get(&["backup.parallelism.importJob"], None, D(768usize))?,
        max_segments_per_import_job: 256,
    };
    let keep_temp_files = r.get(
        &["backup.keepTempFiles"],
        Some("BACKUP_KEEP_TEMP_FILES"),
        D(false),
    )?;
    let pause_gc = r.get(
        &["backup.gcPause.enable"],
        Some("BACKUP_GC_PAUSE_ENABLE"),
        D(true),
    )?;

    let log = LogConfig {
        level: r.get(&["log.level"], None, D("info".into()))?,
        console: r.get(&["log.console"], None, D(true))?,
        file_path: r.get(&["log.file.filename"], None, D("logs/backup.log".into()))?,
        max_size_mib: r.get(&["log.file.maxSize"], None, D(300u64))?,
        max_days: r.get(&["log.file.maxDays"], None, D(0u64))?,
        max_backups: r.get(&["log.file.maxBackups"], None, D(0u64))?,
    };
    let server = ServerConfig {
        enabled: r.get(&["http.enabled"], None, D(true))?,
        debug_mode: r.get(&["http.debugMode"], None, D(false))?,
        swagger_base_path: r.get(&["http.swaggerBasePath"], None, D(String::new()))?,
    };
    let cloud = CloudConfig {
        endpoint: r.get(
            &["cloud.address"],
            None,
            D("https://api.cloud.zilliz.com".into()),
        )?,
        api_key: r.get(&["cloud.apikey"], None, D(Secret::default()))?,
    };
    let etcd = EtcdConfig {
        endpoints: r
            .get(
                &["milvus.etcd.endpoints"],
                None,
                D(List(vec!["localhost:2379".into()])),
            )?
            .0,
        root_path: r.get(&["milvus.etcd.rootPath"], None, D("by-dev".into()))?,
    };

    // Rules.
    validate::milvus(r, &milvus, &|f| match f {
        "management.endpoint" => "backup.gcPause.address".to_string(),
        _ => format!("milvus.{f}"),
    })?;
    validate::storage(r, &milvus_storage, &|f| v1_storage_key(f, false))?;
    validate::storage(r, &backup_storage, &|f| v1_storage_key(f, true))?;
    milvus_storage.credentials =
        validate::credentials_origin(r, &milvus_storage, &|f| v1_storage_key(f, false));
    backup_storage.credentials =
        validate::credentials_origin(r, &backup_storage, &|f| v1_storage_key(f, true));
    validate::parallelism(r, &parallelism, &|f| {
        match f {
            "backup_collections" => "backup.parallelism.backupCollection",
            "backup_segments" => "backup.parallelism.backupSegment",
            "restore_collections" => "backup.parallelism.restoreCollection",
            _ => "backup.parallelism.importJob",
        }
        .to_string()
    })?;
    validate::log_level(r, &log.level)?;

    Ok(Profile {
        path: r.path.to_path_buf(),
        schema: SchemaVersion::V1,
        backup_root: backup_storage.root_path.clone(),
        milvus,
        milvus_storage,
        backup_storage,
        transfer_options,
        parallelism,
        keep_temp_files,
        pause_gc,
        etcd,
        log,
        server,
        cloud,
        settings: Vec::new(),
    })
}

/// The v1 key of a storage field named as in v2.
fn v1_storage_key(field: &str, backup: bool) -> String {
    let name = match field {
        // Azure's account name is the access key ID in v1, its account key the secret key.
        "accountName" | "auth.accessKeyID" => "accessKeyID",
        "auth.secretAccessKey" | "auth.accountKey" => "secretAccessKey",
        "auth.sessionToken" => "token",
        "auth.credentialsFile" => "gcpCredentialJSON",
        "auth.endpoint" => "iamEndpoint",
        // v1 has one path per local store: the root path is the directory.
        "localPath" => "rootPath",
        other => other,
    };
    if backup {
        let mut chars = name.chars();
        let first = chars
            .next()
            .map(|c| c.to_ascii_uppercase())
            .unwrap_or_default();
        format!("minio.backup{first}{}", chars.as_str())
    } else {
        format!("minio.{name}")
    }
}

fn read_milvus(r: &mut Resolver<'_>) -> Result<MilvusConfig, ConfigError> {
    let address = r.get(
        &["milvus.address"],
        Some("MILVUS_ADDRESS"),
        D("localhost".into()),
    )?;
    let port = r
        .get(&["milvus.port"], Some("MILVUS_PORT"), D(Port(19530)))?
        .0;
    let user = r.get(&["milvus.user"], Some("MILVUS_USER"), D(String::new()))?;
    let password = r.get(
        &["milvus.password"],
        Some("MILVUS_PASSWORD"),
        D(Secret::default()),
    )?;
    let mut tls_mode = r
        .get(
            &["milvus.tlsMode"],
            Some("MILVUS_TLS_MODE"),
            D(TlsV1(TlsMode::Disabled)),
        )?
        .0;
    let ca_cert_path = r.get(
        &["milvus.caCertPath"],
        Some("MILVUS_CA_CERT_PATH"),
        D(String::new()),
    )?;
    let server_name = r.get(
        &["milvus.serverName"],
        Some("MILVUS_SERVER_NAME"),
        D(String::new()),
    )?;
    let mtls_cert_path = r.get(
        &["milvus.mtlsCertPath"],
        Some("MILVUS_MTLS_CERT_PATH"),
        D(String::new()),
    )?;
    let mtls_key_path = r.get(
        &["milvus.mtlsKeyPath"],
        Some("MILVUS_MTLS_KEY_PATH"),
        D(String::new()),
    )?;
    let rpc_channel_name = r.get(
        &["milvus.rpcChannelName"],
        Some("MILVUS_RPC_CHANNEL_NAME"),
        D("by-dev-replicate-msg".into()),
    )?;
    let management_endpoint = r.get(
        &["backup.gcPause.address"],
        Some("BACKUP_GC_PAUSE_ADDRESS"),
        D("http://localhost:9091".into()),
    )?;
    if tls_mode == TlsMode::Mutual && (mtls_cert_path.is_empty() || mtls_key_path.is_empty()) {
        r.warn(
            "`milvus.tlsMode: 2` (mutual) without `milvus.mtlsCertPath` and `milvus.mtlsKeyPath`: \
             using 1 (verify the server only), as milvus-backup 0.5 does",
        );
        tls_mode = TlsMode::Server;
    }
    Ok(MilvusConfig {
        address,
        port,
        user,
        password,
        tls_mode,
        ca_cert_path,
        server_name,
        mtls_cert_path,
        mtls_key_path,
        rest_endpoint: String::new(),
        management_endpoint,
        rpc_channel_name,
        credentials: validate::milvus_credentials(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_key_names() {
        assert_eq!(v1_storage_key("bucketName", false), "minio.bucketName");
        assert_eq!(v1_storage_key("bucketName", true), "minio.backupBucketName");
        assert_eq!(
            v1_storage_key("accountName", true),
            "minio.backupAccessKeyID"
        );
        assert_eq!(v1_storage_key("localPath", false), "minio.rootPath");
        assert_eq!(v1_storage_key("rootPath", true), "minio.backupRootPath");
        assert_eq!(
            v1_storage_key("auth.sessionToken", true),
            "minio.backupToken"
        );
        assert_eq!(
            v1_storage_key("auth.endpoint", true),
            "minio.backupIamEndpoint"
        );
        assert_eq!(
            v1_storage_key("auth.credentialsFile", false),
            "minio.gcpCredentialJSON"
        );
        assert_eq!(
            v1_storage_key("auth.accountKey", false),
            "minio.secretAccessKey"
        );
    }
}
