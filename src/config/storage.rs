//! Object-store settings of one side of a profile: [`StorageType`], [`AuthType`] and the
//! validated [`StorageConfig`].
//!
//! Owns the provider names and their aliases, root-path normalisation, the endpoint URL and the
//! "same service" test that decides whether a server-side copy is possible. Does not own how the
//! settings are read (`v1.rs`, `v2.rs`), their validation rules (`validate.rs`) or the clients
//! built from them (the storage module of the crate).

use std::fmt;
use std::str::FromStr;

use super::Secret;

/// Object-store provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// A directory on the local file system.
    Local,
    /// MinIO or another S3-compatible server (also written `remote`).
    Minio,
    /// Generic S3.
    S3,
    /// Amazon S3.
    Aws,
    /// Google Cloud Storage through its S3-compatible API.
    Gcp,
    /// Google Cloud Storage through its native API (service-account credentials).
    GcpNative,
    /// Azure Blob Storage.
    Azure,
    /// Alibaba Cloud OSS (`ali`, `aliyun`, `alibaba`, `alicloud`).
    Ali,
    /// Tencent COS (`tc`, `tencent`).
    Tencent,
    /// Huawei Cloud OBS.
    Hwc,
}

impl StorageType {
    /// The names accepted in a profile, for error messages.
    pub const ACCEPTED: &'static str = "local, minio (remote), s3, aws, gcp, gcpnative, azure, \
        ali (aliyun, alibaba, alicloud), tc (tencent), hwc";

    /// Canonical lowercase name (the v2 spelling).
    pub fn as_str(&self) -> &'static str {
        match self {
            StorageType::Local => "local",
            StorageType::Minio => "minio",
            StorageType::S3 => "s3",
            StorageType::Aws => "aws",
            StorageType::Gcp => "gcp",
            StorageType::GcpNative => "gcpnative",
            StorageType::Azure => "azure",
            StorageType::Ali => "aliyun",
            StorageType::Tencent => "tencent",
            StorageType::Hwc => "hwc",
        }
    }

    /// True for providers spoken to with the S3 protocol: minio, s3, aws, ali, tencent, hwc.
    pub fn is_s3_compatible(&self) -> bool {
        matches!(
            self,
            StorageType::Minio
                | StorageType::S3
                | StorageType::Aws
                | StorageType::Ali
                | StorageType::Tencent
                | StorageType::Hwc
        )
    }
}

impl FromStr for StorageType {
    type Err = String;

    /// Case-insensitive, with the aliases milvus-backup accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "local" => StorageType::Local,
            "minio" | "remote" => StorageType::Minio,
            "s3" => StorageType::S3,
            "aws" => StorageType::Aws,
            "gcp" => StorageType::Gcp,
            "gcpnative" => StorageType::GcpNative,
            "azure" => StorageType::Azure,
            "ali" | "aliyun" | "alibaba" | "alicloud" => StorageType::Ali,
            "tc" | "tencent" => StorageType::Tencent,
            "hwc" => StorageType::Hwc,
            _ => return Err(format!("expected one of {}", StorageType::ACCEPTED)),
        })
    }
}

impl fmt::Display for StorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a store is authenticated (v2 `auth.type`; derived from the v1 keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// Access key ID + secret (+ session token).
    Static,
    /// Cloud instance credentials (v1 `useIAM: true`), optionally from `iam_endpoint`.
    Iam,
    /// Azure account key.
    SharedKey,
    /// GCP service account (v1 credential JSON or v2 credentials file).
    ServiceAccount,
    /// The provider SDK's default credential chain.
    Default,
}

impl AuthType {
    /// Canonical v2 spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthType::Static => "static",
            AuthType::Iam => "iam",
            AuthType::SharedKey => "sharedKey",
            AuthType::ServiceAccount => "serviceAccount",
            AuthType::Default => "default",
        }
    }
}

