//! Content verification: does collection B hold the same rows as collection A, field by
//! field?
//!
//! Owns the comparison of two live collections (on two Milvus, possibly of different
//! versions) and its report: row counts, per-partition counts, and the primary keys that are
//! missing on B, extra on B, or present on both with different values (the first few of
//! each, next to their totals). Does not own the query calls ([`crate::milvus::query`]), the
//! decoding of columns ([`rows`]) or any printing.
//!
//! Modes ([`VerifyMode`]):
//! - **count**: exact live row counts of both sides, per collection and partition
//!   ([`MilvusClient::count`]: `count(*)`, or enumerated keys on Milvus 2.2).
//! - **sample** (default): both sides' keys are enumerated in ascending key pages and merged,
//!   which yields exact counts and every missing and extra key while holding two pages of keys;
//!   a uniform reservoir sample of [`VerifyOptions::sample`] keys present on both sides is drawn
//!   during that merge, from a seeded RNG, so it spreads over every partition and segment in
//!   proportion to their rows (Milvus's query sees all of them; no segment statistics are
//!   needed). The sampled rows are then fetched from both sides (`pk in [...]`) and every field
//!   is compared exactly.
//! - **full**: A's keys are enumerated (as in sample mode) and cut into key ranges of
//!   [`VerifyOptions::page`] rows (each range is `(previous range's last key, this range's last
//!   key]`, the last one open-ended so that rows of B beyond A's last key are seen); A's rows
//!   of a range are read with both ends in the query; B's rows of the same range are streamed in pages
//!   of the same size. Each row's 128-bit digest is computed straight from the answer's
//!   columns (no row is built: [`rows::digests`]), and each side's range gets an
//!   order-independent digest ([`SetDigest`]: the count and wrapping sums of the rows'
//!   digests). Equal digests settle the range; a range whose digests differ is narrowed down
//!   by key: B's digests are looked up among A's (A's range of keys and digests is in memory,
//!   B's pages pass through), giving its missing, extra and different keys, and the rows of
//!   the different ones are read again from both sides to name the fields that differ.
//!   Milvus cannot digest rows on the server, so both sides' rows travel either way; A's next
//!   range is read while B's current one is compared, so memory stays bounded by two ranges
//!   of A's keys and digests plus one page of B.
//!
//! Beside the rows, [`meta`] compares the collections' settings (aliases, properties,
//! partitions, consistency, shards, indexes, load state, ...): `verify` reports both
//! ([`CollectionVerification::metadata`]), `migrate` fails on a required item that differs.
//!
//! Consistency: each side first answers one Strong query, which waits until that Milvus has
//! applied everything written before the verification began; the pages after it are Bounded
//! queries, which see at least as much on the same replica and do not wait for the next time
//! tick (a Strong query costs up to one tick, 200 ms by default: thousands of pages would
//! spend most of their time waiting).
//!
//! Pagination is by key ranges (`pk > last` with a limit), never `offset`, so it works on
//! Milvus 2.2 (whose window is `offset + limit <= 16384`) as on 2.3+.

pub mod meta;
mod rows;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

pub use meta::{MetaComparison, MetaItem, MetaStatus};
pub use rows::{Row, SetDigest, Value, decode};

use crate::config::Profile;
use crate::create::Selector;
use crate::error::Error;
use crate::milvus::proto::schema::{CollectionSchema, DataType, FieldData, FieldSchema};
use crate::milvus::query::{Consistency, KeyPages, MAX_QUERY_LIMIT, in_expr, range_expr};
use crate::milvus::{ClientOptions, MilvusClient, MilvusError, Pk, PrimaryKey};
use crate::restore::Naming;
use crate::retry::Retryable;

/// The dynamic field's name in queries and answers.
const DYNAMIC_FIELD: &str = "$meta";
/// How many keys of each kind of difference a report names.
pub const FIRST_KEYS: usize = 10;
/// Keys per `pk in [...]` query of sampled rows (and of rows read again), at most: fewer when
/// the rows are wide (see [`Pager`]).
const SAMPLE_BATCH: u64 = 500;

/// Errors of a verification (a difference is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A query on one side failed.
    #[error("verify `{collection}` on {side}: {source}")]
    Milvus {
        /// `A` or `B`.
        side: &'static str,
        /// `db.coll` of that side.
        collection: String,
        #[source]
        source: MilvusError,
    },
    /// A side's collection is not (fully) loaded: Milvus answers no query on it.
    #[error(
        "`{collection}` on {side} is not loaded ({progress}% loaded): Milvus answers no query on \
         it; load it and run again"
    )]
    NotLoaded {
        /// `A` or `B`.
        side: &'static str,
        /// `db.coll` of that side.
        collection: String,
        /// Its loading progress.
        progress: i64,
    },
    /// An answer could not be decoded into rows.
    #[error("verify `{collection}` on {side}: cannot decode the answer: {message}")]
    Decode {
        side: &'static str,
        collection: String,
        message: String,
    },
    /// Describing one side's collection for the metadata comparison failed.
    #[error("verify metadata of `{collection}` on {side}: {step}: {source}")]
    Metadata {
        /// `A` or `B`.
        side: &'static str,
        /// `db.coll` of that side.
        collection: String,
        /// The call that failed.
        step: &'static str,
        #[source]
        source: Box<MilvusError>,
    },
    /// A required metadata item differs (raised by flows that treat it as a failure, such as
    /// `migrate`).
    #[error("metadata of `{target}` differs from `{source_name}`: {summary}")]
    MetadataDiffers {
        /// `db.coll` on A.
        source_name: String,
        /// `db.coll` on B.
        target: String,
        /// The items that differ, with both values.
        summary: String,
    },
    /// The collections differ (raised by flows that treat a difference as a failure, such as
    /// `migrate`).
    #[error("content of `{target}` differs from `{source_name}`: {summary}")]
    Differs {
        /// `db.coll` on A.
        source_name: String,
        /// `db.coll` on B.
        target: String,
        /// What differs, with the first keys.
        summary: String,
    },
}

impl VerifyError {
    /// The size of an answer Milvus refused as too large, and its limit.
    fn too_large(&self) -> Option<(u64, u64)> {
        match self {
            VerifyError::Milvus { source, .. } => source.too_large(),
            _ => None,
        }
    }
}

impl Retryable for VerifyError {
    fn is_retryable(&self) -> bool {
        match self {
            VerifyError::Milvus { source, .. } => source.is_retryable(),
            VerifyError::Metadata { source, .. } => source.is_retryable(),
            VerifyError::Decode { .. }
            | VerifyError::NotLoaded { .. }
            | VerifyError::Differs { .. }
            | VerifyError::MetadataDiffers { .. } => false,
        }
    }
}

