//! Schema v2 (milvus-backup 0.6, `configVersion: v2`): which keys exist, their defaults, the
//! credential-only environment variables, and how `backup.storage` inherits from
//! `milvus.storage`.
//!
//! Owns the v2 key names, the storage block (`provider`, `address`, ..., `auth.*`), the rule that
//! credentials must belong to the chosen `auth.type` (explicit ones are rejected, inherited ones
//! are dropped), the inheritance of every `backup.storage` field except `rootPath` (default
//! `backup`), `localPath` and `milvusAddress`/`milvusPort`, and the `local` provider's two views
//! of one directory: `rootPath` is the directory milvus-migrate opens, `localPath` (optional)
//! the same directory as the Milvus process sees it. Only credentials can come from the
//! environment (`MILVUS_USER`, `MILVUS_PASSWORD`, `MILVUS_STORAGE_*`, `BACKUP_STORAGE_*`,
//! `ZILLIZ_CLOUD_API_KEY`), which avoids the Kubernetes `MILVUS_PORT=tcp://...` trap. Does not
//! own the rules shared with v1 (`validate.rs`) or the `transfer:` block (`transfer.rs`).

use super::milvus::{MilvusConfig, TlsMode};
use super::resolve::{Fallback, Field, Got, List, Port, Resolver, TlsV2};
use super::storage::{AuthType, StorageConfig, StorageType, local_dir, normalize_root};
use super::{
    CloudConfig, ConfigError, EtcdConfig, LogConfig, Parallelism, Profile, SchemaVersion, Secret,
    ServerConfig, Source, transfer, validate,
};

use Fallback::{Default as D, Inherit};