impl FromStr for AuthType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "static" => AuthType::Static,
            "iam" => AuthType::Iam,
            "sharedkey" => AuthType::SharedKey,
            "serviceaccount" => AuthType::ServiceAccount,
            "default" => AuthType::Default,
            _ => {
                return Err(
                    "expected one of static, iam, sharedKey, serviceAccount, default".into(),
                );
            }
        })
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated object store: where it is, how to log in, and the prefix inside its bucket.
///
/// `Debug` is derived: every credential is a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Provider.
    pub storage_type: StorageType,
    /// Host name or IP, without scheme or port.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// `https` when true.
    pub use_ssl: bool,
    /// Region ("" = provider default).
    pub region: String,
    /// Bucket (container for Azure). Unused for `local`.
    pub bucket: String,
    /// Prefix inside the bucket: no leading or trailing `/`; may be "". For `local` stores it is
    /// "" in both schemas, because their `rootPath` is the directory itself (see `local_path`).
    pub root_path: String,
    /// Static access key ID (for v1 Azure: the account name, also copied to
    /// `azure_account_name`).
    pub access_key_id: String,
    /// Static secret key.
    pub secret_access_key: Secret,
    /// Session token for temporary credentials.
    pub token: Secret,
    /// How to authenticate.
    pub auth_type: AuthType,
    /// Use cloud instance credentials (`auth_type == Iam`).
    pub use_iam: bool,
    /// IAM endpoint ("" = provider default).
    pub iam_endpoint: String,
    /// GCP service-account JSON content (v1 `gcpCredentialJSON`, env `GCP_KEY_JSON`).
    pub gcp_credential_json: Secret,
    /// Path of a GCP service-account JSON file (v2 `auth.credentialsFile`).
    pub gcp_credentials_file: String,
    /// Azure storage account name.
    pub azure_account_name: String,
    /// Azure account key.
    pub azure_account_key: Secret,
    /// For `local` stores: the directory milvus-migrate reads and writes, as the profile gives it
    /// (absolute, or relative to the working directory; a trailing `/` removed). Both schemas
    /// take it from `rootPath`: v1 `minio.rootPath` / `minio.backupRootPath`, v2
    /// `milvus.storage.rootPath` / `backup.storage.rootPath`. Never empty for `local`; "" for
    /// other providers.
    pub local_path: String,
    /// For `local` stores: the same directory as the Milvus process sees it (v2 `localPath`),
    /// when Milvus runs elsewhere in the file system than this tool, e.g. in a container with a
    /// bind mount. Paths handed to Milvus (restore's import paths) must be resolved against this
    /// one, paths this tool opens against `local_path`. Equal to `local_path` when `localPath`
    /// is unset, and always in v1 (which has no such key). "" for other providers.
    pub milvus_local_path: String,
    /// Virtual-host-style bucket addressing (`bucket.host`); false = path style.
    pub virtual_host: bool,
    /// v2 `milvusAddress`: the host Milvus itself uses for this store when it differs from ours
    /// (snapshot format only); "" = same as `address`.
    pub milvus_address: String,
    /// v2 `milvusPort`; `None` = same as `port`.
    pub milvus_port: Option<u16>,
    /// Where the credentials come from, for an error the store denies: the profile's keys
    /// (with their source when not the file itself) and the file, never a value. "" when not
    /// known (a configuration built in code).
    pub credentials: String,
}

impl StorageConfig {
    /// Whether `other` is configured the same: every setting equal, whichever keys named
    /// the credentials.
    pub fn same_as(&self, other: &StorageConfig) -> bool {
        let unnamed = |c: &StorageConfig| StorageConfig {
            credentials: String::new(),
            ..c.clone()
        };
        unnamed(self) == unnamed(other)
    }

    /// `http(s)://address:port`, with IPv6 literals in brackets.
    pub fn endpoint_url(&self) -> String {
        let scheme = if self.use_ssl { "https" } else { "http" };
        let host = if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]", self.address)
        } else {
            self.address.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }

    /// True when both configs reach the same service with the same identity, so a server-side
    /// copy between them can work: same provider, endpoint, region and credentials. Buckets and
    /// root paths may differ. Two `local` stores are always the same service (one file system).
    pub fn same_service(&self, other: &StorageConfig) -> bool {
        if self.storage_type != other.storage_type {
            return false;
        }
        if self.storage_type == StorageType::Local {
            return true;
        }
        self.endpoint_url() == other.endpoint_url()
            && self.region == other.region
            && self.auth_type == other.auth_type
            && self.access_key_id == other.access_key_id
            && self.secret_access_key == other.secret_access_key
            && self.token == other.token
            && self.use_iam == other.use_iam
            && self.iam_endpoint == other.iam_endpoint
            && self.gcp_credential_json == other.gcp_credential_json
            && self.gcp_credentials_file == other.gcp_credentials_file
            && self.azure_account_name == other.azure_account_name
            && self.azure_account_key == other.azure_account_key
    }
}

