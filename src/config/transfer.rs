//! Copy tuning: raw [`TransferOptions`] (file `transfer:` block, v1 aliases, CLI flags), their
//! merge, and the validated [`TransferConfig`] the copier runs with.
//!
//! Owns the defaults, the cross-field rules (S3 part limits, memory budget versus part size) and
//! the arithmetic that says how much memory a configuration can use. Does not own the copier,
//! the rate limiter or the retry policy that consume these numbers.
//!
//! # Memory
//! The copier holds at most `concurrency` objects in flight and, per object, at most
//! `parts_per_object` parts of `part_size` bytes (an object below `multipart_threshold` is one
//! buffer of its own size). Those two limits bound parallelism; memory is bounded separately by
//! `max_buffer_memory`: a part (or a small object) is buffered only once its size fits in that
//! budget, so the peak buffer memory is
//! `min(max_buffer_memory, concurrency * max(parts_per_object * part_size, multipart_threshold))`
//! ([`TransferConfig::peak_buffer_bytes`]). That is why `max_buffer_memory` must hold at least
//! one part and one small object.
//!
//! # Bandwidth limit
//! `byte_rate` feeds a token-bucket limiter whose burst is one second of bytes. A limiter cannot
//! admit a write larger than its burst, so the copier passes data through it in chunks of at most
//! [`TransferConfig::throttle_chunk_bytes`] (the smaller of `part_size` and the burst): a limit
//! below the part size slows transfers down but never stalls them.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::str::FromStr;
use std::time::Duration;

use super::resolve::{Field, Rate, Resolver, Secs, Size, show_rate};
use super::size::format_size;
use super::{ConfigError, SchemaVersion, Source};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Default objects in flight. Lower than milvus-backup's 128: with streaming copies each object
/// holds buffers, and 16 objects with up to 4 parts each keep 64 streams going, plenty for a
/// 10 Gbit/s link with 16 MiB parts. Between two MinIO servers on the same 2-core machine
/// (benches/copy_bench.sh, 2.04 GB mixed set) 16 copied as fast as 32 (medians 5.8 and 5.7 s)
/// at 161-184 MiB peak RSS instead of 191-207: more objects in flight only added buffers and
/// server contention.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default parts of one object in flight.
pub const DEFAULT_PARTS_PER_OBJECT: usize = 4;
/// Default multipart part size.
pub const DEFAULT_PART_SIZE: u64 = 16 * MIB;
/// Default size from which an object is uploaded in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 32 * MIB;
/// Default memory budget for buffered data.
pub const DEFAULT_MAX_BUFFER_MEMORY: u64 = 96 * MIB;
/// Default retries after the first attempt of one part or object.
pub const DEFAULT_RETRIES: u32 = 10;
/// Default read timeout, seconds.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 60;
/// Default connect timeout, seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default size (MiB) from which a server-side copy uses multipart copy.
pub const DEFAULT_MULTIPART_COPY_THRESHOLD_MIB: u64 = 500;
/// Smallest S3 multipart part (except the last).
pub const S3_MIN_PART: u64 = 5 * MIB;
/// Largest S3 part, and largest single PUT / CopyObject.
pub const S3_MAX_PART: u64 = 5 * GIB;

/// How objects move between the two stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    /// Server-side copy when both stores are the same service, else streaming.
    Auto,
    /// Always server-side copy.
    Direct,
    /// Always stream through this process (v1 `crossStorage: true`).
    Streaming,
}

impl TransferMode {
    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransferMode::Auto => "auto",
            TransferMode::Direct => "direct",
            TransferMode::Streaming => "streaming",
        }
    }
}

impl FromStr for TransferMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TransferMode::Auto),
            "direct" => Ok(TransferMode::Direct),
            "streaming" => Ok(TransferMode::Streaming),
            _ => Err("expected auto, direct or streaming".into()),
        }
    }
}

