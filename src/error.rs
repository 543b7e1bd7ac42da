//! The crate's public error: one variant per library area, each keeping its own typed error.
//!
//! Whether an error is worth retrying is a property of the error ([`Error::is_retryable`]); the
//! binary maps errors to exit codes from their type, never from messages.

use crate::backup::BackupError;
use crate::config::ConfigError;
use crate::copy::CopyError;
use crate::create::CreateError;
use crate::lease::LeaseError;
use crate::migrate::{MigrateError, PhaseError};
use crate::milvus::MilvusError;
use crate::rbac::RbacError;
use crate::restore::RestoreError;
use crate::retry::Retryable;
use crate::seed::SeedError;
use crate::storage::StorageError;
use crate::transfer::TransferError;
use crate::verify::VerifyError;

/// Any error of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A profile could not be read or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A store could not be opened or answered with an error.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A copy could not run to the end.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// A transfer request is invalid.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Talking to Milvus failed.
    #[error(transparent)]
    Milvus(#[from] MilvusError),
    /// Backup meta could not be read or written.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// `create` could not finish.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// Another run holds the job's lease, or took it over from this one.
    #[error(transparent)]
    Lease(Box<LeaseError>),
    /// A migration cannot run as asked.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// A phase of `migrate` failed.
    #[error(transparent)]
    Phase(#[from] PhaseError),
    /// `restore` could not finish.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Users, roles or grants could not be read or restored.
    #[error(transparent)]
    Rbac(#[from] RbacError),
    /// `seed` could not finish.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// A verification could not run, or found a difference where one is a failure.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The flow was cancelled ([`crate::transfer::RunContext::cancel`]).
    #[error("cancelled")]
    Cancelled,
}

impl From<LeaseError> for Error {
    fn from(e: LeaseError) -> Self {
        Self::Lease(Box::new(e))
    }
}

impl Error {
    /// The lease error, if this is one (directly or as a phase's cause): another run holds
    /// the job or took it over.
    pub fn lease(&self) -> Option<&LeaseError> {
        match self {
            Self::Lease(e) => Some(e.as_ref()),
            Self::Phase(p) => p.source.lease(),
            _ => None,
        }
    }

    /// Whether the same operation may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Config(_)
            | Self::Transfer(_)
            | Self::Backup(_)
            | Self::Seed(_)
            | Self::Migrate(_)
            | Self::Cancelled => false,
            Self::Lease(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
            Self::Copy(e) => e.is_retryable(),
            Self::Milvus(e) => e.is_retryable(),
            Self::Create(e) => match e {
                CreateError::Milvus { source, .. } => source.is_retryable(),
                CreateError::Incomplete { .. } | CreateError::FlushTimeout { .. } => true,
                _ => false,
            },
            Self::Phase(e) => e.is_retryable(),
            Self::Verify(e) => e.is_retryable(),
            Self::Rbac(e) => e.is_retryable(),
            Self::Restore(e) => matches!(
                e,
                RestoreError::Step {
                    retryable: true,
                    ..
                }
            ),
        }
    }
}
