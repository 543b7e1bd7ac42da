//! [`MilvusError`]: what can go wrong talking to one Milvus, with the address in every message.
//!
//! Retryable vs fatal is decided here from the gRPC code and Milvus's own status code (rate
//! limited, not ready, unavailable), never from message text.

use crate::retry::Retryable;

/// Milvus status codes (`common.Status.code`, `merr`) the tool acts on. Some 2.3 builds OR a
/// retriable flag `1 << 16` into the code: compare `code & 0xFFFF`.
pub mod code {
    /// Service not ready.
    pub const NOT_READY: i32 = 1;
    /// Service unavailable.
    pub const UNAVAILABLE: i32 = 2;
    /// Rate limit exceeded.
    pub const RATE_LIMIT: i32 = 8;
    /// Collection not found.
    pub const COLLECTION_NOT_FOUND: i32 = 100;
    /// Collection not loaded.
    pub const COLLECTION_NOT_LOADED: i32 = 101;
    /// Segment not found.
    pub const SEGMENT_NOT_FOUND: i32 = 600;
    /// Index not found.
    pub const INDEX_NOT_FOUND: i32 = 700;
    /// Database not found.
    pub const DATABASE_NOT_FOUND: i32 = 800;
}

/// Legacy `common.ErrorCode` values the tool acts on.
pub mod error_code {
    /// Collection does not exist.
    pub const COLLECTION_NOT_EXISTS: i32 = 4;
    /// No index on the collection.
    pub const INDEX_NOT_EXIST: i32 = 25;
    /// Rate limited.
    pub const RATE_LIMIT: i32 = 49;
    /// Not ready to serve.
    pub const NOT_READY_SERVE: i32 = 56;
    /// Coordinator activating.
    pub const NOT_READY_COORD_ACTIVATING: i32 = 57;
}

/// An error talking to Milvus.
#[derive(Debug, thiserror::Error)]
pub enum MilvusError {
    /// No connection could be made (refused, unreachable, timed out).
    #[error("cannot connect to Milvus at {address}: {message}")]
    Connect { address: String, message: String },
    /// The server refused the user name and password (or they are required and missing).
    #[error("Milvus at {address} refused the credentials of user `{user}`: {message}")]
    Unauthenticated {
        address: String,
        user: String,
        /// The server's reason, then the profile keys the credentials come from.
        message: String,
    },
    /// Something answers at the address, but not Milvus's gRPC API.
    #[error("{address} does not answer as a Milvus gRPC server: {message}")]
    NotMilvus { address: String, message: String },
    /// TLS could not be set up from the profile's files.
    #[error("TLS settings for Milvus at {address}: {message}")]
    Tls { address: String, message: String },
    /// A call failed at the gRPC level.
    #[error("Milvus at {address}: {rpc} failed: {message} (gRPC {code:?})")]
    Rpc {
        address: String,
        rpc: &'static str,
        code: tonic::Code,
        message: String,
    },
    /// The server refused one gRPC message as larger than it allows: an answer past the
    /// proxy's `proxy.grpc.serverMaxSendSize`, or a request past its `serverMaxRecvSize`.
    /// The same call fails again; one asking for fewer rows passes.
    #[error(
        "Milvus at {address}: {rpc} failed: one message of {size} bytes, over the server's \
         limit of {limit} (gRPC ResourceExhausted; the proxy's `proxy.grpc.serverMaxSendSize` \
         and `serverMaxRecvSize`)"
    )]
    TooLarge {
        address: String,
        rpc: &'static str,
        /// The message's size, bytes.
        size: u64,
        /// The server's limit on one message, bytes.
        limit: u64,
    },
    /// Milvus answered the call with an error status.
    #[error("Milvus at {address}: {rpc}: {reason} (code {code})")]
    Server {
        address: String,
        rpc: &'static str,
        /// `Status.code` with the 2.3 retriable bit masked off, or the legacy error code when
        /// `code` is 0.
        code: i32,
        /// Legacy `Status.error_code`.
        error_code: i32,
        reason: String,
        retriable: bool,
    },
    /// The server's version cannot do what was asked.
    #[error("Milvus {version} at {address}: {what}")]
    Unsupported {
        address: String,
        version: String,
        what: String,
    },
}

impl MilvusError {
    /// The Milvus status code of a [`MilvusError::Server`] error.
    pub fn server_code(&self) -> Option<(i32, i32)> {
        match self {
            MilvusError::Server {
                code, error_code, ..
            } => Some((*code, *error_code)),
            _ => None,
        }
    }

