//! [`BackupError`]: the one public error of the backup-format module.
//!
//! Owns the wording of every failure to read, write or interpret milvus-backup meta files. Each
//! message names the meta file (as `meta/<file>.json`) or the object at fault. Does not own
//! storage failures: reading the bytes is the caller's job, so a store error never reaches here.

/// Why backup meta could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A meta file the backup needs is not there.
    #[error("meta/{file} is missing")]
    MissingFile {
        /// File name inside `meta/`, e.g. `backup_meta.json`.
        file: &'static str,
    },
    /// A meta file is not JSON of the expected shape.
    #[error("meta/{file}:{line}:{column}: invalid backup meta: {message}")]
    Parse {
        /// File name inside `meta/`, e.g. `full_meta.json`.
        file: &'static str,
        /// 1-based line of the error (0 when the parser gave no location).
        line: usize,
        /// 1-based column of the error (0 when the parser gave no location).
        column: usize,
        /// The parser's message, without its own location suffix.
        message: String,
    },
    /// A meta value could not be encoded (cannot happen with the types of this module; kept so
    /// that encoding never panics).
    #[error("meta/{file}: cannot encode backup meta: {source}")]
    Encode {
        /// File name inside `meta/`.
        file: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The backup was written in a format this tool does not know.
    #[error(
        "backup `{name}` was written in the `{format}` format, which milvus-migrate does not know \
         (known: binlog, snapshot)"
    )]
    UnknownFormat {
        /// The backup's name from its meta.
        name: String,
        /// The `format` value found.
        format: String,
    },
    /// The backup holds Milvus snapshot bundles, which cannot be restored from binlogs.
    ///
    /// Such a bundle is exported and restored by Milvus itself (`ExportSnapshot`,
    /// `RestoreExternalSnapshot`, Milvus 3.0.1+), within one storage service only
    /// (zilliztech/milvus-backup#1241); milvus-backup's `create --format binlog` makes the
    /// other kind (`mb@f81df44:cmd/create/create.go`).
    #[error(
        "backup `{name}` is in milvus-backup's snapshot format (Milvus 3.0 snapshot bundles), \
         which milvus-migrate cannot restore or migrate: restore it with milvus-backup 0.6 or \
         later into a Milvus 3.0.1 or later on the same storage service, or back the \
         collections up again in the binlog format (`milvus-migrate create`, or \
         `milvus-backup create --format binlog`) and restore or migrate that backup"
    )]
    SnapshotFormat {
        /// The backup's name from its meta.
        name: String,
    },
    /// A binlog entry has neither a log id nor a log path to derive its object key from.
    #[error("segment {segment_id}: a binlog has neither `log_id` nor `log_path`")]
    MissingLogId {
        /// The segment the binlog belongs to.
        segment_id: i64,
    },
    /// A field's default value is not valid base64.
    #[error("field `{field}`: `default_value_base64` is not valid base64")]
    InvalidDefaultValue {
        /// The field's name.
        field: String,
    },
}

impl BackupError {
    /// A [`BackupError::Parse`] for `file` from a serde_json error, splitting off the location.
    pub(crate) fn parse(file: &'static str, err: &serde_json::Error) -> Self {
        let (line, column) = (err.line(), err.column());
        let text = err.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        Self::Parse {
            file,
            line,
            column,
            message,
        }
    }
}
