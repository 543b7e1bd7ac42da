//! Profiles: milvus-backup `backup.yaml` files (schema v1 and v2) turned into a validated
//! [`Profile`], plus the copy tuning ([`TransferOptions`] -> [`TransferConfig`]).
//!
//! This module owns reading a profile, environment overrides (env > file > default), the
//! inheritance of the backup store from the Milvus store, validation, warnings for unknown and
//! retired keys, and the redaction of secrets ([`Secret`]). It does not open connections, build
//! object-store clients or print anything: callers get values, a list of warnings and a
//! [`Profile::describe`] table to show.
//!
//! Flow: YAML text -> `raw` (flat lowercase dotted keys) -> `resolve` (env, file, default,
//! with sources) driven by `v1` or `v2` (which keys exist, defaults, inheritance) ->
//! `validate` (rules) -> [`Profile`]. Copy options go file -> merged with CLI flags ->
//! [`TransferConfig::from_options`].
//!
//! Module map:
//! - `error.rs`: [`ConfigError`].
//! - `secret.rs`: [`Secret`].
//! - `size.rs`: [`parse_size`], [`parse_rate`], [`parse_secs`], [`format_size`].
//! - `raw.rs`: YAML parsing and flattening, unknown-key tracking.
//! - `resolve.rs`: per-key precedence and typed parsing.
//! - `v1.rs`, `v2.rs`: the two schemas.
//! - `validate.rs`: the rules.
//! - `storage.rs`, `milvus.rs`, `transfer.rs`: the validated types.
//! - `tests.rs`: whole profiles of both schemas and `configs/`; `shipped_tests.rs`: the
//!   profiles milvus-backup ships (0.5 from the Go module cache, 0.6 as fixtures) and a
//!   no-panic property test of the loader.
//!
//! Precedence for every key: command-line flag (transfer options only, through
//! [`Profile::transfer`]) > environment variable > file > inherited value > default.

mod error;
mod milvus;
mod raw;
mod resolve;
mod secret;
mod size;
mod storage;
#[cfg(test)]
pub(crate) use storage::tests::sample as sample_storage;
mod transfer;
mod v1;
mod v2;
mod validate;

#[cfg(test)]
mod shipped_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use milvus::{MilvusConfig, TlsMode};
pub use secret::Secret;
pub use size::{format_size, parse_rate, parse_secs, parse_size};
pub use storage::{AuthType, StorageConfig, StorageType};
pub use transfer::{
    DEFAULT_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT_SECS, DEFAULT_MAX_BUFFER_MEMORY,
    DEFAULT_MULTIPART_COPY_THRESHOLD_MIB, DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE,
    DEFAULT_PARTS_PER_OBJECT, DEFAULT_READ_TIMEOUT_SECS, DEFAULT_RETRIES, S3_MAX_PART, S3_MIN_PART,
    TransferConfig, TransferMode, TransferOptions,
};

use resolve::Resolver;

/// Which milvus-backup schema a profile is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    /// milvus-backup 0.5.x: no `configVersion`; `milvus.*`, `minio.*`, `backup.*`.
    V1,
    /// milvus-backup 0.6: `configVersion: v2`; `milvus.grpc.*`, `milvus.storage.*`,
    /// `backup.storage.*`.
    V2,
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaVersion::V1 => "v1",
            SchemaVersion::V2 => "v2",
        })
    }
}

/// Where a resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// The profile file.
    File,
    /// An environment variable (its name).
    Env(String),
    /// The schema default.
    Default,
    /// Copied from another key of the same profile (that key, in the file's schema), e.g. the
    /// backup store's address from the Milvus store's.
    Inherited(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File => f.write_str("file"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::Default => f.write_str("default"),
            Source::Inherited(key) => write!(f, "inherited from {key}"),
        }
    }
}