/// How thoroughly to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Exact row counts only.
    Count,
    /// Exact counts and keys, and every field of a sample of rows.
    #[default]
    Sample,
    /// Every field of every row.
    Full,
}

impl std::str::FromStr for VerifyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "count" => Ok(VerifyMode::Count),
            "sample" => Ok(VerifyMode::Sample),
            "full" => Ok(VerifyMode::Full),
            _ => Err(format!("`{s}`: use count, sample or full")),
        }
    }
}

impl std::fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyMode::Count => "count",
            VerifyMode::Sample => "sample",
            VerifyMode::Full => "full",
        })
    }
}

/// Settings of a verification (stored with a daemon job; a missing key takes its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VerifyOptions {
    /// The mode.
    pub mode: VerifyMode,
    /// Rows compared field by field in `sample` mode.
    pub sample: u64,
    /// Rows per key range and per page in `full` mode (at most 16384); `None`: sized by the
    /// rows' width, so that each answer holds about [`RANGE_BYTES`].
    pub page: Option<u64>,
    /// Seed of the sample.
    pub seed: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            mode: VerifyMode::Sample,
            sample: 1000,
            page: None,
            seed: 0x5eed,
        }
    }
}

/// Keys of one kind of difference: how many, and the first few.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyList {
    /// How many.
    pub count: u64,
    /// The first [`FIRST_KEYS`] (for `different`, with the fields that differ).
    pub first: Vec<String>,
}

impl KeyList {
    fn push(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < FIRST_KEYS {
            self.first.push(what());
        }
    }
}

/// One partition's rows on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionRows {
    /// Partition name.
    pub name: String,
    /// Rows on A (`None`: the partition is not loaded on A, so no query sees its rows there:
    /// they are neither counted nor compared).
    pub rows_a: Option<u64>,
    /// Rows on B (`None`: the partition is missing or not loaded on B, see `on_b`).
    pub rows_b: Option<u64>,
    /// The partition on B.
    pub on_b: PartitionOnB,
}

/// Whether B has a partition, and whether it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionOnB {
    /// Loaded: counted.
    Loaded,
    /// There, not loaded: no query sees its rows.
    NotLoaded,
    /// B has no partition of that name.
    Missing,
}

impl PartitionRows {
    /// Whether both sides agree: the same rows where A's partition is loaded, and no rows
    /// seen on B alone where it is not.
    fn ok(&self) -> bool {
        match (self.rows_a, self.on_b) {
            (Some(a), PartitionOnB::Loaded) => self.rows_b == Some(a),
            (Some(_), _) => false,
            (None, PartitionOnB::Loaded) => self.rows_b == Some(0),
            (None, _) => true,
        }
    }

    /// What differs, in words (`None` when [`Self::ok`]).
    fn difference(&self) -> Option<String> {
        if self.ok() {
            return None;
        }
        let name = &self.name;
        Some(match (self.rows_a, self.on_b, self.rows_b) {
            (Some(_), PartitionOnB::Missing, _) => format!("partition `{name}` missing on B"),
            (Some(a), PartitionOnB::NotLoaded, _) => {
                format!("partition `{name}` not loaded on B ({a} rows on A)")
            }
            (None, _, b) => format!(
                "partition `{name}` loaded on B only ({} rows), not on A",
                b.unwrap_or_default()
            ),
            (Some(a), _, b) => format!(
                "partition `{name}`: {a} rows on A, {} on B",
                b.unwrap_or_default()
            ),
        })
    }
}

/// The result of comparing one collection.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionVerification {
    /// `db.coll` on A.
    pub source: String,
    /// `db.coll` on B.
    pub target: String,
    /// The mode used.
    pub mode: VerifyMode,
    /// Live rows on A.
    pub rows_a: u64,
    /// Live rows on B.
    pub rows_b: u64,
    /// Per partition (empty for partition-key collections, whose partitions cannot be
    /// queried by name).
    pub partitions: Vec<PartitionRows>,
    /// Fields that exist on one side only.
    pub schema_differences: Vec<String>,
    /// Rows compared field by field.
    pub rows_compared: u64,
    /// Keys on A, not on B (count mode: not looked for).
    pub missing: KeyList,
    /// Keys on B, not on A (count mode: not looked for).
    pub extra: KeyList,
    /// Keys on both with different values.
    pub different: KeyList,
    /// Key ranges compared (full mode).
    pub ranges: u64,
    /// Of those, ranges whose digests differed.
    pub ranges_differing: u64,
    /// Seconds.
    pub secs: f64,
    /// The settings compared item by item (`verify`; `migrate` reports them beside).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetaComparison>,
}

impl CollectionVerification {
    /// Whether both sides hold the same rows, as far as the mode looked, and no required
    /// metadata item differs.
    pub fn ok(&self) -> bool {
        self.metadata.as_ref().is_none_or(MetaComparison::ok)
            && self.rows_a == self.rows_b
            && self.partitions.iter().all(PartitionRows::ok)
            && self.schema_differences.is_empty()
            && self.missing.count == 0
            && self.extra.count == 0
            && self.different.count == 0
    }

    /// The partitions A does not have loaded, in backquotes: no query on A sees their rows,
    /// so they were not compared.
    pub fn partitions_not_loaded_on_a(&self) -> Vec<String> {
        self.partitions
            .iter()
            .filter(|p| p.rows_a.is_none())
            .map(|p| format!("`{}`", p.name))
            .collect()
    }

    /// One line naming what differs and the first keys of each kind.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.rows_a != self.rows_b {
            parts.push(format!("{} rows on A, {} on B", self.rows_a, self.rows_b));
        }
        parts.extend(self.partitions.iter().filter_map(PartitionRows::difference));
        for f in &self.schema_differences {
            parts.push(f.clone());
        }
        for (what, l) in [
            ("missing on B", &self.missing),
            ("extra on B", &self.extra),
            ("different", &self.different),
        ] {
            if l.count > 0 {
                parts.push(format!("{} {what} ({})", l.count, l.first.join(", ")));
            }
        }
        let mut rows = if parts.is_empty() {
            format!("{} rows, same content ({})", self.rows_a, self.mode)
        } else {
            parts.join("; ")
        };
        let unloaded = self.partitions_not_loaded_on_a();
        if !unloaded.is_empty() {
            rows.push_str(&format!(
                "; partition(s) {} not loaded on A: their rows not compared",
                unloaded.join(", ")
            ));
        }
        match &self.metadata {
            Some(m) => format!("{rows}; {}", m.summary()),
            None => rows,
        }
    }
}

