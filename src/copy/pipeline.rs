//! Copying one object: server-side, single PUT, resumable multipart, or sequential multipart for
//! stores without resumable uploads.
//!
//! Owns the per-object and per-part work and the multipart lifecycle: an upload that fails for
//! good is aborted before the error returns; a failed part is retried in place; completion is
//! checked against the MD5s computed while streaming.

use std::ops::Range;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use tokio::sync::SemaphorePermit;

use super::Ctx;
use super::buffers::BufferPool;
use super::checksum::{self, Md5Digest, StreamMd5};
use super::idle;
use super::ledger::{DonePart, OpenUpload, Record};
use super::plan::{Action, PlanItem};
use crate::storage::{StorageError, StorageErrorKind};

/// S3 allows at most this many parts per upload.
const MAX_PARTS: u64 = 10_000;

pub(super) async fn copy_item(ctx: &Ctx, item: PlanItem) -> Result<(), StorageError> {
    // Cancelling a single request leaves nothing behind; uploads abort themselves below.
    let dst = ctx.job.dst.name();
    if ctx.server_side {
        let key = ctx.dst_key(&item.rel);
        return ctx
            .limits
            .unless_cancelled(dst, &key, server_side(ctx, &item))
            .await;
    }
    if item.size < ctx.cfg.multipart_threshold {
        let key = ctx.dst_key(&item.rel);
        return ctx
            .limits
            .unless_cancelled(dst, &key, single(ctx, &item))
            .await;
    }
    if !ctx.job.dst.resumable_multipart() {
        return sequential(ctx, &item).await;
    }
    let resume = match &item.action {
        Action::Resume(u) => Some(u.clone()),
        _ => None,
    };
    match multipart(ctx, &item, resume.clone()).await {
        // The server forgot the upload (expired or cleaned up): start over once.
        Err(e) if resume.is_some() && e.kind() == StorageErrorKind::UploadNotFound => {
            multipart(ctx, &item, None).await
        }
        other => other,
    }
}

impl Ctx {
    /// Takes memory permits for a buffer of `len` bytes.
    async fn buffer_permit(&self, len: u64) -> SemaphorePermit<'_> {
        let kib = u32::try_from(len.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.memory_kib);
        self.memory
            .acquire_many(kib)
            .await
            .expect("the memory semaphore is never closed")
    }

    fn record(&self, record: Record) {
        if let Some(l) = &self.ledger
            && let Err(e) = l.append(&record)
        {
            tracing::warn!(ledger = %l.path().display(), "cannot append to the ledger: {e}");
        }
    }

    fn on_retry<'a>(&'a self, rel: &'a str, what: &'a str) -> impl FnMut(&StorageError, u32) + 'a {
        move |e, attempt| {
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(key = rel, what, attempt, "retrying: {e}");
            self.observer.retry(rel, what, attempt, e);
        }
    }

    fn finished(&self, rel: &str, size: u64, bytes: u64, verified: bool) {
        self.counters.copied.fetch_add(1, Ordering::Relaxed);
        if verified {
            self.counters.verified.fetch_add(1, Ordering::Relaxed);
        }
        self.counters
            .bytes_copied
            .fetch_add(bytes, Ordering::Relaxed);
        self.observer.object_done(rel, size);
    }

    /// Reads `range` of `item`'s source object (all of it when `None`) through the byte limiter
    /// (at the item's rank) into one buffer of the expected size, handing it on to the MD5
    /// lanes in [`PIECE`]s as it fills. With `hash` at [`Hash::UnlessSourceMd5`], a whole object whose ETag is its MD5
    /// is not hashed: that ETag is the digest.
    async fn fetch(
        &self,
        item: &PlanItem,
        range: Option<Range<u64>>,
        expected: u64,
        hash: Hash,
    ) -> Result<Fetched<'_>, StorageError> {
        let key = self.src_key(&item.rel);
        let whole = range.is_none();
        let object = self.job.src.get(&key, range).await?;
        let source_md5 = object
            .etag
            .as_deref()
            .filter(|_| whole)
            .and_then(checksum::parse_md5);
        let md5 = match (hash, source_md5) {
            (Hash::UnlessSourceMd5, Some(d)) => Digest::Source(d),
            _ => Digest::Stream(StreamMd5::new(expected)),
        };
        let mut stream = object.stream;
        let wrong_size = |got: u64| {
            StorageError::integrity(
                self.job.src.name(),
                "GET",
                &key,
                format!("read {got} bytes, expected {expected}"),
            )
        };
        let capacity = usize::try_from(expected).map_err(|_| wrong_size(0))?;
        let mut fetched = Fetched {
            pieces: Vec::new(),
            md5,
            src_etag: object.etag,
            spare: Spare {
                buf: self.buffers.take(capacity),
                len: capacity,
                pool: &self.buffers,
            },
        };
        let _streaming = (expected >= idle::LARGE).then(idle::Streaming::start);
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            self.limits.throttle(chunk.len() as u64, item.rank).await;
            got += chunk.len() as u64;
            if got > expected {
                return Err(wrong_size(got));
            }
            fetched.spare.buf.extend_from_slice(&chunk);
            while fetched.spare.buf.len() >= PIECE {
                // Pieces of one size keep the lanes in step.
                fetched.push(PIECE);
            }
        }
        if got != expected {
            return Err(wrong_size(got));
        }
        if !fetched.spare.buf.is_empty() {
            fetched.push(fetched.spare.buf.len());
        }
        Ok(fetched)
    }
}

