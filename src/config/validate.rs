//! The rules a resolved profile must meet, checked in one place for both schemas.
//!
//! Owns: endpoints without scheme, host names, bucket names, Azure account name, local
//! directory, template placeholders, mutual TLS key pair, positive concurrency limits, log
//! level. Type errors (a port that is not a number, an unknown provider) are caught earlier,
//! while parsing, because the key is at hand there; transfer rules live in `transfer.rs` because
//! the CLI can change those values later. Does not own key names: callers pass a function that
//! spells a field in the file's schema.
//!
//! Only values milvus-migrate reads are checked: a store's fields for its provider and auth
//! type, and the Milvus connection. Keys it never reads (`zillizCloud.apiKey`, `cloud.apikey`,
//! `log.*`, a bucket name of a `local` store, credentials of another auth type) never fail a
//! profile, whatever they hold, so milvus-backup's templates load with their `<your-api-key>`.

use super::milvus::{MilvusConfig, TlsMode};
use super::resolve::Resolver;
use super::storage::{AuthType, StorageConfig, StorageType};
use super::{ConfigError, Parallelism, Source};

/// Spells a field of a storage block (named as in v2: `address`, `bucketName`, `accountName`,
/// `rootPath`, `localPath`, `auth.accessKeyID`, ...) or of the Milvus connection (`address`,
/// `user`, `password`, `tlsMode`, `caCertPath`, `management.endpoint`, ...) as a key of the
/// file's schema.
pub(crate) type KeyName<'k> = &'k dyn Fn(&str) -> String;

/// Whether a checked value may be quoted in a message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Plain,
    Secret,
}

/// True for a value shaped like a template placeholder, `<your-bucket-name>`: after trimming,
/// it starts with `<` and ends with `>`. milvus-backup's shipped profiles carry such values for
/// what the user must fill in; none of them can work as written.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let t = value.trim();
    t.len() >= 2 && t.starts_with('<') && t.ends_with('>')
}

/// Where the credentials of store `s` come from, named by `key` (the schema's key of each
/// field): for example `` `minio.backupAccessKeyID` (inherited from minio.accessKeyID),
/// `minio.backupSecretAccessKey` (inherited from minio.secretAccessKey) of backup.yaml ``.
/// Never a value.
pub(crate) fn credentials_origin(
    r: &Resolver<'_>,
    s: &StorageConfig,
    key: &dyn Fn(&str) -> String,
) -> String {
    let fields: &[&str] = match (s.storage_type, s.auth_type) {
        (StorageType::Local, _) => return String::new(),
        (_, AuthType::Static) => &["auth.accessKeyID", "auth.secretAccessKey"],
        (_, AuthType::SharedKey) => &["accountName", "auth.accountKey"],
        (_, AuthType::ServiceAccount) => &["auth.credentialsFile"],
        (_, AuthType::Iam) => {
            return format!("this machine's IAM credentials ({})", r.path.display());
        }
        (_, AuthType::Default) => {
            return format!(
                "the environment's default credentials ({})",
                r.path.display()
            );
        }
    };
    named_keys(r, &fields.iter().map(|f| key(f)).collect::<Vec<_>>())
}

/// Where the Milvus user and password come from (the same keys in both schemas).
pub(crate) fn milvus_credentials(r: &Resolver<'_>) -> String {
    named_keys(r, &["milvus.user".into(), "milvus.password".into()])
}

/// `keys` as resolved so far, each with its source unless it is the file itself, and the
/// file: `` `milvus.user`, `milvus.password` (env MILVUS_PASSWORD) of backup.yaml ``.
pub(crate) fn named_keys(r: &Resolver<'_>, keys: &[String]) -> String {
    let named: Vec<String> = keys
        .iter()
        .map(
            |k| match r.settings.iter().find(|s| s.key == *k).map(|s| &s.source) {
                Some(Source::File) | None => format!("`{k}`"),
                Some(source) => format!("`{k}` ({source})"),
            },
        )
        .collect();
    format!("{} of {}", named.join(", "), r.path.display())
}