/// One side of a comparison.
struct Side<'a> {
    name: &'static str,
    client: &'a MilvusClient,
    collection: &'a str,
    label: String,
    /// How many of its keys a page of keys holds.
    keys: KeyPages,
}

impl Side<'_> {
    /// This side's partitions, each with whether it is loaded.
    async fn partitions_loaded(&self) -> Result<Vec<(String, bool)>, VerifyError> {
        self.client
            .partitions_loaded(self.collection)
            .await
            .map_err(self.err())
    }

    fn err(&self) -> impl Fn(MilvusError) -> VerifyError + '_ {
        move |source| VerifyError::Milvus {
            side: self.name,
            collection: self.label.clone(),
            source,
        }
    }

    fn decode_err(&self, e: rows::DecodeError) -> VerifyError {
        VerifyError::Decode {
            side: self.name,
            collection: self.label.clone(),
            message: e.0,
        }
    }

    /// A Bounded query of `fields` where `expr` holds, at most `limit` rows.
    async fn answer(
        &self,
        fields: &[String],
        expr: &str,
        limit: Option<u64>,
    ) -> Result<Vec<FieldData>, VerifyError> {
        self.client
            .query_with(
                self.collection,
                &[],
                expr,
                fields,
                limit,
                Consistency::Bounded,
            )
            .await
            .map_err(self.err())
    }

    /// Puts an answer's `items` in key order; an answer cut by `limit` must come in key order
    /// already, or it cannot be paged by key.
    fn in_key_order<T>(
        &self,
        items: &mut [T],
        key: impl Fn(&T) -> &Pk,
        limit: Option<u64>,
    ) -> Result<(), VerifyError> {
        if items.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            return Ok(());
        }
        if limit.is_some_and(|l| items.len() as u64 >= l) {
            return Err(self.decode_err(rows::DecodeError(
                "a query page with a limit is not in ascending key order, so it cannot be \
                 paged by key"
                    .into(),
            )));
        }
        items.sort_by(|x, y| key(x).cmp(key(y)));
        Ok(())
    }

    async fn rows(
        &self,
        pk: &PrimaryKey,
        fields: &[String],
        expr: &str,
        limit: Option<u64>,
    ) -> Result<(Vec<Row>, usize), VerifyError> {
        let answer = self.answer(fields, expr, limit).await?;
        let bytes = answer.iter().map(prost::Message::encoded_len).sum();
        let mut rows = decode(&answer, pk).map_err(|e| self.decode_err(e))?;
        self.in_key_order(&mut rows, |r| &r.pk, limit)?;
        Ok((rows, bytes))
    }

    /// [`Side::rows`]' keys and digests only, computed from the answer's columns, and the
    /// answer's size in bytes (as encoded on the wire).
    async fn digests(
        &self,
        pk: &PrimaryKey,
        fields: &[String],
        expr: &str,
        limit: Option<u64>,
    ) -> Result<(Vec<(Pk, u128)>, usize), VerifyError> {
        let answer = self.answer(fields, expr, limit).await?;
        let bytes = answer.iter().map(prost::Message::encoded_len).sum();
        let mut digests = rows::digests(&answer, pk).map_err(|e| self.decode_err(e))?;
        self.in_key_order(&mut digests, |d| &d.0, limit)?;
        Ok((digests, bytes))
    }

    /// One Strong query (a single key): this Milvus has then applied everything written
    /// before the verification began, and the Bounded pages after it see at least that.
    async fn settle(&self, pk: &PrimaryKey) -> Result<(), VerifyError> {
        self.client
            .key_page(self.collection, &[], pk, None, 1, Consistency::Strong)
            .await
            .map_err(self.err())?;
        Ok(())
    }
}

/// A page of keys being fetched.
type KeyFetch = tokio::task::JoinHandle<Result<Vec<Pk>, MilvusError>>;

/// Streams one side's keys in ascending pages. The next page is fetched in the background
/// while the current one is consumed, so the two sides' queries and the merge overlap.
struct KeyCursor<'a> {
    side: &'a Side<'a>,
    pk: &'a PrimaryKey,
    pages: KeyPages,
    page: std::vec::IntoIter<Pk>,
    /// The page being fetched, its limit and the key it starts after; `None` once the last
    /// page has arrived.
    pending: Option<(u64, Option<Pk>, KeyFetch)>,
}

impl<'a> KeyCursor<'a> {
    fn new(side: &'a Side<'a>, pk: &'a PrimaryKey) -> Self {
        let pages = side.keys;
        Self {
            side,
            pk,
            pages,
            page: Vec::new().into_iter(),
            pending: Some((
                pages.page(),
                None,
                Self::fetch(side, pk, None, pages.page()),
            )),
        }
    }

    /// Starts fetching the page of at most `limit` keys after `after`.
    fn fetch(side: &Side<'_>, pk: &PrimaryKey, after: Option<Pk>, limit: u64) -> KeyFetch {
        let (client, collection, pk) =
            (side.client.clone(), side.collection.to_string(), pk.clone());
        tokio::spawn(async move {
            client
                .key_page(
                    &collection,
                    &[],
                    &pk,
                    after.as_ref(),
                    limit,
                    Consistency::Bounded,
                )
                .await
        })
    }

    /// The next key, waiting for the page being fetched when the current one is used up.
    async fn next(&mut self) -> Result<Option<Pk>, VerifyError> {
        loop {
            if let Some(k) = self.page.next() {
                return Ok(Some(k));
            }
            let Some((limit, after, pending)) = self.pending.take() else {
                return Ok(None);
            };
            let keys = match pending.await {
                Ok(Ok(keys)) => keys,
                Ok(Err(e)) => match e.too_large() {
                    Some((size, max)) if self.pages.refused(limit, size, max) => {
                        let next = self.pages.page();
                        tracing::info!(
                            "Milvus refused a page of {limit} keys ({size} bytes, over its \
                             limit of {max}): asking for {next} keys at a time"
                        );
                        let fetch = Self::fetch(self.side, self.pk, after.clone(), next);
                        self.pending = Some((next, after, fetch));
                        continue;
                    }
                    _ => return Err(self.side.err()(e)),
                },
                Err(e) => {
                    return Err(self.side.decode_err(rows::DecodeError(format!(
                        "the task reading keys stopped: {e}"
                    ))));
                }
            };
            if keys.len() as u64 >= limit {
                self.pages.saw(&keys);
                let next = self.pages.page();
                let after = keys.last().cloned();
                let fetch = Self::fetch(self.side, self.pk, after.clone(), next);
                self.pending = Some((next, after, fetch));
            }
            self.page = keys.into_iter();
        }
    }
}

impl Drop for KeyCursor<'_> {
    fn drop(&mut self) {
        // A merge that stopped early (an error) leaves no query running behind it.
        if let Some((_, _, p)) = self.pending.take() {
            p.abort();
        }
    }
}

