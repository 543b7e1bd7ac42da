//! The pipelined streaming copier: every object under a prefix of store A to a prefix of store B.
//!
//! Owns planning (what B already has, what the ledger remembers), the object and part pipeline,
//! integrity checks, resume and the report. The stages, from the outside in:
//!
//! 1. [`CopyPlan`] (module `plan`): list both sides, skip what is complete and identical, resume
//!    open multipart uploads from the [`ledger`], refuse a destination holding something else
//!    unless `overwrite`.
//! 2. Object stage: at most `concurrency` objects in flight, each a tokio task so hashing and
//!    HTTP work spread over the cores. Objects below the multipart threshold go in one PUT;
//!    larger ones as multipart uploads; same bucket on both sides as server-side copies.
//! 3. Part stage, per object: at most `parts_per_object` parts in flight, each a ranged GET
//!    streamed into a buffer and PUT as one part.
//! 4. Wrappers around every GET/PUT, in this order: memory budget (a semaphore of KiB permits
//!    taken before a buffer fills, so peak buffer memory never exceeds `max_buffer_memory`),
//!    retry with backoff (per part, or per small object), byte-rate limit (per chunk read, shared
//!    by the process), and, inside the store, the request-rate limit of the HTTP gate.
//!
//! Integrity: a single PUT's ETag must equal the object's MD5; each part's ETag must equal the
//! part's MD5 and the completed upload's ETag the multipart form (`md5-of-md5s-N`). The MD5 of
//! a single object whose source ETag is its MD5 is that ETag, sent as `Content-MD5` so an S3
//! destination refuses other bytes; everything else is hashed while streaming (in SIMD lanes
//! across the transfers in flight, module `checksum`) and checked against a source ETag that is
//! a plain MD5. S3 stores whose ETags turn out not to be MD5s (SSE-KMS, SSE-C) are recognised
//! when identical bytes mismatch twice: a source is then checked by the MD5 computed here, a
//! destination by its own check of the `Content-MD5` every body is then sent with. Stores with
//! no MD5 ETags at all (local, native GCS, Azure) are checked by size. A mismatch is a
//! retryable error for that part or object, never a silent success.

mod buffers;
pub mod checksum;
pub mod gate;
pub mod idle;
pub mod ledger;
mod pipeline;
pub mod plan;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::Semaphore;

pub use crate::retry::{RetryPolicy, Retryable};
use crate::storage::{HttpGate, ObjectInfo, StorageError, StorageErrorKind, Store};
use crate::throttle::ByteLimiter;
pub use gate::{Relay, SourceGate};
pub use ledger::Ledger;
pub use plan::{Action, CopyPlan};
pub use report::{CopyObserver, CopyReport, NoProgress, ObjectFailure, PlanSummary};

/// Validated copier settings.
#[derive(Debug, Clone)]
pub struct CopyConfig {
    /// Objects in flight.
    pub concurrency: usize,
    /// Parts in flight per multipart object.
    pub parts_per_object: usize,
    /// Multipart part size in bytes.
    pub part_size: u64,
    /// Objects of at least this size go as multipart uploads.
    pub multipart_threshold: u64,
    /// Upper bound of the bytes buffered at once by the whole copy.
    pub max_buffer_memory: u64,
    /// Retry budget and backoff for each part or small object.
    pub retry: RetryPolicy,
}

/// The profile defaults (`crate::config`), for callers that build a copy without a profile.
impl Default for CopyConfig {
    fn default() -> Self {
        use crate::config;
        Self {
            concurrency: config::DEFAULT_CONCURRENCY,
            parts_per_object: config::DEFAULT_PARTS_PER_OBJECT,
            part_size: config::DEFAULT_PART_SIZE,
            multipart_threshold: config::DEFAULT_MULTIPART_THRESHOLD,
            max_buffer_memory: config::DEFAULT_MAX_BUFFER_MEMORY,
            retry: RetryPolicy::default(),
        }
    }
}

