//! `--verify full` from the stored segments: every row of both sides digested straight from
//! the binlogs in each Milvus's bucket, instead of asking both Milvus for every row.
//!
//! Why: Milvus cannot digest rows itself, so a comparison through queries moves every row of
//! both sides through both servers' query paths, and on a small machine that costs most of a
//! migration's time. The binlogs are the same rows at rest; reading them costs the stores a
//! GET each and this process the decoding.
//!
//! How, per side ([`digest_side`]):
//! - the collection's segments (`GetPersistentSegmentInfo`), each listed in the bucket as
//!   `create` lists them for a backup; every segment must be flushed (a growing segment's rows
//!   are not all in its binlogs yet);
//! - every delta log first: the newest delete of each key;
//! - then each segment's insert logs, the i-th log of every field together (Milvus writes them
//!   together, so they hold the same rows); a row is live when no delete of its key is newer
//!   than the row. Its digest hashes every compared field by name (so that field ids may
//!   differ between A and B) and then the key, and it is added into one of [`GROUPS`] groups
//!   chosen by a hash of the key ([`SetDigest`]: order-independent).
//!
//! The stored rows stand for what Milvus serves only when they are as many: each side's live
//! stored rows must equal its Milvus's count, or this method gives up ([`Unavailable`]) and the
//! caller compares through queries. So does any storage or format error: the method is an
//! optimisation, never a verdict of its own.
//!
//! Groups whose digests differ are narrowed down by a second pass over both sides that keeps
//! the keys and digests of those groups only; the keys whose digests differ are then read from
//! both Milvus to name the fields (rows equal as served, e.g. JSON written with its keys in
//! another order, are equal). Beside, a sample of A's live keys is read from both Milvus and
//! compared field by field, so that what both serve is checked too.
//!
//! Memory: the deletes, [`GROUPS`] digests, one chunk of logs per segment in flight (at most
//! [`IN_FLIGHT`] segments and [`CHUNK_BUDGET`] bytes of logs at once, a larger chunk alone),
//! and in the second pass the keys of the differing groups (at most [`NARROW_MAX`] per side).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128, xxh3_128_with_seed};

use super::rows::SetDigest;
use crate::backup::SegmentBackupInfo;
use crate::binlog::{Binlog, Cells};
use crate::milvus::proto::common::SegmentState;
use crate::milvus::proto::schema::CollectionSchema;
use crate::milvus::{MilvusClient, Pk, PkKind, PrimaryKey};
use crate::storage::Store;

/// Groups of keys whose digests are compared.
pub const GROUPS: usize = 4096;
/// Segments read at once per side.
const IN_FLIGHT: usize = 4;
/// Bytes of logs read at once per side (a chunk larger than this is read alone).
const CHUNK_BUDGET: usize = 256 << 20;
/// Keys per side the narrowing pass holds at most; beyond, the caller compares through
/// queries, which narrows down with bounded memory.
pub const NARROW_MAX: u64 = 1 << 20;
/// Milvus's timestamp field.
const TIMESTAMP_FIELD: i64 = 1;

/// Where one side's Milvus keeps its segments: its bucket and root path.
#[derive(Clone, Copy)]
pub struct SegmentStore<'a> {
    /// Milvus's bucket (`minio.bucketName`, or the local directory).
    pub store: &'a Store,
    /// Milvus's `minio.rootPath`.
    pub root: &'a str,
}

/// Why the stored segments cannot stand for a side's rows; the comparison then goes through
/// queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl From<crate::storage::StorageError> for Unavailable {
    fn from(e: crate::storage::StorageError) -> Self {
        Unavailable(e.to_string())
    }
}

impl From<tokio::task::JoinError> for Unavailable {
    fn from(e: tokio::task::JoinError) -> Self {
        Unavailable(format!("a digest task ended: {e}"))
    }
}

impl From<tokio::sync::AcquireError> for Unavailable {
    fn from(e: tokio::sync::AcquireError) -> Self {
        Unavailable(e.to_string())
    }
}