/// Compares collection `a_coll` of `a` with `b_coll` of `b` (each client bound to its
/// database). Both must be loaded.
///
/// # Errors
/// [`VerifyError`] when a query fails or an answer cannot be decoded; differences are in the
/// report ([`CollectionVerification::ok`]).
pub async fn verify_collection(
    a: &MilvusClient,
    a_coll: &str,
    b: &MilvusClient,
    b_coll: &str,
    opts: &VerifyOptions,
) -> Result<CollectionVerification, VerifyError> {
    let started = Instant::now();
    let mut sa = Side {
        name: "A",
        client: a,
        collection: a_coll,
        label: format!("{}.{a_coll}", a.db()),
        keys: KeyPages::default(),
    };
    let mut sb = Side {
        name: "B",
        client: b,
        collection: b_coll,
        label: format!("{}.{b_coll}", b.db()),
        keys: KeyPages::default(),
    };
    let (pk, schema_a) = a.primary_key(a_coll).await.map_err(sa.err())?;
    let (_, schema_b) = b.primary_key(b_coll).await.map_err(sb.err())?;
    sa.keys = KeyPages::new(&schema_a);
    sb.keys = KeyPages::new(&schema_b);
    for side in [&sa, &sb] {
        let progress = side
            .client
            .loading_progress(side.collection)
            .await
            .map_err(side.err())?;
        if progress < 100 {
            return Err(VerifyError::NotLoaded {
                side: side.name,
                collection: side.label.clone(),
                progress,
            });
        }
    }
    let names = |s: &crate::milvus::proto::schema::CollectionSchema| {
        let mut v: Vec<String> = s.fields.iter().map(|f| f.name.clone()).collect();
        if s.enable_dynamic_field {
            v.push(DYNAMIC_FIELD.into());
        }
        v
    };
    let (fa, fb) = (names(&schema_a), names(&schema_b));
    let mut schema_differences = Vec::new();
    for f in &fa {
        if !fb.contains(f) {
            schema_differences.push(format!("field `{f}` missing on B"));
        }
    }
    for f in &fb {
        if !fa.contains(f) {
            schema_differences.push(format!("field `{f}` only on B"));
        }
    }
    let fields: Vec<String> = fa.iter().filter(|f| fb.contains(f)).cloned().collect();

    let mut report = CollectionVerification {
        source: sa.label.clone(),
        target: sb.label.clone(),
        mode: opts.mode,
        rows_a: 0,
        rows_b: 0,
        partitions: Vec::new(),
        schema_differences,
        rows_compared: 0,
        missing: KeyList::default(),
        extra: KeyList::default(),
        different: KeyList::default(),
        ranges: 0,
        ranges_differing: 0,
        secs: 0.0,
        metadata: None,
    };

    // Per-partition counts (partition-key collections cannot be queried by partition). A
    // collection loaded by some partitions only is queried in those alone: the others are
    // not counted, and their rows are not seen by the key comparison either.
    if !schema_a.fields.iter().any(|f| f.is_partition_key) {
        let (parts_a, parts_b) = tokio::try_join!(sa.partitions_loaded(), sb.partitions_loaded())?;
        for (p, loaded_a) in parts_a {
            let one = std::slice::from_ref(&p);
            let rows_a = if loaded_a {
                Some(a.count(a_coll, one).await.map_err(sa.err())?.max(0) as u64)
            } else {
                None
            };
            let on_b = match parts_b.iter().find(|(n, _)| *n == p) {
                None => PartitionOnB::Missing,
                Some((_, false)) => PartitionOnB::NotLoaded,
                Some((_, true)) => PartitionOnB::Loaded,
            };
            let rows_b = if on_b == PartitionOnB::Loaded {
                Some(b.count(b_coll, one).await.map_err(sb.err())?.max(0) as u64)
            } else {
                None
            };
            report.partitions.push(PartitionRows {
                name: p,
                rows_a,
                rows_b,
                on_b,
            });
        }
    }

    if opts.mode != VerifyMode::Count {
        let (x, y) = tokio::join!(sa.settle(&pk), sb.settle(&pk));
        x?;
        y?;
    }
    let limit = Arc::new(AnswerLimit::default());
    match opts.mode {
        VerifyMode::Count => {
            report.rows_a = a.count(a_coll, &[]).await.map_err(sa.err())?.max(0) as u64;
            report.rows_b = b.count(b_coll, &[]).await.map_err(sb.err())?.max(0) as u64;
        }
        VerifyMode::Sample => {
            let batches = Pager::new(None, &schema_a, &limit);
            sample(&sa, &sb, &pk, &fields, opts, batches, &mut report).await?
        }
        VerifyMode::Full => {
            let pagers = (
                Pager::new(opts.page, &schema_a, &limit),
                Pager::new(None, &schema_a, &limit),
            );
            full(&sa, &sb, &pk, &fields, pagers, &mut report).await?
        }
    }
    report.secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Merges both sides' key streams (exact counts, missing and extra keys), samples common
/// keys, then compares the sampled rows field by field.
async fn sample(
    sa: &Side<'_>,
    sb: &Side<'_>,
    pk: &PrimaryKey,
    fields: &[String],
    opts: &VerifyOptions,
    mut batches: Pager,
    report: &mut CollectionVerification,
) -> Result<(), VerifyError> {
    let cap = usize::try_from(opts.sample).unwrap_or(usize::MAX);
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let mut reservoir: Vec<Pk> = Vec::with_capacity(cap.min(1 << 20));
    let mut common = 0u64;
    let (mut ca, mut cb) = (KeyCursor::new(sa, pk), KeyCursor::new(sb, pk));
    let (mut ka, mut kb) = (ca.next().await?, cb.next().await?);
    loop {
        match (ka.take(), kb.take()) {
            (None, None) => break,
            (Some(x), None) => {
                report.rows_a += 1;
                report.missing.push(|| x.to_string());
                ka = ca.next().await?;
            }
            (None, Some(y)) => {
                report.rows_b += 1;
                report.extra.push(|| y.to_string());
                kb = cb.next().await?;
            }
            (Some(x), Some(y)) => match x.cmp(&y) {
                std::cmp::Ordering::Less => {
                    report.rows_a += 1;
                    report.missing.push(|| x.to_string());
                    ka = ca.next().await?;
                    kb = Some(y);
                }
                std::cmp::Ordering::Greater => {
                    report.rows_b += 1;
                    report.extra.push(|| y.to_string());
                    kb = cb.next().await?;
                    ka = Some(x);
                }
                std::cmp::Ordering::Equal => {
                    report.rows_a += 1;
                    report.rows_b += 1;
                    common += 1;
                    if reservoir.len() < cap {
                        reservoir.push(x);
                    } else {
                        let j = rng.random_range(0..common);
                        if let Ok(j) = usize::try_from(j)
                            && j < cap
                        {
                            reservoir[j] = x;
                        }
                    }
                    ka = ca.next().await?;
                    kb = cb.next().await?;
                }
            },
        }
    }
    reservoir.sort();
    rows_of_both(
        (sa, sb),
        pk,
        fields,
        &reservoir,
        &mut batches,
        |_, ra, rb| {
            let by_key: HashMap<&Pk, &Row> = rb.iter().map(|r| (&r.pk, r)).collect();
            for x in &ra {
                // A key deleted on either side since the merge is not a content difference.
                let Some(y) = by_key.get(&x.pk) else { continue };
                report.rows_compared += 1;
                if x.digest() != y.digest() {
                    let diff = x.differing_fields(y);
                    report
                        .different
                        .push(|| format!("{} ({})", x.pk, diff.join(", ")));
                }
            }
        },
    )
    .await
}

/// The rows of `keys` on both sides, read at once in batches of at most [`SAMPLE_BATCH`] keys
/// and as many as `batches` allows (wide rows: fewer, so that an answer stays far below what
/// Milvus sends in one message); `each` gets a batch's keys and both sides' rows of it.
async fn rows_of_both(
    (sa, sb): (&Side<'_>, &Side<'_>),
    pk: &PrimaryKey,
    fields: &[String],
    keys: &[Pk],
    batches: &mut Pager,
    mut each: impl FnMut(&[Pk], Vec<Row>, Vec<Row>),
) -> Result<(), VerifyError> {
    let mut rest = keys;
    while !rest.is_empty() {
        let n = usize::try_from(batches.page().min(SAMPLE_BATCH))
            .map_or(rest.len(), |n| n.min(rest.len()));
        let (batch, after) = rest.split_at(n);
        let expr = in_expr(pk, batch);
        let limit = Some(batch.len() as u64);
        let (ra, rb) = tokio::join!(
            sa.rows(pk, fields, &expr, limit),
            sb.rows(pk, fields, &expr, limit)
        );
        let both = ra.and_then(|a| rb.map(|b| (a, b)));
        let Some(((ra, bytes_a), (rb, bytes_b))) = or_smaller(both, batches, n as u64)? else {
            continue;
        };
        rest = after;
        batches.saw(ra.len(), bytes_a);
        batches.saw(rb.len(), bytes_b);
        each(batch, ra, rb);
    }
    Ok(())
}

/// Every row of both sides, range by range (see the module docs).
async fn full(
    sa: &Side<'_>,
    sb: &Side<'_>,
    pk: &PrimaryKey,
    fields: &[String],
    (mut pager, mut batches): (Pager, Pager),
    report: &mut CollectionVerification,
) -> Result<(), VerifyError> {
    // A's keys (a key column only: cheap) cut the key space into ranges of `page` rows with
    // both ends known, so that A's query of a range reads that range only (an open-ended
    // query with a limit reads up to the limit from every segment).
    let mut keys = KeyCursor::new(sa, pk);
    // A range of A is one query, unless Milvus refuses its answer as too large.
    let mut a_pages = pager.fixed(MAX_QUERY_LIMIT);
    let mut lo: Option<Pk> = None;
    let mut page = pager.page();
    let mut hi = range_end(&mut keys, page).await?;
    let (mut a_digests, bytes) =
        range_digests(sa, (pk, fields), (None, hi.as_ref()), page, &mut a_pages).await?;
    pager.saw(a_digests.len(), bytes);
    loop {
        report.ranges += 1;
        report.rows_a += a_digests.len() as u64;
        // A's next range is read while B's rows of this one are compared: both Milvus work
        // at once.
        let next = async {
            if hi.is_none() {
                return Ok((None, Vec::new(), 0, 0));
            }
            let n = pager.page();
            let h = range_end(&mut keys, n).await?;
            let range = (hi.as_ref(), h.as_ref());
            let (rows, bytes) = range_digests(sa, (pk, fields), range, n, &mut a_pages).await?;
            Ok::<_, VerifyError>((h, rows, bytes, n))
        };
        let this = compare_range(
            (sa, sb),
            pk,
            fields,
            (pager.fixed(page), &mut batches),
            (lo.as_ref(), hi.as_ref()),
            a_digests,
            report,
        );
        let (next, compared) = tokio::join!(next, this);
        compared?;
        if hi.is_none() {
            return Ok(());
        }
        let (h, digests, bytes, n) = next?;
        // B's pages of the next range are as long as the range.
        page = n;
        pager.saw(digests.len(), bytes);
        lo = hi;
        hi = h;
        a_digests = digests;
    }
}

/// What one answer holds, about, when its rows are counted by their width (`full` mode's
/// ranges without `--page`, and every batch of rows read by key): a quarter of what Milvus's
/// proxy sends in one message by default (`proxy.grpc.serverMaxSendSize`, 64 MiB; its
/// components take 256 MiB from each other), so that rows wider than the ones seen so far
/// still pass, and the two answers in flight stay a few tens of MiB. Larger pages cost the servers less per row (each query merges its
/// segments' answers once), up to Milvus's limit of 16384 rows.
const RANGE_BYTES: u64 = 16 << 20;

/// The bytes one answer may hold, shared by the pagers of one verification: unbounded until
/// a Milvus refuses an answer as larger than its limit (a proxy whose
/// `proxy.grpc.serverMaxSendSize` is set below what [`RANGE_BYTES`] assumes), then half the
/// smallest limit refused.
#[derive(Debug)]
struct AnswerLimit(AtomicU64);

impl Default for AnswerLimit {
    fn default() -> Self {
        AnswerLimit(AtomicU64::new(u64::MAX))
    }
}

impl AnswerLimit {
    fn budget(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn lower_to(&self, bytes: u64) {
        self.0.fetch_min(bytes.max(1), Ordering::Relaxed);
    }
}

/// Rows per answer: a fixed `--page` (or sub-page), or sized by the rows' width. The first
/// range is sized by the widest row the schema allows (strings and JSON at their maximum
/// length); the next ones by the widest rows seen so far. Every page fits the shared
/// [`AnswerLimit`] once a server has refused an answer ([`Pager::refused`]).
#[derive(Debug, Clone)]
struct Pager {
    fixed: Option<u64>,
    /// The widest row the schema allows, bytes.
    widest: u64,
    /// Widest rows seen (bytes per row of one answer); 0 before the first answer.
    width: u64,
    limit: Arc<AnswerLimit>,
}

impl Pager {
    fn new(page: Option<u64>, schema: &CollectionSchema, limit: &Arc<AnswerLimit>) -> Pager {
        Pager {
            fixed: page.map(|p| p.clamp(1, MAX_QUERY_LIMIT)),
            widest: widest_row(schema),
            width: 0,
            limit: Arc::clone(limit),
        }
    }

    /// Pages of at most `page` rows of the same rows, under the same limit.
    fn fixed(&self, page: u64) -> Pager {
        Pager {
            fixed: Some(page.clamp(1, MAX_QUERY_LIMIT)),
            ..self.clone()
        }
    }

    /// Rows in the next answer.
    fn page(&self) -> u64 {
        let width = if self.width == 0 {
            self.widest
        } else {
            self.width
        };
        let budget = self.limit.budget();
        match self.fixed {
            Some(p) => p.min(rows_within(budget, width)),
            None => rows_within(budget.min(RANGE_BYTES), width),
        }
    }

    /// An answer of `rows` rows in `bytes` bytes.
    fn saw(&mut self, rows: usize, bytes: usize) {
        if rows > 0 {
            self.width = self.width.max((bytes as u64).div_ceil(rows as u64));
        }
    }

    /// Milvus refused an answer of `rows` rows as `size` bytes, over its `limit`: answers
    /// hold half that limit from now on, by the width of the refused rows, so the next one
    /// has fewer than half as many rows (`size > limit`). `false` when a single row is
    /// already too large.
    fn refused(&mut self, rows: u64, size: u64, limit: u64) -> bool {
        if rows <= 1 {
            return false;
        }
        self.limit.lower_to(limit / 2);
        self.width = self.width.max(size.div_ceil(rows));
        true
    }
}

/// `Ok(None)` when `result` is an answer of `rows` rows that Milvus refused as larger than
/// its limit and `pager` could size its pages below it: ask again, for `pager.page()` rows.
fn or_smaller<T>(
    result: Result<T, VerifyError>,
    pager: &mut Pager,
    rows: u64,
) -> Result<Option<T>, VerifyError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) => match e.too_large() {
            Some((size, limit)) if pager.refused(rows, size, limit) => {
                tracing::info!(
                    "Milvus refused an answer of {rows} rows ({size} bytes, over its limit of \
                     {limit}): asking for {} rows at a time",
                    pager.page()
                );
                Ok(None)
            }
            _ => Err(e),
        },
    }
}