/// Whether [`Ctx::fetch`] hashes what it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hash {
    Always,
    /// Not when the source's ETag is the MD5 of the whole object.
    UnlessSourceMd5,
}

/// Where the MD5 of fetched bytes comes from.
enum Digest {
    /// Hashed while streaming.
    Stream(StreamMd5),
    /// The source object's ETag: its bytes must have it.
    Source(Md5Digest),
}

/// Bytes read from the source, still being hashed, with the source object's ETag.
struct Fetched<'a> {
    pieces: Vec<Bytes>,
    md5: Digest,
    src_etag: Option<String>,
    spare: Spare<'a>,
}

impl<'a> Fetched<'a> {
    /// Splits off the first `len` buffered bytes as the next piece.
    fn push(&mut self, len: usize) {
        let piece = self.spare.buf.split_to(len).freeze();
        if let Digest::Stream(md5) = &mut self.md5 {
            md5.update(piece.clone());
        }
        self.pieces.push(piece);
    }

    /// The pieces as a PUT body. Keep the [`Spare`] until the PUT is done: dropped then, it
    /// returns the buffer to the pool.
    fn into_payload(self) -> (PutPayload, Digest, Option<String>, Spare<'a>) {
        let payload = self.pieces.into_iter().collect();
        (payload, self.md5, self.src_etag, self.spare)
    }
}

/// The buffer fetched pieces were split from. Dropped, it goes back to the pool, which keeps
/// it only if no piece is still alive.
struct Spare<'a> {
    buf: BytesMut,
    len: usize,
    pool: &'a BufferPool,
}

impl Drop for Spare<'_> {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf), self.len);
    }
}

/// How much of a buffer is handed to the MD5 lanes at a time.
const PIECE: usize = 64 * 1024;

/// The digest of fetched bytes. A stream without a digest (the hashing thread stopped) is an
/// error for the object.
async fn digest(ctx: &Ctx, md5: Digest, key: &str) -> Result<Md5Digest, StorageError> {
    let md5 = match md5 {
        Digest::Source(d) => return Ok(d),
        Digest::Stream(md5) => md5,
    };
    md5.finish().await.ok_or_else(|| {
        StorageError::integrity(
            ctx.job.src.name(),
            "GET",
            key,
            "no checksum: the hashing thread stopped".into(),
        )
    })
}