/// One resolved key, for `check` and `config show`. Secret values are `***` (or "" when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Dotted key as the file's schema spells it, e.g. `minio.backupBucketName`.
    pub key: String,
    /// The value as text, secrets masked.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// Concurrency limits of the backup and restore flows (not the copier: see [`TransferConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parallelism {
    /// Collections processed at once during create (v1 `backup.parallelism.backupCollection`,
    /// v2 `backup.concurrency.collections`). Default 4.
    pub backup_collections: usize,
    /// Segments copied at once (v1 `backup.parallelism.backupSegment`, v2
    /// `backup.concurrency.segments`). Default 1024.
    pub backup_segments: usize,
    /// Collections restored at once (v1 `backup.parallelism.restoreCollection`, v2
    /// `restore.concurrency.collections`). Default 2.
    pub restore_collections: usize,
    /// Import jobs at once (v1 `backup.parallelism.importJob`, v2
    /// `restore.concurrency.importJobs`). Default 768.
    pub import_jobs: usize,
    /// Segments per import job (v2 `restore.maxSegmentsPerImportJob`; v1 has no key). Default
    /// 256.
    pub max_segments_per_import_job: usize,
}

/// `log.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// debug, info, warn, error, panic or fatal.
    pub level: String,
    /// Log to the console.
    pub console: bool,
    /// Log file (v1 `log.file.filename`, v2 `log.file.path`).
    pub file_path: String,
    /// Rotation size in MiB (v1 `log.file.maxSize`, v2 `log.file.maxSizeMiB`).
    pub max_size_mib: u64,
    /// Days to keep rotated files (0 = forever).
    pub max_days: u64,
    /// Rotated files to keep (0 = all).
    pub max_backups: u64,
}

/// REST server settings (v1 `http.*`, v2 `server.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// v1 `http.enabled` (no v2 key; true).
    pub enabled: bool,
    /// Debug mode.
    pub debug_mode: bool,
    /// Base path behind a reverse proxy.
    pub swagger_base_path: String,
}

/// Zilliz Cloud API (v1 `cloud.*`, v2 `zillizCloud.*`). `Debug` is safe: the key is a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// API base URL.
    pub endpoint: String,
    /// API key.
    pub api_key: Secret,
}

/// Milvus etcd (`milvus.etcd.*`), only needed to read index details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` endpoints.
    pub endpoints: Vec<String>,
    /// Milvus's etcd root.
    pub root_path: String,
}

/// One side of a migration: a Milvus, its object store, and where backups live.
///
/// `Debug` is derived: every secret inside is a [`Secret`].
#[derive(Debug, Clone)]
pub struct Profile {
    /// The file it was read from (as given).
    pub path: PathBuf,
    /// Its schema.
    pub schema: SchemaVersion,
    /// The Milvus connection.
    pub milvus: MilvusConfig,
    /// Milvus's own object store (where its binlogs are).
    pub milvus_storage: StorageConfig,
    /// Where backups are read and written.
    pub backup_storage: StorageConfig,
    /// Copy options exactly as the file gave them (for merging with CLI flags).
    pub transfer_options: TransferOptions,
    /// Prefix of backups inside the backup bucket; equal to `backup_storage.root_path`.
    pub backup_root: String,
    /// Concurrency of the backup and restore flows.
    pub parallelism: Parallelism,
    /// Keep restore temp copies (v1 `backup.keepTempFiles`, v2 `restore.keepTempFiles`).
    pub keep_temp_files: bool,
    /// Pause Milvus GC during a backup (v1 `backup.gcPause.enable`, v2 `backup.pauseGC`),
    /// through `milvus.management_endpoint`.
    pub pause_gc: bool,
    /// Milvus etcd.
    pub etcd: EtcdConfig,
    /// Logging.
    pub log: LogConfig,
    /// REST server.
    pub server: ServerConfig,
    /// Zilliz Cloud.
    pub cloud: CloudConfig,
    settings: Vec<Setting>,
}

/// A loaded profile and what the caller should tell the user about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The profile.
    pub profile: Profile,
    /// One line each, prefixed with the file name: unknown keys, retired keys, deprecated
    /// spellings, silent downgrades.
    pub warnings: Vec<String>,
}