fn rows_within(bytes: u64, width: u64) -> u64 {
    (bytes / width.max(1)).clamp(1, MAX_QUERY_LIMIT)
}

/// Milvus's limit on a JSON value (`common.JSONMaxLength`), and the length assumed for values
/// whose schema sets no bound (sparse vectors).
const LONGEST_VALUE: u64 = 64 << 10;

/// The most bytes a row of `schema` can take in an answer: every field at its widest, the
/// dynamic field as the longest JSON.
fn widest_row(schema: &CollectionSchema) -> u64 {
    let dynamic = if schema.enable_dynamic_field {
        LONGEST_VALUE
    } else {
        0
    };
    schema.fields.iter().map(widest_value).sum::<u64>() + dynamic
}

fn widest_value(f: &FieldSchema) -> u64 {
    let param = |key: &str| {
        f.type_params
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.parse::<u64>().ok())
    };
    let dim = || param("dim").unwrap_or(0);
    let string = || param("max_length").unwrap_or(u64::from(u16::MAX));
    let scalar = |t: DataType| match t {
        DataType::Bool => 1,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Float => 4,
        DataType::Int64 | DataType::Double | DataType::Timestamptz => 8,
        DataType::String | DataType::VarChar | DataType::Text => string(),
        _ => LONGEST_VALUE,
    };
    match DataType::try_from(f.data_type).unwrap_or(DataType::None) {
        DataType::FloatVector => dim() * 4,
        DataType::Float16Vector | DataType::BFloat16Vector => dim() * 2,
        DataType::Int8Vector => dim(),
        DataType::BinaryVector => dim().div_ceil(8),
        DataType::Array => {
            let element = DataType::try_from(f.element_type).unwrap_or(DataType::None);
            param("max_capacity").unwrap_or(4096) * scalar(element)
        }
        t => scalar(t),
    }
}