impl fmt::Display for TransferMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Raw copy options: every field optional, `None` = not given at this level.
///
/// For `bw_limit` and `request_rate`, `Some(0)` means "explicitly unlimited" (so a CLI
/// `--bw-limit off` can override a limit in the file).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TransferOptions {
    /// Objects in flight (`transfer.concurrency`; v1 `backup.parallelism.copydata`).
    pub concurrency: Option<usize>,
    /// Parts of one object in flight (`transfer.partsPerObject`).
    pub parts_per_object: Option<usize>,
    /// Multipart part size in bytes (`transfer.partSize`).
    pub part_size: Option<u64>,
    /// Objects at least this large are uploaded in parts (`transfer.multipartThreshold`).
    pub multipart_threshold: Option<u64>,
    /// Memory budget for buffered data (`transfer.maxBufferMemory`).
    pub max_buffer_memory: Option<u64>,
    /// Bytes per second, `Some(0)` = unlimited (`transfer.bwLimit`).
    pub bw_limit: Option<u64>,
    /// Requests per second, `Some(0)` = unlimited (`transfer.requestRate`).
    pub request_rate: Option<u32>,
    /// Retries after the first attempt of one part or object (`transfer.retries`).
    pub retries: Option<u32>,
    /// Read timeout in seconds (`transfer.readTimeout`).
    pub read_timeout_secs: Option<u64>,
    /// Connect timeout in seconds (`transfer.connectTimeout`).
    pub connect_timeout_secs: Option<u64>,
    /// Server-side multipart copy threshold in MiB (`transfer.multipartCopyThresholdMiB`; v1
    /// `minio.multipartCopyThresholdMiB`).
    pub multipart_copy_threshold_mib: Option<u64>,
    /// Copy mode (`transfer.mode`; v1 `minio.crossStorage`).
    pub mode: Option<TransferMode>,
}

impl TransferOptions {
    /// Field by field, `higher` wins where it is `Some`.
    pub fn merge(self, higher: TransferOptions) -> TransferOptions {
        TransferOptions {
            concurrency: higher.concurrency.or(self.concurrency),
            parts_per_object: higher.parts_per_object.or(self.parts_per_object),
            part_size: higher.part_size.or(self.part_size),
            multipart_threshold: higher.multipart_threshold.or(self.multipart_threshold),
            max_buffer_memory: higher.max_buffer_memory.or(self.max_buffer_memory),
            bw_limit: higher.bw_limit.or(self.bw_limit),
            request_rate: higher.request_rate.or(self.request_rate),
            retries: higher.retries.or(self.retries),
            read_timeout_secs: higher.read_timeout_secs.or(self.read_timeout_secs),
            connect_timeout_secs: higher.connect_timeout_secs.or(self.connect_timeout_secs),
            multipart_copy_threshold_mib: higher
                .multipart_copy_threshold_mib
                .or(self.multipart_copy_threshold_mib),
            mode: higher.mode.or(self.mode),
        }
    }

    /// Whether the option behind `key` (a `transfer.*` key) is set here.
    pub(crate) fn is_set(&self, key: &str) -> bool {
        match key.strip_prefix("transfer.").unwrap_or(key) {
            "concurrency" => self.concurrency.is_some(),
            "partsPerObject" => self.parts_per_object.is_some(),
            "partSize" => self.part_size.is_some(),
            "multipartThreshold" => self.multipart_threshold.is_some(),
            "maxBufferMemory" => self.max_buffer_memory.is_some(),
            "bwLimit" => self.bw_limit.is_some(),
            "requestRate" => self.request_rate.is_some(),
            "retries" => self.retries.is_some(),
            "readTimeout" => self.read_timeout_secs.is_some(),
            "connectTimeout" => self.connect_timeout_secs.is_some(),
            "multipartCopyThresholdMiB" => self.multipart_copy_threshold_mib.is_some(),
            "mode" => self.mode.is_some(),
            _ => false,
        }
    }
}

