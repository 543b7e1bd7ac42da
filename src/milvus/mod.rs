//! The Milvus side: gRPC access to a Milvus proxy (`milvus.proto.milvus.MilvusService`).
//!
//! Owns the generated protocol types and client ([`proto`]), compiled by `build.rs` from the
//! hand-written subset of the upstream protos in `proto/milvus/` that covers Milvus 2.3 to 2.6.
//! Does not own object storage, the backup format or the restore flow: those live in
//! `storage`, `backup` and the flow modules, which call into this one.

pub mod proto;

// Its `unary!` and `reply!` macros serve `admin` too.
#[macro_use]
mod client;
mod admin;
pub mod convert;
pub mod error;
pub mod gc;
pub mod protocol;
pub mod query;
mod version;

pub use admin::Grant;
pub use client::{ClientOptions, Flushed, MilvusClient, Reply};
pub use error::MilvusError;
pub use query::{CountMethod, Pk, PkKind, PrimaryKey, count_method};
pub use version::{ServerVersion, restorable_into};