/// One side's stored rows, digested.
#[derive(Debug, Clone)]
pub struct SideDigest {
    /// Per group.
    pub groups: Vec<SetDigest>,
    /// Live rows.
    pub rows: u64,
    /// A uniform sample of the live keys (when asked for).
    pub sample: Vec<Pk>,
    /// The keys and digests of the rows in the groups asked for (second pass).
    pub narrowed: HashMap<Pk, u128>,
}

/// What to collect besides the group digests.
#[derive(Debug, Clone, Default)]
pub struct Collect {
    /// Sample this many live keys (seeded).
    pub sample: usize,
    /// Seed of the sample.
    pub seed: u64,
    /// Keep the keys and digests of these groups.
    pub groups: Option<Arc<HashSet<usize>>>,
}

/// A side's collection as the digests read it: the key, the compared fields by id, and its
/// segments with their logs.
pub struct Layout {
    pk: PrimaryKey,
    pk_field: i64,
    /// Compared fields: id and the seed of its name.
    fields: Vec<(i64, u64)>,
    segments: Vec<SegmentBackupInfo>,
}

/// Lists a side's segments and their logs, and maps the compared fields to their ids.
///
/// # Errors
/// [`Unavailable`] when a segment is not flushed, a field has no logs, or listing fails.
pub async fn layout(
    client: &MilvusClient,
    collection: &str,
    schema: &CollectionSchema,
    compared: &[String],
    at: SegmentStore<'_>,
) -> Result<Layout, Unavailable> {
    let pk = PrimaryKey::of(schema).ok_or_else(|| Unavailable("no supported key".into()))?;
    let mut fields: Vec<(i64, u64)> = Vec::new();
    let mut pk_field = None;
    for f in &schema.fields {
        if f.is_primary_key {
            pk_field = Some(f.field_id);
        }
        if compared.contains(&f.name) && !fields.iter().any(|(id, _)| *id == f.field_id) {
            fields.push((f.field_id, xxh3_64(f.name.as_bytes())));
        }
    }
    let pk_field = pk_field.ok_or_else(|| Unavailable("no key field".into()))?;
    // Fields hash by name: sort by it, so both sides add the same terms in the same order.
    fields.sort_by_key(|(_, seed)| *seed);
    let listed = client
        .persistent_segments(collection)
        .await
        .map_err(|e| Unavailable(format!("GetPersistentSegmentInfo: {e}")))?;
    for s in &listed {
        if s.state != SegmentState::Flushed as i32 {
            let state = SegmentState::try_from(s.state).map_or("unknown", |s| s.as_str_name());
            return Err(Unavailable(format!(
                "segment {} is {state}, not flushed: its rows are not all in its binlogs",
                s.segment_id
            )));
        }
    }
    // Two LISTs a segment, several segments at once.
    let lists: Vec<_> = listed
        .iter()
        .map(|s| crate::create::segment_files(at.store, at.root, "", collection, s))
        .collect();
    let segments: Vec<SegmentBackupInfo> = futures::stream::iter(lists)
        .buffered(IN_FLIGHT * 2)
        .map_ok(|(seg, _)| seg)
        .try_collect()
        .await
        .map_err(|e| Unavailable(e.to_string()))?;
    for seg in segments.iter().filter(|s| !s.is_l0) {
        for (id, _) in fields.iter().chain([&(pk_field, 0), &(TIMESTAMP_FIELD, 0)]) {
            if !seg.binlogs.iter().any(|b| b.field_id == *id) {
                return Err(Unavailable(format!(
                    "segment {} has no logs of field {id}",
                    seg.segment_id
                )));
            }
        }
    }
    Ok(Layout {
        pk,
        pk_field,
        fields,
        segments,
    })
}