/// One side's digests of the key range `(lo, hi]` (about `rows` rows) and the answers' size:
/// one query, or as many as `pages` needs when Milvus refuses an answer as too large.
async fn range_digests(
    side: &Side<'_>,
    (pk, fields): (&PrimaryKey, &[String]),
    (lo, hi): (Option<&Pk>, Option<&Pk>),
    rows: u64,
    pages: &mut Pager,
) -> Result<(Vec<(Pk, u128)>, usize), VerifyError> {
    let (mut all, mut bytes, mut after) = (Vec::new(), 0, lo.cloned());
    loop {
        let limit = pages.page();
        let expr = range_expr(pk, after.as_ref(), hi);
        let answer = side.digests(pk, fields, &expr, Some(limit)).await;
        let Some((digests, b)) = or_smaller(answer, pages, limit.min(rows))? else {
            continue;
        };
        bytes += b;
        pages.saw(digests.len(), b);
        let n = digests.len() as u64;
        after = digests.last().map(|(k, _)| k.clone()).or(after);
        all.extend(digests);
        if n < limit || (hi.is_some() && after.as_ref() == hi) {
            return Ok((all, bytes));
        }
    }
}

/// The last key of the next `page` keys of `keys`; `None` when fewer are left: the range is
/// then the last one, open-ended, so that B's rows past A's last key are seen.
async fn range_end(keys: &mut KeyCursor<'_>, page: u64) -> Result<Option<Pk>, VerifyError> {
    let mut last = None;
    for _ in 0..page {
        last = keys.next().await?;
        if last.is_none() {
            break;
        }
    }
    Ok(last)
}