/// Checks one store.
pub(crate) fn storage(
    r: &Resolver<'_>,
    s: &StorageConfig,
    key: KeyName<'_>,
) -> Result<(), ConfigError> {
    if s.storage_type == StorageType::Local {
        // A directory: no endpoint, bucket or credentials are read.
        if s.local_path.trim().is_empty() {
            return Err(r.invalid(
                &key("rootPath"),
                "a `local` store needs the directory to use",
            ));
        }
        no_placeholder(r, &key("rootPath"), &s.local_path, Shown::Plain)?;
        if s.milvus_local_path != s.local_path {
            no_placeholder(r, &key("localPath"), &s.milvus_local_path, Shown::Plain)?;
        }
        return Ok(());
    }
    let address = key("address");
    no_placeholder(r, &address, &s.address, Shown::Plain)?;
    host(r, &s.address, &address)?;
    let bucket = key("bucketName");
    if s.bucket.trim().is_empty() {
        return Err(r.invalid(&bucket, "must not be empty"));
    }
    no_placeholder(r, &bucket, &s.bucket, Shown::Plain)?;
    if let Err(reason) = bucket_name(s.storage_type, &s.bucket) {
        return Err(blame(
            r,
            &bucket,
            format!("{:?} is not a valid bucket name: {reason}", s.bucket),
        ));
    }
    no_placeholder(r, &key("rootPath"), &s.root_path, Shown::Plain)?;
    no_placeholder(r, &key("region"), &s.region, Shown::Plain)?;
    if s.storage_type == StorageType::Azure {
        let account = key("accountName");
        if s.azure_account_name.trim().is_empty() {
            return Err(r.invalid(&account, "Azure needs the storage account name"));
        }
        no_placeholder(r, &account, &s.azure_account_name, Shown::Plain)?;
    }
    if !s.milvus_address.is_empty() {
        let k = key("milvusAddress");
        no_placeholder(r, &k, &s.milvus_address, Shown::Plain)?;
        host(r, &s.milvus_address, &k)?;
    }
    match s.auth_type {
        AuthType::Static => {
            no_placeholder(r, &key("auth.accessKeyID"), &s.access_key_id, Shown::Plain)?;
            no_placeholder(
                r,
                &key("auth.secretAccessKey"),
                s.secret_access_key.expose(),
                Shown::Secret,
            )?;
            no_placeholder(
                r,
                &key("auth.sessionToken"),
                s.token.expose(),
                Shown::Secret,
            )?;
        }
        AuthType::SharedKey => no_placeholder(
            r,
            &key("auth.accountKey"),
            s.azure_account_key.expose(),
            Shown::Secret,
        )?,
        AuthType::ServiceAccount => {
            // v2 names a file; v1 gives the JSON content itself (or a path), a secret.
            no_placeholder(
                r,
                &key("auth.credentialsFile"),
                &s.gcp_credentials_file,
                Shown::Plain,
            )?;
            no_placeholder(
                r,
                &key("auth.credentialsFile"),
                s.gcp_credential_json.expose(),
                Shown::Secret,
            )?;
        }
        AuthType::Iam => no_placeholder(r, &key("auth.endpoint"), &s.iam_endpoint, Shown::Plain)?,
        AuthType::Default => {}
    }
    Ok(())
}

/// Checks the Milvus connection. `key` spells `address`, `user`, `password`, `tlsMode`,
/// `caCertPath`, `serverName`, `mtlsCertPath`, `mtlsKeyPath`, `management.endpoint` and
/// `rest.endpoint`.
pub(crate) fn milvus(
    r: &Resolver<'_>,
    m: &MilvusConfig,
    key: KeyName<'_>,
) -> Result<(), ConfigError> {
    let address = key("address");
    no_placeholder(r, &address, &m.address, Shown::Plain)?;
    host(r, &m.address, &address)?;
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
    no_placeholder(r, &key("user"), &m.user, Shown::Plain)?;
    no_placeholder(r, &key("password"), m.password.expose(), Shown::Secret)?;
    if m.tls_mode != TlsMode::Disabled {
        no_placeholder(r, &key("caCertPath"), &m.ca_cert_path, Shown::Plain)?;
        no_placeholder(r, &key("serverName"), &m.server_name, Shown::Plain)?;
    }
    if m.tls_mode == TlsMode::Mutual {
        no_placeholder(r, &key("mtlsCertPath"), &m.mtls_cert_path, Shown::Plain)?;
        no_placeholder(r, &key("mtlsKeyPath"), &m.mtls_key_path, Shown::Plain)?;
    }
    no_placeholder(
        r,
        &key("management.endpoint"),
        &m.management_endpoint,
        Shown::Plain,
    )?;
    no_placeholder(r, &key("rest.endpoint"), &m.rest_endpoint, Shown::Plain)?;
    Ok(())
}

/// A host name or IP literal, without scheme, port path or spaces.
fn host(r: &Resolver<'_>, address: &str, key: &str) -> Result<(), ConfigError> {
    if address.trim().is_empty() {
        return Err(blame(r, key, "must not be empty".into()));
    }
    if address.contains("://") {
        return Err(blame(
            r,
            key,
            format!(
                "expected a host name or IP without scheme (TLS is a separate key), got {address:?}"
            ),
        ));
    }
    // Letters, digits, `.`, `-`, `_`; `:`, `[`, `]` and `%` for IPv6 literals and zones.
    // Non-ASCII letters are left to IDNA.
    if let Some(bad) = address.trim().chars().find(|c| {
        (c.is_ascii() && !(c.is_ascii_alphanumeric() || ".-_:[]%".contains(*c)))
            || c.is_whitespace()
            || c.is_control()
    }) {
        return Err(blame(
            r,
            key,
            format!("{address:?} is not a host name or IP: {bad:?} cannot appear in one"),
        ));
    }
    Ok(())
}