/// Validated copy settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Objects in flight, > 0.
    pub concurrency: usize,
    /// Parts of one object in flight, > 0.
    pub parts_per_object: usize,
    /// Part size, within the S3 limits 5 MiB..=5 GiB.
    pub part_size: u64,
    /// Objects at least this large are uploaded in parts; 5 MiB..=5 GiB.
    pub multipart_threshold: u64,
    /// Memory budget for buffered data, >= `part_size` and >= `multipart_threshold`.
    pub max_buffer_memory: u64,
    /// Bandwidth limit in bytes per second; `None` = unlimited.
    pub byte_rate: Option<NonZeroU64>,
    /// Request limit per second; `None` = unlimited.
    pub request_rate: Option<NonZeroU32>,
    /// Retries after the first attempt of one part or object.
    pub retries: u32,
    /// Read timeout, > 0.
    pub read_timeout: Duration,
    /// Connect timeout, > 0.
    pub connect_timeout: Duration,
    /// Server-side copies of objects at least this large use multipart copy; 5 MiB..=5 GiB
    /// (a single CopyObject cannot exceed 5 GiB).
    pub multipart_copy_threshold: u64,
    /// Copy mode.
    pub mode: TransferMode,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig::from_options(&TransferOptions::default())
            .expect("the defaults satisfy every rule")
    }
}

/// A broken rule: the `transfer.*` key it is about and why.
pub(crate) struct TransferIssue {
    pub(crate) key: &'static str,
    pub(crate) reason: String,
}

impl TransferConfig {
    /// Applies defaults and checks every rule.
    ///
    /// # Errors
    /// [`ConfigError::Transfer`] naming the first option that breaks a rule: concurrency or
    /// parts per object of 0, a part size outside 5 MiB..=5 GiB, a multipart threshold outside
    /// 5 MiB..=5 GiB, a buffer budget smaller than the part size or the threshold, a zero
    /// timeout, or a multipart copy threshold outside 5..=5120 MiB.
    pub fn from_options(o: &TransferOptions) -> Result<TransferConfig, ConfigError> {
        Self::check(o).map_err(|i| ConfigError::Transfer {
            key: i.key.to_string(),
            reason: i.reason,
        })
    }