impl Profile {
    /// Reads `path` with the real process environment.
    ///
    /// # Errors
    /// See [`Profile::from_yaml_str`]; also [`ConfigError::Read`] when the file cannot be read.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        Self::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// Reads `path`, taking environment overrides from `env`.
    ///
    /// # Errors
    /// See [`Profile::from_yaml_str`]; also [`ConfigError::Read`] when the file cannot be read.
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text, path, env)
    }

    /// Parses profile text; `path` is only used in messages and kept in the profile.
    ///
    /// The schema is v2 when `configVersion: v2` is present, else v1. Empty environment values
    /// count as unset.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for invalid YAML, [`ConfigError::Invalid`] for a wrong value or a
    /// broken rule (naming the key), [`ConfigError::Env`] for an environment override that does
    /// not parse (naming the variable).
    pub fn from_yaml_str(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigError> {
        let doc = raw::RawDoc::parse(text, path)?;
        let empty = doc.is_empty();
        let mut r = Resolver::new(path, doc, env);
        let schema = match r.lookup::<String>(&["configVersion"], None)? {
            None => SchemaVersion::V1,
            Some(got) if got.value.trim().eq_ignore_ascii_case("v2") => {
                r.record("configVersion", "v2".into(), Source::File);
                SchemaVersion::V2
            }
            Some(got) => {
                return Err(r.invalid(
                    "configVersion",
                    format!(
                        "expected `v2` (or no configVersion for a v1 profile), got {:?}",
                        got.value
                    ),
                ));
            }
        };
        let mut profile = match schema {
            SchemaVersion::V1 => v1::load(&mut r)?,
            SchemaVersion::V2 => v2::load(&mut r)?,
        };
        if empty {
            r.warn("the profile is empty; every key takes its default");
        }
        for (key, suggestion) in r.doc.unused() {
            let mut line = format!("unknown key `{key}` (ignored)");
            if let Some(s) = suggestion {
                line.push_str(&format!("; did you mean `{s}`?"));
            } else if schema == SchemaVersion::V2 && key.to_ascii_lowercase().starts_with("minio.")
            {
                line.push_str(
                    "; `minio.*` is a v1 key, v2 uses `milvus.storage.*` and `backup.storage.*`",
                );
            }
            r.warn(line);
        }
        profile.settings = std::mem::take(&mut r.settings);
        tracing::debug!(path = %path.display(), %schema, warnings = r.warnings.len(), "profile loaded");
        Ok(Loaded {
            profile,
            warnings: r.warnings,
        })
    }

    /// Every resolved key with its value (secrets as `***`) and source, in schema order.
    pub fn describe(&self) -> Vec<Setting> {
        self.settings.clone()
    }

    /// The copy configuration: this profile's transfer options overridden by `cli`, validated.
    ///
    /// # Errors
    /// When a merged value breaks a rule of [`TransferConfig::from_options`]: a
    /// [`ConfigError::Transfer`] if the offending option came from `cli`, else an
    /// [`ConfigError::Invalid`] (or [`ConfigError::Env`]) naming this file's key.
    pub fn transfer(&self, cli: &TransferOptions) -> Result<TransferConfig, ConfigError> {
        let merged = self.transfer_options.clone().merge(cli.clone());
        transfer::TransferConfig::check(&merged).map_err(|issue| {
            if cli.is_set(issue.key) {
                return ConfigError::Transfer {
                    key: issue.key.to_string(),
                    reason: issue.reason,
                };
            }
            let aliases: &[&str] = match issue.key {
                "transfer.concurrency" => &["backup.parallelism.copydata"],
                "transfer.multipartCopyThresholdMiB" => &["minio.multipartCopyThresholdMiB"],
                _ => &[],
            };
            let setting = self
                .settings
                .iter()
                .find(|s| s.key == issue.key || aliases.contains(&s.key.as_str()));
            match setting {
                Some(Setting {
                    source: Source::Env(var),
                    ..
                }) => ConfigError::Env {
                    path: self.path.clone(),
                    var: var.clone(),
                    reason: issue.reason,
                },
                Some(s) => ConfigError::Invalid {
                    path: self.path.clone(),
                    key: s.key.clone(),
                    reason: issue.reason,
                },
                None => ConfigError::Invalid {
                    path: self.path.clone(),
                    key: issue.key.to_string(),
                    reason: issue.reason,
                },
            }
        })
    }
}