/// Loads a v2 profile (the caller has consumed `configVersion`).
pub(super) fn load(r: &mut Resolver<'_>) -> Result<Profile, ConfigError> {
    let log = LogConfig {
        level: r.get(&["log.level"], None, D("info".into()))?,
        console: r.get(&["log.console"], None, D(true))?,
        file_path: r.get(&["log.file.path"], None, D("logs/backup.log".into()))?,
        max_size_mib: r.get(&["log.file.maxSizeMiB"], None, D(300u64))?,
        max_days: r.get(&["log.file.maxDays"], None, D(0u64))?,
        max_backups: r.get(&["log.file.maxBackups"], None, D(0u64))?,
    };
    let server = ServerConfig {
        enabled: true,
        debug_mode: r.get(&["server.debugMode"], None, D(false))?,
        swagger_base_path: r.get(&["server.swaggerBasePath"], None, D(String::new()))?,
    };

    let mut milvus = MilvusConfig {
        user: r.get(&["milvus.user"], Some("MILVUS_USER"), D(String::new()))?,
        password: r.get(
            &["milvus.password"],
            Some("MILVUS_PASSWORD"),
            D(Secret::default()),
        )?,
        address: r.get(&["milvus.grpc.address"], None, D("localhost".into()))?,
        port: r.get(&["milvus.grpc.port"], None, D(Port(19530)))?.0,
        tls_mode: r
            .get(&["milvus.grpc.tlsMode"], None, D(TlsV2(TlsMode::Disabled)))?
            .0,
        ca_cert_path: r.get(&["milvus.grpc.caCertPath"], None, D(String::new()))?,
        server_name: r.get(&["milvus.grpc.serverName"], None, D(String::new()))?,
        mtls_cert_path: r.get(&["milvus.grpc.mtlsCertPath"], None, D(String::new()))?,
        mtls_key_path: r.get(&["milvus.grpc.mtlsKeyPath"], None, D(String::new()))?,
        rest_endpoint: r.get(&["milvus.rest.endpoint"], None, D(String::new()))?,
        management_endpoint: r.get(
            &["milvus.management.endpoint"],
            None,
            D("http://localhost:9091".into()),
        )?,
        rpc_channel_name: r.get(
            &["milvus.replicate.rpcChannelName"],
            None,
            D("by-dev-replicate-msg".into()),
        )?,
        credentials: String::new(),
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

    let mut milvus_storage = storage_block(r, "milvus.storage", "MILVUS_STORAGE_", None)?;
    let mut backup_storage = storage_block(
        r,
        "backup.storage",
        "BACKUP_STORAGE_",
        Some(&milvus_storage),
    )?;

    let parallelism = Parallelism {
        backup_collections: r.get(&["backup.concurrency.collections"], None, D(4usize))?,
        backup_segments: r.get(&["backup.concurrency.segments"], None, D(1024usize))?,
        restore_collections: r.get(&["restore.concurrency.collections"], None, D(2usize))?,
        import_jobs: r.get(&["restore.concurrency.importJobs"], None, D(768usize))?,
        max_segments_per_import_job: r.get(
            &["restore.maxSegmentsPerImportJob"],
            None,
            D(256usize),
        )?,
    };
    let pause_gc = r.get(&["backup.pauseGC"], None, D(true))?;
    let keep_temp_files = r.get(&["restore.keepTempFiles"], None, D(false))?;

    let transfer_options = transfer::read_options(r, SchemaVersion::V2)?;

    let cloud = CloudConfig {
        endpoint: r.get(
            &["zillizCloud.endpoint"],
            None,
            D("https://api.cloud.zilliz.com".into()),
        )?,
        api_key: r.get(
            &["zillizCloud.apiKey"],
            Some("ZILLIZ_CLOUD_API_KEY"),
            D(Secret::default()),
        )?,
    };

    // Rules.
    validate::milvus(r, &milvus, &|f| match f {
        "user" | "password" | "management.endpoint" | "rest.endpoint" => format!("milvus.{f}"),
        _ => format!("milvus.grpc.{f}"),
    })?;
    milvus.credentials = validate::milvus_credentials(r);
    validate::storage(r, &milvus_storage, &|f| format!("milvus.storage.{f}"))?;
    validate::storage(r, &backup_storage, &|f| format!("backup.storage.{f}"))?;
    milvus_storage.credentials =
        validate::credentials_origin(r, &milvus_storage, &|f| format!("milvus.storage.{f}"));
    backup_storage.credentials =
        validate::credentials_origin(r, &backup_storage, &|f| format!("backup.storage.{f}"));
    validate::parallelism(r, &parallelism, &|f| {
        match f {
            "backup_collections" => "backup.concurrency.collections",
            "backup_segments" => "backup.concurrency.segments",
            "restore_collections" => "restore.concurrency.collections",
            "import_jobs" => "restore.concurrency.importJobs",
            _ => "restore.maxSegmentsPerImportJob",
        }
        .to_string()
    })?;
    validate::log_level(r, &log.level)?;

    Ok(Profile {
        path: r.path.to_path_buf(),
        schema: SchemaVersion::V2,
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

/// Reads one storage block. With a `parent`, every field except `rootPath`, `localPath`,
/// `milvusAddress` and `milvusPort` inherits the parent's resolved value.
///
/// For the `local` provider `rootPath` is the directory itself (kept as written, a leading `/`
/// included) and becomes `local_path`, with `root_path` ""; `localPath` is the Milvus process's
/// view of it (`milvus_local_path`, defaulting to the directory). `localPath` set for another
/// provider is an error, as in milvus-backup.
fn storage_block(
    r: &mut Resolver<'_>,
    prefix: &str,
    env_prefix: &str,
    parent: Option<&StorageConfig>,
) -> Result<StorageConfig, ConfigError> {
    let parent_prefix = "milvus.storage";
    let key = |field: &str| format!("{prefix}.{field}");
    let var = |name: &str| format!("{env_prefix}{name}");
    // The fallback of a field: the parent's value when there is a parent, else the default.
    fn fb<T: Clone>(parent: Option<T>, from: String, default: T) -> Fallback<T> {
        match parent {
            Some(v) => Inherit(v, from),
            None => D(default),
        }
    }
    let from = |field: &str| format!("{parent_prefix}.{field}");

    let storage_type: StorageType = r.get(
        &[&key("provider")],
        None,
        fb(
            parent.map(|p| p.storage_type),
            from("provider"),
            StorageType::Minio,
        ),
    )?;
    let address: String = r.get(
        &[&key("address")],
        None,
        fb(
            parent.map(|p| p.address.clone()),
            from("address"),
            "localhost".into(),
        ),
    )?;
    let port = r
        .get(
            &[&key("port")],
            None,
            fb(parent.map(|p| Port(p.port)), from("port"), Port(9000)),
        )?
        .0;
    let region: String = r.get(
        &[&key("region")],
        None,
        fb(
            parent.map(|p| p.region.clone()),
            from("region"),
            String::new(),
        ),
    )?;
    let use_ssl: bool = r.get(
        &[&key("useSSL")],
        None,
        fb(parent.map(|p| p.use_ssl), from("useSSL"), false),
    )?;
    let virtual_host: bool = r.get(
        &[&key("useVirtualHost")],
        None,
        fb(
            parent.map(|p| p.virtual_host),
            from("useVirtualHost"),
            false,
        ),
    )?;
    let account_name: String = r.get(
        &[&key("accountName")],
        Some(&var("ACCOUNT_NAME")),
        fb(
            parent.map(|p| p.azure_account_name.clone()),
            from("accountName"),
            String::new(),
        ),
    )?;
    let bucket: String = r.get(
        &[&key("bucketName")],
        None,
        fb(
            parent.map(|p| p.bucket.clone()),
            from("bucketName"),
            "a-bucket".into(),
        ),
    )?;
    let root_default = if parent.is_some() { "backup" } else { "files" };
    let root: String = r.get(&[&key("rootPath")], None, D(root_default.to_string()))?;
    let milvus_view: Got<String> = r.get_src(&[&key("localPath")], None, D(String::new()))?;
    if storage_type != StorageType::Local
        && milvus_view.source != Source::Default
        && !milvus_view.value.trim().is_empty()
    {
        return Err(r.invalid(
            &key("localPath"),
            format!(
                "only applies to the `local` provider (the directory as the Milvus process \
                 sees it), but `{}` is `{storage_type}`",
                key("provider")
            ),
        ));
    }
    let milvus_address: String = r.get(&[&key("milvusAddress")], None, D(String::new()))?;
    let milvus_port = match r.lookup::<Port>(&[&key("milvusPort")], None)? {
        Some(got) => {
            r.record_got(&got);
            Some(got.value.0)
        }
        None => {
            r.record(&key("milvusPort"), String::new(), Source::Default);
            None
        }
    };

    let auth_type: Got<AuthType> = r.get_src(
        &[&key("auth.type")],
        None,
        fb(
            parent.map(|p| p.auth_type),
            from("auth.type"),
            AuthType::Static,
        ),
    )?;
    match (auth_type.value, storage_type) {
        (AuthType::SharedKey, StorageType::Azure)
        | (AuthType::ServiceAccount, StorageType::GcpNative | StorageType::Gcp) => {}
        (AuthType::SharedKey | AuthType::ServiceAccount, provider) => {
            return Err(r.invalid(
                &key("auth.type"),
                format!(
                    "`{}` does not apply to provider `{provider}` (sharedKey is for azure, \
                     serviceAccount for gcpnative)",
                    auth_type.value
                ),
            ));
        }
        _ => {}
    }
    let auth = auth_type.value;
    let mut cred = Creds { r, auth, key: &key };
    // milvus-backup's defaults for a static key pair are MinIO's, as in v1.
    let access_key_id: String = cred.get(
        "accessKeyID",
        &var("AUTH_ACCESS_KEY_ID"),
        AuthType::Static,
        fb(
            parent.map(|p| p.access_key_id.clone()),
            from("auth.accessKeyID"),
            "minioadmin".into(),
        ),
    )?;
    let secret_access_key: Secret = cred.get(
        "secretAccessKey",
        &var("AUTH_SECRET_ACCESS_KEY"),
        AuthType::Static,
        fb(
            parent.map(|p| p.secret_access_key.clone()),
            from("auth.secretAccessKey"),
            Secret::new("minioadmin"),
        ),
    )?;
    let token: Secret = cred.get(
        "sessionToken",
        &var("AUTH_SESSION_TOKEN"),
        AuthType::Static,
        fb(
            parent.map(|p| p.token.clone()),
            from("auth.sessionToken"),
            Secret::default(),
        ),
    )?;
    let account_key: Secret = cred.get(
        "accountKey",
        &var("AUTH_ACCOUNT_KEY"),
        AuthType::SharedKey,
        fb(
            parent.map(|p| p.azure_account_key.clone()),
            from("auth.accountKey"),
            Secret::default(),
        ),
    )?;
    let credentials_file: String = cred.get(
        "credentialsFile",
        &var("AUTH_CREDENTIALS_FILE"),
        AuthType::ServiceAccount,
        fb(
            parent.map(|p| p.gcp_credentials_file.clone()),
            from("auth.credentialsFile"),
            String::new(),
        ),
    )?;
    let iam_endpoint: String = cred.get(
        "endpoint",
        "",
        AuthType::Iam,
        fb(
            parent.map(|p| p.iam_endpoint.clone()),
            from("auth.endpoint"),
            String::new(),
        ),
    )?;

    let (root_path, local_path, milvus_local_path) = if storage_type == StorageType::Local {
        let dir = local_dir(&root);
        let view = match local_dir(&milvus_view.value) {
            v if v.is_empty() => dir.clone(),
            v => v,
        };
        (String::new(), dir, view)
    } else {
        (normalize_root(&root), String::new(), String::new())
    };
    Ok(StorageConfig {
        storage_type,
        address,
        port,
        use_ssl,
        region,
        bucket,
        root_path,
        access_key_id,
        secret_access_key,
        token,
        auth_type: auth,
        use_iam: auth == AuthType::Iam,
        iam_endpoint,
        gcp_credential_json: Secret::default(),
        gcp_credentials_file: credentials_file,
        azure_account_name: account_name,
        azure_account_key: account_key,
        local_path,
        milvus_local_path,
        virtual_host,
        milvus_address,
        milvus_port,
        credentials: String::new(),
    })
}

/// Reads `auth.*` credentials of one block and enforces that each belongs to `auth`.
struct Creds<'r, 'a, 'k> {
    r: &'r mut Resolver<'a>,
    auth: AuthType,
    key: &'k dyn Fn(&str) -> String,
}

impl Creds<'_, '_, '_> {
    /// Resolves `auth.<field>`. A value set in the file or the environment for another auth
    /// type is an error; an inherited one is dropped (the parent may use another auth type).
    fn get<T: Field + Default>(
        &mut self,
        field: &str,
        env: &str,
        belongs_to: AuthType,
        fallback: Fallback<T>,
    ) -> Result<T, ConfigError> {
        let key = (self.key)(&format!("auth.{field}"));
        let env = (!env.is_empty()).then_some(env);
        let mut got = self.r.resolve(&[&key], env, fallback)?;
        if self.auth != belongs_to {
            let empty = got.value.show().is_empty();
            match &got.source {
                Source::File if !empty => {
                    return Err(self.r.invalid(
                        &key,
                        format!(
                            "not used with auth.type `{}`; remove it or change auth.type",
                            self.auth
                        ),
                    ));
                }
                Source::Env(var) if !empty => {
                    return Err(self.r.env_error(
                        var,
                        format!(
                            "sets `{key}`, which is not used with auth.type `{}`",
                            self.auth
                        ),
                    ));
                }
                _ => {
                    got.value = T::default();
                    got.source = Source::Default;
                }
            }
        }
        self.r.record_got(&got);
        Ok(got.value)
    }
}