    pub(crate) fn check(o: &TransferOptions) -> Result<TransferConfig, TransferIssue> {
        let issue = |key: &'static str, reason: String| Err(TransferIssue { key, reason });
        let concurrency = o.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return issue("transfer.concurrency", "must be at least 1".into());
        }
        let parts_per_object = o.parts_per_object.unwrap_or(DEFAULT_PARTS_PER_OBJECT);
        if parts_per_object == 0 {
            return issue("transfer.partsPerObject", "must be at least 1".into());
        }
        let part_size = o.part_size.unwrap_or(DEFAULT_PART_SIZE);
        if !(S3_MIN_PART..=S3_MAX_PART).contains(&part_size) {
            return issue(
                "transfer.partSize",
                format!(
                    "must be between 5MiB and 5GiB (S3 part limits), got {}",
                    format_size(part_size)
                ),
            );
        }
        let multipart_threshold = o.multipart_threshold.unwrap_or(DEFAULT_MULTIPART_THRESHOLD);
        if !(S3_MIN_PART..=S3_MAX_PART).contains(&multipart_threshold) {
            return issue(
                "transfer.multipartThreshold",
                format!(
                    "must be between 5MiB and 5GiB (smaller objects go in one PUT, which S3 caps at 5GiB), got {}",
                    format_size(multipart_threshold)
                ),
            );
        }
        let max_buffer_memory = o.max_buffer_memory.unwrap_or(DEFAULT_MAX_BUFFER_MEMORY);
        if max_buffer_memory < part_size.max(multipart_threshold) {
            return issue(
                "transfer.maxBufferMemory",
                format!(
                    "must hold one part and one object below the multipart threshold: at least \
                     partSize ({}) and multipartThreshold ({}), got {}",
                    format_size(part_size),
                    format_size(multipart_threshold),
                    format_size(max_buffer_memory)
                ),
            );
        }
        let read_timeout = o.read_timeout_secs.unwrap_or(DEFAULT_READ_TIMEOUT_SECS);
        if read_timeout == 0 {
            return issue("transfer.readTimeout", "must be at least 1s".into());
        }
        let connect_timeout = o
            .connect_timeout_secs
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS);
        if connect_timeout == 0 {
            return issue("transfer.connectTimeout", "must be at least 1s".into());
        }
        let copy_mib = o
            .multipart_copy_threshold_mib
            .unwrap_or(DEFAULT_MULTIPART_COPY_THRESHOLD_MIB);
        if !(5..=5120).contains(&copy_mib) {
            return issue(
                "transfer.multipartCopyThresholdMiB",
                format!(
                    "must be between 5 and 5120 (a single server-side copy is capped at 5GiB), got {copy_mib}"
                ),
            );
        }
        Ok(TransferConfig {
            concurrency,
            parts_per_object,
            part_size,
            multipart_threshold,
            max_buffer_memory,
            byte_rate: o.bw_limit.and_then(NonZeroU64::new),
            request_rate: o.request_rate.and_then(NonZeroU32::new),
            retries: o.retries.unwrap_or(DEFAULT_RETRIES),
            read_timeout: Duration::from_secs(read_timeout),
            connect_timeout: Duration::from_secs(connect_timeout),
            multipart_copy_threshold: copy_mib * MIB,
            mode: o.mode.unwrap_or(TransferMode::Auto),
        })
    }

    /// The most memory buffered data can take:
    /// `min(max_buffer_memory, concurrency * max(parts_per_object * part_size, multipart_threshold))`.
    pub fn peak_buffer_bytes(&self) -> u64 {
        let per_object = (self.parts_per_object as u64)
            .saturating_mul(self.part_size)
            .max(self.multipart_threshold);
        (self.concurrency as u64)
            .saturating_mul(per_object)
            .min(self.max_buffer_memory)
    }

    /// The largest amount handed to the bandwidth limiter at once: `part_size`, capped to the
    /// limiter's burst (one second of `byte_rate`) when a limit is set.
    pub fn throttle_chunk_bytes(&self) -> u64 {
        match self.byte_rate {
            Some(rate) => self.part_size.min(rate.get()),
            None => self.part_size,
        }
    }
}

/// `transfer.*` keys as `describe()` shows their defaults.
fn default_shown(key: &str) -> String {
    match key {
        "transfer.concurrency" => DEFAULT_CONCURRENCY.to_string(),
        "transfer.partsPerObject" => DEFAULT_PARTS_PER_OBJECT.to_string(),
        "transfer.partSize" => format_size(DEFAULT_PART_SIZE),
        "transfer.multipartThreshold" => format_size(DEFAULT_MULTIPART_THRESHOLD),
        "transfer.maxBufferMemory" => format_size(DEFAULT_MAX_BUFFER_MEMORY),
        "transfer.bwLimit" => show_rate(0),
        "transfer.requestRate" => "0".into(),
        "transfer.retries" => DEFAULT_RETRIES.to_string(),
        "transfer.readTimeout" => format!("{DEFAULT_READ_TIMEOUT_SECS}s"),
        "transfer.connectTimeout" => format!("{DEFAULT_CONNECT_TIMEOUT_SECS}s"),
        "transfer.multipartCopyThresholdMiB" => DEFAULT_MULTIPART_COPY_THRESHOLD_MIB.to_string(),
        "transfer.mode" => TransferMode::Auto.as_str().into(),
        _ => String::new(),
    }
}

/// Reads one option and records it (with our default when absent).
fn option<T: Field>(
    r: &mut Resolver<'_>,
    keys: &[&str],
    env: Option<&str>,
) -> Result<Option<T>, ConfigError> {
    match r.lookup::<T>(keys, env)? {
        Some(got) => {
            r.record_got(&got);
            Ok(Some(got.value))
        }
        None => {
            r.record(keys[0], default_shown(keys[0]), Source::Default);
            Ok(None)
        }
    }
}