/// The bucket (or container) naming rules a provider enforces, as far as they decide whether
/// the name can work at all.
///
/// S3 family and GCS: 3-63 characters (GCS: up to 222 when the name has dots), letters, digits,
/// `.`, `-` and `_`, beginning and ending with a letter or digit. Underscores and uppercase
/// letters are accepted although AWS refuses them for new buckets: legacy AWS buckets and some
/// S3-compatible servers have them, and milvus-backup's documentation uses `bucket_A`. Azure:
/// 3-63 lowercase letters, digits and `-`, beginning and ending with a letter or digit, or one of
/// its reserved containers (`$root`, `$web`, `$logs`).
pub(crate) fn bucket_name(provider: StorageType, name: &str) -> Result<(), String> {
    let len = name.chars().count();
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let edges = edge_ok(name.chars().next()) && edge_ok(name.chars().last());
    if provider == StorageType::Azure {
        if matches!(name, "$root" | "$web" | "$logs") {
            return Ok(());
        }
        if !(3..=63).contains(&len) {
            return Err(format!(
                "an Azure container name has 3 to 63 characters, this one {len}"
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "an Azure container name has only lowercase letters, digits and `-`, not {bad:?}"
            ));
        }
        if !edges {
            return Err("an Azure container name begins and ends with a letter or digit".into());
        }
        return Ok(());
    }
    let gcs = matches!(provider, StorageType::Gcp | StorageType::GcpNative);
    let max = if gcs && name.contains('.') { 222 } else { 63 };
    if !(3..=max).contains(&len) {
        return Err(format!(
            "a bucket name has 3 to {max} characters, this one {len}"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "a bucket name has only letters, digits, `.`, `-` and `_`, not {bad:?}"
        ));
    }
    if !edges {
        return Err("a bucket name begins and ends with a letter or digit".into());
    }
    Ok(())
}

/// Refuses a placeholder in a value milvus-migrate reads.
fn no_placeholder(
    r: &Resolver<'_>,
    key: &str,
    value: &str,
    shown: Shown,
) -> Result<(), ConfigError> {
    if !is_placeholder(value) {
        return Ok(());
    }
    let what = match shown {
        Shown::Plain => format!("{:?} is", value.trim()),
        Shown::Secret => "the value (not shown) is".into(),
    };
    Err(blame(
        r,
        key,
        format!("{what} a template placeholder: replace it with the real value"),
    ))
}

/// An error about the resolved value of `key`, blamed on where that value came from: the
/// environment variable that set it (an `Env` error), or the key itself, saying so when the
/// value was inherited from another key.
fn blame(r: &Resolver<'_>, key: &str, reason: String) -> ConfigError {
    let source = r
        .settings
        .iter()
        .rev()
        .find(|s| s.key.eq_ignore_ascii_case(key))
        .map(|s| s.source.clone());
    match source {
        Some(Source::Env(var)) => r.env_error(&var, format!("sets `{key}`: {reason}")),
        Some(Source::Inherited(from)) => {
            r.invalid(key, format!("inherited from `{from}`: {reason}"))
        }
        _ => r.invalid(key, reason),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        for v in ["<your-bucket-name>", " <x> ", "<>"] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in ["", "<", ">", "a<b>", "<a>b", "bucket"] {
            assert!(!is_placeholder(v), "{v}");
        }
    }

    #[test]
    fn bucket_names() {
        use StorageType::*;
        for (provider, name) in [
            (Minio, "a-bucket"),
            (Minio, "bucket_A"),
            (Aws, "my.bucket.1"),
            (S3, "abc"),
            (Gcp, &format!("{}.b", "a".repeat(100))),
            (Azure, "milvus-data"),
            (Azure, "$root"),
        ] {
            assert_eq!(bucket_name(provider, name), Ok(()), "{provider} {name}");
        }
        for (provider, name) in [
            (Minio, "<your-bucket-name>"),
            (Aws, "my bucket"),
            (Aws, "a/b"),
            (S3, "ab"),
            (S3, &"a".repeat(64)),
            (Minio, "-abc"),
            (Minio, "abc."),
            (Minio, "bücket"),
            (Hwc, &format!("{}.b", "a".repeat(100))),
            (Azure, "Milvus"),
            (Azure, "milvus_data"),
            (Azure, "-ab"),
        ] {
            assert!(
                bucket_name(provider, name).is_err(),
                "{provider} {name} accepted"
            );
        }
    }
}