impl Ctx {
    /// Checks bytes hashed here against the source's ETag when it is an MD5. A mismatch is
    /// damage on the way, unless an earlier read of the object (`earlier`) gave the same
    /// digest: then the source's ETags are not MD5s (SSE-KMS or SSE-C on AWS), and they are
    /// not checked again.
    fn check_source_md5(
        &self,
        rel: &str,
        src_etag: Option<&str>,
        md5: Md5Digest,
        earlier: &std::sync::Mutex<Option<Md5Digest>>,
    ) -> Result<(), StorageError> {
        let hex = checksum::md5_hex(&md5);
        let Some(src) = src_etag.filter(|e| checksum::is_plain_md5(e)) else {
            return Ok(());
        };
        if checksum::same_etag(src, &hex) || !self.source_etags_md5.load(Ordering::Relaxed) {
            return Ok(());
        }
        if seen_before(earlier, md5) {
            if self.source_etags_md5.swap(false, Ordering::Relaxed) {
                tracing::warn!(
                    store = self.job.src.name(),
                    key = rel,
                    etag = src,
                    md5 = hex,
                    "two reads agree with each other but not with the ETag: this source's ETags \
                     are not MD5s (encrypted objects?); objects are checked by the MD5 computed \
                     here from now on"
                );
            }
            return Ok(());
        }
        Err(StorageError::integrity(
            self.job.src.name(),
            "GET",
            &self.src_key(rel),
            format!("the bytes read have MD5 {hex}, the source reports {src}"),
        ))
    }

    /// Checks the ETag the destination reports for a body with MD5 `md5`, sent with that
    /// `Content-MD5` or not (`md5_sent`). Returns whether the body is verified. A mismatch is
    /// damage on the way, unless the store accepted the same bytes with their `Content-MD5`
    /// before (`earlier`) and now again: then its ETags are not MD5s, and from now on the
    /// store's own check of `Content-MD5` is what verifies a body.
    fn check_dest_etag(
        &self,
        check: DestCheck<'_>,
        md5: Md5Digest,
        md5_sent: bool,
        earlier: &std::sync::Mutex<Option<Md5Digest>>,
    ) -> Result<bool, StorageError> {
        if !self.job.dst.etag_is_md5() {
            return Ok(false);
        }
        let hex = checksum::md5_hex(&md5);
        if checksum::same_etag(check.etag, &hex) {
            return Ok(true);
        }
        if !self.dest_etags_md5.load(Ordering::Relaxed) && md5_sent {
            return Ok(true);
        }
        if seen_before(earlier, md5) && md5_sent {
            if self.dest_etags_md5.swap(false, Ordering::Relaxed) {
                tracing::warn!(
                    store = self.job.dst.name(),
                    key = check.key,
                    etag = check.etag,
                    md5 = hex,
                    "the destination accepted these bytes twice with their Content-MD5 and \
                     reports another ETag: its ETags are not MD5s (encrypted bucket?); bodies \
                     are verified by the store's Content-MD5 check from now on"
                );
            }
            return Ok(true);
        }
        Err(integrity(
            self, check.op, check.key, check.what, check.etag, &hex,
        ))
    }
}

/// Whether the last mismatch recorded in `earlier` was of bytes with this same digest; records
/// `md5` as the latest. Two mismatches of identical bytes are not damage on the way (that
/// differs from one transfer to the next) but a store whose ETags are not MD5s.
fn seen_before(earlier: &std::sync::Mutex<Option<Md5Digest>>, md5: Md5Digest) -> bool {
    let before = earlier
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .replace(md5);
    before == Some(md5)
}

/// What [`Ctx::check_dest_etag`] checks: the request, the key and the ETag reported.
struct DestCheck<'a> {
    op: &'static str,
    key: &'a str,
    what: &'a str,
    etag: &'a str,
}

fn integrity(
    ctx: &Ctx,
    op: &'static str,
    key: &str,
    what: &str,
    got: &str,
    want: &str,
) -> StorageError {
    StorageError::integrity(
        ctx.job.dst.name(),
        op,
        key,
        format!("{what}: server reports {got}, the bytes sent have {want}"),
    )
}

