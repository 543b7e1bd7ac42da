//! The rules a resolved profile must meet, checked in one place for both schemas.
//!
//! Owns: endpoints without scheme, non-empty bucket, Azure account name, local directory, mutual
//! TLS key pair, positive concurrency limits, log level. Type errors (a port that is not a
//! number) are caught earlier, while parsing, because the key is at hand there; transfer rules
//! live in `transfer.rs` because the CLI can change those values later. Does not own key names:
//! callers pass a function that spells a field in the file's schema.

use super::milvus::{MilvusConfig, TlsMode};
use super::resolve::Resolver;
use super::storage::{StorageConfig, StorageType};
use super::{ConfigError, Parallelism};

/// Spells a field of a storage block (named as in v2: `address`, `bucketName`, `accountName`,
/// `localPath`) as a key of the file's schema.
pub(crate) type KeyName<'k> = &'k dyn Fn(&str) -> String;

/// Checks one store.
pub(crate) fn storage(
    r: &Resolver<'_>,
    s: &StorageConfig,
    key: KeyName<'_>,
) -> Result<(), ConfigError> {
    if s.storage_type == StorageType::Local {
        if s.local_path.trim().is_empty() {
            return Err(r.invalid(
                &key("localPath"),
                "a `local` store needs the directory to use",
            ));
        }
        return Ok(());
    }
    host(r, &s.address, &key("address"))?;
    if s.bucket.trim().is_empty() {
        return Err(r.invalid(&key("bucketName"), "must not be empty"));
    }
    if s.storage_type == StorageType::Azure && s.azure_account_name.trim().is_empty() {
        return Err(r.invalid(&key("accountName"), "Azure needs the storage account name"));
    }
    Ok(())
}

/// Checks the Milvus connection. `key` spells `address`, `mtlsCertPath`, `tlsMode`.
pub(crate) fn milvus(
    r: &Resolver<'_>,
    m: &MilvusConfig,
    key: KeyName<'_>,
) -> Result<(), ConfigError> {
    host(r, &m.address, &key("address"))?;
    if m.tls_mode == TlsMode::Mutual && (m.mtls_cert_path.is_empty() || m.mtls_key_path.is_empty())
    {
        return Err(r.invalid(
            &key("tlsMode"),
            format!(
                "mutual TLS needs a client certificate and key: set `{}` and `{}`",
                key("mtlsCertPath"),
                key("mtlsKeyPath")
            ),
        ));
    }
    Ok(())
}

fn host(r: &Resolver<'_>, address: &str, key: &str) -> Result<(), ConfigError> {
    if address.trim().is_empty() {
        return Err(r.invalid(key, "must not be empty"));
    }
    if address.contains("://") {
        return Err(r.invalid(
            key,
            format!(
                "expected a host name or IP without scheme (TLS is a separate key), got {address:?}"
            ),
        ));
    }
    Ok(())
}

/// Checks the concurrency limits. `key` spells the [`Parallelism`] field names.
pub(crate) fn parallelism(
    r: &Resolver<'_>,
    p: &Parallelism,
    key: KeyName<'_>,
) -> Result<(), ConfigError> {
    for (field, value) in [
        ("backup_collections", p.backup_collections),
        ("backup_segments", p.backup_segments),
        ("restore_collections", p.restore_collections),
        ("import_jobs", p.import_jobs),
        ("max_segments_per_import_job", p.max_segments_per_import_job),
    ] {
        if value == 0 {
            return Err(r.invalid(&key(field), "must be at least 1"));
        }
    }
    Ok(())
}

/// Checks `log.level`.
pub(crate) fn log_level(r: &Resolver<'_>, level: &str) -> Result<(), ConfigError> {
    const LEVELS: [&str; 6] = ["debug", "info", "warn", "error", "panic", "fatal"];
    if LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(r.invalid(
            "log.level",
            format!("expected one of {}, got {level:?}", LEVELS.join(", ")),
        ))
    }
}