/// Errors that stop a copy as a whole. Failures of single objects are not errors: they are
/// listed in the [`CopyReport`].
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Listing or probing a store failed in a way that retrying did not fix.
    #[error("{role}: {source}")]
    Store {
        role: &'static str,
        #[source]
        source: StorageError,
    },
    /// A failure during the copy that every other object would meet too (credentials revoked,
    /// bucket deleted).
    #[error("copy stopped: {source}")]
    Fatal {
        #[source]
        source: StorageError,
    },
    /// Source and destination are the same place.
    #[error("source and destination are the same: {store} prefix `{prefix}`")]
    SameLocation { store: String, prefix: String },
    /// Nothing to copy.
    #[error("nothing to copy: {store} has no objects under `{prefix}/`")]
    EmptySource { store: String, prefix: String },
    /// The destination holds different data under the prefix.
    #[error(
        "{store} already holds different data under `{prefix}/` ({count} object(s) differ, e.g. `{example}`: {reason}); use --overwrite to replace it"
    )]
    DestinationConflict {
        store: String,
        prefix: String,
        count: usize,
        example: String,
        reason: String,
    },
    /// The copy was cancelled; its open multipart uploads were aborted.
    #[error("copy cancelled")]
    Cancelled,
    /// The ledger file cannot be used.
    #[error("ledger {}: {source}", path.display())]
    Ledger {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CopyError {
    /// Whether running the same copy again later may succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store { source, .. } | Self::Fatal { source } => source.is_retryable(),
            _ => false,
        }
    }
}

/// One copy: every object under `src_prefix` of `src` to the same relative key under
/// `dst_prefix` of `dst`.
#[derive(Debug, Clone)]
pub struct CopyJob {
    /// Source store.
    pub src: Store,
    /// Source prefix (no trailing `/`).
    pub src_prefix: String,
    /// Destination store.
    pub dst: Store,
    /// Destination prefix (no trailing `/`).
    pub dst_prefix: String,
    /// Replace differing objects and delete destination-only ones instead of refusing.
    pub overwrite: bool,
    /// Relative keys to copy only after every other object is copied (a backup's meta files).
    pub last: Vec<String>,
    /// Ledger file; `None` disables resume of multipart uploads across runs.
    pub ledger: Option<PathBuf>,
    /// Copy server-side when both sides are the same bucket (`transfer.mode` other than
    /// `streaming`, milvus-backup's `crossStorage: false`).
    pub allow_server_side: bool,
    /// Copy exactly these objects instead of everything under `src_prefix`: each is the key
    /// relative to `dst_prefix` and the source object (full key, size, ETag if known). Used
    /// where the destination layout differs from the source's (a backup's group directories).
    /// `src_prefix` then only names the copy (ledger path, report).
    pub objects: Option<Vec<(String, ObjectInfo)>>,
    /// Copy these relative keys first, in this order (see [`CopyPlan::order_first`]), then
    /// the rest largest first: for a consumer that uses groups of objects as they arrive (a
    /// restore importing each segment once its binlogs are there).
    pub order: Option<Vec<String>>,
    /// Wait before reading each object until the gate says it exists: the source is being
    /// written by another copy at the same time ([`gate`]).
    pub gate: Option<Arc<dyn SourceGate>>,
}

impl CopyJob {
    /// A copy of everything under `src_prefix` to `dst_prefix`, with no resume ledger, no
    /// overwrite and server-side copies allowed.
    pub fn prefix(src: Store, src_prefix: &str, dst: Store, dst_prefix: &str) -> CopyJob {
        CopyJob {
            src,
            src_prefix: crate::storage::layout::join(&[src_prefix]),
            dst,
            dst_prefix: crate::storage::layout::join(&[dst_prefix]),
            overwrite: false,
            last: Vec::new(),
            ledger: None,
            allow_server_side: true,
            objects: None,
            order: None,
            gate: None,
        }
    }
}

/// The limits a copy runs under, and its stop signal.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// The flow's own byte-rate limit: its objects are served in their copy order
    /// ([`ByteLimiter::acquire_ranked`]).
    pub bytes: Option<Arc<ByteLimiter>>,
    /// Byte-rate limits shared with other flows (the daemon's), served first come first
    /// served: one flow's order says nothing against another's.
    pub shared_bytes: Vec<Arc<ByteLimiter>>,
    /// The HTTP gate of the stores (for request counts).
    pub gate: Option<Arc<HttpGate>>,
    /// Cancelled: open uploads are aborted, nothing new starts, and the copy returns
    /// [`CopyError::Cancelled`].
    pub cancel: tokio_util::sync::CancellationToken,
}