async fn server_side(ctx: &Ctx, item: &PlanItem) -> Result<(), StorageError> {
    let (from, to) = (ctx.src_key(&item.rel), ctx.dst_key(&item.rel));
    let info = ctx
        .cfg
        .retry
        .run(
            |_| async {
                ctx.job.dst.copy_within(&from, &to).await?;
                ctx.job.dst.head(&to).await
            },
            ctx.on_retry(&item.rel, "server-side copy"),
        )
        .await?;
    if info.size != item.size {
        return Err(integrity(
            ctx,
            "COPY",
            &to,
            "size",
            &info.size.to_string(),
            &item.size.to_string(),
        ));
    }
    let verified = info
        .etag
        .as_deref()
        .zip(item.src_etag.as_deref())
        .is_some_and(|(a, b)| checksum::same_etag(a, b));
    ctx.record(Record::Done {
        key: item.rel.clone(),
        size: item.size,
        src_etag: item.src_etag.clone(),
        dst_etag: info.etag.clone(),
        md5: info.etag.unwrap_or_default(),
    });
    ctx.observer.bytes(item.size);
    ctx.finished(&item.rel, item.size, item.size, verified);
    Ok(())
}

async fn single(ctx: &Ctx, item: &PlanItem) -> Result<(), StorageError> {
    let dst_key = ctx.dst_key(&item.rel);
    let _permit = ctx.buffer_permit(item.size).await;
    let earlier = std::sync::Mutex::new(None);
    let earlier_put = std::sync::Mutex::new(None);
    let (etag, md5, src_etag, verified) = ctx
        .cfg
        .retry
        .run(
            |attempt| {
                let earlier = &earlier;
                let earlier_put = &earlier_put;
                let dst_key = &dst_key;
                async move {
                    // First try, to a store that reports MD5 ETags: a source ETag that is an
                    // MD5 is the digest. The destination refuses other bytes (Content-MD5) and
                    // must report it back, so nothing is hashed here. A retry hashes, to tell
                    // damage on the way from a source whose ETags are not MD5s.
                    let hash = if attempt == 0
                        && ctx.job.dst.etag_is_md5()
                        && ctx.source_etags_md5.load(Ordering::Relaxed)
                    {
                        Hash::UnlessSourceMd5
                    } else {
                        Hash::Always
                    };
                    let fetched = ctx.fetch(item, None, item.size, hash).await?;
                    let (payload, md5, src_etag, _spare) = fetched.into_payload();
                    let hashed = matches!(md5, Digest::Stream(_));
                    let md5 = digest(ctx, md5, &item.rel).await?;
                    if hashed {
                        // Checked before the PUT: bytes that differ from the source never
                        // reach B.
                        ctx.check_source_md5(&item.rel, src_etag.as_deref(), md5, earlier)?;
                    }
                    let hex = checksum::md5_hex(&md5);
                    let etag = ctx.job.dst.put_with_md5(dst_key, payload, md5).await?;
                    let check = DestCheck {
                        op: "PUT",
                        key: dst_key,
                        what: "ETag",
                        etag: etag.as_deref().unwrap_or("none"),
                    };
                    let verified = ctx.check_dest_etag(check, md5, true, earlier_put)?;
                    Ok((etag, hex, src_etag, verified))
                }
            },
            ctx.on_retry(&item.rel, "object"),
        )
        .await?;
    ctx.record(Record::Done {
        key: item.rel.clone(),
        size: item.size,
        src_etag: src_etag.or_else(|| item.src_etag.clone()),
        dst_etag: etag,
        md5,
    });
    ctx.observer.bytes(item.size);
    ctx.finished(&item.rel, item.size, item.size, verified);
    Ok(())
}

/// Part size for an object: the configured one, grown so the object fits in 10,000 parts.
fn part_size_for(configured: u64, size: u64) -> u64 {
    let min = size.div_ceil(MAX_PARTS);
    configured.max(min.div_ceil(1 << 20) << 20)
}

fn part_range(index: u64, part_size: u64, size: u64) -> Range<u64> {
    let start = index * part_size;
    start..(start + part_size).min(size)
}

