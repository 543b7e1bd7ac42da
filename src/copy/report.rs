//! What a copy tells the outside: progress events while it runs ([`CopyObserver`]) and the final
//! [`CopyReport`]. The library never prints; the CLI renders both.

use serde::Serialize;

use crate::storage::StorageError;

/// Progress events. Called from many tasks at once; implementations must be cheap.
pub trait CopyObserver: Send + Sync {
    /// The plan is known.
    fn planned(&self, _summary: &PlanSummary) {}
    /// `bytes` more were written to the destination and verified.
    fn bytes(&self, _bytes: u64) {}
    /// An object is finished (copied, or resumed and completed).
    fn object_done(&self, _rel: &str, _size: u64) {}
    /// An object was already complete at the destination and is skipped (told once the plan
    /// is known, after [`CopyObserver::planned`]; counted there, not in `object_done`).
    fn object_skipped(&self, _rel: &str, _size: u64) {}
    /// An operation failed and will be retried.
    fn retry(&self, _rel: &str, _what: &str, _attempt: u32, _error: &StorageError) {}
    /// An object failed for good.
    fn object_failed(&self, _rel: &str, _error: &StorageError) {}
    /// A flow (create, restore, migrate) started a step worth telling the user about.
    fn step(&self, _message: &str) {}
    /// A restore imported `rows` more rows (as Milvus reported them).
    fn rows(&self, _rows: u64) {}
}

/// Implements [`CopyObserver`] for a type that stands in front of another observer (its field
/// `$inner`) and acts on each object once it is at the destination, copied or found there
/// already (its method `$arrived(&self, rel: &str)`): every event is forwarded.
macro_rules! tap_copy_events {
    ($ty:ty, $inner:ident, $arrived:ident) => {
        impl $crate::copy::CopyObserver for $ty {
            fn planned(&self, summary: &$crate::copy::PlanSummary) {
                self.$inner.planned(summary);
            }
            fn bytes(&self, bytes: u64) {
                self.$inner.bytes(bytes);
            }
            fn object_done(&self, rel: &str, size: u64) {
                self.$inner.object_done(rel, size);
                self.$arrived(rel);
            }
            fn object_skipped(&self, rel: &str, size: u64) {
                self.$inner.object_skipped(rel, size);
                self.$arrived(rel);
            }
            fn retry(
                &self,
                rel: &str,
                what: &str,
                attempt: u32,
                error: &$crate::storage::StorageError,
            ) {
                self.$inner.retry(rel, what, attempt, error);
            }
            fn object_failed(&self, rel: &str, error: &$crate::storage::StorageError) {
                self.$inner.object_failed(rel, error);
            }
            fn step(&self, message: &str) {
                self.$inner.step(message);
            }
            fn rows(&self, rows: u64) {
                self.$inner.rows(rows);
            }
        }
    };
}
pub(crate) use tap_copy_events;

/// Observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl CopyObserver for NoProgress {}

/// Totals of a plan, for progress displays.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanSummary {
    /// Objects at the source.
    pub objects_total: u64,
    /// Bytes at the source.
    pub bytes_total: u64,
    /// Objects already at the destination.
    pub objects_skipped: u64,
    /// Bytes already at the destination.
    pub bytes_skipped: u64,
    /// Objects whose multipart upload resumes.
    pub objects_resumed: u64,
}

/// One object that could not be copied.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectFailure {
    /// Relative key.
    pub key: String,
    /// Why.
    pub error: String,
    /// Whether the last error was of a retryable kind (the budget ran out).
    pub retryable: bool,
}

/// The result of a copy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    /// Source store and prefix.
    pub source: String,
    /// Destination store and prefix.
    pub destination: String,
    /// `streaming` or `server-side`.
    pub mode: String,
    /// Objects at the source.
    pub objects_total: u64,
    /// Objects copied by this run.
    pub objects_copied: u64,
    /// Objects already complete and identical at the destination.
    pub objects_skipped: u64,
    /// Objects that could not be copied.
    pub objects_failed: u64,
    /// Objects whose upload resumed from parts written by an earlier run.
    pub objects_resumed: u64,
    /// Destination-only objects deleted (`overwrite`).
    pub objects_deleted: u64,
    /// Bytes at the source.
    pub bytes_total: u64,
    /// Bytes copied by this run (parts reused from an earlier run are not counted).
    pub bytes_copied: u64,
    /// Bytes skipped.
    pub bytes_skipped: u64,
    /// Parts reused from an earlier run.
    pub parts_reused: u64,
    /// Objects whose destination checksum was compared with ours.
    pub objects_verified: u64,
    /// Retries of parts or objects.
    pub retries: u64,
    /// HTTP requests sent to both stores.
    pub requests: u64,
    /// Wall time.
    pub duration_secs: f64,
    /// bytes_copied / duration, MiB/s.
    pub throughput_mib_s: f64,
    /// Time spent moving objects: from the first transfer to the last, after listing and
    /// planning (the window a byte-rate limit governs).
    pub transfer_secs: f64,
    /// objects_copied / duration.
    pub objects_per_sec: f64,
    /// Where the ledger lives.
    pub ledger: Option<String>,
    /// The failed objects.
    pub failures: Vec<ObjectFailure>,
}

impl CopyReport {
    /// Whether every object is at the destination.
    pub fn is_complete(&self) -> bool {
        self.objects_failed == 0
    }
}
