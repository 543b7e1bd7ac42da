//! milvus-migrate: move Milvus collections between Milvus instances on different object
//! stores, streaming between the stores with no local copy.
//!
//! Module map:
//! - [`config`]: milvus-backup `backup.yaml` profiles (v1 and v2 schemas) resolved and validated
//!   into a [`config::Profile`], plus our own copier settings.
//! - [`storage`]: object stores opened from a profile (local, S3 family, GCS, Azure), the HTTP
//!   gate every request passes, typed storage errors, backup key layout.
//! - [`throttle`]: the process-wide byte-rate and request-rate limiters.
//! - [`retry`]: backoff and the retry loop, used by the copier and the Milvus client.
//! - [`copy`]: the pipelined streaming copier with ledger-based resume and MD5 verification.
//! - [`transfer`]: the `copy` operation on profiles: which buckets and prefixes, preflight checks.
//! - [`backup`]: the milvus-backup format: meta JSON types, the five meta files, key layout.
//! - [`milvus`]: the Milvus gRPC protocol (generated from `proto/milvus/`) and client.
//! - [`create`]: the `create` flow: flush, discover segment binlogs, copy, write the meta.
//! - [`restore`]: the `restore` flow: create collections, stage binlogs, import, verify.
//! - [`rbac`]: users, roles, grants and role bindings: read into a backup's `rbac_meta`,
//!   merged into a target Milvus.
//! - [`seed`]: sample collections with generated rows in a real Milvus (demos, CI, tests).
//! - [`migrate`]: the one-command migration: create on A, copy, restore on B, verify.
//! - [`verify`]: content verification of a collection on A against one on B (counts, keys,
//!   every field of a sample or of every row).
//! - [`lease`]: one live run at a time of a named job, held as an object in a store.
//! - [`clock`]: wall-clock seconds and their UTC form, as our records carry them.
//! - [`error`]: the crate's public error enum.
//!
//! Library code never prints; progress goes through [`copy::CopyObserver`] and results come back
//! as reports for the binary to render.

pub mod backup;
pub mod clock;
pub mod config;
pub mod copy;
pub mod create;
pub mod daemon;
pub mod error;
pub mod lease;
pub mod migrate;
pub mod milvus;
pub mod rbac;
pub mod restore;
pub mod retry;
pub mod seed;
pub mod storage;
pub mod throttle;
pub mod transfer;
pub mod verify;

pub use error::Error;

/// Makes rustls use the ring crypto provider in this process. The tree builds rustls without a
/// default provider (aws-lc-rs is kept out), so without this the first TLS connection (a
/// store over https, gRPC to Milvus or to the daemon, the daemon's TLS listener) would panic.
/// Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