/// One key range `(lo, hi]`: A's digests in memory, B's streamed in pages of `b_pages` rows; the
/// rows themselves are read again, from both sides and in `batches`, only for the keys whose
/// digests differ.
async fn compare_range(
    (sa, sb): (&Side<'_>, &Side<'_>),
    pk: &PrimaryKey,
    fields: &[String],
    (mut b_pages, batches): (Pager, &mut Pager),
    (lo, hi): (Option<&Pk>, Option<&Pk>),
    a_digests: Vec<(Pk, u128)>,
    report: &mut CollectionVerification,
) -> Result<(), VerifyError> {
    let mut da = SetDigest::default();
    let mut a_by_key: HashMap<Pk, u128> = HashMap::with_capacity(a_digests.len());
    for (k, d) in a_digests {
        da.add(d);
        a_by_key.insert(k, d);
    }
    let mut db = SetDigest::default();
    // B's keys of the range whose digest matched nothing of A.
    let mut unmatched_b: Vec<Pk> = Vec::new();
    let mut matched = 0u64;
    let mut cursor = lo.cloned();
    let page = b_pages.page();
    loop {
        let limit = b_pages.page();
        let answer = sb
            .digests(
                pk,
                fields,
                &range_expr(pk, cursor.as_ref(), hi),
                Some(limit),
            )
            .await;
        let Some((digests, _)) = or_smaller(answer, &mut b_pages, limit)? else {
            continue;
        };
        let n = digests.len() as u64;
        cursor = digests.last().map(|(k, _)| k.clone()).or(cursor);
        for (k, d) in digests {
            db.add(d);
            report.rows_b += 1;
            if a_by_key.get(&k) == Some(&d) {
                matched += 1;
                a_by_key.remove(&k);
            } else if (unmatched_b.len() as u64) < page {
                // Bounded: past a page of unmatched keys, only the counts go on.
                unmatched_b.push(k);
            } else if a_by_key.remove(&k).is_some() {
                report.different.push(|| k.to_string());
            } else {
                report.extra.push(|| k.to_string());
            }
        }
        if n < limit {
            break;
        }
    }
    report.rows_compared += matched;
    if da == db {
        return Ok(());
    }
    report.ranges_differing += 1;
    let (changed, extra): (Vec<Pk>, Vec<Pk>) = unmatched_b
        .into_iter()
        .partition(|k| a_by_key.remove(k).is_some());
    for k in extra {
        report.extra.push(|| k.to_string());
    }
    // The fields that differ, from both sides' rows read again.
    rows_of_both((sa, sb), pk, fields, &changed, batches, |batch, ra, rb| {
        let on_a: HashMap<&Pk, &Row> = ra.iter().map(|r| (&r.pk, r)).collect();
        let on_b: HashMap<&Pk, &Row> = rb.iter().map(|r| (&r.pk, r)).collect();
        for k in batch {
            report.rows_compared += 1;
            let what = match (on_a.get(k), on_b.get(k)) {
                (Some(x), Some(y)) => {
                    let diff = x.differing_fields(y);
                    if diff.is_empty() {
                        "equal when read again".to_string()
                    } else {
                        diff.join(", ")
                    }
                }
                _ => "gone from a side when read again".to_string(),
            };
            report.different.push(|| format!("{k} ({what})"));
        }
    })
    .await?;
    let mut missing: Vec<Pk> = a_by_key.into_keys().collect();
    missing.sort();
    for k in missing {
        report.missing.push(|| k.to_string());
    }
    Ok(())
}

/// A `verify` request: collections of A's Milvus against their counterparts on B's.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// Profile of A (only its `milvus` section is used).
    pub from: Profile,
    /// Profile of B.
    pub to: Profile,
    /// Collections on A (`coll`, `db.coll`, `db.*`).
    pub selectors: Vec<Selector>,
    /// Their names on B.
    pub naming: Naming,
    /// Mode and sizes.
    pub options: VerifyOptions,
}

/// The result of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Whether every collection matched.
    pub ok: bool,
    /// Per collection.
    pub collections: Vec<CollectionVerification>,
    /// Wall time.
    pub duration_secs: f64,
}

/// Compares the settings of collection `a_coll` of `a` with those of `b_coll` of `b` (each
/// client bound to its database), item by item ([`meta`]).
///
/// # Errors
/// [`VerifyError::Metadata`] when a side cannot be described; differences are in the
/// comparison ([`MetaComparison::ok`]).
pub async fn verify_metadata(
    a: &MilvusClient,
    a_coll: &str,
    b: &MilvusClient,
    b_coll: &str,
) -> Result<MetaComparison, VerifyError> {
    let err = |side: &'static str, c: &MilvusClient, coll: &str| {
        let collection = format!("{}.{coll}", c.db());
        move |(step, source): (&'static str, MilvusError)| VerifyError::Metadata {
            side,
            collection,
            step,
            source: Box::new(source),
        }
    };
    let sa = meta::snapshot(a, a_coll)
        .await
        .map_err(err("A", a, a_coll))?;
    let sb = meta::snapshot(b, b_coll)
        .await
        .map_err(err("B", b, b_coll))?;
    let held = meta::aliases_held_elsewhere(b, &sa, &sb)
        .await
        .map_err(|e| err("B", b, b_coll)(("DescribeCollection", e)))?;
    Ok(meta::compare(&sa, &sb, &held))
}