/// Digests every live stored row of a side (see the module docs).
///
/// # Errors
/// [`Unavailable`] when a log cannot be read or decoded, or a segment's fields disagree.
pub async fn digest_side(
    store: &Store,
    layout: &Layout,
    collect: &Collect,
) -> Result<SideDigest, Unavailable> {
    let deletes = Arc::new(deletes(store, layout).await?);
    let budget = Arc::new(Semaphore::new(CHUNK_BUDGET >> 20));
    // Futures built first: a stream holding the closures that build them would make the
    // caller's future Send only for some lifetimes.
    let mut work = Vec::new();
    for (n, seg) in layout.segments.iter().filter(|s| !s.is_l0).enumerate() {
        let mut collect = collect.clone();
        collect.seed = collect.seed.wrapping_add(n as u64);
        let (deletes, budget) = (deletes.clone(), budget.clone());
        work.push(
            async move { digest_segment(store, layout, seg, &deletes, &budget, &collect).await },
        );
    }
    let parts: Vec<SideDigest> = futures::stream::iter(work)
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    let mut all = SideDigest {
        groups: vec![SetDigest::default(); GROUPS],
        rows: 0,
        sample: Vec::new(),
        narrowed: HashMap::new(),
    };
    // The segments' samples are uniform within each; drawing from them in proportion to
    // their rows keeps the whole uniform.
    let mut rng = SmallRng::seed_from_u64(collect.seed);
    let mut pool: Vec<(u64, Vec<Pk>)> = Vec::new();
    for p in parts {
        for (g, d) in all.groups.iter_mut().zip(&p.groups) {
            g.merge(d);
        }
        all.rows += p.rows;
        all.narrowed.extend(p.narrowed);
        pool.push((p.rows, p.sample));
    }
    let mut left: u64 = pool.iter().map(|(r, _)| *r).sum();
    while all.sample.len() < collect.sample && left > 0 {
        let mut pick = rng.random_range(0..left);
        let Some(i) = pool.iter().position(|(r, _)| {
            if pick < *r {
                true
            } else {
                pick -= *r;
                false
            }
        }) else {
            break;
        };
        let (rows, keys) = &mut pool[i];
        *rows -= 1;
        left -= 1;
        if let Some(k) = keys.pop() {
            all.sample.push(k);
        }
    }
    Ok(all)
}

/// The newest delete of each key, from every delta log of the side.
async fn deletes(store: &Store, layout: &Layout) -> Result<HashMap<Pk, u64>, Unavailable> {
    let paths: Vec<&str> = layout
        .segments
        .iter()
        .flat_map(|s| &s.deltalogs)
        .flat_map(|f| &f.binlogs)
        .map(|b| b.log_path.as_str())
        .collect();
    let mut newest: HashMap<Pk, u64> = HashMap::new();
    let reads: Vec<_> = paths
        .into_iter()
        .map(|p| async move {
            let bytes = store.read(p).await?;
            crate::binlog::deletes(bytes).map_err(|e| Unavailable(format!("`{p}`: {e}")))
        })
        .collect();
    let mut files = futures::stream::iter(reads).buffer_unordered(IN_FLIGHT * 2);
    while let Some(entries) = files.next().await {
        for (pk, ts) in entries? {
            let e = newest.entry(pk).or_insert(ts);
            *e = (*e).max(ts);
        }
    }
    Ok(newest)
}

