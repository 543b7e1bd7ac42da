//! [`ConfigError`]: the one public error of the config module.
//!
//! Owns the wording of every configuration failure. Each message names the profile file (or, for
//! transfer options that came from the command line, the option) and never contains a secret:
//! the loaders build `reason` strings without echoing values of secret keys. Does not own
//! warnings (unknown or deprecated keys), which are returned in `Loaded::warnings`.

use std::path::PathBuf;

/// Why a profile could not be loaded or a transfer configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read profile {}: {source}", path.display())]
    Read {
        /// The profile path as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{}:{line}:{column}: invalid YAML: {message}", path.display())]
    Syntax {
        /// The profile path as given.
        path: PathBuf,
        /// 1-based line of the error (0 when the parser gave no location).
        line: usize,
        /// 1-based column of the error (0 when the parser gave no location).
        column: usize,
        /// The parser's message, without its own location suffix.
        message: String,
    },
    /// A key has a value of the wrong type or one that breaks a rule.
    #[error("{}: key `{key}`: {reason}", path.display())]
    Invalid {
        /// The profile path as given.
        path: PathBuf,
        /// Dotted key in the file's schema, e.g. `minio.port`.
        key: String,
        /// What was expected and, for keys that are not secret, what was found.
        reason: String,
    },
    /// An environment variable that overrides a key could not be used.
    #[error("{}: environment variable {var}: {reason}", path.display())]
    Env {
        /// The profile path as given.
        path: PathBuf,
        /// The variable's name, e.g. `MILVUS_PORT`.
        var: String,
        /// What was expected and, for variables that are not secret, what was found.
        reason: String,
    },
    /// A transfer option that did not come from a profile file (command-line flags passed to
    /// `TransferConfig::from_options`) breaks a rule.
    #[error("transfer option `{key}`: {reason}")]
    Transfer {
        /// Dotted key of the option, e.g. `transfer.partSize`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}