impl Limits {
    /// Waits until `bytes` of the object at position `rank` of the copy order may pass every
    /// byte-rate limit.
    pub async fn throttle(&self, bytes: u64, rank: u64) {
        if let Some(own) = &self.bytes {
            own.acquire_ranked(bytes, rank).await;
        }
        for limiter in &self.shared_bytes {
            limiter.acquire(bytes).await;
        }
    }

    /// Runs `f` unless the copy is cancelled first; then `f` is dropped and the error is of
    /// kind [`StorageErrorKind::Cancelled`].
    pub(crate) async fn unless_cancelled<T>(
        &self,
        store: &str,
        key: &str,
        f: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        tokio::select! {
            r = f => r,
            () = self.cancel.cancelled() => Err(StorageError::cancelled(store, key)),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    copied: AtomicU64,
    bytes_copied: AtomicU64,
    resumed: AtomicU64,
    parts_reused: AtomicU64,
    verified: AtomicU64,
    retries: AtomicU64,
}

/// Shared state of one running copy.
struct Ctx {
    job: CopyJob,
    cfg: CopyConfig,
    limits: Limits,
    memory: Semaphore,
    memory_kib: u32,
    buffers: buffers::BufferPool,
    ledger: Option<Ledger>,
    observer: Arc<dyn CopyObserver>,
    counters: Counters,
    server_side: bool,
    stop: AtomicBool,
    /// Whether the source's plain (32-hex) ETags are the MD5s of the objects' bytes. True
    /// until two reads of an object agree with each other but not with its ETag, as with
    /// SSE-KMS or SSE-C encrypted objects on AWS.
    source_etags_md5: AtomicBool,
    /// Whether the destination's ETags are the MD5s of what it stored. True until the store
    /// twice accepts the same bytes, sent with their `Content-MD5`, and reports another ETag,
    /// as with SSE-KMS or SSE-C on AWS; from then on every body is sent with `Content-MD5`,
    /// which the store checks.
    dest_etags_md5: AtomicBool,
    /// Source keys of an explicit object list ([`CopyJob::objects`]), by relative key.
    src_keys: std::collections::HashMap<String, String>,
}

impl Ctx {
    fn src_key(&self, rel: &str) -> String {
        match self.src_keys.get(rel) {
            Some(key) => key.clone(),
            None => crate::storage::layout::join(&[&self.job.src_prefix, rel]),
        }
    }

    fn dst_key(&self, rel: &str) -> String {
        crate::storage::layout::join(&[&self.job.dst_prefix, rel])
    }
}

fn relative(prefix: &str, list: Vec<ObjectInfo>) -> Vec<(String, ObjectInfo)> {
    let strip = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    list.into_iter()
        .filter_map(|o| {
            let rel = o.key.strip_prefix(&strip)?.to_string();
            (!rel.is_empty()).then_some((rel, o))
        })
        .collect()
}

fn overlaps(a: &str, b: &str) -> bool {
    a == b
        || a.is_empty()
        || b.is_empty()
        || a.starts_with(&format!("{b}/"))
        || b.starts_with(&format!("{a}/"))
}

/// Runs a copy to the end.
///
/// Objects that fail are retried per part within the budget, then listed in the report; the
/// copy goes on with the others. The meta keys of [`CopyJob::last`] are copied only when
/// everything else succeeded.
///
/// # Errors
/// [`CopyError`] when the copy cannot start (listing fails, conflict, same location, empty
/// source) or meets a failure every object would meet (credentials, missing bucket).
pub async fn run(
    job: CopyJob,
    cfg: CopyConfig,
    limits: Limits,
    observer: Arc<dyn CopyObserver>,
) -> Result<CopyReport, CopyError> {
    let started = Instant::now();
    let requests_before = limits.gate.as_ref().map_or(0, |g| g.requests());
    let same_bucket = job.src.same_bucket_as(&job.dst);
    let server_side = same_bucket && job.allow_server_side;
    let explicit = job.objects.is_some();
    if same_bucket {
        let clash = match &job.objects {
            None => overlaps(&job.src_prefix, &job.dst_prefix).then(|| job.src_prefix.clone()),
            Some(objects) => objects
                .iter()
                .map(|(rel, o)| (crate::storage::layout::join(&[&job.dst_prefix, rel]), o))
                .find(|(dst, o)| {
                    *dst == o.key || o.key.starts_with(&format!("{}/", job.dst_prefix))
                })
                .map(|(_, o)| o.key.clone()),
        };
        if let Some(prefix) = clash {
            return Err(CopyError::SameLocation {
                store: job.src.name().to_string(),
                prefix,
            });
        }
    }

    // A store that cannot be listed at all is usually misconfigured or down: answer quickly.
    let listing_retry = cfg.retry.preflight();
    let list = |store: Store, prefix: String, role: &'static str| async move {
        listing_retry
            .run(|_| store.list(&prefix), |_, _| {})
            .await
            .map_err(|source| CopyError::Store { role, source })
    };
    // Both sides at once: on a large backup each listing takes a while.
    let src_listing = async {
        match &job.objects {
            Some(_) => Ok(None),
            None => list(job.src.clone(), job.src_prefix.clone(), "source")
                .await
                .map(Some),
        }
    };
    let dst_listing = list(job.dst.clone(), job.dst_prefix.clone(), "destination");
    let (src_list, dst_list) = futures::future::try_join(src_listing, dst_listing).await?;
    let mut src_rel = match (&job.objects, src_list) {
        (Some(objects), _) => objects.clone(),
        (None, Some(src_list)) if !src_list.is_empty() => relative(&job.src_prefix, src_list),
        (None, _) => {
            return Err(CopyError::EmptySource {
                store: job.src.name().to_string(),
                prefix: job.src_prefix.clone(),
            });
        }
    };
    let mut dst_rel = relative(&job.dst_prefix, dst_list);

    let (ledger, state) = match &job.ledger {
        Some(path) => {
            let (l, s) = Ledger::open(path).map_err(|source| CopyError::Ledger {
                path: path.clone(),
                source,
            })?;
            (Some(l), s)
        }
        None => (None, ledger::LedgerState::default()),
    };
    fill_missing_etags(&job, &cfg, &mut src_rel, &mut dst_rel, &state).await?;
    let last_keys = job.last.clone();
    let last: Vec<&str> = last_keys.iter().map(String::as_str).collect();
    let mut plan = CopyPlan::build(&src_rel, &dst_rel, &state, &last);
    if let Some(first) = &job.order {
        plan.order_first(first, &last);
    }
    if let Some(first) = plan.conflicts.first()
        && !job.overwrite
    {
        return Err(CopyError::DestinationConflict {
            store: job.dst.name().to_string(),
            prefix: job.dst_prefix.clone(),
            count: plan.conflicts.len(),
            example: first.rel.clone(),
            reason: first.reason.clone(),
        });
    }

    let mut summary = PlanSummary::default();
    for item in &plan.items {
        summary.objects_total += 1;
        summary.bytes_total += item.size;
        match &item.action {
            Action::Skip => {
                summary.objects_skipped += 1;
                summary.bytes_skipped += item.size;
            }
            Action::Resume(_) => summary.objects_resumed += 1,
            Action::Copy => {}
        }
    }
    observer.planned(&summary);
    for item in plan
        .items
        .iter()
        .filter(|i| matches!(i.action, Action::Skip))
    {
        observer.object_skipped(&item.rel, item.size);
    }

    let memory_kib = u32::try_from(cfg.max_buffer_memory.div_ceil(1024)).unwrap_or(u32::MAX);
    let ctx = Arc::new(Ctx {
        memory: Semaphore::new(memory_kib as usize),
        memory_kib,
        buffers: buffers::BufferPool::default(),
        cfg,
        limits,
        ledger,
        observer,
        counters: Counters::default(),
        server_side,
        stop: AtomicBool::new(false),
        source_etags_md5: AtomicBool::new(true),
        dest_etags_md5: AtomicBool::new(true),
        src_keys: if explicit {
            src_rel
                .iter()
                .map(|(rel, o)| (rel.clone(), o.key.clone()))
                .collect()
        } else {
            Default::default()
        },
        job,
    });

    let (late, early): (Vec<_>, Vec<_>) = plan
        .items
        .into_iter()
        .filter(|i| i.action != Action::Skip)
        .enumerate()
        .map(|(rank, item)| plan::PlanItem {
            rank: rank as u64,
            ..item
        })
        .partition(|i| last.contains(&i.rel.as_str()));
    let mut failures = Vec::new();
    let mut fatal = None;
    let transfer_started = Instant::now();
    run_stage(&ctx, early, &mut failures, &mut fatal).await;
    if failures.is_empty() && fatal.is_none() {
        run_stage(&ctx, late, &mut failures, &mut fatal).await;
    } else {
        for item in late {
            failures.push(ObjectFailure {
                key: item.rel,
                error: "not copied: it marks the copy complete and other objects failed".into(),
                retryable: true,
            });
        }
    }
    let transfer_secs = transfer_started.elapsed().as_secs_f64();
    if ctx.limits.cancel.is_cancelled() {
        return Err(CopyError::Cancelled);
    }
    if let Some(source) = fatal {
        return Err(CopyError::Fatal { source });
    }

    let mut deleted = 0;
    if ctx.job.overwrite && failures.is_empty() {
        for rel in &plan.extra {
            let key = ctx.dst_key(rel);
            ctx.cfg
                .retry
                .run(|_| ctx.job.dst.delete(&key), |_, _| {})
                .await
                .map_err(|source| CopyError::Store {
                    role: "destination",
                    source,
                })?;
            deleted += 1;
        }
    }

    if failures.is_empty()
        && let Some(l) = &ctx.ledger
    {
        // Everything is done: keep only the finished objects, for later verification.
        if let Ok((_, state)) = Ledger::open(l.path()) {
            let _ = l.compact(&state);
        }
    }

    let duration = started.elapsed().as_secs_f64().max(1e-9);
    let c = &ctx.counters;
    let bytes_copied = c.bytes_copied.load(Ordering::Relaxed);
    let objects_copied = c.copied.load(Ordering::Relaxed);
    Ok(CopyReport {
        source: format!("{} {}/", ctx.job.src.name(), ctx.job.src_prefix),
        destination: format!("{} {}/", ctx.job.dst.name(), ctx.job.dst_prefix),
        mode: if ctx.server_side {
            "server-side"
        } else {
            "streaming"
        }
        .into(),
        objects_total: summary.objects_total,
        objects_copied,
        objects_skipped: summary.objects_skipped,
        objects_failed: failures.len() as u64,
        objects_resumed: c.resumed.load(Ordering::Relaxed),
        objects_deleted: deleted,
        bytes_total: summary.bytes_total,
        bytes_copied,
        bytes_skipped: summary.bytes_skipped,
        parts_reused: c.parts_reused.load(Ordering::Relaxed),
        objects_verified: c.verified.load(Ordering::Relaxed),
        retries: c.retries.load(Ordering::Relaxed),
        requests: ctx
            .limits
            .gate
            .as_ref()
            .map_or(0, |g| g.requests() - requests_before),
        duration_secs: duration,
        throughput_mib_s: bytes_copied as f64 / (1024.0 * 1024.0) / duration,
        transfer_secs,
        objects_per_sec: objects_copied as f64 / duration,
        ledger: ctx.ledger.as_ref().map(|l| l.path().display().to_string()),
        failures,
    })
}

/// Some servers list objects without ETags. The plan needs them only for objects whose fate
/// depends on them: present on both sides with the same size, or with an upload to resume.
/// Those are asked for by HEAD, at most `concurrency` at a time.
async fn fill_missing_etags(
    job: &CopyJob,
    cfg: &CopyConfig,
    src: &mut [(String, ObjectInfo)],
    dst: &mut [(String, ObjectInfo)],
    state: &ledger::LedgerState,
) -> Result<(), CopyError> {
    let dst_index: std::collections::HashMap<String, usize> = dst
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    // (side, index, key): side 0 source, 1 destination.
    let mut wanted: Vec<(u8, usize, String)> = Vec::new();
    for (i, (rel, s)) in src.iter().enumerate() {
        let twin = dst_index.get(rel).filter(|&&j| dst[j].1.size == s.size);
        if twin.is_none() && !state.uploads.contains_key(rel) {
            continue;
        }
        if s.etag.is_none() {
            wanted.push((0, i, s.key.clone()));
        }
        if let Some(&j) = twin
            && dst[j].1.etag.is_none()
        {
            wanted.push((1, j, dst[j].1.key.clone()));
        }
    }
    let retry = cfg.retry;
    let found: Vec<(u8, usize, Option<String>)> = futures::stream::iter(wanted)
        .map(|(side, i, key)| async move {
            let store = if side == 0 { &job.src } else { &job.dst };
            retry
                .run(|_| store.head(&key), |_, _| {})
                .await
                .map(|info| (side, i, info.etag))
                .map_err(|source| CopyError::Store {
                    role: if side == 0 { "source" } else { "destination" },
                    source,
                })
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    for (side, i, etag) in found {
        if side == 0 {
            src[i].1.etag = etag;
        } else {
            dst[i].1.etag = etag;
        }
    }
    Ok(())
}

/// Whether an object's failure means every other object would fail too.
fn stops_the_copy(e: &StorageError) -> bool {
    matches!(
        e.kind(),
        StorageErrorKind::Denied
            | StorageErrorKind::BucketNotFound
            | StorageErrorKind::Fatal
            | StorageErrorKind::Cancelled
    )
}

async fn run_stage(
    ctx: &Arc<Ctx>,
    items: Vec<plan::PlanItem>,
    failures: &mut Vec<ObjectFailure>,
    fatal: &mut Option<StorageError>,
) {
    let concurrency = ctx.cfg.concurrency.max(1);
    let mut results = futures::stream::iter(items)
        .map(|item| {
            let ctx = Arc::clone(ctx);
            let rel = item.rel.clone();
            let handle = tokio::spawn(async move {
                if ctx.stop.load(Ordering::Relaxed) || ctx.limits.cancel.is_cancelled() {
                    return Ok(false);
                }
                if let Some(gate) = &ctx.job.gate {
                    let src = ctx.job.src.name();
                    ctx.limits
                        .unless_cancelled(src, &item.rel, gate.ready(&item.rel))
                        .await?;
                    if ctx.stop.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                }
                pipeline::copy_item(&ctx, item).await.map(|()| true)
            });
            async move { (rel, handle.await) }
        })
        .buffer_unordered(concurrency);
    while let Some((rel, joined)) = results.next().await {
        match joined {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                ctx.observer.object_failed(&rel, &e);
                if stops_the_copy(&e) {
                    ctx.stop.store(true, Ordering::Relaxed);
                    if fatal.is_none() {
                        *fatal = Some(e);
                    }
                } else {
                    failures.push(ObjectFailure {
                        key: rel,
                        error: e.to_string(),
                        retryable: e.is_retryable(),
                    });
                }
            }
            Err(join) => failures.push(ObjectFailure {
                key: rel,
                error: format!("copy task failed: {join}"),
                retryable: false,
            }),
        }
    }
}

/// Aborts the multipart uploads that the ledgers under `<state_dir>/ledgers/` record as open
/// in one of `stores` (matched by name; uploads elsewhere are left, with a warning), so a copy
/// that was stopped for good leaves no parts on a server. Returns how many were aborted.
///
/// # Errors
/// A ledger cannot be read, or an abort fails (an upload the server no longer knows is fine).
pub async fn abort_stranded(
    state_dir: &std::path::Path,
    stores: &[&Store],
) -> Result<u64, CopyError> {
    let stranded = ledger::stranded_uploads(state_dir).map_err(|source| CopyError::Ledger {
        path: state_dir.join("ledgers"),
        source,
    })?;
    let mut aborted = 0;
    for u in stranded {
        let Some(store) = stores.iter().find(|s| s.name() == u.store) else {
            tracing::warn!(store = %u.store, key = %u.key, "open upload in another store: left");
            continue;
        };
        match store.abort_multipart(&u.key, &u.upload_id).await {
            Ok(()) => aborted += 1,
            Err(e) if e.kind() == StorageErrorKind::UploadNotFound => {}
            Err(source) => {
                return Err(CopyError::Store {
                    role: "destination",
                    source,
                });
            }
        }
    }
    Ok(aborted)
}

/// A per-run default for ledger placement: `<state_dir>/ledgers/<hash>.jsonl`, the hash over the
/// source and destination names and prefixes (no secrets).
pub fn ledger_path(state_dir: &std::path::Path, job: &CopyJob) -> PathBuf {
    let id = format!(
        "{}\n{}\n{}\n{}",
        job.src.name(),
        job.src_prefix,
        job.dst.name(),
        job.dst_prefix
    );
    state_dir
        .join("ledgers")
        .join(format!("{}.jsonl", checksum::md5_hex_of(id.as_bytes())))
}