async fn multipart(
    ctx: &Ctx,
    item: &PlanItem,
    resume: Option<OpenUpload>,
) -> Result<(), StorageError> {
    let dst_key = ctx.dst_key(&item.rel);
    let mut src_etag = item.src_etag.clone();
    let (upload_id, part_size, mut done) = match resume {
        Some(u) => {
            ctx.counters.resumed.fetch_add(1, Ordering::Relaxed);
            ctx.counters
                .parts_reused
                .fetch_add(u.parts.len() as u64, Ordering::Relaxed);
            (u.upload_id, u.part_size, u.parts)
        }
        None => {
            if item.src_etag.is_none() {
                // The listing gave no ETag: take it from the source, so a later run can tell
                // whether this upload still belongs to the same source object.
                let key = ctx.src_key(&item.rel);
                src_etag = ctx
                    .cfg
                    .retry
                    .run(|_| ctx.job.src.head(&key), ctx.on_retry(&item.rel, "HEAD"))
                    .await?
                    .etag;
            }
            let part_size = part_size_for(ctx.cfg.part_size, item.size);
            let id = ctx
                .cfg
                .retry
                .run(
                    |_| ctx.job.dst.create_multipart(&dst_key),
                    ctx.on_retry(&item.rel, "create upload"),
                )
                .await?;
            ctx.record(Record::Upload {
                key: item.rel.clone(),
                size: item.size,
                src_etag: src_etag.clone(),
                upload_id: id.clone(),
                part_size,
                store: Some(ctx.job.dst.name().to_string()),
                dst: Some(dst_key.clone()),
            });
            (id, part_size, Default::default())
        }
    };
    let parts = item.size.div_ceil(part_size);
    let todo: Vec<u64> = (0..parts)
        .filter(|i| !done.contains_key(&(*i as usize)))
        .collect();

    let parts = futures::stream::iter(todo)
        .map(|index| copy_part(ctx, item, &dst_key, &upload_id, index, part_size))
        .buffer_unordered(ctx.cfg.parts_per_object.max(1))
        .try_for_each(|(index, part)| {
            done.insert(index, part);
            futures::future::ready(Ok(()))
        });
    let result = ctx
        .limits
        .unless_cancelled(ctx.job.dst.name(), &dst_key, parts)
        .await;
    let result = match result {
        Ok(()) => complete(ctx, item, src_etag, &dst_key, &upload_id, &done).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        if e.kind() != StorageErrorKind::UploadNotFound {
            // Nothing half-written stays behind: free the parts on the server.
            let abort = ctx
                .cfg
                .retry
                .run(
                    |_| ctx.job.dst.abort_multipart(&dst_key, &upload_id),
                    |_, _| {},
                )
                .await;
            if let Err(abort_err) = abort
                && abort_err.kind() != StorageErrorKind::UploadNotFound
            {
                tracing::warn!(key = %dst_key, "cannot abort the multipart upload: {abort_err}");
            }
        }
        ctx.record(Record::UploadEnd {
            key: item.rel.clone(),
            upload_id: upload_id.clone(),
        });
        return Err(e);
    }
    Ok(())
}