async fn digest_segment(
    store: &Store,
    layout: &Layout,
    seg: &SegmentBackupInfo,
    deletes: &Arc<HashMap<Pk, u64>>,
    budget: &Arc<Semaphore>,
    collect: &Collect,
) -> Result<SideDigest, Unavailable> {
    let logs_of = |id: i64| {
        seg.binlogs
            .iter()
            .find(|b| b.field_id == id)
            .map(|b| b.binlogs.as_slice())
            .unwrap_or_default()
    };
    // The fields read: the key, the timestamps when there are deletes, the compared ones.
    let mut ids = vec![layout.pk_field];
    if !deletes.is_empty() {
        ids.push(TIMESTAMP_FIELD);
    }
    ids.extend(layout.fields.iter().map(|(id, _)| *id));
    let chunks = logs_of(layout.pk_field).len();
    let mut out = SideDigest {
        groups: vec![SetDigest::default(); GROUPS],
        rows: 0,
        sample: Vec::new(),
        narrowed: HashMap::new(),
    };
    let mut sampler = Sampler::new(collect.sample, collect.seed);
    for chunk in 0..chunks {
        let mut paths = Vec::with_capacity(ids.len());
        let mut bytes = 0usize;
        for id in &ids {
            let log = logs_of(*id).get(chunk).ok_or_else(|| {
                Unavailable(format!(
                    "segment {}: field {id} has fewer logs than the key",
                    seg.segment_id
                ))
            })?;
            bytes += usize::try_from(log.log_size).unwrap_or(0);
            paths.push(log.log_path.clone());
        }
        let permits = u32::try_from((bytes >> 20).clamp(1, CHUNK_BUDGET >> 20)).unwrap_or(1);
        let _held = budget.acquire_many(permits).await?;
        let files: Vec<Bytes> = futures::future::try_join_all(paths.iter().map(|p| store.read(p)))
            .await
            .map_err(|e| Unavailable(e.to_string()))?;
        let (pk_kind, fields, segment) = (layout.pk.kind, layout.fields.clone(), seg.segment_id);
        let (deletes, collect) = (deletes.clone(), collect.clone());
        let with_ts = ids.get(1) == Some(&TIMESTAMP_FIELD) && !deletes.is_empty();
        let (part, back) = tokio::task::spawn_blocking(move || {
            let columns = files
                .into_iter()
                .zip(&paths)
                .map(|(f, p)| {
                    Binlog::parse(f)
                        .and_then(|b| b.cells())
                        .map_err(|e| Unavailable(format!("`{p}`: {e}")))
                })
                .collect::<Result<Vec<Cells>, _>>()?;
            digest_chunk(
                &columns,
                (pk_kind, with_ts, &fields),
                &deletes,
                &collect,
                sampler,
            )
            .map_err(|e| Unavailable(format!("segment {segment}: {}", e.0)))
        })
        .await??;
        sampler = back;
        for (g, d) in out.groups.iter_mut().zip(&part.groups) {
            g.merge(d);
        }
        out.rows += part.rows;
        out.narrowed.extend(part.narrowed);
    }
    out.sample = sampler.keys;
    Ok(out)
}

/// A uniform reservoir of keys.
struct Sampler {
    cap: usize,
    seen: u64,
    keys: Vec<Pk>,
    rng: SmallRng,
}

impl Sampler {
    fn new(cap: usize, seed: u64) -> Self {
        Sampler {
            cap,
            seen: 0,
            keys: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    fn offer(&mut self, key: impl FnOnce() -> Pk) {
        if self.cap == 0 {
            return;
        }
        self.seen += 1;
        if self.keys.len() < self.cap {
            self.keys.push(key());
        } else {
            let j = self.rng.random_range(0..self.seen);
            if let Ok(j) = usize::try_from(j)
                && j < self.cap
            {
                self.keys[j] = key();
            }
        }
    }
}

/// The digest of one row: its fields' hashes (by name, `None` a null) summed, then hashed with
/// its key.
pub fn row_digest<'a>(key: &[u8], values: impl Iterator<Item = (u64, Option<&'a [u8]>)>) -> u128 {
    let mut sum = 0u128;
    for (seed, v) in values {
        let h = match v {
            Some(v) => xxh3_128_with_seed(v, seed),
            None => xxh3_128_with_seed(b"\xffnull", seed ^ 0x5a5a),
        };
        sum = sum.wrapping_add(h);
    }
    let mut buf = Vec::with_capacity(key.len() + 16);
    buf.extend_from_slice(key);
    buf.extend_from_slice(&sum.to_le_bytes());
    xxh3_128(&buf)
}

/// The group of a key.
pub fn group_of(key: &[u8]) -> usize {
    (xxh3_64(key) % GROUPS as u64) as usize
}

fn key_of(kind: PkKind, raw: &[u8]) -> Result<Pk, Unavailable> {
    match kind {
        PkKind::Int64 => Ok(Pk::Int(i64::from_le_bytes(
            raw.try_into()
                .map_err(|_| Unavailable("an Int64 key of another width".into()))?,
        ))),
        PkKind::VarChar => Ok(Pk::Str(
            std::str::from_utf8(raw)
                .map_err(|_| Unavailable("a VarChar key that is not UTF-8".into()))?
                .to_string(),
        )),
    }
}