    /// The size of a message the server refused as too large, and its limit (see
    /// [`MilvusError::TooLarge`]).
    pub fn too_large(&self) -> Option<(u64, u64)> {
        match self {
            MilvusError::TooLarge { size, limit, .. } => Some((*size, *limit)),
            _ => None,
        }
    }

    /// Whether Milvus said the collection does not exist.
    pub fn is_collection_not_found(&self) -> bool {
        matches!(self.server_code(), Some((c, e)) if c == code::COLLECTION_NOT_FOUND
            || e == error_code::COLLECTION_NOT_EXISTS)
    }

    /// Whether Milvus said there is no index.
    pub fn is_index_not_found(&self) -> bool {
        matches!(self.server_code(), Some((c, e)) if c == code::INDEX_NOT_FOUND
            || e == error_code::INDEX_NOT_EXIST)
    }

    /// Whether Milvus said the segment is unknown (transient while compaction runs).
    pub fn is_segment_not_found(&self) -> bool {
        matches!(self.server_code(), Some((c, _)) if c == code::SEGMENT_NOT_FOUND)
    }
}

impl Retryable for MilvusError {
    fn is_retryable(&self) -> bool {
        match self {
            MilvusError::Rpc { code, .. } => matches!(
                code,
                tonic::Code::Unavailable
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Aborted
            ),
            MilvusError::Server {
                code: c,
                error_code: e,
                retriable,
                ..
            } => {
                *retriable
                    || matches!(*c, code::NOT_READY | code::UNAVAILABLE | code::RATE_LIMIT)
                    || matches!(
                        *e,
                        error_code::RATE_LIMIT
                            | error_code::NOT_READY_SERVE
                            | error_code::NOT_READY_COORD_ACTIVATING
                    )
            }
            MilvusError::Connect { .. } => true,
            _ => false,
        }
    }
}

/// The sizes in a gRPC `ResourceExhausted` status that refuses a message as too large: grpc-go
/// (Milvus's server) states them as `... larger than max (<size> vs. <limit>)`, for a message
/// to send and one received alike. Any other `ResourceExhausted` (a quota, a rate limit of a
/// proxy in front) has none and stays a retryable [`MilvusError::Rpc`].
pub(crate) fn refused_sizes(message: &str) -> Option<(u64, u64)> {
    let (_, rest) = message.split_once("larger than max (")?;
    let (size, rest) = rest.split_once(" vs. ")?;
    let (limit, _) = rest.split_once(')')?;
    let (size, limit) = (size.trim().parse().ok()?, limit.trim().parse().ok()?);
    (size > limit).then_some((size, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: i32, error_code: i32, retriable: bool) -> MilvusError {
        MilvusError::Server {
            address: "m:19530".into(),
            rpc: "Flush",
            code,
            error_code,
            reason: "x".into(),
            retriable,
        }
    }

    #[test]
    fn retryable_is_decided_by_codes() {
        assert!(server(code::RATE_LIMIT, 0, false).is_retryable());
        assert!(server(0, error_code::RATE_LIMIT, false).is_retryable());
        assert!(server(65535, 1, true).is_retryable());
        assert!(!server(code::COLLECTION_NOT_FOUND, 0, false).is_retryable());
        assert!(server(code::COLLECTION_NOT_FOUND, 0, false).is_collection_not_found());
        assert!(server(0, error_code::INDEX_NOT_EXIST, false).is_index_not_found());
        let rpc = |code| MilvusError::Rpc {
            address: "m".into(),
            rpc: "Query",
            code,
            message: "x".into(),
        };
        assert!(rpc(tonic::Code::Unavailable).is_retryable());
        let too_large = MilvusError::TooLarge {
            address: "m".into(),
            rpc: "Query",
            size: 9,
            limit: 2,
        };
        assert!(!too_large.is_retryable());
        assert_eq!(too_large.too_large(), Some((9, 2)));
        assert!(!rpc(tonic::Code::InvalidArgument).is_retryable());
    }

    #[test]
    fn a_message_refused_as_too_large_gives_both_sizes() {
        let sent = "grpc: trying to send message larger than max (9566982 vs. 2097152)";
        assert_eq!(refused_sizes(sent), Some((9_566_982, 2_097_152)));
        let received = "grpc: received message larger than max (70000000 vs. 67108864)";
        assert_eq!(refused_sizes(received), Some((70_000_000, 67_108_864)));
        assert_eq!(refused_sizes("quota exceeded"), None);
        assert_eq!(refused_sizes("larger than max (x vs. 2)"), None);
    }
}