/// The directory of a `local` store as written: surrounding whitespace and trailing `/` removed,
/// a leading `/` kept (`/` alone stays `/`). "" when nothing is left.
pub(crate) fn local_dir(path: &str) -> String {
    let dir = path.trim();
    if dir.len() > 1 {
        let trimmed = dir.trim_end_matches('/');
        if trimmed.is_empty() { "/" } else { trimmed }.to_string()
    } else {
        dir.to_string()
    }
}

/// Root-path normalisation: trims surrounding whitespace and `/`, collapses `//`.
pub(crate) fn normalize_root(path: &str) -> String {
    path.trim()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A MinIO store's settings, for tests.
    pub(crate) fn sample() -> StorageConfig {
        StorageConfig {
            storage_type: StorageType::Minio,
            address: "127.0.0.1".into(),
            port: 9000,
            use_ssl: false,
            region: String::new(),
            bucket: "a".into(),
            root_path: "files".into(),
            access_key_id: "ak".into(),
            secret_access_key: Secret::new("sk"),
            token: Secret::default(),
            auth_type: AuthType::Static,
            use_iam: false,
            iam_endpoint: String::new(),
            gcp_credential_json: Secret::default(),
            gcp_credentials_file: String::new(),
            azure_account_name: String::new(),
            azure_account_key: Secret::default(),
            local_path: String::new(),
            milvus_local_path: String::new(),
            virtual_host: false,
            milvus_address: String::new(),
            milvus_port: None,
            credentials: String::new(),
        }
    }

    #[test]
    fn storage_type_aliases() {
        for (text, want) in [
            ("MinIO", StorageType::Minio),
            ("remote", StorageType::Minio),
            ("aliyun", StorageType::Ali),
            ("Alibaba", StorageType::Ali),
            ("alicloud", StorageType::Ali),
            ("ali", StorageType::Ali),
            ("tc", StorageType::Tencent),
            ("TENCENT", StorageType::Tencent),
            ("gcpnative", StorageType::GcpNative),
            ("hwc", StorageType::Hwc),
        ] {
            assert_eq!(text.parse::<StorageType>(), Ok(want), "{text}");
        }
        let err = "ceph".parse::<StorageType>().unwrap_err();
        assert!(err.contains("minio") && err.contains("azure"), "{err}");
        assert!(StorageType::Hwc.is_s3_compatible());
        assert!(!StorageType::Azure.is_s3_compatible());
        assert!(!StorageType::Gcp.is_s3_compatible());
    }

    #[test]
    fn endpoint_and_same_service() {
        let a = sample();
        assert_eq!(a.endpoint_url(), "http://127.0.0.1:9000");
        let mut b = a.clone();
        b.bucket = "other".into();
        b.root_path = "backup".into();
        assert!(a.same_service(&b));
        b.secret_access_key = Secret::new("other");
        assert!(!a.same_service(&b));
        let mut c = a.clone();
        c.use_ssl = true;
        c.address = "::1".into();
        assert_eq!(c.endpoint_url(), "https://[::1]:9000");
        assert!(!a.same_service(&c));
    }

    #[test]
    fn root_paths_are_normalised() {
        assert_eq!(normalize_root("/files/"), "files");
        assert_eq!(normalize_root("a//b/"), "a/b");
        assert_eq!(normalize_root("/"), "");
        assert_eq!(normalize_root(""), "");
    }

    #[test]
    fn local_dirs_keep_their_leading_slash() {
        assert_eq!(local_dir(" /var/lib/milvus/ "), "/var/lib/milvus");
        assert_eq!(local_dir("backup"), "backup");
        assert_eq!(local_dir("//"), "/");
        assert_eq!(local_dir("/"), "/");
        assert_eq!(local_dir("  "), "");
    }
}