/// Reads the `transfer:` block, plus the v1 keys that map to it (`backup.parallelism.copydata`
/// and its env var, `minio.multipartCopyThresholdMiB`, `minio.crossStorage`). A `transfer.*`
/// key wins over its v1 alias.
pub(crate) fn read_options(
    r: &mut Resolver<'_>,
    schema: SchemaVersion,
) -> Result<TransferOptions, ConfigError> {
    let v1 = schema == SchemaVersion::V1;
    let (conc_keys, conc_env): (&[&str], _) = if v1 {
        (
            &["transfer.concurrency", "backup.parallelism.copydata"],
            Some("BACKUP_PARALLELISM_COPYDATA"),
        )
    } else {
        (&["transfer.concurrency"], None)
    };
    let copy_keys: &[&str] = if v1 {
        &[
            "transfer.multipartCopyThresholdMiB",
            "minio.multipartCopyThresholdMiB",
        ]
    } else {
        &["transfer.multipartCopyThresholdMiB"]
    };
    let mut o = TransferOptions {
        concurrency: option::<usize>(r, conc_keys, conc_env)?,
        parts_per_object: option::<usize>(r, &["transfer.partsPerObject"], None)?,
        part_size: option::<Size>(r, &["transfer.partSize"], None)?.map(|s| s.0),
        multipart_threshold: option::<Size>(r, &["transfer.multipartThreshold"], None)?
            .map(|s| s.0),
        max_buffer_memory: option::<Size>(r, &["transfer.maxBufferMemory"], None)?.map(|s| s.0),
        bw_limit: option::<Rate>(r, &["transfer.bwLimit"], None)?.map(|s| s.0),
        request_rate: option::<u32>(r, &["transfer.requestRate"], None)?,
        retries: option::<u32>(r, &["transfer.retries"], None)?,
        read_timeout_secs: option::<Secs>(r, &["transfer.readTimeout"], None)?.map(|s| s.0),
        connect_timeout_secs: option::<Secs>(r, &["transfer.connectTimeout"], None)?.map(|s| s.0),
        multipart_copy_threshold_mib: option::<u64>(r, copy_keys, None)?,
        mode: None,
    };
    let mode = r.lookup::<TransferMode>(&["transfer.mode"], None)?;
    let cross = if v1 {
        r.lookup::<bool>(&["minio.crossStorage"], None)?
    } else {
        None
    };
    match (mode, cross) {
        (Some(m), _) => {
            r.record_got(&m);
            o.mode = Some(m.value);
        }
        (None, Some(c)) => {
            r.record_got(&c);
            o.mode = Some(if c.value {
                TransferMode::Streaming
            } else {
                TransferMode::Auto
            });
        }
        (None, None) => r.record(
            "transfer.mode",
            default_shown("transfer.mode"),
            Source::Default,
        ),
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_key(o: TransferOptions) -> String {
        match TransferConfig::from_options(&o) {
            Err(ConfigError::Transfer { key, .. }) => key,
            other => panic!("expected a transfer error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = TransferConfig::default();
        assert_eq!(c.concurrency, 16);
        assert_eq!(c.parts_per_object, 4);
        assert_eq!(c.part_size, 16 * MIB);
        assert_eq!(c.multipart_threshold, 32 * MIB);
        assert_eq!(c.max_buffer_memory, 96 * MIB);
        assert_eq!(c.byte_rate, None);
        assert_eq!(c.request_rate, None);
        assert_eq!(c.retries, 10);
        assert_eq!(c.read_timeout, Duration::from_secs(60));
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.multipart_copy_threshold, 500 * MIB);
        assert_eq!(c.mode, TransferMode::Auto);
        assert_eq!(c.peak_buffer_bytes(), 96 * MIB);
        assert_eq!(c.throttle_chunk_bytes(), 16 * MIB);
    }

    #[test]
    fn cross_field_rules() {
        let o = TransferOptions::default;
        assert_eq!(
            err_key(TransferOptions {
                concurrency: Some(0),
                ..o()
            }),
            "transfer.concurrency"
        );
        assert_eq!(
            err_key(TransferOptions {
                parts_per_object: Some(0),
                ..o()
            }),
            "transfer.partsPerObject"
        );
        assert_eq!(
            err_key(TransferOptions {
                part_size: Some(4 * MIB),
                ..o()
            }),
            "transfer.partSize"
        );
        assert_eq!(
            err_key(TransferOptions {
                part_size: Some(5 * GIB + 1),
                ..o()
            }),
            "transfer.partSize"
        );
        assert_eq!(
            err_key(TransferOptions {
                multipart_threshold: Some(MIB),
                ..o()
            }),
            "transfer.multipartThreshold"
        );
        // A 64 MiB part fits the default 96 MiB budget; 256 MiB does not.
        assert!(
            TransferConfig::from_options(&TransferOptions {
                part_size: Some(64 * MIB),
                ..o()
            })
            .is_ok()
        );
        assert_eq!(
            err_key(TransferOptions {
                part_size: Some(256 * MIB),
                ..o()
            }),
            "transfer.maxBufferMemory"
        );
        assert_eq!(
            err_key(TransferOptions {
                multipart_threshold: Some(200 * MIB),
                ..o()
            }),
            "transfer.maxBufferMemory"
        );
        assert_eq!(
            err_key(TransferOptions {
                read_timeout_secs: Some(0),
                ..o()
            }),
            "transfer.readTimeout"
        );
        assert_eq!(
            err_key(TransferOptions {
                connect_timeout_secs: Some(0),
                ..o()
            }),
            "transfer.connectTimeout"
        );
        assert_eq!(
            err_key(TransferOptions {
                multipart_copy_threshold_mib: Some(6000),
                ..o()
            }),
            "transfer.multipartCopyThresholdMiB"
        );
        // Boundaries are inclusive.
        let edge = TransferOptions {
            part_size: Some(5 * MIB),
            multipart_threshold: Some(5 * MIB),
            max_buffer_memory: Some(5 * MIB),
            ..o()
        };
        assert!(TransferConfig::from_options(&edge).is_ok());
    }

    #[test]
    fn limits_and_memory() {
        let c = TransferConfig::from_options(&TransferOptions {
            concurrency: Some(2),
            parts_per_object: Some(2),
            bw_limit: Some(MIB),
            request_rate: Some(0),
            ..TransferOptions::default()
        })
        .unwrap();
        assert_eq!(c.byte_rate.map(NonZeroU64::get), Some(MIB));
        assert_eq!(c.request_rate, None, "Some(0) means unlimited");
        // 2 objects * max(2 * 16 MiB, 32 MiB) = 64 MiB < 128 MiB budget.
        assert_eq!(c.peak_buffer_bytes(), 64 * MIB);
        assert_eq!(
            c.throttle_chunk_bytes(),
            MIB,
            "chunks are capped to the limiter burst"
        );
    }

    #[test]
    fn merge_higher_wins_per_field() {
        let file = TransferOptions {
            concurrency: Some(8),
            part_size: Some(32 * MIB),
            bw_limit: Some(50 * MIB),
            mode: Some(TransferMode::Streaming),
            ..TransferOptions::default()
        };
        let cli = TransferOptions {
            concurrency: Some(4),
            bw_limit: Some(0),
            ..TransferOptions::default()
        };
        let m = file.merge(cli);
        assert_eq!(m.concurrency, Some(4));
        assert_eq!(m.part_size, Some(32 * MIB));
        assert_eq!(
            m.bw_limit,
            Some(0),
            "explicit off from the CLI beats the file's limit"
        );
        assert_eq!(m.mode, Some(TransferMode::Streaming));
        let c = TransferConfig::from_options(&m).unwrap();
        assert_eq!(c.byte_rate, None);
        assert!(m.is_set("transfer.partSize") && !m.is_set("transfer.retries"));
    }
}