/// Runs `verify`: resolves the selectors on A, maps each collection to its name on B and
/// compares the two: rows, then metadata.
///
/// # Errors
/// [`Error`] when a Milvus cannot be reached, a selector names nothing, or a query fails;
/// differences are in the report.
pub async fn verify(req: &VerifyRequest) -> Result<VerifyReport, Error> {
    let started = Instant::now();
    let a = MilvusClient::connect(&req.from.milvus, ClientOptions::default()).await?;
    let b = MilvusClient::connect(&req.to.milvus, ClientOptions::default()).await?;
    let sources = crate::create::resolve(&a, &req.selectors).await?;
    let mut collections = Vec::with_capacity(sources.len());
    for (db, coll) in &sources {
        let (tdb, tname) = req.naming.target(db, coll);
        let (ca, cb) = (a.with_db(db), b.with_db(&tdb));
        let mut r = verify_collection(&ca, coll, &cb, &tname, &req.options).await?;
        r.metadata = Some(verify_metadata(&ca, coll, &cb, &tname).await?);
        collections.push(r);
    }
    Ok(VerifyReport {
        ok: collections.iter().all(CollectionVerification::ok),
        collections,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(t: DataType, params: &[(&str, &str)], element: DataType) -> FieldSchema {
        FieldSchema {
            data_type: t as i32,
            element_type: element as i32,
            type_params: params
                .iter()
                .map(|(k, v)| crate::milvus::proto::common::KeyValuePair {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn schema(fields: Vec<FieldSchema>, dynamic: bool) -> CollectionSchema {
        CollectionSchema {
            fields,
            enable_dynamic_field: dynamic,
            ..Default::default()
        }
    }

    #[test]
    fn a_row_at_its_widest_counts_every_field_at_its_bound() {
        use DataType as T;
        let s = schema(
            vec![
                field(T::Int64, &[], T::None),
                field(T::FloatVector, &[("dim", "128")], T::None),
                field(T::BinaryVector, &[("dim", "12")], T::None),
                field(T::VarChar, &[("max_length", "100")], T::None),
                field(T::Array, &[("max_capacity", "4")], T::Int32),
                field(
                    T::Array,
                    &[("max_capacity", "2"), ("max_length", "10")],
                    T::VarChar,
                ),
                field(T::Bool, &[], T::None),
                field(T::Json, &[], T::None),
            ],
            true,
        );
        assert_eq!(
            widest_row(&s),
            8 + 512 + 2 + 100 + 16 + 20 + 1 + LONGEST_VALUE + LONGEST_VALUE
        );
    }

    #[test]
    fn ranges_are_sized_by_the_widest_rows_seen_unless_the_page_is_given() {
        use DataType as T;
        let limit = Arc::new(AnswerLimit::default());
        let narrow = schema(
            vec![
                field(T::Int64, &[], T::None),
                field(T::FloatVector, &[("dim", "128")], T::None),
            ],
            false,
        );
        let wide = schema(
            vec![
                field(T::Int64, &[], T::None),
                field(T::FloatVector, &[("dim", "32768")], T::None),
            ],
            false,
        );
        // Narrow rows: Milvus's most rows per query.
        assert_eq!(Pager::new(None, &narrow, &limit).page(), MAX_QUERY_LIMIT);
        // 128 KiB rows: 16 MiB per range.
        assert_eq!(Pager::new(None, &wide, &limit).page(), 127);
        // A long string column the schema cannot bound: the first range is small, the next
        // ones follow what the answers hold; a narrower answer later does not widen them.
        let mut p = Pager::new(
            None,
            &schema(vec![field(T::VarChar, &[], T::None)], true),
            &limit,
        );
        assert_eq!(p.page(), 128);
        p.saw(1000, 4_000_000);
        assert_eq!(p.page(), 4194);
        p.saw(1000, 1_000_000);
        assert_eq!(p.page(), 4194);
        p.saw(0, 0);
        assert_eq!(p.page(), 4194);
        // A page given on the command line stays.
        let mut p = Pager::new(Some(500), &wide, &limit);
        p.saw(10, 10);
        assert_eq!(p.page(), 500);
        assert_eq!(
            Pager::new(Some(100_000), &wide, &limit).page(),
            MAX_QUERY_LIMIT
        );
    }

    fn report() -> CollectionVerification {
        CollectionVerification {
            source: "default.c".into(),
            target: "default.c_bak".into(),
            mode: VerifyMode::Full,
            rows_a: 3,
            rows_b: 3,
            partitions: vec![PartitionRows {
                name: "_default".into(),
                rows_a: Some(3),
                rows_b: Some(3),
                on_b: PartitionOnB::Loaded,
            }],
            schema_differences: Vec::new(),
            rows_compared: 3,
            missing: KeyList::default(),
            extra: KeyList::default(),
            different: KeyList::default(),
            ranges: 1,
            ranges_differing: 0,
            secs: 0.0,
            metadata: None,
        }
    }

    #[test]
    fn a_report_names_the_keys_that_differ() {
        let r = report();
        assert!(r.ok());
        assert_eq!(r.summary(), "3 rows, same content (full)");

        let mut r = report();
        r.rows_b = 4;
        r.partitions[0].rows_b = Some(4);
        for k in 0..12 {
            r.extra.push(|| format!("{k}"));
        }
        r.different.push(|| "7 (vec)".into());
        assert!(!r.ok());
        assert_eq!(r.extra.count, 12);
        assert_eq!(
            r.extra.first.len(),
            FIRST_KEYS,
            "only the first few are named"
        );
        let s = r.summary();
        assert!(s.contains("3 rows on A, 4 on B"), "{s}");
        assert!(
            s.contains("partition `_default`: 3 rows on A, 4 on B"),
            "{s}"
        );
        assert!(s.contains("12 extra on B (0, 1, 2"), "{s}");
        assert!(s.contains("1 different (7 (vec))"), "{s}");

        let mut r = report();
        r.partitions[0].rows_b = None;
        r.partitions[0].on_b = PartitionOnB::Missing;
        assert!(!r.ok());
        assert!(r.summary().contains("partition `_default` missing on B"));
    }

    #[test]
    fn partitions_not_loaded_on_a_are_named_and_only_rows_seen_on_one_side_differ() {
        let unloaded = |on_b, rows_b| PartitionRows {
            name: "p3".into(),
            rows_a: None,
            rows_b,
            on_b,
        };
        // Not loaded on either side (or missing on B): not compared, and said so.
        for p in [
            unloaded(PartitionOnB::NotLoaded, None),
            unloaded(PartitionOnB::Missing, None),
            unloaded(PartitionOnB::Loaded, Some(0)),
        ] {
            let mut r = report();
            r.partitions.push(p);
            assert!(r.ok(), "{r:?}");
            assert_eq!(
                r.summary(),
                "3 rows, same content (full); partition(s) `p3` not loaded on A: their rows \
                 not compared"
            );
        }
        // Loaded on B only, with rows A's queries do not see.
        let mut r = report();
        r.partitions.push(unloaded(PartitionOnB::Loaded, Some(5)));
        assert!(!r.ok());
        assert!(
            r.summary()
                .contains("partition `p3` loaded on B only (5 rows), not on A"),
            "{}",
            r.summary()
        );
        // Loaded on A, not on B.
        let mut r = report();
        r.partitions[0].rows_b = None;
        r.partitions[0].on_b = PartitionOnB::NotLoaded;
        assert!(!r.ok());
        assert!(
            r.summary()
                .contains("partition `_default` not loaded on B (3 rows on A)")
        );
    }

    #[test]
    fn a_required_metadata_difference_makes_the_report_differ() {
        let item = |name: &str, status, required| MetaItem {
            item: name.into(),
            a: "x".into(),
            b: if status == MetaStatus::Equal {
                "x"
            } else {
                "y"
            }
            .into(),
            status,
            reason: None,
            required,
        };
        let mut r = report();
        r.metadata = Some(MetaComparison {
            items: vec![
                item("shards", MetaStatus::Equal, true),
                item("replicas", MetaStatus::Different, false),
            ],
        });
        assert!(r.ok(), "a difference that is not required does not count");
        assert_eq!(
            r.summary(),
            "3 rows, same content (full); metadata: 1 item equal; different: replicas (A: x, \
             B: y, not required)"
        );
        r.metadata
            .as_mut()
            .unwrap()
            .items
            .push(item("aliases", MetaStatus::Different, true));
        assert!(!r.ok());
        assert!(
            r.summary().contains("aliases (A: x, B: y)"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn modes_parse_and_print() {
        for m in ["count", "sample", "full"] {
            assert_eq!(m.parse::<VerifyMode>().unwrap().to_string(), m);
        }
        assert!("everything".parse::<VerifyMode>().is_err());
        assert_eq!(VerifyMode::default(), VerifyMode::Sample);
    }
}