/// One chunk of a segment: `columns` are the key, the timestamps when `with_ts`, then the
/// compared fields in `fields`' order.
fn digest_chunk(
    columns: &[Cells],
    (kind, with_ts, fields): (PkKind, bool, &[(i64, u64)]),
    deletes: &HashMap<Pk, u64>,
    collect: &Collect,
    mut sampler: Sampler,
) -> Result<(SideDigest, Sampler), Unavailable> {
    let rows = columns[0].len();
    if let Some(c) = columns.iter().find(|c| c.len() != rows) {
        return Err(Unavailable(format!(
            "logs written together hold {} and {} rows",
            rows,
            c.len()
        )));
    }
    let keys = &columns[0];
    let stamps = with_ts.then(|| &columns[1]);
    let values = &columns[if with_ts { 2 } else { 1 }..];
    let mut out = SideDigest {
        groups: vec![SetDigest::default(); GROUPS],
        rows: 0,
        sample: Vec::new(),
        narrowed: HashMap::new(),
    };
    for i in 0..rows {
        let raw = keys
            .get(i)
            .ok_or_else(|| Unavailable("a null key".into()))?;
        if let Some(ts) = stamps {
            let ts = ts
                .get(i)
                .and_then(|b| Some(u64::from_le_bytes(b.try_into().ok()?)));
            let ts = ts.ok_or_else(|| Unavailable("a row without a timestamp".into()))?;
            if deletes
                .get(&key_of(kind, raw)?)
                .is_some_and(|deleted| *deleted > ts)
            {
                continue;
            }
        }
        let d = row_digest(
            raw,
            fields
                .iter()
                .zip(values)
                .map(|((_, seed), c)| (*seed, c.get(i))),
        );
        let g = group_of(raw);
        out.groups[g].add(d);
        out.rows += 1;
        sampler.offer(|| key_of(kind, raw).unwrap_or(Pk::Int(0)));
        if collect.groups.as_ref().is_some_and(|set| set.contains(&g)) {
            out.narrowed.insert(key_of(kind, raw)?, d);
        }
    }
    Ok((out, sampler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_digest_follows_every_value_and_the_key_but_not_the_field_order() {
        let a = row_digest(
            b"k1",
            [(1, Some(&b"x"[..])), (2, Some(&b"y"[..]))].into_iter(),
        );
        let swapped = row_digest(
            b"k1",
            [(2, Some(&b"y"[..])), (1, Some(&b"x"[..]))].into_iter(),
        );
        assert_eq!(a, swapped);
        for other in [
            row_digest(
                b"k2",
                [(1, Some(&b"x"[..])), (2, Some(&b"y"[..]))].into_iter(),
            ),
            row_digest(
                b"k1",
                [(1, Some(&b"y"[..])), (2, Some(&b"x"[..]))].into_iter(),
            ),
            row_digest(b"k1", [(1, Some(&b"x"[..])), (2, None)].into_iter()),
            row_digest(
                b"k1",
                [(1, Some(&b"x"[..])), (2, Some(&b""[..]))].into_iter(),
            ),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn a_chunk_leaves_out_rows_deleted_after_they_were_written() {
        let cells = |vals: &[&[u8]]| {
            let mut c = Cells::default();
            for v in vals {
                c.push(v);
            }
            c
        };
        let k = |i: i64| i.to_le_bytes();
        let keys = cells(&[&k(1), &k(2), &k(3)]);
        let ts = cells(&[&k(10), &k(10), &k(30)]);
        let vals = cells(&[b"a", b"b", b"c"]);
        // Key 2 deleted after its row, key 3 before its row (re-inserted): 1 and 3 live.
        let deletes: HashMap<Pk, u64> = [(Pk::Int(2), 20), (Pk::Int(3), 20)].into();
        let collect = Collect {
            sample: 10,
            seed: 1,
            groups: Some(Arc::new((0..GROUPS).collect())),
        };
        let (d, sampler) = digest_chunk(
            &[keys, ts, vals],
            (PkKind::Int64, true, &[(100, 7)]),
            &deletes,
            &collect,
            Sampler::new(10, 1),
        )
        .unwrap();
        assert_eq!(d.rows, 2);
        let mut live: Vec<&Pk> = d.narrowed.keys().collect();
        live.sort();
        assert_eq!(live, [&Pk::Int(1), &Pk::Int(3)]);
        assert_eq!(sampler.keys.len(), 2);
        assert_eq!(
            d.narrowed[&Pk::Int(3)],
            row_digest(&k(3), [(7, Some(&b"c"[..]))].into_iter())
        );
    }
}