async fn copy_part(
    ctx: &Ctx,
    item: &PlanItem,
    dst_key: &str,
    upload_id: &str,
    index: u64,
    part_size: u64,
) -> Result<(usize, DonePart), StorageError> {
    let range = part_range(index, part_size, item.size);
    let len = range.end - range.start;
    let _permit = ctx.buffer_permit(len).await;
    let what = format!("part {}", index + 1);
    let earlier = std::sync::Mutex::new(None);
    let part = ctx
        .cfg
        .retry
        .run(
            |attempt| {
                let (what, earlier, range) = (&what, &earlier, range.clone());
                async move {
                    let fetched = ctx.fetch(item, Some(range), len, Hash::Always).await?;
                    let (payload, md5, _, _spare) = fetched.into_payload();
                    let index = index as usize;
                    // A part is invisible until the upload completes: it is sent while the
                    // last of it is hashed. A retry, or a store whose ETags are not MD5s, gets
                    // the digest first, as Content-MD5.
                    let md5_first = attempt > 0 || !ctx.dest_etags_md5.load(Ordering::Relaxed);
                    let (etag, md5) = if md5_first {
                        let md5 = digest(ctx, md5, &item.rel).await?;
                        let put = ctx
                            .job
                            .dst
                            .put_part_with_md5(dst_key, upload_id, index, payload, md5);
                        (put.await?, md5)
                    } else {
                        let put = ctx.job.dst.put_part(dst_key, upload_id, index, payload);
                        let (etag, md5) = tokio::join!(put, digest(ctx, md5, &item.rel));
                        (etag?, md5?)
                    };
                    let check = DestCheck {
                        op: "UploadPart",
                        key: dst_key,
                        what,
                        etag: &etag,
                    };
                    ctx.check_dest_etag(check, md5, md5_first, earlier)?;
                    Ok(DonePart { etag, md5 })
                }
            },
            ctx.on_retry(&item.rel, &what),
        )
        .await?;
    ctx.record(Record::Part {
        key: item.rel.clone(),
        upload_id: upload_id.to_string(),
        index: index as usize,
        etag: part.etag.clone(),
        md5: checksum::md5_hex(&part.md5),
    });
    ctx.observer.bytes(len);
    ctx.counters.bytes_copied.fetch_add(len, Ordering::Relaxed);
    Ok((index as usize, part))
}

async fn complete(
    ctx: &Ctx,
    item: &PlanItem,
    src_etag: Option<String>,
    dst_key: &str,
    upload_id: &str,
    done: &std::collections::BTreeMap<usize, DonePart>,
) -> Result<(), StorageError> {
    let etags: Vec<String> = done.values().map(|p| p.etag.clone()).collect();
    let md5s: Vec<Md5Digest> = done.values().map(|p| p.md5).collect();
    let expected = checksum::multipart_etag(&md5s);
    let etag = ctx
        .cfg
        .retry
        .run(
            |attempt| {
                let etags = &etags;
                let expected = &expected;
                async move {
                    match ctx
                        .job
                        .dst
                        .complete_multipart(dst_key, upload_id, etags)
                        .await
                    {
                        // A retried completion whose first try went through: the upload is gone
                        // and the object is there.
                        Err(e) if attempt > 0 && e.kind() == StorageErrorKind::UploadNotFound => {
                            let info = ctx.job.dst.head(dst_key).await.map_err(|_| e)?;
                            let dest_md5 = ctx.dest_etags_md5.load(Ordering::Relaxed);
                            if info.size == item.size
                                && (!dest_md5
                                    || info
                                        .etag
                                        .as_deref()
                                        .is_some_and(|e| checksum::same_etag(e, expected)))
                            {
                                Ok(info.etag)
                            } else {
                                Err(StorageError::integrity(
                                    ctx.job.dst.name(),
                                    "CompleteMultipartUpload",
                                    dst_key,
                                    "the upload vanished without producing the object".into(),
                                ))
                            }
                        }
                        other => other,
                    }
                }
            },
            ctx.on_retry(&item.rel, "complete upload"),
        )
        .await?;
    let dest_md5 = ctx.dest_etags_md5.load(Ordering::Relaxed);
    let verified = match etag.as_deref() {
        Some(got) if ctx.job.dst.etag_is_md5() && dest_md5 && checksum::is_multipart_md5(got) => {
            if !checksum::same_etag(got, &expected) {
                return Err(integrity(
                    ctx,
                    "CompleteMultipartUpload",
                    dst_key,
                    "ETag",
                    got,
                    &expected,
                ));
            }
            true
        }
        _ => {
            let info = ctx.job.dst.head(dst_key).await?;
            if info.size != item.size {
                return Err(integrity(
                    ctx,
                    "CompleteMultipartUpload",
                    dst_key,
                    "size",
                    &info.size.to_string(),
                    &item.size.to_string(),
                ));
            }
            // A store whose ETags are not MD5s checked every part's Content-MD5.
            ctx.job.dst.etag_is_md5() && !dest_md5
        }
    };
    ctx.record(Record::Done {
        key: item.rel.clone(),
        size: item.size,
        src_etag,
        dst_etag: etag,
        md5: expected,
    });
    ctx.counters.copied.fetch_add(1, Ordering::Relaxed);
    if verified {
        ctx.counters.verified.fetch_add(1, Ordering::Relaxed);
    }
    ctx.observer.object_done(&item.rel, item.size);
    Ok(())
}

/// Multipart write to a store without resumable uploads: one GET streamed into parts written
/// in order. Retried as a whole object.
async fn sequential(ctx: &Ctx, item: &PlanItem) -> Result<(), StorageError> {
    let src_key = ctx.src_key(&item.rel);
    let dst_key = ctx.dst_key(&item.rel);
    let part_size = part_size_for(ctx.cfg.part_size, item.size);
    ctx.cfg
        .retry
        .run(
            |_| async {
                let mut upload = ctx.job.dst.start_sequential_upload(&dst_key).await?;
                let body = async {
                    let mut stream = ctx.job.src.get(&src_key, None).await?.stream;
                    let mut pending = futures::stream::FuturesOrdered::new();
                    let mut buf: Vec<Bytes> = Vec::new();
                    let mut buffered = 0u64;
                    let mut total = 0u64;
                    let mut permit = ctx.buffer_permit(part_size.min(item.size)).await;
                    let put_err = |e: object_store::Error| {
                        StorageError::from_object_store(ctx.job.dst.name(), "PUT", &dst_key, e)
                    };
                    loop {
                        let next = stream.next().await.transpose()?;
                        if let Some(chunk) = &next {
                            ctx.limits.throttle(chunk.len() as u64, item.rank).await;
                            buffered += chunk.len() as u64;
                            total += chunk.len() as u64;
                            buf.push(chunk.clone());
                        }
                        if buffered >= part_size || (next.is_none() && buffered > 0) {
                            pending
                                .push_back(upload.put_part(PutPayload::from_iter(buf.drain(..))));
                            buffered = 0;
                            if pending.len() >= ctx.cfg.parts_per_object.max(1) {
                                pending.next().await.transpose().map_err(put_err)?;
                            }
                            drop(permit);
                            permit = ctx.buffer_permit(part_size.min(item.size)).await;
                        }
                        if next.is_none() {
                            break;
                        }
                    }
                    while let Some(r) = pending.next().await {
                        r.map_err(put_err)?;
                    }
                    drop(permit);
                    if total != item.size {
                        return Err(StorageError::integrity(
                            ctx.job.src.name(),
                            "GET",
                            &src_key,
                            format!("read {total} bytes, expected {}", item.size),
                        ));
                    }
                    upload.complete().await.map_err(put_err)?;
                    Ok(())
                };
                let result = ctx
                    .limits
                    .unless_cancelled(ctx.job.dst.name(), &dst_key, body)
                    .await;
                if result.is_err() {
                    let _ = upload.abort().await;
                }
                result
            },
            ctx.on_retry(&item.rel, "object"),
        )
        .await?;
    let info = ctx.job.dst.head(&dst_key).await?;
    if info.size != item.size {
        return Err(integrity(
            ctx,
            "PUT",
            &dst_key,
            "size",
            &info.size.to_string(),
            &item.size.to_string(),
        ));
    }
    ctx.record(Record::Done {
        key: item.rel.clone(),
        size: item.size,
        src_etag: item.src_etag.clone(),
        dst_etag: info.etag,
        md5: String::new(),
    });
    ctx.observer.bytes(item.size);
    ctx.finished(&item.rel, item.size, item.size, false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_and_fit_s3_limits() {
        assert_eq!(part_size_for(16 << 20, 300 << 20), 16 << 20);
        // 1 TiB at 16 MiB would need 65,536 parts: grow to fit 10,000.
        let big = 1u64 << 40;
        let ps = part_size_for(16 << 20, big);
        assert!(big.div_ceil(ps) <= MAX_PARTS);
        assert_eq!(ps % (1 << 20), 0);
        let size = 100u64;
        let ranges: Vec<_> = (0..size.div_ceil(30))
            .map(|i| part_range(i, 30, size))
            .collect();
        assert_eq!(ranges, vec![0..30, 30..60, 60..90, 90..100]);
    }
}
